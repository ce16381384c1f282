"""CSV export round trips on the imported bundled sample: columns exactly as documented, the
numbers equal to the API / weekly frames, ISO 8601 times with offsets, privacy of positions."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_weekly import sample_log

import runlog
from runlog.errors import InputError
from runlog.export import (
    FLAG_CSV_COLUMNS,
    RUN_CSV_COLUMNS,
    SAMPLE_CSV_COLUMNS,
    WEEK_CSV_COLUMNS,
    export_csv,
    export_flags,
    export_frame,
    export_runs,
    export_samples,
    export_weeks,
    iso_local,
    iso_utc,
    records,
    write_csv,
)
from runlog.weekly import weekly_table

ISO_WITH_OFFSET = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$"


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> runlog.RunLog:
    return sample_log(tmp_path_factory)


def _roundtrip(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    write_csv(frame, path)
    return pd.read_csv(path)


def test_runs_csv_round_trip(log: runlog.RunLog, tmp_path: Path) -> None:
    runs, flags = log.runs(), log.flags()
    back = _roundtrip(export_runs(runs, flags), tmp_path / "runs.csv")
    assert list(back.columns) == list(RUN_CSV_COLUMNS)
    assert len(back) == len(runs) == 71
    assert list(back["run_id"]) == list(runs["run_id"])
    np.testing.assert_allclose(back["distance_km"], runs["distance_m"] / 1000, atol=5e-4)
    np.testing.assert_allclose(back["moving_time_s"], runs["moving_s"], atol=0.05)
    pace = runs["moving_s"] / (runs["distance_m"] / 1000)
    np.testing.assert_allclose(back["pace_s_per_km"], pace, atol=0.05)
    np.testing.assert_allclose(back["avg_hr_bpm"], runs["avg_hr_bpm"], atol=0.05,
                               equal_nan=True)
    assert back["knee_risk"].tolist() == runs["knee_risk"].tolist()
    assert back["cramp_risk"].tolist() == runs["cramp_risk"].tolist()
    # Times: ISO 8601 with the run's offset, and the same instant in UTC.
    assert back["start_local"].str.match(ISO_WITH_OFFSET).all()
    assert back["start_utc"].str.endswith("+00:00").all()
    local = pd.to_datetime(back["start_local"], utc=True, format="ISO8601")
    utc = pd.to_datetime(back["start_utc"], utc=True, format="ISO8601")
    pd.testing.assert_series_equal(local, utc, check_names=False)
    assert (abs(utc - runs["start_utc"].dt.tz_convert("UTC")) < pd.Timedelta(seconds=1)).all()
    # A real run of the GPX year: 17 Jan 2021 10:23:22Z, UTC−3 (Brazil) in the file.
    row = back[back["start_utc"].str.startswith("2021-01-17T10:23:22")].iloc[0]
    assert row["start_local"].startswith("2021-01-17T07:23:22") and row["start_local"].endswith(
        "-03:00")
    # The rules behind each run's flags.
    active = flags[flags["level"].fillna(0) >= 1]
    rid = active["run_id"].iloc[0]
    listed = back.loc[back["run_id"] == rid, "flag_rules"].iloc[0].split(";")
    assert set(listed) == set(active.loc[active["run_id"] == rid, "rule"])


def test_flags_csv_round_trip(log: runlog.RunLog, tmp_path: Path) -> None:
    runs, flags = log.runs(), log.flags()
    back = _roundtrip(export_flags(flags, runs), tmp_path / "flags.csv")
    assert list(back.columns) == list(FLAG_CSV_COLUMNS)
    assert len(back) == len(flags)
    key = ["run_id", "rule", "risk"]
    merged = back.merge(flags, on=key, suffixes=("", "_api"), validate="one_to_one")
    np.testing.assert_array_equal(merged["level"].fillna(-1).astype(int),
                                  merged["level_api"].astype("float").fillna(-1).astype(int))
    np.testing.assert_allclose(merged["value"], merged["value_api"], equal_nan=True)
    np.testing.assert_allclose(merged["threshold"], merged["threshold_api"], equal_nan=True)
    assert back["start_local"].str.match(ISO_WITH_OFFSET).all()
    # Not assessed stays empty, never 0.
    assert flags["level"].isna().sum() == back["level"].isna().sum() > 0
    # Each row carries its rule's evidence grade as RULES.md gives it.
    grades = dict(zip(back["rule"], back["grade"], strict=True))
    assert grades["session_spike"] == "A" and grades["no_warmup"] == "C"
    assert grades["acwr"] == "I" and grades["descent_spike"] == "B knee, C cramp"
    assert back["grade"].notna().all()


def test_weeks_csv_matches_the_weekly_table(log: runlog.RunLog, tmp_path: Path) -> None:
    weeks = weekly_table(log.runs(), log.flags())
    back = _roundtrip(export_weeks(weeks), tmp_path / "weeks.csv")
    assert list(back.columns) == list(WEEK_CSV_COLUMNS)
    assert len(back) == len(weeks)
    assert back["week_start"].tolist() == weeks["week_start"].dt.strftime("%Y-%m-%d").tolist()
    assert (pd.to_datetime(back["week_end"]) - pd.to_datetime(back["week_start"])
            ).eq(pd.Timedelta(days=6)).all()
    np.testing.assert_allclose(back["distance_km"], weeks["distance_km"], atol=5e-4,
                               equal_nan=True)
    np.testing.assert_allclose(back["acwr"], weeks["acwr"], atol=5e-4, equal_nan=True)
    assert back["runs"].tolist() == weeks["runs"].tolist()
    # Empty weeks are empty cells, not zeros.
    empty = back[back["runs"] == 0]
    assert len(empty) > 100 and empty["distance_km"].isna().all()
    assert back["knee_level"].dropna().isin(["low", "moderate", "high"]).all()


def test_samples_csv_and_drop_positions(log: runlog.RunLog, tmp_path: Path) -> None:
    runs = log.runs()
    run = runs[runs["start_utc"].dt.strftime("%Y-%m-%d") == "2021-01-17"].iloc[-1]
    samples = log.samples(run["run_id"])
    full = _roundtrip(export_samples(samples, run["tz_offset_min"]), tmp_path / "s.csv")
    assert list(full.columns) == list(SAMPLE_CSV_COLUMNS)
    assert len(full) == len(samples) > 100
    assert full["lat_deg"].notna().all() and full["lon_deg"].notna().all()
    np.testing.assert_allclose(full["lat_deg"], samples["lat_deg"], atol=1e-7)
    assert full["time_local"].iloc[0].endswith("-03:00")
    assert full["elapsed_s"].iloc[0] == 0 and full["elapsed_s"].is_monotonic_increasing
    private = export_samples(samples, run["tz_offset_min"], drop_positions=True)
    text = io.StringIO()
    private.to_csv(text, index=False)
    back = pd.read_csv(io.StringIO(text.getvalue()))
    assert back["lat_deg"].isna().all() and back["lon_deg"].isna().all()
    # Nothing else changed, and no coordinate digits leak anywhere in the file.
    np.testing.assert_allclose(back["altitude_m"], full["altitude_m"], equal_nan=True)
    lat = f"{samples['lat_deg'].iloc[0]:.4f}"
    assert lat not in text.getvalue()


def test_export_csv_dispatch_and_stdout(log: runlog.RunLog, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    frame = export_csv(log, "weeks", "-", since="2020-12-01", until="2020-12-31")
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ",".join(WEEK_CSV_COLUMNS)
    assert len(out.splitlines()) == len(frame) + 1 == 6
    runs = export_frame(log, "runs", since="2021-01-01", until="2021-01-31")
    assert runs["start_local"].str.startswith("2021-01").all() and len(runs) == 6
    flags = export_frame(log, "flags", since="2021-01-01", until="2021-01-31")
    assert set(flags["run_id"]) <= set(runs["run_id"]) and len(flags) > 0
    samples = export_frame(log, "samples", run="last", drop_positions=True)
    assert samples["lat_deg"].isna().all() and len(samples) > 10
    with pytest.raises(InputError, match="unknown export 'gpx'"):
        export_frame(log, "gpx")
    with pytest.raises(InputError, match="--run"):
        export_frame(log, "samples")
    with pytest.raises(InputError):
        write_csv(frame, tmp_path / "missing-folder" / "x.csv")


def test_iso_local_offsets() -> None:
    utc = pd.Series(pd.to_datetime(["2024-05-12T21:30:00Z", "2024-01-01T00:00:00Z",
                                    "2024-01-01T00:00:00.250Z"], format="ISO8601"))
    got = iso_local(utc, pd.Series([120, -330, 0]))
    assert got.tolist() == ["2024-05-12T23:30:00+02:00", "2023-12-31T18:30:00-05:30",
                            "2024-01-01T00:00:00+00:00"]
    assert iso_local(utc, 0, fraction=True).iloc[2] == "2024-01-01T00:00:00.250+00:00"
    assert iso_utc(utc, fraction=True).iloc[0] == "2024-05-12T21:30:00.000+00:00"
    assert iso_local(utc.iloc[:2], 60).tolist() == ["2024-05-12T22:30:00+01:00",
                                                   "2024-01-01T01:00:00+01:00"]


def test_column_docs_have_units_or_meaning() -> None:
    for columns in (RUN_CSV_COLUMNS, FLAG_CSV_COLUMNS, WEEK_CSV_COLUMNS, SAMPLE_CSV_COLUMNS):
        assert all(isinstance(v, str) and v for v in columns.values())
    for name in ("distance_km", "moving_time_s", "pace_s_per_km", "avg_hr_bpm"):
        assert name in RUN_CSV_COLUMNS
    assert "[km]" in RUN_CSV_COLUMNS["distance_km"] and "[s/km]" in RUN_CSV_COLUMNS[
        "pace_s_per_km"]


def test_week_records_are_strict_json(log: runlog.RunLog) -> None:
    weeks = weekly_table(log.runs(), log.flags(), since="2020-12-20", until="2021-01-10")
    rows = records(export_weeks(weeks))
    text = json.dumps(rows, allow_nan=False)          # no NaN sneaks into JSON
    assert [r["week_start"] for r in rows] == ["2020-12-14", "2020-12-21", "2020-12-28",
                                               "2021-01-04"]
    empty = rows[-1]
    assert empty["runs"] == 0 and empty["distance_km"] is None and empty["knee_level"] is None
    assert rows[2]["distance_km"] == pytest.approx(18.245, abs=1e-3)
    assert '"runs": 2' in text


def test_samples_distance_and_speed_are_the_recorded_channels(log: runlog.RunLog) -> None:
    """As documented: what the file recorded, empty when it did not (these GPX runs), never
    filled in; a FIT run's recorded distance comes through as it was recorded."""
    runs = log.runs()
    for fmt, recorded in (("gpx", False), ("fit", True)):
        run = runs[runs["source_format"] == fmt].iloc[-1]
        samples = log.samples(run["run_id"])
        out = export_samples(samples, run["tz_offset_min"])
        assert out["distance_m"].notna().any() == recorded == samples["distance_m"].notna().any()
        if recorded:
            np.testing.assert_allclose(out["distance_m"].astype("float64"),
                                       samples["distance_m"], atol=0.05)
    for column in ("distance_m", "speed_mps"):
        assert "as the device recorded it" in SAMPLE_CSV_COLUMNS[column]
        assert "empty when the file did not record it" in SAMPLE_CSV_COLUMNS[column]
