"""Data-quality checks: synthetic samples for each rule, and the two damaged corpus runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runlog.activity import FLOAT_SAMPLE_COLUMNS, empty_samples, samples_frame
from runlog.quality import (
    MAX_RUN_STEP_SPEED_MPS,
    _step_speed,
    assess_quality,
    haversine_m,
    merge_equal_times,
)

M_PER_DEG_LAT = 111_194.9      # mean Earth radius × π/180 [m]
START = pd.Timestamp("2024-05-01 07:00", tz="UTC")
SESSION = "corriporai__runpandas/examples/session"
SPIKE_RUN = "556160e9-d74c-440c-b0af-363efb753430.gpx"     # 22 km GPS spike in 47 min
LEFT_RUNNING = "720bf570-d855-4303-87c2-74d85429e52d.gpx"   # watch ran ~24 h


def run_frame(speed_mps, *, hr_bpm=None, dt_s: float = 1.0, start=START) -> pd.DataFrame:
    """Samples every ``dt_s`` s running due north at ``speed_mps`` (array, one per sample)."""
    v = np.asarray(speed_mps, dtype=float)
    n = len(v)
    s = empty_samples(n)
    s["timestamp"] = start + pd.to_timedelta(np.arange(n) * dt_s, unit="s")
    cum = np.r_[0.0, np.cumsum(v[1:] * dt_s)]
    s["lat_deg"] = 46.0 + cum / M_PER_DEG_LAT
    s["lon_deg"] = 8.0
    s["speed_mps"] = v
    if hr_bpm is not None:
        s["hr_bpm"] = np.broadcast_to(np.asarray(hr_bpm, dtype=float), (n,))
    return s


def track_m(q) -> float:
    return q.track_distance_m


def test_clean_run_has_no_issues():
    s = run_frame(np.full(1200, 3.0), hr_bpm=np.linspace(120, 160, 1200).round())
    q = assess_quality(s, sport_sub=None, summary={"distance_m": 3597.0})
    assert q.ok and q.issues == [] and q.notes == []
    assert track_m(q) == pytest.approx(3597.0, rel=1e-3)
    assert q.segment_valid.dtype == bool and not q.segment_valid[0] and q.segment_valid[1:].all()


def test_unordered_and_duplicate_timestamps_are_sorted_and_merged():
    s = run_frame(np.full(600, 3.0), hr_bpm=np.linspace(120, 160, 600).round())
    dup = s.iloc[[10, 20, 30]].copy()
    dup["hr_bpm"] = np.nan
    shuffled = pd.concat([s.iloc[300:], s.iloc[:300], dup], ignore_index=True)
    q = assess_quality(shuffled, sport_sub=None, summary={})
    assert "timestamps_unordered" in q.issues and "duplicate_timestamps" in q.issues
    assert q.samples["timestamp"].is_monotonic_increasing
    assert q.samples["timestamp"].is_unique and len(q.samples) == 600
    # merging keeps the non-missing HR of the duplicated second
    assert q.samples["hr_bpm"].notna().all()
    assert any("3 samples repeated" in n for n in q.notes)


@pytest.mark.parametrize("start", [pd.Timestamp("1970-01-01", tz="UTC"),
                                   pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=30)])
def test_absurd_start_time_is_not_ok(start):
    q = assess_quality(run_frame(np.full(600, 3.0), start=start), sport_sub=None, summary={})
    assert "bad_timestamp" in q.issues and q.ok is False


def test_gps_jump_is_left_out_of_the_distance():
    s = run_frame(np.full(900, 3.0))
    s.loc[400, "lat_deg"] += 2000 / M_PER_DEG_LAT          # one fix 2 km off and back
    q = assess_quality(s, sport_sub=None, summary={})
    assert "gps_jump" in q.issues
    assert not q.segment_valid[400] and not q.segment_valid[401]
    assert q.segment_valid[399] and q.segment_valid[402]
    # the two 3-m steps around the bad fix are lost with it, nothing else
    assert track_m(q) == pytest.approx(899 * 3.0 - 6.0, abs=1.0)
    assert q.dropped_m > 3900
    assert any("km dropped" in n for n in q.notes)


def test_step_lengths_run_from_the_previous_fix():
    s = run_frame(np.full(600, 3.0))
    s.loc[200:209, ["lat_deg", "lon_deg"]] = np.nan                  # 10 s without a fix
    q = assess_quality(s, sport_sub=None, summary={})
    lat, lon = s["lat_deg"].to_numpy(), s["lon_deg"].to_numpy()
    assert np.isnan(q.step_m[0]) and np.isnan(q.step_m[200:210]).all()
    assert q.step_m[210] == haversine_m(lat[199], lon[199], lat[210], lon[210])
    assert q.step_m[210] == pytest.approx(11 * 3.0, abs=0.01)        # the gap bridged
    np.testing.assert_allclose(q.step_m[1:200], 3.0, atol=0.01)
    assert track_m(q) == pytest.approx(np.where(q.segment_valid, q.step_m, 0.0).sum())


def test_fast_but_plausible_steps_are_kept():
    s = run_frame(np.full(300, MAX_RUN_STEP_SPEED_MPS - 1))
    q = assess_quality(s, sport_sub=None, summary={})
    assert "gps_jump" not in q.issues and q.segment_valid[1:].all()


def test_device_distance_jump_is_cleaned():
    s = run_frame(np.full(900, 3.0))
    s[["lat_deg", "lon_deg"]] = np.nan                       # treadmill-like: channel only
    dist = np.arange(900) * 3.0
    dist[500:] += 2500.0                                     # a 2.5-km step in one second
    s["distance_m"] = dist
    q = assess_quality(s, sport_sub="treadmill", summary={})
    assert "distance_jump" in q.issues
    assert track_m(q) == pytest.approx(899 * 3.0 - 3.0, abs=1.0)
    # the cleaned channel drops the whole jump step (its 3 m with it)
    assert q.samples["distance_m"].iloc[-1] == pytest.approx(898 * 3.0, abs=1.0)


def test_stationary_tail_is_trimmed():
    rng = np.random.default_rng(1)
    run = run_frame(np.full(1200, 3.0), hr_bpm=150.0)
    tail = run_frame(np.zeros(1800), hr_bpm=90.0, start=START + pd.Timedelta(seconds=1200))
    tail["lat_deg"] = run["lat_deg"].iloc[-1] + rng.normal(0, 5, 1800) / M_PER_DEG_LAT
    tail["speed_mps"] = np.abs(rng.normal(0, 0.2, 1800))
    q = assess_quality(pd.concat([run, tail], ignore_index=True), sport_sub=None, summary={})
    assert "watch_left_running" in q.issues
    kept_s = (q.samples["timestamp"].iloc[-1] - START).total_seconds()
    assert 1150 <= kept_s <= 1260
    assert q.trimmed_s == pytest.approx(2999 - kept_s)
    assert any("trimmed" in n for n in q.notes)


@pytest.mark.parametrize("gap_h", [0, 9])
def test_steps_of_a_trimmed_run_are_those_of_the_kept_samples(gap_h):
    """Step speeds are taken once, before the trim (stationary tail, or a later piece); the
    kept prefix of them must be the steps of the kept samples taken afresh."""
    rng = np.random.default_rng(2)
    run = run_frame(np.full(1500, 3.0), dt_s=2.0)
    run.loc[rng.choice(1500, 60, replace=False), ["lat_deg", "lon_deg"]] = np.nan
    run.loc[700, "lat_deg"] += 0.01                        # a GPS jump inside the run
    rest = run_frame(np.zeros(1800), start=run["timestamp"].iloc[-1]
                     + pd.Timedelta(seconds=1 + 3600 * gap_h))
    rest["lat_deg"] = run["lat_deg"].iloc[-1] + rng.normal(0, 5, 1800) / M_PER_DEG_LAT
    q = assess_quality(pd.concat([run, rest], ignore_index=True), sport_sub=None, summary={})
    assert "watch_left_running" in q.issues and "gps_jump" in q.issues
    kept = q.columns
    t = (kept["timestamp"] - kept["timestamp"][0]) / 1e9
    step_v, steps = _step_speed(kept, t)
    np.testing.assert_array_equal(q.segment_valid,
                                  np.isfinite(steps) & ~(step_v > MAX_RUN_STEP_SPEED_MPS))


def test_short_stop_at_the_end_is_kept():
    run = run_frame(np.r_[np.full(1200, 3.0), np.zeros(400)])
    q = assess_quality(run, sport_sub=None, summary={})
    assert "watch_left_running" not in q.issues and len(q.samples) == 1600


def test_elapsed_far_beyond_moving_keeps_the_run_piece():
    run = run_frame(np.full(2400, 3.0))
    # the watch wakes up hours later and records a short drive
    later = run_frame(np.full(300, 3.0), start=START + pd.Timedelta(hours=9))
    later["lat_deg"] += 0.05
    q = assess_quality(pd.concat([run, later], ignore_index=True), sport_sub=None, summary={})
    assert "watch_left_running" in q.issues
    assert q.samples["timestamp"].iloc[-1] == run["timestamp"].iloc[-1]
    assert track_m(q) == pytest.approx(2399 * 3.0, rel=1e-3)


def test_hr_out_of_range_is_blanked():
    hr = np.linspace(120, 170, 600).round()
    hr[100:110] = 255.0
    hr[200] = 12.0
    q = assess_quality(run_frame(np.full(600, 3.0), hr_bpm=hr), sport_sub=None, summary={})
    assert "hr_out_of_range" in q.issues
    assert q.samples["hr_bpm"].isna().sum() == 11
    assert q.samples["hr_bpm"].dropna().between(30, 240).all()
    assert "hr_constant" not in q.issues


def test_stuck_hr_while_moving_is_flagged_and_blanked():
    hr = np.linspace(120, 170, 1800).round()
    hr[600:1000] = 143.0                                     # 6 min 40 s of one value
    q = assess_quality(run_frame(np.full(1800, 3.0), hr_bpm=hr), sport_sub=None, summary={})
    assert "hr_constant" in q.issues
    assert q.samples["hr_bpm"].iloc[600:1000].isna().all()
    assert q.samples["hr_bpm"].iloc[:590].notna().all()


def test_constant_hr_for_four_minutes_is_fine():
    hr = np.linspace(120, 170, 1800).round()
    hr[600:840] = 143.0
    q = assess_quality(run_frame(np.full(1800, 3.0), hr_bpm=hr), sport_sub=None, summary={})
    assert "hr_constant" not in q.issues


def test_hr_dropout_over_a_fifth_of_moving_time():
    hr = np.linspace(120, 170, 1800)
    hr[700:1200] = np.nan                                    # 28 % of the run without HR
    q = assess_quality(run_frame(np.full(1800, 3.0), hr_bpm=hr), sport_sub=None, summary={})
    assert "hr_dropout" in q.issues
    short = np.linspace(120, 170, 1800)
    short[700:900] = np.nan                                  # 11 %: no issue
    q2 = assess_quality(run_frame(np.full(1800, 3.0), hr_bpm=short), sport_sub=None, summary={})
    assert "hr_dropout" not in q2.issues


def test_summary_mismatch_names_both_numbers():
    q = assess_quality(run_frame(np.full(1200, 3.0)), sport_sub=None,
                       summary={"distance_m": 4200.0})
    assert "summary_mismatch" in q.issues
    assert any("4.20 km" in n and "3.60 km" in n for n in q.notes)
    q2 = assess_quality(run_frame(np.full(1200, 3.0)), sport_sub=None,
                        summary={"distance_m": 3700.0})
    assert "summary_mismatch" not in q2.issues


@pytest.mark.parametrize("n, v", [(40, 3.0), (600, 0.3)])
def test_too_short_is_not_ok(n, v):
    q = assess_quality(run_frame(np.full(n, v)), sport_sub=None, summary={})
    assert "too_short" in q.issues and q.ok is False


def test_empty_frame():
    q = assess_quality(empty_samples(0), sport_sub=None, summary={})
    assert q.ok is False and len(q.samples) == 0


# --- the damaged runs of the runpandas session year ---------------------------------------------
def _read_session(corpus: Path, name: str):
    from runlog.readers.gpx import read_gpx

    path = corpus / SESSION / name
    return read_gpx(path.read_bytes(), name)[0]


def test_corpus_gps_spike_run(corpus: Path, catalogue):
    row = catalogue[catalogue["path"].str.endswith(SPIKE_RUN)].iloc[0]
    assert row["distance_points_m"] > 20_000                 # before: 22 km in 47 min
    act = _read_session(corpus, SPIKE_RUN)
    q = assess_quality(act.samples, sport_sub=act.sub_sport, summary=act.summary)
    assert "gps_jump" in q.issues and q.ok
    # after: a believable distance for 47 min with a 6-min stop
    assert 4_500 < track_m(q) < 7_000
    assert q.dropped_m > 15_000
    assert track_m(q) + q.dropped_m == pytest.approx(row["distance_points_m"], rel=0.01)


def test_corpus_watch_left_running_24h(corpus: Path, catalogue):
    row = catalogue[catalogue["path"].str.endswith(LEFT_RUNNING)].iloc[0]
    assert row["elapsed_s"] > 20 * 3600                      # before: ~24 h recorded
    act = _read_session(corpus, LEFT_RUNNING)
    q = assess_quality(act.samples, sport_sub=act.sub_sport, summary=act.summary)
    assert "watch_left_running" in q.issues and q.ok
    kept_s = (q.samples["timestamp"].iloc[-1] - q.samples["timestamp"].iloc[0]).total_seconds()
    assert 40 * 60 < kept_s < 70 * 60
    assert 5_500 < track_m(q) < 8_500
    assert q.trimmed_s > 20 * 3600


def test_no_movement_signal_is_never_trimmed():
    s = empty_samples(3 * 3600 // 5)
    s["timestamp"] = START + pd.to_timedelta(np.arange(len(s)) * 5, unit="s")
    s = s.drop(index=range(300, 500)).reset_index(drop=True)   # a 16-min recording gap
    s["hr_bpm"] = 120 + (np.arange(len(s)) % 20)
    q = assess_quality(s, sport_sub="treadmill", summary={"distance_m": 8000.0})
    assert "watch_left_running" not in q.issues and len(q.samples) == len(s)


# --- merge_equal_times: pinned to pandas' groupby().first() ----------------------------------
_maybe_nan = st.one_of(st.just(np.nan), st.floats(-1e6, 1e6, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(repeats=st.lists(st.integers(1, 4), min_size=0, max_size=30), data=st.data())
def test_merge_equal_times_is_groupby_first(repeats, data):
    """Every column takes the first non-NaN value of its time (NaN when none), one row per
    time, exactly as ``groupby("timestamp", sort=False).first()`` of the samples frame."""
    n = sum(repeats)
    times = np.repeat(np.arange(len(repeats), dtype="int64") * 1_000_000_000, repeats)
    columns = {"timestamp": times + 1_700_000_000_000_000_000}
    for name in FLOAT_SAMPLE_COLUMNS:
        columns[name] = np.array(data.draw(st.lists(_maybe_nan, min_size=n, max_size=n)),
                                 dtype="float64")
    expected = samples_frame(columns).groupby("timestamp", sort=False, as_index=False).first()
    merged = merge_equal_times(columns)
    pd.testing.assert_frame_equal(samples_frame(merged), expected[list(samples_frame(merged))])
