"""Per-run metrics: published numbers for the building blocks, synthetic runs for W1/W2 and
moving time, and the real corpus (FIT/TCX summaries, the runpandas session year)."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runlog.activity import Activity, empty_samples
from runlog.metrics import (
    _group_medians,
    _hr_on_grid,
    _lowest_window_quantile,
    _nanmean,
    _nanmedian,
    ascent_descent_m,
    compute_run_metrics,
    derived_speed_mps,
    grade_adjusted_speed_mps,
    haversine_m,
    hr_max_estimate_bpm,
    minetti_cost_j_per_kg_m,
    moving_mask,
    rolling_mean,
    rolling_median,
    smoothed_altitude_m,
    steep_descent_minutes,
)
from runlog.quality import ffill_bfill, path_steps_m
from runlog.schema import CADENCE_BIN_COLUMNS, METRICS_VERSION, RUN_METRIC_COLUMNS

M_PER_DEG_LAT = 111_194.9
START = pd.Timestamp("2024-05-01 07:00", tz="UTC")
SESSION = "corriporai__runpandas/examples/session"


def run_frame(speed_mps, *, hr_bpm=None, cadence_spm=None, altitude_m=None,
              start=START, speed_channel: bool = True) -> pd.DataFrame:
    """1-Hz samples running due north at ``speed_mps`` (one value per second)."""
    v = np.asarray(speed_mps, dtype=float)
    n = len(v)
    s = empty_samples(n)
    s["timestamp"] = start + pd.to_timedelta(np.arange(n), unit="s")
    cum = np.r_[0.0, np.cumsum(v[1:])]
    s["lat_deg"] = 46.0 + cum / M_PER_DEG_LAT
    s["lon_deg"] = 8.0
    if speed_channel:
        s["speed_mps"] = v
    for col, val in (("hr_bpm", hr_bpm), ("cadence_spm", cadence_spm),
                     ("altitude_m", altitude_m)):
        if val is not None:
            s[col] = np.broadcast_to(np.asarray(val, dtype=float), (n,))
    return s


def activity(samples: pd.DataFrame, **kw) -> Activity:
    kw.setdefault("source_format", "gpx")
    return Activity.from_samples(samples, sport="running",
                                 start_utc=samples["timestamp"].iloc[0], **kw)


# --- Minetti 2002 --------------------------------------------------------------------------------
def _poly(i: float) -> float:
    return 155.4 * i**5 - 30.4 * i**4 - 43.3 * i**3 + 46.3 * i**2 + 19.5 * i + 3.6


@pytest.mark.parametrize("grade, expected", [
    (0.0, 3.6), (0.1, 5.968), (-0.1, 2.152), (0.2, 9.007), (-0.2, 1.800),
    (0.45, 19.43), (-0.45, 4.03)])
def test_minetti_cost_matches_the_polynomial(grade, expected):
    assert minetti_cost_j_per_kg_m(grade) == pytest.approx(expected, abs=0.01)
    assert minetti_cost_j_per_kg_m(grade) == pytest.approx(_poly(grade), rel=1e-12)


def test_minetti_published_shape():
    grades = np.linspace(-0.45, 0.45, 901)
    cost = minetti_cost_j_per_kg_m(grades)
    # minimum ≈ 1.8 J/kg/m near −18 to −20 % (Minetti 2002, Fig. 2 / Table 1)
    assert -0.21 <= grades[np.argmin(cost)] <= -0.17
    assert cost.min() == pytest.approx(1.8, abs=0.05)
    # +45 %: measured 18.9 J/kg/m, the fit gives ~19.4
    assert 18.0 <= minetti_cost_j_per_kg_m(0.45) <= 19.5


def test_minetti_clamps_beyond_45_percent():
    assert minetti_cost_j_per_kg_m(0.8) == minetti_cost_j_per_kg_m(0.45)
    assert minetti_cost_j_per_kg_m(-1.0) == minetti_cost_j_per_kg_m(-0.45)
    assert np.isnan(minetti_cost_j_per_kg_m(np.nan))


def test_grade_adjusted_speed():
    v = np.array([3.0, 3.0, 3.0, 3.0])
    gap = grade_adjusted_speed_mps(v, np.array([0.0, 0.1, -0.2, np.nan]))
    assert gap[0] == 3.0 and gap[3] == 3.0                  # flat and unknown grade
    assert gap[1] == pytest.approx(3.0 * 5.968 / 3.6, rel=1e-3)
    assert gap[2] == pytest.approx(3.0 * 1.800 / 3.6, rel=1e-3)


# --- haversine -----------------------------------------------------------------------------------
def test_haversine_one_degree_of_latitude():
    assert haversine_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(111_195, rel=1e-4)
    assert haversine_m(45.0, 7.0, 46.0, 7.0) == pytest.approx(111_195, rel=1e-4)
    # a degree of longitude shrinks with cos(latitude)
    assert haversine_m(60.0, 0.0, 60.0, 1.0) == pytest.approx(111_195 * 0.5, rel=1e-3)
    out = haversine_m(np.zeros(3), np.zeros(3), np.array([0.0, 0.001, 1.0]), np.zeros(3))
    assert out.shape == (3,) and out[0] == 0.0 and out[1] == pytest.approx(111.195, rel=1e-4)


# --- altitude ------------------------------------------------------------------------------------
def test_ascent_descent_counts_only_real_climbs():
    rng = np.random.default_rng(7)
    up = np.linspace(0, 20, 200)
    saw = np.concatenate([up, up[::-1]] * 5)                 # five 20-m climbs and descents
    noisy = saw + rng.uniform(-1.4, 1.4, saw.size)           # noise under the 3-m band
    asc, desc = ascent_descent_m(noisy, 3.0)
    assert 95.0 <= asc <= 115.0 and 95.0 <= desc <= 115.0
    # without hysteresis the noise would count many times over
    assert ascent_descent_m(noisy, 0.0)[0] > 300.0
    # pure noise, or swings under the GPS band, count nothing
    assert ascent_descent_m(rng.uniform(-1.4, 1.4, 2000), 3.0) == (0.0, 0.0)
    gps = np.tile([0.0, 8.0], 50)
    assert ascent_descent_m(gps, 10.0) == (0.0, 0.0)
    assert ascent_descent_m(gps, 3.0)[0] == pytest.approx(400.0)
    # a climb only: the descent is 0.0, not -0.0 (which the CSV wrote as "-0.0")
    asc, desc = ascent_descent_m(np.linspace(0.0, 30.0, 100), 3.0)
    assert asc == pytest.approx(30.0) and str(desc) == "0.0"


def test_ascent_single_climb_and_edges():
    assert ascent_descent_m(np.linspace(100, 250, 500), 3.0) == pytest.approx((150.0, 0.0))
    assert ascent_descent_m(np.array([5.0]), 3.0) == (0.0, 0.0)
    assert ascent_descent_m(np.array([np.nan, np.nan]), 3.0) == (0.0, 0.0)


def test_smoothed_altitude_removes_noise_and_fills_gaps():
    rng = np.random.default_rng(3)
    ts = pd.Series(START + pd.to_timedelta(np.arange(600), unit="s"))
    alt = 100 + rng.normal(0, 3, 600)
    alt[100:120] = np.nan
    sm = smoothed_altitude_m(ts, alt)
    assert np.isfinite(sm).all()
    assert np.std(sm) < np.nanstd(alt) / 3


def test_steep_descent_minutes():
    # 10 min down at −10 % (3 m/s), then 10 min flat
    v = np.full(1200, 3.0)
    cum = np.r_[0.0, np.cumsum(v[1:])]
    alt = np.where(cum < 1800, 300 - 0.10 * cum, 300 - 180.0)
    ts = pd.Series(START + pd.to_timedelta(np.arange(1200), unit="s"))
    minutes = steep_descent_minutes(ts, cum, alt, np.ones(1200, dtype=bool))
    assert minutes == pytest.approx(10.0, abs=0.5)
    gentle = np.where(cum < 1800, 300 - 0.05 * cum, 300 - 90.0)
    assert steep_descent_minutes(ts, cum, gentle, np.ones(1200, dtype=bool)) == 0.0


# --- speed and moving time -----------------------------------------------------------------------
def test_derived_speed_handles_uneven_sampling_and_gaps():
    t = np.r_[np.arange(0, 600, 5.0), np.arange(900, 1200, 1.0)]  # 5-s, then a gap, then 1-s
    ts = pd.Series(START + pd.to_timedelta(t, unit="s"))
    cum = np.where(t < 600, t * 3.0, 1797.0 + (t - 900) * 2.5)
    v = derived_speed_mps(ts, cum)
    assert np.median(v[5:100]) == pytest.approx(3.0, abs=0.01)
    assert np.median(v[-200:-10]) == pytest.approx(2.5, abs=0.01)


def test_moving_mask_with_timer_pause_and_stop():
    ts = pd.Series(START + pd.to_timedelta(np.arange(1800), unit="s"))
    v = np.full(1800, 3.0)
    v[1500:1620] = 0.0                                      # a 2-min stop
    pauses = [(START + pd.Timedelta(seconds=600), START + pd.Timedelta(seconds=900))]
    moving = moving_mask(ts, v, pauses)
    assert moving[:600].all() and not moving[601:900].any() and moving[901:1500].all()
    assert not moving[1500:1620].any()
    assert moving.sum() == pytest.approx(1800 - 300 - 120, abs=2)


def test_compute_moving_time_with_synthetic_pause():
    # FIT-like: the timer is stopped 5 min (no records), then 10 more min
    first = run_frame(np.full(600, 3.0), hr_bpm=np.linspace(120, 150, 600).round())
    second = run_frame(np.full(600, 3.0), hr_bpm=np.linspace(150, 160, 600).round(),
                       start=START + pd.Timedelta(seconds=900))
    second["lat_deg"] += (first["lat_deg"].iloc[-1] - 46.0) + 3 / M_PER_DEG_LAT
    pause = [(START + pd.Timedelta(seconds=600), START + pd.Timedelta(seconds=900))]
    act = activity(pd.concat([first, second], ignore_index=True), source_format="fit",
                   pauses=pause)
    m, _, _ = compute_run_metrics(act)
    assert m["elapsed_s"] == pytest.approx(1499, abs=1)
    assert m["moving_s"] == pytest.approx(1198, abs=3)
    assert m["distance_m"] == pytest.approx(1199 * 3.0, rel=0.005)
    assert m["avg_speed_mps"] == pytest.approx(3.0, rel=0.01)


def test_moving_time_without_speed_channel():
    v = np.r_[np.full(600, 3.0), np.zeros(180), np.full(600, 3.0)]
    act = activity(run_frame(v, speed_channel=False))
    m, _, _ = compute_run_metrics(act)
    assert m["distance_source"] == "track"
    assert m["moving_s"] == pytest.approx(1200, abs=15)
    assert m["v_main_gap_mps"] == pytest.approx(3.0, abs=0.02)


def test_hr_max_estimate_ignores_spikes():
    ts = pd.Series(START + pd.to_timedelta(np.arange(1200), unit="s"))
    hr = np.linspace(130, 182, 1200)
    hr[500] = 230.0                                         # optical spike
    hr[700:703] = 260.0                                     # out of range
    est = hr_max_estimate_bpm(ts, hr)
    assert est == pytest.approx(181.4, abs=0.5)
    assert np.isnan(hr_max_estimate_bpm(ts, np.full(1200, np.nan)))


# --- compute_run_metrics -------------------------------------------------------------------------
def test_metrics_have_exactly_the_schema_keys():
    act = activity(run_frame(np.full(1800, 3.0), hr_bpm=np.linspace(120, 160, 1800).round(),
                             cadence_spm=170.0))
    m, samples, bins = compute_run_metrics(act, hr_max_bpm=190)
    assert set(m) == set(RUN_METRIC_COLUMNS)
    assert list(bins.columns) == [c for c in CADENCE_BIN_COLUMNS if c != "run_id"]
    assert m["metrics_version"] == METRICS_VERSION and m["quality_ok"] is True
    assert m["has_gps"] and m["has_hr"] and m["has_cadence"]
    assert m["distance_m"] == pytest.approx(1799 * 3.0, rel=1e-3)
    assert m["v_main_gap_mps"] == pytest.approx(3.0) and m["v_ngp_mps"] == pytest.approx(3.0)
    assert m["hr_max_used_bpm"] == 190
    assert m["main_hr_pct_max"] == pytest.approx(m["main_hr_bpm"] / 190)
    assert m["temp_source"] == "missing" and np.isnan(m["temp_c"])
    # No altitude channel: climbing is unknown, not zero.
    assert m["altitude_source"] == "none" and np.isnan(m["ascent_m"])
    assert len(samples) == 1800


def test_without_hr_max_pct_is_missing():
    act = activity(run_frame(np.full(1800, 3.0), hr_bpm=np.linspace(120, 160, 1800).round()))
    m, _, _ = compute_run_metrics(act)
    assert np.isnan(m["hr_max_used_bpm"]) and np.isnan(m["main_hr_pct_max"])
    assert m["avg_hr_bpm"] == pytest.approx(140, abs=0.5)


def test_uphill_raises_grade_adjusted_speed():
    v = np.full(1800, 2.5)
    cum = np.r_[0.0, np.cumsum(v[1:])]
    act = activity(run_frame(v, altitude_m=100 + 0.08 * cum), source_format="fit",
                   device="Garmin Forerunner 645 Music")
    m, _, _ = compute_run_metrics(act)
    assert m["altitude_source"] == "barometric"
    assert m["ascent_m"] == pytest.approx(0.08 * cum[-1], rel=0.03)
    expected = 2.5 * minetti_cost_j_per_kg_m(0.08) / 3.6
    assert m["v_main_gap_mps"] == pytest.approx(expected, rel=0.02)


def _profile(head_ratio: float, head_s: int, *, v_main: float = 3.0, total_s: int = 1800,
             tail_ratio: float = 1.0, tail_s: int = 0) -> np.ndarray:
    v = np.full(total_s, v_main)
    v[:head_s] = head_ratio * v_main
    if tail_s:
        v[-tail_s:] = tail_ratio * v_main
    return v


@pytest.mark.parametrize("ratio, head_s, present", [
    (0.85, 360, True), (0.88, 330, True),        # easy enough, long enough
    (0.92, 360, False),                          # just above 0.90·v_main
    (0.85, 120, False),                          # only 2 min easy: 5-min medians are fast
    (0.70, 300, True)])                          # exactly 5 min
def test_warmup_pace_rule(ratio, head_s, present):
    m, _, _ = compute_run_metrics(activity(run_frame(_profile(ratio, head_s))))
    assert m["warmup_present"] is present
    assert m["v_main_gap_mps"] == pytest.approx(3.0)
    if present:
        assert m["warmup_easy_speed_ratio"] == pytest.approx(ratio)
    else:
        assert m["warmup_easy_speed_ratio"] > 0.90


def test_warmup_needs_easy_heart_rate_when_known():
    v = _profile(0.80, 420)
    # (HR that never changes for > 5 min would be a stuck sensor: let it drift)
    easy_hr = np.r_[np.linspace(120, 140, 420), np.linspace(160, 175, 1380)].round()
    hard_hr = np.r_[np.linspace(150, 165, 420), np.linspace(165, 175, 1380)].round()
    m, _, _ = compute_run_metrics(activity(run_frame(v, hr_bpm=easy_hr)), hr_max_bpm=190)
    assert m["warmup_present"] is True and m["warmup_hr_p80_bpm"] <= 0.76 * 190
    m, _, _ = compute_run_metrics(activity(run_frame(v, hr_bpm=hard_hr)), hr_max_bpm=190)
    assert m["warmup_present"] is False and m["warmup_hr_p80_bpm"] > 0.76 * 190
    # the HRmax-free number decides for any HRmax: a high enough one makes it easy
    p80 = m["warmup_hr_p80_bpm"]
    m, _, _ = compute_run_metrics(activity(run_frame(v, hr_bpm=hard_hr)),
                                  hr_max_bpm=p80 / 0.76 + 0.5)
    assert m["warmup_present"] is True and m["hr_max_source"] == "profile"


def test_warmup_hr_p80_is_the_window_share_boundary():
    """Each 10 s of an easy start: 8 values at 120–127 bpm, 2 at 150–151. In every 5-min
    window exactly 80 % are ≤ 127, so the p80 is 127: warm-up by HR iff 127 ≤ 0.76·HRmax."""
    v = _profile(0.80, 420)
    i = np.arange(420)
    head = np.where(i % 10 < 8, 120.0 + i % 8, 150.0 + i % 2)
    hr = np.r_[head, np.linspace(160, 175, 1380)].round()
    m, _, _ = compute_run_metrics(activity(run_frame(v, hr_bpm=hr)))
    assert m["warmup_hr_p80_bpm"] == 127.0
    # no HRmax: the pace alone decides, and the HRmax-free number stays
    assert m["warmup_present"] is True and np.isnan(m["main_hr_pct_max"])
    assert m["hr_max_source"] is None
    at_edge = 127.0 / 0.76
    m, _, _ = compute_run_metrics(activity(run_frame(v, hr_bpm=hr)), hr_max_bpm=at_edge + 0.01)
    assert m["warmup_present"] is True
    m, _, _ = compute_run_metrics(activity(run_frame(v, hr_bpm=hr)), hr_max_bpm=at_edge - 0.01)
    assert m["warmup_present"] is False


def test_lowest_window_quantile_matches_sorting():
    rng = np.random.default_rng(7)
    for _ in range(50):
        x = rng.integers(100, 180, 60).astype(float)
        x[rng.random(60) < 0.3] = np.nan
        ends = np.flatnonzero(rng.random(60) < 0.5)
        ends = ends[ends >= 9]
        expected = np.inf
        for e in ends:
            w = np.sort(x[e - 9:e + 1])
            w = w[np.isfinite(w)]
            if len(w):
                expected = min(expected, w[int(np.ceil(round(0.8 * len(w), 9))) - 1])
        got = _lowest_window_quantile(x, ends, 10, 0.8)
        assert (np.isnan(got) and expected == np.inf) or got == expected


def test_warmup_unknown_for_short_runs_or_without_speed():
    m, _, _ = compute_run_metrics(activity(run_frame(_profile(0.8, 360, total_s=600))))
    assert m["warmup_present"] is pd.NA
    s = run_frame(np.full(1800, 3.0), speed_channel=False)
    s[["lat_deg", "lon_deg"]] = np.nan
    m, _, _ = compute_run_metrics(activity(s, summary={"distance_m": 5400.0}))
    assert m["warmup_present"] is pd.NA and m["distance_m"] == 5400.0


def test_hard_start():
    v = np.full(1800, 3.0)
    hr = np.r_[np.linspace(140, 165, 120), np.linspace(166, 180, 1680)].round()  # > 161.5
    m, _, _ = compute_run_metrics(activity(run_frame(v, hr_bpm=hr)), hr_max_bpm=190)
    assert m["hard_start"] is True
    m, _, _ = compute_run_metrics(activity(run_frame(_profile(0.8, 420), hr_bpm=hr)),
                                  hr_max_bpm=190)
    assert m["hard_start"] is False


@pytest.mark.parametrize("tail_ratio, abrupt", [(0.80, False), (0.84, False),
                                                (0.86, True), (0.95, True)])
def test_abrupt_finish_around_085(tail_ratio, abrupt):
    v = _profile(1.0, 0, tail_ratio=tail_ratio, tail_s=300)
    m, _, _ = compute_run_metrics(activity(run_frame(v)))
    assert m["finish_speed_ratio"] == pytest.approx(tail_ratio, abs=0.01)
    assert m["abrupt_finish"] is abrupt


def test_cadence_bins_are_time_weighted():
    v = np.r_[np.full(600, 2.6), np.full(1200, 3.1)]
    cad = np.r_[np.full(600, 160.0), np.full(1200, 172.0)]
    cad[100:110] = 0.0                                           # no cadence: left out
    m, _, bins = compute_run_metrics(activity(run_frame(v, cadence_spm=cad)))
    bins = bins.set_index("speed_bin_mps")
    assert list(bins.index) == [2.5, 3.0]
    assert bins.loc[2.5, "minutes"] == pytest.approx(590 / 60, abs=0.05)
    assert bins.loc[3.0, "minutes"] == pytest.approx(1200 / 60, abs=0.05)
    assert bins.loc[2.5, "median_cadence_spm"] == 160.0
    assert bins.loc[3.0, "median_cadence_spm"] == 172.0
    assert m["avg_cadence_spm"] == pytest.approx((590 * 160 + 1200 * 172) / 1790, abs=0.3)


def test_device_temperature():
    s = run_frame(np.full(900, 3.0))
    s["temp_c"] = np.linspace(20, 30, 900)
    m, _, _ = compute_run_metrics(activity(s))
    assert m["temp_source"] == "device" and m["temp_c"] == pytest.approx(25.0, abs=0.1)


def test_quality_fields_are_carried():
    s = run_frame(np.full(900, 3.0))
    s.loc[400, "lat_deg"] += 2000 / M_PER_DEG_LAT
    m, _, _ = compute_run_metrics(activity(s))
    assert "gps_jump" in m["quality_issues"].split(";")
    assert "km dropped" in m["quality_notes"] and m["quality_ok"] is True
    assert m["distance_m"] == pytest.approx(899 * 3.0 - 6, abs=2)


# --- the real corpus -----------------------------------------------------------------------------
def _read(corpus: Path, row) -> list[Activity]:
    from runlog.readers import read_activities

    data = (corpus / row["path"]).read_bytes()
    fmt = row["format"]
    if fmt == "gz":
        data, fmt = gzip.decompress(data), row["inner_format"]
    return read_activities(data, fmt, row["path"])


@pytest.mark.parametrize("fmt", ["fit", "tcx"])
def test_corpus_distance_matches_summary(corpus: Path, catalogue, fmt):
    pytest.importorskip(f"runlog.readers.{fmt}")
    rows = catalogue[(catalogue["format"] == fmt) & (catalogue["sport_norm"] == "run")
                     & (catalogue["distance_summary_m"] > 1000)
                     & (catalogue["has_speed"] == 1)]
    checked = 0
    for _, row in rows.iterrows():
        try:
            acts = _read(corpus, row)
        except Exception:                       # unreadable files are the readers' tests
            continue
        for act in acts:
            summ = act.summary.get("distance_m")
            if act.sport != "running" or not summ or act.samples["distance_m"].isna().all():
                continue
            m, _, _ = compute_run_metrics(act)
            assert m["distance_source"] == "device"
            assert m["distance_m"] == pytest.approx(summ, rel=0.01), row["path"]
            assert 1.5 < m["avg_speed_mps"] < 6.5, row["path"]
            checked += 1
    assert checked >= (8 if fmt == "fit" else 12)


def test_corpus_session_year_is_believable(corpus: Path, catalogue):
    """Every run of the runpandas GPX year: running speeds, sane distances and times."""
    from runlog.readers.gpx import read_gpx

    rows = catalogue[catalogue["path"].str.startswith(SESSION + "/")]
    assert len(rows) >= 60
    out = {}
    for _, row in rows.iterrows():
        act = read_gpx((corpus / row["path"]).read_bytes(), row["path"])[0]
        m, _, _ = compute_run_metrics(act, hr_max_bpm=190)
        out[Path(row["path"]).name] = (m, row)
        assert m["distance_source"] == "track"
        assert m["distance_m"] < 17_000 and m["elapsed_s"] < 2 * 3600, row["path"]
        if m["quality_ok"]:
            assert 1.8 < m["avg_speed_mps"] < 4.5, row["path"]
            assert 1.8 < m["v_main_gap_mps"] < 5.0, row["path"]
    spike, row = out["556160e9-d74c-440c-b0af-363efb753430.gpx"]
    assert row["distance_points_m"] > 22_000 and 4_500 < spike["distance_m"] < 7_000
    left, row = out["720bf570-d855-4303-87c2-74d85429e52d.gpx"]
    assert row["elapsed_s"] > 86_000 and left["elapsed_s"] < 70 * 60
    assert 5_500 < left["distance_m"] < 8_500
    assert "watch_left_running" in left["quality_issues"]


@pytest.mark.parametrize("fmt, device, source", [
    ("fit", "Garmin Forerunner 645 Music", "barometric"),
    ("fit", "Garmin Forerunner 25", "gps"),
    ("gpx", "Garmin Connect", "gps"),
    ("tcx", None, "gps")])
def test_altitude_source_and_its_hysteresis(fmt, device, source):
    rng = np.random.default_rng(11)
    # a flat run with ±4 m altitude noise: over the 3-m band only if the smoothing fails
    alt = 50 + rng.uniform(-4, 4, 1800)
    act = activity(run_frame(np.full(1800, 3.0), altitude_m=alt), source_format=fmt,
                   device=device)
    m, _, _ = compute_run_metrics(act)
    assert m["altitude_source"] == source
    assert m["ascent_m"] < 5.0 and m["descent_m"] < 5.0
    assert m["steep_descent_min"] == 0.0


# --- the numpy building blocks behave as the pandas calls they replaced ------------------------
# (import speed: these run once per run, where pandas' per-call overhead cost more than the maths)
_STEPS_S = [0.2, 0.5, 1.0, 1.0, 1.0, 2.0, 3.0, 7.0, 15.0, 30.0]


def _irregular(seed: int, n: int, nan_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique sample times [int64 ns] with 1–30 s steps and values with NaN gaps."""
    rng = np.random.default_rng(seed)
    t_s = np.cumsum(rng.choice(_STEPS_S, size=n))
    ns = (np.round(t_s * 10) * 1e8).astype("int64") + 1_600_000_000_000_000_000
    ns = np.unique(ns)
    values = rng.normal(300, 20, len(ns))
    values[rng.random(len(ns)) < nan_share] = np.nan
    return ns, values


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 400),
       nan_share=st.sampled_from([0.0, 0.1, 0.5]))
def test_smoothed_altitude_equals_pandas_time_window(seed, n, nan_share):
    ns, alt = _irregular(seed, n, nan_share)
    if np.isnan(alt).all():
        return
    index = pd.DatetimeIndex(ns.view("M8[ns]"), tz="UTC")
    expected = (pd.Series(alt, index=index).interpolate(method="time", limit_direction="both")
                .rolling(pd.Timedelta(seconds=30), center=True, min_periods=1).mean())
    got = smoothed_altitude_m(pd.Series(index), alt)
    np.testing.assert_allclose(got, expected.to_numpy(), rtol=1e-12, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400),
       nan_share=st.sampled_from([0.0, 0.3, 0.9]))
def test_hr_on_grid_equals_pandas_nearest_reindex(seed, n, nan_share):
    ns, hr = _irregular(seed, n, nan_share)
    index = pd.DatetimeIndex(ns.view("M8[ns]"), tz="UTC")
    grid = pd.date_range(index[0].floor("s"), index[-1].ceil("s"), freq="1s")
    known = pd.Series(hr, index=index).dropna()
    expected = (known.reindex(grid, method="nearest", tolerance=pd.Timedelta(seconds=10))
                if len(known) else pd.Series(np.nan, index=grid))
    np.testing.assert_array_equal(_hr_on_grid(ns, hr), expected.to_numpy())


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 1500), window=st.integers(1, 400),
       nan_share=st.sampled_from([0.0, 0.2, 0.7]))
def test_rolling_mean_equals_pandas(seed, n, window, nan_share):
    rng = np.random.default_rng(seed)
    values = rng.normal(150, 20, n)
    values[rng.random(n) < nan_share] = np.nan
    min_periods = int(rng.integers(1, window + 1))
    expected = pd.Series(values).rolling(window, min_periods=min_periods).mean().to_numpy()
    np.testing.assert_allclose(rolling_mean(values, window, min_periods), expected,
                               rtol=1e-12, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 600))
def test_group_medians_equal_pandas_groupby(seed, n):
    rng = np.random.default_rng(seed)
    keys = np.round(np.floor(rng.uniform(1.5, 5.5, n) / 0.25) * 0.25, 2)
    values = rng.integers(140, 200, n).astype("float64")
    grouped = pd.Series(values).groupby(keys)
    got_keys, got_counts, got_medians = _group_medians(keys, values)
    np.testing.assert_array_equal(got_keys, grouped.size().index.to_numpy(dtype="float64"))
    np.testing.assert_array_equal(got_counts, grouped.size().to_numpy())
    np.testing.assert_array_equal(got_medians, grouped.median().to_numpy())


def _awkward_values(seed: int, n: int, nan_share: float, decimals: int) -> np.ndarray:
    """Speeds with ties (rounded), NaN and ±inf, as a run's v_GAP can hold them."""
    rng = np.random.default_rng(seed)
    values = rng.normal(3.0, 0.6, n).round(decimals)
    values[rng.random(n) < nan_share] = np.nan
    values[rng.random(n) < nan_share / 10] = np.inf
    values[rng.random(n) < nan_share / 10] = -np.inf
    return values


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 1000), window=st.integers(1, 400),
       nan_share=st.sampled_from([0.0, 0.002, 0.05, 0.5]), decimals=st.integers(0, 6))
def test_rolling_median_equals_pandas(seed, n, window, nan_share, decimals):
    """Bit for bit pandas' rolling median with min_periods = window: NaN (and ±inf, which
    pandas counts as missing) anywhere in the window makes it NaN, as do short heads."""
    values = _awkward_values(seed, n, nan_share, decimals)
    expected = pd.Series(values).rolling(window, min_periods=window).median().to_numpy()
    np.testing.assert_array_equal(rolling_median(values, window), expected)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 1500),
       nan_share=st.sampled_from([0.0, 0.01, 0.3, 0.99, 1.0]), decimals=st.integers(0, 6))
def test_nanmedian_and_nanmean_equal_numpy(seed, n, nan_share, decimals):
    """Bit for bit np.nanmedian/np.nanmean of 1-D arrays, ±inf and all-NaN included."""
    values = _awkward_values(seed, n, nan_share, decimals)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN slices
        median, mean = np.nanmedian(values), np.nanmean(values)
        got_median, got_mean = _nanmedian(values), _nanmean(values)
    np.testing.assert_array_equal(got_median, median)
    np.testing.assert_array_equal(got_mean, mean)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 500), local=st.booleans())
def test_path_steps_equal_the_pairwise_haversine(seed, n, local):
    """Bit for bit haversine_m of each consecutive pair, for GPS-like and arbitrary points."""
    rng = np.random.default_rng(seed)
    if local:
        lat = 46.0 + np.cumsum(rng.normal(0, 3e-5, n))
        lon = 8.0 + np.cumsum(rng.normal(0, 3e-5, n))
    else:
        lat, lon = rng.uniform(-90, 90, n), rng.uniform(-180, 180, n)
    np.testing.assert_array_equal(path_steps_m(lat, lon),
                                  haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:]))


def test_group_medians_of_nothing():
    keys, counts, medians = _group_medians(np.zeros(0), np.zeros(0))
    assert len(keys) == len(counts) == len(medians) == 0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300),
       nan_share=st.sampled_from([0.0, 0.5, 0.95, 1.0]))
def test_ffill_bfill_equals_pandas(seed, n, nan_share):
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 1, n)
    values[rng.random(n) < nan_share] = np.nan
    expected = pd.Series(values).ffill().bfill().to_numpy()
    np.testing.assert_array_equal(ffill_bfill(values.copy()), expected)
