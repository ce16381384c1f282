"""Sweat tiers, fluid deficit and sodium arithmetic against RULES.md's example numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runlog.rules import sweat as S


def lv(frame):
    return frame["level"].astype("float64").tolist()


def default(h):
    h = pd.Series(np.atleast_1d(np.asarray(h, dtype=float)))
    nan = pd.Series(np.nan, index=h.index)
    return (*S.sweat_rate(nan, nan, nan, h), h)


def test_default_band_is_barnes_2019():
    rate, low, high, tier, _ = default([1.0])
    assert rate[0] == 1.28 and low[0] == pytest.approx(0.71) and high[0] == pytest.approx(1.85)
    assert tier[0] == "typical, mostly warm sessions"


def test_measured_tier():
    rate, low, high, tier = S.sweat_rate([70.0], [68.8], [0.4], [1.0])
    assert rate[0] == pytest.approx(1.6) and tier[0] == "measured"
    assert low[0] == pytest.approx(1.4) and high[0] == pytest.approx(1.8)
    # fluid not logged counts as 0; no mass → default tier
    rate, *_ = S.sweat_rate([70.0], [68.8], [np.nan], [2.0])
    assert rate[0] == pytest.approx(0.6)
    _, _, _, tier = S.sweat_rate([70.0], [np.nan], [0.4], [1.0])
    assert tier[0] == "typical, mostly warm sessions"


def test_fluid_deficit_example_numbers():
    # RULES.md S3 example: 1.6 L sweat, ~2.3 % of 70 kg if you drank nothing
    rate, low, high, tier, h = default([1.25])
    out = S.fluid_deficit(rate, low, high, tier, h, pd.Series([np.nan]), 70.0)
    assert out["value"].iloc[0] == pytest.approx(1.6 / 70 * 100)
    assert lv(out) == [1]
    msg = out["message"].iloc[0]
    assert "Estimated sweat loss 1.6 L" in msg
    assert "~2.3 % of body weight if you drank nothing" in msg
    assert "typical, mostly warm sessions" in msg and "Drink to thirst" in msg


@pytest.mark.parametrize("pct, expected", [(1.99, 0), (2.0, 1), (2.99, 1), (3.0, 2)])
def test_fluid_deficit_thresholds(pct, expected):
    # measured 1 L/h for 1 h, mass chosen so the deficit is exactly pct
    out = S.fluid_deficit([1.0], [0.8], [1.2], ["measured"], pd.Series([1.0]), [np.nan],
                          [100 / pct])
    assert lv(out) == [expected]


def test_fluid_deficit_fluid_and_missing_mass():
    rate, low, high, tier, h = default([2.0])
    out = S.fluid_deficit(rate, low, high, tier, h, pd.Series([1.0]), 70.0)
    assert out["value"].iloc[0] == pytest.approx((2.56 - 1.0) / 70 * 100)
    assert "after the 1.0 L you logged" in out["message"].iloc[0]
    out = S.fluid_deficit(rate, low, high, tier, h, pd.Series([np.nan]), np.nan)
    assert np.isnan(lv(out)[0])
    assert out["note"].iloc[0] == "No body mass — fluid deficit not assessed"


def test_sodium_arithmetic_matches_example():
    rate, low, high, tier, h = default([1.25])
    out = S.sodium_no_electrolytes(rate, low, high, tier, h, [None], [np.nan], 70.0)
    msg = out["message"].iloc[0]
    # 1.6 L × 36 mmol/L × 22.99 mg/mmol = 1.32 g; upper 2.31 L × 46 × 22.99 = 2.44 g
    assert "sodium ~1.3 g" in msg and "2.4 g)" in msg
    assert out["value"].iloc[0] == pytest.approx(1.85 * 1.25 * 46 * 22.99 / 1000)
    assert S.sodium_loss_mg(1.6) == pytest.approx(1324.2, abs=0.1)
    assert "No electrolytes logged" in msg and "evidence that it prevents cramps is weak" in msg
    assert lv(out) == [0]                   # under 2 h: numbers only


def test_sodium_levels():
    rate, low, high, tier, h = default([2.0, 1.99, 2.0, 2.0, 2.0])
    out = S.sodium_no_electrolytes(rate, low, high, tier, h,
                                   [None, None, True, False, None],
                                   [np.nan, np.nan, np.nan, np.nan, 300.0], 70.0)
    assert lv(out) == [1, 0, 0, 1, 0]
    assert "Electrolytes logged" in out["message"].iloc[2]
    assert "300 mg of sodium" in out["message"].iloc[4]


def test_sodium_upper_bound_threshold_with_measured_rate():
    # 2 h at a measured 0.35 L/h: upper 0.45 L/h × 2 h × 46 × 22.99 = 0.95 g < 1.5 g → none
    out = S.sodium_no_electrolytes([0.35], [0.25], [0.45], ["measured"], pd.Series([2.0]),
                                   [None], [np.nan])
    assert lv(out) == [0]


def test_sodium_numbers_shown_from_60_min_or_warm():
    rate, low, high, tier, h = default([0.99, 1.0, 0.5])
    out = S.sodium_no_electrolytes(rate, low, high, tier, h, [None] * 3, [np.nan] * 3,
                                   wbgt_c=np.array([np.nan, np.nan, 18.0]))
    assert list(out["message"] != "") == [False, True, True]


def test_gonzalez_model_is_clamped_and_separate():
    sr = S.sweat_rate_gonzalez(600.0, 100.0, 70.0, 178.0, 25.0)
    assert S.body_surface_area_m2(70, 178) == pytest.approx(1.87, abs=0.01)
    assert 0.2 <= sr <= 2.5
    assert S.sweat_rate_gonzalez(0.0, 2000.0, 70.0, 178.0, 25.0) == pytest.approx(0.2)


def test_no_fixed_fluid_volume_advice():
    rate, low, high, tier, h = default([3.0])
    out = S.fluid_deficit(rate, low, high, tier, h, pd.Series([np.nan]), 60.0)
    msg = out["message"].iloc[0].lower()
    assert "drink to thirst" in msg and "as much as" not in msg and "drink 1" not in msg


def test_sodium_logged_as_zero_is_no_electrolytes():
    """--no-electrolytes --sodium-mg 0 logged nothing taken: the rule applies, and the
    message says no electrolytes, never 'Electrolytes logged'."""
    rate, low, high, tier, h = default([2.0, 2.0, 2.0])
    out = S.sodium_no_electrolytes(rate, low, high, tier, h, [False, None, True],
                                   [0.0, 0.0, 0.0], 70.0)
    assert lv(out) == [1, 1, 0]
    assert "No electrolytes logged." in out["message"].iloc[0]
    assert "No electrolytes logged." in out["message"].iloc[1]
    assert "Electrolytes logged." in out["message"].iloc[2]


def test_a_loss_from_the_runners_weighings_is_called_measured():
    rate, low, high, tier = S.sweat_rate([70.0], [68.4], [np.nan], [1.0])
    deficit = S.fluid_deficit(rate, low, high, tier, pd.Series([1.0]), [np.nan], [70.0])
    sodium = S.sodium_no_electrolytes(rate, low, high, tier, pd.Series([1.0]), [None],
                                      [np.nan], 70.0)
    for message in (deficit["message"].iloc[0], sodium["message"].iloc[0]):
        assert message.startswith("Measured sweat loss 1.6 L") and "Estimated" not in message
