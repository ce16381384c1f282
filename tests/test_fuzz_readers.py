"""Fuzzing the readers and sources: never crash, never hang, never blow up memory.

Every input is a *mutation of a real file* (``tests/data``: copies of corpus files from
python-fitparse, runpandas and workoutizer). A mutation is chosen by name and driven by a seeded
``random.Random``, so hypothesis only draws (seed file, mutation, integer seed) and any
failure is reproduced exactly from those three values. The same generators are run for minutes
by ``benchmarks/fuzz_long.py``.

Contract checked for every input (:func:`check_read`):

* ``read_activities(data, fmt, name)`` returns a list of :class:`~runlog.activity.Activity`
  (each with a UTC start and a samples frame), or raises a
  :class:`~runlog.errors.RunlogError` subclass whose ``reason`` is one line and whose ``path``
  is the file name — never any other exception;
* it finishes within :data:`TIME_LIMIT_S` (enforced with ``SIGALRM``) and allocates at most
  :data:`MEMORY_LIMIT_BYTES` at peak (``tracemalloc``, which numpy reports to);
* when the reader returns activities, ``runlog.importer.process_file`` (metrics, run rows)
  returns a ``FileOutcome`` with a one-line reason and never raises;
* FIT: the numpy fast path (``runlog.readers.fastfit``) declines the input or gives exactly
  what the fitparse reader gives (:func:`fit_differential`).

Archives (:func:`check_source`): gzip and zip mutations read through
:mod:`runlog.sources` yield bytes or a one-line :class:`~runlog.errors.FileReadError` naming
the file; discovery of a damaged archive never raises anything else.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import random
import re
import signal
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runlog.activity import Activity
from runlog.errors import FileReadError, RunlogError
from runlog.importer import FAILED, NEW, SKIPPED, process_file
from runlog.readers import read_activities
from runlog.sources import Ignored, SourceFile, discover, gunzip_bounded

DATA = Path(__file__).resolve().parent / "data"
#: Longest time one input may take to read (and process) [s].
TIME_LIMIT_S = 5.0
#: Largest peak of traced allocations while reading one input [bytes].
MEMORY_LIMIT_BYTES = 200 * 2**20
#: Examples per hypothesis test in CI (the whole module stays well under a minute).
CI_EXAMPLES = 50


# --- seeds: small real files ------------------------------------------------------------------

def _load(relative: str) -> bytes:
    raw = (DATA / relative).read_bytes()
    return gzip.decompress(raw) if relative.endswith(".gz") else raw


def _first_points(data: bytes, element: bytes, keep: int) -> bytes:
    """The file with only its first ``keep`` ``element``s (a smaller, still real, seed)."""
    points = list(re.finditer(rb"<" + element + rb"[ >].*?</" + element + rb">\s*", data, re.S))
    if len(points) <= keep:
        return data
    return data[:points[keep].start()] + data[points[-1].end():]


#: name → (bytes, format): small real files of every format.
SEEDS: dict[str, tuple[bytes, str]] = {
    "Activity.fit": (_load("fit/Activity.fit"), "fit"),
    "garmin-fenix-5-run.fit": (_load("fit/garmin-fenix-5-run.fit"), "fit"),
    "edge200.fit": (_load("fit/edge200-2015-10-13-08-43-15.fit"), "fit"),
    "garmin_connect.gpx": (_load("gpx/garmin_connect.gpx"), "gpx"),
    "opentracks.gpx": (_first_points(_load("gpx/opentracks_bc_cadzand_bad.gpx.gz"), b"trkpt",
                                     60), "gpx"),
    "run_garmin.tcx": (_first_points(_load("tcx/run_garmin.tcx.gz"), b"Trackpoint", 60), "tcx"),
}
FIT_SEEDS = [n for n, (_, f) in SEEDS.items() if f == "fit"]
XML_SEEDS = [n for n, (_, f) in SEEDS.items() if f != "fit"]


# --- FIT layout: where the boundaries are ------------------------------------------------------

@dataclass
class FitMessage:
    """One FIT message: [start, end) in the file, and its kind."""

    start: int
    end: int
    definition: bool
    field_offsets: tuple[int, ...] = ()   # byte offset of each field definition (3 bytes)


@dataclass
class FitLayout:
    """Header size, declared data size, messages and the CRC position of a FIT file."""

    header_size: int
    data_size: int
    messages: list[FitMessage]
    crc_at: int


def fit_layout(data: bytes) -> FitLayout:
    """Walk a well-formed FIT file's messages (seed files only; no error handling needed)."""
    header_size = data[0]
    data_size = struct.unpack_from("<I", data, 4)[0]
    end = header_size + data_size
    sizes: dict[int, int] = {}
    messages: list[FitMessage] = []
    pos = header_size
    while pos < end:
        header = data[pos]
        if header & 0x80:                                  # compressed timestamp header
            local = (header >> 5) & 0x3
            messages.append(FitMessage(pos, pos + 1 + sizes[local], False))
        elif header & 0x40:                                # definition message
            n_fields = data[pos + 5]
            offsets = tuple(pos + 6 + 3 * i for i in range(n_fields))
            size = sum(data[o + 1] for o in offsets)
            q = pos + 6 + 3 * n_fields
            if header & 0x20:                              # developer fields
                n_dev = data[q]
                size += sum(data[q + 1 + 3 * i + 1] for i in range(n_dev))
                q += 1 + 3 * n_dev
            sizes[header & 0x0F] = size
            messages.append(FitMessage(pos, q, True, offsets))
        else:
            local = header & 0x0F
            messages.append(FitMessage(pos, pos + 1 + sizes[local], False))
        pos = messages[-1].end
    return FitLayout(header_size, data_size, messages, end)


def fit_crc(data: bytes) -> int:
    """CRC-16 of the FIT SDK (for building files whose CRC is right but content is not)."""
    table = (0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401,
             0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400)
    crc = 0
    for byte in data:
        tmp = table[crc & 0xF]
        crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ table[byte & 0xF]
        tmp = table[crc & 0xF]
        crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ table[(byte >> 4) & 0xF]
    return crc


def _with_good_crc(data: bytearray) -> bytes:
    """``data`` with its file CRC recomputed, so the damage is seen by the decoder itself."""
    header_size = data[0]
    data_size = struct.unpack_from("<I", data, 4)[0]
    end = header_size + data_size
    if header_size >= 12 and end + 2 <= len(data):
        struct.pack_into("<H", data, end, fit_crc(bytes(data[:end])))
    return bytes(data)


# --- mutations ---------------------------------------------------------------------------------
# Each takes the seed bytes and a seeded Random and returns the mutated bytes.

Mutation = Callable[[bytes, random.Random], bytes]
FIT_MUTATIONS: dict[str, Mutation] = {}
XML_MUTATIONS: dict[str, Mutation] = {}
ANY_MUTATIONS: dict[str, Mutation] = {}


def _register(table: dict[str, Mutation]) -> Callable[[Mutation], Mutation]:
    def deco(fn: Mutation) -> Mutation:
        table[fn.__name__.removeprefix("_")] = fn
        return fn
    return deco


def _flip(data: bytearray, at: int, rng: random.Random) -> None:
    data[at] ^= rng.randrange(1, 256)


@_register(ANY_MUTATIONS)
def _truncate_anywhere(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(1, len(data))]


@_register(ANY_MUTATIONS)
def _flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 2, 4, 16))):
        _flip(out, rng.randrange(len(out)), rng)
    return bytes(out)


@_register(ANY_MUTATIONS)
def _splice(data: bytes, rng: random.Random) -> bytes:
    """Repeat, drop or move a random chunk (chained files, lost blocks, duplicated sectors)."""
    a, b = sorted(rng.randrange(len(data)) for _ in range(2))
    chunk = data[a:b]
    kind = rng.randrange(3)
    if kind == 0:
        return data[:b] + chunk + data[b:]
    if kind == 1:
        return data[:a] + data[b:] or data[:1]
    at = rng.randrange(len(data))
    return data[:at] + chunk + data[at:]


@_register(FIT_MUTATIONS)
def _truncate_in_header(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(1, data[0] + 1)]


@_register(FIT_MUTATIONS)
def _truncate_in_first_definition(data: bytes, rng: random.Random) -> bytes:
    first = next(m for m in fit_layout(data).messages if m.definition)
    return data[:rng.randrange(first.start, first.end + 1)]


@_register(FIT_MUTATIONS)
def _truncate_mid_record(data: bytes, rng: random.Random) -> bytes:
    records = [m for m in fit_layout(data).messages if not m.definition and m.end - m.start > 2]
    message = rng.choice(records)
    return data[:rng.randrange(message.start + 1, message.end)]


@_register(FIT_MUTATIONS)
def _truncate_at_message_boundary(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.choice(fit_layout(data).messages).start]


@_register(FIT_MUTATIONS)
def _truncate_in_crc(data: bytes, rng: random.Random) -> bytes:
    return data[:fit_layout(data).crc_at + rng.randrange(2)]


@_register(FIT_MUTATIONS)
def _wrong_crc(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    layout = fit_layout(data)
    at = layout.crc_at if rng.random() < 0.7 or layout.header_size < 14 else 12
    struct.pack_into("<H", out, at, rng.randrange(1, 65536) ^ struct.unpack_from("<H", out, at)[0])
    return bytes(out)


@_register(FIT_MUTATIONS)
def _header_data_size(data: bytes, rng: random.Random) -> bytes:
    """Declared data size huge, zero, one off, or random."""
    out = bytearray(data)
    size = struct.unpack_from("<I", out, 4)[0]
    value = rng.choice((0xFFFFFFFF, 0x7FFFFFFF, 0, 1, size - 1, size + 1, size * 2,
                        rng.randrange(2**32)))
    struct.pack_into("<I", out, 4, value % 2**32)
    return bytes(out)


@_register(FIT_MUTATIONS)
def _header_size_odd(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    out[0] = rng.choice((0, 1, 11, 13, 15, 16, 255, rng.randrange(256)))
    return bytes(out)


@_register(FIT_MUTATIONS)
def _header_fields(data: bytes, rng: random.Random) -> bytes:
    """Protocol/profile version, the '.FIT' signature or the header CRC damaged."""
    out = bytearray(data)
    _flip(out, rng.choice((1, 2, 3, 8, 9, 10, 11, 12, 13)) % len(out), rng)
    return bytes(out)


@_register(FIT_MUTATIONS)
def _definition_field_size(data: bytes, rng: random.Random) -> bytes:
    """A field size of 0, 1, 255 or random in some definition (CRC kept right)."""
    out = bytearray(data)
    definitions = [m for m in fit_layout(data).messages if m.definition and m.field_offsets]
    for message in rng.sample(definitions, min(len(definitions), rng.choice((1, 1, 3)))):
        field_at = rng.choice(message.field_offsets)
        out[field_at + 1] = rng.choice((0, 1, 255, rng.randrange(256)))
    return _with_good_crc(out)


@_register(FIT_MUTATIONS)
def _definition_structure(data: bytes, rng: random.Random) -> bytes:
    """Field count, base type, architecture or global number damaged (CRC kept right)."""
    out = bytearray(data)
    message = rng.choice([m for m in fit_layout(data).messages if m.definition])
    what = rng.randrange(4)
    if what == 0:
        out[message.start + 5] = rng.choice((0, 255, rng.randrange(256)))
    elif what == 1 and message.field_offsets:
        out[rng.choice(message.field_offsets) + 2] = rng.randrange(256)
    elif what == 2:
        out[message.start + 2] = rng.choice((1, 2, 255))
    else:
        struct.pack_into("<H", out, message.start + 3, rng.randrange(65536))
    return _with_good_crc(out)


@_register(FIT_MUTATIONS)
def _undefined_local_type(data: bytes, rng: random.Random) -> bytes:
    """A data message header pointing at a local type never defined (CRC kept right)."""
    out = bytearray(data)
    message = rng.choice([m for m in fit_layout(data).messages if not m.definition])
    out[message.start] = rng.choice((0x0F, 0x0E, 0x60 | 0x80, rng.randrange(0x40)))
    return _with_good_crc(out)


@_register(FIT_MUTATIONS)
def _flip_in_records(data: bytes, rng: random.Random) -> bytes:
    """Random values inside data messages (times, positions, sizes) with a right CRC."""
    out = bytearray(data)
    messages = [m for m in fit_layout(data).messages if not m.definition and m.end - m.start > 1]
    for _ in range(rng.choice((1, 4, 32))):
        message = rng.choice(messages)
        at = rng.randrange(message.start + 1, message.end)
        out[at] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    return _with_good_crc(out)


# XML: values replaced inside elements and attributes.

ABSURD_TIMES = ("1900-01-01T00:00:00Z", "2200-01-01T00:00:00Z", "-0001-01-01T00:00:00Z",
                "0000-00-00T00:00:00Z", "9999-12-31T23:59:59Z", "1677-09-21T00:12:43Z",
                "2262-04-11T23:47:17Z", "1970-01-01T00:00:00Z", "-1", "", "NaN",
                "2019-13-45T25:61:61Z", "2020-02-30T10:00:00+99:99", "9" * 40,
                "2021-06-01T10:00:00.123456789123Z", "T", "2020-01-01T00:00:00-14:00")
ABSURD_NUMBERS = ("1000", "-1000", "NaN", "nan", "inf", "-inf", "1e308", "-1e308", "", "abc",
                  "90.0000001", "-0", "0x10", "1,5", "1e-400", "9" * 400, " 12 ")
BAD_UTF8 = (b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80",
            b"\xe2\x82", b"\x00", b"\x1b[31m")

_TIME_TEXT = re.compile(rb"(<(?:[\w-]+:)?(?:time|Time|StartTime|Id)>)([^<]*)(<)")
_NUMBER_TEXT = re.compile(
    rb"(<(?:[\w-]+:)?(?:ele|hr|cad|atemp|speed|LatitudeDegrees|LongitudeDegrees|AltitudeMeters|"
    rb"DistanceMeters|Value|Cadence|RunCadence|Speed|Watts|TotalTimeSeconds|Calories)>)"
    rb"([^<]*)(<)")
_COORD_ATTR = re.compile(rb"((?:lat|lon)=[\"'])([^\"']*)([\"'])")
_ANY_TEXT = re.compile(rb"(>)([^<>]+)(<)")
_START_TIME_ATTR = re.compile(rb"(StartTime=[\"'])([^\"']*)([\"'])")


def _replace_some(data: bytes, pattern: re.Pattern[bytes], values: tuple,
                  rng: random.Random) -> bytes:
    """Replace the middle group of some (or all) matches of ``pattern`` with ``values``."""
    matches = list(pattern.finditer(data))
    if not matches:
        return data
    share = rng.choice((1.0, 0.5, 0.05))
    chosen = [m for m in matches if rng.random() < share] or [rng.choice(matches)]
    parts: list[bytes] = []
    last = 0
    for match in chosen:
        value = rng.choice(values)
        value = value.encode() if isinstance(value, str) else value
        parts += [data[last:match.start(2)], value]
        last = match.end(2)
    parts.append(data[last:])
    return b"".join(parts)


@_register(XML_MUTATIONS)
def _absurd_timestamps(data: bytes, rng: random.Random) -> bytes:
    out = _replace_some(data, _TIME_TEXT, ABSURD_TIMES, rng)
    return _replace_some(out, _START_TIME_ATTR, ABSURD_TIMES, rng) if rng.random() < .3 else out


@_register(XML_MUTATIONS)
def _absurd_coordinates(data: bytes, rng: random.Random) -> bytes:
    out = _replace_some(data, _COORD_ATTR, ABSURD_NUMBERS, rng)
    return _replace_some(out, _NUMBER_TEXT, ABSURD_NUMBERS, rng)


@_register(XML_MUTATIONS)
def _absurd_everything(data: bytes, rng: random.Random) -> bytes:
    out = _replace_some(data, _TIME_TEXT, ABSURD_TIMES, rng)
    out = _replace_some(out, _COORD_ATTR, ABSURD_NUMBERS, rng)
    return _replace_some(out, _NUMBER_TEXT, ABSURD_NUMBERS, rng)


@_register(XML_MUTATIONS)
def _invalid_utf8(data: bytes, rng: random.Random) -> bytes:
    """Invalid UTF-8 inside text nodes (names, times, numbers) or attribute values."""
    pattern = rng.choice((_ANY_TEXT, _TIME_TEXT, _COORD_ATTR))
    matches = list(pattern.finditer(data)) or list(_ANY_TEXT.finditer(data))
    match = rng.choice(matches)
    at = rng.randrange(match.start(2), match.end(2) + 1)
    return data[:at] + rng.choice(BAD_UTF8) + data[at:]


@_register(XML_MUTATIONS)
def _truncate_at_tag(data: bytes, rng: random.Random) -> bytes:
    positions = [m.start() for m in re.finditer(rb"<", data)]
    at = rng.choice(positions[1:]) + rng.choice((0, 1, 2))
    return data[:at]


@_register(XML_MUTATIONS)
def _drop_closing_tags(data: bytes, rng: random.Random) -> bytes:
    closings = list(re.finditer(rb"</[^>]+>", data))
    for match in sorted(rng.sample(closings, min(len(closings), rng.choice((1, 3)))),
                        key=lambda m: m.start(), reverse=True):
        data = data[:match.start()] + data[match.end():]
    return data


@_register(XML_MUTATIONS)
def _swap_elements(data: bytes, rng: random.Random) -> bytes:
    """Element names exchanged (trkpt ↔ trkseg, Lap ↔ Track, time ↔ ele ...), kept balanced."""
    names = sorted({m.group(1) for m in re.finditer(rb"</((?:[\w-]+:)?[\w-]+)>", data)})
    a, b = rng.choice(names), rng.choice(names)
    marker = b"\x00SWAP\x00"
    out = re.sub(rb"(</?)" + re.escape(a) + rb"([\s>/])", lambda m: m.group(1) + marker +
                 m.group(2), data)
    out = re.sub(rb"(</?)" + re.escape(b) + rb"([\s>/])", lambda m: m.group(1) + a + m.group(2),
                 out)
    return out.replace(marker, b)


MUTATIONS_BY_FORMAT: dict[str, dict[str, Mutation]] = {
    "fit": {**FIT_MUTATIONS, **ANY_MUTATIONS},
    "gpx": {**XML_MUTATIONS, **ANY_MUTATIONS},
    "tcx": {**XML_MUTATIONS, **ANY_MUTATIONS},
}


def mutate(seed_name: str, mutation: str, rng_seed: int) -> bytes:
    """The bytes of ``mutation`` applied to seed file ``seed_name`` with ``rng_seed``."""
    data, fmt = SEEDS[seed_name]
    return MUTATIONS_BY_FORMAT[fmt][mutation](data, random.Random(rng_seed))


# --- the contract --------------------------------------------------------------------------------



class _TimeLimit(BaseException):
    """Raised by SIGALRM; a BaseException so no reader's ``except Exception`` can hide it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (main thread, POSIX) with _TimeLimit."""
    def on_alarm(signum: int, frame: object) -> None:
        raise _TimeLimit(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    """What one input did: ``kind`` (for statistics) and a contract violation, if any."""

    kind: str
    problem: str | None = None
    seconds: float = 0.0
    peak_bytes: int = 0


def _error_problem(err: RunlogError, name: str) -> str | None:
    if "\n" in err.reason or "\r" in err.reason:
        return f"{type(err).__name__} reason spans several lines: {err.reason!r}"
    if err.path != name:
        return f"{type(err).__name__} names {err.path!r}, not the file {name!r}"
    if not err.reason.strip():
        return f"{type(err).__name__} without a reason"
    return None


def _activities_problem(result: object) -> str | None:
    if not isinstance(result, list) or not result:
        return f"returned {type(result).__name__} {result!r:.80}, not a non-empty list"
    for activity in result:
        if not isinstance(activity, Activity):
            return f"returned a list holding {type(activity).__name__}"
        if activity.start_utc is None or str(activity.start_utc.tz) != "UTC":
            return f"activity start {activity.start_utc!r} is not a UTC time"
        if "timestamp" not in activity.samples:
            return "activity samples have no timestamp column"
    return None


def _process_problem(data: bytes, fmt: str, name: str) -> tuple[str, str | None]:
    """Run the importer's per-file step; its outcome must be clean and one-line."""
    source = SourceFile(name, fmt, len(data), 0, lambda: data)
    try:
        outcome, runs = process_file(source, data, "0" * 64, {})
    except Exception as err:  # the contract: process_file never raises for a file's content
        return "process_file raised", f"process_file raised {type(err).__name__}: {err}"
    if outcome.outcome not in (NEW, SKIPPED, FAILED):
        return outcome.outcome, f"process_file outcome {outcome.outcome!r}"
    if "\n" in outcome.reason:
        return outcome.outcome, f"process_file reason spans lines: {outcome.reason!r}"
    if outcome.outcome == NEW and not runs:
        return outcome.outcome, "process_file says new but gives no run"
    for _row, samples, _bins in runs:
        if len(samples["timestamp"]) == 0:  # a run must carry its track (Store.check())
            return outcome.outcome, "process_file gives a run without samples"
    return outcome.outcome, None


def _fitparse_only(data: bytes, name: str) -> list[Activity]:
    """The FIT reader with the numpy fast path switched off (the reference decoder)."""
    from runlog.readers.fit import FIT_DECODER_ENV, read_fit

    before = os.environ.get(FIT_DECODER_ENV)
    os.environ[FIT_DECODER_ENV] = "fitparse"
    try:
        return read_fit(data, name)
    finally:
        if before is None:
            os.environ.pop(FIT_DECODER_ENV, None)
        else:
            os.environ[FIT_DECODER_ENV] = before


def _outcome_of(reader: Callable[[bytes, str], object], data: bytes, name: str) -> object:
    try:
        return reader(data, name)
    except RunlogError as err:
        return f"{type(err).__name__}: {err.reason}"


def fit_differential(data: bytes, name: str) -> str | None:
    """fastfit's contract on damaged input: decline (None) or exactly what fitparse gives."""
    from runlog.readers.fastfit import read_fit_fast

    fast = _outcome_of(read_fit_fast, data, name)
    if fast is None:
        return None
    slow = _outcome_of(_fitparse_only, data, name)
    if isinstance(fast, str) or isinstance(slow, str):
        return None if fast == slow else f"fastfit gave {fast!s:.100}, fitparse {slow!s:.100}"
    if len(fast) != len(slow):
        return f"fastfit gave {len(fast)} activities, fitparse {len(slow)}"
    for a, b in zip(fast, slow, strict=True):
        if len(a.samples) != len(b.samples):
            return f"fastfit gave {len(a.samples)} samples, fitparse {len(b.samples)}"
        try:
            pd.testing.assert_frame_equal(a.samples, b.samples, rtol=1e-6)
        except AssertionError as err:
            return f"fastfit samples differ: {' '.join(str(err).split())[:150]}"
        for attr in ("sport", "sub_sport", "device", "start_utc", "tz_offset_min", "pauses",
                     "leg_index", "notes"):
            if getattr(a, attr) != getattr(b, attr):
                return (f"fastfit {attr} {getattr(a, attr)!r:.80} != fitparse "
                        f"{getattr(b, attr)!r:.80}")
        if a.summary.keys() != b.summary.keys() or any(
                not np.isclose(a.summary[k], b.summary[k], rtol=1e-6, equal_nan=True)
                for k in a.summary):
            return f"fastfit summary {a.summary} != fitparse {b.summary}"
    return None


def check_read(data: bytes, fmt: str, name: str, *, process: bool = True,
               differential: bool = True, seconds: float = TIME_LIMIT_S,
               memory_bytes: int = MEMORY_LIMIT_BYTES) -> Outcome:
    """Read ``data`` under the time and memory bounds and judge the result (never raises)."""
    started = time.perf_counter()
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    problem: str | None = None
    peak = 0
    try:
        with time_limit(seconds):
            try:
                result = read_activities(data, fmt, name)
            except RunlogError as err:
                kind = f"{type(err).__name__}: {_reason_class(err.reason)}"
                problem = _error_problem(err, name)
            except Exception as err:
                kind = f"CRASH {type(err).__name__}"
                problem = f"raised {type(err).__name__}: {err!s:.200}"
            else:
                kind = f"ok ({len(result)} activities)"
                problem = _activities_problem(result)
            peak = tracemalloc.get_traced_memory()[1]
            if not tracing:   # the importer step runs untraced (tracing slows pandas 5x)
                tracemalloc.stop()
            if problem is None and differential and fmt == "fit":
                problem = fit_differential(data, name)
                kind = f"FASTFIT DIFFERS ({kind})" if problem else kind
            if problem is None and process and kind.startswith("ok"):
                step, problem = _process_problem(data, fmt, name)
                kind = f"{kind}, process_file {step}"
    except _TimeLimit:
        kind, problem = "HANG", f"did not finish within {seconds} s"
    finally:
        peak = max(peak, tracemalloc.get_traced_memory()[1]) if tracemalloc.is_tracing() else peak
        if not tracing and tracemalloc.is_tracing():
            tracemalloc.stop()
    elapsed = time.perf_counter() - started
    if problem is None and peak > memory_bytes:
        kind, problem = "MEMORY", f"peak allocation {peak / 2**20:.0f} MiB"
    return Outcome(kind, problem, elapsed, peak)


def _reason_class(reason: str) -> str:
    """A reason without numbers and quoted details, for counting distinct kinds."""
    text = re.sub(r"\d+", "N", reason)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    return text[:70]


def check_source(make: Callable[[], list[SourceFile | Ignored]]) -> Outcome:
    """Discover and read archive members; FileReadError (one line, naming it) or bytes."""
    tracemalloc.start()
    problem = None
    kinds: list[str] = []
    try:
        with time_limit(TIME_LIMIT_S):
            try:
                found = make()
            except FileReadError as err:
                found = []
                kinds.append("discover FileReadError")
                problem = _error_problem(err, err.path or "")
            except Exception as err:
                found = []
                kinds.append(f"CRASH discover {type(err).__name__}")
                problem = f"discover raised {type(err).__name__}: {err!s:.200}"
            for item in found:
                if isinstance(item, Ignored):
                    kinds.append("ignored")
                    continue
                try:
                    data = item.read_bytes()
                except FileReadError as err:
                    kinds.append(f"FileReadError: {_reason_class(err.reason)}")
                    problem = problem or _error_problem(err, item.display)
                except Exception as err:
                    kinds.append(f"CRASH read_bytes {type(err).__name__}")
                    problem = problem or (f"read_bytes of {item.display} raised "
                                          f"{type(err).__name__}: {err!s:.200}")
                else:
                    kinds.append("bytes" if isinstance(data, bytes) else "not bytes")
                    if not isinstance(data, bytes):
                        problem = problem or f"read_bytes gave {type(data).__name__}"
    except _TimeLimit:
        kinds, problem = ["HANG"], f"did not finish within {TIME_LIMIT_S} s"
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if problem is None and peak > MEMORY_LIMIT_BYTES:
        problem = f"peak allocation {peak / 2**20:.0f} MiB"
    return Outcome("; ".join(sorted(set(kinds))) or "nothing found", problem, 0.0, peak)


# --- archive mutations (through runlog.sources) --------------------------------------------------

def gz_seed() -> bytes:
    """A real .fit.gz (the FIT seed, gzipped as Strava exports do)."""
    return gzip.compress(SEEDS["garmin-fenix-5-run.fit"][0], mtime=0)


def zip_seed() -> bytes:
    """A real zip: a FIT, a gzipped GPX and a TCX member, deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export/run.fit", SEEDS["Activity.fit"][0])
        archive.writestr("export/walk.gpx.gz", gzip.compress(SEEDS["garmin_connect.gpx"][0]))
        archive.writestr("export/run.tcx", SEEDS["run_garmin.tcx"][0][:20000])
    return buffer.getvalue()


def nested_zip_seed() -> bytes:
    """A Garmin-style export: the zip seed nested inside another zip, beside a text file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("DI_CONNECT/DI-Connect-Uploaded-Files/UploadedFiles_0-_Part1.zip",
                         zip_seed())
        archive.writestr("readme.txt", "not an activity")
    return buffer.getvalue()


def _zip_central_directory(data: bytes) -> tuple[int, int]:
    """(start of the central directory, start of the end record)."""
    eocd = data.rindex(b"PK\x05\x06")
    return struct.unpack_from("<I", data, eocd + 16)[0], eocd


def mutate_gz(data: bytes, rng: random.Random) -> bytes:
    """Truncate, flip or append garbage to gzip bytes."""
    kind = rng.randrange(4)
    if kind == 0:
        return data[:rng.randrange(len(data))]
    if kind == 1:
        out = bytearray(data)
        for _ in range(rng.choice((1, 3))):
            _flip(out, rng.randrange(len(out)), rng)
        return bytes(out)
    if kind == 2:     # wrong ISIZE / CRC trailer
        out = bytearray(data)
        struct.pack_into("<I", out, len(out) - rng.choice((4, 8)), rng.randrange(2**32))
        return bytes(out)
    return data + rng.choice((b"garbage", b"\x1f\x8b", b"\x1f\x8b\x08\x00", data[:20]))


def mutate_zip(data: bytes, rng: random.Random) -> bytes:
    """Damage the central directory, a member's claimed sizes, or cut the archive."""
    out = bytearray(data)
    cd_start, eocd = _zip_central_directory(data)
    kind = rng.randrange(5)
    if kind == 0:                                      # bytes of the central directory
        for _ in range(rng.choice((1, 2, 8))):
            _flip(out, rng.randrange(cd_start, len(out)), rng)
    elif kind == 1:                                    # a member claims a huge size
        entries = [m.start() for m in re.finditer(rb"PK\x01\x02", data)]
        entry = rng.choice(entries)
        field = rng.choice((20, 24))                   # compressed / uncompressed size
        struct.pack_into("<I", out, entry + field, rng.choice((0xFFFFFFFF, 0x7FFFFFFF, 0,
                                                               rng.randrange(2**32))))
    elif kind == 2:                                    # end record: counts, offset, size
        field = rng.choice((8, 10, 12, 16, 20))
        width = "<H" if field in (8, 10, 20) else "<I"
        struct.pack_into(width, out, eocd + field, rng.randrange(2 ** (16 if width == "<H"
                                                                       else 32)))
    elif kind == 3:                                    # local headers / data
        for _ in range(rng.choice((1, 4))):
            _flip(out, rng.randrange(cd_start), rng)
    else:
        return data[:rng.randrange(len(data))]
    return bytes(out)


def zip_bomb(n_bytes: int = 24 * 2**20) -> bytes:
    """A zip whose one member inflates ~1000:1 (the ratio guard must refuse it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.fit", bytes(n_bytes))
    return buffer.getvalue()


# --- tests: fixed boundary classes ----------------------------------------------------------------

def _assert_ok(outcome: Outcome, what: str) -> None:
    assert outcome.problem is None, f"{what}: {outcome.problem} [{outcome.kind}]"


def _fit_boundaries(data: bytes) -> list[tuple[str, int]]:
    """(label, cut) for every boundary class of a FIT file."""
    layout = fit_layout(data)
    first_def = next(m for m in layout.messages if m.definition)
    first_data = next(m for m in layout.messages if not m.definition)
    last = layout.messages[-1]
    cuts = [("in header", 1), ("in header", 11), ("header minus 1", layout.header_size - 1),
            ("header only", layout.header_size),
            ("first definition, 1 byte", first_def.start + 1),
            ("first definition, half", (first_def.start + first_def.end) // 2),
            ("first definition, last field missing", first_def.end - 1),
            ("after first definition", first_def.end),
            ("first data message, half", (first_data.start + first_data.end) // 2),
            ("mid-file message boundary", layout.messages[len(layout.messages) // 2].start),
            ("mid-file record", layout.messages[len(layout.messages) // 2].start + 2),
            ("last message, half", (last.start + last.end) // 2),
            ("before CRC", layout.crc_at), ("in CRC", layout.crc_at + 1)]
    return [(label, cut) for label, cut in cuts if 0 < cut < len(data)]


FIT_CUTS = [(seed, label, cut) for seed in FIT_SEEDS
            for label, cut in _fit_boundaries(SEEDS[seed][0])]


@pytest.mark.parametrize(("seed", "label", "cut"), FIT_CUTS,
                         ids=[f"{s}-{label}-{c}" for s, label, c in FIT_CUTS])
def test_fit_truncated_at_every_boundary_class(seed: str, label: str, cut: int) -> None:
    data = SEEDS[seed][0][:cut]
    outcome = check_read(data, "fit", seed)
    _assert_ok(outcome, f"{seed} cut {label} at {cut}")
    if cut <= fit_layout(SEEDS[seed][0]).messages[0].end:
        # nothing but a header and at most one definition: no run can come out of it
        assert not outcome.kind.startswith("ok"), outcome.kind


@pytest.mark.parametrize("value", [0xFFFFFFFF, 0x7FFFFFFF, 0, 1, 10**9])
def test_fit_huge_or_tiny_declared_data_size(value: int) -> None:
    data = bytearray(SEEDS["garmin-fenix-5-run.fit"][0])
    struct.pack_into("<I", data, 4, value)
    outcome = check_read(bytes(data), "fit", "size.fit")
    _assert_ok(outcome, f"data_size {value}")


@pytest.mark.parametrize("header_size", [0, 1, 11, 13, 15, 255])
def test_fit_odd_header_sizes_are_one_line_errors(header_size: int) -> None:
    data = bytearray(SEEDS["Activity.fit"][0])
    data[0] = header_size
    outcome = check_read(bytes(data), "fit", "hdr.fit")
    _assert_ok(outcome, f"header size {header_size}")


@pytest.mark.parametrize("field_size", [0, 1, 3, 255])
def test_fit_definition_field_sizes(field_size: int) -> None:
    """Every field of the first record definition given an impossible size, CRC right."""
    seed = SEEDS["garmin-fenix-5-run.fit"][0]
    data = bytearray(seed)
    for message in fit_layout(seed).messages:
        if message.definition and struct.unpack_from("<H", seed, message.start + 3)[0] == 20:
            for offset in message.field_offsets:
                data[offset + 1] = field_size
    outcome = check_read(_with_good_crc(data), "fit", "fields.fit")
    _assert_ok(outcome, f"field size {field_size}")


def test_fit_wrong_crc_is_imported_with_a_note_or_refused() -> None:
    seed = SEEDS["garmin-fenix-5-run.fit"][0]
    data = bytearray(seed)
    data[-1] ^= 0x5A
    result = read_activities(bytes(data), "fit", "crc.fit")
    assert any("CRC" in note for note in result[0].notes)
    assert len(result[0].samples) == len(read_activities(seed, "fit", "ok.fit")[0].samples)


@pytest.mark.parametrize("seed", XML_SEEDS)
@pytest.mark.parametrize("bad", BAD_UTF8[:6])
def test_xml_invalid_utf8_in_a_name_is_a_one_line_error_or_read(seed: str, bad: bytes) -> None:
    data = SEEDS[seed][0]
    match = _TIME_TEXT.search(data)
    assert match is not None
    mutated = data[:match.start(2)] + bad + data[match.start(2):]
    outcome = check_read(mutated, SEEDS[seed][1], seed)
    _assert_ok(outcome, f"{bad!r} in {seed}")


@pytest.mark.parametrize("seed", XML_SEEDS)
@pytest.mark.parametrize("value", ["1900-01-01T00:00:00Z", "2200-01-01T00:00:00Z",
                                   "-0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_xml_absurd_time_on_every_point(seed: str, value: str) -> None:
    data, fmt = SEEDS[seed]
    mutated = _TIME_TEXT.sub(lambda m: m.group(1) + value.encode() + m.group(3), data)
    outcome = check_read(mutated, fmt, seed)
    _assert_ok(outcome, f"time {value} in {seed}")
    if fmt == "gpx" and not value.startswith("2200"):
        assert not outcome.kind.startswith("ok"), f"no valid time left, yet read: {outcome.kind}"


@pytest.mark.parametrize("seed", XML_SEEDS)
@pytest.mark.parametrize("value", ["1000", "NaN", "inf", "-1e308", ""])
def test_xml_absurd_coordinates_on_every_point(seed: str, value: str) -> None:
    data, fmt = SEEDS[seed]
    mutated = _COORD_ATTR.sub(lambda m: m.group(1) + value.encode() + m.group(3), data)
    mutated = re.sub(rb"(<(?:Latitude|Longitude)Degrees>)[^<]*(<)",
                     lambda m: m.group(1) + value.encode() + m.group(2), mutated)
    outcome = check_read(mutated, fmt, seed)
    _assert_ok(outcome, f"coordinate {value} in {seed}")
    if outcome.kind.startswith("ok"):
        # a TCX keeps points without a position; none may carry the absurd one
        for activity in read_activities(mutated, fmt, seed):
            assert not activity.samples["lat_deg"].abs().gt(90).any()
            assert activity.samples["lat_deg"].isna().all()


# --- tests: hypothesis over the mutations ---------------------------------------------------------

FUZZ = settings(max_examples=CI_EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(seed=st.sampled_from(FIT_SEEDS),
       mutation=st.sampled_from(sorted(MUTATIONS_BY_FORMAT["fit"])),
       rng_seed=st.integers(0, 2**32 - 1))
def test_fuzz_fit(seed: str, mutation: str, rng_seed: int) -> None:
    outcome = check_read(mutate(seed, mutation, rng_seed), "fit", seed)
    _assert_ok(outcome, f"mutate({seed!r}, {mutation!r}, {rng_seed})")


@settings(FUZZ, max_examples=CI_EXAMPLES * 3)   # XML inputs are cheap to judge
@given(seed=st.sampled_from(XML_SEEDS),
       mutation=st.sampled_from(sorted(MUTATIONS_BY_FORMAT["gpx"])),
       rng_seed=st.integers(0, 2**32 - 1))
def test_fuzz_gpx_tcx(seed: str, mutation: str, rng_seed: int) -> None:
    outcome = check_read(mutate(seed, mutation, rng_seed), SEEDS[seed][1], seed)
    _assert_ok(outcome, f"mutate({seed!r}, {mutation!r}, {rng_seed})")


@FUZZ
@given(rng_seed=st.integers(0, 2**32 - 1))
def test_fuzz_gzip_then_read(rng_seed: int) -> None:
    """A damaged .fit.gz: gunzip refuses it in one line, or the reader copes with the rest."""
    data = mutate_gz(gz_seed(), random.Random(rng_seed))
    try:
        inner = gunzip_bounded(data, "run.fit.gz")
    except FileReadError as err:
        assert _error_problem(err, "run.fit.gz") is None
        return
    except Exception as err:  # the sources' caller (SourceFile.read_bytes) maps zlib errors
        assert isinstance(err, OSError | EOFError | RuntimeError) or type(err).__name__ == \
            "error", f"gunzip_bounded raised {type(err).__name__}: {err}"
        return
    if inner:
        _assert_ok(check_read(inner, "fit", "run.fit.gz"), f"gz seed {rng_seed}")


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archives")


@settings(FUZZ, max_examples=CI_EXAMPLES)
@given(rng_seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["gz", "zip", "nested"]))
def test_fuzz_archives_through_sources(archive_dir: Path, rng_seed: int, kind: str) -> None:
    rng = random.Random(rng_seed)
    if kind == "gz":
        path = archive_dir / f"{rng_seed}.fit.gz"
        path.write_bytes(mutate_gz(gz_seed(), rng))
    else:
        path = archive_dir / f"{rng_seed}.zip"
        seed = zip_seed() if kind == "zip" else nested_zip_seed()
        path.write_bytes(mutate_zip(seed, rng))
    outcome = check_source(lambda: list(discover([path])))
    path.unlink()
    _assert_ok(outcome, f"{kind} seed {rng_seed}")


def test_truncated_gzip_is_one_line_file_read_error(tmp_path: Path) -> None:
    data = gz_seed()
    empty = tmp_path / "cut0.fit.gz"
    empty.write_bytes(b"")  # an empty .gz reads as empty: the importer fails it as such
    assert [s.read_bytes() for s in discover([empty]) if isinstance(s, SourceFile)] == [b""]
    for cut in (5, 10, len(data) // 2, len(data) - 8, len(data) - 1):
        path = tmp_path / f"cut{cut}.fit.gz"
        path.write_bytes(data[:cut])
        (source,) = [s for s in discover([path]) if isinstance(s, SourceFile)]
        with pytest.raises(FileReadError) as caught:
            source.read_bytes()
        assert _error_problem(caught.value, str(path)) is None, cut
        assert "\n" not in caught.value.one_line() and str(path) in caught.value.one_line()


@pytest.mark.parametrize("damage", ["deflate", "method", "version"])
def test_damaged_nested_zip_fails_alone(tmp_path: Path, damage: str) -> None:
    """A Garmin export whose nested zip is damaged: that member fails in one line; discovery
    goes on (it used to raise zlib.error / NotImplementedError out of ``discover``)."""
    data = bytearray(nested_zip_seed())
    local = data.index(b"PK\x03\x04")                  # the nested zip's local header
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    if damage == "deflate":                               # garbage in its deflate stream
        start = local + 30 + name_len + extra_len
        data[start:start + 8] = b"\xff" * 8
    elif damage == "method":
        struct.pack_into("<H", data, local + 8, 99)       # unknown compression method
        cd = data.index(b"PK\x01\x02")
        struct.pack_into("<H", data, cd + 10, 99)
    else:
        cd = data.index(b"PK\x01\x02")
        struct.pack_into("<H", data, cd + 6, 148)         # "needs zip version 14.8"
    path = tmp_path / "garmin-export.zip"
    path.write_bytes(bytes(data))
    found = list(discover([path]))
    (failing,) = [f for f in found if isinstance(f, SourceFile)]
    with pytest.raises(FileReadError) as caught:
        failing.read_bytes()
    assert _error_problem(caught.value, failing.display) is None
    if damage == "version":         # the outer directory says so: the archive itself fails
        assert failing.display == str(path)
    else:                           # only the nested zip fails; the rest is still seen
        assert failing.display == (
            f"{path}!DI_CONNECT/DI-Connect-Uploaded-Files/UploadedFiles_0-_Part1.zip")
        assert any(isinstance(f, Ignored) and f.display.endswith("readme.txt") for f in found)


def test_zip_with_corrupt_central_directory(tmp_path: Path) -> None:
    data = bytearray(zip_seed())
    cd_start, _ = _zip_central_directory(bytes(data))
    data[cd_start:cd_start + 4] = b"XXXX"          # central directory signature destroyed
    path = tmp_path / "broken.zip"
    path.write_bytes(bytes(data))
    found = list(discover([path]))
    assert len(found) == 1 and isinstance(found[0], SourceFile)
    with pytest.raises(FileReadError) as caught:
        found[0].read_bytes()
    assert caught.value.path == str(path) and "zip" in caught.value.reason
    assert "\n" not in caught.value.one_line()


@pytest.mark.parametrize("field", [20, 24], ids=["compressed", "uncompressed"])
@pytest.mark.parametrize("claimed", [0xFFFFFFFF, 0x7FFFFFFF, 0])
def test_zip_member_claiming_a_huge_size(tmp_path: Path, claimed: int, field: int) -> None:
    """A member whose central-directory size lies: refused in one line, or its true bytes.

    Reading is bounded by the real deflate stream, never by the claim: memory stays small and
    what comes out is exactly what was stored (zipfile checks the CRC), or a FileReadError.
    """
    data = bytearray(zip_seed())
    entry = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, entry + field, claimed)
    path = tmp_path / "claims.zip"
    path.write_bytes(bytes(data))
    outcome = check_source(lambda: list(discover([path])))
    _assert_ok(outcome, f"claimed size {claimed}")
    assert outcome.peak_bytes < 32 * 2**20, outcome.peak_bytes
    member = next(s for s in discover([path]) if isinstance(s, SourceFile)
                  and s.display.endswith("run.fit"))
    try:
        assert member.read_bytes() == SEEDS["Activity.fit"][0]
    except FileReadError as err:
        assert _error_problem(err, member.display) is None


def test_zip_bomb_member_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    path.write_bytes(zip_bomb())
    outcome = check_source(lambda: list(discover([path])))
    _assert_ok(outcome, "bomb")
    assert outcome.kind.startswith("FileReadError: refused"), outcome.kind
    assert outcome.peak_bytes < 64 * 2**20, outcome.peak_bytes


def test_checker_catches_crashes_hangs_and_multiline_reasons(monkeypatch) -> None:
    """The judge itself: a crash, a hang and a two-line reason are all reported."""

    def crash(data: bytes, fmt: str, name: str) -> list:
        raise KeyError("boom")

    def hang(data: bytes, fmt: str, name: str) -> list:
        while True:
            pass

    def two_lines(data: bytes, fmt: str, name: str) -> list:
        raise FileReadError("first\nsecond", path=name)

    def wrong_name(data: bytes, fmt: str, name: str) -> list:
        raise FileReadError("bad", path="other.fit")

    for fake, expected in ((crash, "CRASH"), (hang, "HANG"), (two_lines, "FileReadError"),
                           (wrong_name, "FileReadError")):
        monkeypatch.setitem(globals(), "read_activities", fake)
        outcome = check_read(b"x", "fit", "x.fit", seconds=0.3)
        assert outcome.problem is not None and outcome.kind.startswith(expected), outcome


def test_lap_only_tcx_leaves_a_consistent_store(tmp_path: Path) -> None:
    from runlog.importer import import_paths
    from runlog.store import Store

    laps_only = re.sub(rb"<Track>.*?</Track>", b"", SEEDS["run_garmin.tcx"][0], flags=re.S)
    (tmp_path / "laps.tcx").write_bytes(laps_only)
    store = Store(tmp_path / "store")
    result = import_paths(store, [tmp_path / "laps.tcx"])
    assert store.check() == []
    (outcome,) = result.outcomes
    assert outcome.outcome == "skipped" and "only laps" in outcome.reason
    assert store.runs().empty
