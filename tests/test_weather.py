"""Weather: the real urllib code path against a local HTTP server serving hand-written fixtures.

Nothing here touches the network: the server listens on 127.0.0.1 on an ephemeral port, and an
autouse guard fails any connection to another host. Fixtures are in tests/data/weather/ (see its
README: written in the documented Open-Meteo format, not recorded from the live service).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runlog.errors import RunlogError
from runlog.weather import (
    ARCHIVE_URL,
    MAX_PAUSE_S,
    STORE_COLUMNS,
    UNREACHABLE,
    WEATHER_COLUMNS,
    WEATHER_SOURCE,
    WeatherClient,
    WeatherError,
    WeatherRangeError,
    WeatherResponseError,
    WeatherUnavailable,
    interval_means,
    parse_archive_response,
    parse_retry_after,
    round_place,
    weather_for_runs,
)

DATA = Path(__file__).parent / "data" / "weather"
DAY = "archive_2024-07-02_lat52.5_lon13.4.json"
WEEK = "archive_2024-07-01_2024-07-07_lat52.5_lon13.4.json"
NOW = datetime(2024, 8, 1, 12, 0, tzinfo=UTC)
"""Fixed 'now' for the client: the July 2024 fixtures are well inside the archive."""


def fixture_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


# --- no network, ever -------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _only_localhost(monkeypatch):
    """Fail any connection that is not to 127.0.0.1 (urllib/http.client use create_connection)."""
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        host = address[0]
        if host not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to reach {host}: tests must not use the network")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


# --- a local archive server ---------------------------------------------------------------------
@dataclass
class Reply:
    """One scripted answer: status, body, headers, and delays before headers / mid-body [s]."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    body_delay_s: float = 0.0
    drip_s: float = 0.0


class FakeArchive:
    """Answers GET /v1/archive from a queue of replies (or a router), recording each query."""

    def __init__(self) -> None:
        self.queue: list[Reply] = []
        self.default: Reply | None = None
        self.router = None
        self.requests: list[dict[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.url = ""

    def next_reply(self, query: dict[str, str]) -> Reply:
        with self.lock:
            self.requests.append(query)
            if self.router is not None:
                return self.router(query)
            if self.queue:
                return self.queue.pop(0)
            if self.default is not None:
                return self.default
        return Reply(500, b'{"error": true, "reason": "no reply scripted"}')

    def serve(self, name: str, status: int = 200, **kw) -> None:
        self.queue.append(Reply(status, fixture_bytes(name), **kw))


def _handler(archive: FakeArchive):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            query["_path"] = parts.path
            archive.headers.append(dict(self.headers.items()))
            reply = archive.next_reply(query)
            if reply.delay_s and archive.stop.wait(reply.delay_s):
                return
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(reply.body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if reply.drip_s:
                    for k in range(0, len(reply.body), 100):  # 100 bytes at a time
                        self.wfile.write(reply.body[k:k + 100])
                        self.wfile.flush()
                        if archive.stop.wait(reply.drip_s):
                            return
                elif reply.body_delay_s:
                    half = len(reply.body) // 2
                    self.wfile.write(reply.body[:half])
                    self.wfile.flush()
                    if archive.stop.wait(reply.body_delay_s):
                        return
                    self.wfile.write(reply.body[half:])
                else:
                    self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def log_message(self, format, *args):  # quiet
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


@pytest.fixture
def archive():
    fake = FakeArchive()
    server = _Server(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1/archive"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Sleeps(list):
    """Records waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(archive: FakeArchive, tmp_path: Path, sleeps: Sleeps | None = None, **kw
                ) -> WeatherClient:
    kw.setdefault("timeout_s", 5.0)
    kw.setdefault("backoff_s", 0.5)
    kw.setdefault("cache_dir", tmp_path / "weather-cache")
    if sleeps is not None:
        kw["sleep"] = sleeps
    kw.setdefault("clock", lambda: NOW)
    return WeatherClient(base_url=archive.url, **kw)


def closed_port_url() -> str:
    """A 127.0.0.1 URL nobody listens on: connection refused, like being offline."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/archive"


# --- fetch_hourly: a normal answer ----------------------------------------------------------------
def test_normal_response_parsed_into_utc_hourly_frame(archive, tmp_path, sleeps):
    archive.serve(DAY)
    client = make_client(archive, tmp_path, sleeps)
    frame = client.fetch_hourly(52.5, 13.4, date(2024, 7, 2), date(2024, 7, 2))

    assert list(frame.columns) == list(WEATHER_COLUMNS)
    assert len(frame) == 24
    assert str(frame.index.tz) == "UTC"
    assert frame.index[0] == pd.Timestamp("2024-07-02 00:00", tz="UTC")
    assert (frame.index[1:] - frame.index[:-1] == pd.Timedelta(hours=1)).all()
    at10 = frame.loc[pd.Timestamp("2024-07-02 10:00", tz="UTC")]
    assert at10.to_dict() == {"air_temp_c": 20.4, "humidity_pct": 55.0, "wind_kmh": 15.1,
                              "shortwave_w_m2": 652.0}
    assert frame.attrs["from_cache"] is False
    assert frame.attrs["fetched_utc"] == pd.Timestamp(NOW)
    assert frame.attrs["latitude_deg"] == 52.5
    assert sleeps == []


def test_request_carries_documented_parameters(archive, tmp_path):
    archive.serve(DAY)
    make_client(archive, tmp_path).fetch_hourly(52.5349, 13.3712, "2024-07-02", "2024-07-02")

    assert len(archive.requests) == 1
    query = archive.requests[0]
    assert query["_path"] == "/v1/archive"
    assert query["latitude"] == "52.5" and query["longitude"] == "13.4"  # rounded to 0.1°
    assert query["start_date"] == query["end_date"] == "2024-07-02"
    assert query["hourly"] == ("temperature_2m,relative_humidity_2m,wind_speed_10m,"
                               "shortwave_radiation")
    assert query["timezone"] == "GMT"
    assert query["wind_speed_unit"] == "kmh"
    assert archive.headers[0]["User-Agent"].startswith("runlog/")


def test_default_base_url_is_the_archive_endpoint():
    assert ARCHIVE_URL == "https://archive-api.open-meteo.com/v1/archive"
    assert WeatherClient().base_url == ARCHIVE_URL


# --- retries -----------------------------------------------------------------------------------
def test_500_then_success_is_retried(archive, tmp_path, sleeps):
    archive.serve("server_error.json", status=500)
    archive.serve(DAY)
    frame = make_client(archive, tmp_path, sleeps).fetch_hourly(52.5, 13.4, "2024-07-02",
                                                                 "2024-07-02")
    assert len(frame) == 24
    assert len(archive.requests) == 2
    assert sleeps == [0.5]  # backoff_s before the first retry


def test_5xx_backoff_doubles_then_gives_up(archive, tmp_path, sleeps):
    archive.default = Reply(503, fixture_bytes("server_error.json"))
    client = make_client(archive, tmp_path, sleeps, max_retries=3)
    with pytest.raises(WeatherUnavailable) as info:
        client.fetch_hourly(52.5, 13.4, "2024-07-02", "2024-07-02")
    assert len(archive.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert "HTTP 503" in info.value.reason and "4 attempts" in info.value.reason
    assert not list((tmp_path / "weather-cache").glob("*.json"))  # errors are never cached


def test_429_retry_after_is_honoured(archive, tmp_path, sleeps):
    archive.serve("rate_limited.json", status=429, headers={"Retry-After": "7"})
    archive.serve(DAY)
    frame = make_client(archive, tmp_path, sleeps).fetch_hourly(52.5, 13.4, "2024-07-02",
                                                                 "2024-07-02")
    assert len(frame) == 24
    assert len(archive.requests) == 2
    assert sleeps == [7.0]  # the server's wait, not the 0.5 s backoff


def test_429_retry_after_really_waits(archive, tmp_path):
    archive.serve("rate_limited.json", status=429, headers={"Retry-After": "1"})
    archive.serve(DAY)
    client = make_client(archive, tmp_path, backoff_s=0.0)  # real time.sleep
    began = time.monotonic()
    client.fetch_hourly(52.5, 13.4, "2024-07-02", "2024-07-02")
    assert time.monotonic() - began >= 0.95
    assert len(archive.requests) == 2


def test_429_with_long_retry_after_gives_up_at_once(archive, tmp_path, sleeps):
    archive.default = Reply(429, fixture_bytes("rate_limited.json"),
                            headers={"Retry-After": "3600"})
    with pytest.raises(WeatherUnavailable) as info:
        make_client(archive, tmp_path, sleeps).fetch_hourly(52.5, 13.4, "2024-07-02",
                                                            "2024-07-02")
    assert len(archive.requests) == 1 and sleeps == []
    assert "3600 s" in info.value.reason
    assert "Minutely API request limit exceeded" in info.value.reason


def test_retry_after_http_date():
    now = datetime(2024, 8, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Aug 2024 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Thu, 01 Aug 2024 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


# --- timeouts and offline -----------------------------------------------------------------------
def test_timeout_is_clean_and_bounded(archive, tmp_path, sleeps):
    archive.default = Reply(200, fixture_bytes(DAY), delay_s=5.0)
    client = make_client(archive, tmp_path, sleeps, timeout_s=0.3, max_retries=1)
    began = time.monotonic()
    with pytest.raises(WeatherUnavailable) as info:
        client.fetch_hourly(52.5, 13.4, "2024-07-02", "2024-07-02")
    elapsed = time.monotonic() - began
    assert elapsed < 2.0, elapsed
    assert len(archive.requests) == 2
    assert "no answer within 0.3 s" in info.value.reason
    assert "\n" not in info.value.one_line()


def test_stalled_body_times_out(archive, tmp_path, sleeps):
    archive.default = Reply(200, fixture_bytes(DAY), body_delay_s=5.0)
    client = make_client(archive, tmp_path, sleeps, timeout_s=0.3, max_retries=0)
    began = time.monotonic()
    with pytest.raises(WeatherUnavailable, match="no answer within"):
        client.fetch_hourly(52.5, 13.4, "2024-07-02", "2024-07-02")
    assert time.monotonic() - began < 2.0


def test_slow_drip_body_is_bounded_by_the_attempt_deadline(archive, tmp_path, sleeps):
    # every recv succeeds within the socket timeout, but the whole body would take ~3.4 s
    archive.default = Reply(200, fixture_bytes(DAY), drip_s=0.2)
    client = make_client(archive, tmp_path, sleeps, timeout_s=0.5, max_retries=0)
    began = time.monotonic()
    with pytest.raises(WeatherUnavailable, match=r"no answer within 0\.5 s"):
        client.fetch_hourly(52.5, 13.4, "2024-07-02", "2024-07-02")
    assert time.monotonic() - began < 1.5


def test_offline_fails_fast_without_retries(tmp_path, sleeps):
    client = WeatherClient(base_url=closed_port_url(), cache_dir=tmp_path, sleep=sleeps,
                           clock=lambda: NOW)
    with pytest.raises(WeatherUnavailable, match="offline"):
        client.fetch_hourly(52.5, 13.4, "2024-07-02", "2024-07-02")
    assert client.requests_made == 1 and sleeps == []


# --- bad answers ---------------------------------------------------------------------------------
def test_malformed_json_is_a_typed_error(archive, tmp_path, sleeps):
    archive.serve("malformed_truncated.json")
    with pytest.raises(WeatherResponseError) as info:
        make_client(archive, tmp_path, sleeps).fetch_hourly(52.5, 13.4, "2024-07-02",
                                                            "2024-07-02")
    assert "malformed JSON" in info.value.reason
    assert len(archive.requests) == 1 and sleeps == []  # not retried
    assert isinstance(info.value, RunlogError)
    assert "\n" not in info.value.one_line()


def test_error_true_with_400_gives_the_reason(archive, tmp_path, sleeps):
    archive.serve("error_true.json", status=400)
    with pytest.raises(WeatherResponseError) as info:
        make_client(archive, tmp_path, sleeps).fetch_hourly(52.5, 13.4, "2024-07-02",
                                                            "2024-07-02")
    assert "HTTP 400" in info.value.reason
    assert "out of allowed range" in info.value.reason
    assert "52.5, 13.4" in info.value.reason  # names the place and dates
    assert len(archive.requests) == 1 and sleeps == []


def test_error_true_with_200_is_still_an_error(archive, tmp_path):
    archive.serve("error_true.json", status=200)
    with pytest.raises(WeatherResponseError, match="weather service error: Parameter"):
        make_client(archive, tmp_path).fetch_hourly(52.5, 13.4, "2024-07-02", "2024-07-02")


def test_missing_field_is_a_typed_error(archive, tmp_path):
    archive.serve("missing_humidity.json")
    with pytest.raises(WeatherResponseError, match="lacks hourly relative_humidity_2m"):
        make_client(archive, tmp_path).fetch_hourly(52.5, 13.4, "2024-07-02", "2024-07-02")


def test_parse_rejects_wrong_units_lengths_and_dates():
    good = json.loads(fixture_bytes(DAY))
    bad_units = json.loads(fixture_bytes(DAY))
    bad_units["hourly_units"]["temperature_2m"] = "°F"
    with pytest.raises(WeatherResponseError, match="°F"):
        parse_archive_response(bad_units)
    short = json.loads(fixture_bytes(DAY))
    short["hourly"]["wind_speed_10m"] = short["hourly"]["wind_speed_10m"][:-1]
    with pytest.raises(WeatherResponseError, match="wind_speed_10m does not match"):
        parse_archive_response(short)
    with pytest.raises(WeatherResponseError, match="not the days asked for"):
        parse_archive_response(good, date(2024, 7, 3), date(2024, 7, 3))
    with pytest.raises(WeatherResponseError, match="not a JSON object"):
        parse_archive_response([1, 2])
    no_time = json.loads(fixture_bytes(DAY))
    no_time["hourly"]["time"][3] = None
    with pytest.raises(WeatherResponseError, match="not increasing"):
        parse_archive_response(no_time)
    unsorted = json.loads(fixture_bytes(DAY))
    unsorted["hourly"]["time"][3], unsorted["hourly"]["time"][4] = \
        unsorted["hourly"]["time"][4], unsorted["hourly"]["time"][3]
    with pytest.raises(WeatherResponseError, match="not increasing"):
        parse_archive_response(unsorted)


def test_parse_applies_utc_offset():
    doc = json.loads(fixture_bytes(DAY))
    doc["utc_offset_seconds"] = 7200  # as if timezone=Europe/Berlin (CEST) had been asked for
    frame = parse_archive_response(doc)
    assert frame.index[0] == pd.Timestamp("2024-07-01 22:00", tz="UTC")


# --- range guards ---------------------------------------------------------------------------------
def test_dates_outside_the_archive_are_never_requested(archive, tmp_path):
    client = make_client(archive, tmp_path)
    newest = NOW.date() - timedelta(days=5)
    with pytest.raises(WeatherRangeError, match="too recent"):
        client.fetch_hourly(52.5, 13.4, newest, newest + timedelta(days=1))
    with pytest.raises(WeatherRangeError, match="1940"):
        client.fetch_hourly(52.5, 13.4, date(1939, 12, 31), date(1940, 1, 2))
    with pytest.raises(WeatherRangeError, match="before start"):
        client.fetch_hourly(52.5, 13.4, date(2024, 7, 3), date(2024, 7, 2))
    with pytest.raises(WeatherError, match="invalid position"):
        client.fetch_hourly(95.0, 13.4, date(2024, 7, 2), date(2024, 7, 2))
    assert archive.requests == []


def test_round_place():
    assert round_place(52.5349, 13.3712) == (52.5, 13.4)
    assert round_place(-33.95, -70.65) == (-34.0, -70.7)  # half away from zero
    assert round_place(-0.04, 0.04) == (0.0, 0.0)
    assert str(round_place(-0.04, 0.0)[0]) == "0.0"  # no "-0.0" in cache keys


# --- cache ---------------------------------------------------------------------------------------
def test_cache_hit_makes_no_request(archive, tmp_path):
    archive.serve(DAY)
    client = make_client(archive, tmp_path)
    first = client.fetch_hourly(52.5, 13.4, "2024-07-02", "2024-07-02")
    second = client.fetch_hourly(52.51, 13.42, "2024-07-02", "2024-07-02")  # same 0.1° place
    again = make_client(archive, tmp_path).fetch_hourly(52.5, 13.4, "2024-07-02", "2024-07-02")
    assert len(archive.requests) == 1
    assert second.attrs["from_cache"] is True
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first, again)
    assert second.attrs["fetched_utc"] == pd.Timestamp(NOW)
    files = list((tmp_path / "weather-cache").glob("*.json"))
    assert [f.name for f in files] == ["lat+52.5_lon+013.4_2024-07-02_2024-07-02.json"]


def test_cached_week_serves_a_day_inside_it(archive, tmp_path):
    archive.serve(WEEK)
    client = make_client(archive, tmp_path)
    client.fetch_hourly(52.5, 13.4, "2024-07-01", "2024-07-07")
    day = client.fetch_hourly(52.5, 13.4, "2024-07-03", "2024-07-03")
    assert len(archive.requests) == 1
    assert len(day) == 24 and day.index[0] == pd.Timestamp("2024-07-03", tz="UTC")


def test_damaged_cache_file_is_refetched(archive, tmp_path):
    cache = tmp_path / "weather-cache"
    cache.mkdir()
    (cache / "lat+52.5_lon+013.4_2024-07-02_2024-07-02.json").write_text("{not json")
    archive.serve(DAY)
    frame = make_client(archive, tmp_path).fetch_hourly(52.5, 13.4, "2024-07-02", "2024-07-02")
    assert len(frame) == 24 and len(archive.requests) == 1
    assert json.loads((cache / "lat+52.5_lon+013.4_2024-07-02_2024-07-02.json").read_text())


# --- interpolation -------------------------------------------------------------------------------
def test_interval_means_by_hand():
    knots = np.array([0.0, 3600.0, 7200.0])
    temps = np.array([20.4, 21.6, 22.5])
    # 10:30–11:30 on knots 10:00/11:00/12:00: halves average 21.3 and 21.825 → 21.5625
    # 10:00–12:00: trapezoids (20.4+21.6)/2 and (21.6+22.5)/2 → 21.525
    # zero length at 10:15: 20.4 + 0.25·1.2 = 20.7
    got = interval_means(knots, temps, np.array([1800.0, 0.0, 900.0]),
                         np.array([5400.0, 7200.0, 900.0]))
    np.testing.assert_allclose(got, [21.5625, 21.525, 20.7])


def test_interval_means_never_extrapolates_or_bridges_holes():
    knots = np.arange(0, 10) * 3600.0
    values = np.arange(10, dtype="float64")
    values[5:9] = np.nan  # 4 h hole between 04:00 and 09:00
    got = interval_means(knots, values, np.array([-60.0, 3600.0, 3 * 3600.0, 8.5 * 3600]),
                         np.array([600.0, 7200.0, 9 * 3600.0, 9 * 3600.0]))
    assert np.isnan(got[0])  # starts before the data
    assert got[1] == pytest.approx(1.5)
    assert np.isnan(got[2])  # spans the hole
    assert np.isnan(got[3])  # inside the hole's last segment
    assert np.isnan(interval_means(knots[:1], values[:1], np.array([1.0]), np.array([2.0])))[0]


# --- weather_for_runs -----------------------------------------------------------------------------
def runs_frame(rows: list[dict]) -> pd.DataFrame:
    base = {"moving_s": np.nan, "elapsed_s": 3600.0, "has_gps": True, "sub_sport": None,
            "start_lat_deg": 52.52, "start_lon_deg": 13.41}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    frame["start_utc"] = pd.to_datetime(frame["start_utc"], utc=True)
    return frame


def test_weather_for_runs_hand_computed_means(archive, tmp_path):
    archive.serve(DAY)
    runs = runs_frame([
        {"run_id": "hour", "start_utc": "2024-07-02 10:30"},
        {"run_id": "zero", "start_utc": "2024-07-02 10:15", "elapsed_s": 0.0},
        {"run_id": "moving", "start_utc": "2024-07-02 10:00", "elapsed_s": np.nan,
         "moving_s": 7200.0},
        {"run_id": "left_on", "start_utc": "2024-07-02 10:00", "elapsed_s": 8 * 3600.0,
         "moving_s": 3600.0},
    ])
    weather, messages = weather_for_runs(runs, make_client(archive, tmp_path))
    assert messages == []
    assert len(archive.requests) == 1
    assert archive.requests[0]["start_date"] == archive.requests[0]["end_date"] == "2024-07-02"
    assert list(weather.columns) == ["run_id", *WEATHER_COLUMNS, "weather_source",
                                     "weather_fetched_utc"]
    got = weather.set_index("run_id")
    # 10:30–11:30 by hand (fixture hours 10, 11, 12: 20.4/21.6/22.5 °C, 55/51/48 %,
    # 15.1/16.2/17.0 km/h): each half hour is a trapezoid, then the two halves averaged.
    assert got.loc["hour", "air_temp_c"] == pytest.approx((21.3 + 21.825) / 2)
    assert got.loc["hour", "humidity_pct"] == pytest.approx((52.0 + 50.25) / 2)
    assert got.loc["hour", "wind_kmh"] == pytest.approx((15.925 + 16.4) / 2)
    # shortwave is the mean of the preceding hour: 724 W/m² (10–11) sits at 10:30, 760 (11–12)
    # at 11:30, so the run's mean is (724 + 760)/2.
    assert got.loc["hour", "shortwave_w_m2"] == pytest.approx(742.0)
    # zero-length run: the value at 10:15 (20.4 + 0.25·1.2; 652 + 0.75·(724 − 652))
    assert got.loc["zero", "air_temp_c"] == pytest.approx(20.7)
    assert got.loc["zero", "shortwave_w_m2"] == pytest.approx(706.0)
    # moving_s used when elapsed_s is missing: 10:00–12:00
    assert got.loc["moving", "air_temp_c"] == pytest.approx((21.0 + 22.05) / 2)
    # watch left running: elapsed 8 h, moving 1 h → window 1 h + MAX_PAUSE_S = 10:00–12:00
    assert got.loc["left_on", "air_temp_c"] == pytest.approx((21.0 + 22.05) / 2)
    assert (weather["weather_source"] == WEATHER_SOURCE).all()
    assert (weather["weather_fetched_utc"] == pd.Timestamp(NOW)).all()


def test_batching_one_request_for_a_week_at_one_place(archive, tmp_path):
    archive.serve(WEEK)
    starts = ["2024-07-01 06:00", "2024-07-02 17:30", "2024-07-04 05:45", "2024-07-05 12:00",
              "2024-07-07 06:10"]
    places = [(52.52, 13.41), (52.48, 13.38), (52.5, 13.44), (52.54, 13.36), (52.46, 13.35)]
    runs = runs_frame([{"run_id": f"r{i}", "start_utc": s, "start_lat_deg": la,
                        "start_lon_deg": lo}
                       for i, (s, (la, lo)) in enumerate(zip(starts, places, strict=True))])
    weather, messages = weather_for_runs(runs, make_client(archive, tmp_path))
    assert messages == []
    assert len(archive.requests) == 1
    query = archive.requests[0]
    assert (query["start_date"], query["end_date"]) == ("2024-07-01", "2024-07-07")
    assert weather["run_id"].tolist() == [f"r{i}" for i in range(5)]  # input order kept
    assert weather[list(WEATHER_COLUMNS)].notna().all().all()
    # cross-check one run against the fixture itself: r3 runs 12:00–13:00 on day 5 (index 4)
    doc = json.loads(fixture_bytes(WEEK))["hourly"]
    k = 4 * 24 + 12
    expected = (doc["temperature_2m"][k] + doc["temperature_2m"][k + 1]) / 2
    assert weather.loc[3, "air_temp_c"] == pytest.approx(expected)


def test_two_places_two_requests_and_far_dates_split(archive, tmp_path):
    def router(query):
        return Reply(200, fixture_bytes(DAY)) if query["latitude"] == "52.5" else \
            Reply(400, fixture_bytes("error_true.json"))

    archive.router = router
    runs = runs_frame([
        {"run_id": "berlin", "start_utc": "2024-07-02 10:00"},
        {"run_id": "paris", "start_utc": "2024-07-02 10:00", "start_lat_deg": 48.86,
         "start_lon_deg": 2.35},
    ])
    weather, messages = weather_for_runs(runs, make_client(archive, tmp_path))
    assert len(archive.requests) == 2
    assert weather["run_id"].tolist() == ["berlin"]
    assert len(messages) == 1 and messages[0].startswith("paris: no weather:")
    assert "out of allowed range" in messages[0]


def test_indoor_and_no_gps_runs_are_skipped_without_requests(archive, tmp_path):
    runs = runs_frame([
        {"run_id": "tm", "start_utc": "2024-07-02 10:00", "sub_sport": "treadmill"},
        {"run_id": "in", "start_utc": "2024-07-02 11:00", "sub_sport": "indoor_running"},
        {"run_id": "Indoor", "start_utc": "2024-07-02 11:00", "sub_sport": "Indoor"},
        {"run_id": "nogps", "start_utc": "2024-07-02 12:00", "has_gps": False},
        {"run_id": "nopos", "start_utc": "2024-07-02 12:00", "start_lat_deg": np.nan},
    ])
    weather, messages = weather_for_runs(runs, make_client(archive, tmp_path))
    assert weather.empty and archive.requests == []
    assert len(messages) == 5
    assert messages[0] == "tm: no weather: indoor run (treadmill/indoor) — no outdoor weather"
    assert messages[1].startswith("in: no weather: indoor run")
    assert messages[2].startswith("Indoor: no weather: indoor run")
    assert messages[3] == "nogps: no weather: no GPS, so no place for weather"
    assert messages[4].startswith("nopos: no weather: no start position")


def test_run_from_last_night_is_too_recent(archive, tmp_path):
    last_night = NOW - timedelta(hours=10)
    runs = runs_frame([{"run_id": "late", "start_utc": last_night}])
    weather, messages = weather_for_runs(runs, make_client(archive, tmp_path))
    assert weather.empty and archive.requests == []
    assert messages == ["late: no weather yet: too recent — the weather archive runs about 5 "
                        "days behind; try again from 2024-08-06"]


def test_run_from_last_night_with_the_real_clock(archive, tmp_path):
    client = WeatherClient(base_url=archive.url, cache_dir=tmp_path)  # real clock
    runs = runs_frame([{"run_id": "late",
                        "start_utc": datetime.now(UTC) - timedelta(hours=10)}])
    weather, messages = weather_for_runs(runs, client)
    assert weather.empty and archive.requests == [] and client.requests_made == 0
    assert "too recent" in messages[0]


def test_run_before_1940_is_not_requested(archive, tmp_path):
    runs = runs_frame([{"run_id": "old", "start_utc": "1939-06-01 10:00"}])
    weather, messages = weather_for_runs(runs, make_client(archive, tmp_path))
    assert weather.empty and archive.requests == []
    assert "before 1940-01-01" in messages[0]


def test_offline_returns_what_the_cache_has_and_names_the_rest(archive, tmp_path, sleeps):
    archive.serve(DAY)
    make_client(archive, tmp_path).fetch_hourly(52.5, 13.4, "2024-07-02", "2024-07-02")
    offline = WeatherClient(base_url=closed_port_url(), cache_dir=tmp_path / "weather-cache",
                            sleep=sleeps, clock=lambda: NOW)
    runs = runs_frame([
        {"run_id": "paris", "start_utc": "2024-06-02 10:00", "start_lat_deg": 48.86,
         "start_lon_deg": 2.35},
        {"run_id": "rome", "start_utc": "2024-06-03 10:00", "start_lat_deg": 41.9,
         "start_lon_deg": 12.5},
        {"run_id": "berlin", "start_utc": "2024-07-02 10:00"},
    ])
    weather, messages = weather_for_runs(runs, offline)
    assert weather["run_id"].tolist() == ["berlin"]  # from the cache
    assert offline.requests_made == 1  # gave up on the service after the first failure
    assert len(messages) == 2
    assert all("offline" in m for m in messages)
    assert {m.split(":")[0] for m in messages} == {"paris", "rome"}
    # each run's line names its own place or none: never the first request's
    places = {"paris": "48.9, 2.4 for 2024-06-02", "rome": "41.9, 12.5 for 2024-06-03"}
    tried, untried = sorted(messages, key=lambda m: "not fetched" in m)
    run = tried.split(":")[0]
    assert places[run] in tried  # the one request made: its own place and day
    other = untried.split(":")[0]
    assert untried.startswith(f"{other}: no weather: not fetched, the weather service was "
                              "unreachable (cannot reach the weather service (offline?)")
    assert places[run] not in untried and places[other] not in untried
    unreachable = weather.attrs[UNREACHABLE]
    assert sorted(unreachable["run_ids"]) == ["paris", "rome"]
    assert unreachable["reason"].startswith("cannot reach the weather service (offline?)")


def test_service_timeout_leaves_runs_without_weather(archive, tmp_path, sleeps):
    archive.default = Reply(200, fixture_bytes(DAY), delay_s=5.0)
    client = make_client(archive, tmp_path, sleeps, timeout_s=0.2, max_retries=0)
    runs = runs_frame([{"run_id": "a", "start_utc": "2024-07-02 10:00"}])
    weather, messages = weather_for_runs(runs, client)
    assert weather.empty
    assert messages and "no answer within 0.2 s" in messages[0]


def test_archive_nulls_give_a_message_not_numbers(archive, tmp_path):
    archive.serve("archive_2024-07-02_nulls.json")
    runs = runs_frame([
        {"run_id": "morning", "start_utc": "2024-07-02 08:00"},
        {"run_id": "evening", "start_utc": "2024-07-02 19:00", "elapsed_s": 1800.0},
    ])
    weather, messages = weather_for_runs(runs, make_client(archive, tmp_path))
    assert weather["run_id"].tolist() == ["morning"]
    assert messages == ["evening: no weather: the archive has no values for this run's hours "
                        "yet"]


def test_empty_runs_and_missing_position_columns(archive, tmp_path):
    client = make_client(archive, tmp_path)
    weather, messages = weather_for_runs(
        runs_frame([{"run_id": "a", "start_utc": "2024-07-02 10:00"}]).iloc[:0], client)
    assert weather.empty and messages == []
    assert weather.columns[0] == "run_id"
    bare = pd.DataFrame({"run_id": ["x"], "start_utc": [pd.Timestamp("2024-07-02", tz="UTC")]})
    weather, messages = weather_for_runs(bare, client)
    assert weather.empty and messages[0].startswith("x: no weather: no start position")
    assert archive.requests == []


def test_store_column_names_do_not_collide_with_annotations():
    assert MAX_PAUSE_S == 3600.0
    assert STORE_COLUMNS == {"air_temp_c": "weather_air_temp_c",
                             "humidity_pct": "weather_humidity_pct",
                             "wind_kmh": "weather_wind_kmh",
                             "shortwave_w_m2": "weather_shortwave_w_m2"}


def test_errors_are_runlog_errors():
    assert issubclass(WeatherError, RunlogError)
    for cls in (WeatherUnavailable, WeatherResponseError, WeatherRangeError):
        assert issubclass(cls, WeatherError)
