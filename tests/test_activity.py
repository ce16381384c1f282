"""The Activity shape: samples kept as numpy arrays, a frame built on demand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from runlog.activity import (
    FLOAT_SAMPLE_COLUMNS,
    NAT_NS,
    SAMPLE_COLUMNS,
    Activity,
    normalise_samples,
    sample_columns,
    samples_frame,
)

T0 = pd.Timestamp("2024-05-01 06:00:00", tz="UTC")


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "timestamp": [T0, pd.NaT, T0 + pd.Timedelta(seconds=2)],
        "lat_deg": [46.0, np.nan, 46.001],
        "hr_bpm": ["140", None, 150],      # text and None: normalise_samples coerces
    })


def test_from_samples_keeps_normalised_columns_and_gives_the_same_frame_back() -> None:
    activity = Activity.from_samples(_frame(), source_format="gpx", sport="running")
    columns = activity.columns
    assert set(columns) == set(SAMPLE_COLUMNS)
    assert columns["timestamp"].dtype == np.int64
    assert columns["timestamp"][1] == NAT_NS
    assert all(columns[c].dtype == np.float64 for c in FLOAT_SAMPLE_COLUMNS)
    pd.testing.assert_frame_equal(activity.samples, normalise_samples(_frame()))
    assert list(activity.samples.columns) == list(SAMPLE_COLUMNS)


def test_samples_frame_follows_replaced_columns() -> None:
    activity = Activity.from_samples(_frame(), source_format="gpx")
    first = activity.samples
    assert activity.samples is first           # built once
    activity.columns = sample_columns(normalise_samples(_frame().iloc[:1]))
    assert len(activity.samples) == 1          # rebuilt from the new columns


def test_sample_columns_and_samples_frame_round_trip_and_copy() -> None:
    frame = normalise_samples(_frame())
    columns = sample_columns(frame)
    columns["lat_deg"][0] = 0.0                # own copies: the frame is untouched
    assert frame["lat_deg"].iloc[0] == 46.0
    back = samples_frame(sample_columns(frame))
    pd.testing.assert_frame_equal(back, frame)


def test_has_gps_reads_the_columns() -> None:
    assert Activity.from_samples(_frame(), source_format="gpx").has_gps
    no_fix = _frame().assign(lat_deg=np.nan)
    assert not Activity.from_samples(no_fix, source_format="gpx").has_gps
