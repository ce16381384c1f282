"""Fast FIT path: tiny synthetic FIT files built here, and a differential test on the corpus.

The synthetic files are assembled byte by byte (header, definitions, data, CRC from
fitparse's own CRC code, independent of runlog.readers.fastfit.crc16) and checked against
hand-computed values; the corpus test checks that, for every real FIT file, the fast path
either declines or gives exactly what runlog.readers.fit.read_fit gives.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fitparse.records import Crc
from hypothesis import given, settings
from hypothesis import strategies as st

from runlog.activity import FLOAT_SAMPLE_COLUMNS, SAMPLE_COLUMNS
from runlog.errors import FileReadError, RunlogError, SkippedFile
from runlog.readers.fastfit import _layouts_of, _walk, crc16, read_fit_fast

FIT_EPOCH = pd.Timestamp("1989-12-31T00:00:00Z")
#: A FIT time [s] whose low 5 bits are 30, so a compressed offset of 2 rolls over.
T0 = 1_000_000_030
assert T0 & 0x1F == 30

# FIT base types
ENUM, SINT8, UINT8, UINT8Z, SINT16, UINT16, SINT32, UINT32 = (
    0x00, 0x01, 0x02, 0x0A, 0x83, 0x84, 0x85, 0x86)
_FMT = {ENUM: "B", SINT8: "b", UINT8: "B", UINT8Z: "B", SINT16: "h", UINT16: "H",
        SINT32: "i", UINT32: "I"}
_SIZE = {k: struct.calcsize(v) for k, v in _FMT.items()}

FILE_ID_FIELDS = [(0, ENUM), (1, UINT16), (2, UINT16), (4, UINT32)]     # type, manuf., product
SESSION_FIELDS = [(253, UINT32), (2, UINT32), (5, ENUM), (6, ENUM), (7, UINT32), (8, UINT32),
                  (9, UINT32), (16, UINT8), (17, UINT8)]
RECORD_FIELDS = [(253, UINT32), (0, SINT32), (1, SINT32), (2, UINT16), (3, UINT8), (4, UINT8),
                 (5, UINT32), (6, UINT16), (7, UINT16), (13, SINT8), (53, UINT8)]
#: One record's raw values, in RECORD_FIELDS order (timestamp first).
RAW_RECORD = [T0, 1 << 29, -(1 << 28), 3000, 150, 85, 12345, 2500, 250, -5, 64]


def definition(local: int, global_num: int, fields: list[tuple[int, int]],
               big: bool = False, dev_fields: list[tuple[int, int, int]] | None = None) -> bytes:
    """A definition message: header, reserved, architecture, global number, field defs."""
    header = 0x40 | local | (0x20 if dev_fields is not None else 0)
    endian = ">" if big else "<"
    out = struct.pack(endian + "BBBHB", header, 0, 1 if big else 0, global_num, len(fields))
    for num, base in fields:
        out += bytes([num, _SIZE[base], base])
    if dev_fields is not None:
        out += bytes([len(dev_fields)])
        for num, size, index in dev_fields:
            out += bytes([num, size, index])
    return out


def data_message(local: int, fields: list[tuple[int, int]], values: list[int],
                 big: bool = False, compressed_offset: int | None = None) -> bytes:
    """A data message with a normal header, or a compressed-timestamp header."""
    if compressed_offset is None:
        header = local & 0x0F
    else:
        header = 0x80 | (local & 0x3) << 5 | compressed_offset & 0x1F
    endian = ">" if big else "<"
    return bytes([header]) + struct.pack(endian + "".join(_FMT[b] for _, b in fields), *values)


def fit_file(*messages: bytes, header_crc: bool = True) -> bytes:
    """14-byte header (with its CRC) + messages + file CRC, as the FIT SDK writes them."""
    body = b"".join(messages)
    header = struct.pack("<BBHI4s", 14, 0x20, 2132, len(body), b".FIT")
    header += struct.pack("<H", Crc.calculate(header) if header_crc else 0)
    content = header + body
    return content + struct.pack("<H", Crc.calculate(content))


def file_id(local: int = 0, file_type: int = 4) -> list[bytes]:
    """file_id: activity (4), Garmin (1), product 1623, created at T0."""
    return [definition(local, 0, FILE_ID_FIELDS),
            data_message(local, FILE_ID_FIELDS, [file_type, 1, 1623, T0])]


def session(local: int = 2, start: int = T0, elapsed_s: float = 60.0) -> list[bytes]:
    """session: running (1), generic sub sport, 60 s, 200 m, HR 150/160."""
    values = [start + int(elapsed_s), start, 1, 0, int(elapsed_s * 1000),
              int(elapsed_s * 1000), 20000, 150, 160]
    return [definition(local, 18, SESSION_FIELDS), data_message(local, SESSION_FIELDS, values)]


def record(values: list[int], big: bool = False, local: int = 1) -> bytes:
    return data_message(local, RECORD_FIELDS, values, big=big)


def simple_run(big: bool = False) -> bytes:
    second = list(RAW_RECORD)
    second[0] = T0 + 1
    return fit_file(*file_id(), definition(1, 20, RECORD_FIELDS, big=big),
                    record(RAW_RECORD, big), record(second, big), *session())


def _read_fit():
    """read_fit forced onto its fitparse path: the reference the fast path is compared with.

    Once read_fit tries the fast path first, comparing with plain read_fit would compare the
    fast path with itself; here every fast-path call inside read_fit declines.
    """
    from runlog.readers import fastfit
    from runlog.readers.fit import read_fit

    def fitparse_only(data: bytes, name: str):
        real = fastfit._read

        def declined(*_args, **_kwargs):
            raise fastfit._Decline("reference run through fitparse")

        fastfit._read = declined
        try:
            return read_fit(data, name)
        finally:
            fastfit._read = real

    return fitparse_only


# --- synthetic files ------------------------------------------------------------------------

def test_crc16_matches_fitparse_on_every_length_regime() -> None:
    rng = np.random.default_rng(7)
    for n in (0, 1, 13, 255, 256, 257, 511, 1000, 4097, 65_537):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc16(data) == Crc.calculate(data), n
    assert crc16(b"123456789") == 0xBB3D     # CRC-16/ARC check value


@pytest.mark.parametrize("big", [False, True], ids=["little-endian", "big-endian"])
def test_two_records_decoded_to_si_units(big: bool) -> None:
    (activity,) = read_fit_fast(simple_run(big), "run.fit")
    s = activity.samples
    assert list(s.columns) == list(SAMPLE_COLUMNS)
    assert list(s["timestamp"]) == [FIT_EPOCH + pd.Timedelta(seconds=T0),
                                    FIT_EPOCH + pd.Timedelta(seconds=T0 + 1)]
    row = s.iloc[0]
    assert row["lat_deg"] == pytest.approx(45.0)
    assert row["lon_deg"] == pytest.approx(-22.5)
    assert row["altitude_m"] == pytest.approx(3000 / 5 - 500)
    assert row["hr_bpm"] == 150
    assert row["cadence_spm"] == pytest.approx(2 * (85 + 64 / 128))    # running: both feet
    assert row["distance_m"] == pytest.approx(123.45)
    assert row["speed_mps"] == pytest.approx(2.5)
    assert row["power_w"] == 250
    assert row["temp_c"] == -5
    assert activity.sport == "running" and activity.sub_sport is None
    assert activity.start_utc == FIT_EPOCH + pd.Timedelta(seconds=T0)
    assert activity.summary["distance_m"] == pytest.approx(200.0)
    assert activity.summary["elapsed_s"] == pytest.approx(60.0)
    assert activity.device is not None and activity.device.startswith("Garmin")


@pytest.mark.parametrize("big", [False, True], ids=["little-endian", "big-endian"])
def test_synthetic_file_equals_fitparse_reader(big: bool) -> None:
    data = simple_run(big)
    _assert_same(read_fit_fast(data, "x.fit"), _read_fit()(data, "x.fit"), "synthetic")


def test_compressed_timestamp_headers_roll_over() -> None:
    """Offsets 2 and 5 after a full time whose low 5 bits are 30: T0+4 (rolled), T0+7."""
    compact = [(3, UINT8)]                       # heart_rate only, time from the header
    data = fit_file(*file_id(), definition(1, 20, RECORD_FIELDS), record(RAW_RECORD),
                    definition(2, 20, compact),
                    data_message(2, compact, [151], compressed_offset=2),
                    data_message(2, compact, [152], compressed_offset=5),
                    *session())
    (activity,) = read_fit_fast(data, "compressed.fit")
    seconds = (activity.samples["timestamp"] - FIT_EPOCH).dt.total_seconds().tolist()
    assert seconds == [T0, T0 + 4, T0 + 7]
    assert activity.samples["hr_bpm"].tolist() == [150, 151, 152]
    _assert_same([activity], _read_fit()(data, "compressed.fit"), "compressed")


def test_repeated_identical_definition_is_one_layout() -> None:
    values = [list(RAW_RECORD) for _ in range(5)]
    messages = list(file_id())
    for i, row in enumerate(values):
        row[0] = T0 + i
        row[4] = 140 + i
        messages += [definition(1, 20, RECORD_FIELDS), record(row)]   # re-sent every time
    data = fit_file(*messages, *session())
    walk = _walk(data)
    assert sorted(layout.mesg_num for layout in walk.layouts) == [0, 18, 20]
    (activity,) = read_fit_fast(data, "resent.fit")
    assert activity.samples["hr_bpm"].tolist() == [140, 141, 142, 143, 144]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 15), st.integers(0, 5),
                          st.integers(0, 31)), max_size=60))
def test_layouts_of_equals_one_step_lookup(events: list[tuple[bool, int, int, int]]) -> None:
    """Each message's layout, found in bulk from the slot changes, is the layout its slot
    held when the walk reached it (normal and compressed-timestamp headers alike)."""
    headers: list[int] = []
    changes: list[tuple[int, int, int]] = []
    held: dict[int, int] = {}
    expected: list[int] = []
    for is_definition, slot, lid, time_offset in events:
        if is_definition:
            if held.get(slot) != lid:
                held[slot] = lid
                changes.append((len(headers), slot, lid))
        elif slot in held:
            compressed = slot < 4 and time_offset % 2 == 1
            headers.append(0x80 | slot << 5 | time_offset if compressed else slot | 0x10 * (
                time_offset % 4))
            expected.append(held[slot])
    lids = _layouts_of(bytes(headers), np.arange(len(headers)), changes)
    assert lids.tolist() == expected


def _speed_distance(speed_cms: int, distance_16ths: int) -> bytes:
    """compressed_speed_distance: 12 bits speed [1/100 m/s], 12 bits distance [1/16 m]."""
    return (speed_cms | (distance_16ths & 0xFFF) << 12).to_bytes(3, "little")


def test_compressed_speed_distance_accumulates_and_restarts() -> None:
    """Distance 4000 → 50 (rolled: 4096 + 50) → 0xFFFFFF (invalid) → 100, then a re-sent
    definition restarts the accumulator: 30 is 30/16 m again."""
    fields = [(253, UINT32), (3, UINT8)]
    definition_bytes = definition(1, 20, fields)
    csd = definition_bytes[:5] + bytes([len(fields) + 1]) + definition_bytes[6:] + bytes(
        [8, 3, 0x0D])                                        # field 8, 3 bytes, byte type

    def row(t: int, payload: bytes) -> bytes:
        return b"\x01" + struct.pack("<IB", T0 + t, 150) + payload

    data = fit_file(*file_id(), csd, row(0, _speed_distance(250, 4000)),
                    row(1, _speed_distance(260, 50)), row(2, b"\xff\xff\xff"),
                    row(3, _speed_distance(270, 100)), csd, row(4, _speed_distance(280, 30)),
                    *session())
    (activity,) = read_fit_fast(data, "csd.fit")
    s = activity.samples
    np.testing.assert_allclose(s["distance_m"].to_numpy(),
                               [4000 / 16, 4146 / 16, np.nan, 4196 / 16, 30 / 16])
    np.testing.assert_allclose(s["speed_mps"].to_numpy(), [2.5, 2.6, np.nan, 2.7, 2.8])
    _assert_same([activity], _read_fit()(data, "csd.fit"), "compressed speed/distance")


def test_invalid_sentinels_become_nan() -> None:
    """0x7FFFFFFF sint32, 0xFFFF uint16, 0xFF uint8, 0x7F sint8, 0xFFFFFFFF uint32, 0 uint8z."""
    fields = [*RECORD_FIELDS[:5], (4, UINT8Z), *RECORD_FIELDS[6:]]
    invalid = [T0, 0x7FFFFFFF, 0x7FFFFFFF, 0xFFFF, 0xFF, 0, 0xFFFFFFFF, 0xFFFF, 0xFFFF, 0x7F, 0xFF]
    data = fit_file(*file_id(), definition(1, 20, fields), data_message(1, fields, invalid),
                    *session())
    (activity,) = read_fit_fast(data, "nones.fit")
    row = activity.samples.iloc[0]
    assert row["timestamp"] == FIT_EPOCH + pd.Timedelta(seconds=T0)
    for column in FLOAT_SAMPLE_COLUMNS:
        assert np.isnan(row[column]), column
    _assert_same([activity], _read_fit()(data, "nones.fit"), "sentinels")


def test_invalid_timestamp_record_dropped_like_read_fit() -> None:
    second = list(RAW_RECORD)
    second[0] = 0xFFFFFFFF
    data = fit_file(*file_id(), definition(1, 20, RECORD_FIELDS), record(RAW_RECORD),
                    record(second), *session())
    (activity,) = read_fit_fast(data, "x.fit")
    assert len(activity.samples) == 1
    assert any("without an absolute time" in note for note in activity.notes)


def test_chained_files_give_one_activity_per_session() -> None:
    first = simple_run()
    later = list(RAW_RECORD)
    later[0] = T0 + 600
    second = fit_file(*file_id(), definition(1, 20, RECORD_FIELDS), record(later),
                      *session(start=T0 + 600))
    data = first + second
    fast = read_fit_fast(data, "chained.fit")
    assert [a.leg_index for a in fast] == [0, 1]
    assert [len(a.samples) for a in fast] == [2, 1]
    _assert_same(fast, _read_fit()(data, "chained.fit"), "chained")


def test_header_without_crc_is_accepted() -> None:
    data = fit_file(*file_id(), definition(1, 20, RECORD_FIELDS), record(RAW_RECORD),
                    *session(), header_crc=False)
    assert read_fit_fast(data, "x.fit") is not None


def test_non_activity_file_raises_skipped_like_read_fit() -> None:
    data = fit_file(*file_id(file_type=2))                       # settings
    with pytest.raises(SkippedFile) as fast:
        read_fit_fast(data, "settings.fit")
    with pytest.raises(SkippedFile) as slow:
        _read_fit()(data, "settings.fit")
    assert fast.value.reason == slow.value.reason


def _corrupt_variants() -> dict[str, bytes]:
    good = simple_run()
    bad_crc = good[:-2] + bytes([good[-2] ^ 0xFF, good[-1]])
    undefined_local = fit_file(*file_id(), record(RAW_RECORD, local=5), *session())
    odd_arch = bytearray(fit_file(*file_id(), definition(1, 20, RECORD_FIELDS),
                                  record(RAW_RECORD), *session()))
    arch_at = odd_arch.index(definition(1, 20, RECORD_FIELDS)) + 2
    odd_arch[arch_at] = 2
    odd_arch[-2:] = struct.pack("<H", Crc.calculate(bytes(odd_arch[:-2])))
    unknown_base = fit_file(*file_id(), definition(1, 20, [(3, UINT8)])[:-1] + b"\x11",
                            b"\x01\x96", *session())
    accumulated = fit_file(*file_id(), definition(1, 20, [(253, UINT32), (8, UINT8)]),
                           data_message(1, [(253, UINT32), (8, UINT8)], [T0, 1]), *session())
    twice = [(253, UINT32), (3, UINT8), (3, UINT8)]
    duplicate_field = fit_file(*file_id(), definition(1, 20, twice),
                               data_message(1, twice, [T0, 140, 150]), *session())
    return {
        "field defined twice": duplicate_field,
        "bad file CRC": bad_crc,
        "truncated": good[:-7],
        "trailing garbage": good + b"\x00\x01",
        "bad signature": good[:8] + b".FTT" + good[12:],
        "undefined local type": undefined_local,
        "architecture byte 2": bytes(odd_arch),
        "unknown base type": unknown_base,
        "compressed_speed_distance of 1 byte": accumulated,
        "empty": b"",
    }


@pytest.mark.parametrize("case", list(_corrupt_variants()))
def test_declines_what_it_does_not_handle_with_certainty(case: str) -> None:
    data = _corrupt_variants()[case]
    assert read_fit_fast(data, "odd.fit") is None
    try:                                 # the fallback still behaves as a reader must
        _read_fit()(data, "odd.fit")
    except RunlogError as error:
        assert isinstance(error, FileReadError | SkippedFile)


def test_developer_fields_skipped_by_size() -> None:
    """developer_data_id + field_description declare a uint16 field; records carry it."""
    dev_id_fields = [(3, UINT8)]
    desc_fields = [(0, UINT8), (1, UINT8), (2, UINT8)]       # index, field number, base type
    dev_record = definition(1, 20, RECORD_FIELDS, dev_fields=[(7, 2, 0)])
    row = record(RAW_RECORD) + struct.pack("<H", 0xBEEF)
    data = fit_file(*file_id(), definition(3, 207, dev_id_fields),
                    data_message(3, dev_id_fields, [0]),
                    definition(4, 206, desc_fields), data_message(4, desc_fields, [0, 7, UINT16]),
                    dev_record, row, *session())
    fast = read_fit_fast(data, "dev.fit")
    assert fast is not None and fast[0].samples["hr_bpm"].tolist() == [150]
    _assert_same(fast, _read_fit()(data, "dev.fit"), "developer")
    undeclared = fit_file(*file_id(), dev_record, row, *session())
    assert read_fit_fast(undeclared, "dev.fit") is None


# --- the corpus -----------------------------------------------------------------------------

def _assert_same(fast: list, slow: list, label: str) -> None:
    """The fast activities equal the fitparse reader's (floats within 1e-6 relative)."""
    assert len(fast) == len(slow), label
    for a, b in zip(fast, slow, strict=True):
        assert len(a.samples) == len(b.samples), label
        assert a.samples["timestamp"].equals(b.samples["timestamp"]), label
        for column in FLOAT_SAMPLE_COLUMNS:
            x, y = a.samples[column].to_numpy(), b.samples[column].to_numpy()
            assert np.array_equal(np.isnan(x), np.isnan(y)), (label, column)
            ok = ~np.isnan(y)
            np.testing.assert_allclose(x[ok], y[ok], rtol=1e-6, err_msg=f"{label} {column}")
        assert a.summary.keys() == b.summary.keys(), label
        for key, value in b.summary.items():
            assert a.summary[key] == pytest.approx(value, rel=1e-6), (label, key)
        for attr in ("sport", "sub_sport", "sport_raw", "device", "start_utc", "tz_offset_min",
                     "pauses", "leg_index", "notes", "source_format"):
            assert getattr(a, attr) == getattr(b, attr), (label, attr)


def _corpus_fit_files(corpus: Path, catalogue: pd.DataFrame) -> pd.DataFrame:
    is_fit = (catalogue["format"] == "fit") | (
        (catalogue["format"] == "gz") & (catalogue["inner_format"] == "fit"))
    return catalogue[is_fit]


def _outcome(reader, data: bytes, name: str):
    try:
        return reader(data, name)
    except RunlogError as error:
        return error


@pytest.fixture(scope="module")
def corpus_outcomes(corpus: Path,
                    catalogue: pd.DataFrame) -> list[tuple[pd.Series, object, object]]:
    """(catalogue row, fast outcome, read_fit outcome) for every FIT file of the corpus."""
    read_fit = _read_fit()
    rows = _corpus_fit_files(corpus, catalogue)
    assert len(rows) >= 60, "the corpus should hold its 64+ FIT files"
    out = []
    for _, row in rows.iterrows():
        data = (corpus / row["path"]).read_bytes()
        if row["path"].endswith(".gz"):
            data = gzip.decompress(data)
        out.append((row, _outcome(read_fit_fast, data, row["path"]),
                    _outcome(read_fit, data, row["path"])))
    return out


@pytest.mark.corpus
def test_corpus_fast_path_declines_or_equals_read_fit(corpus_outcomes) -> None:
    compared = 0
    for row, fast, slow in corpus_outcomes:
        label = row["path"]
        if fast is None:
            continue
        if isinstance(fast, Exception):
            assert type(fast) is type(slow), label
            assert fast.reason == slow.reason, label
            continue
        assert not isinstance(slow, Exception), (label, slow)
        _assert_same(fast, slow, label)
        compared += sum(len(a.samples) for a in fast)
    assert compared > 100_000          # the bulk of the corpus' records really compared


@pytest.mark.corpus
def test_corpus_fast_path_is_used_for_real_running_files(corpus_outcomes) -> None:
    """Clean running files (fitparse 'ok' in the catalogue): fewer than 10 % declined."""
    running = [(row, fast) for row, fast, _ in corpus_outcomes
               if row["sport_norm"] == "run" and row["fitparse"] == "ok"]
    assert len(running) >= 10
    declined = [row["path"] for row, fast in running if fast is None]
    assert len(declined) < 0.10 * len(running), declined


@pytest.mark.corpus
def test_corpus_damaged_files_are_declined(corpus_outcomes) -> None:
    """Files read_fit rejects, or imports with a damage note, go to the fitparse path."""
    damaged = 0
    for row, fast, slow in corpus_outcomes:
        if isinstance(slow, FileReadError) or (
                isinstance(slow, list)
                and any(word in note for a in slow for note in a.notes
                        for word in ("CRC", "truncated", "damaged"))):
            damaged += 1
            assert fast is None, row["path"]
    assert damaged >= 5          # bad CRC ×2, truncated ×2, corrupt header, undefined type


def _fast_columns(data: bytes) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The fast path's raw record columns, chained-file part per record, compressed flags."""
    from runlog.readers import fastfit

    walk = fastfit._walk(data)
    data_np = np.frombuffer(data, dtype=np.uint8)
    positions, lids = walk.positions, walk.lids
    compressed = (data_np[positions] & 0x80) != 0
    stamps = fastfit._message_timestamps(data_np, walk, positions, lids)
    kinds = np.array([layout.mesg_num for layout in walk.layouts])[lids]
    names = list(fastfit._RECORD_FRAME_COLUMNS)
    columns = fastfit._record_columns(data_np, walk, positions, lids, stamps, kinds == 20, names)
    parts = (np.cumsum(kinds == 0) - 1)[kinds == 20]
    return columns, parts, compressed


@pytest.mark.corpus
def test_corpus_compressed_timestamps_equal_fitparse(corpus: Path) -> None:
    """antfs-dump.63.fit: 686 records with compressed-timestamp headers (device-relative
    times, so both readers skip the file): every raw record column equals fitparse's."""
    from runlog.readers import fit as fit_module

    data = (corpus / "dtcooper__python-fitparse/tests/files/antfs-dump.63.fit").read_bytes()
    columns, _, compressed = _fast_columns(data)
    assert compressed.sum() >= 600
    names = list(fit_module._RECORD_FIELDS)
    reference = pd.DataFrame.from_records(fit_module._decode(data, True).records, columns=names)
    assert len(reference) == len(columns["timestamp"])
    for name in names:
        expected = pd.to_numeric(reference[name], errors="coerce").to_numpy(dtype="float64")
        np.testing.assert_array_equal(columns[name], expected, err_msg=name)
    assert np.isfinite(columns["timestamp"]).all()


@pytest.mark.corpus
@pytest.mark.parametrize("path", [
    "corriporai__runpandas/runpandas/tests/io/data/fit/run.fit",
    "dtcooper__python-fitparse/tests/files/2019-02-17-062644-ELEMNT-297E-195-0.fit",
    "dtcooper__python-fitparse/tests/files/developer-types-sample.fit",
    "polyvertex__fitdecode/tests/files/garmin-fr935-cr.fit",
    "dtcooper__python-fitparse/tests/files/antfs-dump.63.fit",
])
def test_record_arrays_identical_to_fit_module(corpus: Path, path: str) -> None:
    """The fast path builds fit.py's internal record arrays itself: they must be identical
    (columns, order, dtypes, values) to the arrays of fit.py's ``_record_frame`` of
    fitparse's records."""
    from runlog.readers import fastfit
    from runlog.readers import fit as fit_module

    data = (corpus / path).read_bytes()
    columns, parts, _ = _fast_columns(data)
    fast = fastfit._record_arrays(columns, parts, fit_module)
    reference = fit_module._record_arrays(
        fit_module._record_frame(fit_module._decode(data, True)))
    assert list(fast) == list(reference)
    for name, values in reference.items():
        assert fast[name].dtype == values.dtype, name
        np.testing.assert_array_equal(fast[name], values, err_msg=name)


def test_mutated_files_decline_or_equal_read_fit() -> None:
    """Random bytes changed inside the messages (CRCs then recomputed, so the walk sees them):
    the fast path declines, raises what read_fit raises, or equals read_fit."""
    rng = np.random.default_rng(int(os.environ.get("FASTFIT_SEED", "3")))
    second = list(RAW_RECORD)
    second[0] = T0 + 1
    body = b"".join([*file_id(), definition(1, 20, RECORD_FIELDS), record(RAW_RECORD),
                     record(second), *session()])
    outcomes = {"declined": 0, "equal": 0, "same error": 0}
    for _ in range(60):
        mutated = bytearray(body)
        for at in rng.integers(0, len(mutated), 2):
            mutated[at] = int(rng.integers(0, 256))
        data = fit_file(bytes(mutated))
        fast = _outcome(read_fit_fast, data, "fuzz.fit")
        slow = _outcome(_read_fit(), data, "fuzz.fit")
        if fast is None:
            outcomes["declined"] += 1
        elif isinstance(fast, Exception):
            assert type(fast) is type(slow) and fast.reason == slow.reason
            outcomes["same error"] += 1
        else:
            assert not isinstance(slow, Exception), slow
            _assert_same(fast, slow, "fuzz")
            outcomes["equal"] += 1
    assert outcomes["equal"] > 10, outcomes          # most mutations hit plain values
