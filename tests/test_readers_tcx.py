"""TCX reader: real fixtures (tests/data/tcx, see ORIGINS.md), synthetic edge cases, the corpus."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runlog.activity import SAMPLE_COLUMNS, Activity
from runlog.errors import FileReadError, SkippedFile
from runlog.readers.tcx import read_tcx

TCX_DATA = Path(__file__).parent / "data" / "tcx"
TCX_NS = "http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"
TPX_NS = "http://www.garmin.com/xmlschemas/ActivityExtension/v2"


def _fixture(name: str) -> bytes:
    return gzip.decompress((TCX_DATA / name).read_bytes())


def _only(activities: list[Activity]) -> Activity:
    assert len(activities) == 1
    return activities[0]


def _trackpoint(time: str, position: bool = True, extra: str = "") -> str:
    where = ("<Position><LatitudeDegrees>46.1</LatitudeDegrees>"
             "<LongitudeDegrees>-1.1</LongitudeDegrees></Position>") if position else ""
    return f"<Trackpoint><Time>{time}</Time>{where}{extra}</Trackpoint>"


def _lap(start: str, tracks: list[list[str]], seconds: float = 60.0,
         meters: float = 200.0) -> str:
    body = "".join("<Track>" + "".join(points) + "</Track>" for points in tracks)
    return (f'<Lap StartTime="{start}"><TotalTimeSeconds>{seconds}</TotalTimeSeconds>'
            f"<DistanceMeters>{meters}</DistanceMeters>{body}</Lap>")


def _tcx(body: str, declarations: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<TrainingCenterDatabase '
            f'xmlns="{TCX_NS}" {declarations}>{body}</TrainingCenterDatabase>').encode()


def _activity(sport: str, laps: str, creator: str = "") -> str:
    return f'<Activity Sport="{sport}"><Id>2021-01-01T08:00:00Z</Id>{laps}{creator}</Activity>'


def _run_document(laps: str, declarations: str = "") -> bytes:
    """A TCX file holding one running activity made of ``laps``."""
    return _tcx("<Activities>" + _activity("Running", laps) + "</Activities>", declarations)


# --- real fixtures -----------------------------------------------------------------------------

def test_run_garmin_laps_summary_device_and_doubled_run_cadence() -> None:
    activity = _only(read_tcx(_fixture("run_garmin.tcx.gz"), "run_garmin.tcx"))
    samples = activity.samples
    assert list(samples.columns) == list(SAMPLE_COLUMNS)
    assert len(samples) == 147
    assert activity.sport == "running" and activity.sport_raw == "Running"
    assert activity.device == "Garmin Forerunner 620 ProductID=1623"
    assert activity.start_utc == pd.Timestamp("2018-11-25T07:20:49Z")
    assert activity.summary["distance_m"] == pytest.approx(2153.67, abs=0.01)
    assert activity.summary["timer_s"] == pytest.approx(816.0)
    assert activity.summary["elapsed_s"] == 823.0
    assert activity.summary["max_hr_bpm"] >= activity.summary["avg_hr_bpm"] > 100
    # <ns3:RunCadence> median 88 strides/min → 176 steps/min
    assert samples["cadence_spm"].median() == 176.0
    assert any("RunCadence doubled" in note for note in activity.notes)
    assert samples["speed_mps"].notna().all()
    assert samples["hr_bpm"].notna().all()
    assert samples["distance_m"].iloc[-1] > 2000


def test_malformed_undeclared_prefix_and_missing_root_is_read() -> None:
    activity = _only(read_tcx(_fixture("malformed.tcx.gz"), "malformed.tcx"))
    assert len(activity.samples) == 384
    assert activity.device == "Forerunner 410 Software Version 2.20 ProductID=1250"
    assert activity.summary["distance_m"] == pytest.approx(4689.24, abs=0.01)


def test_trackpoint_without_position_is_kept() -> None:
    activity = _only(read_tcx(_fixture("test.tcx.gz"), "test.tcx"))
    samples = activity.samples
    assert len(samples) == 384
    assert samples["lat_deg"].isna().sum() == 1
    assert samples["timestamp"].iloc[-1] == pd.Timestamp("2012-12-26T22:03:05Z")
    assert np.isnan(samples["lat_deg"].iloc[-1])
    assert activity.summary["elapsed_s"] == 1992.0
    assert activity.name == "Aerobics"


@pytest.mark.parametrize("junk", [b"\n\n   ", b"\xef\xbb\xbf", b"\r\n\t\xef\xbb\xbf \n"])
def test_whitespace_or_bom_before_the_declaration(junk: bytes) -> None:
    data = _fixture("run_garmin.tcx.gz")
    assert data.startswith(b"<?xml")
    activity = _only(read_tcx(junk + data, "ws.tcx"))
    assert len(activity.samples) == 147


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.9])
def test_a_real_tcx_cut_short_keeps_its_complete_trackpoints_and_says_so(
        fraction: float) -> None:
    data = _fixture("run_garmin.tcx.gz")
    whole = _only(read_tcx(data, "whole.tcx"))
    part = _only(read_tcx(data[: int(len(data) * fraction)], "part.tcx"))
    n = len(part.samples)
    assert 0 < n < len(whole.samples)
    pd.testing.assert_frame_equal(part.samples, whole.samples.iloc[:n])
    assert part.damaged and not whole.damaged
    assert any(note.startswith("file cut short (XML error at line ") for note in part.notes)


def test_a_tcx_cut_before_its_first_activity_is_a_file_read_error() -> None:
    data = _fixture("test.tcx.gz")
    with pytest.raises(FileReadError, match=r"XML error at line \d+"):
        read_tcx(data[: data.index(b"<Activity ")], "cut.tcx")


# --- synthetic edge cases -------------------------------------------------------------------------

def test_indoor_trackpoints_without_any_position_are_kept() -> None:
    points = [_trackpoint(f"2021-01-01T08:00:{s:02d}Z", position=False,
                          extra=f"<DistanceMeters>{s * 3}</DistanceMeters>") for s in range(10)]
    activity = _only(read_tcx(_run_document(_lap("2021-01-01T08:00:00Z", [points])), "tread.tcx"))
    assert len(activity.samples) == 10
    assert not activity.has_gps
    assert activity.samples["distance_m"].tolist() == [float(s * 3) for s in range(10)]


@pytest.mark.parametrize("declarations, tpx_open, tpx_close, child", [
    (f'xmlns:ns3="{TPX_NS}"', "<ns3:TPX>", "</ns3:TPX>", "ns3:"),
    (f'xmlns:x="{TPX_NS}"', "<x:TPX>", "</x:TPX>", ""),          # runpandas run.tcx style
    ("", f'<TPX xmlns="{TPX_NS}">', "</TPX>", ""),               # default namespace on TPX
    ("", "<undeclared:TPX>", "</undeclared:TPX>", "undeclared:"),
])
def test_tpx_extension_read_whatever_the_prefix(declarations: str, tpx_open: str,
                                                tpx_close: str, child: str) -> None:
    extension = (f"<Extensions>{tpx_open}<{child}Speed>3.5</{child}Speed>"
                 f"<{child}RunCadence>85</{child}RunCadence><{child}Watts>250</{child}Watts>"
                 f"{tpx_close}</Extensions>")
    points = [_trackpoint(f"2021-01-01T08:00:{s:02d}Z", extra=extension) for s in range(3)]
    document = _run_document(_lap("2021-01-01T08:00:00Z", [points]), declarations)
    samples = _only(read_tcx(document, "tpx.tcx")).samples
    assert samples["speed_mps"].tolist() == [3.5] * 3
    assert samples["cadence_spm"].tolist() == [170.0] * 3
    assert samples["power_w"].tolist() == [250.0] * 3


def test_heart_rate_and_lap_hr_summary() -> None:
    def point(s: int, bpm: int) -> str:
        return _trackpoint(f"2021-01-01T08:00:{s:02d}Z",
                           extra=f"<HeartRateBpm><Value>{bpm}</Value></HeartRateBpm>")
    lap_one = _lap("2021-01-01T08:00:00Z", [[point(0, 120), point(1, 0)]], seconds=100).replace(
        "<Track>", "<AverageHeartRateBpm><Value>130</Value></AverageHeartRateBpm>"
                   "<MaximumHeartRateBpm><Value>150</Value></MaximumHeartRateBpm><Track>", 1)
    lap_two = _lap("2021-01-01T08:01:40Z", [[point(2, 140)]], seconds=300).replace(
        "<Track>", "<AverageHeartRateBpm><Value>150</Value></AverageHeartRateBpm>"
                   "<MaximumHeartRateBpm><Value>170</Value></MaximumHeartRateBpm><Track>", 1)
    activity = _only(read_tcx(_run_document(lap_one + lap_two), "hr.tcx"))
    assert activity.samples["hr_bpm"].tolist()[0] == 120.0
    assert np.isnan(activity.samples["hr_bpm"].iloc[1])          # 0 = no sensor
    assert activity.summary["avg_hr_bpm"] == pytest.approx((130 * 100 + 150 * 300) / 400)
    assert activity.summary["max_hr_bpm"] == 170.0
    assert activity.summary["timer_s"] == 400.0
    assert activity.summary["distance_m"] == 400.0


def test_two_tracks_in_one_lap_are_a_pause_tracks_in_two_laps_are_not() -> None:
    before = [_trackpoint("2021-01-01T08:00:00Z"), _trackpoint("2021-01-01T08:05:00Z")]
    after = [_trackpoint("2021-01-01T08:09:00Z"), _trackpoint("2021-01-01T08:10:00Z")]
    later = [_trackpoint("2021-01-01T08:10:01Z"), _trackpoint("2021-01-01T08:12:00Z")]
    laps = _lap("2021-01-01T08:00:00Z", [before, after]) + _lap("2021-01-01T08:10:01Z", [later])
    activity = _only(read_tcx(_run_document(laps), "pause.tcx"))
    assert activity.pauses == [(pd.Timestamp("2021-01-01T08:05:00Z"),
                                pd.Timestamp("2021-01-01T08:09:00Z"))]
    assert activity.summary["elapsed_s"] == 720.0


def test_several_activities_and_a_multisport_session() -> None:
    def one(sport: str, start: str) -> str:
        stamp = pd.Timestamp(start)
        points = [_trackpoint((stamp + pd.Timedelta(seconds=s)).isoformat()) for s in range(4)]
        return f'<Activity Sport="{sport}"><Id>{start}</Id>{_lap(start, [points])}</Activity>'

    plain = read_tcx(_tcx("<Activities>" + one("Running", "2021-01-01T08:00:00Z")
                          + one("Biking", "2021-01-02T08:00:00Z") + "</Activities>"), "two.tcx")
    assert [(a.sport, a.leg_index, len(a.samples)) for a in plain] == [
        ("running", None, 4), ("cycling", None, 4)]

    session = (
        "<Activities><MultiSportSession><Id>2021-01-03T08:00:00Z</Id>"
        f"<FirstSport>{one('Running', '2021-01-03T08:00:00Z')}</FirstSport>"
        f"<NextSport>{one('Biking', '2021-01-03T08:30:00Z')}</NextSport>"
        f"<NextSport>{one('Running', '2021-01-03T09:30:00Z')}</NextSport>"
        "</MultiSportSession></Activities>")
    legs = read_tcx(_tcx(session), "multi.tcx")
    assert [(a.sport, a.leg_index) for a in legs] == [
        ("running", 0), ("cycling", 1), ("running", 2)]
    assert legs[2].start_utc == pd.Timestamp("2021-01-03T09:30:00Z")


def test_courses_only_is_skipped() -> None:
    course = ("<Courses><Course><Name>Loop</Name><Track><Trackpoint><Time>2021-01-01T08:00:00Z"
              "</Time></Trackpoint></Track></Course></Courses>")
    with pytest.raises(SkippedFile, match="course"):
        read_tcx(_tcx(course), "course.tcx")


def test_trackpoint_with_bad_time_dropped_bad_position_cleared() -> None:
    points = [
        _trackpoint("2021-01-01T08:00:00Z"),
        _trackpoint("not a time"),
        "<Trackpoint><Time>2021-01-01T08:00:02Z</Time><Position><LatitudeDegrees>95"
        "</LatitudeDegrees><LongitudeDegrees>10</LongitudeDegrees></Position></Trackpoint>",
        _trackpoint("2021-01-01T08:00:03Z"),
    ]
    activity = _only(read_tcx(_run_document(_lap("2021-01-01T08:00:00Z", [points])), "bad.tcx"))
    assert len(activity.samples) == 3
    assert activity.samples["lat_deg"].isna().tolist() == [False, True, False]
    assert any("without a valid time" in note for note in activity.notes)


def test_activity_without_trackpoints_takes_times_from_laps() -> None:
    laps = _lap("2021-01-01T08:00:00Z", [], seconds=600, meters=2000) + \
        _lap("2021-01-01T08:10:00Z", [], seconds=300, meters=1000)
    activity = _only(read_tcx(_run_document(laps), "manual.tcx"))
    assert len(activity.samples) == 0
    assert activity.start_utc == pd.Timestamp("2021-01-01T08:00:00Z")
    assert activity.summary == {"distance_m": 3000.0, "timer_s": 900.0, "elapsed_s": 900.0}


# --- corpus ---------------------------------------------------------------------------------------

#: TCX corpus rows that may legitimately differ from the catalogue, with the reason. None do:
#: start = first trackpoint, elapsed = last − first trackpoint, distance = Σ lap distance and
#: n_points = every Trackpoint (tcxreader drops those without position — the catalogue's
#: lib_diffs column — we keep them, as the catalogue's raw count does).
TCX_DIFFERS: dict[str, str] = {}


def test_corpus_tcx_files(corpus: Path, catalogue: pd.DataFrame) -> None:
    rows = catalogue[catalogue["format"] == "tcx"]
    assert len(rows) >= 20
    problems: list[str] = []
    for row in rows.itertuples():
        if row.path in TCX_DIFFERS:
            continue
        try:
            activities = read_tcx((corpus / row.path).read_bytes(), row.path)
        except (SkippedFile, FileReadError) as error:
            problems.append(f"{row.path}: {type(error).__name__}: {error.reason}")
            continue
        except Exception as error:  # the point: never any other exception
            problems.append(f"{row.path}: {type(error).__name__}: {error}")
            continue
        if len(activities) != int(row.n_sessions):
            problems.append(f"{row.path}: {len(activities)} activities vs {row.n_sessions}")
            continue
        activity = activities[0]
        if isinstance(row.start_time_utc, str) and \
                activity.start_utc.floor("s") != pd.Timestamp(row.start_time_utc):
            problems.append(f"{row.path}: start {activity.start_utc} vs {row.start_time_utc}")
        if not np.isnan(row.distance_summary_m) and activity.summary.get("distance_m") is None:
            problems.append(f"{row.path}: no summary distance")
        elif not np.isnan(row.distance_summary_m) and \
                abs(activity.summary["distance_m"] / row.distance_summary_m - 1) > 0.001:
            problems.append(f"{row.path}: distance {activity.summary['distance_m']} vs "
                            f"{row.distance_summary_m}")
        if not np.isnan(row.elapsed_s) and \
                abs(activity.summary.get("elapsed_s", -1.0) - row.elapsed_s) > 0.1:
            problems.append(f"{row.path}: elapsed {activity.summary.get('elapsed_s')} vs "
                            f"{row.elapsed_s}")
        if not np.isnan(row.timer_s) and \
                abs(activity.summary.get("timer_s", -1.0) - row.timer_s) > 0.1:
            problems.append(f"{row.path}: timer {activity.summary.get('timer_s')} vs "
                            f"{row.timer_s}")
        n_samples = sum(len(a.samples) for a in activities)
        if not np.isnan(row.n_points) and n_samples != int(row.n_points):
            problems.append(f"{row.path}: {n_samples} samples vs n_points {row.n_points}")
        if not np.isnan(row.n_gps_points) and \
                int(activity.samples["lat_deg"].notna().sum()) != int(row.n_gps_points):
            problems.append(f"{row.path}: GPS points differ from n_gps_points {row.n_gps_points}")
        if row.has_hr == 1 and not activity.samples["hr_bpm"].notna().any():
            problems.append(f"{row.path}: catalogue has_hr=1 but no hr_bpm")
        if row.has_cadence == 1 and not activity.samples["cadence_spm"].notna().any():
            problems.append(f"{row.path}: catalogue has_cadence=1 but no cadence")
    assert not problems, "\n".join(problems)


def test_corpus_run_cadence_is_strides_per_minute(corpus: Path, catalogue: pd.DataFrame) -> None:
    """The evidence for doubling: raw RunCadence medians in the corpus's TCX runs are 87–91."""
    rows = catalogue[(catalogue["format"] == "tcx") & (catalogue["sport"] == "Running")
                     & (catalogue["has_cadence"] == 1)]
    assert len(rows) >= 10
    for row in rows.itertuples():
        activity = read_tcx((corpus / row.path).read_bytes(), row.path)[0]
        median_steps = activity.samples["cadence_spm"].loc[lambda c: c > 0].median()
        assert 160 <= median_steps <= 190, (row.path, median_steps)


def test_course_after_an_activity_does_not_leak_into_it() -> None:
    points = [_trackpoint(f"2021-01-01T08:00:{s:02d}Z") for s in range(3)]
    course = ("<Courses><Course><Name>Loop</Name><Lap><TotalTimeSeconds>999</TotalTimeSeconds>"
              "<DistanceMeters>9999</DistanceMeters></Lap><Track>"
              + _trackpoint("2021-01-05T08:00:00Z") + "</Track></Course></Courses>")
    author = "<Author><Name>Garmin Connect</Name></Author>"
    document = _tcx("<Activities>" + _activity("Running", _lap("2021-01-01T08:00:00Z", [points]))
                    + "</Activities>" + course + author)
    activity = _only(read_tcx(document, "mixed.tcx"))
    assert len(activity.samples) == 3
    assert activity.summary["distance_m"] == 200.0
    assert activity.device == "Garmin Connect"                 # no Creator: the Author


def test_utf16_tcx_is_read() -> None:
    points = [_trackpoint(f"2021-01-01T08:00:{s:02d}Z") for s in range(3)]
    text = _run_document(_lap("2021-01-01T08:00:00Z", [points])).decode().replace(
        'encoding="UTF-8"', 'encoding="UTF-16"')
    for encoded in (text.encode("utf-16"), text.encode("utf-16-le")):
        assert len(_only(read_tcx(encoded, "u16.tcx")).samples) == 3
