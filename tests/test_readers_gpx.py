"""GPX reader: real fixtures (tests/data/gpx, see ORIGINS.md), synthetic edge cases, the corpus."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runlog.activity import SAMPLE_COLUMNS, Activity
from runlog.errors import FileReadError, SkippedFile
from runlog.readers.gpx import parse_numbers, read_gpx

GPX_DATA = Path(__file__).parent / "data" / "gpx"


def _fixture(name: str) -> bytes:
    data = (GPX_DATA / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


def _only(activities: list[Activity]) -> Activity:
    assert len(activities) == 1
    return activities[0]


def _gpx11(points: str, prefix_decl: str = 'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/'
           'TrackPointExtension/v1"', trk_head: str = "<name>Run</name>") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="test" '
            f'xmlns="http://www.topografix.com/GPX/1/1" {prefix_decl}>\n<trk>{trk_head}'
            f"<trkseg>\n{points}\n</trkseg></trk></gpx>").encode()


def _point(lat: str, lon: str, time: str, extra: str = "") -> str:
    return f'<trkpt lat="{lat}" lon="{lon}"><time>{time}</time>{extra}</trkpt>'


# --- real fixtures -----------------------------------------------------------------------------

def test_garmin_connect_gpx11_ns3_prefix_hr_cadence_doubled() -> None:
    activity = _only(read_gpx(_fixture("garmin_connect.gpx"), "garmin_connect.gpx"))
    samples = activity.samples
    assert list(samples.columns) == list(SAMPLE_COLUMNS)
    assert len(samples) == 3
    assert samples["hr_bpm"].tolist()[0] == 120.0
    assert samples["cadence_spm"].tolist()[0] == 140.0       # <ns3:cad>70</ns3:cad> doubled
    assert any("cadence doubled" in note for note in activity.notes)
    assert activity.sport == "running" and activity.sport_raw == "running"
    assert activity.device == "Garmin Connect"
    assert activity.name == "Foo Bar"
    assert activity.start_utc == pd.Timestamp("2018-02-21T14:30:50Z")
    assert samples["altitude_m"].iloc[0] == pytest.approx(23.6)
    assert samples["lat_deg"].iloc[0] == pytest.approx(51.437889291)
    assert str(samples["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_garmin_example_keeps_atemp_hr_and_cadence() -> None:
    activity = _only(read_gpx(_fixture("garmin_example.gpx.gz"), "garmin_example.gpx"))
    first = activity.samples.iloc[0]
    assert first["temp_c"] == 27.0
    assert first["hr_bpm"] == 129.0
    assert first["cadence_spm"] == 104.0                        # 52 strides/min → steps
    assert activity.samples["temp_c"].notna().all()
    assert len(activity.samples) == 602


def test_gpx10_file_split_into_eight_trk_is_one_activity_with_pauses() -> None:
    activity = _only(read_gpx(_fixture("cerknicko-jezero.gpx.gz"), "cerknicko-jezero.gpx"))
    assert len(activity.samples) == 296
    assert activity.start_utc == pd.Timestamp("2010-08-05T14:23:59Z")
    assert activity.device == "GPSBabel - http://www.gpsbabel.org"
    # seven non-empty pieces → six gaps, the first from 15:05:08 to 15:11:36
    assert len(activity.pauses) == 6
    assert activity.pauses[0] == (pd.Timestamp("2010-08-05T15:05:08Z"),
                                  pd.Timestamp("2010-08-05T15:11:36Z"))
    assert any("joined" in note for note in activity.notes)


def test_route_only_is_skipped() -> None:
    with pytest.raises(SkippedFile, match=r"no track points \(route or waypoints only\)"):
        read_gpx(_fixture("route.gpx"), "route.gpx")


def test_opentracks_zero_hr_is_no_sensor_speed_and_offset_kept() -> None:
    activity = _only(read_gpx(_fixture("opentracks_bc_cadzand_bad.gpx.gz"), "bc.gpx"))
    samples = activity.samples
    assert samples["hr_bpm"].isna().all()                      # every <hr> is 0: no strap
    assert any("heart-rate value(s) of 0" in note for note in activity.notes)
    assert samples["speed_mps"].notna().all()
    assert activity.tz_offset_min == 120                      # 2025-08-30T20:29:19+02:00
    assert activity.start_utc.floor("s") == pd.Timestamp("2025-08-30T18:29:19Z")
    assert activity.summary["distance_m"] == pytest.approx(1090.0918)
    assert activity.summary["timer_s"] == 763.0
    assert activity.sport == "other"                          # <type>unknown</type>


# --- prefixes, GPX 1.0, extensions --------------------------------------------------------------

TPX_BODY = ("<extensions><{p}TrackPointExtension><{p}atemp>21.5</{p}atemp><{p}hr>151</{p}hr>"
            "<{p}cad>88</{p}cad></{p}TrackPointExtension></extensions>")


@pytest.mark.parametrize("declaration, prefix", [
    ('xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1"', "gpxtpx:"),
    ('xmlns:ns3="http://www.garmin.com/xmlschemas/TrackPointExtension/v1"', "ns3:"),
    ('xmlns:tp1="http://www.garmin.com/xmlschemas/TrackPointExtension/v2"', "tp1:"),
    ("", "undeclared:"),                                    # prefix never bound: tolerated
    ("", ""),
])
def test_extensions_read_whatever_the_prefix(declaration: str, prefix: str) -> None:
    points = "\n".join(_point("45.0", f"14.{i:04d}", f"2021-06-01T07:00:{i:02d}Z",
                              TPX_BODY.format(p=prefix)) for i in range(3))
    activity = _only(read_gpx(_gpx11(points, declaration), "p.gpx"))
    assert activity.samples["hr_bpm"].tolist() == [151.0] * 3
    assert activity.samples["temp_c"].tolist() == [21.5] * 3
    assert activity.samples["cadence_spm"].tolist() == [176.0] * 3


def test_gpx10_speed_hr_cad_atemp_kept_where_gpxpy_drops_them() -> None:
    # GPX 1.0 has no <extensions>: foreign elements sit directly in <trkpt>, next to <speed>.
    points = "\n".join(
        f'<trkpt lat="46.43{i}" lon="13.74{i}"><ele>161{i}</ele>'
        f"<time>2010-12-14T06:17:0{i}Z</time><speed>2.{i}</speed>"
        f"<tpx:TrackPointExtension><tpx:hr>14{i}</tpx:hr><tpx:cad>17{i}</tpx:cad>"
        f"<tpx:atemp>1{i}.0</tpx:atemp></tpx:TrackPointExtension></trkpt>" for i in range(4))
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.0" creator="GPSBabel" '
        'xmlns="http://www.topografix.com/GPX/1/0" '
        'xmlns:tpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">'
        f"<trk><trkseg>{points}</trkseg></trk></gpx>").encode()
    samples = _only(read_gpx(document, "v10.gpx")).samples
    assert samples["speed_mps"].tolist() == [2.0, 2.1, 2.2, 2.3]
    assert samples["hr_bpm"].tolist() == [140.0, 141.0, 142.0, 143.0]
    assert samples["cadence_spm"].tolist() == [170.0, 171.0, 172.0, 173.0]   # ≥ 120: steps
    assert samples["temp_c"].tolist() == [10.0, 11.0, 12.0, 13.0]
    assert samples["altitude_m"].tolist() == [1610.0, 1611.0, 1612.0, 1613.0]


# --- cadence rule ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cadences, expected, doubled", [
    ([80, 82, 84, 0, 0], [160, 164, 168, 0, 0], True),       # strides/min (zeros ignored)
    ([160, 164, 168, 0, 0], [160, 164, 168, 0, 0], False),   # already steps/min
    ([119, 119, 119], [238, 238, 238], True),
    ([120, 120, 120], [120, 120, 120], False),
])
def test_cadence_doubling_rule(cadences: list[int], expected: list[int], doubled: bool) -> None:
    points = "\n".join(
        _point("45.0", f"14.{i:04d}", f"2021-06-01T07:00:{i:02d}Z",
               f"<extensions><gpxtpx:TrackPointExtension><gpxtpx:cad>{cad}</gpxtpx:cad>"
               "</gpxtpx:TrackPointExtension></extensions>") for i, cad in enumerate(cadences))
    activity = _only(read_gpx(_gpx11(points), "c.gpx"))
    assert activity.samples["cadence_spm"].tolist() == [float(c) for c in expected]
    assert any("cadence doubled" in note for note in activity.notes) is doubled


# --- bad points, timestamps -----------------------------------------------------------------------

def test_bad_points_dropped_rest_kept() -> None:
    points = "\n".join([
        _point("45.0", "14.0", "2021-06-01T07:00:00Z"),
        _point("abc", "14.1", "2021-06-01T07:00:01Z"),          # unparsable latitude
        _point("45.2", "200.0", "2021-06-01T07:00:02Z"),        # longitude out of range
        '<trkpt lon="14.3"><time>2021-06-01T07:00:03Z</time></trkpt>',   # no lat at all
        _point("45.4", "14.4", "kaputt"),                        # unparsable time
        _point("45.5", "14.5", "2021-06-01T07:00:05Z"),
    ])
    activity = _only(read_gpx(_gpx11(points), "bad.gpx"))
    assert activity.samples["lat_deg"].tolist() == [45.0, 45.5]
    assert any("3 track point(s) with missing or out-of-range lat/lon" in n
               for n in activity.notes)
    assert any("1 track point(s) without a valid time" in n for n in activity.notes)


def test_track_without_timestamps_is_skipped() -> None:
    points = '<trkpt lat="52.5" lon="13.3"><ele>32</ele></trkpt>\n' * 5
    with pytest.raises(SkippedFile, match="track has no timestamps"):
        read_gpx(_gpx11(points), "untimed.gpx")


def test_sentinel_1901_times_are_not_timestamps() -> None:
    points = _point("46.4", "13.7", "1901-12-13T20:45:52.2073437Z") * 3
    with pytest.raises(SkippedFile, match="track has no timestamps"):
        read_gpx(_gpx11(points), "mojstrovka-like.gpx")


def test_iso8601_variants_parse_to_the_same_utc_instant() -> None:
    variants = ["2021-06-01T07:00:00Z", "2021-06-01T09:00:00+02:00",
                "2021-06-01T07:00:00.000Z", "2021-06-01T07:00:00", "2021-06-01T02:00:00-0500",
                "2021-06-01T07:00:00.4Z"]
    points = "\n".join(_point("45.0", "14.0", v) for v in variants)
    activity = _only(read_gpx(_gpx11(points), "t.gpx"))
    seconds = activity.samples["timestamp"].dt.floor("s")
    assert (seconds == pd.Timestamp("2021-06-01T07:00:00Z")).all()
    assert activity.samples["timestamp"].iloc[-1].microsecond == 400_000
    assert activity.tz_offset_min is None                     # first time says Z


def test_strava_numeric_type_and_metadata_name() -> None:
    points = _point("45.0", "14.0", "2021-06-01T07:00:00Z")
    document = _gpx11(points, trk_head="<type>9</type>").replace(
        b"<trk>", b"<metadata><name>Morning Run</name></metadata><trk>")
    activity = _only(read_gpx(document, "strava.gpx"))
    assert activity.sport == "running" and activity.sport_raw == "9"
    assert activity.name == "Morning Run"


# --- segments and tracks --------------------------------------------------------------------------

def test_segments_are_one_activity_and_gaps_are_pauses() -> None:
    first = _point("45.0", "14.0", "2021-06-01T07:00:00Z") + \
        _point("45.0", "14.001", "2021-06-01T07:10:00Z")
    second = _point("45.0", "14.002", "2021-06-01T07:15:00Z") + \
        _point("45.0", "14.003", "2021-06-01T07:20:00Z")
    document = _gpx11(first + "</trkseg><trkseg></trkseg><trkseg>" + second)
    activity = _only(read_gpx(document, "segs.gpx"))
    assert len(activity.samples) == 4
    assert activity.pauses == [(pd.Timestamp("2021-06-01T07:10:00Z"),
                                pd.Timestamp("2021-06-01T07:15:00Z"))]


def _two_tracks(second_start: str, second_type: str) -> bytes:
    def trk(start: pd.Timestamp, sport: str) -> str:
        pts = "".join(_point("45.0", f"14.{i}", (start + pd.Timedelta(minutes=i)).isoformat())
                      for i in range(3))
        return f"<trk><type>{sport}</type><trkseg>{pts}</trkseg></trk>"
    return ('<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
            + trk(pd.Timestamp("2021-06-01T07:00:00Z"), "running")
            + trk(pd.Timestamp(second_start), second_type) + "</gpx>").encode()


def test_consecutive_tracks_of_one_sport_are_joined() -> None:
    activity = _only(read_gpx(_two_tracks("2021-06-01T07:30:00Z", "running"), "two.gpx"))
    assert len(activity.samples) == 6
    assert activity.pauses == [(pd.Timestamp("2021-06-01T07:02:00Z"),
                                pd.Timestamp("2021-06-01T07:30:00Z"))]


@pytest.mark.parametrize("second_start, second_type", [
    ("2021-06-01T12:00:00Z", "running"),      # hours later: another run
    ("2021-06-01T07:30:00Z", "cycling"),      # different sport
    ("2021-06-01T06:00:00Z", "running"),      # starts before the first: not a continuation
])
def test_unrelated_tracks_are_separate_activities(second_start: str, second_type: str) -> None:
    activities = read_gpx(_two_tracks(second_start, second_type), "two.gpx")
    assert [len(a.samples) for a in activities] == [3, 3]
    assert activities[1].sport == ("cycling" if second_type == "cycling" else "running")


def test_whitespace_and_bom_before_declaration() -> None:
    data = b"\xef\xbb\xbf\n   \n" + _fixture("garmin_connect.gpx")
    assert len(_only(read_gpx(data, "bom.gpx")).samples) == 3


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.9, 0.999])
def test_a_real_file_cut_short_keeps_its_complete_points_and_says_so(fraction: float) -> None:
    """A partial copy: the track points before the cut, exactly as in the whole file (the
    one the cut fell in is dropped), marked damaged with a note naming the line."""
    data = _fixture("garmin_example.gpx.gz")
    whole = _only(read_gpx(data, "whole.gpx"))
    part = _only(read_gpx(data[: int(len(data) * fraction)], "part.gpx"))
    n = len(part.samples)
    assert 0 < n < len(whole.samples)
    pd.testing.assert_frame_equal(part.samples, whole.samples.iloc[:n])
    assert part.damaged and not whole.damaged
    assert any(note.startswith("file cut short (XML error at line ")
               and note.endswith(" track points before the cut") for note in part.notes)


def test_a_file_cut_before_its_first_point_is_a_file_read_error() -> None:
    data = _fixture("garmin_example.gpx.gz")
    with pytest.raises(FileReadError, match=r"XML error at line \d+"):
        read_gpx(data[: data.index(b"<trkpt")], "cut.gpx")


# --- corpus ---------------------------------------------------------------------------------------

#: Files the reader skips on purpose, with the reason it must give.
EXPECTED_SKIPS: dict[str, str] = {
    "tkrajina__gpxpy/test_files/route.gpx": "route or waypoints only",
    "tkrajina__gpxpy/test_files/gpx_with_garmin_extension.gpx": "route or waypoints only",
    "tkrajina__gpxpy/test_files/unicode_with_bom.gpx": "route or waypoints only",
    # bikerouter.de planned route saved as a track: no <time> anywhere
    "martin-ueding__geo-activity-playground/testdata/Local Files/Activities/Berlin (0,9 km).gpx":
        "track has no timestamps",
    # every <time> is 1901-12-13T20:45:52 (32-bit time_t minimum = GPSBabel's "no time")
    "tkrajina__gpxpy/test_files/Mojstrovka.gpx": "track has no timestamps",
}
#: Files whose start differs from the catalogue's, and why (none: the skipped ones above are
#: not compared).
START_DIFFERS: dict[str, str] = {}
#: Files whose sample count differs from the catalogue's n_points, and why.
N_POINTS_DIFFER: dict[str, str] = {
    "tkrajina__gpxpy/test_files/cerknicko-without-times.gpx":
        "291 of 296 points have no <time>: dropped, 5 kept",
    "tkrajina__gpxpy/test_files/korita-zbevnica.gpx":
        "the <trk> '03-OCT-10 #2' (358 points) has no times: dropped, 513 kept",
}
#: Files with has_hr == 1 where hr_bpm is legitimately empty, and why.
HR_ABSENT: dict[str, str] = {
    path: "OpenTracks writes <gpxtpx:hr>0</gpxtpx:hr> on every point without a strap: "
          "a sentinel, read as NaN"
    for path in [
        "martin-ueding__geo-activity-playground/testdata/Zeeland/Activities/Radfahrt/"
        "Term Link D8 2015/2025-08-31 09_57_05.835 Zwin und Nieuwvliet.gpx",
        "martin-ueding__geo-activity-playground/testdata/Zeeland/Activities/Spaziergang/"
        "Barfuß/2025-08-30 10_27_46.464 Wasserlinie Cadzand-Bad.gpx",
        "martin-ueding__geo-activity-playground/testdata/Zeeland/Activities/Spaziergang/"
        "Brooks Caldera 5/2025-08-30 20_29_18.085 BC Cadzand-Bad.gpx",
        "martin-ueding__geo-activity-playground/testdata/Zeeland/Activities/Spaziergang/"
        "New Balance Fresh Foam 860v11/2025-09-03 11_32_33.996 Cadzand-Bad.gpx",
        "martin-ueding__geo-activity-playground/testdata/Zeeland/Activities/Wanderung/"
        "Brooks Caldera 5/2025-08-29 20_12_17.410 Cadzand-Bad.gpx",
        "martin-ueding__geo-activity-playground/testdata/Zeeland/Activities/Wanderung/"
        "Brooks Caldera 5/2025-08-30 09_44_09.737 Cadzand-Bad.gpx",
    ]
}


def _corpus_gpx_rows(catalogue: pd.DataFrame) -> pd.DataFrame:
    rows = catalogue[(catalogue["format"] == "gpx") | (catalogue["inner_format"] == "gpx")]
    assert len(rows) >= 90, "the corpus should hold ~93 GPX files"
    return rows


def test_corpus_gpx_files(corpus: Path, catalogue: pd.DataFrame) -> None:
    problems: list[str] = []
    for row in _corpus_gpx_rows(catalogue).itertuples():
        data = (corpus / row.path).read_bytes()
        if row.format == "gz":
            data = gzip.decompress(data)
        try:
            activities = read_gpx(data, row.path)
        except SkippedFile as skipped:
            expected = EXPECTED_SKIPS.get(row.path)
            if expected is None or expected not in skipped.reason:
                problems.append(f"{row.path}: unexpected skip: {skipped.reason}")
            continue
        except FileReadError as error:
            problems.append(f"{row.path}: FileReadError: {error.reason}")
            continue
        except Exception as error:  # the point: never any other exception
            problems.append(f"{row.path}: {type(error).__name__}: {error}")
            continue
        if row.path in EXPECTED_SKIPS:
            problems.append(f"{row.path}: expected a skip, got {len(activities)} activities")
            continue
        if not activities:
            problems.append(f"{row.path}: no activities and no SkippedFile")
            continue
        start = min(a.start_utc for a in activities).floor("s")
        if isinstance(row.start_time_utc, str):
            same = start == pd.Timestamp(row.start_time_utc)
            if same == (row.path in START_DIFFERS):
                problems.append(f"{row.path}: start {start} vs catalogue {row.start_time_utc}")
        n_samples = sum(len(a.samples) for a in activities)
        if not np.isnan(row.n_points):
            same = n_samples == int(row.n_points)
            if same == (row.path in N_POINTS_DIFFER):
                problems.append(f"{row.path}: {n_samples} samples vs n_points {row.n_points}")
        if row.has_hr == 1:
            has_hr = any(a.samples["hr_bpm"].notna().any() for a in activities)
            if has_hr == (row.path in HR_ABSENT):
                problems.append(f"{row.path}: hr present={has_hr} but catalogue has_hr=1")
        for activity in activities:
            if list(activity.samples.columns) != list(SAMPLE_COLUMNS):
                problems.append(f"{row.path}: sample columns {list(activity.samples.columns)}")
    assert not problems, "\n".join(problems)


def test_corpus_gpx_allow_lists_name_real_files(catalogue: pd.DataFrame) -> None:
    paths = set(catalogue["path"])
    for allow_list in (EXPECTED_SKIPS, START_DIFFERS, N_POINTS_DIFFER, HR_ABSENT):
        assert set(allow_list) <= paths


# --- the numeric fast path parses exactly as pandas' coerce path --------------------------------
_NUMBER_TEXTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["", " ", "nan", "NaN", "-nan", "inf", "+inf", "-Infinity", "infinity",
                     "1_000", "0x1f", "1e3", "-.5", "+2.", "1.5.2", "١٢", "12abc", "٣.5",
                     "1e400", "-0", "None"]),
    st.text(max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.one_of(st.none(), _NUMBER_TEXTS,
                                st.tuples(st.sampled_from(["", " ", "\t", "\n "]), _NUMBER_TEXTS,
                                          st.sampled_from(["", " ", "\r\n"])).map("".join)),
                      min_size=1, max_size=20))
def test_parse_numbers_equals_pandas_to_numeric(texts):
    expected = pd.to_numeric(pd.Series(texts, dtype=object).str.strip(),
                             errors="coerce").to_numpy(float)
    np.testing.assert_array_equal(parse_numbers(texts), expected)
