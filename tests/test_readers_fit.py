"""FIT reader: real fixtures (tests/data/fit), hostile bytes made here, and the whole corpus."""

from __future__ import annotations

import gzip
import itertools
import random
from pathlib import Path

import fitparse
import numpy as np
import pandas as pd
import pytest
from fitparse.processors import StandardUnitsDataProcessor

from runlog.activity import SAMPLE_COLUMNS, Activity
from runlog.errors import FileReadError, SkippedFile
from runlog.readers.fit import FIT_EPOCH_UNIX_S, read_fit

FIT_DATA = Path(__file__).parent / "data" / "fit"
RUN = FIT_DATA / "runpandas-run.fit"
FENIX_RUN = FIT_DATA / "garmin-fenix-5-run.fit"
PAUSED_RIDE = FIT_DATA / "edge200-2015-10-13-08-43-15.fit"
SWIM = FIT_DATA / "swim_no_coordinates.fit"
TRIATHLON = FIT_DATA / "sample_mulitple_header.fit"
SDK_ACTIVITY = FIT_DATA / "Activity.fit"
SETTINGS = FIT_DATA / "fitparse-rs-Settings.fit"


def read_one(path: Path) -> Activity:
    """The single Activity of a single-session fixture."""
    (activity,) = read_fit(path.read_bytes(), path.name)
    return activity


def fitparse_records(path: Path, processor=None) -> list[dict]:
    """Record messages as fitparse's own public API returns them (independent of the reader)."""
    fit = fitparse.FitFile(str(path), data_processor=processor)
    return [message.get_values() for message in fit.get_messages("record")]


# --- samples -----------------------------------------------------------------------------------

def test_samples_have_exactly_the_sample_columns_and_utc_times() -> None:
    samples = read_one(FENIX_RUN).samples
    assert list(samples.columns) == list(SAMPLE_COLUMNS)
    assert str(samples["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert all(samples[c].dtype == "float64" for c in list(SAMPLE_COLUMNS)[1:])
    assert len(samples) == len(fitparse_records(FENIX_RUN)) == 21


def test_semicircles_become_degrees_like_fitparse_standard_units() -> None:
    # fitparse's StandardUnitsDataProcessor converts semicircles itself: an independent reading.
    reference = fitparse_records(FENIX_RUN, StandardUnitsDataProcessor())
    samples = read_one(FENIX_RUN).samples
    lat = np.array([r.get("position_lat") for r in reference], dtype="float64")
    lon = np.array([r.get("position_long") for r in reference], dtype="float64")
    np.testing.assert_allclose(samples["lat_deg"], lat, rtol=0, atol=1e-9)
    np.testing.assert_allclose(samples["lon_deg"], lon, rtol=0, atol=1e-9)
    # First fix: 456099128 semicircles north, -1463077077 east (raw bytes of the record).
    assert samples["lat_deg"].iloc[0] == pytest.approx(456099128 * 180 / 2**31, abs=1e-12)
    assert samples["lat_deg"].iloc[0] == pytest.approx(38.2297, abs=1e-4)
    assert samples["lon_deg"].iloc[0] == pytest.approx(-122.6337, abs=1e-4)


def test_enhanced_altitude_and_speed_are_used() -> None:
    raw = fitparse_records(FENIX_RUN)
    samples = read_one(FENIX_RUN).samples
    enhanced_altitude = np.array([r.get("enhanced_altitude") for r in raw], dtype="float64")
    enhanced_speed = np.array([r.get("enhanced_speed") for r in raw], dtype="float64")
    np.testing.assert_allclose(samples["altitude_m"], enhanced_altitude)
    np.testing.assert_allclose(samples["speed_mps"], enhanced_speed)
    assert samples["speed_mps"].max() > 2.0  # m/s, not km/h


def test_enhanced_field_wins_over_plain_field_when_they_differ() -> None:
    # A barometric altitude above 2^16/5 - 500 m only fits the enhanced field; when both exist
    # and differ the enhanced one must win (checked on the reader's record conversion).
    from runlog.readers.fit import _Decoded, _record_frame

    decoded = _Decoded(records=[
        {"timestamp": 1_000_000_000, "enhanced_altitude": 5000.0, "altitude": 12.0,
         "enhanced_speed": 4.25, "speed": 1.0},
        {"timestamp": 1_000_000_001, "altitude": 12.5, "speed": 1.5},
    ], record_part=[0, 0])
    frame = _record_frame(decoded)
    assert frame["altitude_m"].tolist() == [5000.0, 12.5]
    assert frame["speed_mps"].tolist() == [4.25, 1.5]
    assert frame["timestamp"].iloc[0] == pd.Timestamp(1_000_000_000 + FIT_EPOCH_UNIX_S,
                                                      unit="s", tz="UTC")


def test_running_cadence_is_doubled_with_fractional_part() -> None:
    raw = fitparse_records(RUN)
    samples = read_one(RUN).samples
    cadence = np.array([r.get("cadence") for r in raw], dtype="float64")
    fraction = np.array([r.get("fractional_cadence") for r in raw], dtype="float64")
    assert np.nanmax(fraction) > 0  # the fixture does use the fractional part
    expected = 2.0 * (cadence + np.nan_to_num(fraction))
    np.testing.assert_allclose(samples["cadence_spm"], expected)
    moving = samples.loc[samples["speed_mps"] > 2.0, "cadence_spm"]
    assert 140 <= moving.median() <= 200  # steps/min, both feet
    assert read_one(RUN).summary["avg_cadence_spm"] == pytest.approx(2 * (64 + 0.921875))


def test_cycling_cadence_stays_rpm(corpus: Path) -> None:
    path = corpus / "dtcooper__python-fitparse/tests/files/garmin-fenix-5-bike.fit"
    (ride,) = read_fit(path.read_bytes(), path.name)
    raw = fitparse_records(path)
    cadence = np.array([r.get("cadence") for r in raw], dtype="float64")
    assert ride.sport == "cycling"
    np.testing.assert_allclose(ride.samples["cadence_spm"], cadence)


def test_invalid_values_stay_missing_never_numbers() -> None:
    raw = fitparse_records(RUN)
    samples = read_one(RUN).samples
    no_fix = np.array([r.get("position_lat") is None for r in raw])
    assert no_fix.any() and not no_fix.all()  # the first records have no GPS fix yet
    assert samples["lat_deg"][no_fix].isna().all()
    assert samples["lon_deg"][no_fix].isna().all()
    assert samples["lat_deg"][~no_fix].notna().all()
    assert samples["hr_bpm"].dropna().between(30, 230).all()
    # no "invalid" sentinel survived as a value (0xFF bpm, 0x7F °C, 0xFFFF scaled altitude and
    # speed, 0xFFFFFFFF scaled distance)
    assert not (samples["hr_bpm"] == 255).any() and not (samples["temp_c"] == 127).any()
    assert not (samples["altitude_m"] == 65535 / 5 - 500).any()
    assert not (samples["speed_mps"] == 65.535).any()
    assert samples["distance_m"].max() < 1e6 and samples["cadence_spm"].max() < 255


def test_no_gps_file_keeps_the_device_distance() -> None:
    swim = read_one(SWIM)
    assert not swim.has_gps
    assert swim.samples["distance_m"].iloc[-1] == pytest.approx(750.0)
    assert swim.summary["distance_m"] == pytest.approx(750.0)
    assert swim.sport == "swimming" and swim.sub_sport == "lap_swimming"


# --- metadata ----------------------------------------------------------------------------------

def test_metadata_of_a_run() -> None:
    run = read_one(RUN)
    assert run.source_format == "fit"
    assert run.sport == "running" and run.sport_raw == "running"
    assert run.sub_sport is None  # 'generic' carries no information
    assert run.start_utc == pd.Timestamp("2019-09-14T15:22:05Z")
    assert run.device == "Garmin Forerunner 645m"
    assert run.leg_index is None
    assert run.summary["distance_m"] == pytest.approx(5839.77)
    assert run.summary["elapsed_s"] == pytest.approx(3164.606)
    assert run.summary["timer_s"] == pytest.approx(3164.606)
    assert run.summary["ascent_m"] == 234 and run.summary["descent_m"] == 233
    assert run.summary["avg_hr_bpm"] == 130 and run.summary["max_hr_bpm"] == 160
    assert run.summary["calories_kcal"] == 432
    assert run.notes == []


def test_tz_offset_from_the_activity_message() -> None:
    assert read_one(RUN).tz_offset_min == 120           # Central European Summer Time
    assert read_one(FENIX_RUN).tz_offset_min == -420    # Pacific Daylight Time
    assert read_one(FENIX_RUN).device == "Garmin fenix 5"


def test_tz_offset_is_none_without_an_activity_message(corpus: Path) -> None:
    path = corpus / "dtcooper__python-fitparse/tests/files/2013-02-06-12-11-14.fit"
    (run,) = read_fit(path.read_bytes(), path.name)
    assert run.tz_offset_min is None


def test_timer_stop_start_events_become_pauses() -> None:
    ride = read_one(PAUSED_RIDE)
    events = [m.get_values() for m in fitparse.FitFile(str(PAUSED_RIDE)).get_messages("event")
              if m.get_value("event") == "timer"]
    stops = [e for e in events if str(e["event_type"]).startswith("stop")]
    assert len(stops) == 7
    assert len(ride.pauses) == 5  # the other stops are not followed by a start
    expected = []
    for before, after in itertools.pairwise(events):
        if str(before["event_type"]).startswith("stop") and after["event_type"] == "start":
            expected.append((pd.Timestamp(before["timestamp"], tz="UTC"),
                             pd.Timestamp(after["timestamp"], tz="UTC")))
    assert ride.pauses == expected
    paused_s = sum((go - stop).total_seconds() for stop, go in ride.pauses)
    # elapsed − timer is exactly the time the timer stood still (65 s here)
    assert paused_s == pytest.approx(ride.summary["elapsed_s"] - ride.summary["timer_s"], abs=1)
    assert paused_s > 60


def test_a_run_without_timer_stops_has_no_pauses() -> None:
    assert read_one(RUN).pauses == []


def test_multisport_file_gives_one_activity_per_leg() -> None:
    legs = read_fit(TRIATHLON.read_bytes(), TRIATHLON.name)
    assert [leg.leg_index for leg in legs] == [0, 1, 2, 3, 4]
    assert [leg.sport for leg in legs] == ["swimming", "transition", "cycling", "transition",
                                          "running"]
    assert legs[0].sub_sport == "open_water"
    assert sum(leg.summary["distance_m"] for leg in legs) == pytest.approx(52533.7, abs=0.5)
    for leg, next_leg in zip(legs, [*legs[1:], None], strict=True):
        times = leg.samples["timestamp"]
        assert times.iloc[0] == leg.start_utc
        if next_leg is not None:
            assert times.iloc[-1] < next_leg.start_utc  # no record in two legs
        end = leg.start_utc + pd.Timedelta(seconds=leg.summary["elapsed_s"])
        assert abs((times.iloc[-1] - end).total_seconds()) <= 5
        assert leg.pauses == []  # transitions are not pauses
    assert sum(len(leg.samples) for leg in legs) == len(fitparse_records(TRIATHLON))
    run = legs[4]
    assert len(run.samples) > 100
    assert 140 <= run.samples["cadence_spm"].median() <= 200  # doubled on the run leg only
    assert legs[2].samples["cadence_spm"].median() < 120       # bike rpm


# --- non-activity and hostile input ------------------------------------------------------------

def test_settings_file_is_skipped() -> None:
    with pytest.raises(SkippedFile, match=r"not an activity file \(settings\)") as info:
        read_fit(SETTINGS.read_bytes(), SETTINGS.name)
    assert info.value.path == SETTINGS.name


def test_corpus_settings_file_is_skipped(corpus: Path) -> None:
    path = corpus / "dtcooper__python-fitparse/tests/files/Settings.fit"
    with pytest.raises(SkippedFile, match="not an activity file"):
        read_fit(path.read_bytes(), path.name)


def test_empty_file() -> None:
    with pytest.raises(FileReadError, match="empty file") as info:
        read_fit(b"", "empty.fit")
    assert info.value.path == "empty.fit" and info.value.offset == 0


def test_random_bytes_are_not_fit() -> None:
    noise = random.Random(14).randbytes(14)
    with pytest.raises(FileReadError, match=r"not a FIT file \(bad header\)") as info:
        read_fit(noise, "noise.fit")
    assert info.value.offset == 0
    assert "\n" not in info.value.one_line()


def test_text_is_not_fit() -> None:
    with pytest.raises(FileReadError, match="not a FIT file"):
        read_fit(b"<?xml version='1.0'?><gpx></gpx>\n" * 3, "wrong.fit")


def test_a_few_bytes_are_not_fit() -> None:
    with pytest.raises(FileReadError, match="not a FIT file"):
        read_fit(b"\x0e\x10", "tiny.fit")


def test_broken_header_magic() -> None:
    data = bytearray(FENIX_RUN.read_bytes())
    data[8:12] = b".FOT"
    with pytest.raises(FileReadError, match=r"bad header"):
        read_fit(bytes(data), "bad-header.fit")


def test_file_cut_at_half_imports_what_is_there_with_a_note() -> None:
    whole = read_one(RUN)
    data = RUN.read_bytes()
    (half,) = read_fit(data[: len(data) // 2], "half.fit")
    assert 0 < len(half.samples) < len(whole.samples)
    assert any(note.startswith(f"file truncated after {len(half.samples)} records")
               for note in half.notes)
    # the samples that are there are exactly the file's first samples
    pd.testing.assert_frame_equal(half.samples, whole.samples.iloc[: len(half.samples)])
    assert half.start_utc == whole.start_utc  # first record (no session survived the cut)
    assert half.damaged and not whole.damaged  # the run may be longer than what was read


def test_file_cut_before_any_record_fails() -> None:
    data = RUN.read_bytes()
    with pytest.raises(FileReadError, match="truncated FIT file") as info:
        read_fit(data[:100], "cut.fit")
    assert info.value.offset == 100


def test_flipped_crc_byte_imports_with_a_note() -> None:
    data = bytearray(FENIX_RUN.read_bytes())
    data[-1] ^= 0xFF
    (activity,) = read_fit(bytes(data), "bad-crc.fit")
    assert any("fails its CRC check" in note for note in activity.notes)
    assert activity.damaged
    pd.testing.assert_frame_equal(activity.samples, read_one(FENIX_RUN).samples)


def test_random_byte_flips_never_raise_anything_else() -> None:
    # 300 mutants of a real 771-byte activity: each gives activities, or a typed error.
    original = SDK_ACTIVITY.read_bytes()
    rng = random.Random(2026)
    outcomes = {"activities": 0, "FileReadError": 0, "SkippedFile": 0}
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            activities = read_fit(bytes(data), "mutant.fit")
        except (FileReadError, SkippedFile) as error:
            outcomes[type(error).__name__] += 1
            assert error.reason and "\n" not in error.one_line()
        else:
            outcomes["activities"] += 1
            for activity in activities:
                assert list(activity.samples.columns) == list(SAMPLE_COLUMNS)
    assert outcomes["FileReadError"] > 0 and outcomes["activities"] > 0


def test_garbage_after_a_valid_header_fails_cleanly() -> None:
    header = FENIX_RUN.read_bytes()[:14]
    garbage = random.Random(7).randbytes(400)
    with pytest.raises(FileReadError) as info:
        read_fit(header + garbage, "garbage.fit")
    assert info.value.offset is not None


# --- corpus ------------------------------------------------------------------------------------

#: Files whose record span (last − first record) legitimately differs from the session's
#: total_elapsed_time by more than 2 s, and why.
ELAPSED_ALLOWED: dict[str, str] = {
    "corriporai__runpandas/runpandas/tests/io/data/fit/run.fit":
        "FR645M writes a last record at the timer stop_all, 2.4 s after the session end",
    "fgebhart__workoutizer/wkz/initial_trace_data/2019-09-18-16-02-35.fit":
        "FR645M: last record at the stop_all event, 2.2 s after the session end",
    "fgebhart__workoutizer/wkz/initial_trace_data/2020-08-20-09-34-33.fit":
        "FR645M: last record at the stop_all event, 2.1 s after the session end",
    "fgebhart__workoutizer/wkz/initial_trace_data/2020-08-31-17-41-11.fit":
        "FR645M: last record at the stop_all event, 2.2 s after the session end",
    "dtcooper__python-fitparse/tests/files/2019-02-17-062644-ELEMNT-297E-195-0.fit":
        "ELEMNT logs only while the timer runs; no record in the last 4 s of the session",
    "dtcooper__python-fitparse/tests/files/elemnt-bolt-no-application-id-inside-developer-"
    "data-id.fit":
        "ELEMNT BOLT: no record in the last 9 s of a 140 s session (timer paused)",
    "dtcooper__python-fitparse/tests/files/event_timestamp.fit":
        "pool swim: records end at the last length, the session runs on 124 s",
    "fgebhart__workoutizer/tests/data/swim_no_coordinates.fit":
        "pool swim: 5 records, one per length set; the session ends 370 s after the last",
    "fgebhart__workoutizer/tests/data/with_nones.fit":
        "FR25 keeps logging records for 32 s after the session's stop (auto-pause tail)",
}
#: Files whose summary distance differs from the last record distance by more than 1 %.
DISTANCE_ALLOWED: dict[str, str] = {}


def _corpus_fit_rows(catalogue: pd.DataFrame) -> pd.DataFrame:
    is_fit = (catalogue["format"] == "fit") | (catalogue["inner_format"] == "fit")
    return catalogue[is_fit]


def _read_corpus_file(corpus: Path, row: pd.Series) -> list[Activity] | Exception:
    data = (corpus / row["path"]).read_bytes()
    if row["format"] == "gz":
        data = gzip.decompress(data)
    try:
        return read_fit(data, row["path"])
    except (FileReadError, SkippedFile) as error:
        return error


@pytest.fixture(scope="module")
def corpus_results(corpus: Path, catalogue: pd.DataFrame) -> dict[str, list[Activity] | Exception]:
    """Every FIT file of the corpus, read once (any other exception fails here)."""
    return {row["path"]: _read_corpus_file(corpus, row)
            for _, row in _corpus_fit_rows(catalogue).iterrows()}


@pytest.mark.corpus
def test_corpus_every_fit_file_gives_activities_or_a_typed_error(
        corpus_results: dict, catalogue: pd.DataFrame) -> None:
    rows = _corpus_fit_rows(catalogue)
    assert len(rows) >= 60
    for _, row in rows.iterrows():
        result = corpus_results[row["path"]]
        file_type = row["fit_file_type"]
        if isinstance(file_type, str) and file_type != "activity":
            assert isinstance(result, SkippedFile), row["path"]
            assert f"not an activity file ({file_type})" in result.reason
        if isinstance(result, Exception):
            assert result.path == row["path"] and result.reason
        elif "misaligned-fields" in row["path"]:
            # fitparse 1.2 stops at a COROS definition message; this reader reads it all
            assert result[0].notes == [] and len(result[0].samples) == 11272
        elif str(row["fitparse"]).startswith("ERROR"):
            # fitparse itself stops on these: what decoded is imported, and says so
            assert any("CRC" in n or "truncated" in n or "damaged" in n
                       for n in result[0].notes), row["path"]
            assert all(activity.damaged for activity in result), row["path"]
        else:
            assert not any(activity.damaged for activity in result), row["path"]


@pytest.mark.corpus
def test_corpus_outcomes_of_the_hostile_files(corpus_results: dict) -> None:
    files = "dtcooper__python-fitparse/tests/files/"
    assert isinstance(corpus_results[files + "activity-settings-corruptheader.fit"],
                      FileReadError)
    for name in ("activity-filecrc.fit", "activity-activity-filecrc.fit",
                 "activity-unexpected-eof.fit", "nick.fit",
                 "strava-android-app-201.10-b1218918.fit",
                 "coros-pace-2-cycling-misaligned-fields.fit"):
        assert isinstance(corpus_results[files + name], list), name
    for name in ("antfs-dump.63.fit", "compressed-speed-distance.fit", "DeveloperData.fit"):
        result = corpus_results[files + name]
        assert isinstance(result, SkippedFile) and "absolute start time" in result.reason, name


@pytest.mark.corpus
def test_corpus_activities_match_the_catalogue(corpus_results: dict,
                                               catalogue: pd.DataFrame) -> None:
    checked = 0
    for _, row in _corpus_fit_rows(catalogue).iterrows():
        result = corpus_results[row["path"]]
        if isinstance(result, Exception) or pd.isna(row["start_time_utc"]):
            continue
        checked += 1
        first = result[0]
        assert first.start_utc == pd.Timestamp(row["start_time_utc"]), row["path"]
        if pd.notna(row["distance_summary_m"]):
            total = sum(a.summary.get("distance_m", 0.0) for a in result)
            assert total == pytest.approx(row["distance_summary_m"], abs=0.5), row["path"]
        if pd.notna(row["elapsed_s"]):
            total_elapsed = sum(a.summary["elapsed_s"] for a in result)
            assert total_elapsed == pytest.approx(row["elapsed_s"], abs=0.1), row["path"]
        _check_samples_against_summary(row["path"], result)
    assert checked >= 45


def _check_samples_against_summary(path: str, activities: list[Activity]) -> None:
    previous_last_distance = 0.0
    summary_so_far = 0.0
    for activity in activities:
        samples = activity.samples
        times = samples["timestamp"]
        assert times.notna().all(), path
        label = f"{path} leg {activity.leg_index}"
        distance = samples["distance_m"].dropna()
        summary_distance = activity.summary.get("distance_m")
        summary_so_far += summary_distance or 0.0
        if len(distance) and summary_distance and path not in DISTANCE_ALLOWED:
            # multisport record distance either restarts per leg or runs on over the legs
            runs_on = bool(activity.leg_index) and distance.iloc[0] >= previous_last_distance
            expected = summary_so_far if runs_on else summary_distance
            assert distance.iloc[-1] == pytest.approx(expected, rel=0.01, abs=1.0), label
        if len(distance):
            previous_last_distance = distance.iloc[-1]
        elapsed = activity.summary.get("elapsed_s")
        if (len(times) > 1 and elapsed and activity.leg_index is None
                and path not in ELAPSED_ALLOWED):
            span = (times.iloc[-1] - times.iloc[0]).total_seconds()
            assert span == pytest.approx(elapsed, abs=2.0), label


#: Files whose pauses do not add up to elapsed − timer (±5 s), and why.
PAUSES_ALLOWED: dict[str, str] = {
    "fgebhart__workoutizer/tests/data/with_nones.fit":
        "FR25: the last pause (571 s) ends after the session's elapsed time; 770 s vs 738 s",
    "dtcooper__python-fitparse/tests/files/event_timestamp.fit":
        "pool swim: rest between lengths is not on the timer events (70 s vs 196 s)",
    "fgebhart__workoutizer/tests/data/swim_no_coordinates.fit":
        "pool swim without timer stop events; 55 s of rest between lengths",
    "dtcooper__python-fitparse/tests/files/elemnt-bolt-no-application-id-inside-developer-"
    "data-id.fit":
        "ELEMNT BOLT writes no timer stop/start pair for its 8 s auto-pause",
}


@pytest.mark.corpus
def test_corpus_pauses_add_up_to_elapsed_minus_timer(corpus_results: dict) -> None:
    checked = 0
    for path, result in corpus_results.items():
        if isinstance(result, Exception) or len(result) != 1 or path in PAUSES_ALLOWED:
            continue
        (activity,) = result
        if "elapsed_s" not in activity.summary or "timer_s" not in activity.summary:
            continue
        paused_s = sum((go - stop).total_seconds() for stop, go in activity.pauses)
        stopped_s = activity.summary["elapsed_s"] - activity.summary["timer_s"]
        assert paused_s == pytest.approx(stopped_s, abs=5.0), path
        checked += 1
    assert checked >= 40
    for path in PAUSES_ALLOWED:
        (activity,) = corpus_results[path]
        paused_s = sum((go - stop).total_seconds() for stop, go in activity.pauses)
        stopped_s = activity.summary["elapsed_s"] - activity.summary["timer_s"]
        assert abs(paused_s - stopped_s) > 5.0, path  # no stale entries


@pytest.mark.corpus
def test_corpus_allow_lists_name_real_differences(corpus_results: dict) -> None:
    # Every allow-listed file exists, imports, and really differs (no stale entries).
    for path in ELAPSED_ALLOWED:
        (activity,) = corpus_results[path]
        times = activity.samples["timestamp"]
        span = (times.iloc[-1] - times.iloc[0]).total_seconds()
        assert abs(span - activity.summary["elapsed_s"]) > 2.0, path
