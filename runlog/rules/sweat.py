"""Sweat, fluid and sodium: S1 sweat-rate tiers, S2 fluid deficit, S3 sodium without electrolytes.

Every number here is an estimate with a wide error; messages say so. Fluid advice is always
"drink to thirst; replace roughly what you lose" — never a fixed volume (Miller 2015).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from runlog.rules import thresholds as T
from runlog.rules.base import MODERATE, NONE, RuleInfo, rule_frame
from runlog.rules.load import messages, notes

SAWKA = "Sawka et al. 2007 ACSM fluid replacement, Med Sci Sports Exerc 39(2):377–390"
BARNES_BAKER = ("Barnes et al. 2019, J Sports Sci doi:10.1080/02640414.2019.1633159; "
                "Baker et al. 2016, J Sports Sci 34(4):358–368")

RULES = [
    RuleInfo("fluid_deficit", "S2", {"cramp": 1}, "cramp", SAWKA),
    RuleInfo("sodium_no_electrolytes", "S3", {"cramp": 1}, "cramp", BARNES_BAKER,
             max_level=MODERATE),
]

TIER_MEASURED = "measured"
TIER_TYPICAL = "typical, mostly warm sessions"
FLUID_ADVICE = "Drink to thirst; replace roughly what you lose."


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype="float64")


def _index(x) -> pd.Index:
    return x.index if hasattr(x, "index") else pd.RangeIndex(len(np.atleast_1d(x)))


def _loss_word(tier: str) -> str:
    """'Measured' for a loss from the runner's own weighings, else 'Estimated'."""
    return "Measured" if tier == TIER_MEASURED else "Estimated"


def sweat_rate(mass_before_kg, mass_after_kg, fluid_l, duration_h):
    """S1: sweat rate [L/h] with a low–high band and its tier, per run.

    Tier 1 (measured): (mass_before − mass_after + fluid drunk) / hours, urine not logged, band
    ± two scale errors. Otherwise tier 3: the endurance-athlete default 1.28 ± 0.57 L/h (Barnes
    2019), labelled "typical, mostly warm sessions". The Gonzalez model (tier 2) is kept apart in
    :func:`sweat_rate_gonzalez` and not used by default.

    Parameters
    ----------
    mass_before_kg, mass_after_kg : body mass before/after the run [kg], NaN if not weighed
    fluid_l : fluid drunk during the run [L], NaN = not logged (counted as 0 for the balance)
    duration_h : duration of the session [h]

    Returns
    -------
    (rate_lph, low_lph, high_lph, tier) arrays.

    References
    ----------
    Baker LB (2017). Sweating rate and sweat sodium concentration in athletes. Sports Med
    47(Suppl 1):111–128. doi:10.1007/s40279-017-0691-5 ; Barnes KA et al. (2019). Normative data
    for sweating rate, sweat sodium concentration, and sweat sodium loss in athletes.
    J Sports Sci 37(20):2356–2366. doi:10.1080/02640414.2019.1633159
    """
    mb, ma, h = _f(mass_before_kg), _f(mass_after_kg), _f(duration_h)
    mb, ma, h = np.broadcast_arrays(mb, ma, h)
    fluid = np.nan_to_num(np.broadcast_to(_f(fluid_l), mb.shape))
    with np.errstate(invalid="ignore", divide="ignore"):
        measured = np.clip((mb - ma + fluid) / h, 0.0, None)
        err = 2 * T.SCALE_ERROR_KG / h
    ok = ~np.isnan(measured) & (h > 0)
    rate = np.where(ok, measured, T.SWEAT_RATE_DEFAULT_LPH)
    low = np.where(ok, np.clip(measured - err, 0.0, None),
                   T.SWEAT_RATE_DEFAULT_LPH - T.SWEAT_RATE_SD_LPH)
    high = np.where(ok, measured + err, T.SWEAT_RATE_DEFAULT_LPH + T.SWEAT_RATE_SD_LPH)
    tier = np.where(ok, TIER_MEASURED, TIER_TYPICAL).astype(object)
    return rate, low, high, tier


def body_surface_area_m2(mass_kg, height_cm) -> np.ndarray:
    """DuBois body surface area [m²] = 0.007184 · kg^0.425 · cm^0.725."""
    return 0.007184 * np.power(_f(mass_kg), 0.425) * np.power(_f(height_cm), 0.725)


def sweat_rate_gonzalez(e_req_w_m2, e_max_w_m2, mass_kg, height_cm, temp_air_c) -> np.ndarray:
    """S1 tier 2 (EXPERIMENTAL, not used by default): Gonzalez sweat-loss model [L/h].

    m_sw [g·m⁻²·h⁻¹] = 147 + 1.527·E_req − 0.87·E_max (350 + … below 20 °C, Gonzalez 2012);
    SR = m_sw · BSA / 1000, clamped to 0.2–2.5 L/h. Validated for military clothing, walking
    speeds and ≤ 450 W/m²; runners exceed that range, so RULES.md keeps it behind a flag until
    checked against measured sweat rates.

    References
    ----------
    Gonzalez RR et al. (2009). Expanded prediction equations of human sweat loss and water
    needs. J Appl Physiol 107(2):379–388. doi:10.1152/japplphysiol.00089.2009
    """
    base = np.where(_f(temp_air_c) < 20.0, 350.0, 147.0)
    m_sw = base + 1.527 * _f(e_req_w_m2) - 0.87 * _f(e_max_w_m2)
    sr = m_sw * body_surface_area_m2(mass_kg, height_cm) / 1000.0
    return np.clip(sr, T.SWEAT_RATE_MIN_LPH, T.SWEAT_RATE_MAX_LPH)


def fluid_deficit(sweat_rate_lph, sweat_low_lph, sweat_high_lph, tier, duration_h, fluid_l,
                  body_mass_kg) -> pd.DataFrame:
    """S2: estimated sweat loss minus fluid drunk, as % of body mass.

    deficit % = (SR·h − fluid) / mass · 100, fluid = 0 if not logged ("if you drank nothing").
    Levels: ≥ 2 % moderate (ACSM: prevent > 2 % loss), ≥ 3 % high [design]. Not assessed
    without body mass. The cramp link is conflicting (Schwellnus 2011 vs WSU Kona abstract).

    Parameters
    ----------
    sweat_rate_lph, sweat_low_lph, sweat_high_lph : S1 estimate and band [L/h]
    tier : S1 tier label per run
    duration_h : session duration [h]
    fluid_l : fluid drunk [L], NaN = not logged
    body_mass_kg : body mass [kg], NaN = unknown

    References
    ----------
    Sawka MN et al. (2007). ACSM position stand: exercise and fluid replacement. Med Sci Sports
    Exerc 39(2):377–390. doi:10.1249/mss.0b013e31802ca597
    """
    idx = _index(duration_h)
    h, mass = _f(duration_h), _f(body_mass_kg)
    h, mass = np.broadcast_arrays(h, np.broadcast_to(mass, h.shape))
    fluid_raw = np.broadcast_to(_f(fluid_l), h.shape)
    fluid = np.nan_to_num(fluid_raw)
    loss, lo, hi = _f(sweat_rate_lph) * h, _f(sweat_low_lph) * h, _f(sweat_high_lph) * h
    pct = np.round((loss - fluid) / mass * 100.0, 9)
    level = np.select([pct >= T.DEFICIT_HIGH_PCT, pct >= T.DEFICIT_MODERATE_PCT],
                      [2, MODERATE], NONE).astype(float)
    level[np.isnan(mass) | np.isnan(h)] = np.nan
    note = notes((np.isnan(mass), "No body mass — fluid deficit not assessed"),
                 (np.isnan(h), "No duration — fluid deficit not assessed"), n=len(h))

    def make(loss, lo, hi, pct, tier, fluid, drank):
        how = f"after the {fluid:.1f} L you logged" if drank else "if you drank nothing"
        return (f"{_loss_word(tier)} sweat loss {loss:.1f} L ({lo:.1f}–{hi:.1f} L; {tier}), "
                f"~{pct:.1f} % of body weight {how}. {FLUID_ADVICE}")

    msg = messages(level >= MODERATE, make, loss=loss, lo=lo, hi=hi, pct=pct,
                   tier=np.broadcast_to(np.asarray(tier, dtype=object), h.shape), fluid=fluid,
                   drank=~np.isnan(fluid_raw))
    thr = np.where(pct >= T.DEFICIT_HIGH_PCT, T.DEFICIT_HIGH_PCT, T.DEFICIT_MODERATE_PCT)
    return rule_frame(idx, level, pct, thr, "%", msg, note)


def sodium_loss_mg(sweat_l, sodium_mmol_l=T.SWEAT_NA_MMOL_L) -> np.ndarray:
    """Sodium lost in sweat [mg] = sweat [L] · [Na] [mmol/L] · 22.99 [mg/mmol]."""
    return _f(sweat_l) * _f(sodium_mmol_l) * T.NA_MG_PER_MMOL


def sodium_no_electrolytes(sweat_rate_lph, sweat_low_lph, sweat_high_lph, tier, duration_h,
                           electrolytes, sodium_mg, body_mass_kg=np.nan,
                           wbgt_c=np.nan) -> pd.DataFrame:
    """S3: estimated sodium loss on a long run with no electrolytes logged.

    Na [mg] = SR·h·[Na]·22.99 − logged Na, [Na] 36 (26–46) mmol/L (Baker 2016). Moderate when
    the run lasted ≥ 2 h, the upper-bound loss is ≥ 1.5 g and nothing was logged (electrolytes
    not True and no sodium_mg) [design]. Numbers are shown (level 0) whenever ≥ 60 min or WBGT
    ≥ 18 °C. Evidence that salt prevents cramps is weak (Schwellnus 2009; Miller 2022).

    Parameters
    ----------
    sweat_rate_lph, sweat_low_lph, sweat_high_lph : S1 estimate and band [L/h]
    tier : S1 tier label per run
    duration_h : session duration [h]
    electrolytes : True / False / missing per run
    sodium_mg : sodium taken during the run [mg], NaN = not logged
    body_mass_kg : body mass [kg] for the "% of body weight" part of the message
    wbgt_c : estimated WBGT [°C], NaN when unknown

    Returns
    -------
    rule_frame with value = upper-bound sodium loss [g], threshold 1.5 [g].

    References
    ----------
    Baker LB et al. (2016). Normative data for regional sweat sodium concentration and whole-body
    sweating rate in athletes. J Sports Sci 34(4):358–368. doi:10.1080/02640414.2015.1049200 ;
    Barnes KA et al. (2019). J Sports Sci. doi:10.1080/02640414.2019.1633159 ; Miller KC et al.
    (2022). J Athl Train 57(1):5–15. doi:10.4085/1062-6050-0696.20
    """
    idx = _index(duration_h)
    h = _f(duration_h)
    n = h.shape
    logged_raw = np.broadcast_to(_f(sodium_mg), n)
    logged = np.nan_to_num(logged_raw)
    took = pd.Series(np.broadcast_to(np.asarray(electrolytes, dtype=object), n)).astype(
        "boolean").fillna(False).to_numpy(dtype=bool)
    nothing = ~took & ~(logged_raw > 0)   # no electrolytes, and no (or 0 mg) sodium
    sweat, lo_l, hi_l = _f(sweat_rate_lph) * h, _f(sweat_low_lph) * h, _f(sweat_high_lph) * h
    na = np.clip(sodium_loss_mg(sweat) - logged, 0, None)
    na_lo = np.clip(sodium_loss_mg(lo_l, T.SWEAT_NA_LOW_MMOL_L) - logged, 0, None)
    na_hi = np.clip(sodium_loss_mg(hi_l, T.SWEAT_NA_HIGH_MMOL_L) - logged, 0, None)
    hit = (h >= T.SODIUM_MIN_DURATION_H) & (np.round(na_hi, 6) >= T.SODIUM_UPPER_MG) & nothing
    level = np.where(hit, MODERATE, NONE).astype(float)
    level[np.isnan(h)] = np.nan
    note = notes((np.isnan(h), "No duration — sodium not assessed"), n=len(h))
    mass = np.broadcast_to(_f(body_mass_kg), n)
    show = (h * 60 >= T.SODIUM_SHOW_MIN) | (np.broadcast_to(_f(wbgt_c), n) >= T.SODIUM_SHOW_WBGT_C)

    def make(s, sl, sh, pct, na, nl, nh, tier, nothing, took, logged):
        body = f", ~{pct:.1f} % of body weight if you drank nothing" if pct == pct else ""
        if nothing:
            what = "No electrolytes logged."
        elif logged > 0:
            what = f"After the {logged:.0f} mg of sodium you logged."
        else:
            what = "Electrolytes logged."
        return (f"{_loss_word(tier)} sweat loss {s:.1f} L ({sl:.1f}–{sh:.1f} L; {tier}){body}; "
                "sodium "
                f"~{na / 1000:.1f} g ({nl / 1000:.1f}–{nh / 1000:.1f} g). {what} Salt may matter "
                "on long sweaty runs, but evidence that it prevents cramps is weak. "
                f"{FLUID_ADVICE}")

    msg = messages((show | hit) & ~np.isnan(h), make, s=sweat, sl=lo_l, sh=hi_l,
                   pct=sweat / mass * 100, na=na, nl=na_lo, nh=na_hi,
                   tier=np.broadcast_to(np.asarray(tier, dtype=object), n), nothing=nothing,
                   took=took, logged=logged)
    return rule_frame(idx, level, na_hi / 1000.0, T.SODIUM_UPPER_MG / 1000.0, "g", msg, note)
