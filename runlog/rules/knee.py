"""Knee rules K1–K4: cadence below your usual, descent spike, shoes, recent knee pain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from runlog.rules import thresholds as T
from runlog.rules.base import HIGH, MODERATE, NONE, RuleInfo, rule_frame
from runlog.rules.load import (
    QUALITY_NOTE,
    good_mask,
    local_times,
    messages,
    notes,
    rolling_within,
    window_stat,
)

HEIDERSCHEIT = ("Heiderscheit et al. 2011, Med Sci Sports Exerc 43(2):296–302; Lenhart et al. "
                "2014, MSSE 46(3):557–564")
GOTTSCHALL = ("Gottschall & Kram 2005, J Biomech 38:445–452; Bontemps et al. 2020, Sports Med "
              "50(12):2083–2110")
SHOES_SRC = ("Malisoux et al. 2015, Scand J Med Sci Sports 25:110–115; "
             "Arnold 2024 (The Conversation)")
SILBERNAGEL = "Silbernagel et al. 2007 pain-monitoring model (adapted); van der Worp et al. 2015"

RULES = [
    RuleInfo("low_cadence", "K1", {"knee": 2}, "knee", HEIDERSCHEIT, max_level=MODERATE),
    RuleInfo("descent_spike", "K2", {"knee": 2, "cramp": 1}, "knee+cramp", GOTTSCHALL),
    RuleInfo("shoes", "K3", {"knee": 1}, "knee", SHOES_SRC, max_level=MODERATE),
    RuleInfo("knee_pain_recent", "K4", {}, "modifier", SILBERNAGEL),
]


def _same_bin_window(speed_bin: np.ndarray, t_ns: np.ndarray, days: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Rows [start, end) of the same speed bin with t in [t − days, t), for rows sorted by
    (bin, t) — the windows of a per-bin ``rolling(f"{days}D", closed="left")``."""
    if not len(t_ns):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    group = np.r_[0, np.cumsum(speed_bin[1:] != speed_bin[:-1])]
    # (bin, time rank) as one sortable integer: times ranked among the distinct instants
    instants = np.unique(t_ns)
    stride = len(instants) + 1
    key = group * stride + np.searchsorted(instants, t_ns)
    since = group * stride + np.searchsorted(instants, t_ns - int(days * 86400 * 10**9))
    return np.searchsorted(key, since, side="left"), np.searchsorted(key, key, side="left")


def low_cadence(run_id: pd.Series, start_local: pd.Series, quality_ok: pd.Series,
                cadence_bins: pd.DataFrame, avg_cadence_spm=np.nan,
                easy=False) -> pd.DataFrame:
    """K1: cadence below the runner's own usual at the same grade-adjusted speed.

    Baseline per 0.25 m/s bin = median of the per-run median cadences of good runs in the 60
    days before this run (≥ 3 runs in the bin). Δ = minutes-weighted mean of (cadence −
    baseline)/baseline over the run's bins with a baseline (at least half its binned minutes).
    Δ ≤ −5 % → moderate (max moderate). No absolute target: 180 spm is not a norm.

    Parameters
    ----------
    run_id : run id per run (aligned with start_local)
    start_local : local start times (naive) [datetime]
    quality_ok : False for runs too damaged to assess or to count
    cadence_bins : rows (run_id, speed_bin_mps [m/s], minutes [min], median_cadence_spm [spm])
    avg_cadence_spm : the run's mean cadence [steps/min], for the easy-pace tip (level 0)
    easy : True where the run was easy (main HR < 77 % HRmax); with cadence < 166 spm a tip
        is shown, never scored

    References
    ----------
    Heiderscheit BC et al. (2011). Effects of step rate manipulation on joint mechanics during
    running. Med Sci Sports Exerc 43(2):296–302. doi:10.1249/MSS.0b013e3181ebedf4 ;
    Lenhart RL et al. (2014). Med Sci Sports Exerc 46(3):557–564.
    doi:10.1249/MSS.0000000000000159
    """
    idx = pd.Series(start_local).index
    n = len(idx)
    good = good_mask(quality_ok)
    t = local_times(start_local).astype("datetime64[ns]").view("int64")
    cols = ["run_id", "speed_bin_mps", "minutes", "median_cadence_spm"]
    bins = cadence_bins if len(cadence_bins) else pd.DataFrame(columns=cols)
    # the bins of the runs assessed (run ids are unique), in the bins' order; Arrow's hash
    # lookup is ~8× pandas' on Arrow strings
    pos = pc.fill_null(pc.index_in(
        pa.array(bins["run_id"].array, type=pa.large_string()),
        value_set=pa.array(np.asarray(run_id, dtype=object), type=pa.large_string())),
        -1).to_numpy()
    known = pos >= 0

    def numbers(c: str) -> np.ndarray:
        return pd.to_numeric(bins[c], errors="coerce").to_numpy(dtype="float64",
                                                              na_value=np.nan)[known]

    speed, minutes, cad = numbers("speed_bin_mps"), numbers("minutes"), numbers(
        "median_cadence_spm")
    pos = pos[known]
    use = (minutes > 0) & ~np.isnan(cad)
    speed, minutes, cad, pos = speed[use], minutes[use], cad[use], pos[use]
    # by bin, then time (stable); baseline window: same bin, t in [t − 60 d, t)
    order = np.lexsort((t[pos], speed))
    speed, minutes, cad, pos = speed[order], minutes[order], cad[order], pos[order]
    start, end = _same_bin_window(speed, t[pos], T.CADENCE_BASELINE_DAYS)
    counted = np.where(good[pos], cad, np.nan)
    base = rolling_within(counted, start, end, "median")
    seen = np.r_[0, np.cumsum(~np.isnan(counted))]
    ok = (seen[end] - seen[start] >= T.CADENCE_MIN_RUNS_PER_BIN) & (base > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w_rel = np.where(ok, (cad - base) / base * minutes, 0.0)
    # pandas' grouped sum (compensated, in bin order) keeps the per-run totals bit-identical
    sums = pd.DataFrame({"w_rel": w_rel, "w_ok": np.where(ok, minutes, 0.0),
                         "minutes": minutes}).groupby(pos).sum()
    per = {c: np.full(n, np.nan) for c in sums.columns}
    for c in sums.columns:
        per[c][sums.index.to_numpy()] = sums[c].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.round(per["w_rel"] / np.where(per["w_ok"] > 0, per["w_ok"], np.nan), 9)
        coverage = per["w_ok"] / per["minutes"]
    no_cad = np.isnan(per["minutes"]) | (np.nan_to_num(per["minutes"]) <= 0)
    thin = ~no_cad & ~(coverage >= T.CADENCE_MIN_COVERAGE)
    level = np.where(delta <= T.CADENCE_DROP_FRAC, MODERATE, NONE).astype(float)
    level[no_cad | thin | ~good] = np.nan
    note = notes((~good, QUALITY_NOTE), (no_cad, "No cadence — cadence rule not assessed"),
                 (thin, "Too few runs at this pace in the last 60 days — cadence rule not "
                        "assessed"), n=n)
    msg = messages(level == MODERATE,
                   lambda d: (f"Cadence {abs(d) * 100:.0f} % below your usual at this pace — "
                              "longer strides load the knee more; often fatigue."), d=delta)
    avg = np.broadcast_to(np.asarray(avg_cadence_spm, dtype="float64"), (n,))
    is_easy = np.broadcast_to(pd.Series(np.atleast_1d(np.asarray(easy, dtype=object)))
                              .astype("boolean").fillna(False).to_numpy(dtype=bool), (n,))
    tip = (level == NONE) & is_easy & (avg < T.CADENCE_EASY_TIP_SPM)
    msg = np.where(tip, messages(tip, lambda c: (
        f"Tip: easy-pace cadence {c:.0f} spm. Slightly quicker, shorter steps lower knee load "
        "in lab studies; there is no universal target (180 is not a norm)."), c=avg), msg)
    value = np.where(np.isnan(level), np.nan, delta * 100)
    return rule_frame(idx, level, value, T.CADENCE_DROP_FRAC * 100, "%", msg, note)


def descent_spike(start_local: pd.Series, descent_m: pd.Series, steep_descent_min: pd.Series,
                  quality_ok: pd.Series) -> pd.DataFrame:
    """K2: descent vs the most of any good run in the previous 30 days.

    r = D− / max D−(30 d). Moderate: r > 1.3 and D− ≥ 150 m, or steep minutes S− > 2× their 30-d
    max and ≥ 10 min; high: r > 2 and D− ≥ 300 m [design].

    Parameters
    ----------
    start_local : local start times (naive) [datetime]
    descent_m : total smoothed descent [m]
    steep_descent_min : minutes on grades ≤ −8 % over ≥ 50 m [min]
    quality_ok : False for runs too damaged to assess or to count

    References
    ----------
    Gottschall JS, Kram R (2005). Ground reaction forces during downhill and uphill running.
    J Biomech 38(3):445–452. doi:10.1016/j.jbiomech.2004.04.023 ; Bontemps B et al. (2020).
    Downhill running: what are the effects and how can we adapt? Sports Med 50(12):2083–2110.
    doi:10.1007/s40279-020-01355-z
    """
    idx = pd.Series(start_local).index
    good = good_mask(quality_ok)
    d = np.asarray(descent_m, dtype="float64")
    s = np.asarray(steep_descent_min, dtype="float64")
    max_d = window_stat(start_local, np.where(good, d, np.nan), T.DESCENT_WINDOW_DAYS,
                        "max").to_numpy()
    max_s = window_stat(start_local, np.where(good, s, np.nan), T.DESCENT_WINDOW_DAYS,
                        "max").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.round(np.where(max_d > 0, d / max_d, np.where(d > 0, np.inf, 0.0)), 9)
    steep = (s > T.STEEP_DESCENT_RATIO * np.nan_to_num(max_s)) & (s >= T.STEEP_DESCENT_MIN)
    high = (r > T.DESCENT_HIGH_RATIO) & (d >= T.DESCENT_HIGH_M)
    moderate = ((r > T.DESCENT_MODERATE_RATIO) & (d >= T.DESCENT_MODERATE_M)) | steep
    level = np.select([high, moderate], [HIGH, MODERATE], NONE).astype(float)
    no_hist = np.isnan(max_d)
    level[~good | np.isnan(d) | no_hist] = np.nan
    note = notes((~good, QUALITY_NOTE), (np.isnan(d), "No elevation — descent not assessed"),
                 (no_hist, "No run in the previous 30 days — descent not assessed"), n=len(d))

    def make(d, r, m):
        how = ("more than ever this month" if not np.isfinite(r)
               else f"about {r:.1f}× your most this month ({m:.0f} m)")
        return (f"{d:.0f} m of descent, {how}. Downhills load the front of the knee and "
                "thighs; add descent gradually.")

    msg = messages(level >= MODERATE, make, d=d, r=r, m=max_d)
    thr = max_d * np.where(high, T.DESCENT_HIGH_RATIO, T.DESCENT_MODERATE_RATIO)
    return rule_frame(idx, level, d, thr, "m", msg, note)


def shoes(start_local: pd.Series, distance_m: pd.Series, shoe_name: pd.Series,
          shoe_type: pd.Series) -> pd.DataFrame:
    """K3: non-running footwear (sandals, slippers) → moderate; shoe mileage as information.

    Mileage = cumulative distance of runs with the same shoe name up to and including this run;
    ≥ 500 km info, ≥ 800 km stronger info (convention from material tests, not injury data).
    Not assessed when neither a shoe type nor a shoe name is known (a named shoe from an export's
    gear list is taken to be a running shoe).

    Parameters
    ----------
    start_local : local start times (naive) [datetime]
    distance_m : run distance [m]
    shoe_name : shoe name (annotation, else the export's gear), missing when unknown
    shoe_type : running | sandals | slippers | barefoot | other, missing when unknown

    References
    ----------
    Malisoux L et al. (2015). Can parallel use of different running shoes decrease running-
    related injury risk? Scand J Med Sci Sports 25(1):110–115. doi:10.1111/sms.12154
    """
    idx = pd.Series(start_local).index
    n = len(idx)
    name = pd.Series(np.asarray(shoe_name, dtype=object)).astype("string").str.strip()
    name = name.mask(name == "")
    typ = pd.Series(np.asarray(shoe_type, dtype=object)).astype("string").str.lower().str.strip()
    km = np.nan_to_num(np.asarray(distance_m, dtype="float64") / 1000.0)
    t = local_times(start_local)
    order = np.argsort(t, kind="stable")
    frame = pd.DataFrame({"name": name.to_numpy()[order], "km": km[order]})
    cum_sorted = frame.groupby("name", dropna=True)["km"].cumsum().reindex(frame.index)
    cum = np.empty(n)
    cum[order] = cum_sorted.to_numpy(dtype="float64", na_value=np.nan)
    bad = typ.isin(T.NON_RUNNING_FOOTWEAR).to_numpy()
    level = np.where(bad, MODERATE, NONE).astype(float)
    unknown = (typ.isna() & name.isna()).to_numpy()
    level[unknown] = np.nan
    note = notes((unknown, "No shoes logged — footwear not assessed"), n=n)

    def make(bad, typ, km):
        parts = []
        if bad:
            parts.append(f"Running in {typ}: non-running footwear is advised against "
                         "(expert advice, no injury data).")
        if km >= T.SHOE_INFO_KM:
            strong = " — many runners replace shoes by now" if km >= T.SHOE_STRONG_INFO_KM else ""
            parts.append(f"{km:.0f} km on these shoes{strong}. Replacement mileage is a rule of "
                         "thumb; rotating pairs was linked to fewer injuries in one study.")
        return " ".join(parts)

    msg = messages(bad | (cum >= T.SHOE_INFO_KM), make, bad=bad,
                   typ=typ.fillna("").to_numpy(dtype=object), km=np.nan_to_num(cum))
    thr = np.where(cum >= T.SHOE_INFO_KM, T.SHOE_STRONG_INFO_KM, T.SHOE_INFO_KM)
    return rule_frame(idx, level, cum, thr, "km", msg, note)


def knee_pain_recent(start_local: pd.Series, knee_pain: pd.Series,
                     knee_pain_next_morning: pd.Series) -> pd.DataFrame:
    """K4 (modifier): knee pain logged on runs in the 14 days before this run.

    Level 1 (knee risk +1) for any pain > 0/10; level 2 (knee risk → high, "see a
    physiotherapist/doctor if it persists") for pain > 5/10 or pain not settled by the next
    morning. Pain is a runner's report, so runs with poor GPS data still count.

    Parameters
    ----------
    start_local : local start times (naive) [datetime]
    knee_pain : knee pain 0–10 logged for each run, NaN when not logged
    knee_pain_next_morning : True when the pain had not settled by the next morning

    References
    ----------
    Silbernagel KG et al. (2007). Continued sports activity, using a pain-monitoring model,
    during rehabilitation in patients with Achilles tendinopathy. Am J Sports Med
    35(6):897–906. doi:10.1177/0363546506298279 (adapted; not validated for the knee)
    """
    idx = pd.Series(start_local).index
    pain = np.asarray(knee_pain, dtype="float64")
    morning = pd.Series(np.asarray(knee_pain_next_morning, dtype=object)).astype(
        "boolean").fillna(False).to_numpy(dtype=float)
    top = window_stat(start_local, pain, T.KNEE_PAIN_WINDOW_DAYS, "max").to_numpy()
    late = window_stat(start_local, morning, T.KNEE_PAIN_WINDOW_DAYS, "max").to_numpy()
    level = np.select([(top > T.KNEE_PAIN_HIGH) | (late > 0), top > 0], [HIGH, MODERATE], NONE)

    def make(top, lvl, late):
        p = f"up to {top:.0f}/10" if top == top and top > 0 else "pain"
        if lvl == HIGH:
            why = " that had not settled by the next morning" if late > 0 else ""
            return (f"Knee pain ({p}) logged in the last 14 days{why}: ease off, and see a "
                    "physiotherapist/doctor if it persists.")
        return (f"Knee pain ({p}) logged in the last 14 days: keep it at 3/10 or less and "
                "settled by the next day (a pain-monitoring guide from Achilles-tendon "
                "rehabilitation, not tested for the knee).")

    msg = messages(level >= MODERATE, make, top=top, lvl=level, late=late)
    return rule_frame(idx, level.astype(float), top, T.KNEE_PAIN_HIGH, "/10", msg, "")
