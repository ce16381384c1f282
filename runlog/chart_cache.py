"""The weekly chart's data for the whole history, cached with the assessment; any window of it
cropped without pandas.

Whenever :class:`runlog.api.RunLog` computes the risk assessment it also computes the chart's
:class:`~runlog.chart_spec.ChartData` for every week from the first to the last week with
runs (:func:`runlog.chart.chart_history`, pandas) and caches it beside the assessment, under
the same key (:data:`CACHE_NAME`). ``runlog chart`` then needs neither pandas nor the store's
tables: :func:`chart_data_from_cache` reads that entry and crops it to the window asked for
with numpy, exactly as :func:`runlog.chart.chart_data_from_log` computes it (the weekly
numbers, ACWR included, always use the whole history; a window keeps whole weeks, and the
high-risk markers of the weeks it keeps with their stacking).

:func:`chart_data_from_cache` answers only when it is sure to give what the pandas path
gives; anything unusual (no cached entry, a store of another format or schema version, a
``--since``/``--until`` that is not a plain ``YYYY-MM-DD`` day, a damaged entry, any read
error) returns None and the caller takes the pandas path, which also reports errors.

The entry is an uncompressed ``.npz`` read with ``allow_pickle=False``: plain arrays, texts as
fixed-width unicode, never pickled objects (a store's files run no code when read).

Imports only the standard library at import time (numpy when an entry is read or written):
the CLI uses it before deciding whether pandas is needed.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from runlog.chart_spec import DEFAULT_CHART_WEEKS, WEEK_DAYS, ChartData
from runlog.derived_cache import DerivedCache, current_manifest

if TYPE_CHECKING:
    import numpy as np

#: Name of the cached entry, stored under the assessment's key (``DerivedCache.key("assessment")``).
CACHE_NAME = "chart-history"
#: Layout of the entry's arrays; bump when they change (an older entry is then a miss).
ENTRY_VERSION = 1
#: Risk levels as stored (code = position; -1 = not assessed), lowest first as
#: :data:`runlog.weekly.LEVELS` (that module needs pandas).
LEVELS: tuple[str, ...] = ("low", "moderate", "high")
#: A window bound this path understands: a plain local day. Anything else that pandas may
#: still parse (other ISO forms, times, zones) is left to the pandas path.
DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
#: Years a bound may have here: inside pandas' datetime64[ns] range (1677–2262), where both
#: paths compare the same instants; beyond it the pandas path decides (and errs).
BOUND_YEARS = (1700, 2200)
#: The title's day format (as :func:`runlog.chart.default_period` formats a Timestamp).
PERIOD_DAY_FORMAT = "%-d %b %Y"

_DAY_ARRAYS = ("week_start", "marker_day")  # datetime64[ns], stored as int64 ns
_ARRAYS: dict[str, str] = {  # name → numpy dtype kind stored
    "week_start": "i", "week_runs": "i", "week_km": "f", "week_acwr": "f", "week_level": "i",
    "marker_day": "i", "marker_base_km": "f", "marker_stack": "i", "marker_run_id": "U",
    "marker_rules": "U", "version": "i",
}


def history_bytes(history: ChartData) -> bytes:
    """The cache entry for ``history`` (the chart data of every week, any title)."""
    import numpy as np

    codes = [LEVELS.index(lvl) if lvl in LEVELS else -1 for lvl in history.week_level]
    arrays = {
        "week_start": history.week_start.astype("datetime64[ns]").view("int64"),
        "week_runs": history.week_runs.astype("int64"),
        "week_km": history.week_km.astype("float64"),
        "week_acwr": history.week_acwr.astype("float64"),
        "week_level": np.array(codes, dtype="int64"),
        "marker_day": history.marker_day.astype("datetime64[ns]").view("int64"),
        "marker_base_km": history.marker_base_km.astype("float64"),
        "marker_stack": history.marker_stack.astype("int64"),
        "marker_run_id": np.array(history.marker_run_id, dtype="U"),
        "marker_rules": np.array(history.marker_rules, dtype="U"),
        "version": np.array([ENTRY_VERSION], dtype="int64"),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def history_from_bytes(payload: bytes) -> ChartData | None:
    """The :class:`ChartData` of every week from :func:`history_bytes`; None when the entry is
    of another layout or its arrays do not fit together."""
    import numpy as np

    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        if set(npz.files) != set(_ARRAYS):
            return None
        arrays = {name: npz[name] for name in _ARRAYS}
    if any(a.ndim != 1 or a.dtype.kind != _ARRAYS[n] for n, a in arrays.items()):
        return None
    if arrays["version"].tolist() != [ENTRY_VERSION]:
        return None
    weeks = {len(arrays[n]) for n in ("week_start", "week_runs", "week_km", "week_acwr",
                                      "week_level")}
    markers = {len(arrays[n]) for n in ("marker_day", "marker_base_km", "marker_stack",
                                        "marker_run_id", "marker_rules")}
    if len(weeks) != 1 or len(markers) != 1:
        return None
    codes = arrays["week_level"].tolist()
    if any(not -1 <= c < len(LEVELS) for c in codes):
        return None
    return ChartData(
        week_start=arrays["week_start"].view("datetime64[ns]"),
        week_runs=arrays["week_runs"],
        week_km=arrays["week_km"],
        week_acwr=arrays["week_acwr"],
        week_level=tuple(LEVELS[c] if c >= 0 else None for c in codes),
        marker_day=arrays["marker_day"].view("datetime64[ns]"),
        marker_base_km=arrays["marker_base_km"],
        marker_stack=arrays["marker_stack"],
        marker_run_id=tuple(arrays["marker_run_id"].tolist()),
        marker_rules=tuple(arrays["marker_rules"].tolist()),
        title_period="",
    )


def crop(history: ChartData, since: date | None = None, until: date | None = None,
         n_weeks: int = DEFAULT_CHART_WEEKS) -> ChartData:
    """The chart data of a window of ``history`` (every week, oldest first).

    As :func:`runlog.chart.chart_data_from_log`: the weeks overlapping the local days
    [``since``, ``until``] (a week from its Monday to its Sunday), or without either bound
    the last ``n_weeks`` weeks; the high-risk markers of the weeks kept (their stacking
    counts within a week, so it stays); the title's period from the first Monday to the last
    Sunday kept ('' when none is).
    """
    import numpy as np

    starts = history.week_start
    keep = np.ones(len(starts), dtype=bool)
    if since is not None:
        monday = since - timedelta(days=since.weekday())
        keep &= starts >= np.datetime64(monday, "ns")
    if until is not None:
        keep &= starts <= np.datetime64(until, "ns")
    if since is None and until is None:
        keep[: max(0, len(starts) - n_weeks)] = False
    kept = np.flatnonzero(keep)
    shown = starts[kept]
    marker_days = history.marker_day.astype("datetime64[D]")
    marker_weeks = _monday(marker_days).astype("datetime64[ns]")
    near = np.flatnonzero(np.isin(marker_weeks, shown))
    return ChartData(
        week_start=shown,
        week_runs=history.week_runs[kept],
        week_km=history.week_km[kept],
        week_acwr=history.week_acwr[kept],
        week_level=tuple(history.week_level[i] for i in kept.tolist()),
        marker_day=history.marker_day[near],
        marker_base_km=history.marker_base_km[near],
        marker_stack=history.marker_stack[near],
        marker_run_id=tuple(history.marker_run_id[i] for i in near.tolist()),
        marker_rules=tuple(history.marker_rules[i] for i in near.tolist()),
        title_period=_period(shown),
    )


def _monday(days: np.ndarray) -> np.ndarray:
    """Monday of each datetime64[D] day's week (1970-01-01 was a Thursday)."""
    weekday = (days.view("int64") + 3) % WEEK_DAYS  # 0 = Monday
    return days - weekday.astype("timedelta64[D]")


def _period(week_start: np.ndarray) -> str:
    """'4 Jan 2021 – 28 Mar 2021' from the first Monday to the last Sunday; '' for none."""
    if len(week_start) == 0:
        return ""
    first = week_start.min().astype("datetime64[D]").item()
    last = week_start.max().astype("datetime64[D]").item() + timedelta(days=WEEK_DAYS - 1)
    return f"{first:{PERIOD_DAY_FORMAT}} – {last:{PERIOD_DAY_FORMAT}}"


def parse_bound(text: str | None) -> date | None:
    """A ``YYYY-MM-DD`` local day; ValueError for anything else (left to pandas)."""
    if text is None:
        return None
    if not DAY_PATTERN.fullmatch(text):
        raise ValueError(f"not a plain day: {text!r}")
    day = date.fromisoformat(text)
    if not BOUND_YEARS[0] <= day.year <= BOUND_YEARS[1]:
        raise ValueError(f"outside the years compared here: {text!r}")
    return day


def chart_data_from_cache(root: str | os.PathLike, since: str | None = None,
                          until: str | None = None,
                          n_weeks: int = DEFAULT_CHART_WEEKS) -> ChartData | None:
    """What ``runlog chart`` draws, from the cached chart history of the store at ``root``;
    None when the cache cannot give it (see the module docstring)."""
    try:
        return _from_cache(Path(root), since, until, n_weeks)
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            ArithmeticError, ImportError, EOFError, zipfile.BadZipFile):  # numpy's, pyarrow's
        return None


def _from_cache(root: Path, since: str | None, until: str | None,
                n_weeks: int) -> ChartData | None:
    lo, hi = parse_bound(since), parse_bound(until)
    cache = DerivedCache(root)
    payload = cache.get(CACHE_NAME, cache.key("assessment"))
    if payload is None:
        return None
    if current_manifest(root) is None:
        return None
    history = history_from_bytes(payload)
    return None if history is None else crop(history, lo, hi, n_weeks)
