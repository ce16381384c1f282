"""Weather formulas against published values, and the heat/cold rules around their flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runlog.rules import environment as E


def lv(frame):
    return frame["level"].astype("float64").tolist()


# --- NWS heat index ---------------------------------------------------------------------------
@pytest.mark.parametrize("t_f, rh, hi_f", [
    (90, 60, 100),      # NWS example
    (80, 40, 80),
    (100, 50, 118),     # NWS heat index table entries
    (96, 65, 121),
    (86, 90, 105),
    (90, 40, 91),
    # MetPy's heat-index test values (same NWS algorithm)
    (88, 100, 121),
    (92, 70, 112),
    (110, 40, 136),
    (86, 88, 104),
])
def test_heat_index_nws_table(t_f, rh, hi_f):
    assert E.heat_index_nws(t_f, rh) == pytest.approx(hi_f, abs=1.0)


def test_heat_index_simple_formula_below_80f():
    # (HI_simple + T)/2 < 80 °F → simple Steadman formula
    t, rh = 70.0, 50.0
    simple = 0.5 * (t + 61 + 1.2 * (t - 68) + 0.094 * rh)
    assert E.heat_index_nws(t, rh) == pytest.approx(simple)


def rothfusz(t, rh):
    return (-42.379 + 2.04901523 * t + 10.14333127 * rh - 0.22475541 * t * rh
            - 0.00683783 * t * t - 0.05481717 * rh * rh + 0.00122874 * t * t * rh
            + 0.00085282 * t * rh * rh - 0.00000199 * t * t * rh * rh)


def test_heat_index_low_humidity_adjustment():
    t, rh = 100.0, 10.0
    adj = (13 - rh) / 4 * np.sqrt((17 - abs(t - 95)) / 17)
    assert E.heat_index_nws(t, rh) == pytest.approx(rothfusz(t, rh) - adj)
    assert adj > 0.5


def test_heat_index_high_humidity_adjustment():
    t, rh = 85.0, 90.0
    adj = (rh - 85) / 10 * (87 - t) / 5
    assert E.heat_index_nws(t, rh) == pytest.approx(rothfusz(t, rh) + adj)


def test_heat_index_celsius_wrapper():
    expected = (E.heat_index_nws(90, 60) - 32) * 5 / 9
    assert E.heat_index_c((90 - 32) * 5 / 9, 60) == pytest.approx(expected)


def test_heat_index_rule_levels_and_notes():
    t = pd.Series([35.0, 30.0, 33.0, 15.0, 35.0, np.nan])
    rh = pd.Series([60.0, 60.0, np.nan, np.nan, 60.0, 50.0])
    src = ["runner", "weather", "weather", "weather", "device", "missing"]
    out = E.heat_index(t, rh, src)
    levels = lv(out)
    assert levels[0] == 2                       # HI ≈ 45 °C danger
    assert levels[1] == 1                       # HI ≈ 33 °C extreme caution
    assert np.isnan(levels[2]) and out["note"].iloc[2] == "No humidity — heat index not assessed"
    assert levels[3] == 0                       # 15 °C: even 100 % RH is not hot
    assert levels[4] == 1 and "capped at moderate" in out["message"].iloc[4]
    assert np.isnan(levels[5]) and "No temperature" in out["note"].iloc[5]
    assert "not calibrated for running" in out["message"].iloc[0]


# --- WBGT (BoM approximation) -------------------------------------------------------------------
def test_vapour_pressure_and_wbgt_worked_example():
    # BoM: Ta = 30 °C, RH = 50 % → e = 0.5·6.105·exp(17.27·30/267.7) = 21.14 hPa
    e = E.vapour_pressure_hpa(30.0, 50.0)
    assert e == pytest.approx(21.14, abs=0.01)
    assert E.wbgt_bom(30.0, 50.0) == pytest.approx(0.567 * 30 + 0.393 * 21.14 + 3.94, abs=0.01)
    assert E.wbgt_bom(30.0, 50.0) == pytest.approx(29.26, abs=0.01)
    # 25 °C, 60 % → e = 19.0 hPa → 25.6 °C
    assert E.wbgt_bom(25.0, 60.0) == pytest.approx(25.6, abs=0.05)


def test_wbgt_flags():
    assert list(E.wbgt_flag([9.9, 10.0, 17.9, 18.0, 22.9, 23.0, 28.0, 28.1])) == [
        "white", "green", "green", "yellow", "yellow", "red", "red", "black"]


def temp_for_wbgt(target, rh=50.0):
    """Air temperature giving a BoM WBGT of ``target`` at ``rh`` (bisection)."""
    lo, hi = -10.0, 50.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if E.wbgt_bom(mid, rh) < target else (lo, mid)
    return hi


@pytest.mark.parametrize("wbgt, minutes, expected", [
    (20.0, 59, 0), (20.0, 60, 1),      # yellow: ≥ 60 min → moderate
    (17.9, 120, 0),                    # green
    (24.0, 44, 1), (24.0, 45, 2),      # red: < 45 min moderate, ≥ 45 high
    (28.5, 20, 2),                     # black
])
def test_heat_levels(wbgt, minutes, expected):
    t = pd.Series([temp_for_wbgt(wbgt)])
    out = E.heat(t, pd.Series([50.0]), ["weather"], pd.Series([float(minutes)]))
    assert lv(out)[0] == expected
    assert out["value"].iloc[0] == pytest.approx(wbgt, abs=0.01)


def test_heat_message_device_cap_and_missing_humidity():
    t = pd.Series([temp_for_wbgt(24.0), temp_for_wbgt(30.0), 25.0, 8.0])
    rh = pd.Series([50.0, 50.0, np.nan, np.nan])
    out = E.heat(t, rh, ["runner", "device", "weather", "device"], pd.Series([75.0] * 4))
    assert out["message"].iloc[0].startswith("Estimated WBGT 24 °C (red flag; approximate) for "
                                             "75 min. Slow down, drink to thirst")
    assert lv(out)[1] == 1 and "body heat" in out["message"].iloc[1]
    assert np.isnan(lv(out)[2]) and out["note"].iloc[2] == "No humidity — heat not assessed"
    assert lv(out)[3] == 0                 # 8 °C cannot reach yellow even at 100 % RH
    assert "litre" not in " ".join(out["message"]) and " ml" not in " ".join(out["message"])


def test_air_temperature_precedence():
    temp, src = E.air_temperature([20.0, np.nan, np.nan, np.nan], [30.0, 25.0, 31.0, np.nan],
                                  ["device", "weather", "device", None])
    assert list(temp[:3]) == [20.0, 25.0, 31.0] and np.isnan(temp[3])
    assert list(src) == ["runner", "weather", "device", "missing"]
    temp, src = E.air_temperature([np.nan, 20.0], [30.0, 30.0], ["device", "device"],
                                  [22.0, 23.0])
    assert list(temp) == [22.0, 20.0] and list(src) == ["weather", "runner"]


# --- wind chill ---------------------------------------------------------------------------------
@pytest.mark.parametrize("t, v, wct", [
    (-10.0, 20.0, -17.9), (-20.0, 30.0, -32.6), (0.0, 10.0, -3.3),
    (-30.0, 50.0, -49.0), (5.0, 5.0, 4.1),
])
def test_wind_chill_environment_canada(t, v, wct):
    assert E.wind_chill_index(t, v) == pytest.approx(wct, abs=0.1)


def test_wind_chill_validity_range():
    assert np.isnan(E.wind_chill_index(10.1, 20.0))
    assert np.isnan(E.wind_chill_index(-5.0, 4.7))
    assert not np.isnan(E.wind_chill_index(10.0, 4.8))


def test_wind_chill_rule_thresholds():
    t = pd.Series([-15.0, -21.0, -31.0, -5.0, 15.0, np.nan])
    v = pd.Series([30.0, 30.0, 40.0, np.nan, np.nan, 10.0])
    out = E.wind_chill(t, v, pd.Series([3.0] * 6))
    levels = lv(out)
    wct = out["value"].to_numpy()
    assert wct[0] > -28 and levels[0] == 0
    assert -40 < wct[1] <= -28 and levels[1] == 1
    assert wct[2] <= -40 and levels[2] == 2
    assert np.isnan(levels[3]) and out["note"].iloc[3] == "No wind — wind chill not assessed"
    assert levels[4] == 0                    # warm: no wind needed
    assert np.isnan(levels[5])
    assert "with your running speed" in out["message"].iloc[1]
    assert "valid range" not in out["message"].iloc[1]


def test_wind_chill_calm_wind_is_flagged_as_outside_the_valid_range():
    """Wind under 4.8 km/h is evaluated at 4.8 km/h (the formula's lowest valid wind): the
    message says so rather than passing the number off as a formula result."""
    out = E.wind_chill(pd.Series([-20.0, -20.0]), pd.Series([2.0, 4.8]), pd.Series([3.0] * 2))
    assert out["value"].iloc[0] == pytest.approx(E.wind_chill_index(-20.0, 4.8))
    assert ("wind 2.0 km/h is under the formula's valid range (≥ 4.8 km/h), so it was taken "
            "as 4.8 km/h") in out["message"].iloc[0]
    assert "valid range" not in out["message"].iloc[1]


# --- cold ---------------------------------------------------------------------------------------
def test_cold_levels():
    t = pd.Series([5.0, 5.1, 5.0, 8.0, np.nan])
    wc = pd.Series([np.nan, np.nan, np.nan, -0.5, np.nan])
    out = E.cold(t, wc, pd.Series([45.0, 60.0, 44.0, 50.0, 60.0]))
    levels = lv(out)
    assert levels[:4] == [1, 0, 0, 1]
    assert np.isnan(levels[4]) and "No temperature" in out["note"].iloc[4]
    assert "Evidence that cold causes cramps is weak" in out["message"].iloc[0]
    # measured vs compared: the run's temperature and duration, and the rule's conditions
    assert out["message"].iloc[0].startswith("Cold run (~5 °C, estimates) for 45 min (flagged "
                                             "from 45 min at ≤ 5 °C air or ≤ 0 °C wind chill)")
    assert "(~8 °C, wind chill ~0 °C, estimates) for 50 min" in out["message"].iloc[3]
    assert max(x for x in levels if not np.isnan(x)) <= 1
