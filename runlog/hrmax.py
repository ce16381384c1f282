"""Which HRmax each run is judged with, and the HR verdicts that follow from it (RULES.md §0).

HRmax = the runner's profile value > the best artefact-free 30-s HR of the last 180 days >
208 − 0.7·age (Tanaka 2001) > none. The middle tier depends on other runs, so it cannot be
known while one file is parsed (imports run in worker processes, in file order, not date
order). The metrics of a run are therefore split in two:

* HRmax-free numbers, computed once from the samples by :mod:`runlog.metrics` (``main_hr_bpm``,
  ``best_30s_hr_bpm``, ``warmup_easy_speed_ratio``, ``warmup_hr_p80_bpm``,
  ``start_speed_ratio``, ``start_hr_bpm``, ``avg_hr_bpm``);
* the verdicts that compare HR with a fraction of HRmax (``main_hr_pct_max``,
  ``warmup_present``, ``hard_start``) and ``hr_max_used_bpm``/``hr_max_source``, which
  :func:`resolve_runs` derives from those numbers, per run, without the samples.

The store calls :func:`resolve_runs` on every commit that changes the runs table or the
profile (import batches, refresh, removals, ``runlog profile``), so every stored run of the
current metrics version carries the HRmax its history gives today — a newly imported run
with a higher best 30 s, or a profile change, updates the runs it concerns in the same commit
— and never a stale estimate. The per-sample tests stay exact: ``warmup_hr_p80_bpm`` is the
lowest HR that ≥ 80 % of some pace-easy window's samples stay at or below, so "≥ 80 % of the
window's samples ≤ 76 % HRmax" holds for some window exactly when it is ≤ 0.76·HRmax.

References
----------
Tanaka H, Monahan KD, Seals DR (2001). Age-predicted maximal heart rate revisited.
J Am Coll Cardiol 37:153–156. doi:10.1016/S0735-1097(00)01054-8
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from runlog.metrics import hr_verdicts
from runlog.schema import METRICS_VERSION

#: RULES.md §0: the best 30-s HR of the last 180 days (this run's day included) [d].
HISTORY_DAYS = 180
#: Tanaka 2001: HRmax = 208 − 0.7·age [bpm, bpm/year].
TANAKA_INTERCEPT_BPM = 208.0
TANAKA_SLOPE_BPM_PER_YEAR = 0.7
#: Quality issue codes whose HR is not trusted for an HRmax estimate (see runlog.quality).
UNTRUSTED_HR_ISSUES = ("hr_dropout",)

#: ``hr_max_source`` values.
PROFILE, HISTORY, AGE = "profile", "history_30s", "age_formula"
SOURCE_WORDS = {
    PROFILE: "from your profile",
    HISTORY: f"estimated: your best 30 s in the last {HISTORY_DAYS} days",
    AGE: "estimated: 208 − 0.7 × age (Tanaka 2001)",
}
#: Columns :func:`resolve_runs` reads and writes.
INPUT_COLUMNS = ("run_id", "start_utc", "tz_offset_min", "best_30s_hr_bpm", "quality_ok",
                 "quality_issues", "metrics_version", "avg_hr_bpm", "main_hr_bpm",
                 "warmup_easy_speed_ratio", "warmup_hr_p80_bpm", "start_speed_ratio",
                 "start_hr_bpm")
OUTPUT_COLUMNS = ("hr_max_used_bpm", "hr_max_source", "main_hr_pct_max", "warmup_present",
                  "hard_start")
#: The HRmax-free numbers :func:`runlog.metrics.hr_verdicts` takes after the HRmax, in order.
HR_INPUT_COLUMNS = ("avg_hr_bpm", "main_hr_bpm", "warmup_easy_speed_ratio", "warmup_hr_p80_bpm",
                    "start_speed_ratio", "start_hr_bpm")
DAY_NS = 86_400 * 10**9
NAT_NS = np.iinfo(np.int64).min  # numpy's NaT as int64


def hr_max_phrase(hr_max_bpm: float, source: str | None) -> str:
    """'HRmax 188 bpm (estimated: your best 30 s in the last 180 days)'; '' when unknown."""
    if hr_max_bpm is None or not np.isfinite(hr_max_bpm) or hr_max_bpm <= 0:
        return ""
    words = SOURCE_WORDS.get(str(source) if source is not None else "", "")
    return f"HRmax {hr_max_bpm:.0f} bpm" + (f" ({words})" if words else "")


def age_formula_hr_max_bpm(birth_year: float, year: np.ndarray) -> np.ndarray:
    """208 − 0.7·age [bpm] with age = the run's calendar year − ``birth_year`` (the profile
    holds the year only); NaN without a birth year."""
    if birth_year is None or not np.isfinite(birth_year):
        return np.full(len(year), np.nan)
    age = np.asarray(year, dtype="float64") - float(birth_year)
    return TANAKA_INTERCEPT_BPM - TANAKA_SLOPE_BPM_PER_YEAR * age


def history_hr_max_bpm(start_utc, best_30s_hr_bpm, trusted: np.ndarray) -> np.ndarray:
    """Per run, the highest ``best_30s_hr_bpm`` of trusted runs starting in the 180 days up to
    and including its own start (runs of the same start share their window) [bpm]; NaN when
    there is none. ``start_utc``: a pandas datetime Series or a numpy datetime64 array.

    One sort, two binary searches and a sparse table of maxima: O(n log n) numpy, no loop
    over runs (a commit resolves the whole history).
    """
    t = utc_ns(start_utc)
    v = np.where(trusted, np.asarray(best_30s_hr_bpm, dtype="float64"), np.nan)
    out = np.full(len(t), np.nan)
    known = np.flatnonzero(t != NAT_NS)
    if not len(known):
        return out
    order = known[np.argsort(t[known], kind="stable")]
    ts = t[order]
    first = np.searchsorted(ts, ts - HISTORY_DAYS * DAY_NS, side="left")
    after = np.searchsorted(ts, ts, side="right")  # the same instant's later rows too
    out[order] = _range_fmax(v[order], first, after)
    return out


def _range_fmax(values: np.ndarray, first: np.ndarray, after: np.ndarray) -> np.ndarray:
    """max of ``values[first[i]:after[i]]`` ignoring NaN (NaN when all are), every window
    non-empty: a sparse table (level k holds the max of 2**k values from each start)."""
    levels = [values]
    while 2 * (width := 1 << (len(levels) - 1)) <= len(values):
        levels.append(np.fmax(levels[-1][:-width], levels[-1][width:]))
    k = np.floor(np.log2(after - first)).astype(np.int64)
    out = np.full(len(first), np.nan)
    for level in np.unique(k):  # at most log2(n) levels
        at = k == level
        table = levels[level]
        out[at] = np.fmax(table[first[at]], table[after[at] - (1 << int(level))])
    return out


def utc_ns(start_utc) -> np.ndarray:
    """UTC instants as int64 nanoseconds (:data:`NAT_NS` for missing ones)."""
    if isinstance(start_utc, (pd.Series, pd.Index)):
        start_utc = pd.to_datetime(pd.Series(start_utc), utc=True).dt.tz_convert(None)
        return start_utc.dt.as_unit("ns").to_numpy().view("int64")
    return np.asarray(start_utc).astype("datetime64[ns]").view("int64")


def hr_max_arrays(start_utc, tz_offset_min: np.ndarray, best_30s_hr_bpm: np.ndarray,
                  trusted: np.ndarray, profile: dict) -> tuple[np.ndarray, np.ndarray]:
    """(HRmax [bpm], source) per run: profile > best 30 s of 180 d > age formula > NaN/None.

    ``trusted``: runs whose best 30 s may count (quality ok, no HR dropout)."""
    t = utc_ns(start_utc)
    n = len(t)
    value = np.full(n, np.nan)
    source = np.full(n, None, dtype=object)
    user = _number(profile.get("hr_max_bpm"))
    if np.isfinite(user) and user > 0:
        value[:], source[:] = user, PROFILE
        return value, source
    hist = history_hr_max_bpm(t.view("datetime64[ns]"), best_30s_hr_bpm, trusted)
    has = np.isfinite(hist) & (hist > 0)
    value[has], source[has] = hist[has], HISTORY
    offset_ns = np.nan_to_num(np.asarray(tz_offset_min, dtype="float64")) * 60e9
    local = (t + offset_ns.astype(np.int64)).view("datetime64[ns]").astype("datetime64[Y]")
    year = np.where(t != NAT_NS, local.astype(np.int64) + 1970.0, np.nan)
    age = age_formula_hr_max_bpm(_number(profile.get("birth_year")), year)
    use_age = ~has & np.isfinite(age) & (age > 0)
    value[use_age], source[use_age] = age[use_age], AGE
    return value, source


def resolve_hr_max(runs: pd.DataFrame, profile: dict) -> tuple[np.ndarray, np.ndarray]:
    """(HRmax [bpm], source) per run of a runs frame (:func:`hr_max_arrays`)."""
    trusted = (_col(runs, "quality_ok", object).astype("boolean").fillna(False)
               .to_numpy(dtype=bool))
    codes = ";" + _col(runs, "quality_issues", object).fillna("").astype(str) + ";"
    for code in UNTRUSTED_HR_ISSUES:
        trusted &= ~codes.str.contains(f";{code};", regex=False).to_numpy(dtype=bool)
    return hr_max_arrays(runs["start_utc"], _col(runs, "tz_offset_min", "float64").to_numpy(),
                         _col(runs, "best_30s_hr_bpm", "float64").to_numpy(), trusted, profile)


def resolved_outputs(value: np.ndarray, source: np.ndarray, hr_inputs: list[np.ndarray],
                     metrics_version: np.ndarray, stored: dict[str, np.ndarray]
                     ) -> dict[str, np.ndarray]:
    """:data:`OUTPUT_COLUMNS` as arrays from each run's HRmax and source and its HRmax-free
    numbers (``hr_inputs``: :data:`HR_INPUT_COLUMNS` in order). Rows of an older metrics
    version lack those numbers: they keep their ``stored`` outputs (by column name; missing
    columns count as unknown) until ``runlog store refresh`` recomputes them."""
    out = {"hr_max_used_bpm": value, "hr_max_source": source, **hr_verdicts(value, *hr_inputs)}
    old = np.nan_to_num(np.asarray(metrics_version, dtype="float64")) < METRICS_VERSION
    if old.any():
        for c in OUTPUT_COLUMNS:
            if c in stored:
                out[c] = out[c].astype(object) if c != "hr_max_used_bpm" else out[c].copy()
                out[c][old] = stored[c][old]
    return out


def resolve_runs(runs: pd.DataFrame, profile: dict) -> pd.DataFrame:
    """:data:`OUTPUT_COLUMNS` for ``runs`` (same index) under ``profile``.

    Rows computed by an older metrics version lack the HRmax-free numbers: they keep their
    stored values (``runlog store refresh`` recomputes them), but their ``best_30s_hr_bpm``
    still counts in the others' history.
    """
    value, source = resolve_hr_max(runs, profile)
    version = pd.to_numeric(_col(runs, "metrics_version", object), errors="coerce")
    stored = {c: runs[c].astype(object).to_numpy() for c in OUTPUT_COLUMNS if c in runs}
    if "hr_max_used_bpm" in stored:
        stored["hr_max_used_bpm"] = _col(runs, "hr_max_used_bpm", "float64").to_numpy()
    out = resolved_outputs(value, source,
                           [_col(runs, c, "float64").to_numpy() for c in HR_INPUT_COLUMNS],
                           version.to_numpy(dtype="float64", na_value=np.nan), stored)
    return pd.DataFrame(out, index=runs.index)


def _col(runs: pd.DataFrame, name: str, dtype) -> pd.Series:
    if name in runs.columns:
        s = runs[name]
        return pd.to_numeric(s, errors="coerce").astype("float64") if dtype == "float64" else s
    return pd.Series(np.nan if dtype == "float64" else None, index=runs.index, dtype=dtype)


def _number(value) -> float:
    try:
        return float(value) if value is not None else np.nan
    except (TypeError, ValueError):
        return np.nan
