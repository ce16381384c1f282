"""Knee rules K1–K4."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runlog.rules import knee as K
from runlog.rules import load as L

DAY0 = pd.Timestamp("2024-05-01 08:00")


def lv(frame):
    return frame["level"].astype("float64").tolist()


def times(days):
    return pd.Series(DAY0 + pd.to_timedelta(np.asarray(days, dtype=float), unit="D"))


# --- K1 low_cadence -------------------------------------------------------------------------------
def cadence_case(last_cadence, days=(0, 2, 4, 6), quality=None, bins=(3.0,)):
    ids = [f"r{i}" for i in range(len(days))]
    rows = []
    for i, rid in enumerate(ids):
        cad = 170.0 if i < len(days) - 1 else last_cadence
        rows += [(rid, b, 20.0, cad) for b in bins]
    cb = pd.DataFrame(rows, columns=["run_id", "speed_bin_mps", "minutes", "median_cadence_spm"])
    q = pd.Series([True] * len(days) if quality is None else quality)
    return K.low_cadence(pd.Series(ids), times(days), q, cb)


@pytest.mark.parametrize("cad, expected", [(161.5, 1), (161.6, 0), (150.0, 1), (175.0, 0)])
def test_low_cadence_threshold(cad, expected):
    out = cadence_case(cad)
    assert lv(out)[-1] == expected          # 161.5 = −5.0 % of 170


def test_low_cadence_message_and_value():
    out = cadence_case(159.8)
    assert out["value"].iloc[-1] == pytest.approx(-6.0)
    assert out["message"].iloc[-1].startswith("Cadence 6 % below your usual at this pace")


def test_low_cadence_needs_three_runs_in_60_days_before():
    out = cadence_case(150.0, days=(0, 2, 4))            # only 2 earlier runs
    assert np.isnan(lv(out)[-1]) and "Too few runs" in out["note"].iloc[-1]
    out = cadence_case(150.0, days=(0, 2, 4, 64))        # day 0..4 are > 60 days before
    assert np.isnan(lv(out)[-1])
    out = cadence_case(150.0, days=(0, 2, 4, 6), quality=[True, False, True, True])
    assert np.isnan(lv(out)[-1])                          # poor-quality run not in baseline


def test_low_cadence_later_runs_do_not_count_and_no_cadence():
    ids = ["a", "b", "c", "d", "e"]
    cb = pd.DataFrame({"run_id": ["b", "c", "d", "e"], "speed_bin_mps": 3.0, "minutes": 20.0,
                       "median_cadence_spm": [170.0, 170.0, 150.0, 170.0]})
    out = K.low_cadence(pd.Series(ids), times([0, 1, 2, 3, 4]), pd.Series([True] * 5), cb)
    levels = lv(out)
    assert np.isnan(levels[0]) and out["note"].iloc[0] == "No cadence — cadence rule not assessed"
    assert np.isnan(levels[3])         # only 2 runs before d
    assert levels[4] == 0              # e vs median(170, 170, 150) = 170


def test_low_cadence_time_weighted_over_bins():
    # baseline 170 in two bins; last run: 10 min at −10 % and 30 min at 0 % → −2.5 % → none
    rows = [(f"r{i}", b, 20.0, 170.0) for i in range(3) for b in (3.0, 3.25)]
    rows += [("r3", 3.0, 10.0, 153.0), ("r3", 3.25, 30.0, 170.0)]
    cb = pd.DataFrame(rows, columns=["run_id", "speed_bin_mps", "minutes", "median_cadence_spm"])
    out = K.low_cadence(pd.Series(["r0", "r1", "r2", "r3"]), times([0, 1, 2, 3]),
                        pd.Series([True] * 4), cb)
    assert out["value"].iloc[-1] == pytest.approx(-2.5) and lv(out)[-1] == 0


def test_low_cadence_easy_pace_tip_is_not_scored():
    ids = [f"r{i}" for i in range(4)]
    cb = pd.DataFrame({"run_id": ids, "speed_bin_mps": 2.75, "minutes": 30.0,
                       "median_cadence_spm": 160.0})
    out = K.low_cadence(pd.Series(ids), times([0, 1, 2, 3]), pd.Series([True] * 4), cb,
                        pd.Series([160.0, 160.0, 160.0, 164.0]), pd.Series([True] * 4))
    assert lv(out)[-1] == 0
    assert out["message"].iloc[-1].startswith("Tip: easy-pace cadence 164 spm")
    assert "180 is not a norm" in out["message"].iloc[-1]
    out = K.low_cadence(pd.Series(ids), times([0, 1, 2, 3]), pd.Series([True] * 4), cb,
                        pd.Series([166.0] * 4), pd.Series([True] * 4))
    assert out["message"].iloc[-1] == ""


@given(st.lists(st.tuples(st.sampled_from([2.5, 2.75, 3.0]), st.integers(0, 8),
                          st.sampled_from([0, 0, 6]),
                          st.one_of(st.just(np.nan), st.floats(150, 190))), max_size=50),
       st.integers(1, 4))
@settings(max_examples=300, deadline=None)
def test_same_bin_windows_match_a_grouped_time_rolling(rows, days):
    # rows sorted by (bin, time) with same-instant ties; the baseline median and count must be
    # those of pandas' per-bin rolling(f"{days}D", closed="left") that low_cadence used
    frame = pd.DataFrame(rows, columns=["bin", "day", "hour", "cad"])
    frame["t"] = DAY0 + pd.to_timedelta(frame["day"] * 24 + frame["hour"], unit="h")
    frame = frame.sort_values(["bin", "t"], kind="stable").reset_index(drop=True)
    grouped = pd.Series(frame["cad"].to_numpy(), index=pd.DatetimeIndex(frame["t"])).groupby(
        frame["bin"].to_numpy()).rolling(f"{days}D", closed="left", min_periods=1)
    t_ns = frame["t"].to_numpy().astype("datetime64[ns]").view("int64")
    start, end = K._same_bin_window(frame["bin"].to_numpy(), t_ns, days)
    median = L.rolling_within(frame["cad"], start, end, "median")
    seen = np.r_[0, np.cumsum(frame["cad"].notna())]
    if len(frame):
        np.testing.assert_array_equal(median, grouped.median().to_numpy())
        np.testing.assert_array_equal(seen[end] - seen[start],
                                      grouped.count().fillna(0).to_numpy())
    else:
        assert len(median) == len(start) == 0


# --- K2 descent_spike -------------------------------------------------------------------------
def descent(d_last, s_last=0.0, prev=(200.0,), prev_s=(0.0,), days=None, quality=None):
    d = [*list(prev), d_last]
    s = [*list(prev_s), s_last]
    days = list(range(len(d))) if days is None else days
    q = pd.Series([True] * len(d) if quality is None else quality)
    return K.descent_spike(times(days), pd.Series(d, dtype=float), pd.Series(s, dtype=float), q)


@pytest.mark.parametrize("d_last, expected", [
    (260.0, 0),      # r = 1.3 → none
    (261.0, 1),      # r > 1.3 and ≥ 150 m
    (400.0, 1),      # r = 2 → moderate
    (401.0, 2),      # r > 2 and ≥ 300 m
])
def test_descent_ratio_thresholds(d_last, expected):
    assert lv(descent(d_last))[-1] == expected


def test_descent_absolute_floors():
    assert lv(descent(149.0, prev=(50.0,)))[-1] == 0        # r ≈ 3 but < 150 m
    assert lv(descent(299.0, prev=(100.0,)))[-1] == 1       # r ≈ 3 but < 300 m → moderate


def test_descent_steep_minutes():
    assert lv(descent(100.0, s_last=10.0, prev_s=(4.9,)))[-1] == 1
    assert lv(descent(100.0, s_last=9.9, prev_s=(4.0,)))[-1] == 0
    assert lv(descent(100.0, s_last=10.0, prev_s=(5.0,)))[-1] == 0   # exactly 2× → none


def test_descent_window_and_quality():
    out = descent(620.0, prev=(310.0,))
    assert "620 m of descent, about 2.0× your most this month" in out["message"].iloc[-1]
    out = descent(620.0, prev=(310.0,), days=[0, 31])
    assert np.isnan(lv(out)[-1]) and "No run in the previous 30 days" in out["note"].iloc[-1]
    out = descent(620.0, prev=(700.0, 310.0), prev_s=(0.0, 0.0), quality=[False, True, True])
    assert lv(out)[-1] == 1             # the 700 m poor-quality run is not the reference


# --- K3 shoes -------------------------------------------------------------------------------
def test_shoes_footwear_and_mileage():
    t = times(range(5))
    dist = pd.Series([250.0, 249.0, 2.0, 300.0, 10.0]) * 1000
    out = K.shoes(t, dist, pd.Series(["A", "A", "A", "A", None]),
                  pd.Series([None, None, None, None, "sandals"]))
    levels = lv(out)
    assert levels[:4] == [0, 0, 0, 0] and levels[4] == 1
    assert out["value"].tolist()[:4] == [250.0, 499.0, 501.0, 801.0]
    assert out["message"].iloc[1] == ""
    assert out["message"].iloc[2].startswith("501 km on these shoes.")
    assert "many runners replace" in out["message"].iloc[3]
    assert "rule of thumb" in out["message"].iloc[3]
    assert "sandals" in out["message"].iloc[4]


def test_shoes_unknown_not_assessed():
    out = K.shoes(times([0]), pd.Series([5000.0]), pd.Series([None]), pd.Series([None]))
    assert np.isnan(lv(out)[0]) and "No shoes logged" in out["note"].iloc[0]


# --- K4 knee_pain_recent --------------------------------------------------------------------
def test_knee_pain_window_strictly_before():
    t = times([0, 5, 14, 15])
    out = K.knee_pain_recent(t, pd.Series([3.0, np.nan, np.nan, np.nan]),
                             pd.Series([None] * 4))
    # the run's own pain does not count; day 14 is within [t − 14 d, t); day 15 is not
    assert lv(out) == [0, 1, 1, 0]
    assert "up to 3/10" in out["message"].iloc[1]
    # RULES.md K4: the 3/10 guide is adapted from Achilles rehabilitation, not knee-validated
    assert "3/10 or less" in out["message"].iloc[1]
    assert "Achilles" in out["message"].iloc[1] and "not tested for the knee" in (
        out["message"].iloc[1])


def test_knee_pain_high_above_5_or_next_morning():
    t = times([0, 1, 2, 3])
    out = K.knee_pain_recent(t, pd.Series([5.0, 6.0, np.nan, np.nan]),
                             pd.Series([None, None, None, None]))
    assert lv(out) == [0, 1, 2, 2]
    assert "see a physiotherapist/doctor if it persists" in out["message"].iloc[2]
    out = K.knee_pain_recent(times([0, 1]), pd.Series([2.0, np.nan]), pd.Series([True, None]))
    assert lv(out) == [0, 2]
    assert "not settled by the next morning" in out["message"].iloc[1]


def test_knee_pain_zero_is_none():
    out = K.knee_pain_recent(times([0, 1]), pd.Series([0.0, np.nan]), pd.Series([False, None]))
    assert lv(out) == [0, 0]


# --- runs too damaged to assess (quality_ok False) ------------------------------------------------
@pytest.mark.parametrize("n", [1, 4])
def test_no_assessable_run_is_not_assessed_without_error(n):
    out = cadence_case(150.0, days=tuple(range(0, 2 * n, 2)), quality=[False] * n)
    assert out["level"].isna().all() and (out["note"] == L.QUALITY_NOTE).all()
    t = times(np.arange(n) * 2.0)
    out = K.descent_spike(t, pd.Series([400.0] * n), pd.Series([20.0] * n),
                          pd.Series([False] * n))
    assert out["level"].isna().all() and (out["note"] == L.QUALITY_NOTE).all()
    assert (out["message"] == "").all()
