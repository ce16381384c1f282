"""Load rules L1–L4b: distance spikes, weekly jumps, ACWR (display), restarts, new runners.

All rules take Series aligned with the runs being assessed (one element per run, any index) and
return a :func:`runlog.rules.base.rule_frame` with the same index. History comparisons use the
runner's local time (``start_local`` = start_utc + tz_offset_min, naive) and only runs strictly
before the run assessed; runs with ``quality_ok`` False never feed a baseline and are not
assessed themselves. This module also holds the small vectorised history helpers the other rule
modules share (:func:`window_stat`, :func:`time_window`, :func:`rolling_within`,
:func:`previous_index`, :func:`history_pairs`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer

from runlog.rules import thresholds as T
from runlog.rules.base import HIGH, MODERATE, NONE, RuleInfo, rule_frame

QUALITY_NOTE = "Data quality too poor for this rule — not assessed"

FRANDSEN = ("Frandsen et al. 2025, Br J Sports Med 59:1203–10, "
            "doi:10.1136/bjsports-2024-109380")
NIELSEN_JOSPT = "Nielsen et al. 2014, J Orthop Sports Phys Ther (874 novices)"
NIELSEN_IJSPT = "Nielsen et al. 2014, Int J Sports Phys Ther 9(3):338–345"
WILLIAMS = "Williams et al. 2017, Br J Sports Med 51(3):209; Gabbett 2016, BJSM 50:273–280"
VAN_DER_WORP = "van der Worp et al. 2015, PLoS One (risk factors in runners, SR)"

RULES = [
    RuleInfo("session_spike", "L1", {"knee": 3}, "knee", FRANDSEN),
    RuleInfo("weekly_jump", "L2", {"knee": 2}, "knee", NIELSEN_JOSPT, max_level=MODERATE),
    RuleInfo("acwr", "L3", {}, "info", WILLIAMS, max_level=NONE),
    RuleInfo("restart", "L4", {"knee": 1}, "knee", VAN_DER_WORP),
    RuleInfo("new_runner", "L4b", {"knee": 2}, "knee", NIELSEN_IJSPT, max_level=MODERATE),
]


# --- shared vectorised helpers ------------------------------------------------------------------
def good_mask(quality_ok: pd.Series) -> np.ndarray:
    """True where a run may feed rules and baselines (missing quality counts as good)."""
    if isinstance(quality_ok, pd.Series) and (isinstance(quality_ok.dtype, pd.BooleanDtype)
                                              or quality_ok.dtype == np.bool_):
        return quality_ok.to_numpy(dtype=bool, na_value=True)     # the usual column, directly
    q = pd.Series(quality_ok).astype("boolean").fillna(True)
    return q.to_numpy(dtype=bool)


def local_times(start_local: pd.Series) -> np.ndarray:
    """The start times as a datetime64 array (``pd.to_datetime`` of anything not yet one).

    Every history rule needs them, several times: the usual datetime64 Series goes straight
    to numpy instead of through a new Series and ``to_datetime`` each time.
    """
    if isinstance(start_local, pd.Series) and isinstance(start_local.dtype, np.dtype) and (
            start_local.dtype.kind == "M"):
        return start_local.to_numpy()
    return pd.to_datetime(pd.Series(start_local)).to_numpy()


def window_stat(start_local: pd.Series, values, days: float, how: str,
                closed: str = "left", by_day: bool = False) -> pd.Series:
    """Rolling time-window statistic over the history, aligned with ``start_local``.

    Parameters
    ----------
    start_local : Series of naive local datetimes, one per run.
    values : array-like of float, NaN where a run must not count (e.g. poor quality).
    days : window length [days].
    how : a pandas rolling method name ("max", "sum", "median", "count", ...).
    closed : "left" = [t − days, t) strictly before the run; "right" = (t − days, t] including
        the run (and earlier runs of the same instant); "both" = [t − days, t].
    by_day : window on local calendar days instead of instants (t floored to midnight).
    """
    t = local_times(start_local)
    order = np.argsort(t, kind="stable")
    key = t[order].astype("datetime64[D]" if by_day else "datetime64[ns]")
    start, end = time_window(key, days, closed)
    rolled = rolling_within(np.asarray(values, dtype="float64")[order], start, end, how)
    out = np.empty(len(key))
    out[order] = rolled
    return pd.Series(out, index=pd.Series(start_local).index)


def time_window(key: np.ndarray, days: float, closed: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows [start, end) of ``rolling(f"{days}D", closed=closed)`` over sorted times ``key``.

    The bounds pandas derives for a DatetimeIndex, found with two binary searches: the
    ``left`` window stops before the first run of the same instant, ``right`` and ``both``
    end at the run itself (later runs of the same instant never count).
    """
    key = np.asarray(key).astype("datetime64[ns]")
    since = key - np.timedelta64(round(days * 86400 * 10**9), "ns")
    start = np.searchsorted(key, since, side="right" if closed == "right" else "left")
    end = (np.searchsorted(key, key, side="left") if closed == "left"
           else np.arange(1, len(key) + 1))
    return start, end


class _Bounds(BaseIndexer):
    """Window bounds computed beforehand: row i aggregates rows [start[i], end[i])."""

    def get_window_bounds(self, num_values: int = 0, min_periods: int | None = None,
                          center: bool | None = None, closed: str | None = None,
                          step: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self.start, self.end


def rolling_within(values, start: np.ndarray, end: np.ndarray, how: str) -> np.ndarray:
    """pandas' rolling ``how`` ("median", "max", ...) of ``values`` over rows [start, end).

    NaN values are skipped; a window without any value gives NaN (min_periods=1). The same
    cython aggregation a time-based or grouped rolling runs, given its bounds directly.
    """
    values = np.asarray(values, dtype="float64")
    if not len(values):
        return values.copy()
    bounds = _Bounds(start=np.asarray(start, dtype="int64"), end=np.asarray(end, dtype="int64"))
    return getattr(pd.Series(values).rolling(bounds, min_periods=1), how)().to_numpy()


def previous_index(start_local: pd.Series, good: np.ndarray) -> np.ndarray:
    """Position of the latest good run strictly before each run, −1 when there is none
    (for every run when no run is good: a log of runs too damaged to assess)."""
    t = local_times(start_local)
    good_pos = np.flatnonzero(good)
    if not good_pos.size:           # nothing to point at (and nothing to index into)
        return np.full(len(t), -1, dtype=np.intp)
    good_pos = good_pos[np.argsort(t[good_pos], kind="stable")]
    k = np.searchsorted(t[good_pos], t, side="left") - 1
    return np.where(k >= 0, good_pos[np.clip(k, 0, None)], -1)


def history_pairs(start_local: pd.Series, days: float) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) positions with run j in [t_i − days, t_i): j strictly before i, vectorised."""
    t = local_times(start_local)
    order = np.argsort(t, kind="stable")
    ts = t[order]
    lo = np.searchsorted(ts, ts - np.timedelta64(int(days * 86400), "s"), side="left")
    hi = np.searchsorted(ts, ts, side="left")
    counts = hi - lo
    i_sorted = np.repeat(np.arange(len(ts)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    j_sorted = np.repeat(lo, counts) + offsets
    return order[i_sorted], order[j_sorted]


def pregap_stat(start_local: pd.Series, values, good: np.ndarray, days: float,
                how: str) -> np.ndarray:
    """Statistic of good runs' ``values`` in the ``days`` ending at (and including) the latest
    good run before each run — the "runs before the break" baseline of L4 and C1."""
    v = np.where(good, np.asarray(values, dtype="float64"), np.nan)
    at_run = window_stat(start_local, v, days, how, closed="both").to_numpy()
    k = previous_index(start_local, good)
    return np.where(k >= 0, at_run[np.clip(k, 0, None)], np.nan)


def local_days(start_local: pd.Series) -> np.ndarray:
    """Local calendar day number of each run (days since 1970-01-01, local)."""
    return local_times(start_local).astype("datetime64[D]").astype("int64")   # floors


def messages(mask, make: Callable[..., str], **cols) -> np.ndarray:
    """One message per run where ``mask`` holds (formatting only; no history loops).

    ``make`` gets each run's element of every column as keyword arguments — passed by
    position when they are exactly its parameters, which halves the cost on a long history.
    """
    mask = np.asarray(mask, dtype=bool)
    out = np.full(mask.shape, "", dtype=object)
    rows = np.flatnonzero(mask)
    if not len(rows):
        return out
    code = getattr(make, "__code__", None)
    params = code.co_varnames[:code.co_argcount] if code is not None else ()
    names = params if sorted(params) == sorted(cols) else tuple(cols)
    columns = [np.asarray(cols[name])[rows] for name in names]
    args = zip(*columns, strict=True) if columns else [()] * len(rows)
    if names == params:
        texts = [make(*a) for a in args]
    else:
        texts = [make(**dict(zip(names, a, strict=True))) for a in args]
    out[rows] = np.array(texts, dtype=object)
    return out


def notes(*pairs: tuple[np.ndarray, str], n: int) -> np.ndarray:
    """First matching note per run from (mask, note) pairs, '' when none applies."""
    out = np.full(n, "", dtype=object)
    for mask, text in reversed(pairs):
        out = np.where(np.asarray(mask, dtype=bool), text, out)
    return out


def _round(x) -> np.ndarray:
    """Round ratios before threshold comparisons so 11/10 − 1 is exactly 0.10."""
    return np.round(np.asarray(x, dtype="float64"), 9)


# --- L1 ----------------------------------------------------------------------------------------
def session_spike(start_local: pd.Series, distance_m: pd.Series,
                  quality_ok: pd.Series) -> pd.DataFrame:
    """L1: single-run distance vs the longest run of the previous 30 days.

    ``s = d / ref − 1`` with ref the longest good run in [t − 30 d, t); increases under
    0.5 km are ignored (GPS error). Levels: s ≤ 10 % none, 10–100 % moderate, > 100 % high.

    Parameters
    ----------
    start_local : local start times (naive) [datetime]
    distance_m : run distance [m]
    quality_ok : False for runs too damaged to assess or to count in baselines

    Returns
    -------
    rule_frame with value s [%] and threshold 10 or 100 [%].

    References
    ----------
    Frandsen JSB et al. (2025). How much running is too much? Identifying high-risk running
    sessions in a 5200-person cohort study. Br J Sports Med 59(17):1203–1210.
    doi:10.1136/bjsports-2024-109380
    """
    good = good_mask(quality_ok)
    d_km = np.asarray(distance_m, dtype="float64") / 1000.0
    ref_km = window_stat(start_local, np.where(good, d_km, np.nan), T.SPIKE_WINDOW_DAYS,
                         "max").to_numpy()
    ref_km = np.where(ref_km > 0, ref_km, np.nan)
    s = _round(d_km / ref_km - 1.0)
    level = np.select([s > T.SPIKE_HIGH_FRAC, s > T.SPIKE_MODERATE_FRAC], [HIGH, MODERATE],
                      NONE).astype(float)
    level[_round(d_km - ref_km) < T.SPIKE_GPS_FLOOR_KM] = NONE
    missing = ~good | np.isnan(d_km) | np.isnan(ref_km)
    level[missing] = np.nan
    note = notes((~good, QUALITY_NOTE), (np.isnan(d_km), "No distance — spike not assessed"),
                 (np.isnan(ref_km), "No run in the previous 30 days — see the restart rule"),
                 n=len(s))
    thr = np.where(s > T.SPIKE_HIGH_FRAC, T.SPIKE_HIGH_FRAC, T.SPIKE_MODERATE_FRAC) * 100

    def make(s, ref, lvl):
        rate = "~2.3×" if lvl == HIGH else "~1.5–2×"
        return (f"This run was {s * 100:.0f} % longer than your longest run of the last 30 days "
                f"({ref:.1f} km). In a 5,200-runner study such runs came with {rate} higher "
                "overuse-injury rates (all sites, observational).")

    msg = messages(level >= MODERATE, make, s=s, ref=ref_km, lvl=level)
    return rule_frame(pd.Series(start_local).index, level, s * 100, thr, "%", msg, note)


# --- L2 ----------------------------------------------------------------------------------------
def weekly_jump(start_local: pd.Series, distance_m: pd.Series,
                quality_ok: pd.Series) -> pd.DataFrame:
    """L2: km in the last 7 local days (this run included) vs the 7 days before, > 30 %.

    ``p = D7 / D7prev − 1``, assessed only when D7prev ≥ 5 km. Later runs never count; runs
    with quality_ok False count neither in D7 nor in D7prev.

    Parameters
    ----------
    start_local : local start times (naive) [datetime]
    distance_m : run distance [m]
    quality_ok : False for runs too damaged to assess or to count

    References
    ----------
    Nielsen RØ et al. (2014). Excessive progression in weekly running distance and risk of
    running-related injuries: an association which varies according to type of injury.
    J Orthop Sports Phys Ther 44(10):739–747.
    """
    good = good_mask(quality_ok)
    km = np.where(good, np.asarray(distance_m, dtype="float64") / 1000.0, np.nan)
    d7 = window_stat(start_local, km, T.WEEK_DAYS, "sum", "right", by_day=True).to_numpy()
    d14 = window_stat(start_local, km, 2 * T.WEEK_DAYS, "sum", "right", by_day=True).to_numpy()
    prev = _round(d14 - d7)
    p = _round(d7 / np.where(prev > 0, prev, np.nan) - 1.0)
    level = np.where(p > T.WEEKLY_JUMP_FRAC, MODERATE, NONE).astype(float)
    few = ~(prev >= T.WEEKLY_MIN_PREV_KM)
    level[~good | few | np.isnan(km)] = np.nan
    note = notes((~good, QUALITY_NOTE),
                 (few, "Under 5 km in the week before — weekly jump not assessed"), n=len(p))
    msg = messages(level == MODERATE,
                   lambda p, a, b: (f"Your last 7 days were {p * 100:.0f} % above the week "
                                    f"before ({a:.1f} vs {b:.1f} km); big jumps were linked to "
                                    "more knee overuse problems in new runners (weak evidence)."),
                   p=p, a=d7, b=prev)
    return rule_frame(pd.Series(start_local).index, level, p * 100, T.WEEKLY_JUMP_FRAC * 100, "%",
                      msg, note)


# --- L3 ----------------------------------------------------------------------------------------
def ran_before_acute_window(daily_km: np.ndarray) -> np.ndarray:
    """Per day t of consecutive daily km (rest days 0): True when something was run in days
    t−27…t−7, the chronic window before the acute one.

    Without it an acute:chronic ratio reflects the last 7 days alone (≈ 3.6 for the EWMA,
    4.0 for rolling means, whatever the load: the first runs back after months off) and
    says nothing, so neither the per-run :func:`acwr` nor the weekly table
    (:func:`runlog.weekly.acwr_daily`) shows it. Run days are counted, not km summed: a
    float running sum would lose a tiny distance next to a large one.
    """
    days_run = np.concatenate([[0], np.cumsum(np.asarray(daily_km) > 0)])  # [i]: days 0…i−1
    t = np.arange(len(daily_km))
    return (days_run[np.clip(t - T.ACWR_ACUTE_DAYS + 1, 0, None)]
            > days_run[np.clip(t - T.ACWR_CHRONIC_DAYS + 1, 0, None)])


def acwr(start_local: pd.Series, distance_m: pd.Series, quality_ok: pd.Series) -> pd.DataFrame:
    """L3: acute:chronic workload ratio (EWMA, km per local day) — display only, never scored.

    EWMA_t = λ·L_t + (1 − λ)·EWMA_{t−1}, λ = 2/(N + 1), N = 7 (acute) and 28 (chronic) days,
    over daily km including rest days; shown once ≥ 28 days of history exist, and only when
    something was run in days t−27…t−7 (else the ratio is ≈ 3.6 whatever the load: the first
    run back after a break). Label: a training trend, not an injury predictor (Frandsen 2025
    found higher ACWR with *fewer* injuries).

    References
    ----------
    Williams S et al. (2017). Better way to determine the acute:chronic workload ratio?
    Br J Sports Med 51(3):209. Gabbett TJ (2016). Br J Sports Med 50:273–280. Lolli L et al.
    (2019). Br J Sports Med 53(15):921.
    """
    idx = pd.Series(start_local).index
    good = good_mask(quality_ok)
    day = local_days(start_local)
    km = np.where(good, np.asarray(distance_m, dtype="float64") / 1000.0, 0.0)
    if len(km) == 0:
        return rule_frame(idx, np.nan, np.nan, np.nan, "", "", "")
    # km per local day from the first to the last, rest days 0 (pandas' grouped sum, so the
    # totals of days with several runs stay bit-identical); day d is row d − first_day
    first_day = day.min()
    per_day = pd.Series(km).groupby(day).sum()
    daily = np.zeros(day.max() - first_day + 1)
    daily[per_day.index.to_numpy() - first_day] = per_day.to_numpy()
    acute = pd.Series(daily).ewm(span=T.ACWR_ACUTE_DAYS, adjust=False).mean().to_numpy()
    chronic = pd.Series(daily).ewm(span=T.ACWR_CHRONIC_DAYS, adjust=False).mean().to_numpy()
    ratio = (acute / np.where(chronic > 0, chronic, np.nan))[day - first_day]
    since = day - (day[good].min() if good.any() else first_day)
    enough = since >= T.ACWR_MIN_HISTORY_DAYS
    base = ran_before_acute_window(daily)[day - first_day]
    ok = enough & base & good & ~np.isnan(ratio)
    level = np.where(ok, NONE, np.nan)
    note = notes((~good, QUALITY_NOTE),
                 (~enough, "Under 28 days of history — training trend not shown"),
                 (~base, "No running in the 3 weeks before the last 7 days — training trend "
                         "not shown"), n=len(km))
    msg = messages(ok, lambda r: (f"Training trend (acute:chronic load, km) {r:.2f}: a training "
                                  "trend, not an injury predictor."), r=ratio)
    return rule_frame(idx, level, ratio, T.ACWR_DANGER, "ratio", msg, note)


# --- L4 ----------------------------------------------------------------------------------------
def restart(start_local: pd.Series, distance_m: pd.Series, quality_ok: pd.Series) -> pd.DataFrame:
    """L4: first run after a break of ≥ 14 local days.

    Moderate if the run is at least the median run of the 30 days before the break; high if the
    break lasted ≥ 28 days and the run is at least the longest of those 30 days.

    Parameters
    ----------
    start_local : local start times (naive) [datetime]
    distance_m : run distance [m]
    quality_ok : False for runs too damaged to assess or to count

    References
    ----------
    van der Worp MP et al. (2015). Injuries in runners; a systematic review on risk factors and
    sex differences. PLoS One 10(2):e0114937. doi:10.1371/journal.pone.0114937
    """
    good = good_mask(quality_ok)
    d_km = np.asarray(distance_m, dtype="float64") / 1000.0
    k = previous_index(start_local, good)
    day = local_days(start_local)
    gap = np.where(k >= 0, day - day[np.clip(k, 0, None)], np.nan).astype(float)
    med = pregap_stat(start_local, d_km, good, T.RESTART_BASELINE_DAYS, "median")
    top = pregap_stat(start_local, d_km, good, T.RESTART_BASELINE_DAYS, "max")
    is_gap = gap >= T.RESTART_GAP_DAYS
    high = is_gap & (gap >= T.RESTART_LONG_GAP_DAYS) & (_round(d_km - top) >= 0)
    moderate = is_gap & (_round(d_km - med) >= 0)
    level = np.select([high, moderate], [HIGH, MODERATE], NONE).astype(float)
    level[~good | np.isnan(d_km)] = np.nan
    note = notes((~good, QUALITY_NOTE), n=len(d_km))

    def make(gap, lvl, d, med, top):
        off = f"{gap / 7:.0f} weeks" if gap >= 21 else f"{gap:.0f} days"
        how = "as long as your longest before" if lvl == HIGH else "as long as your usual runs"
        ref, what = (top, "longest") if lvl == HIGH else (med, "median")
        return (f"First run after {off} off and {how} ({d:.1f} km vs {ref:.1f} km, the "
                f"{what} run of the 30 days before the break). Fitness returns faster than "
                "tendons and bones — build back over a few weeks; walk–run is fine.")

    msg = messages(level >= MODERATE, make, gap=gap, lvl=level, d=d_km, med=med, top=top)
    return rule_frame(pd.Series(start_local).index, level, gap, T.RESTART_GAP_DAYS, "days", msg,
                      note)


def body_mass_index(mass_kg, height_cm):
    """BMI [kg/m²] from mass [kg] and height [cm]."""
    h_m = np.asarray(height_cm, dtype="float64") / 100.0
    return np.asarray(mass_kg, dtype="float64") / (h_m * h_m)


def new_runner(start_local: pd.Series, distance_m: pd.Series, quality_ok: pd.Series,
               bmi_kg_m2) -> pd.DataFrame:
    """L4b: BMI > 30 and more than 3 km in the first week of running.

    Applies to runs in the first 28 days of the log; a run in the first 7 days is moderate when
    the week-1 total so far (this run included) exceeds 3 km and BMI > 30. Without height or
    mass the rule is not assessed for those first weeks. The log's first run is taken as the
    start of running: imported history may begin later than the runner did.

    Parameters
    ----------
    start_local : local start times (naive) [datetime]
    distance_m : run distance [m]
    quality_ok : False for runs too damaged to assess or to count
    bmi_kg_m2 : body-mass index per run or scalar [kg/m²], NaN when unknown

    References
    ----------
    Nielsen RØ et al. (2014). Is it possible to prevent running-related injuries in novice
    runners by running >3 km in week 1? Int J Sports Phys Ther 9(3):338–345.
    """
    good = good_mask(quality_ok)
    n = len(good)
    km = np.where(good, np.asarray(distance_m, dtype="float64") / 1000.0, 0.0)
    km = np.nan_to_num(km)
    bmi = np.broadcast_to(np.asarray(bmi_kg_m2, dtype="float64"), (n,))
    day = local_days(start_local)
    since = day - (day.min() if n else 0)
    week1 = since < T.NEW_RUNNER_WEEK1_DAYS
    early = since < T.NEW_RUNNER_HISTORY_DAYS
    order = np.argsort(local_times(start_local), kind="stable")
    cum = np.empty(n)
    cum[order] = np.cumsum(np.where(week1, km, 0.0)[order])
    hit = week1 & (_round(cum) > T.NEW_RUNNER_WEEK1_KM) & (bmi > T.NEW_RUNNER_BMI)
    level = np.where(hit, MODERATE, NONE).astype(float)
    unknown = early & np.isnan(bmi)
    level[unknown | ~good] = np.nan
    note = notes((~good, QUALITY_NOTE),
                 (unknown, "No height/mass — new-runner rule not assessed"), n=n)
    msg = messages(hit & good,
                   lambda c: (f"{c:.1f} km in your first week of running. With a BMI over 30, "
                              "more than 3 km in week 1 went with more injuries in new runners "
                              "(one cohort); build up gently."), c=cum)
    return rule_frame(pd.Series(start_local).index, level, cum, T.NEW_RUNNER_WEEK1_KM, "km", msg,
                      note)
