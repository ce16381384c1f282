"""Historical weather for runs from the Open-Meteo archive (ERA5 reanalysis), cached on disk.

What it feeds (RULES.md): H0 says weather beats the watch's own sensor for air temperature;
H1/H2 need relative humidity (heat index, approximate WBGT; a Liljegren WBGT would also need wind
and solar radiation); D1 needs wind speed at 10 m in km/h; S1 tier 2 (Gonzalez) needs air
temperature, humidity, wind and radiation. This module gets those four hourly series and turns
them into one value per run; the rules never call the network.

Design:

- :class:`WeatherClient` asks the archive endpoint for hourly ``temperature_2m``,
  ``relative_humidity_2m``, ``wind_speed_10m`` and ``shortwave_radiation`` with
  ``timezone=GMT`` and ``wind_speed_unit=kmh``, one request per place (rounded to 0.1°) and
  date range. Every answer is kept under ``cache_dir``, so nothing is fetched twice.
  429/5xx/timeouts are retried with exponential backoff (``Retry-After`` honoured); anything
  else becomes a typed :class:`WeatherError` with a one-line reason.
- Only the *archive* is ever asked, for the run's own dates: never the forecast or "current"
  endpoints, so an old run never gets today's weather. Dates after today − 5 days (the archive's
  lag) or before 1940-01-01 (its start) are never requested.
- :func:`weather_for_runs` plans one request per place and contiguous date range, then averages
  each hourly series over each run's duration (vectorised, exact for the piecewise-linear
  interpolant). When the service is unreachable it returns what it could and says which runs
  lack weather and why; runlog keeps working offline.

References
----------
Open-Meteo Historical Weather API, https://open-meteo.com/en/docs/historical-weather-api
(endpoint https://archive-api.open-meteo.com/v1/archive; data 1940 to about 5 days ago;
``shortwave_radiation`` is the mean of the preceding hour, the other three are instantaneous).
Hersbach H et al. (2020) The ERA5 global reanalysis. Q J R Meteorol Soc 146:1999–2049,
https://doi.org/10.1002/qj.3803. Data licence CC BY 4.0: credit "Weather data by Open-Meteo.com".
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import math
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runlog import __version__ as _RUNLOG_VERSION
from runlog.errors import RunlogError

# --- the service -------------------------------------------------------------------------------
ARCHIVE_URL = "https://archive-api.open-meteo.com/v1/archive"
WEATHER_SOURCE = "open-meteo archive"
ARCHIVE_FIRST_DATE = date(1940, 1, 1)
"""First day the archive holds (ERA5 starts in January 1940)."""
ARCHIVE_LAG_DAYS = 5
"""The archive runs about 5 days behind today; later dates are never requested."""
USER_AGENT = f"runlog/{_RUNLOG_VERSION} (local running log)"

HOURLY_VARIABLES: dict[str, str] = {
    "temperature_2m": "air_temp_c",
    "relative_humidity_2m": "humidity_pct",
    "wind_speed_10m": "wind_kmh",
    "shortwave_radiation": "shortwave_w_m2",
}
"""Open-Meteo hourly variable → runlog column."""
WEATHER_COLUMNS = tuple(HOURLY_VARIABLES.values())
EXPECTED_UNITS: dict[str, tuple[str, ...]] = {
    "temperature_2m": ("°C",),
    "relative_humidity_2m": ("%",),
    "wind_speed_10m": ("km/h",),
    "shortwave_radiation": ("W/m²", "W/m^2", "W/m2"),
}
"""Units the answer must declare in ``hourly_units`` (when it declares them)."""
PRECEDING_HOUR_MEAN = frozenset({"shortwave_radiation"})
"""Variables given as the mean of the hour *ending* at their time stamp."""

# --- request planning [design] ---------------------------------------------------------------
PLACE_ROUND_DEG = 0.1
"""Places are rounded to 0.1° (~11 km; the ERA5 grid is 0.25°) for batching and the cache."""
RUN_MARGIN = pd.Timedelta(hours=1)
"""Hours asked for on each side of a run so interpolation always has a knot around it."""
BATCH_MAX_GAP_DAYS = 7
"""Runs at one place whose dates are at most this many days apart share one request."""
BATCH_MAX_SPAN_DAYS = 92
"""Longest date range in one request [days]."""
MAX_INTERP_GAP_H = 3.0
"""Never interpolate across a hole in the hourly data longer than this [h]."""
MAX_PAUSE_S = 3600.0
"""Averaging window = elapsed time, but at most moving time + this [s] (a watch left running
for hours would otherwise stretch the run's weather over the evening)."""

# --- transport [design] ----------------------------------------------------------------------
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_S = 1.0
MAX_RETRY_AFTER_S = 120.0
"""A Retry-After longer than this [s] (e.g. a daily limit) ends the attempt at once."""
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
REASON_MAX_CHARS = 240
CACHE_VERSION = 1


# --- errors ------------------------------------------------------------------------------------
class WeatherError(RunlogError):
    """Weather could not be had for a request; ``reason`` is one line."""


class WeatherUnavailable(WeatherError):
    """Offline, timed out, rate limited or server errors after the retries: try again later."""


class WeatherResponseError(WeatherError):
    """The service answered, but with an error (``"error": true``) or an unusable body."""


class WeatherRangeError(WeatherError):
    """Dates outside what the archive holds (before 1940, or newer than today − 5 days)."""


def _one_line(text: object, limit: int = REASON_MAX_CHARS) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- small helpers -----------------------------------------------------------------------------
def round_place(lat_deg: float, lon_deg: float) -> tuple[float, float]:
    """Round a place to :data:`PLACE_ROUND_DEG` (half away from zero) [°, °].

    Raises :class:`WeatherError` for coordinates that are not finite or out of range.
    """
    lat, lon = float(lat_deg), float(lon_deg)
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        raise WeatherError(f"invalid position {lat_deg}, {lon_deg}")
    steps = 1 / PLACE_ROUND_DEG

    def rnd(x: float) -> float:
        return math.copysign(math.floor(abs(x) * steps + 0.5), x) / steps + 0.0

    return rnd(lat), rnd(lon)


def latest_archive_date(today: date) -> date:
    """Newest date the archive is asked for: ``today`` − :data:`ARCHIVE_LAG_DAYS`."""
    return today - timedelta(days=ARCHIVE_LAG_DAYS)


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise WeatherError(f"not a date: {value!r}") from exc


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), else None."""
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Attempt:
    """Outcome of one HTTP attempt that may be retried."""

    reason: str
    retry_after_s: float | None = None


# --- the client --------------------------------------------------------------------------------
class WeatherClient:
    """Hourly historical weather from the Open-Meteo archive, cached on disk.

    Parameters
    ----------
    base_url : archive endpoint; tests point it at a local server.
    timeout_s : limit for one attempt, connection to last byte [s].
    max_retries : extra attempts after the first on 429, 5xx and timeouts.
    backoff_s : first wait between attempts [s]; doubles each retry. A ``Retry-After`` header
        replaces it (up to :data:`MAX_RETRY_AFTER_S`; longer asks end the attempt at once).
    cache_dir : where answers are kept (one JSON file per place and date range); None = no cache.
    opener : a :class:`urllib.request.OpenerDirector` (default ``build_opener()``, which
        honours the usual proxy variables).
    sleep : how to wait [s]; tests pass a recorder.
    clock : current UTC time; decides what "too recent" means.
    """

    def __init__(self, base_url: str = ARCHIVE_URL, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_retries: int = DEFAULT_MAX_RETRIES, backoff_s: float = DEFAULT_BACKOFF_S,
                 cache_dir: Path | str | None = None,
                 opener: urllib.request.OpenerDirector | None = None, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0:
            raise ValueError("timeout_s > 0, max_retries >= 0 and backoff_s >= 0 are required")
        self.base_url = base_url
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.opener = opener if opener is not None else urllib.request.build_opener()
        self.sleep = sleep
        self.clock = clock
        self.requests_made = 0
        """HTTP attempts made by this client (cache hits make none)."""

    # -- public ---------------------------------------------------------------------------------
    def today(self) -> date:
        """Today's UTC date by this client's clock."""
        return self.clock().astimezone(UTC).date()

    def fetch_hourly(self, lat_deg: float, lon_deg: float, start_date: date | str,
                     end_date: date | str) -> pd.DataFrame:
        """Hourly weather at a place for whole UTC days ``start_date``…``end_date`` (inclusive).

        Parameters
        ----------
        lat_deg, lon_deg : place [°]; rounded to 0.1° before asking (and for the cache key).
        start_date, end_date : UTC dates, within 1940-01-01 … today − 5 days.

        Returns
        -------
        DataFrame indexed by UTC-aware hourly ``time_utc`` with float columns
        ``air_temp_c`` [°C, 2 m, instant], ``humidity_pct`` [% relative, 2 m, instant],
        ``wind_kmh`` [km/h, 10 m, instant], ``shortwave_w_m2`` [W/m², global horizontal,
        mean of the hour *ending* at the time stamp]. Missing values are NaN.
        ``attrs``: ``latitude_deg``/``longitude_deg`` (grid cell the archive used),
        ``fetched_utc`` (when the service answered), ``from_cache`` (bool).

        Raises
        ------
        WeatherRangeError : dates outside the archive (no request is made).
        WeatherUnavailable : offline, timeouts, 429/5xx after the retries.
        WeatherResponseError : ``error: true``, malformed JSON, missing fields or wrong units.
        """
        lat, lon = round_place(lat_deg, lon_deg)
        start, end = self._check_range(_as_date(start_date), _as_date(end_date))
        cached = self.cached_hourly(lat, lon, start, end)
        if cached is not None:
            return cached
        params = {
            "latitude": f"{lat:.1f}",
            "longitude": f"{lon:.1f}",
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "hourly": ",".join(HOURLY_VARIABLES),
            "timezone": "GMT",
            "wind_speed_unit": "kmh",
            "temperature_unit": "celsius",
        }
        url = f"{self.base_url}?{urllib.parse.urlencode(params, safe=',')}"
        where = f"weather at {lat:.1f}, {lon:.1f} for {start}…{end}"
        try:
            payload = self._get_json(url)
            frame = parse_archive_response(payload, start, end)
        except WeatherError as exc:
            raise type(exc)(f"{where}: {exc.reason}") from exc
        fetched = self.clock().astimezone(UTC)
        self._write_cache(lat, lon, start, end, payload, fetched)
        frame.attrs.update(fetched_utc=pd.Timestamp(fetched), from_cache=False)
        return frame

    def cached_hourly(self, lat_deg: float, lon_deg: float, start_date: date | str,
                      end_date: date | str) -> pd.DataFrame | None:
        """The cached answer covering the place and dates, cut to them; None when not cached.

        Any cached range that contains the asked one will do. Never touches the network.
        """
        if self.cache_dir is None:
            return None
        lat, lon = round_place(lat_deg, lon_deg)
        start, end = _as_date(start_date), _as_date(end_date)
        for path in sorted(self.cache_dir.glob(f"{_place_key(lat, lon)}_*.json")):
            span = _cache_span(path)
            if span is None or span[0] > start or span[1] < end:
                continue
            try:
                envelope = json.loads(path.read_text(encoding="utf-8"))
                frame = parse_archive_response(envelope["response"], *span)
                fetched = pd.Timestamp(envelope["fetched_utc"])
            except (OSError, ValueError, KeyError, TypeError, WeatherError):
                continue  # a damaged cache file is ignored and will be replaced
            lo = pd.Timestamp(start, tz="UTC")
            hi = pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
            cut = frame[(frame.index >= lo) & (frame.index < hi)].copy()
            cut.attrs.update(frame.attrs, fetched_utc=fetched, from_cache=True)
            return cut
        return None

    # -- internals ------------------------------------------------------------------------------
    def _check_range(self, start: date, end: date) -> tuple[date, date]:
        if end < start:
            raise WeatherRangeError(f"end date {end} is before start date {start}")
        if start < ARCHIVE_FIRST_DATE:
            raise WeatherRangeError(f"{start} is before {ARCHIVE_FIRST_DATE}, where the "
                                    "weather archive begins")
        newest = latest_archive_date(self.today())
        if end > newest:
            raise WeatherRangeError(f"{end} is too recent: the weather archive runs about "
                                    f"{ARCHIVE_LAG_DAYS} days behind (newest {newest})")
        return start, end

    def _get_json(self, url: str) -> Any:
        """GET ``url`` and decode JSON, retrying politely; raises a :class:`WeatherError`."""
        attempts = self.max_retries + 1
        last: _Attempt | None = None
        for attempt in range(attempts):
            if attempt:
                wait = self.backoff_s * 2 ** (attempt - 1)
                if last is not None and last.retry_after_s is not None:
                    wait = last.retry_after_s
                self.sleep(wait)
            outcome = self._attempt(url)
            if not isinstance(outcome, _Attempt):
                return outcome
            last = outcome
            if last.retry_after_s is not None and last.retry_after_s > MAX_RETRY_AFTER_S:
                raise WeatherUnavailable(f"{last.reason}; the service asks to wait "
                                         f"{last.retry_after_s:.0f} s — try again later")
        assert last is not None
        raise WeatherUnavailable(f"{last.reason} (gave up after {attempts} attempts)")

    def _attempt(self, url: str) -> Any:
        """One GET: the decoded JSON, an :class:`_Attempt` to retry, or a raised error."""
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT,
                                                       "Accept": "application/json"})
        deadline = time.monotonic() + self.timeout_s
        self.requests_made += 1
        try:
            with self.opener.open(request, timeout=self.timeout_s) as response:
                body = _read_bounded(response, deadline)
        except urllib.error.HTTPError as exc:
            try:
                body = _read_bounded(exc, deadline) if exc.fp is not None else b""
            except (_Timeout, WeatherError, OSError, http.client.HTTPException):
                body = b""
            finally:
                with contextlib.suppress(OSError):
                    exc.close()
            reason = _error_reason(body) or (exc.reason if exc.reason else "")
            text = _one_line(f"HTTP {exc.code}" + (f": {reason}" if reason else ""))
            if exc.code in RETRY_STATUS:
                return _Attempt(text, parse_retry_after(exc.headers.get("Retry-After")))
            raise WeatherResponseError(text) from None
        except (_Timeout, TimeoutError):
            return _Attempt(f"no answer within {self.timeout_s:g} s")
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return _Attempt(f"no answer within {self.timeout_s:g} s")
            raise WeatherUnavailable(
                _one_line(f"cannot reach the weather service (offline?): {exc.reason}")
            ) from None
        except (ConnectionError, http.client.HTTPException) as exc:
            return _Attempt(_one_line(f"connection broken: {exc.__class__.__name__} {exc}"))
        except OSError as exc:
            raise WeatherUnavailable(
                _one_line(f"cannot reach the weather service (offline?): {exc}")) from None
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WeatherResponseError(_one_line(f"malformed JSON from the weather service: "
                                                 f"{exc}")) from None

    def _write_cache(self, lat: float, lon: float, start: date, end: date, payload: Any,
                     fetched: datetime) -> None:
        if self.cache_dir is None:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        envelope = {"runlog_weather_cache": CACHE_VERSION, "source": WEATHER_SOURCE,
                    "latitude": lat, "longitude": lon, "start_date": start.isoformat(),
                    "end_date": end.isoformat(), "fetched_utc": fetched.isoformat(),
                    "response": payload}
        path = self.cache_dir / f"{_place_key(lat, lon)}_{start}_{end}.json"
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(envelope, fh, ensure_ascii=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            # a cache that cannot be written only costs a refetch later


class _Timeout(Exception):
    """The whole attempt ran past its deadline."""


def _read_bounded(response: Any, deadline: float) -> bytes:
    """Read the body in chunks, within the deadline and :data:`MAX_RESPONSE_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    read = getattr(response, "read1", None) or response.read  # read1: one recv at most
    while True:
        if time.monotonic() > deadline:
            raise _Timeout
        chunk = read(READ_CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise WeatherResponseError(f"answer larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)


def _error_reason(body: bytes) -> str | None:
    """``reason`` of an Open-Meteo error body ``{"error": true, "reason": "..."}``, else None."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(doc, dict) and doc.get("reason"):
        return _one_line(doc["reason"])
    return None


def _place_key(lat: float, lon: float) -> str:
    return f"lat{lat:+05.1f}_lon{lon:+06.1f}"


_SPAN_RE = re.compile(r"_(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})\.json$")


def _cache_span(path: Path) -> tuple[date, date] | None:
    match = _SPAN_RE.search(path.name)
    if not match:
        return None
    try:
        return date.fromisoformat(match[1]), date.fromisoformat(match[2])
    except ValueError:
        return None


# --- parsing -----------------------------------------------------------------------------------
def parse_archive_response(payload: Any, start_date: date | None = None,
                           end_date: date | None = None) -> pd.DataFrame:
    """Validate an archive JSON answer and turn it into the hourly frame of :meth:`fetch_hourly`.

    ``time`` values are local to ``utc_offset_seconds`` (0 for ``timezone=GMT``); they are
    converted to UTC. ISO 8601 strings and unix seconds are both accepted. ``null`` → NaN.
    When ``start_date``/``end_date`` are given, the times must lie within those UTC days.

    Raises :class:`WeatherResponseError` on ``error: true`` or any missing/unusable field.
    """
    if not isinstance(payload, Mapping):
        raise WeatherResponseError("weather answer is not a JSON object")
    if payload.get("error"):
        raise WeatherResponseError(_one_line(f"weather service error: "
                                             f"{payload.get('reason') or 'no reason given'}"))
    hourly = payload.get("hourly")
    if not isinstance(hourly, Mapping):
        raise WeatherResponseError("weather answer has no 'hourly' object")
    missing = [k for k in ("time", *HOURLY_VARIABLES) if k not in hourly]
    if missing:
        raise WeatherResponseError(f"weather answer lacks hourly {', '.join(missing)}")
    units = payload.get("hourly_units")
    if isinstance(units, Mapping):
        for var, allowed in EXPECTED_UNITS.items():
            if var in units and units[var] not in allowed:
                raise WeatherResponseError(f"weather answer gives {var} in {units[var]!r}, "
                                           f"expected {allowed[0]!r}")
    times = hourly["time"]
    if not isinstance(times, list) or not times:
        raise WeatherResponseError("weather answer has no hourly times")
    offset_s = payload.get("utc_offset_seconds", 0)
    if not isinstance(offset_s, int | float) or isinstance(offset_s, bool):
        raise WeatherResponseError("weather answer has a non-numeric utc_offset_seconds")
    try:
        if all(isinstance(t, int | float) and not isinstance(t, bool) for t in times):
            index = pd.to_datetime(np.asarray(times, dtype="int64"), unit="s", utc=True)
        else:
            index = pd.to_datetime(pd.Series(times, dtype=object), format="ISO8601")
            if getattr(index.dt, "tz", None) is None:
                index = index.dt.tz_localize("UTC") - pd.Timedelta(seconds=offset_s)
            index = pd.DatetimeIndex(index.dt.tz_convert("UTC"))
    except (ValueError, TypeError, OverflowError) as exc:
        raise WeatherResponseError(_one_line(f"weather answer has bad times: {exc}")) from None
    if index.hasnans or not index.is_monotonic_increasing or index.has_duplicates:
        raise WeatherResponseError("weather answer's times are not increasing")
    columns: dict[str, np.ndarray] = {}
    for var, col in HOURLY_VARIABLES.items():
        values = hourly[var]
        if not isinstance(values, list) or len(values) != len(index):
            raise WeatherResponseError(f"weather answer's {var} does not match its times")
        try:
            columns[col] = np.array([np.nan if v is None else v for v in values],
                                    dtype="float64")
        except (TypeError, ValueError):
            raise WeatherResponseError(f"weather answer's {var} is not numeric") from None
    frame = pd.DataFrame(columns, index=pd.DatetimeIndex(index.as_unit("ns"), name="time_utc"))
    if start_date is not None and end_date is not None:
        lo = pd.Timestamp(start_date, tz="UTC")
        hi = pd.Timestamp(end_date, tz="UTC") + pd.Timedelta(days=1)
        if frame.index[0] < lo or frame.index[-1] >= hi:
            raise WeatherResponseError(f"weather answer's times ({frame.index[0]} … "
                                       f"{frame.index[-1]}) are not the days asked for")
    frame.attrs = {"latitude_deg": payload.get("latitude"),
                   "longitude_deg": payload.get("longitude")}
    return frame


# --- interpolation ----------------------------------------------------------------------------
def interval_means(knot_s: np.ndarray, values: np.ndarray, start_s: np.ndarray,
                   end_s: np.ndarray, max_gap_s: float = MAX_INTERP_GAP_H * 3600.0
                   ) -> np.ndarray:
    """Time-mean of a linearly interpolated series over each interval [start, end] (vectorised).

    ``knot_s`` are increasing sample times [s], ``values`` the samples (NaN = missing, dropped).
    For end > start the result is exactly (1/(end − start))·∫ y(t) dt of the piecewise-linear
    interpolant; for end == start it is y(start) — the value at the run's middle time. NaN when
    the interval is not inside the valid samples or spans a hole longer than ``max_gap_s``
    (never extrapolated).
    """
    t = np.asarray(knot_s, dtype="float64")
    y = np.asarray(values, dtype="float64")
    s = np.asarray(start_s, dtype="float64")
    e = np.asarray(end_s, dtype="float64")
    ok = ~np.isnan(y) & ~np.isnan(t)
    t, y = t[ok], y[ok]
    out = np.full(s.shape, np.nan)
    if t.size < 2 or s.size == 0:
        if t.size == 1:
            out[(s == t[0]) & (e == t[0])] = y[0]
        return out
    t0 = t[0]
    t, s, e = t - t0, s - t0, e - t0  # smaller numbers, better precision
    dt = np.diff(t)
    slope = np.diff(y) / dt
    cum = np.concatenate(([0.0], np.cumsum(0.5 * (y[:-1] + y[1:]) * dt)))
    holes = np.concatenate(([0], np.cumsum(dt > max_gap_s)))

    def segment(q: np.ndarray, side: str) -> np.ndarray:
        return np.clip(np.searchsorted(t, q, side=side) - 1, 0, t.size - 2)

    def integral(q: np.ndarray, k: np.ndarray) -> np.ndarray:
        d = q - t[k]
        return cum[k] + y[k] * d + 0.5 * slope[k] * d * d

    inside = (s >= t[0]) & (e <= t[-1]) & (e >= s) & ~np.isnan(s) & ~np.isnan(e)
    s_c = np.where(inside, s, t[0])
    e_c = np.where(inside, e, t[0])
    ks, ke = segment(s_c, "right"), segment(e_c, "left")
    ke = np.maximum(ke, ks)
    no_hole = (holes[ke + 1] - holes[ks]) == 0
    length = e_c - s_c
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (integral(e_c, ke) - integral(s_c, ks)) / length
    point = np.interp(s_c, t, y)
    result = np.where(length > 0, mean, point)
    return np.where(inside & no_hole, result, out)


# --- runs --------------------------------------------------------------------------------------
INDOOR_SUB_SPORTS = ("treadmill", "indoor", "virtual")
"""``sub_sport`` values (prefixes, case-insensitive) for runs with no outdoor weather."""
RESULT_COLUMNS = ("run_id", *WEATHER_COLUMNS, "weather_source", "weather_fetched_utc")
STORE_COLUMNS: dict[str, str] = {c: f"weather_{c}" for c in WEATHER_COLUMNS}
"""Names for the runs table, so weather never collides with the runner's own annotation
columns (``air_temp_c``, ``humidity_pct``, ``wind_kmh``):
``weather.rename(columns=STORE_COLUMNS)``."""


def _column(runs: pd.DataFrame, name: str, default: Any) -> pd.Series:
    if name in runs.columns:
        return runs[name]
    return pd.Series(default, index=runs.index, dtype=object if default is None else None)


def _run_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Per-run planning inputs: times [s], place, dates needed, and why a run is skipped."""
    start = pd.to_datetime(_column(runs, "start_utc", pd.NaT), utc=True, errors="coerce")
    elapsed = pd.to_numeric(_column(runs, "elapsed_s", np.nan), errors="coerce")
    moving = pd.to_numeric(_column(runs, "moving_s", np.nan), errors="coerce")
    duration = elapsed.where(elapsed.notna() & (elapsed >= 0), moving)
    duration = np.fmin(duration, moving + MAX_PAUSE_S).fillna(0.0).clip(lower=0)
    end = start + pd.to_timedelta(duration, unit="s")
    lat = pd.to_numeric(_column(runs, "start_lat_deg", np.nan), errors="coerce")
    lon = pd.to_numeric(_column(runs, "start_lon_deg", np.nan), errors="coerce")
    sub = _column(runs, "sub_sport", None).astype(object).where(
        lambda s: s.notna(), "").astype(str).str.strip().str.lower()
    gps = _column(runs, "has_gps", True).astype(object)
    no_gps = gps.map(lambda v: v is not None and not pd.isna(v) and not bool(v))
    plan = pd.DataFrame({
        "run_id": runs["run_id"].to_numpy(),
        "start": start.to_numpy(), "end": end.to_numpy(),
        "lat": lat.to_numpy(dtype="float64"), "lon": lon.to_numpy(dtype="float64"),
    }, index=runs.index)
    plan["start"] = pd.to_datetime(plan["start"], utc=True)
    plan["end"] = pd.to_datetime(plan["end"], utc=True)
    valid_pos = lat.between(-90, 90) & lon.between(-180, 180)
    steps = 1 / PLACE_ROUND_DEG
    plan["lat_r"] = np.where(valid_pos, np.sign(lat) * np.floor(lat.abs() * steps + 0.5) / steps,
                             np.nan) + 0.0
    plan["lon_r"] = np.where(valid_pos, np.sign(lon) * np.floor(lon.abs() * steps + 0.5) / steps,
                             np.nan) + 0.0
    plan["need_start"] = (plan["start"] - RUN_MARGIN).dt.floor("D")
    plan["need_end"] = (plan["end"] + RUN_MARGIN).dt.floor("D")
    indoor = sub.str.startswith(INDOOR_SUB_SPORTS).to_numpy()
    reason = np.select(
        [plan["start"].isna().to_numpy(), indoor, no_gps.to_numpy(dtype=bool),
         (lat.isna() | lon.isna()).to_numpy(), ~valid_pos.to_numpy()],
        ["no start time", "indoor run (treadmill/indoor) — no outdoor weather",
         "no GPS, so no place for weather", "no start position, so no place for weather",
         "start position out of range"],
        default="")
    plan["skip"] = reason
    return plan


def weather_for_runs(runs: pd.DataFrame, client: WeatherClient
                     ) -> tuple[pd.DataFrame, list[str]]:
    """Air temperature, humidity, wind and solar radiation per outdoor run, from the archive.

    Parameters
    ----------
    runs : one row per run with ``run_id``, ``start_utc`` (UTC-aware), ``elapsed_s`` or
        ``moving_s`` [s] (elapsed preferred: weather follows the clock; at most moving time +
        :data:`MAX_PAUSE_S`), ``has_gps``,
        ``sub_sport``, ``start_lat_deg``/``start_lon_deg`` [°]. Missing optional columns are
        treated as unknown.
    client : a :class:`WeatherClient`.

    Returns
    -------
    (weather, messages). ``weather`` has one row per run that got weather: ``run_id``,
    ``air_temp_c`` [°C], ``humidity_pct`` [%], ``wind_kmh`` [km/h at 10 m], ``shortwave_w_m2``
    [W/m²] — each the time-mean over the run of the hourly series linearly interpolated
    (shortwave's preceding-hour means placed at mid-hour) — ``weather_source``
    (``"open-meteo archive"``) and ``weather_fetched_utc`` (when the service answered).
    ``messages`` says, one line per run, why a run has no (or only partial) weather: indoor,
    no position, too recent, before 1940, offline, service error. When the service could not
    be reached, ``weather.attrs[UNREACHABLE]`` gives the reason once and the runs it left
    without weather.

    One request per place (rounded to 0.1°) and contiguous date range; cached answers are
    reused; after the service turns out to be unreachable only the cache is consulted.
    """
    empty = pd.DataFrame({
        "run_id": pd.Series(dtype=object),
        **{c: pd.Series(dtype="float64") for c in WEATHER_COLUMNS},
        "weather_source": pd.Series(dtype=object),
        "weather_fetched_utc": pd.Series(dtype="datetime64[ns, UTC]"),
    })
    if runs is None or len(runs) == 0:
        return empty, []
    plan = _run_frame(runs.reset_index(drop=True))
    messages: dict[Any, str] = {}

    def note(idx: Any, text: str) -> None:
        messages[idx] = f"{plan.at[idx, 'run_id']}: {text}"

    for idx in plan.index[plan["skip"] != ""]:
        note(idx, f"no weather: {plan.at[idx, 'skip']}")
    todo = plan[plan["skip"] == ""]
    first = pd.Timestamp(ARCHIVE_FIRST_DATE, tz="UTC")
    newest = pd.Timestamp(latest_archive_date(client.today()), tz="UTC")
    too_old = todo["need_start"] < first
    too_new = todo["need_end"] > newest
    for idx in todo.index[too_old]:
        note(idx, f"no weather: before {ARCHIVE_FIRST_DATE}, where the weather archive begins")
    for idx in todo.index[too_new & ~too_old]:
        ready = (todo.at[idx, "need_end"] + pd.Timedelta(days=ARCHIVE_LAG_DAYS)).date()
        note(idx, f"no weather yet: too recent — the weather archive runs about "
                  f"{ARCHIVE_LAG_DAYS} days behind; try again from {ready}")
    todo = todo[~too_old & ~too_new]

    rows: list[pd.DataFrame] = []
    unavailable: str | None = None  # why the service could not be reached (no place, no date)
    unreached: list[Any] = []       # the runs left without weather because of it
    for (lat, lon), batch_start, batch_end, members in _batches(todo):
        try:
            if unavailable is None:
                hourly = client.fetch_hourly(lat, lon, batch_start, batch_end)
            else:
                hourly = client.cached_hourly(lat, lon, batch_start, batch_end)
                if hourly is None:
                    for idx in members:
                        note(idx, f"no weather: not fetched, the weather service was "
                                  f"unreachable ({unavailable})")
                    unreached.extend(members)
                    continue
        except WeatherUnavailable as exc:
            # exc.reason names this request's place and dates; later runs are elsewhere
            cause = exc.__cause__
            unavailable = cause.reason if isinstance(cause, WeatherError) else exc.reason
            for idx in members:
                note(idx, f"no weather: {exc.reason}")
            unreached.extend(members)
            continue
        except WeatherError as exc:
            for idx in members:
                note(idx, f"no weather: {exc.reason}")
            continue
        got = _means_for(hourly, todo.loc[members])
        has_any = got[list(WEATHER_COLUMNS)].notna().any(axis=1)
        for idx in got.index[~has_any]:
            note(idx, "no weather: the archive has no values for this run's hours yet")
        for idx in got.index[has_any]:
            lacking = [c for c in WEATHER_COLUMNS if pd.isna(got.at[idx, c])]
            if lacking:
                note(idx, f"partial weather: no {', '.join(lacking)} for this run's hours")
        got = got[has_any]
        got.insert(0, "run_id", todo.loc[got.index, "run_id"].to_numpy())
        got["weather_source"] = WEATHER_SOURCE
        got["weather_fetched_utc"] = hourly.attrs.get("fetched_utc", pd.NaT)
        rows.append(got)
    if rows:
        weather = pd.concat([r for r in rows if len(r)] or [empty], axis=0)
        weather["weather_fetched_utc"] = pd.to_datetime(weather["weather_fetched_utc"], utc=True)
        weather = weather.loc[[i for i in plan.index if i in weather.index]]
        weather = weather[list(RESULT_COLUMNS)].reset_index(drop=True)
    else:
        weather = empty
    ordered = [messages[i] for i in plan.index if i in messages]
    if unavailable is not None:  # for a caller that says it once (runlog weather fetch)
        weather.attrs[UNREACHABLE] = {"reason": unavailable,
                                      "run_ids": plan.loc[unreached, "run_id"].tolist()}
    return weather, ordered


#: ``weather.attrs`` key set by :func:`weather_for_runs` when the service could not be
#: reached: ``{"reason": one line without place or date, "run_ids": runs left without}``.
UNREACHABLE = "unreachable"


def _batches(todo: pd.DataFrame):
    """Yield ((lat, lon), start_date, end_date, member_index) — one request each.

    Runs at one rounded place are sorted by date; a new batch starts when the next run's first
    day is more than :data:`BATCH_MAX_GAP_DAYS` after the batch's last day, or when the batch
    would span more than :data:`BATCH_MAX_SPAN_DAYS`.
    """
    if todo.empty:
        return
    gap = pd.Timedelta(days=BATCH_MAX_GAP_DAYS)
    span = pd.Timedelta(days=BATCH_MAX_SPAN_DAYS - 1)
    ordered = todo.sort_values(["lat_r", "lon_r", "need_start", "need_end"])
    for place, group in ordered.groupby(["lat_r", "lon_r"], sort=False):
        starts = group["need_start"].to_numpy()
        ends = group["need_end"].to_numpy()
        idx = group.index.to_numpy()
        b_first, b_last, members = starts[0], ends[0], [idx[0]]
        for k in range(1, len(idx)):  # request planning: one step per run, no per-sample loop
            new_last = max(b_last, ends[k])
            if starts[k] > b_last + gap or new_last - b_first > span:
                yield place, pd.Timestamp(b_first).date(), pd.Timestamp(b_last).date(), members
                b_first, b_last, members = starts[k], ends[k], [idx[k]]
            else:
                b_last = new_last
                members.append(idx[k])
        yield place, pd.Timestamp(b_first).date(), pd.Timestamp(b_last).date(), members


def _means_for(hourly: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Time-mean of each hourly column over each run's [start, end] (see :func:`interval_means`)."""
    knots = hourly.index.as_unit("ns").asi8 / 1e9
    start = runs["start"].dt.as_unit("ns").astype("int64").to_numpy() / 1e9
    end = runs["end"].dt.as_unit("ns").astype("int64").to_numpy() / 1e9
    out = {}
    for var, col in HOURLY_VARIABLES.items():
        shift = 1800.0 if var in PRECEDING_HOUR_MEAN else 0.0  # hour mean → its mid-hour
        values = hourly[col].to_numpy(dtype="float64") if col in hourly else np.array([])
        out[col] = interval_means(knots - shift, values, start, end)
    return pd.DataFrame(out, index=runs.index)
