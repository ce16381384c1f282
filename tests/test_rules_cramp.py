"""Cramp rules C1–C3."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runlog.rules import cramp as C

DAY0 = pd.Timestamp("2024-05-01 08:00")


def lv(frame):
    return frame["level"].astype("float64").tolist()


def times(days):
    return pd.Series(DAY0 + pd.to_timedelta(np.asarray(days, dtype=float), unit="D"))


def ok(n):
    return pd.Series([True] * n)


# --- C1 longer_than_usual ----------------------------------------------------------------------
@pytest.mark.parametrize("prev_min, last_min, expected", [
    (50.0, 60.0, 0),       # r = 1.2 → none
    (50.0, 60.1, 1),       # r > 1.2 and ≥ 60 min
    (45.0, 59.0, 0),       # r > 1.2 but < 60 min
    (60.0, 90.0, 1),       # r = 1.5 → moderate
    (60.0, 90.1, 2),       # r > 1.5 and ≥ 90 min
    (50.0, 89.0, 1),       # r > 1.5 but < 90 min → moderate
])
def test_longer_thresholds(prev_min, last_min, expected):
    out = C.longer_than_usual(times([0, 3]), pd.Series([prev_min, last_min]) * 60, ok(2))
    assert lv(out)[-1] == expected


def test_longer_message_window_and_quality():
    out = C.longer_than_usual(times([0, 3]), pd.Series([93.0, 130.2]) * 60, ok(2))
    assert out["message"].iloc[-1].startswith("2 h 10 min, 40 % longer than anything this month.")
    # a longer poor-quality run does not count as the reference
    out = C.longer_than_usual(times([0, 1, 3]), pd.Series([200.0, 93.0, 130.0]) * 60,
                              pd.Series([False, True, True]))
    assert lv(out)[-1] == 1
    # first run ever: not assessed
    assert np.isnan(lv(out)[0])


def test_longer_uses_runs_before_a_break():
    out = C.longer_than_usual(times([0, 2, 50]), pd.Series([60.0, 60.0, 100.0]) * 60, ok(3))
    assert lv(out)[-1] == 2
    assert "than your runs before the break" in out["message"].iloc[-1]


# --- C2 harder_than_usual --------------------------------------------------------------------
def harder(last_hrr, n_prev=9, minutes=60.0, last_minutes=None, longer=0, days_step=3,
           hrr_prev=None):
    n = n_prev + 1
    hrr_prev = np.linspace(0.60, 0.68, n_prev) if hrr_prev is None else hrr_prev
    hrr = pd.Series([*list(hrr_prev), last_hrr])
    m = pd.Series([minutes] * n_prev + [last_minutes or minutes]) * 60
    return C.harder_than_usual(times(np.arange(n) * days_step), m, hrr,
                               pd.Series([3.0] * n), ok(n), longer)


def test_harder_top_ten_percent():
    assert lv(harder(0.70))[-1] == 1          # above all 9 comparables
    out = harder(0.70)
    assert out["message"].iloc[-1].startswith("Your hardest run of this length in 3 months")
    assert out["unit"].iloc[-1] == "% HRR"
    # 90th percentile of 60…68 % in 1-point steps: 67.2 %; the value is shown against it
    assert out["threshold"].iloc[-1] == pytest.approx(67.2)
    assert "(mean 70 % of heart-rate reserve vs 67 %, the 90th percentile of 9 runs" in (
        out["message"].iloc[-1])


def test_harder_message_names_the_hrmax_behind_the_hrr():
    n = 10
    out = C.harder_than_usual(times(np.arange(n) * 3), pd.Series([3600.0] * n),
                              pd.Series([*np.linspace(0.60, 0.68, 9), 0.70]),
                              pd.Series([3.0] * n), ok(n), 0,
                              hr_max_bpm=pd.Series([183.4] * n),
                              hr_max_source=pd.Series(["age_formula"] * n))
    assert lv(out)[-1] == 1
    assert "; HRmax 183 bpm (estimated: 208 − 0.7 × age (Tanaka 2001))" in out["message"].iloc[-1]


def test_harder_at_or_above_the_shown_90th_percentile():
    """RULES.md C2 '≥ 90th percentile': a value at or above the threshold the flag reports
    is flagged even when it beats fewer than 90 % of the comparables outright (8/9 here)."""
    out = harder(0.675)
    assert out["value"].iloc[-1] > out["threshold"].iloc[-1] == pytest.approx(67.2)
    assert lv(out)[-1] == 1
    assert out["message"].iloc[-1].startswith("At or above the 90th percentile")
    assert "67.5" not in out["message"].iloc[-1] and "vs 67 %" in out["message"].iloc[-1]
    assert lv(harder(0.672))[-1] == 1         # exactly the percentile (≥)
    assert lv(harder(0.671))[-1] == 0         # just below it
    # ties: equal to every comparable is at their 90th percentile but not harder than usual
    assert lv(harder(0.65, hrr_prev=[0.65] * 9))[-1] == 0
    assert lv(harder(0.651, hrr_prev=[0.65] * 9))[-1] == 1
    assert lv(harder(0.65, hrr_prev=[0.60] + [0.65] * 8))[-1] == 0


def test_harder_needs_5_comparables_45_min_and_length_match():
    out = harder(0.70, n_prev=4)
    assert np.isnan(lv(out)[-1]) and "Under 5 similar-length runs" in out["note"].iloc[-1]
    assert lv(harder(0.70, minutes=44.0))[-1] == 0
    # comparables within ±25 % of this run's time: 60 min is −26 % of 81 min → not comparable
    assert np.isnan(lv(harder(0.70, last_minutes=81.0))[-1])
    assert lv(harder(0.70, last_minutes=80.0))[-1] == 1       # 60 = 80 − 25 % → comparable
    assert lv(harder(0.70, last_minutes=75.0))[-1] == 1       # +25 % is comparable
    # 90-day window: history 10 days apart → only the last 9 within 90 d
    assert np.isnan(lv(harder(0.70, n_prev=9, days_step=20))[-1])


def test_harder_high_with_longer_and_pace_fallback():
    out = harder(0.70, longer=np.array([0] * 9 + [1]))
    assert lv(out)[-1] == 2
    n = 10
    v = pd.Series([*list(np.linspace(3.0, 3.2, 9)), 3.4])
    out = C.harder_than_usual(times(np.arange(n) * 3), pd.Series([3600.0] * n),
                              pd.Series([np.nan] * n), v, ok(n), 0)
    assert lv(out)[-1] == 1 and out["note"].iloc[-1] == "No HR — intensity from pace"
    assert "fastest" in out["message"].iloc[-1]
    assert "grade-adjusted speed 3.40 m/s vs 3.18 m/s" in out["message"].iloc[-1]


# --- C3 cramp_history ---------------------------------------------------------------------------
def test_cramp_history_last_10_comparable_runs():
    n = 13
    cramp = [True] + [False] * 12
    m = pd.Series([60.0] * n) * 60
    out = C.cramp_history(times(range(n)), m, pd.Series(cramp), ok(n))
    levels = lv(out)
    assert levels[0] == 0                 # own cramp does not count
    assert levels[1:11] == [1] * 10       # within the last 10 comparable runs
    assert levels[11:] == [0, 0]          # pushed out by 10 later runs
    assert "Cramps logged on 1 of your last 10 similar runs" in out["message"].iloc[1]


def test_cramp_history_needs_comparable_length_and_prone_flag():
    m = pd.Series([30.0, 60.0]) * 60
    out = C.cramp_history(times([0, 1]), m, pd.Series([True, None]), ok(2))
    assert lv(out) == [0, 0]              # a 30-min run is not comparable to 60 min
    out = C.cramp_history(times([0, 1]), m, pd.Series([None, None]), ok(2), cramp_prone=True)
    assert lv(out) == [1, 1] and "prone to cramps" in out["message"].iloc[0]


@given(st.lists(st.tuples(st.integers(0, 9), st.sampled_from([45.0, 60.0, 75.0, 80.0, 100.0,
                                                               0.0, np.nan]), st.booleans()),
                max_size=60),
       st.integers(1, 5), st.integers(1, 4), st.sampled_from([1, 3, 32]))
@settings(max_examples=300, deadline=None)
def test_latest_comparables_match_pairs_sorted_newest_first(runs, days, count, step):
    # runs on few distinct days (many same-instant ties), lengths on the ±25 % edges; the
    # reference: every comparable pair, pandas' stable sort by (i, time desc), first `count`
    t = times([d for d, _, _ in runs]).reset_index(drop=True)
    m = np.array([minutes * 60 for _, minutes, _ in runs], dtype="float64")
    good = np.array([g for _, _, g in runs], dtype=bool)
    i, j = C._comparables(t, m, good, days)
    pairs = pd.DataFrame({"i": i, "j": j, "t": t.to_numpy()[j]}).sort_values(
        ["i", "t"], ascending=[True, False], kind="stable")
    want = pairs[pairs.groupby("i").cumcount() < count]
    with mock.patch.object(C, "_STEP_RUNS", step):      # steps of 1 and 3 runs back too
        got_i, got_j = C.latest_comparables(t, m, good, days, count)
    assert sorted(zip(got_i.tolist(), got_j.tolist(), strict=True)) == sorted(
        zip(want["i"].tolist(), want["j"].tolist(), strict=True))


@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from([0.5, 0.61, 0.62, 0.7, 3.1, 1e-3])),
                max_size=40),
       st.sampled_from([0.9, 0.5, 0.0, 1.0, 0.25]))
@settings(max_examples=300, deadline=None)
def test_quantile_and_max_are_pandas_grouped_ones(pairs, q):
    n = 7
    group = np.array([g for g, _ in pairs], dtype=np.int64)
    x = np.array([v for _, v in pairs], dtype="float64")
    grouped = pd.Series(x).groupby(group)
    want_q = grouped.quantile(q).reindex(np.arange(n)).to_numpy()
    want_max = grouped.max().reindex(np.arange(n)).to_numpy()
    got_q, got_max = C.quantile_and_max(group, x, np.bincount(group, minlength=n), q)
    np.testing.assert_array_equal(got_q, want_q)
    np.testing.assert_array_equal(got_max, want_max)


# --- runs too damaged to assess (quality_ok False) ------------------------------------------------
@pytest.mark.parametrize("n", [1, 4])
def test_no_assessable_run_is_not_assessed_without_error(n):
    t, m = times(np.arange(n) * 2.0), pd.Series([3600.0] * n)
    bad = pd.Series([False] * n)
    outs = [C.longer_than_usual(t, m, bad),
            C.harder_than_usual(t, m, pd.Series([0.7] * n), pd.Series([3.0] * n), bad, 0),
            C.cramp_history(t, m, pd.Series([True] * n), bad, cramp_prone=True)]
    for out in outs:
        assert len(out) == n and out["level"].isna().all()
        assert (out["note"] == C.QUALITY_NOTE).all() and (out["message"] == "").all()


def test_cramp_history_skips_a_damaged_run():
    """Cramps on earlier comparable runs, or a cramp-prone runner, flag good runs only: a run
    too damaged to assess stays out of every rule (and of the comparables)."""
    m = pd.Series([60.0, 60.0, 60.0, 60.0]) * 60
    q = pd.Series([True, False, True, False])
    out = C.cramp_history(times([0, 1, 2, 3]), m, pd.Series([True, True, None, None]), q)
    assert lv(out)[0] == 0 and lv(out)[2] == 1
    assert "Cramps logged on 1 of" in out["message"].iloc[2]     # the damaged run's cramp: no
    for i in (1, 3):
        assert np.isnan(lv(out)[i])
        assert out["note"].iloc[i] == C.QUALITY_NOTE and out["message"].iloc[i] == ""
    out = C.cramp_history(times([0, 1]), m.iloc[:2], pd.Series([None, None]), q.iloc[:2],
                          cramp_prone=True)
    assert lv(out)[0] == 1 and np.isnan(lv(out)[1])
