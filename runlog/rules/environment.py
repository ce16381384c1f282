"""Weather formulas and rules H0–H2, D1–D2: heat index, approximate WBGT, wind chill, cold.

Formula functions (:func:`heat_index_nws`, :func:`wbgt_bom`, :func:`wind_chill_index`) are pure
vectorised maths; rule functions (:func:`heat_index`, :func:`heat`, :func:`wind_chill`,
:func:`cold`) turn them into levels. :func:`air_temperature` applies H0's source order.
All temperatures are estimates: a watch's own sensor reads body heat.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from runlog.rules import thresholds as T
from runlog.rules.base import HIGH, MODERATE, NONE, RuleInfo, rule_frame
from runlog.rules.load import messages, notes

NWS_HI = "NWS heat index (Rothfusz 1990; wpc.ncep.noaa.gov/html/heatindex_equation.shtml)"
WBGT_SRC = ("ACSM flags, Armstrong et al. 2007, Med Sci Sports Exerc 39(3):556–572; "
            "BoM WBGT approximation (approximate)")
WIND_CHILL_SRC = "Environment Canada / NWS wind chill 2001; Castellani et al. 2006 ACSM"
COLD_SRC = "Gatterer et al. 2021, IJERPH 18:9700; Edouard et al. 2024, Br J Sports Med"

RULES = [
    RuleInfo("heat_index", "H1", {}, "info", NWS_HI),
    RuleInfo("heat", "H2", {"cramp": 1}, "cramp", WBGT_SRC),
    RuleInfo("wind_chill", "D1", {}, "safety", WIND_CHILL_SRC),
    RuleInfo("cold", "D2", {"cramp": 1}, "cramp", COLD_SRC, max_level=MODERATE),
]

DEVICE_NOTE = ("watch temperature reads body heat — an estimate, so this flag is capped at "
               "moderate")


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype="float64")


# --- H0 -----------------------------------------------------------------------------------------
def air_temperature(runner_air_temp_c, temp_c, temp_source,
                    weather_air_temp_c=np.nan) -> tuple[np.ndarray, np.ndarray]:
    """H0: the air temperature to use [°C] and its source, per run.

    Order: the runner's own value (annotation) > weather (``weather_air_temp_c``, e.g. the
    Open-Meteo archive) > the run's own ``temp_c`` with its ``temp_source`` (usually the device
    sensor, which reads body heat). Returns (temp_air_c, source) with source 'runner' |
    'weather' | 'device' | 'missing' (or whatever ``temp_source`` says for ``temp_c``).
    """
    runner = _f(runner_air_temp_c)
    run_t = _f(temp_c)
    weather = np.broadcast_to(_f(weather_air_temp_c), run_t.shape)
    src = pd.Series(np.asarray(temp_source, dtype=object)).fillna("device").astype(str).to_numpy()
    src = np.where(np.isnan(run_t), "missing", src)
    temp = np.where(np.isnan(weather), run_t, weather)
    source = np.where(np.isnan(weather), src, "weather")
    temp = np.where(np.isnan(runner), temp, runner)
    source = np.where(np.isnan(runner), source, "runner")
    return temp, source


# --- H1 -----------------------------------------------------------------------------------------
def heat_index_nws(temp_air_f, relative_humidity_pct) -> np.ndarray:
    """NWS heat index [°F] from air temperature [°F] and relative humidity [%].

    Simple formula HI = 0.5·[T + 61 + 1.2(T − 68) + 0.094·RH]; when (HI + T)/2 ≥ 80 °F the
    Rothfusz regression with the NWS low-RH (RH < 13 %, 80–112 °F) and high-RH (RH > 85 %,
    80–87 °F) adjustments. Shade values; full sun can add up to ~15 °F.

    References
    ----------
    NWS Weather Prediction Center, The Heat Index Equation,
    https://www.wpc.ncep.noaa.gov/html/heatindex_equation.shtml ; Rothfusz LP (1990) NWS SR 90-23.
    """
    t, rh = _f(temp_air_f), _f(relative_humidity_pct)
    simple = 0.5 * (t + 61.0 + 1.2 * (t - 68.0) + 0.094 * rh)
    hi = (-42.379 + 2.04901523 * t + 10.14333127 * rh - 0.22475541 * t * rh
          - 0.00683783 * t * t - 0.05481717 * rh * rh + 0.00122874 * t * t * rh
          + 0.00085282 * t * rh * rh - 0.00000199 * t * t * rh * rh)
    low = (rh < 13) & (t >= 80) & (t <= 112)
    with np.errstate(invalid="ignore"):
        hi = hi - np.where(low, (13 - rh) / 4 * np.sqrt(np.clip(17 - np.abs(t - 95), 0, None)
                                                        / 17), 0.0)
    high = (rh > 85) & (t >= 80) & (t <= 87)
    hi = hi + np.where(high, (rh - 85) / 10 * (87 - t) / 5, 0.0)
    return np.where((simple + t) / 2 >= T.HI_ROTHFUSZ_SWITCH_F, hi, simple)


def heat_index_c(temp_air_c, relative_humidity_pct) -> np.ndarray:
    """NWS heat index [°C] from air temperature [°C] and relative humidity [%]."""
    return (heat_index_nws(_f(temp_air_c) * 9 / 5 + 32, relative_humidity_pct) - 32) * 5 / 9


def heat_index(temp_air_c, relative_humidity_pct, temp_source) -> pd.DataFrame:
    """H1: NWS heat index category — shown, never scored.

    Levels (display): < 32 °C none (27–32 'caution' is mentioned), 32–39 °C moderate (extreme
    caution), ≥ 39 °C high (danger). Without humidity not assessed — unless even 100 % RH could
    not reach 'caution'. Device-only temperature caps at moderate.

    Parameters
    ----------
    temp_air_c : air temperature [°C] (see :func:`air_temperature`)
    relative_humidity_pct : relative humidity from the runner or weather [%]
    temp_source : 'runner' | 'weather' | 'device' | 'missing' per run

    References
    ----------
    NWS heat index, https://www.wpc.ncep.noaa.gov/html/heatindex_equation.shtml . A general-
    public scale, not calibrated for running.
    """
    t, rh = _f(temp_air_c), _f(relative_humidity_pct)
    src = np.asarray(temp_source, dtype=object)
    idx = pd.RangeIndex(len(t)) if not hasattr(temp_air_c, "index") else temp_air_c.index
    hi = heat_index_c(t, rh)
    cool = heat_index_c(t, 100.0) < T.HI_CAUTION_C       # even saturated air is not hot
    level = np.select([hi >= T.HI_DANGER_C, hi >= T.HI_EXTREME_CAUTION_C], [HIGH, MODERATE],
                      NONE).astype(float)
    device = src == "device"
    level = np.where(device, np.minimum(level, MODERATE), level)
    level = np.where(np.isnan(rh), np.where(cool, NONE, np.nan), level)
    level[np.isnan(t)] = np.nan
    value = np.where(np.isnan(rh), np.nan, hi)
    note = notes((np.isnan(t), "No temperature — heat index not assessed"),
                 (np.isnan(level), "No humidity — heat index not assessed"), n=len(t))
    cats = np.select([hi >= T.HI_EXTREME_DANGER_C, hi >= T.HI_DANGER_C,
                      hi >= T.HI_EXTREME_CAUTION_C], ["extreme danger", "danger",
                                                      "extreme caution"], "caution")

    def make(hi, cat, dev):
        tail = f"; {DEVICE_NOTE}" if dev else ""
        return (f"Heat index ~{hi:.0f} °C ({cat}, shade; an estimate — a general-public scale, "
                f"not calibrated for running){tail}.")

    msg = messages(~np.isnan(value) & (value >= T.HI_CAUTION_C), make, hi=hi, cat=cats,
                   dev=device)
    thr = np.where(hi >= T.HI_DANGER_C, T.HI_DANGER_C, T.HI_EXTREME_CAUTION_C)
    return rule_frame(idx, level, value, thr, "°C", msg, note)


# --- H2 -----------------------------------------------------------------------------------------
def vapour_pressure_hpa(temp_air_c, relative_humidity_pct) -> np.ndarray:
    """Water vapour pressure e [hPa] = RH/100 · 6.105 · exp(17.27·T / (237.7 + T))."""
    t = _f(temp_air_c)
    return _f(relative_humidity_pct) / 100.0 * 6.105 * np.exp(17.27 * t / (237.7 + t))


def wbgt_bom(temp_air_c, relative_humidity_pct) -> np.ndarray:
    """Approximate WBGT [°C] (Australian Bureau of Meteorology): 0.567·Ta + 0.393·e + 3.94.

    Assumes strong sun and light wind; a poor stand-in for a measured or Liljegren WBGT
    (Brimicombe 2023), so always label it approximate.

    References
    ----------
    Australian Bureau of Meteorology, Thermal comfort observations,
    http://www.bom.gov.au/info/thermal_stress/ ; Lemke B, Kjellstrom T (2012) Ind Health
    50:267–278. doi:10.2486/indhealth.MS1352
    """
    return 0.567 * _f(temp_air_c) + 0.393 * vapour_pressure_hpa(temp_air_c,
                                                                relative_humidity_pct) + 3.94


def wbgt_flag(wbgt_c) -> np.ndarray:
    """ACSM race flag per WBGT [°C]: white < 10, green 10–18, yellow 18–23, red 23–28, black."""
    w = _f(wbgt_c)
    return np.select([w > T.WBGT_BLACK_C, w >= T.WBGT_RED_C, w >= T.WBGT_YELLOW_C,
                      w >= T.WBGT_WHITE_BELOW_C], ["black", "red", "yellow", "green"], "white")


def heat(temp_air_c, relative_humidity_pct, temp_source, duration_min) -> pd.DataFrame:
    """H2: estimated WBGT flag × duration (heat-illness safety note; feeds cramp, w=1).

    Levels [design]: yellow (18–23 °C) and ≥ 60 min → moderate; red (23–28 °C) < 45 min →
    moderate; red ≥ 45 min or black (> 28 °C) → high. Device-only temperature caps at moderate.
    Without humidity not assessed, unless 100 % RH could not reach yellow.

    Parameters
    ----------
    temp_air_c : air temperature [°C]
    relative_humidity_pct : relative humidity from the runner or weather [%]
    temp_source : 'runner' | 'weather' | 'device' | 'missing' per run
    duration_min : time outside [min]

    References
    ----------
    Armstrong LE et al. (2007). ACSM position stand: exertional heat illness during training
    and competition. Med Sci Sports Exerc 39(3):556–572. doi:10.1249/MSS.0b013e31802fa199
    """
    t, rh, dur = _f(temp_air_c), _f(relative_humidity_pct), _f(duration_min)
    src = np.asarray(temp_source, dtype=object)
    idx = pd.RangeIndex(len(t)) if not hasattr(temp_air_c, "index") else temp_air_c.index
    w = wbgt_bom(t, rh)
    flag = wbgt_flag(w)
    level = np.select([(flag == "black") | ((flag == "red") & (dur >= T.HEAT_RED_MIN)),
                       flag == "red", (flag == "yellow") & (dur >= T.HEAT_YELLOW_MIN)],
                      [HIGH, MODERATE, MODERATE], NONE).astype(float)
    device = src == "device"
    level = np.where(device, np.minimum(level, MODERATE), level)
    cool = wbgt_bom(t, 100.0) < T.WBGT_YELLOW_C
    level = np.where(np.isnan(rh), np.where(cool, NONE, np.nan), level)
    level[np.isnan(t) | np.isnan(dur)] = np.nan
    value = np.where(np.isnan(rh), np.nan, w)
    note = notes((np.isnan(t), "No temperature — heat not assessed"),
                 (np.isnan(dur), "No duration — heat not assessed"),
                 (np.isnan(level), "No humidity — heat not assessed"), n=len(t))

    def make(w, flag, dur, dev, lvl):
        advice = ("Slow down, drink to thirst, and stop if dizzy or confused."
                  if lvl >= MODERATE else "Drink to thirst.")
        tail = f" ({DEVICE_NOTE})" if dev else ""
        return (f"Estimated WBGT {w:.0f} °C ({flag} flag; approximate) for {dur:.0f} min. "
                f"{advice}{tail}")

    msg = messages(~np.isnan(value) & (value >= T.WBGT_YELLOW_C), make, w=w, flag=flag,
                   dur=dur, dev=device, lvl=level)
    thr = np.select([w > T.WBGT_BLACK_C, w >= T.WBGT_RED_C], [T.WBGT_BLACK_C, T.WBGT_RED_C],
                    T.WBGT_YELLOW_C)
    return rule_frame(idx, level, value, thr, "°C", msg, note)


# --- D1 -----------------------------------------------------------------------------------------
def wind_chill_index(temp_air_c, wind_speed_kmh) -> np.ndarray:
    """Wind chill temperature [°C]: 13.12 + 0.6215T − 11.37V^0.16 + 0.3965T·V^0.16.

    T air [°C], V wind at 10 m [km/h]; valid for T ≤ 10 °C and V ≥ 4.8 km/h, NaN outside.

    References
    ----------
    Environment Canada / NWS (2001) wind chill index; Osczevski R, Bluestein M (2005) The new
    wind chill equivalent temperature chart. Bull Am Meteorol Soc 86(10):1453–1458.
    doi:10.1175/BAMS-86-10-1453
    """
    t, v = _f(temp_air_c), _f(wind_speed_kmh)
    with np.errstate(invalid="ignore"):
        v16 = np.power(v, 0.16)
    wct = 13.12 + 0.6215 * t - 11.37 * v16 + 0.3965 * t * v16
    valid = (t <= T.WIND_CHILL_MAX_T_C) & (v >= T.WIND_CHILL_MIN_V_KMH)
    return np.where(valid, wct, np.nan)


def wind_chill(temp_air_c, wind_speed_kmh, running_speed_mps) -> pd.DataFrame:
    """D1: wind chill safety note; shown with wind alone and wind + running speed.

    Level on the weather's wind chill (wind alone): ≤ −28 °C moderate (skin can freeze in
    10–30 min), ≤ −40 °C high (5–10 min). Not assessed without wind when T ≤ 10 °C. Calm wind
    (< 4.8 km/h, outside the formula's valid range) is evaluated at 4.8 km/h [design]; the
    message says so.

    Parameters
    ----------
    temp_air_c : air temperature [°C]
    wind_speed_kmh : wind speed from the runner or weather [km/h]
    running_speed_mps : the run's main speed [m/s], for the "while running" end of the range

    References
    ----------
    Environment Canada wind chill bands; Castellani JW et al. (2006). ACSM position stand:
    prevention of cold injuries during exercise. Med Sci Sports Exerc 38(11):2012–2029.
    doi:10.1249/01.mss.0000241641.75101.64
    """
    t, v = _f(temp_air_c), _f(wind_speed_kmh)
    idx = pd.RangeIndex(len(t)) if not hasattr(temp_air_c, "index") else temp_air_c.index
    run_kmh = np.nan_to_num(_f(running_speed_mps) * 3.6)
    calm = np.where(v < T.WIND_CHILL_MIN_V_KMH, T.WIND_CHILL_MIN_V_KMH, v)
    wct = wind_chill_index(t, calm)
    moving = wind_chill_index(t, calm + run_kmh)
    level = np.select([wct <= T.WIND_CHILL_HIGH_C, wct <= T.WIND_CHILL_MODERATE_C],
                      [HIGH, MODERATE], NONE).astype(float)
    cold = t <= T.WIND_CHILL_MAX_T_C
    level[np.isnan(t) | (cold & np.isnan(v))] = np.nan
    note = notes((np.isnan(t), "No temperature — wind chill not assessed"),
                 (cold & np.isnan(v), "No wind — wind chill not assessed"), n=len(t))

    def make(w, m, lvl, v):
        what = {HIGH: " — exposed skin can freeze within 5–10 min; cover up or cut it short",
                MODERATE: " — exposed skin can freeze within 10–30 min; cover up"}.get(lvl, "")
        low = (f"; wind {v:.1f} km/h is under the formula's valid range (≥ "
               f"{T.WIND_CHILL_MIN_V_KMH:g} km/h), so it was taken as {T.WIND_CHILL_MIN_V_KMH:g}"
               " km/h" if v < T.WIND_CHILL_MIN_V_KMH else "")
        return (f"Wind chill about {w:.0f} °C ({m:.0f} °C with your running speed; "
                f"an estimate{low}){what}.")

    msg = messages(~np.isnan(level) & (wct <= 0), make, w=wct, m=moving, lvl=level, v=v)
    thr = np.where(wct <= T.WIND_CHILL_HIGH_C, T.WIND_CHILL_HIGH_C, T.WIND_CHILL_MODERATE_C)
    return rule_frame(idx, level, wct, thr, "°C", msg, note)


# --- D2 -----------------------------------------------------------------------------------------
def cold(temp_air_c, wind_chill_c, duration_min) -> pd.DataFrame:
    """D2: cold air (≤ 5 °C, or wind chill ≤ 0 °C) and ≥ 45 min → moderate (max moderate).

    Parameters
    ----------
    temp_air_c : air temperature [°C]
    wind_chill_c : wind chill [°C], NaN when unknown
    duration_min : time outside [min]

    References
    ----------
    Gatterer H et al. (2021). Practicing sport in cold environments. IJERPH 18(18):9700.
    doi:10.3390/ijerph18189700 ; Edouard P et al. (2024). Br J Sports Med 59(1):36–47.
    No study tying cold air to exercise cramps was found.
    """
    t, wc, dur = _f(temp_air_c), _f(wind_chill_c), _f(duration_min)
    idx = pd.RangeIndex(len(t)) if not hasattr(temp_air_c, "index") else temp_air_c.index
    is_cold = (t <= T.COLD_AIR_C) | (wc <= T.COLD_WIND_CHILL_C)
    level = np.where(is_cold & (dur >= T.COLD_MIN_DURATION_MIN), MODERATE, NONE).astype(float)
    level[np.isnan(t) | np.isnan(dur)] = np.nan
    note = notes((np.isnan(t), "No temperature — cold not assessed"),
                 (np.isnan(dur), "No duration — cold not assessed"), n=len(t))
    def make(t, wc, dur):
        chill = f", wind chill ~{round(float(wc)):d} °C" if wc == wc else ""   # never "-0"
        return (f"Cold run (~{round(float(t)):d} °C{chill}, estimates) for {dur:.0f} min "
                f"(flagged from {T.COLD_MIN_DURATION_MIN:.0f} min at ≤ {T.COLD_AIR_C:.0f} °C "
                f"air or ≤ {T.COLD_WIND_CHILL_C:.0f} °C wind chill): a longer easy start and "
                "warm layers help. Evidence that cold causes cramps is weak.")

    msg = messages(level == MODERATE, make, t=t, wc=wc, dur=dur)
    return rule_frame(idx, level, t, T.COLD_AIR_C, "°C", msg, note)
