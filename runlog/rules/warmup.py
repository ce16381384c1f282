"""Warm-up and cool-down: W1 no easy start before hard running, W2 abrupt finish (tip only).

The warm-up and finish detectors live in runlog.metrics (``warmup_present``, ``hard_start``,
``abrupt_finish``, ``finish_speed_ratio``); these rules only grade them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from runlog.metrics import ABRUPT_FINISH_RATIO, HARD_START_HR_FRAC
from runlog.rules import thresholds as T
from runlog.rules.base import MODERATE, NONE, RuleInfo, rule_frame
from runlog.rules.load import (
    QUALITY_NOTE,
    good_mask,
    local_times,
    messages,
    notes,
    previous_index,
    window_stat,
)

VAN_MECHELEN = ("van Mechelen et al. 1993, Am J Sports Med 21(5):711–719; Fradkin et al. 2006, "
                "J Sci Med Sport 9(3):214–220")
VAN_HOOREN = "Van Hooren & Peake 2018, Sports Med 48(7):1575–1595"

RULES = [
    RuleInfo("no_warmup", "W1", {"knee": 1, "cramp": 1}, "knee+cramp", VAN_MECHELEN,
             max_level=MODERATE),
    RuleInfo("abrupt_finish", "W2", {}, "info", VAN_HOOREN, max_level=MODERATE),
]

WARMUP_TIP = ("Tip: an easy first 5–10 minutes is cheap, though proof that warm-ups prevent "
              "running injuries is weak.")


def _bool(x, n: int) -> pd.Series:
    """True/False/<NA> per run from bools, 0/1, None or NaN."""
    s = pd.Series(np.broadcast_to(np.asarray(x, dtype=object), (n,)))
    return s.astype("boolean")


def intensity_factor(start_local: pd.Series, v_ngp_mps: pd.Series, moving_s: pd.Series,
                     quality_ok: pd.Series) -> pd.Series:
    """IF = v_NGP / v_threshold, v_threshold = best v_NGP of a 30–60-min good run in the last
    90 days (this run included) [design]; NaN without such a run.

    References
    ----------
    rTSS/IF convention (TrainingPeaks; NGP proprietary, 4th-power mean used instead), RULES.md §0.
    """
    good = good_mask(quality_ok)
    v = np.asarray(v_ngp_mps, dtype="float64")
    mv = np.asarray(moving_s, dtype="float64")
    eligible = good & (mv >= T.THRESHOLD_RUN_MIN_S) & (mv <= T.THRESHOLD_RUN_MAX_S)
    v_thr = window_stat(start_local, np.where(eligible, v, np.nan), T.THRESHOLD_WINDOW_DAYS,
                        "max", closed="both").to_numpy()
    return pd.Series(v / np.where(v_thr > 0, v_thr, np.nan), index=pd.Series(start_local).index)


def no_warmup(start_local: pd.Series, elapsed_s: pd.Series, warmup_present: pd.Series,
              main_hr_pct_max: pd.Series, intensity_factor: pd.Series, hard_start: pd.Series,
              warmed_up_before: pd.Series, quality_ok: pd.Series, *,
              has_hr: pd.Series | None = None, hr_max_bpm: pd.Series | None = None,
              hr_max_source: pd.Series | None = None) -> pd.DataFrame:
    """W1: no easy start before a vigorous main part → moderate; no easy start otherwise → tip.

    Vigorous (RULES.md W1) = main-part mean HR ≥ 77 % HRmax (ACSM vigorous band) OR an
    intensity factor ≥ 0.85 OR intervals. runlog has no interval detector: a hard start
    (minutes 3–5 at ≥ v_main and HR > 85 % HRmax) stands in for "intervals" — a documented
    deviation (README, rules). Each test counts when its input is known; intensity is unknown
    only when all three are. Skipped when the runner warmed up before recording or another run
    ended ≤ 30 min earlier. The message names the measured number against its threshold and,
    for HR, which HRmax it was taken with (profile or estimate, :mod:`runlog.hrmax`).

    Parameters
    ----------
    start_local : local start times (naive) [datetime]
    elapsed_s : elapsed time of each run [s] (to find a run that ended ≤ 30 min earlier)
    warmup_present : True/False from the warm-up detector, missing when unknown
    main_hr_pct_max : main-part mean HR / HRmax [fraction], NaN without HR or HRmax
    intensity_factor : v_NGP / v_threshold [-], NaN when unknown
    hard_start : True when minutes 3–5 were hard
    warmed_up_before : runner says they warmed up before recording
    quality_ok : False for runs too damaged to assess
    has_hr : True when the run recorded HR (tells "no HR" from "no HRmax" in the note)
    hr_max_bpm, hr_max_source : the HRmax used [bpm] and where it came from (runs columns
        ``hr_max_used_bpm``, ``hr_max_source``), named in the message

    References
    ----------
    van Mechelen W et al. (1993). Prevention of running injuries by warm-up, cool-down, and
    stretching exercises. Am J Sports Med 21(5):711–719. doi:10.1177/036354659302100513 ;
    Fradkin AJ et al. (2006). J Sci Med Sport 9(3):214–220. doi:10.1016/j.jsams.2006.03.026 ;
    Garber CE et al. (2011). ACSM position stand. Med Sci Sports Exerc 43(7):1334–1359.
    """
    from runlog.hrmax import hr_max_phrase

    idx = pd.Series(start_local).index
    n = len(idx)
    good = good_mask(quality_ok)
    t = local_times(start_local)
    k = previous_index(start_local, np.ones(n, dtype=bool))
    prev_end = t[np.clip(k, 0, None)] + pd.to_timedelta(
        np.nan_to_num(np.asarray(elapsed_s, dtype="float64")[np.clip(k, 0, None)]), unit="s"
    ).to_numpy()
    after_other = (k >= 0) & (t - prev_end <= np.timedelta64(T.PRIOR_ACTIVITY_GAP_MIN * 60, "s"))
    before = _bool(warmed_up_before, n).fillna(False).to_numpy(dtype=bool)
    warm = _bool(warmup_present, n)
    hr = np.asarray(main_hr_pct_max, dtype="float64")
    if_ = np.asarray(intensity_factor, dtype="float64")
    hard = _bool(hard_start, n).fillna(False).to_numpy(dtype=bool)
    recorded_hr = (_bool(has_hr, n).fillna(False).to_numpy(dtype=bool) if has_hr is not None
                   else np.zeros(n, dtype=bool))
    h_max = (np.asarray(hr_max_bpm, dtype="float64") if hr_max_bpm is not None
             else np.full(n, np.nan))
    h_src = (np.asarray(pd.Series(hr_max_source, dtype=object).where(
        pd.Series(hr_max_source, dtype=object).notna(), None), dtype=object)
        if hr_max_source is not None else np.full(n, None, dtype=object))
    # ratios rounded before comparing, so that 0.77 of HRmax is exactly 0.77
    vig_hr = np.round(hr, 9) >= T.VIGOROUS_HR_FRAC
    vig_if = np.round(if_, 9) >= T.VIGOROUS_IF
    vig = vig_hr | vig_if | hard
    unknown_int = np.isnan(hr) & np.isnan(if_) & ~hard
    no_warm = (~warm.fillna(True)).to_numpy(dtype=bool)
    skip = before | after_other
    level = np.where(no_warm & vig & ~skip, MODERATE, NONE).astype(float)
    missing = warm.isna().to_numpy() & ~skip
    level[missing | (no_warm & unknown_int & ~skip) | ~good] = np.nan
    no_pct = np.isnan(hr) & ~skip & no_warm
    note = notes((~good, QUALITY_NOTE), (missing, "No warm-up data — warm-up not assessed"),
                 (no_warm & unknown_int & ~skip, "No HR or pace — warm-up intensity not assessed"),
                 (no_pct & recorded_hr, "No HRmax — intensity from pace"),
                 (no_pct, "No HR — intensity from pace"), n=n)

    def moderate(hr_frac: float, if_value: float, by_hr: bool, by_if: bool, by_hard: bool,
                 hr_max: float, source: object) -> str:
        why = []
        phrase = hr_max_phrase(hr_max, source)
        if by_hr:
            why.append(f"mean HR {hr_frac * 100:.0f} % of HRmax ≥ "
                       f"{T.VIGOROUS_HR_FRAC * 100:.0f} %" + (f", {phrase}" if phrase else ""))
        if by_if:
            why.append(f"IF {if_value:.2f} ≥ {T.VIGOROUS_IF:.2f}")
        if by_hard:
            why.append("hard start: minutes 3–5 at main pace and HR > "
                       f"{HARD_START_HR_FRAC * 100:.0f} % of HRmax"
                       + (f", {phrase}" if phrase and not by_hr else ""))
        return ("No easy first 5–10 minutes before your faster running (" + "; ".join(why)
                + "). Proof that warm-ups prevent running injuries is weak, but an easy start "
                "is cheap.")

    msg = messages(level == MODERATE, moderate, hr_frac=hr, if_value=if_, by_hr=vig_hr,
                   by_if=vig_if, by_hard=hard, hr_max=h_max, source=h_src)
    msg = np.where((level == NONE) & no_warm & ~skip, WARMUP_TIP, msg)
    # value/threshold: the HR test when it is known and decides (or nothing else does)
    use_hr = ~np.isnan(hr) & (vig_hr | ~vig_if)
    value = np.where(use_hr, hr, if_) * 100
    thr = np.where(use_hr, T.VIGOROUS_HR_FRAC, T.VIGOROUS_IF) * 100
    unit = np.where(use_hr, "% HRmax", "% of threshold pace")
    return rule_frame(idx, level, value, thr, unit, msg, note)


def abrupt_finish(abrupt: pd.Series, finish_speed_ratio: pd.Series,
                  quality_ok: pd.Series) -> pd.DataFrame:
    """W2: no easy minutes at the end (last 5 min median v_GAP > 0.85·v_main) — tip only.

    Parameters
    ----------
    abrupt : True when the metrics found no jog-out
    finish_speed_ratio : last-5-min median v_GAP / v_main [-]
    quality_ok : False for runs too damaged to assess

    References
    ----------
    Van Hooren B, Peake JM (2018). Do we need a cool-down after exercise? Sports Med
    48(7):1575–1595. doi:10.1007/s40279-018-0916-2 ; Law RY, Herbert RD (2007). Aust J
    Physiother 53:91–95.
    """
    idx = abrupt.index if hasattr(abrupt, "index") else pd.RangeIndex(len(abrupt))
    n = len(idx)
    good = good_mask(quality_ok)
    a = _bool(abrupt, n)
    level = np.where(a.fillna(False).to_numpy(dtype=bool), MODERATE, NONE).astype(float)
    level[a.isna().to_numpy() | ~good] = np.nan
    note = notes((~good, QUALITY_NOTE),
                 (a.isna().to_numpy(), "No pace at the end — finish not assessed"), n=n)
    msg = messages(level == MODERATE,
                   lambda: ("Tip: a few easy minutes at the end feel better; not shown to "
                            "prevent knee pain."))
    return rule_frame(idx, level, np.asarray(finish_speed_ratio, dtype="float64") * 100,
                      ABRUPT_FINISH_RATIO * 100, "% of main speed", msg, note)
