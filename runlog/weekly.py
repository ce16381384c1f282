"""The weekly table: one row per local week (Monday–Sunday), the input of the chart and report.

Weeks are the runner's *local* weeks: a run's week is taken from its local wall-clock start
(``start_local`` = ``start_utc`` + ``tz_offset_min``), so a run at 23:30 local on a Sunday
(Sunday 21:30 UTC for a runner at UTC+2) counts in that Sunday's week, and a run at 00:30 local
on a Monday (Sunday 22:30 UTC) in the new week.

Empty weeks
-----------
Every week from the first week with a run to the last week with a run has a row. A week
without runs has ``runs`` = 0, ``flag_count`` = 0, ``high_risk_runs`` = 0, and **NaN** in
``distance_km``, ``moving_time_s``, ``longest_run_km`` and ``change_pct``, and missing
(``NaN``) in ``knee_level``, ``cramp_level`` and ``risk_level``: "no data", never 0 km, so
a chart shows a gap, not a zero bar. ``runs == 0`` is the one test for an empty week.

ACWR (RULES.md L3) is shown, never scored: it is a training trend, not an injury predictor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from runlog.localtime import local_start, parse_day
from runlog.rules.load import ran_before_acute_window
from runlog.rules.thresholds import ACWR_ACUTE_DAYS, ACWR_CHRONIC_DAYS, ACWR_MIN_HISTORY_DAYS

#: Risk levels, lowest first; weekly levels are the highest of the week's runs.
LEVELS: tuple[str, ...] = ("low", "moderate", "high")
LEVEL_DTYPE = pd.CategoricalDtype(list(LEVELS), ordered=True)
#: Days in a (local, Monday-first) week.
WEEK_DAYS = 7
M_PER_KM = 1000.0
PCT = 100.0
#: Flags at or above this level count in ``flag_count`` (1 = moderate).
FLAG_COUNT_MIN_LEVEL = 1
#: Flag rows of these risks are shown for information (tips, the ACWR trend), never
#: warnings: ``flag_count`` leaves them out.
UNCOUNTED_RISKS = ("info",)

#: Columns of :func:`weekly_table`, name → description with unit (README/export list these).
WEEK_COLUMNS: dict[str, str] = {
    "week_start": "Monday 00:00 local of the week (naive local datetime)",
    "runs": "number of runs that week (0 = no data; then the numbers below are empty)",
    "distance_km": "total distance, quality-cleaned, all runs incl. quality_ok False [km]",
    "moving_time_s": "total moving time [s]",
    "longest_run_km": "longest single run of the week [km]",
    "change_pct": "distance change vs the previous week [%]; empty if either week had no runs",
    "acwr": ("acute:chronic ratio of daily km, rolling 7-d mean / 28-d mean (coupled), at the "
             "week's last day (the last run's day for the final week); empty with < 28 days "
             "of history or no running in the 3 weeks before the last 7 days. Training "
             "trend, not an injury predictor [ratio]"),
    "knee_level": "highest knee level of the week's runs: low | moderate | high",
    "cramp_level": "highest cramp level of the week's runs: low | moderate | high",
    "risk_level": "the higher of knee_level and cramp_level",
    "flag_count": "warnings on the week's runs: knee, cramp and safety rules at level ≥ 1 "
                  "(moderate or high), each rule once per run; information tips "
                  "(abrupt_finish, acwr, heat_index) not counted",
    "high_risk_runs": "runs whose knee or cramp level is high",
}


def run_local_start(runs: pd.DataFrame) -> pd.Series:
    """``start_local`` if present, else computed from start_utc and tz_offset_min."""
    if "start_local" in runs.columns:
        return pd.to_datetime(runs["start_local"])
    return local_start(runs["start_utc"], runs["tz_offset_min"])


def week_of(start_local: pd.Series) -> pd.Series:
    """Monday 00:00 of each naive local datetime's week (vectorised)."""
    day = pd.to_datetime(start_local).dt.normalize()
    return day - pd.to_timedelta(day.dt.day_of_week, unit="D")


def _level(series: pd.Series) -> pd.Series:
    """'low'/'moderate'/'high' strings (anything else → missing) as an ordered categorical."""
    return pd.Series(series, dtype="object").astype(LEVEL_DTYPE)


def _max_level(a: pd.Series, b: pd.Series) -> pd.Series:
    """Element-wise higher of two ordered-categorical level Series (missing ignored)."""
    codes = np.fmax(a.cat.codes.replace(-1, np.nan).to_numpy(dtype="float64"),
                    b.cat.codes.replace(-1, np.nan).to_numpy(dtype="float64"))
    out = pd.Series(pd.Categorical.from_codes(np.nan_to_num(codes, nan=-1).astype(int),
                                              dtype=LEVEL_DTYPE), index=a.index)
    return out


def daily_km(start_local: pd.Series, distance_m: pd.Series) -> pd.Series:
    """Distance per local calendar day [km], every day from the first to the last run day.

    Days without runs are 0 km (rest days count in the ACWR means); a run without a distance
    adds nothing.
    """
    day = pd.to_datetime(start_local).dt.normalize()
    km = pd.Series(pd.to_numeric(distance_m, errors="coerce").to_numpy(dtype="float64")
                   / M_PER_KM, index=pd.DatetimeIndex(day))
    if km.empty:
        return km
    return km.groupby(level=0).sum().asfreq("D", fill_value=0.0)


def acwr_daily(daily: pd.Series) -> pd.Series:
    """Coupled acute:chronic workload ratio per day [ratio] (RULES.md L3, display only).

    ``ACWR_t = mean(km, t−6…t) / mean(km, t−27…t)`` over daily km including rest days.
    NaN for the first 27 days of history (< 28 days), when the chronic mean is 0, and when
    nothing was run in days t−27…t−7: then the ratio is 4.0 whatever the load (only the
    acute week in the window, e.g. the first week back after months off) and says nothing.

    References
    ----------
    Gabbett TJ (2016). The training–injury prevention paradox. Br J Sports Med 50:273–280.
    Lolli L et al. (2019). Mathematical coupling causes spurious correlation within the
    conventional acute-to-chronic workload ratio calculations. Br J Sports Med 53(15):921.
    """
    acute = daily.rolling(ACWR_ACUTE_DAYS, min_periods=ACWR_ACUTE_DAYS).mean()
    chronic = daily.rolling(ACWR_CHRONIC_DAYS, min_periods=ACWR_MIN_HISTORY_DAYS).mean()
    ran_before = pd.Series(ran_before_acute_window(daily.to_numpy()), index=daily.index)
    return (acute / chronic.where(chronic > 0)).where(ran_before)


def weekly_table(runs: pd.DataFrame, flags: pd.DataFrame, *,
                 since: str | pd.Timestamp | None = None,
                 until: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per local week (Monday–Sunday) from the first to the last week with runs.

    Parameters
    ----------
    runs : one row per run, as ``RunLog.runs()``: ``run_id``, ``distance_m`` [m],
        ``moving_s`` [s], ``start_local`` (naive local) or ``start_utc`` + ``tz_offset_min``
        [min], and ``knee_risk`` / ``cramp_risk`` ('low' | 'moderate' | 'high', optional).
        Pass the whole history: the ACWR needs the 28 days before the first week shown.
    flags : long table as ``RunLog.flags()`` (``run_id``, ``level``); may be empty.
    since, until : optional local days: keep only weeks overlapping [since, until]; the
        numbers are still computed over the whole history given.

    Returns
    -------
    DataFrame with the columns of :data:`WEEK_COLUMNS`, oldest week first, index 0..n−1.
    Runs with ``quality_ok`` False still count for distance, time and ACWR, with their
    quality-cleaned distance (``distance_m``): the runner ran them. risk.assess assesses
    them by no rule, so they add no knee/cramp level (missing) and no flag; a week of such
    runs only has missing levels. Weeks without runs are present with ``runs`` = 0 and NaN
    numbers (see the module docstring), never zeros.
    """
    if runs.empty:
        return _empty()
    start = run_local_start(runs)
    week = week_of(start)
    dist_km = pd.to_numeric(runs["distance_m"], errors="coerce") / M_PER_KM
    moving = pd.to_numeric(runs.get("moving_s", pd.Series(np.nan, index=runs.index)),
                           errors="coerce")
    knee = _level(runs.get("knee_risk", pd.Series(None, index=runs.index, dtype="object")))
    cramp = _level(runs.get("cramp_risk", pd.Series(None, index=runs.index, dtype="object")))
    high = (knee == "high") | (cramp == "high")

    n_flags = _flag_counts(flags).reindex(runs["run_id"]).fillna(0).to_numpy(dtype="int64")
    per_run = pd.DataFrame({
        "week_start": week.to_numpy(),
        "distance_km": dist_km.to_numpy(),
        "moving_time_s": moving.to_numpy(),
        "knee_code": knee.cat.codes.replace(-1, np.nan).to_numpy(dtype="float64"),
        "cramp_code": cramp.cat.codes.replace(-1, np.nan).to_numpy(dtype="float64"),
        "flag_count": n_flags,
        "high_risk_runs": high.to_numpy(dtype="int64"),
    })
    g = per_run.groupby("week_start")
    agg = pd.DataFrame({
        "runs": g.size(),
        "distance_km": g["distance_km"].sum(min_count=1),
        "moving_time_s": g["moving_time_s"].sum(min_count=1),
        "longest_run_km": g["distance_km"].max(),
        "knee_code": g["knee_code"].max(),
        "cramp_code": g["cramp_code"].max(),
        "flag_count": g["flag_count"].sum(),
        "high_risk_runs": g["high_risk_runs"].sum(),
    })
    all_weeks = pd.date_range(agg.index.min(), agg.index.max(), freq=f"{WEEK_DAYS}D")
    weeks = agg.reindex(all_weeks)
    weeks.index.name = "week_start"
    for col in ("runs", "flag_count", "high_risk_runs"):
        weeks[col] = weeks[col].fillna(0).astype("int64")

    prev = weeks["distance_km"].shift(1)
    has_prev = weeks["runs"].shift(1, fill_value=0) > 0
    weeks["change_pct"] = ((weeks["distance_km"] / prev - 1.0) * PCT).where(
        has_prev & (prev > 0) & (weeks["runs"] > 0))

    weeks["acwr"] = _weekly_acwr(start, runs["distance_m"], weeks.index)

    def to_level(codes: pd.Series) -> pd.Series:
        return pd.Series(pd.Categorical.from_codes(codes.fillna(-1).astype(int),
                                                   dtype=LEVEL_DTYPE), index=codes.index)

    weeks["knee_level"] = to_level(weeks["knee_code"])
    weeks["cramp_level"] = to_level(weeks["cramp_code"])
    weeks["risk_level"] = _max_level(weeks["knee_level"], weeks["cramp_level"])
    out = weeks.reset_index()[list(WEEK_COLUMNS)]
    return _crop(out, since, until)


def _flag_counts(flags: pd.DataFrame) -> pd.Series:
    """Warnings per run_id: rules at level ≥ 1 that feed the knee or cramp level or are a
    heat/cold safety note, each rule once (one feeding both levels has two flag rows); tips
    and numbers shown for information (risk 'info': abrupt_finish, acwr, heat_index) are
    not warnings and do not count."""
    if flags is None or flags.empty or "level" not in flags.columns:
        return pd.Series(dtype="int64")
    lvl = pd.to_numeric(flags["level"], errors="coerce").astype("float64")
    warning = (lvl >= FLAG_COUNT_MIN_LEVEL).to_numpy(dtype=bool)
    if "risk" in flags.columns:
        warning = warning & ~flags["risk"].isin(UNCOUNTED_RISKS).to_numpy(dtype=bool)
    counted = flags.loc[warning, ["run_id", "rule"] if "rule" in flags.columns else ["run_id"]]
    return counted.drop_duplicates()["run_id"].value_counts()


def _weekly_acwr(start_local: pd.Series, distance_m: pd.Series,
                 week_starts: pd.DatetimeIndex) -> np.ndarray:
    """ACWR at each week's Sunday, or at the last run day for the final (possibly open) week."""
    daily = daily_km(start_local, distance_m)
    ratio = acwr_daily(daily)
    at = week_starts + pd.Timedelta(days=WEEK_DAYS - 1)
    at = at.where(at <= daily.index.max(), daily.index.max())
    return ratio.reindex(at).to_numpy(dtype="float64")


def _crop(weeks: pd.DataFrame, since, until) -> pd.DataFrame:
    """Weeks overlapping the local days [since, until]."""
    if since is not None:
        lo = week_of(pd.Series([parse_day(since)])).iloc[0]
        weeks = weeks[weeks["week_start"] >= lo]
    if until is not None:
        weeks = weeks[weeks["week_start"] <= parse_day(until)]
    return weeks.reset_index(drop=True)


def _empty() -> pd.DataFrame:
    """The weekly table of a log without runs: the columns, no rows."""
    out = pd.DataFrame({c: pd.Series(dtype="float64") for c in WEEK_COLUMNS})
    out["week_start"] = pd.Series(dtype="datetime64[ns]")
    for col in ("runs", "flag_count", "high_risk_runs"):
        out[col] = out[col].astype("int64")
    for col in ("knee_level", "cramp_level", "risk_level"):
        out[col] = out[col].astype(LEVEL_DTYPE)
    return out


#: ``runlog report --weeks`` (text) folds this many or more consecutive weeks with no run and
#: no ACWR into one line; JSON and CSV keep every week.
FOLD_EMPTY_WEEKS = 4


def fold_empty_weeks(weeks: pd.DataFrame, table_lines: list[str],
                     min_weeks: int = FOLD_EMPTY_WEEKS) -> list[str]:
    """The rows of a rendered :func:`weeks_table` (``table_lines``: one per week, in order)
    with each stretch of ``min_weeks`` or more weeks without runs and without an ACWR
    replaced by one line saying how many weeks and which."""
    empty = ((weeks["runs"] == 0) & weeks["acwr"].isna()).to_numpy()
    starts = weeks["week_start"].dt.strftime("%Y-%m-%d").to_numpy()
    out: list[str] = []
    i = 0
    while i < len(table_lines):
        j = i
        while j < len(empty) and empty[j]:
            j += 1
        if j - i >= min_weeks:
            out.append(f"⋮ {j - i} weeks without runs: {starts[i]} to {starts[j - 1]}")
            i = j
        else:
            out.append(table_lines[i])
            i += 1
    return out


def weeks_table(weeks: pd.DataFrame) -> pd.DataFrame:
    """The terminal table of ``runlog report --weeks``: strings, '–' for no data."""
    if weeks.empty:
        return pd.DataFrame()

    def num(s: pd.Series, fmt: str) -> pd.Series:
        return s.map(lambda x: "–" if pd.isna(x) else format(x, fmt))

    return pd.DataFrame({
        "week": weeks["week_start"].dt.strftime("%Y-%m-%d"),
        "runs": weeks["runs"].astype(str),
        "km": num(weeks["distance_km"], ".1f"),
        "change": weeks["change_pct"].map(lambda x: "–" if pd.isna(x) else f"{x:+.0f} %"),
        "ACWR": num(weeks["acwr"], ".2f"),
        "knee": weeks["knee_level"].astype("object").fillna("–"),
        "cramp": weeks["cramp_level"].astype("object").fillna("–"),
        "flags": weeks["flag_count"].astype(str),
        "high": weeks["high_risk_runs"].astype(str),
    })
