"""Fast FIT decoding: one Python step per message header, numpy for every ``record`` field.

Why
    fitparse builds Python objects for every field of every message (~5,000 records/s).
    An archive of years of runs holds millions of records. This module walks only the
    message *headers* in Python (one step per message, jumping by the known message size),
    groups the data messages by their definition layout, and decodes each field of all
    ``record`` messages of one layout at once (the bytes gathered with one numpy index and
    viewed as the field's dtype and byte order).

Contract
    :func:`read_fit_fast` returns exactly what :func:`runlog.readers.fit.read_fit` returns
    for the same bytes (same samples, summary, pauses, sport, device, notes), raises the same
    :class:`~runlog.errors.SkippedFile` for non-activity files, or returns ``None``
    ("declined") whenever the file is anything but clean and fully understood: bad or short
    header, CRC mismatch, truncation, a data message of an undefined local type, unknown base
    types, odd architecture bytes, developer fields fitparse could not resolve or whose name
    collides with a record field, accumulated components other than the 3-byte
    ``compressed_speed_distance`` (decoded here, roll-over and restarts included), a
    relevant field stored as an array, string or 64-bit type, and so on. The caller then
    falls back to fitparse, so the fast path can only make an import faster, never different.

    The interpretation of the decoded values (device names, session summary, pauses,
    time-zone offset, multisport legs, dropping relative/stray record times) is *shared*
    with :mod:`runlog.readers.fit`: this module produces the same raw values fitparse
    produces (field name → value after fitparse's subfield, component, enum and
    scale/offset rules) and hands them to ``fit._build_activities``; only fit.py's internal
    record frame is built here, from whole columns (a test asserts it is identical to
    ``fit._record_frame``). If fit.py starts reading other messages or record fields, this
    module declines until it is taught them.

Values (``record``, FIT profile, message 20)
    timestamp (253) uint32 [s since 1989-12-31T00:00:00Z]; position_lat/long (0/1) sint32
    [semicircles]; altitude (2) uint16 /5 − 500 [m] (also expands to enhanced_altitude);
    heart_rate (3) uint8 [bpm]; cadence (4) uint8 [rpm]; distance (5) uint32 /100 [m];
    speed (6) uint16 /1000 [m/s] (also expands to enhanced_speed); power (7) uint16 [W];
    temperature (13) sint8 [°C]; fractional_cadence (53) uint8 /128 [rpm];
    enhanced_speed (73) uint32 /1000 [m/s]; enhanced_altitude (78) uint32 /5 − 500 [m].
    Scales and offsets are read from :mod:`fitparse.profile` at run time, not copied here.
    Each base type's invalid value (0xFF uint8, 0x7F sint8, 0xFFFF uint16, 0x7FFF sint16,
    0xFFFFFFFF uint32, 0x7FFFFFFF sint32, 0 for the z types, NaN for floats) becomes NaN.

CRC
    Both the header CRC (14-byte headers; 0 means "not computed") and the file CRC of every
    chained file are checked (a mismatch declines: read_fit then imports the file with a
    note). The CRC (CRC-16/ARC, the FIT SDK's) is anycrc's C code: see :func:`crc16`.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass, field
from typing import Any

import anycrc
import numpy as np
from fitparse.profile import MESSAGE_TYPES
from fitparse.records import BASE_TYPE_BYTE, BASE_TYPES, BaseType

from runlog.activity import Activity
from runlog.errors import RunlogError, SkippedFile

__all__ = ["crc16", "read_fit_fast"]

#: Header sizes [bytes] this decoder accepts (fitparse accepts larger ones; we decline them).
FIT_HEADER_SIZES = (12, 14)
#: Offset of the ".FIT" signature in the file header [bytes].
FIT_SIGNATURE_OFFSET = 8
FIT_SIGNATURE = b".FIT"
#: Size of the CRC after each (chained) file's data [bytes].
FIT_CRC_BYTES = 2
#: Global message numbers (FIT profile ``mesg_num``).
MESG_FILE_ID = 0
MESG_SPORT = 12
MESG_SESSION = 18
MESG_LAP = 19
MESG_RECORD = 20
MESG_EVENT = 21
MESG_ACTIVITY = 34
MESG_FIELD_DESCRIPTION = 206
MESG_DEVELOPER_DATA_ID = 207
_DEV_DESCRIPTION_MESGS = (MESG_FIELD_DESCRIPTION, MESG_DEVELOPER_DATA_ID)
#: Metadata messages decoded one by one (they are few), as fit.read_fit collects them.
_METADATA_MESGS = frozenset({MESG_FILE_ID, MESG_SPORT, MESG_SESSION, MESG_LAP, MESG_EVENT,
                             MESG_ACTIVITY})
#: ``record`` field 8, compressed_speed_distance: 3 bytes, little-endian; bits 0–11 speed
#: [1/100 m/s], bits 12–23 distance [1/16 m] accumulated with 12-bit roll-over. Definitions
#: holding it restart the distance accumulator (fitparse, FIT SDK).
FIELD_COMPRESSED_SPEED_DISTANCE = 8
FIELD_DISTANCE = 5
COMPRESSED_SPEED_DISTANCE_BYTES = 3
#: Field number of ``timestamp`` in every message.
FIELD_TIMESTAMP = 253
#: Base types accepted for ``timestamp`` fields (uint32, uint32z); others are declined.
_TIMESTAMP_BASE_TYPES = (0x86, 0x8C)
#: Compressed-timestamp headers carry the low 5 bits of the time [s]; they roll over at 32 s.
COMPRESSED_TIME_BITS = 5
COMPRESSED_TIME_MASK = (1 << COMPRESSED_TIME_BITS) - 1
#: fit.py's record fields (fitparse name → its internal column); this module builds that
#: frame itself and declines if fit.py ever reads other fields.
_RECORD_FRAME_COLUMNS: dict[str, str] = {
    "timestamp": "t_fit_s", "position_lat": "lat_semicircles",
    "position_long": "lon_semicircles", "enhanced_altitude": "enhanced_altitude",
    "altitude": "altitude", "enhanced_speed": "enhanced_speed", "speed": "speed",
    "distance": "distance_m", "heart_rate": "hr_bpm", "cadence": "cadence",
    "fractional_cadence": "fractional_cadence", "temperature": "temp_c", "power": "power_w",
}
#: What fit.py's ``_Decoded`` holds; if it ever collects more, this module declines until
#: it collects the same (so a fast result can never miss something read_fit uses).
_DECODED_FIELDS = frozenset({"file_ids", "records", "record_part", "sessions", "session_part",
                             "laps", "events", "activity", "sport", "error", "error_offset"})

#: numpy dtype code per FIT base type (byte order added per definition); 64-bit and
#: string/byte types are deliberately absent: relevant fields of those types are declined.
_NUMPY_CODES: dict[int, str] = {
    0x00: "u1", 0x01: "i1", 0x02: "u1", 0x0A: "u1", 0x83: "i2", 0x84: "u2", 0x8B: "u2",
    0x85: "i4", 0x86: "u4", 0x8C: "u4", 0x88: "f4", 0x89: "f8",
}
#: Invalid ("no value") raw value per FIT base type; None marks floats (NaN is invalid).
_INVALID: dict[int, int | None] = {
    0x00: 0xFF, 0x01: 0x7F, 0x02: 0xFF, 0x0A: 0, 0x83: 0x7FFF, 0x84: 0xFFFF, 0x8B: 0,
    0x85: 0x7FFFFFFF, 0x86: 0xFFFFFFFF, 0x8C: 0, 0x88: None, 0x89: None,
}


class _Decline(Exception):
    """Internal: the fast path does not handle this file with certainty."""


# --- CRC ----------------------------------------------------------------------------------------

#: CRC-16/ARC (poly 0x8005 reflected, init 0, no final xor): the FIT SDK's file and header CRC.
_CRC16_ARC = anycrc.Model("CRC16-ARC")


def crc16(data: bytes | memoryview) -> int:
    """CRC-16 of ``data`` as the FIT SDK computes it (CRC-16/ARC), by anycrc's C code
    (~0.3 ms per MB; fitparse's per-byte Python loop takes ~1 s)."""
    return _CRC16_ARC.calc(data)


# --- definitions --------------------------------------------------------------------------------

@dataclass
class _FieldDef:
    """One field of a definition message, as fit.py's tolerant fitparse reads it."""

    num: int
    size: int
    base_num: int
    base: BaseType          # BASE_TYPE_BYTE when the size is not a multiple of the type size
    profile: Any            # fitparse profile Field, or None (unknown or misaligned)
    offset: int             # byte offset inside the data message


@dataclass
class _Layout:
    """A deduplicated definition: global message, byte order, fields, total size."""

    mesg_num: int
    big_endian: bool
    fields: list[_FieldDef]
    dev_fields: list[tuple[int, int, int, int]]   # (num, size, dev_data_index, offset)
    size: int
    mesg_type: Any = None
    #: True when parsing this definition restarts fitparse's record distance accumulator
    resets_distance: bool = False
    #: record producers per (developer field names, wanted names), computed once per layout
    producers: dict[tuple[frozenset[str], frozenset[str]], dict[str, tuple]] = field(
        default_factory=dict)
    #: how a whole data message's profile fields unpack (see :func:`_unpack_plan`)
    unpack_plan: tuple[struct.Struct, list[tuple[int, bool, Any]]] | None = None
    #: subfield candidates per profile field: [(subfield, field index, raw value)] in
    #: fitparse's order of trying them
    subfield_refs: dict[int, list[tuple[Any, int, Any]]] = field(default_factory=dict)

    @property
    def endian(self) -> str:
        return ">" if self.big_endian else "<"


def _parse_definition(body: bytes, has_dev: bool) -> _Layout:
    """Parse a definition message's bytes after its header byte; _Decline when odd."""
    architecture = body[1]
    if architecture not in (0, 1):
        raise _Decline(f"architecture byte {architecture}")
    big = architecture == 1
    mesg_num = int.from_bytes(body[2:4], "big" if big else "little")
    n_fields = body[4]
    mesg_type = MESSAGE_TYPES.get(mesg_num)
    fields: list[_FieldDef] = []
    offset = 0
    for i in range(n_fields):
        num, size, base_num = body[5 + 3 * i: 8 + 3 * i]
        if size == 0:
            raise _Decline("zero-size field")
        base = BASE_TYPES.get(base_num)
        if base is None:
            raise _Decline(f"unknown base type 0x{base_num:02X}")
        profile = mesg_type.fields.get(num) if mesg_type else None
        if num == FIELD_TIMESTAMP and base_num not in _TIMESTAMP_BASE_TYPES:
            raise _Decline("timestamp field not a 32-bit unsigned integer")
        if size % base.size:
            base, profile = BASE_TYPE_BYTE, None
        fields.append(_FieldDef(num, size, base_num, base, profile, offset))
        offset += size
    if len({f.num for f in fields}) != len(fields):
        raise _Decline("a field number defined twice")
    dev_fields: list[tuple[int, int, int, int]] = []
    if has_dev:
        start = 5 + 3 * n_fields
        for i in range(body[start]):
            num, size, index = body[start + 1 + 3 * i: start + 4 + 3 * i]
            if size == 0 or num == FIELD_TIMESTAMP:
                raise _Decline("odd developer field")
            dev_fields.append((num, size, index, offset))
            offset += size
    resets = mesg_num == MESG_RECORD and any(
        c.accumulate and c.def_num == FIELD_DISTANCE for f in fields if f.profile is not None
        for c in f.profile.components or ())
    return _Layout(mesg_num, big, fields, dev_fields, offset, mesg_type, resets)


#: Parsed definitions shared across files: an archive repeats the same few layouts. Keyed by
#: the definition's bytes (after its header byte, plus a developer flag) [entries].
_LAYOUT_CACHE_MAX = 4096
_LAYOUT_CACHE: dict[bytes, _Layout] = {}


def _layout_for(key: bytes, has_dev: bool) -> _Layout:
    """The (cached) layout of a definition's bytes; _Decline when odd (never cached)."""
    layout = _LAYOUT_CACHE.get(key)
    if layout is None:
        layout = _parse_definition(key, has_dev)
        if len(_LAYOUT_CACHE) >= _LAYOUT_CACHE_MAX:
            _LAYOUT_CACHE.clear()
        _LAYOUT_CACHE[key] = layout
    return layout


def _definition_length(data: bytes, pos: int) -> int:
    """Length of the definition message starting at ``pos`` (header byte included)."""
    length = 6 + 3 * data[pos + 5]
    if data[pos] & 0x20:
        length += 1 + 3 * data[pos + length]
    return length


# --- per-message decoding (metadata: few messages) -------------------------------------------

def _apply_scale_offset(profile: Any, raw: Any) -> Any:
    """fitparse's ``_apply_scale_offset``: value / scale − offset, element-wise on tuples."""
    if isinstance(raw, tuple):
        return tuple(_apply_scale_offset(profile, x) for x in raw)
    if isinstance(raw, int | float):
        if profile.scale:
            raw = float(raw) / profile.scale
        if profile.offset:
            raw = raw - profile.offset
    return raw


def _resolve_subfield(profile: Any, layout: _Layout, raws: list[Any]) -> tuple[Any, Any]:
    """fitparse's subfield rule: the first subfield whose reference field's raw value matches."""
    if not profile.subfields:
        return profile, None
    candidates = layout.subfield_refs.get(id(profile))
    if candidates is None:      # once per layout and field: which raw value picks which sub
        index_of = {fdef.num: i for i, fdef in enumerate(layout.fields)}
        candidates = [(sub, index_of[ref.def_num], ref.raw_value)
                      for sub in profile.subfields for ref in sub.ref_fields
                      if ref.def_num in index_of]
        layout.subfield_refs[id(profile)] = candidates
    for sub, index, raw_value in candidates:
        if raw_value == raws[index]:
            return sub, profile
    return profile, None


def _unpack_plan(layout: _Layout) -> tuple[struct.Struct, list[tuple[int, bool, Any]]]:
    """One ``struct.Struct`` for all profile fields of ``layout`` (contiguous from offset 0)
    and, per field, (values it unpacks to, byte type?, fitparse's parse function)."""
    codes = [layout.endian]
    fields = []
    for fdef in layout.fields:
        base = fdef.base
        if base.fmt == "s":     # a string unpacks to one bytes value
            codes.append(f"{fdef.size}s")
            fields.append((1, False, base.parse))
        else:
            codes.append(f"{fdef.size // base.size}{base.fmt}")
            fields.append((fdef.size // base.size, base.name == "byte", base.parse))
    return struct.Struct("".join(codes)), fields


def _raw_values(layout: _Layout, data: bytes, start: int) -> list[Any]:
    """Raw profile-field values of one data message as fitparse reads them (invalid → None).

    A byte array is parsed whole, other arrays value by value, single values alone (as
    fitparse does). Developer fields are not read: runlog never uses them from the messages
    decoded here.
    """
    if layout.unpack_plan is None:
        layout.unpack_plan = _unpack_plan(layout)
    whole, fields = layout.unpack_plan
    values = whole.unpack_from(data, start)
    raws: list[Any] = []
    at = 0
    for count, is_byte, parse in fields:
        if is_byte:
            raws.append(parse(values[at:at + count]))
        elif count == 1:
            raws.append(parse(values[at]))
        else:
            raws.append(tuple(parse(v) for v in values[at:at + count]))
        at += count
    return raws


def _message_fields(layout: _Layout, data: bytes, start: int,
                    timestamp: int | None) -> list[tuple[str, Any, Any, Any]]:
    """(name, value, raw, parent name) for each field, in fitparse's order (profile fields).

    Mirrors ``fitparse.base.FitFile._parse_data_message`` for messages without accumulated
    components; developer fields are left out (runlog never reads them from these messages).
    """
    raws = _raw_values(layout, data, start)
    out: list[tuple[str, Any, Any, Any]] = []
    for fdef, raw in zip(layout.fields, raws, strict=False):
        profile = fdef.profile
        if profile is None:
            out.append((f"unknown_{fdef.num}", raw, raw, None))
            continue
        profile, parent = _resolve_subfield(profile, layout, raws)
        for component in profile.components or ():
            try:
                cmp_raw = component.render(raw)
            except ValueError:
                continue
            if component.accumulate and cmp_raw is not None:
                raise _Decline("accumulated component in a metadata message")
            cmp_raw = _apply_scale_offset(component, cmp_raw)
            cmp_field = layout.mesg_type.fields[component.def_num]
            cmp_field, cmp_parent = _resolve_subfield(cmp_field, layout, raws)
            out.append((cmp_field.name, cmp_field.render(cmp_raw), cmp_raw,
                        cmp_parent.name if cmp_parent else None))
        out.append((profile.name, _apply_scale_offset(profile, profile.render(raw)), raw,
                    parent.name if parent else None))
    if timestamp is not None:
        out.append(("timestamp", timestamp, timestamp, None))
    return out


def _values(fields: list[tuple[str, Any, Any, Any]]) -> dict[str, Any]:
    """``{name: value}``, later fields winning, as fit.py's ``_values`` builds it."""
    return {name: value for name, value, _raw, _parent in fields}


def _raw_named(fields: list[tuple[str, Any, Any, Any]], name: str) -> Any:
    """fitparse's ``DataMessage.get_raw_value``: the first field named ``name`` (or parent)."""
    for field_name, _value, raw, parent in fields:
        if name in (field_name, parent):
            return raw
    return None


# --- the header walk -----------------------------------------------------------------------

#: Local slot → the header bytes of the data messages that address it: the normal headers
#: (bits 4–5 are free) and, for slots 0–3, the compressed-timestamp headers (5 bits of time).
_HEADERS_OF_SLOT: tuple[tuple[int, ...], ...] = tuple(
    tuple(h for h in range(0x40) if h & 0x0F == slot)
    + tuple(0x80 | slot << 5 | offset for offset in range(32) if slot < 4)
    for slot in range(16))
#: Bits of a definition message header.
_HEADER_DEFINITION = 0x40
_HEADER_COMPRESSED = 0x80
_HEADER_DEVELOPER = 0x20
_HEADER_LOCAL_MASK = 0x0F


@dataclass
class _Walk:
    """What the header walk found: every data message's offset and layout, in file order."""

    layouts: list[_Layout]
    positions: np.ndarray               # int64: each data message's header offset
    lids: np.ndarray                    # int64: each data message's layout (in ``layouts``)
    chain_starts: list[int]             # message index where each chained file starts
    dev_types: dict[Any, dict[int, tuple[BaseType, str]]]
    dev_names_by_layout: dict[int, set[str]]
    distance_resets: list[int]          # message index after each accumulator restart


def _walk(data: bytes) -> _Walk:
    """Walk every chained FIT file's headers; _Decline on anything unusual.

    One Python step per data message: a 256-entry table maps its header byte (normal or
    compressed-timestamp) straight to the message's size, the walk logs the offset and jumps
    (the table's entries for a slot change only when a definition gives the slot another
    layout). Definitions, developer_data_id and field_description messages (applied at once:
    fitparse resolves developer fields when it reads their definition, so the order matters)
    and undefined slots take the slow path. Each message's layout is looked up afterwards,
    in bulk, from its slot and the slot's layout at that point of the log.
    """
    total = len(data)
    layouts: list[_Layout] = []
    layout_ids: dict[bytes, int] = {}
    log: list[int] = []
    slot_changes: list[tuple[int, int, int]] = []   # (first message index, slot, layout id)
    chain_starts: list[int] = []
    dev_types: dict[Any, dict[int, tuple[BaseType, str]]] = {}
    dev_names_by_layout: dict[int, set[str]] = {}
    distance_resets: list[int] = []
    pos = 0
    while pos < total:
        end = _check_file_header(data, pos)
        chain_starts.append(len(log))
        local = [-1] * 16
        step_of = [0] * 256             # header byte → its message's size; 0: slow path
        append = log.append
        pos += data[pos]
        while pos < end:
            step = step_of[data[pos]]
            if step:
                append(pos)
                pos += step
                continue
            header = data[pos]
            if header & _HEADER_COMPRESSED or not header & _HEADER_DEFINITION:
                # a developer-description message, or a data message of an undefined slot
                slot = (header >> 5) & 0x3 if header & _HEADER_COMPRESSED else header & 0x0F
                lid = local[slot]
                if lid < 0:
                    raise _Decline("data message of an undefined local type")
                if layouts[lid].mesg_num in _DEV_DESCRIPTION_MESGS:
                    _register_dev_message(layouts[lid], data, pos + 1, dev_types)
                append(pos)
                pos += 1 + layouts[lid].size
                continue
            length = _definition_length(data, pos)
            has_dev = bool(header & _HEADER_DEVELOPER)
            key = data[pos + 1:pos + length] + (b"D" if has_dev else b"")
            lid = layout_ids.get(key)
            if lid is None:
                if pos + length > end:
                    raise _Decline("definition beyond the data")
                lid = len(layouts)
                layouts.append(_layout_for(key, has_dev))
                layout_ids[key] = lid
            layout = layouts[lid]
            if layout.resets_distance:
                distance_resets.append(len(log))
            if layout.dev_fields:
                names = _check_dev_fields(layout, dev_types)
                dev_names_by_layout.setdefault(lid, set()).update(names)
            slot = header & _HEADER_LOCAL_MASK
            if local[slot] != lid:
                local[slot] = lid
                slot_changes.append((len(log), slot, lid))
                # developer-description messages stay on the slow path, to be applied
                step = 0 if layout.mesg_num in _DEV_DESCRIPTION_MESGS else 1 + layout.size
                for data_header in _HEADERS_OF_SLOT[slot]:
                    step_of[data_header] = step
            pos += length
        if pos != end:
            raise _Decline("last message runs past the data size")
        pos = end + FIT_CRC_BYTES
    positions = np.asarray(log, dtype=np.int64)
    return _Walk(layouts, positions, _layouts_of(data, positions, slot_changes),
                 chain_starts, dev_types, dev_names_by_layout, distance_resets)


def _layouts_of(data: bytes, positions: np.ndarray,
                slot_changes: list[tuple[int, int, int]]) -> np.ndarray:
    """Each logged message's layout id: the layout its slot held when the walk reached it.

    ``slot_changes`` lists, in log order, from which message index on a slot holds a layout;
    the walk declined any message of a slot not yet defined in its chained file, so every
    message has an earlier change of its slot.
    """
    headers = np.frombuffer(data, dtype=np.uint8)[positions]
    slots = np.where(headers & _HEADER_COMPRESSED, (headers >> 5) & 0x3,
                     headers & _HEADER_LOCAL_MASK).astype(np.int64)
    changes = np.asarray(slot_changes, dtype=np.int64).reshape(-1, 3)
    # one sorted key per (slot, message index): a message's change is the last one at or
    # before its own key, found for all messages by one binary search
    span = len(positions) + 1
    change_keys = changes[:, 1] * span + changes[:, 0]
    order = np.argsort(change_keys, kind="stable")
    found = np.searchsorted(change_keys[order], slots * span + np.arange(len(positions)),
                            side="right") - 1
    change = order[np.maximum(found, 0)]
    if len(found) and ((found < 0) | (changes[change, 1] != slots)).any():
        raise _Decline("message before its definition")  # the walk never lets one through
    lids = changes[change, 2] if len(found) else np.zeros(0, dtype=np.int64)
    return lids


def _check_file_header(data: bytes, pos: int) -> int:
    """Check the (chained) file header and CRCs at ``pos``; return where its data end."""
    if len(data) - pos < FIT_HEADER_SIZES[0]:
        raise _Decline("short header")
    header_size = data[pos]
    if header_size not in FIT_HEADER_SIZES:
        raise _Decline(f"header size {header_size}")
    if data[pos + FIT_SIGNATURE_OFFSET:pos + FIT_SIGNATURE_OFFSET + 4] != FIT_SIGNATURE:
        raise _Decline("no .FIT signature")
    data_size = int.from_bytes(data[pos + 4:pos + 8], "little")
    if header_size == 14:
        header_crc = int.from_bytes(data[pos + 12:pos + 14], "little")
        if header_crc and header_crc != crc16(data[pos:pos + 12]):
            raise _Decline("header CRC mismatch")
    end = pos + header_size + data_size
    if end + FIT_CRC_BYTES > len(data):
        raise _Decline("file shorter than its header says")
    view = memoryview(data)[pos:end]
    if crc16(view) != int.from_bytes(data[end:end + FIT_CRC_BYTES], "little"):
        raise _Decline("file CRC mismatch")
    return end


def _register_dev_message(layout: _Layout, data: bytes, start: int,
                          dev_types: dict[Any, dict[int, tuple[BaseType, str]]]) -> None:
    """Apply one developer_data_id / field_description message, as fitparse does on reading it.

    Mirrors fitparse's ``add_dev_data_id`` / ``add_dev_field_description`` within this file
    (fitparse keeps them in a process-wide table; anything this file does not declare itself
    is declined here rather than guessed).
    """
    if layout.dev_fields:
        raise _Decline("developer fields inside developer definitions")
    fields = _message_fields(layout, data, start, None)
    index = _raw_named(fields, "developer_data_index")
    if layout.mesg_num == MESG_DEVELOPER_DATA_ID:
        dev_types[index] = {}
        return
    if index not in dev_types:
        raise _Decline("field description for an undeclared developer")
    base_id = _raw_named(fields, "fit_base_type_id")
    if base_id not in BASE_TYPES:
        raise _Decline("developer field of an unknown base type")
    num = _raw_named(fields, "field_definition_number")
    name = _raw_named(fields, "field_name") or f"unnamed_dev_field_{num}"
    dev_types[index][num] = (BASE_TYPES[base_id], name)


def _check_dev_fields(layout: _Layout,
                      dev_types: dict[Any, dict[int, tuple[BaseType, str]]]) -> set[str]:
    """Decline developer fields fitparse could not resolve or would misread; return names."""
    names: set[str] = set()
    for num, size, index, _offset in layout.dev_fields:
        known = dev_types.get(index, {}).get(num)
        if known is None:
            raise _Decline("developer field without a description in this file")
        base, name = known
        if size % base.size:
            raise _Decline("developer field size not a multiple of its type")
        names.add(str(name))
    return names


# --- timestamps ---------------------------------------------------------------------------------

def _field_column(data_np: np.ndarray, offsets: np.ndarray, layout: _Layout,
                  fdef: _FieldDef) -> tuple[np.ndarray, np.ndarray]:
    """One numeric field of many messages of ``layout``: (values, valid mask)."""
    code = _NUMPY_CODES.get(fdef.base_num)
    if code is None or fdef.size != fdef.base.size:
        raise _Decline(f"field {fdef.num} of an unsupported type or an array")
    width = fdef.size
    index = (offsets + fdef.offset)[:, None] + np.arange(width)
    raw = data_np[index].view(np.dtype(code).newbyteorder(layout.endian)).ravel()
    invalid = _INVALID[fdef.base_num]
    valid = ~np.isnan(raw) if invalid is None else raw != invalid
    return raw, valid


def _message_timestamps(data_np: np.ndarray, walk: _Walk, positions: np.ndarray,
                        lids: np.ndarray) -> np.ndarray:
    """Timestamp [FIT s] of every compressed-header message (−1 elsewhere), vectorised.

    fitparse keeps one accumulator per chained file: every message's valid ``timestamp``
    field sets it; a compressed header adds its 5-bit offset, rolling over when the offset
    is below the accumulator's low 5 bits. Within a run of compressed messages after an
    anchor A: t_j = (A & ~31) + 32 × (roll-overs so far) + offset_j.
    """
    n = len(positions)
    headers = data_np[positions]
    compressed = (headers & 0x80) != 0
    result = np.full(n, -1, dtype=np.int64)
    if not compressed.any():
        return result
    anchor = np.zeros(n, dtype=np.int64)
    is_anchor = np.zeros(n, dtype=bool)
    for lid in np.unique(lids):
        layout = walk.layouts[int(lid)]
        stamp = [f for f in layout.fields if f.num == FIELD_TIMESTAMP]
        if not stamp:
            continue
        sel = np.flatnonzero(lids == lid)
        if compressed[sel].any():
            raise _Decline("compressed header on a message with a timestamp field")
        raw, valid = _field_column(data_np, positions[sel] + 1, layout, stamp[0])
        anchor[sel[valid]] = raw[valid].astype(np.int64)
        is_anchor[sel[valid]] = True
    starts = np.asarray(walk.chain_starts, dtype=np.int64)
    marks = is_anchor.copy()
    marks[starts[starts < n]] = True            # the accumulator restarts at 0 in each file
    base_value = np.where(is_anchor, anchor, 0)
    group_start = np.maximum.accumulate(np.where(marks, np.arange(n), -1))
    value_at_start = np.where(group_start >= 0, base_value[np.maximum(group_start, 0)], 0)
    offsets = (headers & COMPRESSED_TIME_MASK).astype(np.int64)
    comp_idx = np.flatnonzero(compressed)
    groups = group_start[comp_idx]
    base = value_at_start[comp_idx]
    offs = offsets[comp_idx]
    prev_low = np.empty_like(offs)
    if len(offs):
        prev_low[0] = base[0] & COMPRESSED_TIME_MASK
        prev_low[1:] = offs[:-1]
        first = np.ones(len(offs), dtype=bool)
        first[1:] = groups[1:] != groups[:-1]
        prev_low[first] = base[first] & COMPRESSED_TIME_MASK
        roll = (offs < prev_low).astype(np.int64)
        cum = np.cumsum(roll)
        group_first_cum = np.maximum.accumulate(np.where(first, cum - roll, -1))
        rolls = cum - group_first_cum
        result[comp_idx] = ((base & ~COMPRESSED_TIME_MASK)
                            + (rolls << COMPRESSED_TIME_BITS) + offs)
    return result


# --- records in bulk ------------------------------------------------------------------------

def _record_producers(layout: _Layout, dev_names: set[str],
                      wanted: frozenset[str]) -> dict[str, tuple]:
    """For one record layout: runlog field name → how fitparse produces its value.

    Follows fitparse's field order (components before their field, later fields win) so the
    value is the one fit.py's ``{f.name: f.value}`` keeps. Entries are
    ``(field def, scale, offset, bit_offset, bits, kind)``, kind one of plain, component,
    packed (bits of compressed_speed_distance) and accumulate (its distance).
    """
    if dev_names & wanted:
        raise _Decline("developer field named like a record field")
    producers: dict[str, tuple] = {}
    for fdef in layout.fields:
        profile = fdef.profile
        if profile is None:
            continue
        for sub in profile.subfields or ():     # resolved per message by fitparse: decline
            names = {sub.name} | {layout.mesg_type.fields[c.def_num].name
                                  for c in sub.components or ()}
            if names & wanted:
                raise _Decline("record subfield producing a record value")
        for component in profile.components or ():
            cmp_field = layout.mesg_type.fields[component.def_num]
            if cmp_field.name not in wanted:
                continue
            if cmp_field.subfields or cmp_field.type.values or profile.subfields:
                raise _Decline("record component with subfields or enum values")
            kind = "component"
            if fdef.num == FIELD_COMPRESSED_SPEED_DISTANCE:
                if fdef.base.name != "byte" or fdef.size != COMPRESSED_SPEED_DISTANCE_BYTES:
                    raise _Decline("compressed_speed_distance of an unusual type or size")
                kind = "accumulate" if component.accumulate else "packed"
            elif component.accumulate:
                raise _Decline("accumulated record component")
            producers[cmp_field.name] = (fdef, component.scale, component.offset,
                                         component.bit_offset, component.bits, kind)
        if profile.name in wanted:
            if profile.subfields or profile.type.values:
                raise _Decline("record field with subfields or enum values")
            producers[profile.name] = (fdef, profile.scale, profile.offset, None, None, "plain")
    return producers


def _packed_column(data_np: np.ndarray, offsets: np.ndarray,
                   fdef: _FieldDef) -> tuple[np.ndarray, np.ndarray]:
    """A byte-array field read as one little-endian integer (fitparse's component rule);
    invalid when every byte is 0xFF."""
    index = (offsets + fdef.offset)[:, None] + np.arange(fdef.size)
    raw = data_np[index].astype(np.int64)
    valid = ~(raw == 0xFF).all(axis=1)
    return (raw << (8 * np.arange(fdef.size))).sum(axis=1), valid


def _accumulated_distance(data_np: np.ndarray, walk: _Walk, rec_msg: np.ndarray,
                          rec_pos: np.ndarray, rec_lid: np.ndarray,
                          field_of: dict[int, _FieldDef], spec: tuple) -> np.ndarray:
    """Distance [m] of every record carrying compressed_speed_distance, in file order.

    fitparse accumulates the 12-bit distance over all such records: each new value adds a
    roll-over of 4096 when it is below the previous one's low 12 bits; the accumulator
    restarts at 0 whenever a definition holding the field is read. NaN where invalid.
    """
    _fdef, scale, _offset, bit_offset, bits, _kind = spec
    carrying = np.isin(rec_lid, list(field_of))
    idx = np.flatnonzero(carrying)
    values = np.full(len(rec_pos), np.nan)
    if not len(idx):
        return values
    raw = np.zeros(len(idx), dtype=np.int64)
    valid = np.zeros(len(idx), dtype=bool)
    for lid, fdef in field_of.items():
        sel = np.flatnonzero(rec_lid[idx] == lid)
        packed, ok = _packed_column(data_np, rec_pos[idx[sel]] + 1, fdef)
        raw[sel] = (packed >> bit_offset) & ((1 << bits) - 1)
        valid[sel] = ok
    idx, raw = idx[valid], raw[valid]
    group = np.searchsorted(np.asarray(walk.distance_resets, dtype=np.int64),
                            rec_msg[idx], side="right")
    first = np.ones(len(idx), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    roll = np.zeros(len(idx), dtype=np.int64)
    roll[1:] = raw[1:] < raw[:-1]
    roll[first] = 0
    cum = np.cumsum(roll)
    rolls = cum - np.maximum.accumulate(np.where(first, cum, 0))
    values[idx] = ((rolls << bits) + raw) / float(scale)
    return values


def _produce(data_np: np.ndarray, offsets: np.ndarray, layout: _Layout,
             spec: tuple) -> np.ndarray:
    """float64 values (NaN for invalid) of one producer over many messages."""
    fdef, scale, offset, bit_offset, bits, kind = spec
    if kind == "packed":
        raw, valid = _packed_column(data_np, offsets, fdef)
    else:
        raw, valid = _field_column(data_np, offsets, layout, fdef)
    if bits is None:
        values = raw.astype(np.float64)
    else:
        if raw.dtype.kind == "f":
            raise _Decline("component of a float field")
        values = ((raw.astype(np.int64) >> bit_offset) & ((1 << bits) - 1)).astype(np.float64)
    if scale:
        values = values / float(scale)
    if offset:
        values = values - offset
    values[~valid] = np.nan
    return values


def _record_columns(data_np: np.ndarray, walk: _Walk, positions: np.ndarray,
                    lids: np.ndarray, timestamps: np.ndarray, is_record: np.ndarray,
                    names: list[str]) -> dict[str, np.ndarray]:
    """Record fields ``names`` (fitparse name → float64, NaN = no value), in file order."""
    rec_pos = positions[is_record]
    rec_lid = lids[is_record]
    rec_ts = timestamps[is_record]
    n = len(rec_pos)
    columns = {name: np.full(n, np.nan) for name in names}
    accumulating: dict[int, _FieldDef] = {}       # layout id → its compressed_speed_distance
    accumulate_spec: tuple | None = None
    winners: list[tuple[np.ndarray, str]] = []   # records whose value is the accumulated one
    order = np.argsort(rec_lid, kind="stable")
    uniq, first = np.unique(rec_lid[order], return_index=True)
    bounds = [*first.tolist(), n]
    for i, lid in enumerate(uniq.tolist()):
        sel = order[bounds[i]:bounds[i + 1]]
        layout = walk.layouts[lid]
        dev_names = frozenset(walk.dev_names_by_layout.get(lid, ()))
        cache_key = (dev_names, frozenset(names))
        producers = layout.producers.get(cache_key)
        if producers is None:
            producers = layout.producers[cache_key] = _record_producers(
                layout, set(dev_names), cache_key[1])
        offsets = rec_pos[sel] + 1
        for fdef in layout.fields:
            if fdef.num == FIELD_COMPRESSED_SPEED_DISTANCE and fdef.profile is not None:
                accumulating[lid] = fdef         # advances the accumulator, wins or not
        for name, spec in producers.items():
            if spec[-1] == "accumulate":
                accumulate_spec = spec
                winners.append((sel, name))
                continue
            columns[name][sel] = _produce(data_np, offsets, layout, spec)
        stamped = rec_ts[sel] >= 0
        if stamped.any():
            columns["timestamp"][sel[stamped]] = rec_ts[sel][stamped].astype(np.float64)
    if accumulating and accumulate_spec is None:
        accumulate_spec = next(s for lay in (walk.layouts[k] for k in accumulating)
                               for s in _distance_specs(lay))
    if accumulating:
        accumulated = _accumulated_distance(data_np, walk, np.flatnonzero(is_record), rec_pos,
                                            rec_lid, accumulating, accumulate_spec)
        for sel, name in winners:
            columns[name][sel] = accumulated[sel]
    return columns


def _distance_specs(layout: _Layout) -> list[tuple]:
    """The accumulated-distance component spec of a layout holding compressed_speed_distance."""
    return [(fdef, c.scale, c.offset, c.bit_offset, c.bits, "accumulate")
            for fdef in layout.fields
            if fdef.num == FIELD_COMPRESSED_SPEED_DISTANCE and fdef.profile is not None
            for c in fdef.profile.components or () if c.accumulate]


# --- the reader -------------------------------------------------------------------------------

def read_fit_fast(data: bytes, name: str) -> list[Activity] | None:
    """Read one FIT file's bytes like :func:`runlog.readers.fit.read_fit`, or decline.

    Parameters
    ----------
    data : the whole file, already decompressed.
    name : the file name or archive member, used in errors and notes.

    Returns
    -------
    The same Activities ``read_fit`` returns, or ``None`` when this decoder does not handle
    the file with certainty (the caller then uses ``read_fit``).

    Raises
    ------
    SkippedFile : exactly where ``read_fit`` raises it for a cleanly decoded file
        (non-activity file type, no records and no session, no absolute start time).
    """
    try:
        from runlog.readers import fit as fit_module
    except ImportError:     # the fitparse reader is the reference: without it, decline
        return None
    try:
        return _read(data, name, fit_module)
    except _Decline:
        return None
    except RunlogError:
        raise
    except Exception:  # anything unforeseen: decline, fitparse decides (never fail here)
        return None


def _read(data: bytes, name: str, fit_module: Any) -> list[Activity]:
    """Decode (raises _Decline) and build the activities with fit.py's own rules."""
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if len(data) < FIT_HEADER_SIZES[0]:
        raise _Decline("shorter than a FIT header")
    if {f.name for f in dataclasses.fields(fit_module._Decoded)} != _DECODED_FIELDS:
        raise _Decline("fit.py collects other messages than this module knows")
    walk = _walk(data)
    data_np = np.frombuffer(data, dtype=np.uint8)
    positions, lids = walk.positions, walk.lids
    mesg_nums = np.array([lay.mesg_num for lay in walk.layouts], dtype=np.int64)[lids] \
        if walk.layouts else np.zeros(0, dtype=np.int64)
    timestamps = _message_timestamps(data_np, walk, positions, lids)
    is_record = mesg_nums == MESG_RECORD
    part_of_message = np.cumsum(mesg_nums == MESG_FILE_ID) - 1

    decoded = fit_module._Decoded()
    wanted = _METADATA_MESGS
    if (mesg_nums == MESG_SESSION).any():
        # fit.py reads laps only for a file without a session (its fallback summary)
        wanted = wanted - {MESG_LAP}
    meta_idx = np.flatnonzero(np.isin(mesg_nums, list(wanted)))
    for i in meta_idx.tolist():
        layout = walk.layouts[int(lids[i])]
        stamp = int(timestamps[i]) if timestamps[i] >= 0 else None
        values = _values(_message_fields(layout, data, int(positions[i]) + 1, stamp))
        kind = layout.mesg_num
        if kind == MESG_FILE_ID:
            decoded.file_ids.append(values)
        elif kind == MESG_SESSION:
            decoded.sessions.append(values)
            decoded.session_part.append(int(part_of_message[i]))
        elif kind == MESG_LAP:
            decoded.laps.append(values)
        elif kind == MESG_EVENT:
            decoded.events.append(values)
        elif kind == MESG_ACTIVITY and decoded.activity is None:
            decoded.activity = values
        elif kind == MESG_SPORT and decoded.sport is None:
            decoded.sport = values

    fit_module._check_file_type(decoded, name)
    n_records = int(is_record.sum())
    if not n_records and not decoded.sessions:
        raise SkippedFile("activity file without any records", path=name)
    if dict(fit_module._RECORD_FIELDS) != _RECORD_FRAME_COLUMNS:
        raise _Decline("fit.py reads other record fields than this module knows")
    names = list(_RECORD_FRAME_COLUMNS)
    columns = _record_columns(data_np, walk, positions, lids, timestamps, is_record, names)
    records = _record_arrays(columns, part_of_message[is_record], fit_module)
    return fit_module._build_activities(decoded, name, [], records=records)


def _record_arrays(columns: dict[str, np.ndarray], parts: np.ndarray,
                   fit_module: Any) -> dict[str, np.ndarray]:
    """fit.py's internal record arrays (its ``_record_frame`` columns as ``RecordArrays``).

    Same rules as ``runlog.readers.fit._record_frame``: FIT times → UTC (relative times NaT),
    semicircles → degrees with impossible positions dropped, enhanced_* preferred, raw
    cadence kept for the sport-dependent doubling. Plain arrays, no frame (a test checks
    they equal the arrays of fit.py's frame).
    """
    lat = columns["position_lat"] * fit_module.DEGREES_PER_SEMICIRCLE
    lon = columns["position_long"] * fit_module.DEGREES_PER_SEMICIRCLE
    with np.errstate(invalid="ignore"):
        bad_position = ~(np.abs(lat) <= 90) | ~(np.abs(lon) <= 180)
    altitude = columns["enhanced_altitude"]
    speed = columns["enhanced_speed"]
    return {
        "timestamp": fit_module._fit_times_ns(columns["timestamp"]),
        "lat_deg": np.where(bad_position, np.nan, lat),
        "lon_deg": np.where(bad_position, np.nan, lon),
        "altitude_m": np.where(np.isnan(altitude), columns["altitude"], altitude),
        "distance_m": columns["distance"],
        "speed_mps": np.where(np.isnan(speed), columns["speed"], speed),
        "hr_bpm": columns["heart_rate"],
        "cadence_raw": columns["cadence"],
        "fractional_cadence": columns["fractional_cadence"],
        "temp_c": columns["temperature"],
        "power_w": columns["power"],
        "part": np.asarray(parts, dtype="int64"),
    }
