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


def history_hr_max_bpm(start_utc: pd.Series, best_30s_hr_bpm: pd.Series,
                       trusted: np.ndarray) -> np.ndarray:
    """Per run, the highest ``best_30s_hr_bpm`` of trusted runs starting in the 180 days up to
    and including its own start [bpm]; NaN when there is none.

    One sort and a time-based rolling max (runs of the same start share their window).
    """
    t = pd.to_datetime(pd.Series(start_utc), utc=True).reset_index(drop=True)
    v = np.where(trusted, np.asarray(best_30s_hr_bpm, dtype="float64"), np.nan)
    out = np.full(len(t), np.nan)
    known = t.notna().to_numpy()
    if not known.any():
        return out
    order = np.flatnonzero(known)[np.argsort(t[known].to_numpy(), kind="stable")]
    series = pd.Series(v[order], index=pd.DatetimeIndex(t.iloc[order]))
    rolled = series.rolling(f"{HISTORY_DAYS}D", closed="both", min_periods=1).max()
    # a run starting in the same instant as a later row must see that row too
    rolled = rolled.groupby(level=0).transform("max")
    out[order] = rolled.to_numpy()
    return out


def resolve_hr_max(runs: pd.DataFrame, profile: dict) -> tuple[np.ndarray, np.ndarray]:
    """(HRmax [bpm], source) per run: profile > best 30 s of 180 d > age formula > NaN/None."""
    n = len(runs)
    value = np.full(n, np.nan)
    source = np.full(n, None, dtype=object)
    user = _number(profile.get("hr_max_bpm"))
    if np.isfinite(user) and user > 0:
        value[:], source[:] = user, PROFILE
        return value, source
    trusted = (_col(runs, "quality_ok", object).astype("boolean").fillna(False)
               .to_numpy(dtype=bool))
    codes = ";" + _col(runs, "quality_issues", object).fillna("").astype(str) + ";"
    for code in UNTRUSTED_HR_ISSUES:
        trusted &= ~codes.str.contains(f";{code};", regex=False).to_numpy(dtype=bool)
    hist = history_hr_max_bpm(runs["start_utc"], _col(runs, "best_30s_hr_bpm", "float64"),
                              trusted)
    has = np.isfinite(hist) & (hist > 0)
    value[has], source[has] = hist[has], HISTORY
    start = pd.to_datetime(runs["start_utc"], utc=True)
    local = start + pd.to_timedelta(_col(runs, "tz_offset_min", "float64").fillna(0), unit="m")
    age = age_formula_hr_max_bpm(_number(profile.get("birth_year")),
                                 local.dt.year.to_numpy(dtype="float64", na_value=np.nan))
    use_age = ~has & np.isfinite(age) & (age > 0)
    value[use_age], source[use_age] = age[use_age], AGE
    return value, source


def resolve_runs(runs: pd.DataFrame, profile: dict) -> pd.DataFrame:
    """:data:`OUTPUT_COLUMNS` for ``runs`` (same index) under ``profile``.

    Rows computed by an older metrics version lack the HRmax-free numbers: they keep their
    stored values (``runlog store refresh`` recomputes them), but their ``best_30s_hr_bpm``
    still counts in the others' history.
    """
    value, source = resolve_hr_max(runs, profile)
    verdicts = hr_verdicts(value, *(_col(runs, c, "float64") for c in (
        "avg_hr_bpm", "main_hr_bpm", "warmup_easy_speed_ratio", "warmup_hr_p80_bpm",
        "start_speed_ratio", "start_hr_bpm")))
    out = pd.DataFrame({"hr_max_used_bpm": value, "hr_max_source": source, **verdicts},
                       index=runs.index)
    version = pd.to_numeric(_col(runs, "metrics_version", object), errors="coerce").fillna(0)
    old = (version < METRICS_VERSION).to_numpy()
    if old.any():
        for c in OUTPUT_COLUMNS:
            if c in runs.columns:
                out[c] = out[c].astype(object)
                out.loc[old, c] = runs.loc[old, c].astype(object).to_numpy()
    return out


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
