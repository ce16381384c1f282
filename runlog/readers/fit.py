"""FIT reader (through fitparse): ``record`` messages give the samples, ``session`` the summary.

Decoding
    fitparse decodes message by message; this module only collects the raw field values it
    needs (timestamps stay integer seconds since the FIT epoch, positions stay semicircles) and
    converts whole columns at once with numpy/pandas. fitparse already maps each base type's
    "invalid" value (0xFF, 0x7FFFFFFF, ...) to None; None becomes NaN here, never a number.

Samples (``record``)
    ``timestamp`` → UTC; ``position_lat/long`` [semicircles] × 180 / 2³¹ → degrees;
    ``enhanced_altitude`` / ``enhanced_speed`` preferred over ``altitude`` / ``speed``;
    ``distance`` [m]; ``heart_rate`` [bpm]; ``temperature`` [°C]; ``power`` [W]. FIT running
    ``cadence`` is strides/min of one foot: for running, walking and hiking sessions
    ``cadence_spm`` = 2 × (``cadence`` + ``fractional_cadence``); cycling rpm is kept as is.

Metadata
    ``file_id`` (type, manufacturer, product) gives the device; a non-activity file type
    raises :class:`SkippedFile`. Each ``session`` gives one Activity (start_time exact, totals
    into ``summary``); without a session the ``sport`` message, then the ``lap`` messages, then
    the records stand in. ``activity.local_timestamp − timestamp`` (rounded to 15 min) is the
    time-zone offset. Timer ``event`` stop → start pairs are the pauses.

Multisport and chained files
    A file with several sessions yields one Activity per session (``leg_index`` 0, 1, …) with
    the records of its own chained FIT file (a new ``file_id``) from its start_time up to the
    next session's start_time (see :func:`_leg_window`); timer stop → start pairs that span a
    leg boundary are transitions, not pauses. A single session has ``leg_index`` None and keeps
    every record and pause.

Error policy (every problem leaves as FileReadError or SkippedFile, never anything else)
    * empty input, a bad header anywhere (also a chained file's), or nothing usable decoded
      → :class:`FileReadError` with a short reason and the byte offset reached.
    * CRC mismatch: the file is decoded again without the CRC check and imported **with a note**
      when it then decodes completely. The corpus' two bad-CRC files (fitparse
      ``activity-filecrc.fit``, ``activity-activity-filecrc.fit``) have a wrong footer CRC but
      sound data; fitdecode, too, imports them "ok-with-warnings" (catalogue ``fitdecode``).
    * Data cut short (EOF) or undecodable after some messages (e.g. a data message of an
      undefined local type): what decoded is imported with a note "file truncated after N
      records" / "file damaged after N records"; when no record and no session decoded the file
      fails.
    * COROS writes definition messages whose field size is not a multiple of the base type
      size (``coros-pace-2-cycling-misaligned-fields.fit``); fitparse 1.2 stops there, this
      reader reads such fields as plain bytes (ignored), as fitdecode and the FIT SDK do.
"""

from __future__ import annotations

import io
import os
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from fitparse import FitFile
from fitparse.processors import FitFileDataProcessor
from fitparse.profile import MESSAGE_TYPES
from fitparse.records import (
    BASE_TYPE_BYTE,
    BASE_TYPES,
    DefinitionMessage,
    DevFieldDefinition,
    FieldDefinition,
    get_dev_type,
)
from fitparse.utils import FitCRCError, FitEOFError, FitHeaderError, FitParseError

from runlog.activity import (
    FLOAT_SAMPLE_COLUMNS,
    Activity,
    SampleColumns,
    empty_samples,
    timestamps_ns,
    utc_from_ns,
)
from runlog.errors import FileReadError, RunlogError, SkippedFile
from runlog.readers.sport import normalise_sport

#: Seconds from the Unix epoch to the FIT epoch (1989-12-31T00:00:00Z).
FIT_EPOCH_UNIX_S = 631_065_600
#: FIT ``date_time`` values below this are seconds since device power-up, not absolute times.
FIT_MIN_ABSOLUTE_TIME_S = 0x10000000
#: Degrees per semicircle (2³¹ semicircles = 180°).
DEGREES_PER_SEMICIRCLE = 180.0 / 2**31
#: Normalised sports whose FIT cadence is strides/min of one foot (doubled to steps/min).
FOOT_SPORTS = frozenset({"running", "walking", "hiking"})
#: FIT sub_sport words that carry no information.
_EMPTY_SUB_SPORTS = frozenset({"generic", "all"})
#: Largest plausible |local − UTC| offset [min].
MAX_TZ_OFFSET_MIN = 14 * 60
#: Records further than this from the median record time are corrupt, not samples.
MAX_RECORD_SPREAD = pd.Timedelta(days=3)
#: A note is added when records begin this long before the session start_time [s].
RECORDS_BEFORE_START_NOTE_S = 60.0
_MAX_RECORD_SPREAD_NS = float(MAX_RECORD_SPREAD.value)
#: pandas' NaT as int64 nanoseconds.
_NAT_NS = np.iinfo(np.int64).min
_EARLIEST = pd.Timestamp.min.tz_localize("UTC")
_LATEST = pd.Timestamp.max.tz_localize("UTC")
#: FIT file header size of the shortest legal header [bytes].
FIT_HEADER_MIN_BYTES = 12

#: Record fields read, FIT name → internal column.
_RECORD_FIELDS: dict[str, str] = {
    "timestamp": "t_fit_s",
    "position_lat": "lat_semicircles",
    "position_long": "lon_semicircles",
    "enhanced_altitude": "enhanced_altitude",
    "altitude": "altitude",
    "enhanced_speed": "enhanced_speed",
    "speed": "speed",
    "distance": "distance_m",
    "heart_rate": "hr_bpm",
    "cadence": "cadence",
    "fractional_cadence": "fractional_cadence",
    "temperature": "temp_c",
    "power": "power_w",
}

#: Garmin products newer than fitparse 1.2's profile (FIT SDK ``garmin_product`` values).
_GARMIN_PRODUCTS_NEWER: dict[int, str] = {
    2158: "fr735xt", 2886: "fr645", 2888: "fr645m", 3076: "fr245", 3077: "fr245_music",
    3113: "fr945", 3121: "edge_530", 3122: "edge_830", 3226: "venu", 3282: "fr45",
    3287: "fenix6s_sport", 3288: "fenix6s", 3289: "fenix6_sport", 3290: "fenix6",
    3291: "fenix6x", 3589: "fr745", 3600: "venusq", 3638: "enduro", 3703: "venu2",
    3869: "fr55", 3905: "fenix7s", 3906: "fenix7", 3907: "fenix7x", 3943: "epix_gen2",
    3990: "fr255_music", 3992: "fr255", 4024: "fr955", 4257: "fr265_large",
    4258: "fr265_small", 4315: "fr965", 4432: "fr165", 4536: "fenix8",
}
_MANUFACTURER_NAMES: dict[str, str] = {
    "garmin": "Garmin", "dynastream": "Dynastream", "wahoo_fitness": "Wahoo",
    "coros": "COROS", "suunto": "Suunto", "polar": "Polar", "stryd": "Stryd",
    "zwift": "Zwift", "development": "Development", "strava": "Strava",
}
#: Manufacturers newer than fitparse 1.2's profile (FIT SDK ``manufacturer`` values).
_MANUFACTURERS_NEWER: dict[int, str] = {294: "coros"}
_PRODUCT_FAMILIES = re.compile(r"^(fenix|edge|venu|vivoactive|instinct|epix|enduro|marq)_?(\d)")


class _RawValues(FitFileDataProcessor):
    """Leave every value as decoded: times stay integer FIT seconds (converted in bulk here)."""

    def run_type_processor(self, field_data: Any) -> None:
        return None

    def run_field_processor(self, field_data: Any) -> None:
        return None

    def run_unit_processor(self, field_data: Any) -> None:
        return None

    def run_message_processor(self, data_message: Any) -> None:
        return None


class _TolerantFitFile(FitFile):
    """fitparse's FitFile, reading misaligned field definitions as bytes instead of failing.

    A field whose size is not a multiple of its base type size (seen in COROS files) is
    declared here as a ``byte`` field without profile meaning, so its bytes are consumed and
    the message's other fields still decode. Everything else is fitparse 1.2's own code path.
    """

    def _parse_definition_message(self, header: Any) -> DefinitionMessage:
        endian = ">" if self._read_struct("xB") else "<"
        global_mesg_num, num_fields = self._read_struct("HB", endian=endian)
        mesg_type = MESSAGE_TYPES.get(global_mesg_num)
        field_defs = []
        for _ in range(num_fields):
            field_def_num, field_size, base_type_num = self._read_struct("3B", endian=endian)
            profile_field = mesg_type.fields.get(field_def_num) if mesg_type else None
            base_type = BASE_TYPES.get(base_type_num, BASE_TYPE_BYTE)
            if field_size % base_type.size != 0:
                base_type, profile_field = BASE_TYPE_BYTE, None
            if profile_field and profile_field.components:
                for component in profile_field.components:
                    if component.accumulate:
                        accumulators = self._accumulators.setdefault(global_mesg_num, {})
                        accumulators[component.def_num] = 0
            field_defs.append(FieldDefinition(field=profile_field, def_num=field_def_num,
                                              base_type=base_type, size=field_size))
        dev_field_defs = []
        if header.is_developer_data:
            num_dev_fields = self._read_struct("B", endian=endian)
            for _ in range(num_dev_fields):
                field_def_num, field_size, dev_data_index = self._read_struct("3B",
                                                                              endian=endian)
                dev_field_defs.append(DevFieldDefinition(
                    field=get_dev_type(dev_data_index, field_def_num),
                    dev_data_index=dev_data_index, def_num=field_def_num, size=field_size))
        def_mesg = DefinitionMessage(header=header, endian=endian, mesg_type=mesg_type,
                                     mesg_num=global_mesg_num, field_defs=field_defs,
                                     dev_field_defs=dev_field_defs)
        self._local_mesgs[header.local_mesg_num] = def_mesg
        return def_mesg


@dataclass
class _Decoded:
    """What was decoded from one file, message by message (raw values)."""

    file_ids: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    record_part: list[int] = field(default_factory=list)   # chained-file index per record
    sessions: list[dict[str, Any]] = field(default_factory=list)
    session_part: list[int] = field(default_factory=list)
    # read only for a file without a session: runlog.readers.fastfit skips them otherwise
    laps: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    activity: dict[str, Any] | None = None
    sport: dict[str, Any] | None = None
    error: Exception | None = None
    error_offset: int | None = None


#: Set to "fitparse" to bypass the fast numpy decoder (a debugging escape hatch).
FIT_DECODER_ENV = "RUNLOG_FIT_DECODER"


def read_fit(data: bytes, name: str) -> list[Activity]:
    """Read one FIT file's bytes into Activities (one per session).

    Parameters
    ----------
    data : the whole file, already decompressed.
    name : the file name or archive member, used in errors and notes.

    Returns
    -------
    One :class:`Activity` per ``session`` (``leg_index`` 0, 1, … when there are several), or
    one built from laps/records when the file has no session.

    Raises
    ------
    FileReadError : empty, not FIT, bad header, or nothing usable decoded (with byte offset).
    SkippedFile : a FIT file that is not an activity, or an activity without any data.
    """
    if not data:
        raise FileReadError("empty file", path=name, offset=0)
    if len(data) < FIT_HEADER_MIN_BYTES:
        raise FileReadError(f"not a FIT file (only {len(data)} bytes, shorter than a header)",
                            path=name, offset=0)
    if os.environ.get(FIT_DECODER_ENV, "").lower() != "fitparse":
        # The numpy fast path gives identical Activities (tests/test_readers_fastfit.py) and
        # declines (None) anything it is not certain of; fitparse then reads it.
        from runlog.readers.fastfit import read_fit_fast

        fast = read_fit_fast(data, name)
        if fast is not None:
            return fast
    notes: list[str] = []
    decoded = _decode(data, check_crc=True)
    if isinstance(decoded.error, FitCRCError):
        crc_offset = decoded.error_offset
        decoded = _decode(data, check_crc=False)
        if decoded.error is None:
            notes.append("FIT file fails its CRC check (at byte "
                         f"{crc_offset}); imported because every message decoded, "
                         "but the data may be damaged")
        elif not isinstance(decoded.error, FitCRCError):
            notes.append("FIT file fails its CRC check")
    _check_file_type(decoded, name)
    if decoded.error is not None:
        _handle_error(decoded, name, notes)
    if not decoded.records and not decoded.sessions:
        raise SkippedFile("activity file without any records", path=name)
    damaged = bool(notes)  # so far only the checksum's and the decoding error's notes
    try:
        activities = _build_activities(decoded, name, notes)
        for activity in activities:
            activity.damaged = damaged
        return activities
    except RunlogError:
        raise
    except Exception as error:  # decoded values of an unexpected shape: never escape raw
        raise FileReadError(f"could not interpret FIT data ({type(error).__name__})",
                            path=name) from error


def _decode(data: bytes, check_crc: bool) -> _Decoded:
    """Decode every message fitparse can read; keep the first error and where it happened."""
    decoded = _Decoded()
    stream = io.BytesIO(data)
    part = -1
    try:
        fit = _TolerantFitFile(stream, check_crc=check_crc, data_processor=_RawValues())
        for message in fit.get_messages():
            kind = message.name
            if kind == "record":
                decoded.records.append({f.name: f.value for f in message.fields
                                        if f.name in _RECORD_FIELDS})
                decoded.record_part.append(part)
            elif kind == "file_id":
                part += 1
                decoded.file_ids.append(_values(message))
            elif kind == "session":
                decoded.sessions.append(_values(message))
                decoded.session_part.append(part)
            elif kind == "lap":
                decoded.laps.append(_values(message))
            elif kind == "event":
                decoded.events.append(_values(message))
            elif kind == "activity" and decoded.activity is None:
                decoded.activity = _values(message)
            elif kind == "sport" and decoded.sport is None:
                decoded.sport = _values(message)
    except Exception as error:  # fitparse raises many types on garbage; all handled below
        decoded.error = error
        decoded.error_offset = _stream_position(stream, len(data))
    return decoded


def _values(message: Any) -> dict[str, Any]:
    """A data message's profile fields as ``{name: value}`` (developer fields left out)."""
    return {f.name: f.value for f in message.fields
            if not isinstance(f.field_def, DevFieldDefinition)}


def _stream_position(stream: io.BytesIO, size: int) -> int:
    """Byte offset the decoder had reached (the file size when the stream was closed)."""
    try:
        return stream.tell()
    except ValueError:
        return size


def _check_file_type(decoded: _Decoded, name: str) -> None:
    """Raise SkippedFile when the first ``file_id`` names a type other than activity."""
    if not decoded.file_ids:
        return
    file_type = decoded.file_ids[0].get("type")
    if file_type is not None and file_type != "activity":
        raise SkippedFile(f"not an activity file ({file_type})", path=name)


def _handle_error(decoded: _Decoded, name: str, notes: list[str]) -> None:
    """Turn the decoding error into a FileReadError, or into a note when data is usable."""
    error, offset = decoded.error, decoded.error_offset
    if isinstance(error, FitHeaderError):
        start = 0 if not decoded.file_ids else max((offset or 0) - FIT_HEADER_MIN_BYTES, 0)
        raise FileReadError("not a FIT file (bad header)", path=name, offset=start)
    if isinstance(error, FitCRCError):
        raise FileReadError("FIT file fails its CRC check", path=name, offset=offset)
    usable = bool(decoded.sessions) or bool(decoded.records)
    if isinstance(error, FitEOFError):
        if not usable:
            raise FileReadError("truncated FIT file", path=name, offset=offset)
        notes.append(f"file truncated after {len(decoded.records)} records "
                     f"(at byte {offset}); imported what was there")
        return
    reason = _short_reason(error)
    if not usable:
        raise FileReadError(f"corrupt FIT data ({reason})", path=name, offset=offset)
    notes.append(f"file damaged after {len(decoded.records)} records ({reason}, at byte "
                 f"{offset}); imported what was there")


def _short_reason(error: Exception) -> str:
    """One short line naming what went wrong."""
    if isinstance(error, FitParseError):
        text = " ".join(str(error).split())
        return text[:120] if text else type(error).__name__
    if isinstance(error, struct.error | IndexError | KeyError | OverflowError):
        return f"undecodable message ({type(error).__name__})"
    return f"undecodable data ({type(error).__name__})"


def _fit_times(seconds: pd.Series | np.ndarray) -> pd.Series:
    """FIT ``date_time`` seconds → UTC timestamps; relative (power-up) times become NaT.

    The index is a fresh RangeIndex (callers build frames from positions).
    """
    return utc_from_ns(_fit_times_ns(seconds))


def _fit_times_ns(seconds: pd.Series | np.ndarray) -> np.ndarray:
    """FIT ``date_time`` seconds → int64 ns since the Unix epoch; relative times → NaT_NS."""
    raw = np.asarray(seconds, dtype="float64") if _is_float_array(seconds) else (
        pd.to_numeric(pd.Series(seconds), errors="coerce").to_numpy(dtype="float64"))
    raw = raw.copy()
    raw[~(raw >= FIT_MIN_ABSOLUTE_TIME_S)] = np.nan
    ns = (raw + FIT_EPOCH_UNIX_S) * 1e9
    return np.where(np.isnan(ns), _NAT_NS, ns).astype("int64")


def _is_float_array(values: object) -> bool:
    dtype = getattr(values, "dtype", None)
    return dtype is not None and dtype == np.float64


def _fit_time(value: Any) -> pd.Timestamp | None:
    """One FIT ``date_time`` value → UTC Timestamp, None when invalid or relative."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not value >= FIT_MIN_ABSOLUTE_TIME_S:
        return None
    return pd.Timestamp(int(value) + FIT_EPOCH_UNIX_S, unit="s", tz="UTC")


def _number(value: Any) -> float | None:
    """A finite float, or None (fitparse's None, tuples, strings, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if np.isfinite(number) else None


def _record_frame(decoded: _Decoded) -> pd.DataFrame:
    """All records as one frame: SI columns plus raw cadence, chained part and row order."""
    raw = pd.DataFrame.from_records(decoded.records, columns=list(_RECORD_FIELDS))
    raw = raw.rename(columns=_RECORD_FIELDS)
    numeric = {col: pd.to_numeric(raw[col], errors="coerce").astype("float64")
               for col in raw.columns if col != "t_fit_s"}
    frame = pd.DataFrame({"timestamp": _fit_times(raw["t_fit_s"])})
    lat = numeric["lat_semicircles"] * DEGREES_PER_SEMICIRCLE
    lon = numeric["lon_semicircles"] * DEGREES_PER_SEMICIRCLE
    bad_position = ~(lat.abs() <= 90) | ~(lon.abs() <= 180)
    frame["lat_deg"] = lat.mask(bad_position)
    frame["lon_deg"] = lon.mask(bad_position)
    frame["altitude_m"] = numeric["enhanced_altitude"].fillna(numeric["altitude"])
    frame["distance_m"] = numeric["distance_m"]
    frame["speed_mps"] = numeric["enhanced_speed"].fillna(numeric["speed"])
    frame["hr_bpm"] = numeric["hr_bpm"]
    frame["cadence_raw"] = numeric["cadence"]
    frame["fractional_cadence"] = numeric["fractional_cadence"]
    frame["temp_c"] = numeric["temp_c"]
    frame["power_w"] = numeric["power_w"]
    frame["part"] = np.asarray(decoded.record_part, dtype="int64")
    return frame


#: Record arrays: the columns of :func:`_record_frame` as numpy arrays (``timestamp`` as int64
#: ns, NaT_NS where relative or missing; ``part`` int64; the rest float64).
RecordArrays = dict[str, np.ndarray]


def _record_arrays(records: pd.DataFrame) -> RecordArrays:
    """The record frame's columns as :data:`RecordArrays` (the shape activities are cut from)."""
    arrays = {col: records[col].to_numpy() for col in records.columns}
    arrays["timestamp"] = timestamps_ns(records["timestamp"])
    return arrays


def _build_activities(decoded: _Decoded, name: str, notes: list[str],
                      records: RecordArrays | None = None) -> list[Activity]:
    """One Activity per session (or one from the fallbacks).

    ``records`` are the internal record arrays (:func:`_record_frame` columns as
    :data:`RecordArrays`); when None they are built from ``decoded.records``. A faster decoder
    can hand in its own arrays and reuse every rule below (legs, pauses, notes, summary).
    """
    if records is None:
        records = _record_arrays(
            _record_frame(decoded) if decoded.records else _record_frame_empty())
    # Row selection on the integer times (numpy), not on a frame: this runs per file.
    ts_ns = records["timestamp"]
    keep = ts_ns != _NAT_NS
    n_bad_time = int(len(keep) - keep.sum())
    if n_bad_time:
        notes = [*notes, f"{n_bad_time} record(s) without an absolute time (device clock "
                         "only) dropped"]
    if keep.any():
        median_ns = float(np.median(ts_ns[keep].astype("float64")))
        stray = keep & (np.abs(ts_ns.astype("float64") - median_ns) > _MAX_RECORD_SPREAD_NS)
        if stray.any():
            notes = [*notes, f"{int(stray.sum())} record(s) with a time more than "
                             f"{MAX_RECORD_SPREAD.days} days from the others dropped"]
            keep &= ~stray
    device = _device(decoded.file_ids[0] if decoded.file_ids else {})
    tz_offset = _tz_offset_min(decoded.activity)
    pauses = _timer_pauses(decoded.events)
    sessions = decoded.sessions
    if not sessions:
        activities = [_fallback_activity(decoded, records, np.flatnonzero(keep), device,
                                         tz_offset, pauses, notes)]
        return _placed(activities, name)
    legs = len(sessions) > 1
    starts = [_fit_time(session.get("start_time")) for session in sessions]
    record_part = records["part"]
    activities = []
    for index, session in enumerate(sessions):
        start = starts[index]
        lower, upper = _leg_window(index, starts, decoded.session_part)
        rows = np.flatnonzero(keep & (record_part == decoded.session_part[index])
                              & (ts_ns >= lower.value) & (ts_ns < upper.value))
        leg_notes = list(notes)
        first = pd.Timestamp(int(ts_ns[rows[0]]), tz="UTC") if len(rows) else None
        if start is None and first is not None:
            start = first
        elif start is not None and first is not None:
            lead_s = (start - first).total_seconds()
            if lead_s > RECORDS_BEFORE_START_NOTE_S:
                leg_notes.append(f"records begin {lead_s:.0f} s before the session start_time")
        sport_raw, sub_sport = _sport_words(session, decoded.sport)
        sport = normalise_sport(sport_raw)
        leg_pauses = [(stop, go) for stop, go in pauses if lower <= stop and go < upper]
        activities.append(Activity(
            _samples(records, rows, sport), source_format="fit", sport=sport,
            sub_sport=sub_sport, sport_raw=sport_raw, device=device, start_utc=start,
            tz_offset_min=tz_offset, summary=_session_summary(session, sport),
            pauses=leg_pauses, name=None, leg_index=index if legs else None,
            notes=leg_notes))
    return _placed(activities, name)


def _leg_window(index: int, starts: list[pd.Timestamp | None],
                parts: list[int]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[lower, upper) UTC window of session ``index`` among the sessions of its chained file.

    A leg runs from its start_time to the next leg's start_time; the first leg also takes the
    records before its start, the last one the records after its end (as a single session
    does). Sessions are never given each other's records, even when their own
    ``total_elapsed_time`` says they overlap (fenix 2 multisport: the first leg's elapsed time
    reaches 45 min past the next leg's start).
    """
    same_file = [i for i, part in enumerate(parts) if part == parts[index]]
    timed = sorted((starts[i], i) for i in same_file if starts[i] is not None)
    order = [i for _, i in timed]
    lower, upper = _EARLIEST, _LATEST
    if index in order:
        position = order.index(index)
        if position > 0:
            lower = starts[index]
        if position + 1 < len(order):
            upper = starts[order[position + 1]]
    return lower, upper


def _placed(activities: list[Activity], name: str) -> list[Activity]:
    """Keep the activities that have a UTC start; SkippedFile when none has one."""
    placed = [activity for activity in activities if activity.start_utc is not None]
    if not placed:
        raise SkippedFile("activity without an absolute start time (no UTC time in the "
                          "file: device-relative or missing timestamps)", path=name)
    return placed


def _record_frame_empty() -> pd.DataFrame:
    """An empty record frame with the internal columns."""
    frame = empty_samples(0)
    frame["cadence_raw"] = np.array([], dtype="float64")
    frame["fractional_cadence"] = np.array([], dtype="float64")
    frame["part"] = np.array([], dtype="int64")
    return frame


def _samples(records: RecordArrays, rows: np.ndarray, sport: str | None) -> SampleColumns:
    """The samples (:data:`SampleColumns`) of the record ``rows`` (positions) of one activity.

    Cadence becomes steps/min for foot sports (FIT counts one foot: 2 × (cadence +
    fractional_cadence)).
    """
    columns: SampleColumns = {"timestamp": records["timestamp"][rows]}
    for col in FLOAT_SAMPLE_COLUMNS:
        columns[col] = (records[col].astype("float64", copy=False)[rows] if col in records
                        else np.full(len(rows), np.nan))
    cadence = records["cadence_raw"].astype("float64", copy=False)[rows]
    if sport in FOOT_SPORTS:
        fraction = records["fractional_cadence"].astype("float64", copy=False)[rows]
        cadence = 2.0 * (cadence + np.where(np.isnan(fraction), 0.0, fraction))
    columns["cadence_spm"] = cadence
    return columns


def _sport_words(message: dict[str, Any],
                 sport_message: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(sport_raw, sub_sport) from a session/lap, else from the ``sport`` message."""
    sport_raw = message.get("sport")
    sub_sport = message.get("sub_sport")
    if sport_raw is None and sport_message:
        sport_raw = sport_message.get("sport")
        sub_sport = sub_sport if sub_sport is not None else sport_message.get("sub_sport")
    sport_text = None if sport_raw is None else str(sport_raw)
    sub_text = None if sub_sport is None else str(sub_sport)
    if sub_text in _EMPTY_SUB_SPORTS:
        sub_text = None
    return sport_text, sub_text


def _session_summary(session: dict[str, Any], sport: str | None) -> dict[str, float]:
    """The file's own totals in SI units, keys as documented on :class:`Activity`."""
    foot = sport in FOOT_SPORTS
    cadence = _number(session.get("avg_running_cadence"))
    if cadence is None:
        cadence = _number(session.get("avg_cadence"))
    if cadence is not None and foot:
        cadence = 2.0 * (cadence + (_number(session.get("avg_fractional_cadence")) or 0.0))
    candidates = {
        "distance_m": _number(session.get("total_distance")),
        "elapsed_s": _number(session.get("total_elapsed_time")),
        "timer_s": _number(session.get("total_timer_time")),
        "ascent_m": _number(session.get("total_ascent")),
        "descent_m": _number(session.get("total_descent")),
        "avg_hr_bpm": _number(session.get("avg_heart_rate")),
        "max_hr_bpm": _number(session.get("max_heart_rate")),
        "avg_cadence_spm": cadence,
        "calories_kcal": _number(session.get("total_calories")),
    }
    return {key: value for key, value in candidates.items() if value is not None}


def _fallback_activity(decoded: _Decoded, records: RecordArrays, rows: np.ndarray,
                       device: str | None, tz_offset: int | None,
                       pauses: list[tuple[pd.Timestamp, pd.Timestamp]],
                       notes: list[str]) -> Activity:
    """An activity file without a session: sport message, then laps, then records."""
    first_lap = decoded.laps[0] if decoded.laps else {}
    sport_raw, sub_sport = _sport_words(first_lap, decoded.sport)
    sport = normalise_sport(sport_raw)
    summary: dict[str, float] = {}
    start = None
    if decoded.laps and decoded.error is None:
        lap_frame = pd.DataFrame.from_records(decoded.laps)
        start = _fit_time(first_lap.get("start_time"))
        for key, column in (("distance_m", "total_distance"), ("elapsed_s", "total_elapsed_time"),
                            ("timer_s", "total_timer_time"), ("ascent_m", "total_ascent"),
                            ("descent_m", "total_descent"), ("calories_kcal", "total_calories")):
            if column in lap_frame:
                values = pd.to_numeric(lap_frame[column], errors="coerce")
                if values.notna().any():
                    summary[key] = float(values.sum())
        if "max_heart_rate" in lap_frame:
            max_hr = pd.to_numeric(lap_frame["max_heart_rate"], errors="coerce").max()
            if np.isfinite(max_hr):
                summary["max_hr_bpm"] = float(max_hr)
        source = "the laps"
    else:
        source = "the records" if decoded.error is None else "the records (file incomplete)"
        if decoded.laps:
            start = _fit_time(first_lap.get("start_time"))
    if start is None and len(rows):
        start = pd.Timestamp(int(records["timestamp"][int(rows[0])]), tz="UTC")
    return Activity(
        _samples(records, rows, sport), source_format="fit", sport=sport,
        sub_sport=sub_sport, sport_raw=sport_raw, device=device, start_utc=start,
        tz_offset_min=tz_offset,
        summary=summary, pauses=pauses, leg_index=None,
        notes=[*notes, f"no session message: start and totals from {source}"])


def _tz_offset_min(activity: dict[str, Any] | None) -> int | None:
    """``local_timestamp − timestamp`` of the ``activity`` message [min], to 15 min."""
    if not activity:
        return None
    local, utc = _number(activity.get("local_timestamp")), _number(activity.get("timestamp"))
    if local is None or utc is None or utc < FIT_MIN_ABSOLUTE_TIME_S:
        return None
    offset = round((local - utc) / 900.0) * 15
    return offset if abs(offset) <= MAX_TZ_OFFSET_MIN else None


def _timer_pauses(events: list[dict[str, Any]]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Timer stop → next timer start intervals (UTC), in file order."""
    pauses: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    stopped_at: pd.Timestamp | None = None
    for event in events:
        if event.get("event") != "timer":
            continue
        kind = str(event.get("event_type"))
        when = _fit_time(event.get("timestamp"))
        if when is None:
            continue
        if kind.startswith("stop"):
            stopped_at = stopped_at or when
        elif kind == "start" and stopped_at is not None:
            if when > stopped_at:
                pauses.append((stopped_at, when))
            stopped_at = None
    return pauses


def _device(file_id: dict[str, Any]) -> str | None:
    """"Garmin fenix 6"-style device name from ``file_id`` manufacturer and product."""
    manufacturer = file_id.get("manufacturer")
    if isinstance(manufacturer, int):
        manufacturer = _MANUFACTURERS_NEWER.get(manufacturer, manufacturer)
    product_name = file_id.get("product_name")
    if isinstance(product_name, str) and product_name.strip():
        return " ".join(product_name.split())
    product = file_id.get("garmin_product")
    if product is None:
        product = file_id.get("product")
    if isinstance(product, int) and manufacturer in ("garmin", "dynastream", "dynastream_oem"):
        product = _GARMIN_PRODUCTS_NEWER.get(product, product)
    maker = None
    if isinstance(manufacturer, str):
        maker = _MANUFACTURER_NAMES.get(manufacturer, manufacturer.replace("_", " ").title())
    elif manufacturer is not None:
        maker = f"manufacturer {manufacturer}"
    if isinstance(product, str):
        product_text = _PRODUCT_FAMILIES.sub(r"\1 \2", product)
        product_text = re.sub(r"^fr_?(\d)", r"Forerunner \1", product_text).replace("_", " ")
    elif product is not None:
        product_text = f"product {product}"
    else:
        product_text = None
    words = [w for w in (maker, product_text) if w]
    return " ".join(words) if words else None
