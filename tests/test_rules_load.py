"""Load rules L1–L4b at and around their thresholds; history windows look only backwards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runlog.rules import load as L

DAY0 = pd.Timestamp("2024-05-01 08:00")


def series(days, km, quality=None):
    t = pd.Series(DAY0 + pd.to_timedelta(np.asarray(days, dtype=float), unit="D"))
    d = pd.Series(np.asarray(km, dtype=float) * 1000.0)
    q = pd.Series([True] * len(t) if quality is None else quality)
    return t, d, q


def levels(frame):
    return frame["level"].astype("float64").tolist()


# --- L1 session_spike -----------------------------------------------------------------------
@pytest.mark.parametrize("km, expected", [
    (11.0, 0),      # exactly +10 % → none
    (11.01, 1),     # +10.1 % → moderate
    (20.0, 1),      # exactly +100 % → moderate
    (20.01, 2),     # +100.1 % → high
    (8.0, 0),       # shorter
])
def test_session_spike_thresholds(km, expected):
    t, d, q = series([0, 10], [10.0, km])
    assert levels(L.session_spike(t, d, q))[1] == expected


def test_session_spike_gps_floor():
    # +40 % but only 0.4 km more → ignored (GPS error); 0.5 km more → counts
    t, d, q = series([0, 1, 20], [1.0, 1.4, 1.0])
    assert levels(L.session_spike(t, d, q))[1] == 0
    t, d, q = series([0, 1], [1.0, 1.5])
    assert levels(L.session_spike(t, d, q))[1] == 1          # +50 %, 0.5 km more → moderate
    t, d, q = series([0, 1], [1.0, 1.49])
    assert levels(L.session_spike(t, d, q))[1] == 0          # +49 %, 0.49 km more → ignored
    out = L.session_spike(*series([0, 1], [1.25, 1.75]))
    assert levels(out)[1] == 1 and out["value"].iloc[1] == pytest.approx(40.0)


def test_session_spike_message_and_value():
    out = L.session_spike(*series([0, 5], [12.0, 16.08]))
    assert levels(out)[1] == 1
    assert out["value"].iloc[1] == pytest.approx(34.0)
    msg = out["message"].iloc[1]
    assert "34 % longer than your longest run of the last 30 days (12.0 km)" in msg
    assert "5,200-runner study" in out["message"].iloc[1]
    assert out["unit"].iloc[1] == "%" and out["threshold"].iloc[1] == 10


def test_session_spike_window_is_30_days_strictly_before():
    # a 20 km run 31 days ago does not count; one 29 days ago does
    out = L.session_spike(*series([0, 31], [20.0, 12.0]))
    assert np.isnan(levels(out)[1]) and "No run in the previous 30 days" in out["note"].iloc[1]
    out = L.session_spike(*series([0, 29, 30], [20.0, 12.0, 12.0]))
    assert levels(out)[1:] == [0, 0]
    # later runs never count: a long run after does not make this one "short"
    out = L.session_spike(*series([0, 1, 2], [10.0, 15.0, 30.0]))
    assert levels(out) == [pytest.approx(np.nan, nan_ok=True), 1, 1]


def test_session_spike_excludes_poor_quality_runs():
    out = L.session_spike(*series([0, 1, 2], [10.0, 40.0, 12.0], [True, False, True]))
    lv = levels(out)
    assert np.isnan(lv[1]) and "quality" in out["note"].iloc[1]
    assert lv[2] == 1           # the 40 km GPS-jump run is not the reference


def test_session_spike_first_run_not_assessed():
    out = L.session_spike(*series([0], [10.0]))
    assert np.isnan(levels(out)[0])


def test_session_spike_unsorted_input_keeps_index():
    t, d, q = series([10, 0], [15.0, 10.0])
    t.index = d.index = q.index = ["b", "a"]
    out = L.session_spike(t, d, q)
    assert list(out.index) == ["b", "a"] and out.loc["b", "level"] == 1


# --- L2 weekly_jump ---------------------------------------------------------------------------
def test_weekly_jump_above_and_at_30_percent():
    # week before: 10 km (day 0..6); this week: 13 km → +30 % (none), 13.1 → moderate
    t, d, q = series([0, 3, 8, 10], [5.0, 5.0, 6.0, 7.0])
    assert levels(L.weekly_jump(t, d, q))[3] == 0
    t, d, q = series([0, 3, 8, 10], [5.0, 5.0, 6.0, 7.1])
    out = L.weekly_jump(t, d, q)
    assert levels(out)[3] == 1
    assert "31 % above the week before" in out["message"].iloc[3]


def test_weekly_jump_needs_5_km_the_week_before():
    t, d, q = series([0, 8], [4.9, 20.0])
    out = L.weekly_jump(t, d, q)
    assert np.isnan(levels(out)[1]) and "Under 5 km" in out["note"].iloc[1]
    t, d, q = series([0, 8], [5.0, 20.0])
    assert levels(L.weekly_jump(t, d, q))[1] == 1


def test_weekly_jump_uses_local_calendar_days_and_excludes_later_runs():
    # day 7 at 23:00 is in "this week" of day 13 (days 7..13); day 6 is in the week before
    t = pd.Series([DAY0.normalize() + pd.Timedelta(days=6, hours=23),
                   DAY0.normalize() + pd.Timedelta(days=7, hours=1),
                   DAY0.normalize() + pd.Timedelta(days=13, hours=6),
                   DAY0.normalize() + pd.Timedelta(days=13, hours=20)])
    d = pd.Series([10.0, 4.0, 8.0, 50.0]) * 1000
    q = pd.Series([True] * 4)
    out = L.weekly_jump(t, d, q)
    # run 2: D7 = 4 + 8 = 12, prev = 10 → +20 % → none; the later 50 km run does not count
    assert levels(out)[2] == 0 and out["value"].iloc[2] == pytest.approx(20.0)


def test_weekly_jump_ignores_poor_quality():
    t, d, q = series([0, 8, 9], [10.0, 30.0, 2.0], [True, False, True])
    out = L.weekly_jump(t, d, q)
    assert levels(out)[2] == 0           # 2 km this week (30 km run excluded) vs 10 km


# --- L3 acwr -------------------------------------------------------------------------------------
def test_acwr_display_only_after_28_days():
    days = np.arange(0, 40, 2)
    out = L.acwr(*series(days, np.full(len(days), 10.0)))
    lv = levels(out)
    assert all(np.isnan(x) for x in lv[:14])
    assert all(x == 0 for x in lv[14:])          # never a flag
    assert "not an injury predictor" in out["message"].iloc[-1]
    assert out["value"].iloc[-1] == pytest.approx(1.0, abs=0.15)


def test_acwr_not_shown_for_the_first_run_back_after_a_break():
    """Runs every other day for 40 days, then 329 days off: the first two runs back (days
    369 and 372) have no running in days t−27…t−7, so their ratio (≈ 3.6 for the first,
    whatever its distance) is not shown; a run inside the training block and the third run
    back (day 390: 369 and 372 are in its window) are."""
    days = [*range(0, 40, 2), 369, 372, 390]
    out = L.acwr(*series(days, np.full(len(days), 10.0)))
    lv = levels(out)
    back = days.index(369)
    assert lv[back - 1] == 0 and np.isnan(lv[back]) and np.isnan(lv[back + 1])
    assert out["value"].iloc[back] == pytest.approx(3.6, abs=0.1)  # what would have shown
    assert "No running in the 3 weeks before the last 7 days" in out["note"].iloc[back]
    assert out["message"].iloc[back] == ""
    assert lv[back + 2] == 0 and "not an injury predictor" in out["message"].iloc[back + 2]


# --- L4 restart -------------------------------------------------------------------------------
def test_restart_gap_boundary():
    # 13 days → no restart; 14 days → restart (as long as the median before)
    out = L.restart(*series([0, 2, 4, 17], [8.0, 10.0, 12.0, 10.0]))
    assert levels(out)[3] == 0
    out = L.restart(*series([0, 2, 4, 18], [8.0, 10.0, 12.0, 10.0]))
    assert levels(out)[3] == 1 and out["value"].iloc[3] == 14
    assert "walk–run is fine" in out["message"].iloc[3]
    # measured vs compared: this run's km vs the median of the 30 days before the break
    assert "(10.0 km vs 10.0 km, the median run of the 30 days before the break)" in (
        out["message"].iloc[3])


def test_restart_short_first_run_is_fine():
    out = L.restart(*series([0, 2, 4, 30], [8.0, 10.0, 12.0, 5.0]))
    assert levels(out)[3] == 0


def test_restart_high_after_28_days_and_longest():
    out = L.restart(*series([0, 2, 4, 32], [8.0, 10.0, 12.0, 12.5]))
    assert levels(out)[3] == 2
    assert "(12.5 km vs 12.0 km, the longest run of the 30 days before the break)" in (
        out["message"].iloc[3])
    out = L.restart(*series([0, 2, 4, 31], [8.0, 10.0, 12.0, 12.0]))   # 27 days → moderate
    assert levels(out)[3] == 1
    assert "First run after" in out["message"].iloc[3]
    assert "(12.0 km vs 10.0 km, the median run" in out["message"].iloc[3]


def test_restart_only_first_run_after_gap_and_ignores_poor_quality():
    out = L.restart(*series([0, 20, 21], [10.0, 10.0, 10.0]))
    assert levels(out)[1:] == [1, 0]
    # a poor-quality run in the gap does not end the break
    out = L.restart(*series([0, 10, 20], [10.0, 10.0, 10.0], [True, False, True]))
    assert levels(out)[2] == 1


# --- L4b new_runner -----------------------------------------------------------------------------
def test_new_runner_bmi_and_week1_km():
    t, d, q = series([0, 2, 5, 9], [1.5, 1.5, 1.0, 3.0])
    assert levels(L.new_runner(t, d, q, 31.0)) == [0, 0, 1, 0]     # 3.0 → none; 4.0 → moderate
    assert levels(L.new_runner(t, d, q, 30.0)) == [0, 0, 0, 0]     # BMI must exceed 30
    out = L.new_runner(t, d, q, np.nan)
    assert all(np.isnan(levels(out)))
    assert out["note"].iloc[0] == "No height/mass — new-runner rule not assessed"


def test_new_runner_not_applicable_after_four_weeks():
    out = L.new_runner(*series([0, 40], [2.0, 5.0]), np.nan)
    assert np.isnan(levels(out)[0]) and levels(out)[1] == 0


def test_body_mass_index():
    assert L.body_mass_index(95.0, 175.0) == pytest.approx(31.02, abs=0.01)


# --- helpers ------------------------------------------------------------------------------------
def test_history_pairs_strictly_before():
    t = pd.Series(DAY0 + pd.to_timedelta([0, 1, 1, 5, 40], unit="D"))
    i, j = L.history_pairs(t, 30)
    pairs = set(zip(i.tolist(), j.tolist(), strict=True))
    assert pairs == {(1, 0), (2, 0), (3, 0), (3, 1), (3, 2)}


@pytest.mark.parametrize("quality", [
    pd.Series([True, None, False], dtype="boolean"), pd.Series([True, False, True]),
    pd.Series([True, None, False], dtype=object), [True, None, False], np.array([1, 0, 1]),
])
def test_good_mask_direct_path_is_the_boolean_cast(quality):
    want = pd.Series(quality).astype("boolean").fillna(True).to_numpy(dtype=bool)
    assert L.good_mask(quality).tolist() == want.tolist()


@pytest.mark.parametrize("times", [
    pd.Series(pd.to_datetime(["1969-12-31 23:30:00", "2024-03-31 01:59:59.5", "2024-03-31"],
                             format="ISO8601")),
    pd.Series(["2024-03-31 02:30", "2024-01-01 00:00"]),
    [pd.Timestamp("2024-05-01 08:00"), pd.Timestamp("2024-05-02")],
])
def test_local_times_and_days_as_to_datetime_and_normalize(times):
    want = pd.to_datetime(pd.Series(times))
    np.testing.assert_array_equal(L.local_times(times), want.to_numpy())
    days = want.dt.normalize().to_numpy().astype("datetime64[D]").astype("int64")
    assert L.local_days(times).tolist() == days.tolist()


def test_messages_pass_columns_by_name_whatever_the_order():
    mask = np.array([True, False, True])
    a, b = np.array([1.0, 2.0, 3.5]), np.array(["x", "y", "z"], dtype=object)

    def make(a, b):
        return f"{a:.1f}{b}"

    want = ["1.0x", "", "3.5z"]
    assert L.messages(mask, make, a=a, b=b).tolist() == want            # by position
    assert L.messages(mask, make, b=b, a=a).tolist() == want            # reordered
    assert L.messages(mask, lambda a, b="-": f"{a:.1f}{b}", a=a).tolist() == [
        "1.0-", "", "3.5-"]                                             # defaults: by name
    assert L.messages(mask, lambda: "tip").tolist() == ["tip", "", "tip"]
    assert L.messages(np.zeros(3, dtype=bool), make, a=1.0, b="x").tolist() == ["", "", ""]


def _rolling_on_times(start_local, values, days, how, closed, by_day):
    """The former window_stat: pandas' time-based rolling over a DatetimeIndex."""
    t = pd.to_datetime(pd.Series(start_local)).to_numpy()
    order = np.argsort(t, kind="stable")
    key = pd.DatetimeIndex(t[order])
    if by_day:
        key = key.normalize()
    s = pd.Series(np.asarray(values, dtype="float64")[order], index=key)
    rolled = getattr(s.rolling(f"{days}D", closed=closed, min_periods=1), how)().to_numpy()
    out = np.empty(len(s))
    out[order] = rolled
    return out


@given(st.lists(st.tuples(st.integers(0, 12), st.sampled_from([0, 0, 7, 23]),
                          st.one_of(st.just(np.nan), st.floats(0, 30, width=16))), max_size=40),
       st.sampled_from([1, 2, 7, 0.5]), st.sampled_from(["max", "sum", "median", "count"]),
       st.sampled_from(["left", "right", "both"]), st.booleans())
@settings(max_examples=400, deadline=None)
def test_window_stat_is_the_time_based_rolling(runs, days, how, closed, by_day):
    # unsorted runs, several at the same instant or on the same day, missing values
    t = pd.Series(DAY0 + pd.to_timedelta([d * 24 + h for d, h, _ in runs], unit="h"))
    values = np.array([v for _, _, v in runs], dtype="float64")
    got = L.window_stat(t, values, days, how, closed, by_day=by_day).to_numpy()
    np.testing.assert_array_equal(got, _rolling_on_times(t, values, days, how, closed, by_day))


def _acwr_on_a_calendar(start_local, distance_m, quality_ok):
    """The former L3 ratio and history test: a daily DatetimeIndex, asfreq and reindex."""
    good = L.good_mask(quality_ok)
    t = pd.to_datetime(pd.Series(start_local))
    km = pd.Series(np.where(good, np.asarray(distance_m, dtype="float64") / 1000.0, 0.0),
                   index=pd.DatetimeIndex(t.to_numpy()).normalize())
    daily = km.groupby(level=0).sum().asfreq("D", fill_value=0.0)
    acute = daily.ewm(span=7, adjust=False).mean()
    chronic = daily.ewm(span=28, adjust=False).mean()
    ratio = (acute / chronic.where(chronic > 0)).reindex(t.dt.normalize()).to_numpy()
    first = t[good].min() if good.any() else t.min()
    enough = (t.dt.normalize() - first.normalize()).dt.days.to_numpy() >= 28
    earlier_km = daily.shift(7).rolling(21, min_periods=1).sum()  # days t−27…t−7
    base = (earlier_km.reindex(t.dt.normalize()) > 0).to_numpy()
    return ratio, enough & base & good & ~np.isnan(ratio)


@given(st.lists(st.tuples(st.integers(0, 80), st.sampled_from([0, 5, 23]),
                          st.one_of(st.just(np.nan), st.floats(0, 30)), st.booleans()),
                min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_acwr_matches_the_calendar_version(runs):
    t = pd.Series(DAY0 + pd.to_timedelta([d * 24 + h for d, h, _, _ in runs], unit="h"))
    d = pd.Series([km * 1000 for _, _, km, _ in runs])
    q = pd.Series([g for _, _, _, g in runs])
    ratio, shown = _acwr_on_a_calendar(t, d, q)
    out = L.acwr(t, d, q)
    np.testing.assert_array_equal(out["value"].to_numpy(), ratio)
    assert (out["level"] == 0).fillna(False).tolist() == shown.tolist()


# --- runs too damaged to assess (quality_ok False) ------------------------------------------------
def test_previous_index_and_pregap_without_any_good_run():
    """No good run at all (a store holding only a damaged run): every run has none before."""
    t, d, _ = series([0, 1, 5], [5.0, 5.0, 5.0])
    none = np.zeros(3, dtype=bool)
    assert L.previous_index(t, none).tolist() == [-1, -1, -1]
    assert L.previous_index(t.iloc[:1], none[:1]).tolist() == [-1]
    assert np.isnan(L.pregap_stat(t, d / 1000.0, none, 30.0, "max")).all()
    # some good: the latest good run strictly before, damaged runs skipped
    assert L.previous_index(t, np.array([False, True, False])).tolist() == [-1, -1, 1]
    assert L.previous_index(t.iloc[:0], none[:0]).tolist() == []


def _load_rule(rule, t, d, q):
    return L.new_runner(t, d, q, 31.0) if rule == "new_runner" else getattr(L, rule)(t, d, q)


LOAD_RULES = ["session_spike", "weekly_jump", "acwr", "restart", "new_runner"]


@pytest.mark.parametrize("rule", LOAD_RULES)
@pytest.mark.parametrize("days", [[0.0], [0.0, 2.0, 40.0]])
def test_no_assessable_run_is_not_assessed_without_error(rule, days):
    t, d, _ = series(days, [6.0] * len(days))
    out = _load_rule(rule, t, d, pd.Series([False] * len(days)))
    assert len(out) == len(days) and out.index.equals(t.index)
    assert out["level"].isna().all()
    assert (out["note"] == L.QUALITY_NOTE).all() and (out["message"] == "").all()


@pytest.mark.parametrize("rule", LOAD_RULES)
def test_damaged_runs_first_then_good_ones(rule):
    """Damaged runs before the first good one: they are not assessed and are no baseline."""
    t, d, _ = series([0, 1, 20, 22], [30.0, 30.0, 5.0, 5.5])
    out = _load_rule(rule, t, d, pd.Series([False, False, True, True]))
    assert out["level"].iloc[:2].isna().all() and (out["note"].iloc[:2] == L.QUALITY_NOTE).all()
    expected = {"session_spike": [np.nan, 0.0], "weekly_jump": [np.nan, np.nan],
                "acwr": [np.nan, np.nan], "restart": [0.0, 0.0], "new_runner": [0.0, 0.0]}
    np.testing.assert_array_equal(out["level"].astype("float64").to_numpy()[2:],
                                  expected[rule])
