"""GPX 1.0 / 1.1 reader: track points with every sensor channel the exporters write.

What it reads, all by *local* element name (any namespace prefix works, see
:mod:`runlog.readers.xmlsafe`):

* ``trk/trkseg/trkpt`` with ``lat``/``lon`` attributes, ``ele`` [m] and ``time``;
* sensor values anywhere inside a ``trkpt``: Garmin ``TrackPointExtension`` ``hr`` [bpm],
  ``cad``, ``atemp`` [°C], ``speed`` [m/s], ``power`` [W] (v1, v2, ``ns3:``, ``gpxtpx:``, …),
  OsmAnd ``speed``, and GPX 1.0's own ``<speed>`` plus extension elements placed directly in a
  1.0 ``trkpt`` — gpxpy drops the last two, this reader keeps them;
* ``trk/type`` (``normalise_sport``; Strava writes numeric codes such as ``9``) or Locus
  ``trk/extensions/activity``, ``trk/name`` (else ``metadata/name``), the ``creator``
  attribute as device, OpenTracks ``TrackStatsExtension`` totals as the file's summary.

Decisions (documented here because they change what gets imported):

* **Bad points are dropped, never the file.** A point whose lat/lon is missing, unparsable
  or out of range, or whose time is missing, unparsable or before the GPS epoch
  (1980-01-06; GPSBabel writes ``1901-12-13T20:45:52``, the 32-bit ``time_t`` minimum, as
  "no time") is removed and counted in ``Activity.notes``.
* **Segments** of a track are one activity; the gap between two segments is a pause.
* **Several ``<trk>``**: consecutive tracks are one activity when they are clearly one
  recording split by the device (Garmin "ACTIVE LOG", "ACTIVE LOG #2", …): the next track
  starts no earlier than the previous one ended and at most :data:`MAX_TRACK_JOIN_GAP_S`
  later, and their sports agree (an unknown sport agrees with anything). The gap becomes a
  pause. Otherwise each track is its own Activity.
* **Cadence**: exporters write strides/min or steps/min. If the activity's median non-zero
  cadence is below :data:`STRIDES_PER_MIN_BELOW` it is taken as strides/min and doubled
  (RULES.md §0), with a note.
* **Heart rate 0** is a "no sensor" sentinel (OpenTracks writes ``<hr>0</hr>`` on every
  point without a strap) and becomes NaN.
* No timestamps at all → ``SkippedFile("track has no timestamps")``; no track points (only
  routes or waypoints) → ``SkippedFile("no track points (route or waypoints only)")``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from runlog.activity import Activity, normalise_samples, sample_columns
from runlog.errors import SkippedFile
from runlog.readers.sport import normalise_sport
from runlog.readers.xmlsafe import XmlTruncatedError, events_until_cut

#: Longest gap between two ``<trk>`` elements still read as one split recording [s].
MAX_TRACK_JOIN_GAP_S = 3600.0
#: A median cadence below this is strides/min of one foot and gets doubled [1/min].
STRIDES_PER_MIN_BELOW = 120.0
#: Points further than this from the median time of their activity are corrupt (as in FIT).
MAX_POINT_SPREAD = pd.Timedelta(days=3)
#: Times before the GPS epoch cannot come from a GPS receiver: treated as "no time".
GPS_EPOCH = pd.Timestamp("1980-01-06", tz="UTC")

#: Local element name inside a ``trkpt`` (lower-cased) → sample column.
_POINT_FIELDS: dict[str, str] = {
    "ele": "altitude_m", "time": "timestamp",
    "speed": "speed_mps",
    "hr": "hr_bpm", "heartrate": "hr_bpm", "heart_rate": "hr_bpm",
    "cad": "cadence_spm", "cadence": "cadence_spm",
    "atemp": "temp_c", "temp": "temp_c", "temperature": "temp_c",
    "power": "power_w", "powerinwatts": "power_w", "watts": "power_w",
}
#: OpenTracks / Garmin ``TrackStatsExtension`` element → ``Activity.summary`` key.
_TRACK_STATS: dict[str, str] = {
    "Distance": "distance_m", "TimerTime": "timer_s", "TotalElapsedTime": "elapsed_s",
    "Ascent": "ascent_m", "Descent": "descent_m",
}
_UTC_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})$")
_UNKNOWN_SPORTS = {None, "other"}
_NS_MIN = pd.Timestamp.min.tz_localize("UTC")
_NS_MAX = pd.Timestamp.max.tz_localize("UTC")


@dataclass
class _Track:
    """What one ``<trk>`` element said about itself, and where its points start."""

    first_point: int
    name: str | None = None
    sport_raw: str | None = None
    stats: dict[str, float] = field(default_factory=dict)


def read_gpx(data: bytes, name: str) -> list[Activity]:
    """Read a GPX 1.0/1.1 file into one Activity per recording (usually one).

    Parameters
    ----------
    data : the file's bytes (already decompressed).
    name : the file name or archive member, used in errors and notes.

    Returns
    -------
    Activities with samples in SI units (see ``runlog.activity.SAMPLE_COLUMNS``):
    degrees, metres, m/s, bpm, steps/min, °C, W; timestamps UTC.

    Raises
    ------
    FileReadError : not XML, malformed, hostile (see ``xmlsafe``).
    SkippedFile : readable, but no track points or no timestamps.
    """
    creator: str | None = None
    metadata_name: str | None = None
    tracks: list[_Track] = []
    segment_first_points: list[int] = []
    lat_texts: list[str | None] = []
    lon_texts: list[str | None] = []
    field_points: dict[str, list[int]] = {col: [] for col in set(_POINT_FIELDS.values())}
    field_texts: dict[str, list[str]] = {col: [] for col in set(_POINT_FIELDS.values())}
    n_points = 0
    n_route_or_waypoints = 0
    in_point = False

    cuts: list[XmlTruncatedError] = []
    for event, local, path, element in events_until_cut(data, name, cuts):
        if event == "start":
            if local == "trkpt":
                if not tracks:                       # tolerate a trkpt outside any trk
                    tracks.append(_Track(first_point=n_points))
                if not segment_first_points or segment_first_points[-1] < tracks[-1].first_point:
                    segment_first_points.append(n_points)
                lat_texts.append(element.get("lat"))
                lon_texts.append(element.get("lon"))
                in_point = True
            elif local == "trkseg":
                segment_first_points.append(n_points)
            elif local == "trk":
                tracks.append(_Track(first_point=n_points))
            elif local in ("rtept", "wpt"):
                n_route_or_waypoints += 1
            elif local == "gpx" and len(path) == 1:
                creator = _clean(element.get("creator"))
            continue
        if in_point:
            if local == "trkpt":
                in_point = False
                n_points += 1
            else:
                column = _POINT_FIELDS.get(local.lower())
                text = element.text
                if column is not None and text is not None:
                    field_points[column].append(n_points)
                    field_texts[column].append(text)
            continue
        parent = path[-2] if len(path) > 1 else ""
        if parent == "trk" and tracks:
            if local == "name":
                tracks[-1].name = _clean(element.text)
            elif local == "type":
                tracks[-1].sport_raw = _clean(element.text)
        elif parent == "metadata" and local == "name":
            metadata_name = _clean(element.text)
        elif parent == "extensions" and local == "activity" and len(path) > 2 \
                and path[-3] == "trk" and tracks and tracks[-1].sport_raw is None:
            tracks[-1].sport_raw = _clean(element.text)     # Locus Map
        elif parent == "TrackStatsExtension" and tracks and local in _TRACK_STATS:
            value = pd.to_numeric(element.text, errors="coerce")
            if pd.notna(value):
                tracks[-1].stats[_TRACK_STATS[local]] = float(value)

    if cuts:
        # The parser closes what the cut left open, so the last point may hold half a
        # number: it is dropped with whatever the cut fell inside, and tracks after it.
        n_points = max(n_points - 1, 0)
        tracks = [t for t in tracks if t.first_point < n_points]
        lat_texts, lon_texts = lat_texts[:n_points], lon_texts[:n_points]
        field_texts = {c: [t for i, t in zip(field_points[c], field_texts[c], strict=True)
                           if i < n_points] for c in field_texts}
        field_points = {c: [i for i in field_points[c] if i < n_points] for c in field_points}
        if n_points == 0:
            raise cuts[0]
    if n_points == 0:
        if n_route_or_waypoints:
            raise SkippedFile("no track points (route or waypoints only)", path=name)
        raise SkippedFile("no track points", path=name)

    columns = columns_from_texts(n_points, field_points, field_texts)
    lat, lon = parse_numbers(lat_texts), parse_numbers(lon_texts)
    columns["lat_deg"], columns["lon_deg"] = lat, lon
    timestamps: pd.Series = columns["timestamp"]

    notes: list[str] = []
    good_position = (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0)   # NaN compares False
    good_time = (timestamps.notna() & (timestamps >= GPS_EPOCH)).to_numpy()
    if not good_time.any():
        raise SkippedFile("track has no timestamps", path=name)
    if (~good_position).any():
        notes.append(f"{int((~good_position).sum())} track point(s) with missing or "
                     "out-of-range lat/lon dropped")
    if (~good_time).any():
        notes.append(f"{int((~good_time).sum())} track point(s) without a valid time dropped "
                     "(missing, unparsable or before 1980)")
    keep = good_position & good_time
    if not keep.any():
        raise SkippedFile("no track point has both a valid position and a valid time", path=name)

    point_index = np.arange(n_points)
    track_of_point = np.searchsorted([t.first_point for t in tracks], point_index, "right") - 1
    segment_of_point = np.searchsorted(segment_first_points, point_index, "right") - 1
    frame = pd.DataFrame(columns)
    frame["_track"], frame["_segment"] = track_of_point, segment_of_point
    frame = frame.loc[keep].reset_index(drop=True)

    tz_offset_min = _utc_offset_minutes(field_texts["timestamp"])
    activities = []
    for group in _group_tracks(frame, tracks):
        part = frame.loc[frame["_track"].isin(group)].reset_index(drop=True)
        part, stray_notes = drop_stray_times(part)
        first = tracks[group[0]]
        sport_raw = next((tracks[i].sport_raw for i in group if tracks[i].sport_raw), None)
        activity = Activity(
            {}, source_format="gpx", sport=normalise_sport(sport_raw),
            sport_raw=sport_raw, device=creator, start_utc=part["timestamp"].min(),
            tz_offset_min=tz_offset_min, summary=_group_stats([tracks[i] for i in group]),
            pauses=_segment_pauses(part), name=first.name or metadata_name,
            notes=[*notes, *stray_notes], damaged=bool(cuts),
        )
        if cuts:
            activity.notes.append(f"file cut short ({cuts[0].reason}); imported the "
                                  f"{n_points} track points before the cut")
        if len(group) > 1:
            activity.notes.append(f"{len(group)} <trk> elements joined into one activity "
                                  "(consecutive, same sport, gaps are pauses)")
        part = _fix_sensor_values(part, activity.notes)
        activity.columns = sample_columns(
            normalise_samples(part.drop(columns=["_track", "_segment"])))
        activities.append(activity)
    return activities


def drop_stray_times(part: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Drop the points of one activity whose time is far from the others' (FIT's rule).

    A point more than :data:`MAX_POINT_SPREAD` from the activity's (lower) median time is
    corrupt, not a sample (the FIT reader drops such records too). Without this a point dated
    2200 (or a year off) among 2020 points made one "run" span 180 years, and the metrics'
    1 Hz grid over that span took minutes and gigabytes (found by fuzzing). Returns the kept
    rows and a note when some were dropped. ``part`` must hold only valid times.
    """
    times = part["timestamp"]
    if len(times) < 2:
        return part, []
    middle = times.sort_values().iloc[(len(times) - 1) // 2]   # a real point's time, never all
    stray = ((times - middle).abs() > MAX_POINT_SPREAD).to_numpy()
    if not stray.any():
        return part, []
    note = (f"{int(stray.sum())} point(s) with a time more than {MAX_POINT_SPREAD.days} days "
            "from the others dropped")
    return part.loc[~stray].reset_index(drop=True), [note]


def _clean(text: str | None) -> str | None:
    """Stripped text, or None when empty."""
    if text is None:
        return None
    text = text.strip()
    return text or None


def columns_from_texts(n_points: int, field_points: dict[str, list[int]],
                        field_texts: dict[str, list[str]]) -> dict[str, object]:
    """Turn collected (point index, text) pairs into full-length sample columns, in bulk.

    ``field_points[col][k]`` is the index of the point whose ``col`` text is
    ``field_texts[col][k]``. ``timestamp`` becomes a UTC datetime Series (ISO 8601 with or
    without ``Z``/offset/fraction; naive times are UTC as GPX and TCX require); every other
    column a float64 array with NaN where the point had no (parsable) value. Shared by the
    GPX and TCX readers.
    """
    columns: dict[str, object] = {}
    for column, points in field_points.items():
        if column == "timestamp":
            naive_utc = np.full(n_points, np.datetime64("NaT"), dtype="datetime64[ns]")
            if len(points):
                parsed = parse_utc_times(_stripped(field_texts[column]))
                naive_utc[np.asarray(points)] = (
                    parsed.dt.tz_convert(None).to_numpy("datetime64[ns]"))
            columns[column] = pd.Series(pd.DatetimeIndex(naive_utc).tz_localize("UTC"))
        else:
            array = np.full(n_points, np.nan)
            if len(points):
                array[np.asarray(points)] = parse_numbers(field_texts[column])
            columns[column] = array
    return columns


def _stripped(texts: list[str | None]) -> pd.Series:
    """The texts as an object Series, stripped only when some carry outer whitespace."""
    series = pd.Series(texts, dtype=object)
    if any(isinstance(t, str) and (t[:1].isspace() or t[-1:].isspace()) for t in texts):
        series = series.str.strip()
    return series


def parse_numbers(texts: list[str | None]) -> np.ndarray:
    """Decimal texts → float64, NaN where a text is not a number (as ``pd.to_numeric``
    with ``errors="coerce"`` on the stripped texts).

    The common case — every text a plain ASCII number — goes through numpy's own float
    parsing, several times faster than pandas' object path; anything else (a bad value,
    digit separators, non-ASCII digits, which Python's float() would accept) takes the
    pandas path, as does a missing value (None).
    """
    try:
        joined = "".join(texts)
    except TypeError:
        joined = "_"
    if joined.isascii() and "_" not in joined:
        try:
            return np.array(texts, dtype="float64")
        except ValueError:
            pass
    return pd.to_numeric(_stripped(texts), errors="coerce").to_numpy(float)


def parse_utc_times(texts: pd.Series) -> pd.Series:
    """ISO 8601 texts → ``datetime64[ns, UTC]``; unparsable *and out-of-range* times → NaT.

    pandas parses years such as 9999 or -1 into a coarser unit; converting those to
    nanoseconds raised ``OutOfBoundsDatetime`` (found by fuzzing: a GPX/TCX whose ``<time>``
    says ``9999-12-31T23:59:59Z``). Times outside 1677-09-21 … 2262-04-11 cannot be a
    sample time and become NaT, like any other unparsable time.
    """
    parsed = pd.to_datetime(texts, utc=True, format="ISO8601", errors="coerce")
    in_range = (parsed >= _NS_MIN) & (parsed <= _NS_MAX)
    return parsed.where(in_range).dt.as_unit("ns")


def _utc_offset_minutes(time_texts: list[str]) -> int | None:
    """The UTC offset [min] written on the first time, when it is not ``Z`` (local time)."""
    if not time_texts:
        return None
    match = _UTC_OFFSET.search(time_texts[0].strip())
    if match is None:
        return None
    sign = -1 if match.group(1) == "-" else 1
    return sign * (int(match.group(2)) * 60 + int(match.group(3)))


def _group_tracks(frame: pd.DataFrame, tracks: list[_Track]) -> list[list[int]]:
    """Indices of tracks that form one activity each (see the module docstring)."""
    present = frame.groupby("_track", sort=True)["timestamp"].agg(["min", "max"])
    groups: list[list[int]] = []
    previous_end = None
    previous_sport = None
    for track_index, (start, end) in present.iterrows():  # one row per <trk>, not per sample
        sport = normalise_sport(tracks[track_index].sport_raw)
        gap_s = (start - previous_end).total_seconds() if previous_end is not None else None
        joinable = (
            bool(groups) and gap_s is not None and 0.0 <= gap_s <= MAX_TRACK_JOIN_GAP_S
            and (sport in _UNKNOWN_SPORTS or previous_sport in _UNKNOWN_SPORTS
                 or sport == previous_sport)
        )
        if joinable:
            groups[-1].append(int(track_index))
        else:
            groups.append([int(track_index)])
        previous_end = max(end, previous_end) if joinable else end
        if sport not in _UNKNOWN_SPORTS or not joinable:
            previous_sport = sport
    return groups


def _group_stats(tracks: list[_Track]) -> dict[str, float]:
    """File totals (TrackStatsExtension) summed over the joined tracks that all have them."""
    keys = set.intersection(*(set(t.stats) for t in tracks)) if tracks else set()
    return {key: float(sum(t.stats[key] for t in tracks)) for key in sorted(keys)}


def _segment_pauses(part: pd.DataFrame) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Gaps between consecutive segments (and joined tracks) as (end, next start), UTC."""
    segment = part["_segment"].to_numpy()
    boundary = np.flatnonzero(segment[1:] != segment[:-1]) + 1
    times = part["timestamp"]
    pauses = []
    for index in boundary:                      # one per segment boundary, not per sample
        stop, restart = times.iloc[index - 1], times.iloc[index]
        if restart > stop:
            pauses.append((stop, restart))
    return pauses


def _fix_sensor_values(part: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Heart rate 0 → NaN; strides/min cadence → steps/min (RULES.md §0)."""
    part = part.copy()
    hr = part["hr_bpm"]
    zero_hr = hr <= 0
    if zero_hr.any():
        part.loc[zero_hr, "hr_bpm"] = np.nan
        notes.append(f"{int(zero_hr.sum())} heart-rate value(s) of 0 read as 'no sensor'")
    cadence = part["cadence_spm"]
    nonzero = cadence[cadence > 0]
    if len(nonzero) and float(nonzero.median()) < STRIDES_PER_MIN_BELOW:
        part["cadence_spm"] = cadence * 2.0
        notes.append(f"cadence doubled: median {float(nonzero.median()):g}/min < "
                     f"{STRIDES_PER_MIN_BELOW:g} is strides/min, stored as steps/min")
    return part
