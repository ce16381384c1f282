"""Cramp rules C1–C3: longer than usual, harder than usual for the length, cramp history."""

from __future__ import annotations

import numpy as np
import pandas as pd

from runlog.rules import thresholds as T
from runlog.rules.base import HIGH, MODERATE, NONE, RuleInfo, rule_frame
from runlog.rules.load import (
    QUALITY_NOTE,
    good_mask,
    history_pairs,
    local_times,
    messages,
    notes,
    pregap_stat,
    window_stat,
)

MARTINEZ = ("Martínez-Navarro et al. 2022, J Strength Cond Res 36(6):1629–1635; Hoffman & "
            "Stuempfle 2015")
SCHWELLNUS = "Schwellnus et al. 2011, Br J Sports Med 45(8):650–656"
HISTORY_SRC = ("Schwellnus et al. 2011, BJSM 45(8):650–656; Hoffman & Stuempfle 2015; "
               "WSU Kona 1989–2019 abstract")

RULES = [
    RuleInfo("longer_than_usual", "C1", {"cramp": 2}, "cramp", MARTINEZ),
    RuleInfo("harder_than_usual", "C2", {"cramp": 2}, "cramp", SCHWELLNUS),
    RuleInfo("cramp_history", "C3", {}, "modifier", HISTORY_SRC, max_level=MODERATE),
]


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    h, m = divmod(minutes, 60)
    return f"{h} h {m} min" if h else f"{m} min"


def longer_than_usual(start_local: pd.Series, moving_s: pd.Series,
                      quality_ok: pd.Series) -> pd.DataFrame:
    """C1: moving time vs the longest good run of the previous 30 days.

    r = moving time / longest in [t − 30 d, t); with no run in that window, the longest of the
    30 days before the last run (the runs before a break). r > 1.2 and ≥ 60 min moderate;
    r > 1.5 and ≥ 90 min high [design].

    Parameters
    ----------
    start_local : local start times (naive) [datetime]
    moving_s : moving time [s]
    quality_ok : False for runs too damaged to assess or to count

    References
    ----------
    Martínez-Navarro I et al. (2022). Muscle cramping in the marathon: dehydration and
    electrolyte depletion vs. muscle damage. J Strength Cond Res 36(6):1629–1635.
    doi:10.1519/JSC.0000000000003713 ; Hoffman MD, Stuempfle KJ (2015). Muscle cramping during
    a 161-km ultramarathon. Sports Med Open 1:24. doi:10.1186/s40798-015-0019-6
    """
    idx = pd.Series(start_local).index
    good = good_mask(quality_ok)
    m = np.asarray(moving_s, dtype="float64")
    ref = window_stat(start_local, np.where(good, m, np.nan), T.LONGER_WINDOW_DAYS,
                      "max").to_numpy()
    pregap = np.isnan(ref)
    ref = np.where(pregap, pregap_stat(start_local, m, good, T.LONGER_WINDOW_DAYS, "max"), ref)
    ref = np.where(ref > 0, ref, np.nan)
    r = np.round(m / ref, 9)
    mins = m / 60.0
    high = (r > T.LONGER_HIGH_RATIO) & (mins >= T.LONGER_HIGH_MIN)
    moderate = (r > T.LONGER_MODERATE_RATIO) & (mins >= T.LONGER_MODERATE_MIN)
    level = np.select([high, moderate], [HIGH, MODERATE], NONE).astype(float)
    level[~good | np.isnan(m) | np.isnan(ref)] = np.nan
    note = notes((~good, QUALITY_NOTE), (np.isnan(m), "No moving time — not assessed"),
                 (np.isnan(ref), "No earlier run to compare — longer-than-usual not assessed"),
                 n=len(m))

    def make(m, r, pre):
        when = "than your runs before the break" if pre else "than anything this month"
        return (f"{_duration(m)}, {(r - 1) * 100:.0f} % longer {when}. Cramps mostly strike "
                "late in unusually long efforts.")

    msg = messages(level >= MODERATE, make, m=m, r=r, pre=pregap)
    thr = np.where(high, T.LONGER_HIGH_RATIO, T.LONGER_MODERATE_RATIO) * 100
    return rule_frame(idx, level, r * 100, thr, "% of longest", msg, note)


def _similar_length(m_j: np.ndarray, m_i: np.ndarray) -> np.ndarray:
    """Moving time m_j [s] within ±25 % of m_i [s] (ratio rounded: 100/80 − 1 is 0.25)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(np.round(m_j / m_i - 1.0, 9)) <= T.COMPARABLE_TIME_FRAC


def _comparables(start_local, moving_s, good, days):
    """(i, j) pairs: good run j strictly before i within ``days`` with moving time ±25 %."""
    i, j = history_pairs(start_local, days)
    m = np.asarray(moving_s, dtype="float64")
    keep = _similar_length(m[j], m[i]) & good[j]
    return i[keep], j[keep]


#: Runs back looked at per step of :func:`latest_comparables` (~10 comparables in ~20 runs).
_STEP_RUNS = 32


def latest_comparables(start_local: pd.Series, moving_s, good: np.ndarray, days: float,
                       count: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) pairs, in no particular order: the ``count`` latest comparable runs j of each run
    i — good, moving time ±25 %, in [t_i − days, t_i) — runs of the same instant in table order.

    Each run's window is walked newest first, 32 runs back per step for all runs at once,
    until it holds ``count`` comparables: ~1 step for most runs instead of a year of pairs.
    """
    t = local_times(start_local)
    n = len(t)
    order = np.argsort(t, kind="stable")
    ts = t[order]
    m = np.asarray(moving_s, dtype="float64")[order]
    ok = np.asarray(good, dtype=bool)[order]
    lo = np.searchsorted(ts, ts - np.timedelta64(int(days * 86400), "s"), side="left")
    hi = np.searchsorted(ts, ts, side="left")           # first run of the same instant
    end = np.searchsorted(ts, ts, side="right")
    # positions newest first, runs of one instant kept in table order: each window [lo, hi)
    # holds whole instants, so it is the slice [n − hi, n − lo) of this sequence
    back = np.arange(n)[::-1]
    newest = hi[back] + end[back] - 1 - back
    width = hi - lo
    found = np.zeros(n, dtype=np.int64)
    todo = np.flatnonzero(width > 0)
    pairs_i, pairs_j = [], []
    for first in range(0, int(width.max(initial=0)), _STEP_RUNS):
        if not todo.size:
            break
        lag = first + np.arange(_STEP_RUNS)
        inside = lag < width[todo, None]
        j = newest[np.minimum((n - hi[todo])[:, None] + lag, n - 1)]
        hit = inside & ok[j] & _similar_length(m[j], m[todo, None])
        rank = found[todo, None] + np.cumsum(hit, axis=1)
        r, c = np.nonzero(hit & (rank <= count))
        pairs_i.append(todo[r])
        pairs_j.append(j[r, c])
        found[todo] = rank[:, -1]
        todo = todo[(found[todo] < count) & (first + _STEP_RUNS < width[todo])]
    if not pairs_i:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    return order[np.concatenate(pairs_i)], order[np.concatenate(pairs_j)]


def quantile_and_max(group: np.ndarray, x: np.ndarray, count: np.ndarray, q: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per group 0…len(count)−1: the ``q`` quantile (linear) and the max of ``x`` (no NaN),
    NaN for an empty group — pandas' ``groupby(group).quantile(q)`` and ``.max()``, from one
    sort of the values instead of a grouped DataFrame.
    """
    empty = count == 0
    if empty.all():
        return np.full(len(count), np.nan), np.full(len(count), np.nan)
    xs = x[np.lexsort((x, group))]
    start = np.cumsum(count) - count
    at = q * (count - 1).astype("float64")
    lo = np.where(empty, 0, start + at.astype(np.int64))      # truncated, as pandas does
    frac = at % 1
    val = xs[lo]
    nxt = xs[np.where(frac == 0.0, lo, np.minimum(lo + 1, len(xs) - 1))]
    quantile = np.where(frac == 0.0, val, val + (nxt - val) * frac)
    top = xs[np.where(empty, 0, start + count - 1)]
    return np.where(empty, np.nan, quantile), np.where(empty, np.nan, top)


def harder_than_usual(start_local: pd.Series, moving_s: pd.Series, hrr_frac: pd.Series,
                      speed_mps: pd.Series, quality_ok: pd.Series,
                      longer_level=0, *, hr_max_bpm: pd.Series | None = None,
                      hr_max_source: pd.Series | None = None) -> pd.DataFrame:
    """C2: effort in the top 10 % of the last 90 days' runs of similar length (±25 % time).

    Effort = mean %HRR when the run has HR (compared with comparables that have HR), else
    grade-adjusted normalised speed (IF ranks runs the same way). Top 10 % — effort at or above
    the 90th percentile (linear) of ≥ 5 comparables, the threshold reported, and above their
    median (which only ties can bring up to that percentile: equal to usual is not harder) —
    and ≥ 45 min → moderate; high when C1 is ≥ moderate [design]. The message gives the
    effort vs that percentile.

    Parameters
    ----------
    start_local : local start times (naive) [datetime]
    moving_s : moving time [s]
    hrr_frac : mean heart-rate reserve fraction [-], NaN without HR
    speed_mps : v_NGP (or v_main GAP) [m/s]
    quality_ok : False for runs too damaged to assess or to count
    longer_level : C1 level per run (0/1/2, NaN)
    hr_max_bpm, hr_max_source : the HRmax the %HRR was taken with [bpm] and its source
        (runs ``hr_max_used_bpm``/``hr_max_source``), named in an HR message

    References
    ----------
    Schwellnus MP et al. (2011). Increased running speed and previous cramps rather than
    dehydration or serum sodium changes predict exercise-associated muscle cramping: a
    prospective cohort study in 210 Ironman triathletes. Br J Sports Med 45(8):650–656.
    doi:10.1136/bjsm.2010.078535
    """
    idx = pd.Series(start_local).index
    n = len(idx)
    good = good_mask(quality_ok)
    m = np.asarray(moving_s, dtype="float64")
    hrr = np.asarray(hrr_frac, dtype="float64")
    v = np.asarray(speed_mps, dtype="float64")
    use_hr = ~np.isnan(hrr)
    own = np.where(use_hr, hrr, v)
    i, j = _comparables(start_local, m, good, T.HARDER_WINDOW_DAYS)
    other = np.where(use_hr[i], hrr[j], v[j])
    known = ~np.isnan(other)
    i, other = i[known], other[known]
    count = np.bincount(i, minlength=n)
    q, top = quantile_and_max(i, other, count, T.HARDER_PERCENTILE)
    mid, _ = quantile_and_max(i, other, count, 0.5)
    # RULES.md C2: ≥ the 90th percentile — the very threshold the flag reports. Only ties can
    # put that percentile on the median; a run no harder than its median comparable is not
    # harder than usual.
    hit = ((np.round(own - q, 9) >= 0) & (np.round(own - mid, 9) > 0)
           & (m / 60.0 >= T.HARDER_MIN_MIN))
    c1 = np.broadcast_to(np.asarray(longer_level, dtype="float64"), (n,))
    level = np.where(hit, np.where(c1 >= MODERATE, HIGH, MODERATE), NONE).astype(float)
    few = count < T.HARDER_MIN_COMPARABLES
    level[~good | np.isnan(own) | few] = np.nan
    note = notes((~good, QUALITY_NOTE),
                 (np.isnan(own), "No HR or pace — effort not assessed"),
                 (few, "Under 5 similar-length runs in 90 days — harder-than-usual not "
                       "assessed"),
                 (~use_hr, "No HR — intensity from pace"), n=n)

    from runlog.hrmax import hr_max_phrase

    h_max = (np.broadcast_to(np.asarray(hr_max_bpm, dtype="float64"), (n,))
             if hr_max_bpm is not None else np.full(n, np.nan))
    h_src = (np.asarray(pd.Series(hr_max_source, dtype=object).where(
        pd.Series(hr_max_source, dtype=object).notna(), None), dtype=object)
        if hr_max_source is not None else np.full(n, None, dtype=object))

    def make(own, q, top, hr, k, hr_max, source):
        word = "hardest" if hr else "fastest"
        lead = (f"Your {word} run of this length in 3 months" if own > top
                else "At or above the 90th percentile of your effort on runs of this length in "
                "the last 3 months")
        phrase = hr_max_phrase(hr_max, source) if hr else ""
        shown = (f"mean {own * 100:.0f} % of heart-rate reserve vs {q * 100:.0f} %" if hr
                 else f"grade-adjusted speed {own:.2f} m/s vs {q:.2f} m/s")
        shown += f"; {phrase}" if phrase else ""
        return (f"{lead} ({shown}, the 90th percentile of {k:.0f} runs within ±25 % of this "
                "moving time) — going above usual effort is one of the few consistent cramp "
                "risk factors.")

    msg = messages(level >= MODERATE, make, own=own, q=q, top=top, hr=use_hr, k=count,
                   hr_max=h_max, source=h_src)
    scale = np.where(use_hr, 100.0, 1.0)
    unit = np.where(use_hr, "% HRR", "m/s")
    return rule_frame(idx, level, own * scale, q * scale, unit, msg, note)


def cramp_history(start_local: pd.Series, moving_s: pd.Series, cramp: pd.Series,
                  quality_ok: pd.Series, cramp_prone=False) -> pd.DataFrame:
    """C3 (modifier): cramp logged on ≥ 1 of the last 10 comparable runs, or prone to cramps.

    Comparable = good run strictly before, moving time ±25 %, within the last 365 days [design].
    risk.py adds +1 cramp level when the cramp score is ≥ 2. A run with quality_ok False is
    not assessed (as by every rule), whatever its history or the profile says.

    Parameters
    ----------
    start_local : local start times (naive) [datetime]
    moving_s : moving time [s]
    cramp : True/False/missing cramp logged for each run
    quality_ok : False for runs too damaged to assess or to count as comparable
    cramp_prone : the runner's profile says prone to cramps (scalar or per run)

    References
    ----------
    Schwellnus MP et al. (2011). Br J Sports Med 45(8):650–656. doi:10.1136/bjsm.2010.078535 ;
    Hoffman MD, Stuempfle KJ (2015). Sports Med Open 1:24. doi:10.1186/s40798-015-0019-6
    """
    idx = pd.Series(start_local).index
    n = len(idx)
    good = good_mask(quality_ok)
    cr = pd.Series(np.asarray(cramp, dtype=object)).astype("boolean").fillna(False).to_numpy(
        dtype=bool)
    i, j = latest_comparables(start_local, moving_s, good, T.CRAMP_HISTORY_WINDOW_DAYS,
                              T.CRAMP_HISTORY_RUNS)
    hits = np.bincount(i, weights=cr[j], minlength=n).astype("float64")
    prone = np.broadcast_to(pd.Series(np.atleast_1d(np.asarray(cramp_prone, dtype=object)))
                            .astype("boolean").fillna(False).to_numpy(dtype=bool), (n,))
    level = np.where((hits > 0) | prone, MODERATE, NONE).astype(float)
    level[~good] = np.nan
    hits[~good] = np.nan
    note = notes((~good, QUALITY_NOTE), n=n)

    def make(hits, prone):
        if hits > 0:
            return (f"Cramps logged on {hits:.0f} of your last {T.CRAMP_HISTORY_RUNS} similar "
                    "runs — earlier cramps are one of the few consistent cramp risk factors.")
        return ("You are prone to cramps — earlier cramps are one of the few consistent cramp "
                "risk factors.")

    msg = messages(level >= MODERATE, make, hits=hits, prone=prone)
    return rule_frame(idx, level, hits, 1.0, "runs", msg, note)
