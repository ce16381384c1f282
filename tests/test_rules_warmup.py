"""W1 no warm-up and W2 abrupt finish."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runlog.rules import warmup as W

DAY0 = pd.Timestamp("2024-05-01 08:00")


def lv(frame):
    return frame["level"].astype("float64").tolist()


def call(n=1, hours=None, elapsed=3600.0, warm=False, hr=0.80, if_=np.nan, hard=False,
         before=None, quality=True):
    hours = np.arange(n) * 24.0 if hours is None else np.asarray(hours, dtype=float)
    t = pd.Series(DAY0 + pd.to_timedelta(hours, unit="h"))
    k = len(t)

    def s(x):
        return pd.Series(np.broadcast_to(np.asarray(x, dtype=object), (k,)))
    return W.no_warmup(t, pd.Series(np.full(k, elapsed)), s(warm),
                       pd.Series(np.broadcast_to(np.asarray(hr, dtype=float), (k,))),
                       pd.Series(np.broadcast_to(np.asarray(if_, dtype=float), (k,))),
                       s(hard), s(before), s(quality))


@pytest.mark.parametrize("hr, expected", [(0.77, 1), (0.769, 0), (0.90, 1)])
def test_vigorous_threshold(hr, expected):
    assert lv(call(hr=hr)) == [expected]


def test_warmup_present_is_none_and_tip_otherwise():
    assert lv(call(warm=True)) == [0]
    out = call(hr=0.70)
    assert lv(out) == [0] and out["message"].iloc[0].startswith("Tip:")
    out = call(hr=0.85)
    assert "Proof that warm-ups prevent running injuries is weak" in out["message"].iloc[0]


def test_no_hr_uses_pace_and_hard_start():
    out = call(hr=np.nan, if_=0.86)
    assert lv(out) == [1] and out["note"].iloc[0] == "No HR — intensity from pace"
    assert lv(call(hr=np.nan, if_=0.84)) == [0]
    assert lv(call(hr=0.70, hard=True)) == [1]
    out = call(hr=np.nan, if_=np.nan)
    assert np.isnan(lv(out)[0])


def test_skips_warmed_up_before_or_recent_activity():
    assert lv(call(hr=0.85, before=True)) == [0]
    # second run starts 20 min after the first ended (elapsed 1 h) → skip
    out = call(n=2, hours=[0.0, 1.0 + 20 / 60], hr=0.85)
    assert lv(out) == [1, 0]
    out = call(n=2, hours=[0.0, 1.0 + 31 / 60], hr=0.85)
    assert lv(out) == [1, 1]


def test_missing_detector_and_poor_quality():
    out = call(warm=None)
    assert np.isnan(lv(out)[0]) and "No warm-up data" in out["note"].iloc[0]
    out = call(quality=False)
    assert np.isnan(lv(out)[0]) and "quality" in out["note"].iloc[0]


def test_intensity_factor_from_best_30_to_60_min_run():
    t = pd.Series(DAY0 + pd.to_timedelta([0, 1, 2, 100], unit="D"))
    v = pd.Series([3.0, 3.5, 3.15, 3.0])
    mv = pd.Series([2400.0, 7200.0, 1800.0, 3000.0])
    out = W.intensity_factor(t, v, mv, pd.Series([True] * 4))
    assert out.iloc[0] == pytest.approx(1.0)
    assert out.iloc[1] == pytest.approx(3.5 / 3.0)      # the 2-h run does not set threshold
    assert out.iloc[2] == pytest.approx(1.0)            # new best 30-min run
    assert out.iloc[3] == pytest.approx(1.0)            # 90-day window: only itself


def test_abrupt_finish_tip_only():
    out = W.abrupt_finish(pd.Series([True, False, None]), pd.Series([0.95, 0.6, np.nan]),
                          pd.Series([True] * 3))
    levels = lv(out)
    assert levels[:2] == [1, 0] and np.isnan(levels[2])
    assert "not shown to prevent knee pain" in out["message"].iloc[0]
    from runlog.rules import REGISTRY
    assert REGISTRY["abrupt_finish"].feeds == {}


# --- runs too damaged to assess (quality_ok False) ------------------------------------------------
@pytest.mark.parametrize("n", [1, 3])
def test_no_assessable_run_is_not_assessed_without_error(n):
    out = call(n=n, quality=False)
    assert out["level"].isna().all() and (out["message"] == "").all()
    assert (out["note"] == "Data quality too poor for this rule — not assessed").all()
    t = pd.Series(DAY0 + pd.to_timedelta(np.arange(n), unit="D"))
    thr = W.intensity_factor(t, pd.Series([3.0] * n), pd.Series([2400.0] * n),
                             pd.Series([False] * n))
    assert thr.isna().all()
    out = W.abrupt_finish(pd.Series([True] * n), pd.Series([0.95] * n), pd.Series([False] * n))
    assert out["level"].isna().all() and (out["message"] == "").all()


def test_vigorous_is_hr_or_if_and_message_gives_the_numbers():
    """RULES.md W1: mean HR ≥ 77 % HRmax OR IF ≥ 0.85 — an easy HR does not hide a fast IF."""
    out = call(hr=0.70, if_=0.88)
    assert lv(out) == [1]
    assert "IF 0.88 ≥ 0.85" in out["message"].iloc[0]
    assert out["unit"].iloc[0] == "% of threshold pace" and out["value"].iloc[0] == 88.0
    assert lv(call(hr=0.70, if_=0.84)) == [0]


def test_hr_message_names_the_hrmax_and_whether_it_is_an_estimate():
    t = pd.Series([DAY0])

    def s(x):
        return pd.Series([x], dtype=object)
    out = W.no_warmup(t, pd.Series([3600.0]), s(False), pd.Series([0.81]), pd.Series([np.nan]),
                      s(False), s(None), s(True), has_hr=s(True),
                      hr_max_bpm=pd.Series([188.0]), hr_max_source=s("history_30s"))
    msg = out["message"].iloc[0]
    assert lv(out) == [1]
    assert ("mean HR 81 % of HRmax ≥ 77 %, HRmax 188 bpm (estimated: your best 30 s in the "
            "last 180 days)") in msg
    assert out["value"].iloc[0] == pytest.approx(81.0)


def test_note_says_no_hrmax_when_hr_was_recorded():
    t = pd.Series([DAY0])

    def s(x):
        return pd.Series([x], dtype=object)
    args = (t, pd.Series([3600.0]), s(False), pd.Series([np.nan]), pd.Series([0.9]),
            s(False), s(None), s(True))
    assert W.no_warmup(*args, has_hr=s(True))["note"].iloc[0] == "No HRmax — intensity from pace"
    assert W.no_warmup(*args, has_hr=s(False))["note"].iloc[0] == "No HR — intensity from pace"
