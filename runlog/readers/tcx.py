"""TCX (Garmin Training Center Database v2) reader: laps give the summary, trackpoints the samples.

Read by *local* element name, so any namespace prefix works (``ns3:TPX``, ``x:TPX``, a default
``xmlns`` on ``TPX``, or none), and undeclared prefixes are tolerated (see
:mod:`runlog.readers.xmlsafe`; ``runpandas/tests/io/data/tcx/malformed.tcx`` has no root
``TrainingCenterDatabase`` and an unbound ``xsi:`` prefix and is still read).

* ``Activities/Activity`` (``Sport`` attribute) → one Activity each; inside a
  ``MultiSportSession`` each ``Activity`` is a leg (``leg_index`` 0, 1, …). ``Courses`` only →
  ``SkippedFile``.
* ``Lap``: ``StartTime``, ``TotalTimeSeconds``, ``DistanceMeters``, ``MaximumSpeed``,
  ``Calories``, ``AverageHeartRateBpm/Value``, ``MaximumHeartRateBpm/Value``, ``Cadence``.
* ``Track/Trackpoint``: ``Time``, ``Position/LatitudeDegrees|LongitudeDegrees``,
  ``AltitudeMeters``, ``DistanceMeters``, ``HeartRateBpm/Value``, ``Cadence``, and the
  ``TPX`` extension's ``Speed``, ``RunCadence``, ``Watts``. Trackpoints **without a position
  are kept** (treadmill, indoor, or a fix lost for a moment); trackpoints without a valid
  ``Time`` cannot be placed and are dropped with a note.
* ``Creator/Name`` (+ ``ProductID``) → device, else ``Author/Name``.

Summary (the file's own totals, ``Activity.summary``): ``distance_m`` = Σ lap
``DistanceMeters``; ``timer_s`` = Σ lap ``TotalTimeSeconds``; ``calories_kcal`` = Σ lap
``Calories``; ``avg_hr_bpm`` = lap averages weighted by lap time; ``max_hr_bpm`` = max of lap
maxima; ``elapsed_s`` = last trackpoint − first trackpoint.

Start and elapsed time: Garmin writes the lap ``StartTime`` (= ``Id``) when the timer is
started and the first trackpoint when the first fix is logged, 0–6 s later in the corpus
(e.g. ``2020-12-02T06_08_29-300_Running.tcx``: lap 09:08:29, first trackpoint 09:08:34). The
catalogue, GPX exports of the same runs (``stopped_example.gpx`` / ``.tcx`` both start
08:54:28) and FIT ``record`` data all start at the first sample, so ``start_utc`` is the
first trackpoint and ``elapsed_s`` runs from there to the last trackpoint; both match the
catalogue exactly for all 20 corpus TCX files. Without trackpoints the lap times are used.

Cadence: in every corpus TCX with ``RunCadence`` (Garmin/Polar-style exports of runs) the
median is 87–91/min — strides of one foot (the cross-country-ski file: 42). ``RunCadence`` is
therefore always doubled to steps/min. Trackpoint ``Cadence`` (bike rpm in the schema, but
some exporters put run cadence there) follows the GPX rule: doubled when the median non-zero
value is below 120.

Pauses: a Garmin device starts a new ``<Track>`` inside the same ``<Lap>`` after the timer is
stopped and restarted; those gaps are ``Activity.pauses``. A new Track per lap is not a pause.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from runlog.activity import Activity, normalise_samples, sample_columns
from runlog.errors import SkippedFile
from runlog.readers.gpx import (
    GPS_EPOCH,
    STRIDES_PER_MIN_BELOW,
    columns_from_texts,
    drop_stray_times,
    parse_utc_times,
)
from runlog.readers.sport import normalise_sport
from runlog.readers.xmlsafe import XmlTruncatedError, events_until_cut

#: Trackpoint child (local name, parent local name) → collected field.
_TRACKPOINT_FIELDS: dict[tuple[str, str], str] = {
    ("Time", "Trackpoint"): "timestamp",
    ("LatitudeDegrees", "Position"): "lat_deg",
    ("LongitudeDegrees", "Position"): "lon_deg",
    ("AltitudeMeters", "Trackpoint"): "altitude_m",
    ("DistanceMeters", "Trackpoint"): "distance_m",
    ("Value", "HeartRateBpm"): "hr_bpm",
    ("Cadence", "Trackpoint"): "cadence_raw",
    ("Speed", "TPX"): "speed_mps",
    ("RunCadence", "TPX"): "run_cadence",
    ("Watts", "TPX"): "power_w",
}
_FIELDS = sorted(set(_TRACKPOINT_FIELDS.values()))
#: Lap child → lap field (numbers).
_LAP_FIELDS = {"TotalTimeSeconds": "timer_s", "DistanceMeters": "distance_m",
               "MaximumSpeed": "max_speed_mps", "Calories": "calories_kcal",
               "Cadence": "cadence"}


@dataclass
class _TcxActivity:
    """What one ``<Activity>`` element said, and where its trackpoints and tracks start."""

    sport_raw: str | None
    first_point: int
    leg_index: int | None
    end_point: int | None = None            # one past its last trackpoint, set at </Activity>
    session: int | None = None              # 1-based MultiSportSession number, else None
    activity_id: str | None = None
    device_name: str | None = None
    product_id: str | None = None
    notes_text: str | None = None
    lap_starts: list[str | None] = field(default_factory=list)
    laps: list[dict[str, float]] = field(default_factory=list)
    track_first_points: list[int] = field(default_factory=list)
    track_lap: list[int] = field(default_factory=list)


def read_tcx(data: bytes, name: str) -> list[Activity]:
    """Read a TCX file into one Activity per ``<Activity>`` (legs of a multisport session).

    Parameters
    ----------
    data : the file's bytes (already decompressed).
    name : the file name or archive member, used in errors and notes.

    Returns
    -------
    Activities with samples in SI units (degrees, metres, m/s, bpm, steps/min, W; UTC) and
    the laps' totals in ``summary`` (see the module docstring).

    Raises
    ------
    FileReadError : not XML, malformed, hostile (see ``xmlsafe``).
    SkippedFile : readable but holds no activity (courses, workouts or an empty database).
    """
    activities: list[_TcxActivity] = []
    author_name: str | None = None
    n_courses = 0
    n_multisport = 0
    in_multisport = False
    in_activity = False
    field_points: dict[str, list[int]] = {col: [] for col in _FIELDS}
    field_texts: dict[str, list[str]] = {col: [] for col in _FIELDS}
    n_points = 0
    in_point = False

    cuts: list[XmlTruncatedError] = []
    for event, local, path, element in events_until_cut(data, name, cuts):
        parent = path[-2] if len(path) > 1 else ""
        if event == "start":
            if local == "Trackpoint":
                in_point = True
            elif local == "Track" and in_activity:
                current = activities[-1]
                current.track_first_points.append(n_points)
                current.track_lap.append(len(current.laps) - 1)
            elif local == "Lap" and parent == "Activity" and in_activity:
                activities[-1].lap_starts.append(element.get("StartTime"))
                activities[-1].laps.append({})
            elif local == "Activity" and parent in ("Activities", "FirstSport", "NextSport", ""):
                session = n_multisport if in_multisport else None
                leg = (sum(1 for a in activities if a.session == session)
                       if session is not None else None)
                activities.append(_TcxActivity(sport_raw=_clean(element.get("Sport")),
                                               first_point=n_points, leg_index=leg,
                                               session=session))
                in_activity = True
            elif local == "MultiSportSession":
                in_multisport = True
                n_multisport += 1
            elif local == "Course":
                n_courses += 1
            continue
        # "end" events
        if in_point:
            if local == "Trackpoint":
                in_point = False
                n_points += 1
            else:
                column = _TRACKPOINT_FIELDS.get((local, parent))
                text = element.text
                if column is not None and text is not None:
                    field_points[column].append(n_points)
                    field_texts[column].append(text)
            continue
        if local == "Activity" and in_activity:
            in_activity = False
            activities[-1].end_point = n_points
        elif local == "MultiSportSession":
            in_multisport = False
        elif not in_activity:                 # Author, Courses, Workouts, Folders
            if local == "Name" and parent == "Author":
                author_name = _clean(element.text)
        elif parent == "Lap" and local in _LAP_FIELDS and activities[-1].laps:
            activities[-1].laps[-1][_LAP_FIELDS[local]] = _number(element.text)
        elif local == "Value" and parent in ("AverageHeartRateBpm", "MaximumHeartRateBpm") \
                and len(path) > 2 and path[-3] == "Lap" and activities[-1].laps:
            key = "avg_hr_bpm" if parent == "AverageHeartRateBpm" else "max_hr_bpm"
            activities[-1].laps[-1][key] = _number(element.text)
        elif parent == "Activity" and local == "Id":
            activities[-1].activity_id = _clean(element.text)
        elif parent == "Activity" and local == "Notes":
            activities[-1].notes_text = _clean(element.text)
        elif parent == "Creator" and local == "Name":
            activities[-1].device_name = _clean(element.text)
        elif parent == "Creator" and local == "ProductID":
            activities[-1].product_id = _clean(element.text)

    if not activities and cuts:
        raise cuts[0]
    if not activities:
        if n_courses:
            raise SkippedFile("no activities (course only)", path=name)
        raise SkippedFile("no activities in the TCX file", path=name)

    if cuts:
        # The parser closes what the cut left open, so the last trackpoint may hold half a
        # number: it is dropped, and so are activities that start after it.
        n_points = max(n_points - 1, 0)
        activities = [a for a in activities if a.first_point < n_points]
        if not activities:
            raise cuts[0]
        field_texts = {c: [t for i, t in zip(field_points[c], field_texts[c], strict=True)
                           if i < n_points] for c in field_texts}
        field_points = {c: [i for i in field_points[c] if i < n_points] for c in field_points}
        for parsed in activities:
            if parsed.end_point is not None:
                parsed.end_point = min(parsed.end_point, n_points)
    columns = columns_from_texts(n_points, field_points, field_texts)
    frame = pd.DataFrame(columns)
    results = []
    for parsed in activities:
        end_point = parsed.end_point if parsed.end_point is not None else n_points
        part = frame.iloc[parsed.first_point:end_point].reset_index(drop=True)
        track_starts = np.asarray(parsed.track_first_points, dtype=int) - parsed.first_point
        activity = _build_activity(parsed, part, track_starts, author_name)
        if cuts:
            activity.damaged = True
            activity.notes.append(f"file cut short ({cuts[0].reason}); imported the "
                                  f"{len(part)} trackpoints before the cut")
        results.append(activity)
    return results


def _clean(text: str | None) -> str | None:
    """Stripped text, or None when empty."""
    if text is None:
        return None
    text = text.strip()
    return text or None


def _number(text: str | None) -> float:
    """A lap value as float; NaN when missing or unparsable (laps are few: no bulk needed)."""
    value = pd.to_numeric(_clean(text), errors="coerce")
    return float(value) if value is not None and pd.notna(value) else float("nan")


def _build_activity(parsed: _TcxActivity, part: pd.DataFrame, track_starts: np.ndarray,
                    author_name: str | None) -> Activity:
    """Samples, summary, pauses and notes for one ``<Activity>``."""
    notes: list[str] = []
    n_points = len(part)
    point_track = (np.searchsorted(track_starts, np.arange(n_points), "right") - 1
                   if len(track_starts) else np.zeros(n_points, dtype=int))

    timestamps = part["timestamp"]
    good_time = (timestamps.notna() & (timestamps >= GPS_EPOCH)).to_numpy()
    if (~good_time).any():
        notes.append(f"{int((~good_time).sum())} trackpoint(s) without a valid time dropped")
    lat, lon = part["lat_deg"].to_numpy(), part["lon_deg"].to_numpy()
    bad_position = (np.isnan(lat) != np.isnan(lon)) | (np.abs(lat) > 90) | (np.abs(lon) > 180)
    if bad_position.any():
        notes.append(f"{int(bad_position.sum())} trackpoint position(s) out of range or "
                     "half-missing: position cleared, point kept")
        part = part.copy()
        part.loc[bad_position, ["lat_deg", "lon_deg"]] = np.nan
    part = part.loc[good_time].copy()
    point_track = point_track[good_time]
    part = part.reset_index(drop=True)
    kept, stray_notes = drop_stray_times(part.assign(_track=point_track))
    if stray_notes:
        notes += stray_notes
        point_track = kept.pop("_track").to_numpy()
        part = kept

    part["cadence_spm"] = _steps_per_minute(part, notes)
    hr = part["hr_bpm"]
    if (hr <= 0).any():
        notes.append(f"{int((hr <= 0).sum())} heart-rate value(s) of 0 read as 'no sensor'")
        part.loc[hr <= 0, "hr_bpm"] = np.nan

    lap_starts = parse_utc_times(pd.Series(parsed.lap_starts, dtype=object))
    summary = _lap_summary(parsed.laps)
    if len(part):
        start = part["timestamp"].iloc[0]
        summary["elapsed_s"] = float((part["timestamp"].iloc[-1] - start).total_seconds())
    elif lap_starts.notna().any():
        start = lap_starts.min()
        if "timer_s" in summary:
            last = lap_starts.notna().to_numpy().nonzero()[0][-1]
            lap_end = lap_starts.iloc[last] + pd.Timedelta(
                seconds=parsed.laps[last].get("timer_s", 0.0) or 0.0)
            summary["elapsed_s"] = float((lap_end - start).total_seconds())
        notes.append("no trackpoints: start and elapsed time from the laps")
    else:
        start = parse_utc_times(pd.Series([parsed.activity_id], dtype=object)).iloc[0]
        start = None if pd.isna(start) else start

    device = parsed.device_name or author_name
    if parsed.device_name and parsed.product_id:
        device = f"{parsed.device_name} ProductID={parsed.product_id}"
    samples = normalise_samples(part)
    return Activity(
        sample_columns(samples), source_format="tcx", sport=normalise_sport(parsed.sport_raw),
        sport_raw=parsed.sport_raw, device=device, start_utc=start, summary=summary,
        pauses=_track_pauses(samples, point_track, parsed.track_lap),
        name=parsed.notes_text, leg_index=parsed.leg_index, notes=notes,
    )


def _steps_per_minute(part: pd.DataFrame, notes: list[str]) -> pd.Series:
    """Cadence [steps/min]: RunCadence × 2; Trackpoint Cadence × 2 when its median < 120."""
    run_cadence = part["run_cadence"]
    if run_cadence.notna().any():
        notes.append("RunCadence doubled (TCX writes strides/min of one foot)")
        return run_cadence * 2.0
    cadence = part["cadence_raw"]
    nonzero = cadence[cadence > 0]
    if len(nonzero) and float(nonzero.median()) < STRIDES_PER_MIN_BELOW:
        notes.append(f"cadence doubled: median {float(nonzero.median()):g}/min < "
                     f"{STRIDES_PER_MIN_BELOW:g} is strides/min, stored as steps/min")
        return cadence * 2.0
    return cadence


def _lap_summary(laps: list[dict[str, float]]) -> dict[str, float]:
    """The file's own totals from its laps (see the module docstring)."""
    if not laps:
        return {}
    table = pd.DataFrame(laps)
    summary: dict[str, float] = {}
    for key in ("distance_m", "timer_s", "calories_kcal"):
        if key in table and table[key].notna().any():
            summary[key] = float(table[key].sum())
    if "max_hr_bpm" in table and table["max_hr_bpm"].notna().any():
        summary["max_hr_bpm"] = float(table["max_hr_bpm"].max())
    if "avg_hr_bpm" in table and table["avg_hr_bpm"].notna().any():
        with_hr = table.dropna(subset=["avg_hr_bpm"])
        weights = with_hr.get("timer_s")
        if weights is not None and weights.notna().all() and weights.sum() > 0:
            summary["avg_hr_bpm"] = float(np.average(with_hr["avg_hr_bpm"], weights=weights))
        else:
            summary["avg_hr_bpm"] = float(with_hr["avg_hr_bpm"].mean())
    return summary


def _track_pauses(samples: pd.DataFrame, point_track: np.ndarray,
                  track_lap: list[int]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Gaps between two ``<Track>`` elements of the same ``<Lap>`` (timer stop → start)."""
    if len(point_track) < 2:
        return []
    boundary = np.flatnonzero(point_track[1:] != point_track[:-1]) + 1
    times = samples["timestamp"]
    pauses = []
    for index in boundary:                      # one per track boundary, not per sample
        before, after = point_track[index - 1], point_track[index]
        same_lap = 0 <= before < len(track_lap) and 0 <= after < len(track_lap) \
            and track_lap[before] == track_lap[after]
        stop, restart = times.iloc[index - 1], times.iloc[index]
        if same_lap and restart > stop:
            pauses.append((stop, restart))
    return pauses
