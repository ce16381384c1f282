"""The on-disk store: a directory of immutable Parquet files tied together by a manifest.

Layout of a store directory::

    manifest.json                       the current state (schema version, generation, files)
    lock                                writers take an exclusive flock on it
    runs-<gen>-<uuid8>.parquet          one row per run (RUN_IDENTITY + RUN_METRIC columns)
    files-<gen>-<uuid8>.parquet         every file ever seen (FILES_COLUMNS)
    annotations-<gen>-<uuid8>.parquet   what the runner said (ANNOTATION_COLUMNS)
    cadence_bins-<gen>-<uuid8>.parquet  cadence per speed bin (CADENCE_BIN_COLUMNS)
    samples-<gen>-<uuid8>.parquet       append-only parts of the samples table

Atomicity: a commit writes every new file under a temporary name, fsyncs it, renames it to its
final unique name and fsyncs the directory; then it writes ``manifest.json.tmp``, fsyncs it and
``os.replace``\\ s it over ``manifest.json`` (and fsyncs the directory again). Only after that are
files the new manifest no longer lists deleted. A writer killed at any moment therefore leaves
either the old or the new store; its stray files are removed by the next writer. A new store's
first writer writes an empty manifest (generation 0) before any data file, so data files
without a readable manifest mean a lost or damaged manifest: readers and writers raise
:class:`~runlog.errors.ManifestLostError` (a writer then deletes nothing) and
:meth:`Store.recover_manifest` (called by :meth:`Store.rebuild`) lists them in a new one.

Readers take no lock: they read ``manifest.json`` (always complete) and then the files it lists.
When a file vanished because a writer committed and collected it meanwhile, they re-read the
manifest and retry.

Damage (a listed file missing or unreadable) raises StoreError naming the file;
:meth:`Store.check` lists every problem and :meth:`Store.rebuild` makes the store consistent
again without touching annotations. Older stores are upgraded in place by :data:`MIGRATIONS`.

Samples are never rewritten on import: each commit that adds runs adds one part, sorted by
``run_id`` and ``timestamp``, whose manifest entry lists its run ids (:data:`PART_RUN_IDS`).
Above :data:`COMPACT_PARTS_ABOVE` parts a commit streams them into one. Parts are only
rewritten when runs are removed or replaced, and only the parts listing those runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from runlog import schema
from runlog.activity import SAMPLE_COLUMNS
from runlog.errors import (
    InputError,
    ManifestLostError,
    RunNotFoundError,
    StoreBusyError,
    StoreError,
)
from runlog.schema import (
    ANNOTATION_COLUMNS,
    CADENCE_BIN_COLUMNS,
    PROFILE_FIELDS,
    STORE_FORMAT_NAME,
    STORE_SCHEMA_VERSION,
)

#: The files table: one row per file ever seen (by content hash; unreadable files by path).
FILES_COLUMNS: dict[str, str] = {
    "path": "path of the file as shown to the runner (archive members as archive.zip!member)",
    "sha256": "content hash of the (decompressed) file; missing when it could not be read",
    "size_bytes": "size on disk when last seen [bytes]",
    "mtime_ns": "modification time when last seen [ns since the epoch]",
    "format": "fit | gpx | tcx",
    "outcome": "new | duplicate | skipped | failed (latest outcome wins)",
    "reason": "why it was a duplicate, skipped or failed",
    "run_ids": "comma-separated ids of the runs it added",
    "matched_run_id": "the stored run it duplicated, if any",
    "first_seen_utc": "when the file was first seen",
    "last_seen_utc": "when the file was last seen",
}

MANIFEST = "manifest.json"
LOCK = "lock"
FORMAT_NAME = STORE_FORMAT_NAME
#: Tables stored as one whole file each (rewritten when they change).
WHOLE_TABLES = ("runs", "files", "annotations", "cadence_bins")
#: More samples parts than this and a commit compacts them into one.
COMPACT_PARTS_ABOVE = 32
#: Rows per Parquet row group of a samples part (row-group statistics let filters skip).
SAMPLES_ROW_GROUP = 131_072
#: Key of a samples part's manifest entry that lists the part's run ids (sorted), so that a
#: commit replacing or removing runs, and a read of some runs' samples, open only the parts
#: that hold them. Entries written before it have none: their ids are read from the file.
PART_RUN_IDS = "run_ids"
#: How often a reader re-reads the manifest when a file vanished under it.
READ_RETRIES = 5
#: Fields of the profile besides PROFILE_FIELDS.
PRIVACY_ZONES = "privacy_zones"
PRIVACY_ZONE_KEYS = ("lat_deg", "lon_deg", "radius_m")

_OWN_FILE = re.compile(r"^(runs|files|annotations|cadence_bins|samples)-\d+-[0-9a-f]{8}\.parquet$")
_HINT = "run `runlog store check` to list the problems and `runlog store rebuild` to recover"

# --- dtypes: chosen explicitly so that every table round-trips through Parquet exactly ---------
STR = "str"
BOOL = "boolean"
INT = "Int64"
FLOAT = "float64"
UTC = "datetime64[ns, UTC]"

_EXPLICIT_RUN_DTYPES: dict[str, str] = {
    "run_id": STR, "source_file": STR, "source_format": STR, "file_sha256": STR, "device": STR,
    "sport": STR, "sub_sport": STR, "sport_inferred": BOOL, "multisport_leg": INT, "name": STR,
    "gear": STR, "start_utc": UTC, "tz_offset_min": INT, "tz_source": STR,
    "summary_distance_m": FLOAT, "summary_elapsed_s": FLOAT, "summary_timer_s": FLOAT,
    "elapsed_s": FLOAT, "moving_s": FLOAT, "distance_m": FLOAT, "distance_source": STR,
    "avg_speed_mps": FLOAT, "v_main_gap_mps": FLOAT, "v_ngp_mps": FLOAT, "ascent_m": FLOAT,
    "descent_m": FLOAT, "steep_descent_min": FLOAT, "altitude_source": STR, "avg_hr_bpm": FLOAT,
    "max_hr_bpm": FLOAT, "best_30s_hr_bpm": FLOAT, "main_hr_bpm": FLOAT,
    "avg_cadence_spm": FLOAT, "temp_c": FLOAT, "temp_source": STR, "warmup_present": BOOL,
    "warmup_easy_speed_ratio": FLOAT, "warmup_hr_p80_bpm": FLOAT, "start_speed_ratio": FLOAT,
    "start_hr_bpm": FLOAT, "hard_start": BOOL,
    "finish_speed_ratio": FLOAT, "abrupt_finish": BOOL, "main_hr_pct_max": FLOAT,
    "hr_max_used_bpm": FLOAT, "hr_max_source": STR, "has_gps": BOOL, "has_hr": BOOL,
    "has_cadence": BOOL,
    "quality_issues": STR, "quality_notes": STR, "quality_ok": BOOL, "metrics_version": INT,
}
SAMPLE_DTYPES: dict[str, str] = {"run_id": STR, "timestamp": UTC,
                                 **{c: FLOAT for c in SAMPLE_COLUMNS if c != "timestamp"}}
FILES_DTYPES: dict[str, str] = {
    "path": STR, "sha256": STR, "size_bytes": INT, "mtime_ns": INT, "format": STR,
    "outcome": STR, "reason": STR, "run_ids": STR, "matched_run_id": STR,
    "first_seen_utc": UTC, "last_seen_utc": UTC,
}
ANNOTATION_DTYPES: dict[str, str] = {
    "run_id": STR, "electrolytes": BOOL, "sodium_mg": FLOAT, "fluid_l": FLOAT,
    "knee_pain": INT, "knee_pain_next_morning": BOOL, "cramp": BOOL, "shoes": STR,
    "shoe_type": STR, "rpe": INT, "air_temp_c": FLOAT, "humidity_pct": FLOAT,
    "wind_kmh": FLOAT, "mass_before_kg": FLOAT, "mass_after_kg": FLOAT,
    "warmed_up_before": BOOL, "note": STR, "updated_utc": UTC,
}
CADENCE_BIN_DTYPES: dict[str, str] = {"run_id": STR, "speed_bin_mps": FLOAT, "minutes": FLOAT,
                                      "median_cadence_spm": FLOAT}
TABLE_DTYPES: dict[str, dict[str, str]] = {
    "runs": _EXPLICIT_RUN_DTYPES, "files": FILES_DTYPES, "annotations": ANNOTATION_DTYPES,
    "cadence_bins": CADENCE_BIN_DTYPES, "samples": SAMPLE_DTYPES,
}
#: Sort order of the whole tables kept sorted (stable; missing values last).
SORT_KEYS: dict[str, list[str]] = {"runs": ["start_utc", "run_id"],
                                   "cadence_bins": ["run_id", "speed_bin_mps"]}
#: Tables whose columns outside their dtype map are dropped (fixed schemas).
_CLOSED_TABLES = {"files", "annotations", "cadence_bins", "samples"}


def _with_schema_columns(explicit: dict[str, str], *contracts: dict[str, str]) -> dict[str, str]:
    """Dtypes of every column the schema contracts list (in their order), explicit ones first
    chosen, others inferred from the name, so a column added to runlog.schema is stored too."""
    columns = [c for contract in contracts for c in contract]
    columns += [c for c in explicit if c not in columns]
    return {c: explicit.get(c) or infer_dtype(c) for c in columns}


def infer_dtype(column: str) -> str:
    """Store dtype for a column by its name: ``*_utc`` time, ``has_*`` boolean, unit suffix
    float, ``*_version``/``*_count`` integer, anything else text."""
    if column.endswith("_utc"):
        return UTC
    if column.startswith(("has_", "is_")):
        return BOOL
    if column.endswith(("_version", "_count", "_ns")):
        return INT
    units = ("_m", "_s", "_deg", "_c", "_pct", "_kmh", "_w_m2", "_mps", "_bpm", "_spm", "_min",
             "_ratio", "_fraction", "_kg", "_cm", "_l", "_mg", "_w", "_hpa", "_mm")
    return FLOAT if column.endswith(units) else STR


def _run_contracts() -> list[dict[str, str]]:
    """Every ``RUN_*_COLUMNS`` dict of runlog.schema, in the order the module defines them."""
    return [value for name, value in vars(schema).items()
            if name.startswith("RUN_") and name.endswith("_COLUMNS") and isinstance(value, dict)]


RUN_DTYPES = _with_schema_columns(_EXPLICIT_RUN_DTYPES, *_run_contracts())
ANNOTATION_DTYPES = _with_schema_columns(ANNOTATION_DTYPES, ANNOTATION_COLUMNS)
CADENCE_BIN_DTYPES = _with_schema_columns(CADENCE_BIN_DTYPES, CADENCE_BIN_COLUMNS)
TABLE_DTYPES.update(runs=RUN_DTYPES, annotations=ANNOTATION_DTYPES,
                    cadence_bins=CADENCE_BIN_DTYPES)

_SAMPLES_ARROW_SCHEMA = pa.schema(
    [("run_id", pa.string()), ("timestamp", pa.timestamp("ns", tz="UTC"))]
    + [(c, pa.float64()) for c in SAMPLE_COLUMNS if c != "timestamp"])

#: Migrations of older stores: ``{from_version: function(root, manifest) -> manifest}``. Each
#: function brings a manifest of ``from_version`` to ``from_version + 1``; it may write new
#: table files with :func:`write_table_file`. Old files are collected after the commit.
MIGRATIONS: dict[int, Callable[[Path, dict], dict]] = {}


# --- dtype helpers ---------------------------------------------------------------------------

_PANDAS_DTYPES = {name: pd.api.types.pandas_dtype(name) for name in (STR, BOOL, INT, FLOAT, UTC)}


def _as_dtype(values: pd.Series, dtype: str) -> pd.Series:
    """``values`` converted to one of the store's dtypes (missing stays missing)."""
    if values.dtype == _PANDAS_DTYPES[dtype]:
        return values
    if dtype == UTC:
        return pd.to_datetime(values, utc=True).dt.as_unit("ns")
    if dtype == STR:
        return values.astype(STR)
    if dtype == FLOAT:
        return pd.to_numeric(values).astype(FLOAT)
    if dtype == INT:
        if values.dtype == object or values.dtype == STR:
            values = pd.to_numeric(values)
        return values.astype(INT)
    return values.astype(dtype)


def _already_conforming(df: pd.DataFrame, table: str) -> bool:
    dtypes = TABLE_DTYPES[table]
    if list(df.columns[:len(dtypes)]) != list(dtypes):
        return False
    if table in _CLOSED_TABLES and len(df.columns) != len(dtypes):
        return False
    index = df.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        return False
    actual = df.dtypes.tolist()
    return all(a == _PANDAS_DTYPES[t] for a, t in zip(actual, dtypes.values(), strict=False))


def conform(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """``df`` with the store's columns, order and dtypes for ``table``, and a fresh RangeIndex.

    Missing known columns are added as all-missing; the runs table keeps extra columns after
    the known ones, the other tables drop them.
    """
    dtypes = TABLE_DTYPES[table]
    n = len(df)
    if _already_conforming(df, table):
        return df.copy(deep=False)  # the common case, kept cheap
    out = {}
    present = set(df.columns)
    for col, dtype in dtypes.items():
        if col in present:
            out[col] = _as_dtype(df[col].reset_index(drop=True), dtype)
        else:
            out[col] = _missing(n, dtype)
    if table not in _CLOSED_TABLES:
        for col in df.columns:
            if col not in dtypes:
                out[col] = df[col].reset_index(drop=True)
    return pd.DataFrame(out, index=pd.RangeIndex(n))


def frame_from_rows(rows: list[dict[str, Any]], table: str) -> pd.DataFrame:
    """``conform(pd.DataFrame(rows), table)``, built one typed column at a time.

    An import commits its new runs as rows (dicts): converting each column's values once
    costs about half of building an object frame and converting that. Rows with keys the
    table does not know take the general path.
    """
    dtypes = TABLE_DTYPES[table]
    keys = set().union(*rows) if rows else set()
    if not rows or keys - set(dtypes):
        return conform(pd.DataFrame(rows), table)
    n = len(rows)
    columns = {col: _as_dtype(pd.Series([row.get(col) for row in rows]), dtype)
               if col in keys else _missing(n, dtype) for col, dtype in dtypes.items()}
    return pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)


@functools.cache
def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema ``table`` is written with: the store's columns and types, and for the
    whole tables the pandas metadata ``pa.Table.from_pandas`` gives a conformed frame (so
    files written from Arrow read back exactly as those written from frames)."""
    if table == "samples":
        return _SAMPLES_ARROW_SCHEMA
    return pa.Schema.from_pandas(_empty_table(table), preserve_index=False)


#: What pyarrow raises when a Python value does not fit a column's type.
_ARROW_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError,
                            OverflowError)


def arrow_from_rows(rows: list[dict[str, Any]], table: str) -> pa.Table | None:
    """Rows (dicts) as an Arrow table of ``table``'s :func:`arrow_schema`, or None when a row
    has a key the table does not know or a value only pandas' conversions accept (the caller
    then takes :func:`frame_from_rows`). Missing keys, None, NaN, NaT and ``pd.NA`` are
    missing values, as in the frame path.

    The import commits its new runs and file outcomes this way: one ``pa.array`` per column
    costs a fraction of building the typed frame and converting it to Arrow.
    """
    schema = arrow_schema(table)
    if any(key not in TABLE_DTYPES[table] for row in rows for key in row):
        return None
    try:
        arrays = [pa.array([row.get(field.name) for row in rows], type=field.type,
                           from_pandas=True) for field in schema]
    except _ARROW_CONVERSION_ERRORS:
        return None
    return pa.Table.from_arrays(arrays, schema=schema)


def _missing(n: int, dtype: str) -> pd.Series:
    """``n`` missing values of one of the store's dtypes."""
    if n == 0:
        return pd.Series(dtype=_PANDAS_DTYPES[dtype])
    return _as_dtype(pd.Series([None] * n, dtype=object), dtype)


@functools.cache
def _empty_table(table: str) -> pd.DataFrame:
    return conform(pd.DataFrame(), table)


def empty_table(table: str) -> pd.DataFrame:
    """An empty frame with the columns and dtypes of ``table``."""
    return _empty_table(table).copy()


# --- low-level file helpers -------------------------------------------------------------------

def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_name(table: str, generation: int) -> str:
    return f"{table}-{generation:06d}-{uuid.uuid4().hex[:8]}.parquet"


#: The only dictionary-encoded column: a run id repeats on every sample of its run, and
#: samples parts' run ids are read from its dictionary pages. Measurement, time and text
#: columns gain nothing from a dictionary, which cost ~40 % of a samples write (and made
#: parts ~25 % larger under zstd).
_DICTIONARY_COLUMNS = ["run_id"]


def _write_arrow_durably(root: Path, table: pa.Table, name: str,
                         row_group_size: int | None = None) -> None:
    """Write ``table`` to a temp file, fsync it and rename it to ``root/name``."""
    tmp = root / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd", row_group_size=row_group_size,
                           use_dictionary=_DICTIONARY_COLUMNS)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, root / name)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _to_arrow(df: pd.DataFrame, table: str) -> pa.Table:
    if table == "samples":
        frame = conform(df, "samples")
        return pa.Table.from_pandas(frame, schema=_SAMPLES_ARROW_SCHEMA, preserve_index=False
                                    ).replace_schema_metadata(None)
    return pa.Table.from_pandas(df, preserve_index=False)


def _concat(first: pa.Table, second: pa.Table, table: str) -> pa.Table:
    """Two tables of ``table`` one after the other, in :func:`arrow_schema`."""
    schema = arrow_schema(table)
    return pa.concat_tables([first.replace_schema_metadata(schema.metadata),
                             second.replace_schema_metadata(schema.metadata)])


@dataclass(frozen=True)
class _FileWrite:
    """One new file of a commit: ``table`` to be written as ``name``."""

    table: pa.Table
    name: str
    row_group_size: int | None = None


#: Most files of one commit written at the same time. A commit writes up to four (runs,
#: files, cadence bins, a samples part): pyarrow encodes and compresses each, and the
#: kernel syncs it, without holding Python's GIL, so together they take about as long as
#: the largest alone.
WRITE_THREADS = 4


def _write_files_durably(root: Path, writes: list[_FileWrite]) -> None:
    """:func:`_write_arrow_durably` each of ``writes``, on threads when there are several.

    Returns when every write has ended; raises the first error of any (the files that were
    written are then the caller's to discard).
    """
    if len(writes) < 2:
        for write in writes:
            _write_arrow_durably(root, write.table, write.name, write.row_group_size)
        return
    with ThreadPoolExecutor(max_workers=min(len(writes), WRITE_THREADS),
                            thread_name_prefix="runlog-write") as pool:
        futures = [pool.submit(_write_arrow_durably, root, write.table, write.name,
                               write.row_group_size) for write in writes]
    for future in futures:
        future.result()


def write_table_file(root: Path, table: str, df: pd.DataFrame, generation: int) -> str:
    """Write one immutable table file (conformed) into the store; returns its file name.

    The file is not part of the store until a manifest lists it (for migrations; a commit
    writes its files together, :func:`_write_files_durably`).
    """
    name = _new_name(table, generation)
    frame = conform(df, table)
    _write_arrow_durably(root, _to_arrow(frame, table), name,
                         SAMPLES_ROW_GROUP if table == "samples" else None)
    return name


class _DamagedFile(Exception):
    """Internal: a file the manifest lists is missing or unreadable."""

    def __init__(self, name: str, cause: BaseException) -> None:
        super().__init__(f"{name}: {cause}")
        self.name = name
        self.cause = cause


def _read_parquet(root: Path, name: str, *, columns: list[str] | None = None,
                  read_dictionary: list[str] | None = None,
                  schema: pa.Schema | None = None) -> pa.Table:
    """One of the store's Parquet files as an Arrow table (``schema``: read as that schema).

    Without ``schema`` the file is read through ``ParquetFile``: ``pq.read_table`` goes
    through ``pyarrow.dataset``, whose import alone costs a new process ≈ 15–25 ms (and its
    set-up a few ms per call) for the same table.
    """
    try:
        if schema is not None:
            return pq.read_table(root / name, columns=columns, schema=schema,
                                 read_dictionary=read_dictionary)
        with pq.ParquetFile(root / name, read_dictionary=read_dictionary) as file:
            return file.read(columns=columns)
    except (OSError, pa.ArrowException, ValueError) as err:
        raise _DamagedFile(name, err) from err


def _empty_manifest() -> dict:
    return {"format": FORMAT_NAME, "schema_version": STORE_SCHEMA_VERSION, "generation": 0,
            "tables": dict.fromkeys(WHOLE_TABLES), "samples_parts": [], "profile": {}}


def _own_data_files(root: Path) -> list[str]:
    """Names of the store's data files (table files and samples parts) in ``root``."""
    try:
        with os.scandir(root) as entries:
            return sorted(e.name for e in entries
                          if _OWN_FILE.match(e.name) and e.is_file(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _lost_manifest_reason(files: int) -> str:
    return (f"{MANIFEST} is missing, but the folder holds {files} of the store's data files; "
            "run `runlog store rebuild` to recover them")


def _file_generation(name: str) -> tuple[str, int]:
    """(table, generation) of a data file's name: ``<table>-<generation>-<uuid8>.parquet``."""
    table, generation, _ = name.rsplit("-", 2)
    return table, int(generation)


def _salvaged_profile(root: Path) -> dict | None:
    """The profile of a damaged manifest, when its JSON still holds one."""
    try:
        profile = json.loads((root / MANIFEST).read_text(encoding="utf-8")).get("profile")
    except (OSError, ValueError, AttributeError):
        return None
    return profile if isinstance(profile, dict) else None


def _manifest_from_files(root: Path, names: list[str]) -> tuple[dict, list[str]]:
    """A manifest listing the data files ``names`` found in ``root``, and what was done.

    Whole tables: the file of the highest generation each. Samples parts: newest first,
    each unless every run it holds is already in a newer part (a compaction's leftover).
    Every file's generation is in its name; the manifest takes the highest. Parts that
    cannot be read are listed as they are, for :meth:`StoreWriter.rebuild_into` to drop.
    """
    manifest = _empty_manifest()
    newest: dict[str, tuple[int, str]] = {}
    parts: list[tuple[int, str]] = []
    for name in names:
        table, generation = _file_generation(name)
        manifest["generation"] = max(manifest["generation"], generation)
        if table == "samples":
            parts.append((generation, name))
        elif generation >= newest.get(table, (-1, ""))[0]:
            newest[table] = (generation, name)
    manifest["tables"].update({table: name for table, (_, name) in newest.items()})
    seen: set[str] = set()
    left_out = 0
    for _, name in sorted(parts, reverse=True):
        try:
            ids = _unique_run_ids(_read_parquet(root, name, columns=["run_id"]).column("run_id"))
        except _DamagedFile:
            manifest["samples_parts"].append({"file": name, "rows": 0})
            continue
        if ids and ids <= seen:
            left_out += 1
            continue
        seen |= ids
        rows = pq.read_metadata(root / name).num_rows
        manifest["samples_parts"].append(_part_entry(name, rows, ids))
    manifest["samples_parts"].reverse()  # oldest first, as commits append them
    listed = len(newest) + len(manifest["samples_parts"])
    state = "damaged" if (root / MANIFEST).exists() else "missing"
    actions = [f"{MANIFEST} was {state}: wrote a new one listing the {listed} data files "
               f"found in the folder (generation {manifest['generation']})"]
    if left_out:
        actions.append(f"left out {left_out} older samples parts whose runs are all in newer "
                       "ones")
    profile = _salvaged_profile(root)
    if profile is not None:
        manifest["profile"] = profile
    else:
        actions.append("the profile (`runlog profile`) was kept only in the lost manifest: "
                       "set it again")
    return manifest, actions


def _jsonable(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- the store ----------------------------------------------------------------------------------

class Store:
    """A runlog store directory (see the module docstring for the layout and guarantees).

    Reading never locks and never fails on a store that does not exist yet (empty frames
    with the right columns); writing goes through :meth:`writer`.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root: Path = Path(root).expanduser()
        self._cache: dict[str, pd.DataFrame] = {}
        self._file_index: tuple[str, dict, dict] | None = None
        self._cache_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # --- manifest ---------------------------------------------------------------------------
    def exists(self) -> bool:
        """True when the directory holds a committed store: a manifest of generation 1 or
        more (a writer writes generation 0 before its first commit), or a damaged one."""
        try:
            return self.generation() > 0
        except StoreError:
            return True

    def _read_manifest_raw(self) -> dict | None:
        path = self.root / MANIFEST
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            found = _own_data_files(self.root)
            if found:  # every writer writes a manifest before any data file: it was lost
                raise ManifestLostError(_lost_manifest_reason(len(found)), path=path) from None
            return None
        except OSError as err:
            raise StoreError(f"cannot read the store manifest ({err})", path=path) from err
        try:
            manifest = json.loads(text)
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
                raise ValueError("not a runlog store manifest")
            int(manifest["schema_version"])
            int(manifest["generation"])
        except (ValueError, KeyError, TypeError) as err:
            raise ManifestLostError(f"the store manifest is damaged ({err}); {_HINT}",
                                    path=path) from err
        return manifest

    def _manifest(self) -> dict:
        """The current manifest for reading, upgraded first when the store is older."""
        manifest = self._read_manifest_raw()
        if manifest is None:
            return _empty_manifest()
        version = int(manifest["schema_version"])
        _check_not_newer(version, self.root)
        if version < STORE_SCHEMA_VERSION:
            with self.writer():
                pass  # the writer migrates under the lock
            manifest = self._read_manifest_raw() or _empty_manifest()
        return manifest

    def schema_version(self) -> int:
        """Schema version of the store on disk (this runlog's version when none yet)."""
        manifest = self._read_manifest_raw()
        return STORE_SCHEMA_VERSION if manifest is None else int(manifest["schema_version"])

    def generation(self) -> int:
        """Commit counter: changes with every commit (0 for a store not yet written)."""
        manifest = self._read_manifest_raw()
        return 0 if manifest is None else int(manifest["generation"])

    # --- reading with retry -------------------------------------------------------------------
    def _read(self, fn: Callable[[dict], Any]) -> Any:
        """Run ``fn(manifest)``; retry with a fresh manifest when a file vanished meanwhile."""
        for _ in range(READ_RETRIES):
            manifest = self._manifest()
            try:
                return fn(manifest)
            except _DamagedFile as err:
                again = self._read_manifest_raw()
                if again is not None and again.get("generation") != manifest.get("generation"):
                    continue  # a writer committed and collected the file: read the new state
                raise StoreError(
                    f"store file {err.name} is missing or damaged ({err.cause}); {_HINT}",
                    path=self.root / err.name) from err
        raise StoreError(f"the store kept changing while being read; try again ({_HINT})",
                         path=self.root)

    def _table(self, manifest: dict, table: str) -> pd.DataFrame:
        name = manifest["tables"].get(table)
        if name is None:
            return empty_table(table)
        cached = self._cache.get(name)
        if cached is None:
            cached = conform(_read_parquet(self.root, name).to_pandas(), table)
            with self._cache_lock:
                self._cache = {k: v for k, v in self._cache.items()
                               if k in manifest["tables"].values()}
                self._cache[name] = cached
        return cached

    def _read_table(self, table: str) -> pd.DataFrame:
        return self._read(lambda m: self._table(m, table)).copy(deep=False)

    # --- public reading API -----------------------------------------------------------------
    def runs(self) -> pd.DataFrame:
        """One row per run, sorted by ``start_utc`` (then run_id); schema.RUN_* columns."""
        return self._read_table("runs")

    def files(self) -> pd.DataFrame:
        """Every file ever seen (:data:`FILES_COLUMNS`)."""
        return self._read_table("files")

    def annotations(self) -> pd.DataFrame:
        """What the runner told us, one row per run_id (schema.ANNOTATION_COLUMNS)."""
        return self._read_table("annotations")

    def cadence_bins(self) -> pd.DataFrame:
        """Cadence per speed bin, one row per (run, bin) (schema.CADENCE_BIN_COLUMNS)."""
        return self._read_table("cadence_bins")

    def profile(self) -> dict:
        """The runner's profile: only the fields that were set (PROFILE_FIELDS, privacy_zones)."""
        return dict(self._manifest().get("profile") or {})

    def samples(self, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Samples (run_id + activity.SAMPLE_COLUMNS) of ``run_ids`` (all runs when None).

        Sorted by run_id, then timestamp. Only the parts listing a wanted run, and in them
        only matching row groups (Parquet filter), are read.
        """
        wanted = None if run_ids is None else sorted({str(r) for r in run_ids})
        if wanted is not None and not wanted:
            return empty_table("samples")

        def read(manifest: dict) -> pd.DataFrame:
            # loaded here: only this method needs it, and report/chart never read samples
            import pyarrow.dataset as pads

            names = [p["file"] for p in manifest["samples_parts"]
                     if wanted is None or _may_hold(p, wanted)]
            if not names:
                return empty_table("samples")
            for name in names:
                if not (self.root / name).is_file():
                    raise _DamagedFile(name, FileNotFoundError("no such file"))
            try:
                dataset = pads.dataset([str(self.root / n) for n in names], format="parquet",
                                       schema=_SAMPLES_ARROW_SCHEMA)
                filt = None if wanted is None else pads.field("run_id").isin(wanted)
                table = dataset.to_table(filter=filt)
            except (OSError, pa.ArrowException, ValueError) as err:
                raise _DamagedFile(_first_bad_part(self.root, names) or names[0], err) from err
            table = table.sort_by([("run_id", "ascending"), ("timestamp", "ascending")])
            return conform(table.to_pandas(), "samples")

        return self._read(read)

    # --- look-ups -----------------------------------------------------------------------------
    def resolve_run(self, ref: str) -> str:
        """Run id for ``ref``: a full id, a unique prefix of one, or ``last`` (latest start)."""
        ref = str(ref).strip().lower()
        runs = self.runs()
        if ref == "last":
            if runs.empty:
                raise RunNotFoundError("no runs in the store yet; import some first",
                                       path=self.root)
            latest = runs.sort_values(["start_utc", "run_id"], kind="stable",
                                      na_position="first").iloc[-1]
            return str(latest["run_id"])
        if not ref:
            raise RunNotFoundError("empty run id")
        ids = runs["run_id"]
        if (ids == ref).any():
            return ref
        matches = ids[ids.str.startswith(ref)].tolist()
        if len(matches) == 1:
            return str(matches[0])
        if not matches:
            raise RunNotFoundError(f"no run matches '{ref}' (give a run id, a prefix or 'last')")
        shown = ", ".join(sorted(matches)[:10]) + (" ..." if len(matches) > 10 else "")
        raise RunNotFoundError(f"run prefix '{ref}' is ambiguous: it matches {len(matches)} "
                               f"runs ({shown})")

    def _files_index(self) -> tuple[pd.DataFrame, dict, dict]:
        def build(manifest: dict) -> tuple[pd.DataFrame, dict, dict]:
            name = manifest["tables"].get("files") or ""
            frame = self._table(manifest, "files")
            index = self._file_index
            if index is not None and index[0] == name:
                return frame, index[1], index[2]
            # later rows win (the table is unique by key anyway)
            hashed = frame["sha256"].notna().to_numpy()
            by_hash = dict(zip(frame["sha256"][hashed], np.flatnonzero(hashed), strict=True))
            stat_keys = zip(frame["path"], frame["size_bytes"], frame["mtime_ns"], strict=True)
            by_stat = dict(zip(stat_keys, range(len(frame)), strict=True))
            self._file_index = (name, by_hash, by_stat)
            return frame, by_hash, by_stat

        return self._read(build)

    def known_file(self, sha256: str | None = None, path: str | None = None,
                   size: int | None = None, mtime_ns: int | None = None) -> pd.Series | None:
        """The files-table row for this content hash, or for this exact (path, size, mtime_ns).

        ``None`` when the store has never seen it.
        """
        frame, by_hash, by_stat = self._files_index()
        position = None
        if sha256 is not None:
            position = by_hash.get(sha256)
        if position is None and path is not None and size is not None and mtime_ns is not None:
            position = by_stat.get((path, int(size), int(mtime_ns)))
        return None if position is None else frame.iloc[position].copy()

    def find_duplicates(self, candidates: pd.DataFrame, *, start_tolerance_s: float = 60,
                        distance_tolerance: float = 0.02) -> pd.Series:
        """Stored run that each candidate duplicates, aligned with ``candidates.index``.

        Rule: a stored run is a duplicate of a candidate when their UTC starts differ by at
        most ``start_tolerance_s`` seconds (inclusive) AND their distances differ by at most
        ``distance_tolerance`` of the larger distance (inclusive) — or both distances are
        missing or 0. When several stored runs qualify, the one nearest in start time wins.
        Candidates with a missing start match nothing. Result: run_id, or ``<NA>``.

        Vectorised: every stored run within the start window is found with ``searchsorted``
        on the sorted starts (an exact range join, not just the nearest start), then the
        distance rule is applied to all pairs at once.
        """
        result = pd.Series(pd.NA, index=candidates.index, dtype="string")
        runs = self.runs()
        runs = runs[runs["start_utc"].notna()].sort_values("start_utc", kind="stable")
        if runs.empty or candidates.empty:
            return result
        stored_ns = runs["start_utc"].to_numpy(dtype="datetime64[ns]").astype("int64")
        starts = pd.to_datetime(candidates["start_utc"], utc=True).dt.as_unit("ns")
        valid = starts.notna().to_numpy()
        cand_ns = starts.to_numpy(dtype="datetime64[ns]").astype("int64")
        tol_ns = round(start_tolerance_s * 1e9)
        lo = np.searchsorted(stored_ns, cand_ns - tol_ns, side="left")
        hi = np.searchsorted(stored_ns, cand_ns + tol_ns, side="right")
        counts = np.where(valid, hi - lo, 0)
        if counts.sum() == 0:
            return result
        cand_pos = np.repeat(np.arange(len(candidates)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        stored_pos = np.repeat(lo, counts) + offsets
        d_cand = pd.to_numeric(candidates["distance_m"]).to_numpy(dtype=float)[cand_pos]
        d_stored = runs["distance_m"].to_numpy(dtype=float)[stored_pos]
        no_cand = np.isnan(d_cand) | (d_cand == 0)
        no_stored = np.isnan(d_stored) | (d_stored == 0)
        larger = np.fmax(d_cand, d_stored)
        close = np.abs(d_cand - d_stored) <= distance_tolerance * larger
        ok = (no_cand & no_stored) | (~no_cand & ~no_stored & close)
        pairs = pd.DataFrame({"cand": cand_pos[ok], "stored": stored_pos[ok],
                              "dt": np.abs(cand_ns[cand_pos[ok]] - stored_ns[stored_pos[ok]])})
        best = pairs.sort_values(["cand", "dt"], kind="stable").drop_duplicates("cand")
        matched = np.full(len(candidates), None, dtype=object)
        matched[best["cand"].to_numpy()] = runs["run_id"].to_numpy(dtype=object)[
            best["stored"].to_numpy()]
        return pd.Series(matched, index=candidates.index, dtype="string")

    # --- writing ------------------------------------------------------------------------------
    def recover_manifest(self, timeout_s: float = 10.0) -> list[str]:
        """When ``manifest.json`` is missing or damaged while the folder still holds the
        store's data files, write a new manifest listing them; returns what was done.

        Each table's newest file (by generation in its name) and every samples part are
        listed, except parts whose runs all sit in a newer part (left over from a
        compaction). A healthy store is left as it is (an empty list). The profile lived in
        the manifest: it is kept when the damaged manifest still holds it, else it is lost
        and the returned lines say so. :meth:`rebuild` calls this first.
        """
        with StoreWriter(self, timeout_s, recover=True) as tx:
            return list(tx.recovered)

    def writer(self, timeout_s: float = 10.0) -> StoreWriter:
        """A context manager that locks the store and commits atomically on a clean exit.

        >>> with store.writer() as tx:           # doctest: +SKIP
        ...     tx.add_runs(runs, samples)

        An exception inside the ``with`` discards every change. Raises StoreBusyError when
        another writer holds the lock for longer than ``timeout_s``.
        """
        return StoreWriter(self, timeout_s)

    # --- consistency --------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Problems found in the store, one sentence each (empty list: all good).

        Looks for missing or unreadable files, runs without samples, samples without runs,
        cadence bins and annotations for runs not in the store (annotations are kept, never
        deleted; they are listed so the runner knows).
        """
        problems: list[str] = []
        try:
            manifest = self._read_manifest_raw()
        except StoreError as err:
            return [err.reason]
        if manifest is None:
            return []
        version = int(manifest["schema_version"])
        if version > STORE_SCHEMA_VERSION:
            return [f"store was written by a newer runlog (schema {version}); upgrade runlog"]
        frames: dict[str, pd.DataFrame] = {}
        for table in WHOLE_TABLES:
            name = manifest["tables"].get(table)
            if name is None:
                frames[table] = empty_table(table)
                continue
            try:
                frames[table] = conform(_read_parquet(self.root, name).to_pandas(), table)
            except _DamagedFile as err:
                problems.append(f"{table} table file {name} is missing or unreadable "
                                f"({err.cause})")
        sample_ids: set[str] = set()
        for part in manifest["samples_parts"]:
            try:
                ids = _read_parquet(self.root, part["file"], columns=["run_id"])
            except _DamagedFile as err:
                problems.append(f"samples part {part['file']} is missing or unreadable "
                                f"({err.cause})")
                continue
            if ids.num_rows != part.get("rows", ids.num_rows):
                problems.append(f"samples part {part['file']} has {ids.num_rows} rows, "
                                f"the manifest says {part['rows']}")
            part_ids = _unique_run_ids(ids.column("run_id"))
            listed = part.get(PART_RUN_IDS)
            if isinstance(listed, list) and set(listed) != part_ids:
                problems.append(f"samples part {part['file']} holds other runs than the "
                                "manifest lists for it")
            sample_ids.update(part_ids)
        if "runs" in frames:
            run_ids = set(frames["runs"]["run_id"])
            if frames["runs"]["run_id"].duplicated().any():
                problems.append("the runs table lists some run_id more than once")
            parts_ok = not any("samples part" in p for p in problems)
            if parts_ok:
                _problem(problems, run_ids - sample_ids, "without samples")
                _problem(problems, sample_ids - run_ids, "not in the store with samples")
            if "cadence_bins" in frames:
                _problem(problems, set(frames["cadence_bins"]["run_id"]) - run_ids,
                         "not in the store with cadence bins")
            if "annotations" in frames:
                _problem(problems, set(frames["annotations"]["run_id"]) - run_ids,
                         ANNOTATIONS_WAITING + " (kept)")
        return problems

    def rebuild(self, timeout_s: float = 10.0) -> list[str]:
        """Make a damaged store consistent again; returns what was done, one sentence each.

        Unreadable table files are replaced by empty tables, unreadable samples parts are
        dropped, runs left without samples are removed (with their cadence bins), samples of
        runs not in the store are removed, and files-table rows of runs that are gone are
        forgotten so the next import reads those files again. Annotations are never touched.
        """
        with StoreWriter(self, timeout_s, recover=True) as tx:
            actions = list(tx.recovered)
            tx.rebuild_into(actions)
        return actions


#: How :meth:`Store.check` words annotations whose runs are gone (kept until they come back).
ANNOTATIONS_WAITING = "not in the store with annotations"


def _problem(problems: list[str], ids: set[str], what: str) -> None:
    """'3 runs without samples: a, b, c' (the first ten ids)."""
    if ids:
        shown = ", ".join(sorted(ids)[:10]) + (" ..." if len(ids) > 10 else "")
        problems.append(f"{len(ids)} run{'' if len(ids) == 1 else 's'} {what}: {shown}")


def _first_bad_part(root: Path, names: list[str]) -> str | None:
    for name in names:
        try:
            pq.read_metadata(root / name)
        except (OSError, pa.ArrowException, ValueError):
            return name
    return None


def _check_not_newer(version: int, root: Path) -> None:
    if version > STORE_SCHEMA_VERSION:
        raise StoreError(f"store was written by a newer runlog (schema {version}); "
                         "upgrade runlog", path=root)


# --- the writer ---------------------------------------------------------------------------------

class StoreWriter:
    """One atomic transaction on a store: use as ``with store.writer() as tx``.

    Changes are kept in memory and written as one commit on a clean exit (see the module
    docstring); nothing is written when the block raises.
    """

    def __init__(self, store: Store, timeout_s: float = 10.0, recover: bool = False) -> None:
        self.store = store
        self.root = store.root
        self.timeout_s = timeout_s
        #: Write a new manifest from the folder's files when it is missing or damaged
        #: (:meth:`Store.recover_manifest`); ``recovered`` then says what was done.
        self._recover = recover
        self.recovered: list[str] = []
        self._lock_fd: int | None = None
        self._base: dict = _empty_manifest()
        # A changed whole table is held either as a frame (the general path) or, when only
        # the import's Arrow path changed it, as an Arrow table in arrow_schema(table).
        self._tables: dict[str, pd.DataFrame] = {}
        self._arrow: dict[str, pa.Table] = {}
        self._profile: dict | None = None
        self._new_samples: list[pa.Table] = []
        self._dropped_sample_ids: set[str] = set()
        self._written: list[str] = []

    # --- context manager --------------------------------------------------------------------
    def __enter__(self) -> StoreWriter:
        self.root.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            manifest = self._starting_manifest()
            _check_not_newer(int(manifest["schema_version"]), self.root)
            self._base = self._migrate(manifest)
        except BaseException:
            self._release_lock()
            raise
        return self

    def _starting_manifest(self) -> dict:
        """The manifest this transaction starts from (we hold the lock).

        A new store gets an empty manifest (generation 0) before any data file is written,
        so data files without a manifest always mean a lost manifest, never a first commit
        under way or interrupted. Recovering, a missing or damaged manifest is replaced by
        one listing the folder's data files (:func:`_manifest_from_files`).
        """
        try:
            manifest = self.store._read_manifest_raw()
        except ManifestLostError:
            if not self._recover:
                raise
            manifest = None
        if manifest is not None:
            return manifest
        found = _own_data_files(self.root)
        if found:  # only a recovering writer gets here (readers raise on lost manifests)
            manifest, self.recovered = _manifest_from_files(self.root, found)
        else:
            manifest = _empty_manifest()
        self._write_manifest(manifest)
        return manifest

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._commit()
            else:
                self._discard_written()
            self._collect_garbage(self._base)
        finally:
            self._release_lock()

    def _acquire_lock(self) -> None:
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._lock_fd = fd
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreBusyError("store is busy: another runlog is writing to it",
                                         path=self.root) from None
                time.sleep(0.05)

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- migrations ---------------------------------------------------------------------------
    def _migrate(self, manifest: dict) -> dict:
        """Bring an older store up to STORE_SCHEMA_VERSION in place (we hold the lock)."""
        version = int(manifest["schema_version"])
        if version >= STORE_SCHEMA_VERSION:
            return manifest
        migrated = dict(manifest)
        while version < STORE_SCHEMA_VERSION:
            step = MIGRATIONS.get(version)
            if step is None:
                raise StoreError(f"no migration from store schema {version} to "
                                 f"{version + 1}; this runlog cannot open the store",
                                 path=self.root)
            migrated = step(self.root, migrated)
            version += 1
            migrated["schema_version"] = version
        migrated["generation"] = int(manifest["generation"]) + 1
        self._write_manifest(migrated)
        self._collect_garbage(migrated)
        return migrated

    # --- loading the current state ----------------------------------------------------------
    def _current(self, table: str) -> pd.DataFrame:
        """The table as this transaction sees it (loaded once, then changed in memory)."""
        if table in self._arrow:
            self._tables[table] = conform(self._arrow.pop(table).to_pandas(), table)
        if table not in self._tables:
            name = self._base["tables"].get(table)
            self._tables[table] = (empty_table(table) if name is None else
                                   conform(self._read_whole(name).to_pandas(), table))
        return self._tables[table]

    def _current_arrow(self, table: str) -> pa.Table | None:
        """The table as this transaction sees it, as Arrow in :func:`arrow_schema`; None
        when it has other columns or types (an older store, extra runs columns): the frame
        path handles those."""
        if table in self._arrow:
            return self._arrow[table]
        schema = arrow_schema(table)
        if table in self._tables:
            frame = conform(self._tables[table], table)
            if list(frame.columns) != schema.names:
                return None
            current = _to_arrow(frame, table)
        else:
            name = self._base["tables"].get(table)
            current = schema.empty_table() if name is None else self._read_whole(name)
            if not current.schema.equals(schema, check_metadata=False):
                return None
        self._tables.pop(table, None)
        self._arrow[table] = current.replace_schema_metadata(schema.metadata)
        return self._arrow[table]

    def _read_whole(self, name: str) -> pa.Table:
        try:
            return _read_parquet(self.root, name)
        except _DamagedFile as err:
            raise StoreError(f"store file {name} is missing or damaged ({err.cause}); "
                             f"{_HINT}", path=self.root / name) from err

    def _stored_run_ids(self) -> pd.Series:
        return self._current("runs")["run_id"]

    # --- changes --------------------------------------------------------------------------------
    def add_runs(self, runs: pd.DataFrame | pa.Table, samples: pd.DataFrame | pa.Table,
                 cadence_bins: pd.DataFrame | pa.Table | None = None) -> None:
        """Add runs with their samples (and cadence bins).

        ``runs`` needs a unique ``run_id`` per row; ``samples`` and ``cadence_bins`` carry the
        run_id of their run. A run_id already stored replaces the old row, its samples and
        its cadence bins (annotations stay).

        All three may be frames, or Arrow tables in :func:`arrow_schema` (the import's path:
        the tables are then concatenated, sorted and written without pandas).
        """
        arrow = (runs, samples, cadence_bins)
        if all(t is None or isinstance(t, pa.Table) for t in arrow):
            if self._add_runs_arrow(runs, samples, cadence_bins):
                return
            runs, samples, cadence_bins = (t if t is None else t.to_pandas() for t in arrow)
        if "run_id" not in runs or runs["run_id"].isna().any():
            raise ValueError("every run needs a run_id")
        if runs["run_id"].duplicated().any():
            dupes = sorted(set(runs.loc[runs["run_id"].duplicated(), "run_id"]))
            raise ValueError(f"run_id must be unique in add_runs; repeated: {dupes}")
        new_runs = conform(runs, "runs")
        new_samples = conform(samples, "samples")
        ids = set(new_runs["run_id"])
        stray = set(new_samples["run_id"].unique()) - ids
        if stray:
            raise ValueError(f"samples for runs not being added: {sorted(stray)[:5]}")
        bins = conform(cadence_bins, "cadence_bins") if cadence_bins is not None else None
        if bins is not None and set(bins["run_id"].unique()) - ids:
            raise ValueError("cadence bins for runs not being added")
        self._drop_runs(ids)
        current = self._current("runs")
        merged = pd.concat([current, new_runs], ignore_index=True) if len(current) else new_runs
        self._tables["runs"] = conform(merged, "runs")
        if len(new_samples):
            self._new_samples.append(_to_arrow(new_samples, "samples"))
        if bins is not None and len(bins):
            self._append("cadence_bins", bins)

    def _add_runs_arrow(self, runs: pa.Table, samples: pa.Table,
                        bins: pa.Table | None) -> bool:
        """:meth:`add_runs` on Arrow tables; False (nothing changed) when the tables or the
        stored runs and bins are not in :func:`arrow_schema` (the frame path takes them)."""
        given = [(runs, "runs"), (samples, "samples")] + ([(bins, "cadence_bins")] if bins
                                                          is not None else [])
        if any(not t.schema.equals(arrow_schema(name), check_metadata=False)
               for t, name in given):
            return False
        ids_column = runs.column("run_id")
        if ids_column.null_count:
            raise ValueError("every run needs a run_id")
        listed = ids_column.to_pylist()
        ids = set(listed)
        if len(ids) != len(listed):
            dupes = sorted({i for i in listed if listed.count(i) > 1})
            raise ValueError(f"run_id must be unique in add_runs; repeated: {dupes}")
        if set(pc.unique(samples.column("run_id")).to_pylist()) - ids:
            stray = sorted(set(pc.unique(samples.column("run_id")).to_pylist()) - ids)
            raise ValueError(f"samples for runs not being added: {stray[:5]}")
        if bins is not None and set(pc.unique(bins.column("run_id")).to_pylist()) - ids:
            raise ValueError("cadence bins for runs not being added")
        stored_runs = self._current_arrow("runs")
        stored_bins = self._current_arrow("cadence_bins") if stored_runs is not None else None
        if stored_runs is None or stored_bins is None:
            return False
        replaced = _is_in(stored_runs.column("run_id"), ids)
        stored = set(stored_runs.column("run_id").filter(replaced).to_pylist())
        if stored:
            stored_runs = stored_runs.filter(pc.invert(replaced))
            stored_bins = stored_bins.filter(pc.invert(_is_in(stored_bins.column("run_id"),
                                                              ids)))
            self._new_samples = [t.filter(pc.invert(_is_in(t.column("run_id"), ids)))
                                 for t in self._new_samples]
        # (a new id is dropped from the samples too: see _commit_samples)
        self._dropped_sample_ids |= ids
        self._arrow["runs"] = _concat(stored_runs, runs, "runs")
        if bins is not None and bins.num_rows:
            stored_bins = _concat(stored_bins, bins, "cadence_bins")
        self._arrow["cadence_bins"] = stored_bins
        if samples.num_rows:
            self._new_samples.append(samples)
        return True

    def update_runs(self, runs: pd.DataFrame) -> None:
        """Replace the given columns of existing runs, by run_id (e.g. recomputed metrics).

        Columns not given are kept. Unknown run ids raise RunNotFoundError.
        """
        current = self._current("runs").set_index("run_id")
        update = runs.set_index("run_id")
        unknown = update.index.difference(current.index)
        if len(unknown):
            raise RunNotFoundError(f"cannot update runs not in the store: {list(unknown)[:5]}")
        for col in update.columns:  # one vectorised assignment per column
            dtype = RUN_DTYPES.get(col)
            values = update[col] if dtype is None else _as_dtype(update[col], dtype)
            if col not in current.columns:
                current[col] = pd.Series(pd.NA, index=current.index, dtype=values.dtype)
            column = current[col].copy()
            column.loc[update.index] = values.to_numpy()
            current[col] = column
        self._tables["runs"] = conform(current.reset_index(), "runs")

    def replace_cadence_bins(self, bins: pd.DataFrame, run_ids: Iterable[str]) -> None:
        """Replace all cadence bins of ``run_ids`` by ``bins``."""
        ids = {str(r) for r in run_ids}
        new_bins = conform(bins, "cadence_bins")
        if set(new_bins["run_id"]) - ids:
            raise ValueError("bins hold runs not listed in run_ids")
        current = self._current("cadence_bins")
        self._tables["cadence_bins"] = current[~current["run_id"].isin(ids)]
        self._append("cadence_bins", new_bins)

    def record_files(self, files: pd.DataFrame) -> None:
        """Upsert file outcomes (FILES_COLUMNS) by sha256; files without a hash by path.

        The latest outcome wins; ``first_seen_utc`` of a file already known is kept. A hashed
        row also replaces an unhashed row of the same path (it could not be read before).
        ``files`` may be a frame or an Arrow table in :func:`arrow_schema` (the import's).
        """
        if isinstance(files, pa.Table):
            if (files.schema.equals(arrow_schema("files"), check_metadata=False)
                    and self._record_files_arrow(files)):
                return
            files = files.to_pandas()
        new = conform(files, "files")
        if new.empty:
            return
        now = pd.Timestamp.now(tz="UTC").as_unit("ns")
        new["first_seen_utc"] = new["first_seen_utc"].fillna(now)
        new["last_seen_utc"] = new["last_seen_utc"].fillna(now)
        new["key"] = _file_keys(new)
        new = new.drop_duplicates("key", keep="last")
        current = self._current("files")
        current = current.assign(key=_file_keys(current))
        first_seen = current.drop_duplicates("key", keep="last").set_index("key")
        earlier = pd.Series(first_seen["first_seen_utc"].reindex(new["key"]).to_numpy(),
                            index=new.index)
        new["first_seen_utc"] = earlier.where(earlier.notna(), new["first_seen_utc"])
        hashed_paths = new.loc[new["sha256"].notna(), "path"]
        stale = current["key"].isin(new["key"]) | (
            current["sha256"].isna() & current["path"].isin(hashed_paths))
        kept = current[~stale]
        merged = pd.concat([kept, new], ignore_index=True) if len(kept) else new
        self._tables["files"] = conform(merged.drop(columns="key"), "files")

    def _record_files_arrow(self, new: pa.Table) -> bool:
        """:meth:`record_files` on Arrow; False (nothing changed) when the stored files table
        is not in :func:`arrow_schema`."""
        if new.num_rows == 0:
            return True
        current = self._current_arrow("files")
        if current is None:
            return False
        now = pa.scalar(pd.Timestamp.now(tz="UTC").value, pa.timestamp("ns", tz="UTC"))
        new = new.set_column(new.schema.get_field_index("first_seen_utc"), "first_seen_utc",
                             pc.fill_null(new.column("first_seen_utc"), now))
        new = new.set_column(new.schema.get_field_index("last_seen_utc"), "last_seen_utc",
                             pc.fill_null(new.column("last_seen_utc"), now))
        keys = _arrow_file_keys(new).to_pylist()
        last_of_key = {key: i for i, key in enumerate(keys)}      # keep="last", in order
        if len(last_of_key) < len(keys):
            new = new.take(sorted(last_of_key.values()))
            keys = _arrow_file_keys(new).to_pylist()
        current_keys = _arrow_file_keys(current)
        # the earliest sighting stays: a key's last row in the stored table, as pandas'
        # drop_duplicates(keep="last") + reindex
        stored_at = {key: i for i, key in enumerate(current_keys.to_pylist())}
        earlier = pc.take(current.column("first_seen_utc"),
                          pa.array([stored_at.get(key) for key in keys], pa.int64()))
        new = new.set_column(new.schema.get_field_index("first_seen_utc"), "first_seen_utc",
                             pc.coalesce(earlier, new.column("first_seen_utc")))
        hashed_paths = new.column("path").filter(pc.is_valid(new.column("sha256")))
        stale = pc.or_(_is_in(current_keys, keys),
                       pc.and_(pc.is_null(current.column("sha256")),
                               _is_in(current.column("path"), hashed_paths.to_pylist())))
        self._arrow["files"] = _concat(current.filter(pc.invert(stale)), new, "files")
        return True

    def set_annotation(self, run_id: str, **fields: Any) -> pd.Series:
        """Merge ``fields`` (ANNOTATION_COLUMNS) into the run's annotation; returns the row.

        ``None`` leaves a field unchanged; ``pd.NA`` (or NaN) clears it. ``updated_utc`` is
        set to now. The run must be in the store (or already annotated).
        """
        allowed = set(ANNOTATION_COLUMNS) - {"run_id", "updated_utc"}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise InputError(f"unknown annotation field(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(allowed))}")
        current = self._current("annotations")
        existing = current[current["run_id"] == run_id]
        if existing.empty and not (self._stored_run_ids() == run_id).any():
            raise RunNotFoundError(f"no run {run_id} in the store to annotate")
        row = existing.iloc[[0]].copy() if len(existing) else empty_table("annotations")
        if row.empty:
            row = conform(pd.DataFrame({"run_id": [run_id]}), "annotations")
        row = row.reset_index(drop=True)
        for key, value in fields.items():
            if value is None:
                continue
            try:
                row[key] = _as_dtype(pd.Series([value], dtype=object), ANNOTATION_DTYPES[key])
            except (TypeError, ValueError) as err:
                raise InputError(f"bad value for {key}: {value!r} ({err})") from err
        row["updated_utc"] = pd.Timestamp.now(tz="UTC").as_unit("ns")
        rest = current[current["run_id"] != run_id]
        merged = pd.concat([rest, row], ignore_index=True) if len(rest) else row
        merged = merged.sort_values("run_id", kind="stable")
        self._tables["annotations"] = conform(merged, "annotations")
        return conform(row, "annotations").iloc[0]

    def set_profile(self, **fields: Any) -> dict:
        """Set profile fields (PROFILE_FIELDS and ``privacy_zones``); returns the profile.

        ``None`` leaves a field unchanged; ``pd.NA`` clears it. ``privacy_zones`` is a list of
        ``{lat_deg, lon_deg, radius_m}``.
        """
        allowed = set(PROFILE_FIELDS) | {PRIVACY_ZONES}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise InputError(f"unknown profile field(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(allowed))}")
        profile = dict(self._profile if self._profile is not None
                       else self._base.get("profile") or {})
        for key, value in fields.items():
            if value is None:
                continue
            if key == PRIVACY_ZONES:
                profile[key] = _privacy_zones(value)
                continue
            value = _jsonable(value)
            if value is None:
                profile.pop(key, None)
            else:
                profile[key] = value
        json.dumps(profile)  # fail now, not at commit, on values JSON cannot hold
        self._profile = profile
        return dict(profile)

    def remove_runs(self, run_ids: Iterable[str]) -> None:
        """Remove runs, their samples and cadence bins; annotations are kept."""
        self._drop_runs({str(r) for r in run_ids})

    def rebuild_into(self, actions: list[str]) -> None:
        """The work of :meth:`Store.rebuild` inside this transaction (appends to actions)."""
        for table in WHOLE_TABLES:
            name = self._base["tables"].get(table)
            if name is None:
                continue
            try:
                self._current(table)
            except StoreError:
                self._tables[table] = empty_table(table)
                actions.append(f"{table} table file {name} was unreadable: replaced by an "
                               "empty table")
        readable: list[dict] = []
        sample_ids: set[str] = set()
        for part in self._base["samples_parts"]:
            try:
                ids = self._read_part(part["file"]).column("run_id")
            except StoreError:
                actions.append(f"samples part {part['file']} was unreadable: dropped")
                continue
            part_ids = _unique_run_ids(ids)
            readable.append(_part_entry(part["file"], len(ids), part_ids))
            sample_ids.update(part_ids)
        self._base = {**self._base, "samples_parts": readable}
        run_ids = set(self._current("runs")["run_id"])
        without_samples = run_ids - sample_ids
        if without_samples:
            self._drop_runs(without_samples)
            n = len(without_samples)
            actions.append(f"removed {n} run{'' if n == 1 else 's'} without samples")
        orphans = sample_ids - run_ids
        if orphans:
            self._dropped_sample_ids |= orphans
            actions.append(f"removed samples of {len(orphans)} runs not in the store")
        bins = self._current("cadence_bins")
        stray_bins = ~bins["run_id"].isin(run_ids - without_samples)
        if stray_bins.any():
            self._tables["cadence_bins"] = bins[~stray_bins].reset_index(drop=True)
            actions.append(f"removed {int(stray_bins.sum())} cadence bins of runs not in the "
                           "store")
        kept_ids = run_ids - without_samples
        files = self._current("files")
        listed = files["run_ids"].fillna("").str.split(",")
        exploded = listed.explode()
        missing = exploded[(exploded != "") & ~exploded.isin(kept_ids)]
        lost = files.index.isin(missing.index.unique())
        if lost.any():
            self._tables["files"] = files[~lost].reset_index(drop=True)
            actions.append(f"forgot {int(lost.sum())} files whose runs are gone (the next "
                           "import reads them again)")
        self._tables.setdefault("runs", self._current("runs"))  # always commit a fresh manifest

    # --- internals ------------------------------------------------------------------------------
    def _append(self, table: str, frame: pd.DataFrame) -> None:
        current = self._current(table)
        merged = pd.concat([current, frame], ignore_index=True) if len(current) else frame
        self._tables[table] = conform(merged, table)

    def _drop_runs(self, ids: set[str]) -> None:
        if not ids:
            return
        runs = self._current("runs")
        stored = set(runs["run_id"]) & ids
        self._tables["runs"] = runs[~runs["run_id"].isin(ids)].reset_index(drop=True)
        bins = self._current("cadence_bins")
        if bins["run_id"].isin(ids).any():
            self._tables["cadence_bins"] = bins[~bins["run_id"].isin(ids)].reset_index(drop=True)
        self._new_samples = [t.filter(pc.invert(_is_in(t.column("run_id"), ids)))
                             for t in self._new_samples]
        self._dropped_sample_ids |= stored | ids

    def _changed(self) -> bool:
        return bool(self._tables or self._arrow or self._profile is not None or
                    any(t.num_rows for t in self._new_samples) or self._dropped_sample_ids)

    def _resolve_hr_max(self) -> None:
        """Give every run the HRmax it resolves to now, and the %HRmax verdicts that follow
        (:mod:`runlog.hrmax`), when this commit changes the runs or the profile: a run's
        HRmax may come from other runs' best 30-s HR, so adding, replacing or removing runs,
        or a profile change, can change it. Only when some run's values change are the five
        columns rewritten; on Arrow tables this reads and writes plain arrays (no DataFrame:
        it runs on every import commit)."""
        if not ("runs" in self._tables or "runs" in self._arrow or self._profile is not None):
            return
        from runlog import hrmax

        profile = (self._profile if self._profile is not None else self._base.get("profile")) or {}
        loaded_here = "runs" not in self._tables and "runs" not in self._arrow
        arrow = self._current_arrow("runs") if "runs" not in self._tables else None
        if arrow is None:  # a frame (or an older store's extra columns): the pandas path
            frame = self._current("runs")
            resolved = hrmax.resolve_runs(frame, profile)
            stored = {c: frame[c].to_numpy() for c in hrmax.OUTPUT_COLUMNS}
            outputs = {c: resolved[c].to_numpy() for c in hrmax.OUTPUT_COLUMNS}
        else:
            stored, outputs = _hr_max_outputs(arrow, profile)
        changed = np.zeros(len(next(iter(stored.values()))), dtype=bool)
        for col in hrmax.OUTPUT_COLUMNS:
            changed |= ~_same_values(stored[col], outputs[col])
        if not changed.any():
            if loaded_here:         # (a profile change that changes no run rewrites no runs)
                self._tables.pop("runs", None)
                self._arrow.pop("runs", None)
            return
        if arrow is None:
            update = pd.DataFrame({c: outputs[c][changed] for c in hrmax.OUTPUT_COLUMNS})
            update.insert(0, "run_id", frame.loc[changed, "run_id"].to_numpy())
            self.update_runs(update)
            return
        for col in hrmax.OUTPUT_COLUMNS:  # unchanged rows get their own values back
            i = arrow.schema.get_field_index(col)
            field = arrow.schema.field(i)
            arrow = arrow.set_column(i, field, pa.array(outputs[col], type=field.type,
                                                        from_pandas=True))
        self._arrow["runs"] = arrow

    def _commit(self) -> None:
        if not self._changed():
            return
        self._resolve_hr_max()
        generation = int(self._base["generation"]) + 1
        manifest = {**self._base, "generation": generation,
                    "schema_version": STORE_SCHEMA_VERSION,
                    "tables": dict(self._base["tables"]),
                    "written_utc": pd.Timestamp.now(tz="UTC").isoformat()}
        writes: list[_FileWrite] = []  # this commit's new files, written together below
        try:
            for table, frame in self._tables.items():
                frame = conform(frame, table)
                # ignore_index: a sorted frame keeps a RangeIndex, so writing it needs no
                # second conversion of every column
                if table in SORT_KEYS:
                    frame = frame.sort_values(SORT_KEYS[table], kind="stable",
                                              ignore_index=True)
                name = _new_name(table, generation)
                writes.append(_FileWrite(_to_arrow(frame, table), name,
                                         SAMPLES_ROW_GROUP if table == "samples" else None))
                manifest["tables"][table] = name
            for table, arrow in self._arrow.items():
                if table in SORT_KEYS:
                    arrow = arrow.sort_by([(key, "ascending") for key in SORT_KEYS[table]])
                name = _new_name(table, generation)
                writes.append(_FileWrite(arrow, name))
                manifest["tables"][table] = name
            if self._profile is not None:
                manifest["profile"] = self._profile
            manifest["samples_parts"] = self._commit_samples(generation, writes)
            self._written.extend(write.name for write in writes)
            _write_files_durably(self.root, writes)
            _fsync_dir(self.root)
            self._write_manifest(manifest)
        except BaseException:
            self._discard_written()
            raise
        self._written = []
        self._base = manifest

    def _commit_samples(self, generation: int, writes: list[_FileWrite]) -> list[dict]:
        """New list of samples parts: old parts (rewritten without dropped runs, now) + one
        new (appended to ``writes``, the commit's files written together)."""
        parts: list[dict] = []
        drop = self._dropped_sample_ids
        for part in self._base["samples_parts"]:
            # (a new run's id is in ``drop`` too, for samples a damaged store may hold
            # without a run row: the part's listed ids say at once that it holds none)
            if not drop:
                parts.append(part)
                continue
            held = self._part_run_ids(part)
            if drop.isdisjoint(held):
                # an older entry learns its ids (the file never changes), once
                parts.append(part if PART_RUN_IDS in part else
                             {**part, PART_RUN_IDS: sorted(held)})
                continue
            table = self._read_part(part["file"])
            table = table.filter(pc.invert(_is_in(table.column("run_id"), drop)))
            if table.num_rows:
                parts.append(self._write_part(table, generation))
        fresh = [t for t in self._new_samples if t.num_rows]
        table = pa.concat_tables(fresh).sort_by([("run_id", "ascending"),
                                                 ("timestamp", "ascending")]) if fresh else None
        if len(parts) + (table is not None) > COMPACT_PARTS_ABOVE:
            return [self._compact(parts, generation, table)]
        if table is not None:
            parts.append(self._write_part(table, generation, writes))
        return parts

    def _part_run_ids(self, part: dict) -> set[str]:
        """The run ids a samples part holds: its manifest entry's list, else its file's."""
        listed = part.get(PART_RUN_IDS)
        if isinstance(listed, list):
            return set(listed)
        try:
            # the dictionary pages alone: ~5× faster than decoding every row's id
            column = _read_parquet(self.root, part["file"], columns=["run_id"],
                                   read_dictionary=["run_id"]).column("run_id")
        except _DamagedFile as err:
            raise StoreError(f"samples part {err.name} is missing or damaged ({err.cause}); "
                             f"{_HINT}", path=self.root / err.name) from err
        return _unique_run_ids(column)

    def _read_part(self, name: str) -> pa.Table:
        try:
            return _read_parquet(self.root, name, schema=_SAMPLES_ARROW_SCHEMA)
        except _DamagedFile as err:
            raise StoreError(f"samples part {name} is missing or damaged ({err.cause}); "
                             f"{_HINT}", path=self.root / name) from err

    def _write_part(self, table: pa.Table, generation: int,
                    later: list[_FileWrite] | None = None) -> dict:
        """Write ``table`` as a new samples part (appended to ``later`` instead, to be
        written with the commit's other files); its manifest entry."""
        name = _new_name("samples", generation)
        write = _FileWrite(table.cast(_SAMPLES_ARROW_SCHEMA), name, SAMPLES_ROW_GROUP)
        if later is not None:
            later.append(write)
        else:
            self._written.append(name)
            _write_arrow_durably(self.root, write.table, name, write.row_group_size)
        return _part_entry(name, table.num_rows, _unique_run_ids(table.column("run_id")))

    def _compact(self, parts: list[dict], generation: int,
                 fresh: pa.Table | None = None) -> dict:
        """Stream all parts, then ``fresh`` (the commit's new samples, sorted), into one file
        (each part's sorted rows become row groups)."""
        name = _new_name("samples", generation)
        tmp = self.root / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        rows = 0
        run_ids: set[str] = set()
        self._written.append(tmp.name)
        with open(tmp, "wb") as fh:
            with pq.ParquetWriter(fh, _SAMPLES_ARROW_SCHEMA, compression="zstd",
                                  use_dictionary=_DICTIONARY_COLUMNS) as out:
                tables = (self._read_part(part["file"]) for part in parts)
                extra = [] if fresh is None else [fresh.cast(_SAMPLES_ARROW_SCHEMA)]
                for table in itertools.chain(tables, extra):
                    rows += table.num_rows
                    run_ids.update(_unique_run_ids(table.column("run_id")))
                    out.write_table(table, row_group_size=SAMPLES_ROW_GROUP)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, self.root / name)
        self._written.append(name)
        return _part_entry(name, rows, run_ids)

    def _write_manifest(self, manifest: dict) -> None:
        tmp = self.root / f"{MANIFEST}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / MANIFEST)
        _fsync_dir(self.root)

    def _discard_written(self) -> None:
        for name in self._written:
            with contextlib.suppress(OSError):
                (self.root / name).unlink()
        self._written = []

    def _collect_garbage(self, manifest: dict) -> None:
        """Delete our files the manifest does not list, and stray temp files (under lock)."""
        keep = {n for n in manifest["tables"].values() if n}
        keep |= {p["file"] for p in manifest["samples_parts"]}
        with os.scandir(self.root) as entries:
            names = [e.name for e in entries if e.is_file(follow_symlinks=False)]
        for name in names:
            ours = _OWN_FILE.match(name) or (name.endswith(".tmp") and (
                name.startswith(".") or name == f"{MANIFEST}.tmp"))
            if ours and name not in keep:
                with contextlib.suppress(OSError):
                    (self.root / name).unlink()


def _hr_max_outputs(runs: pa.Table, profile: dict
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(stored, resolved) :data:`runlog.hrmax.OUTPUT_COLUMNS` of an Arrow runs table, as
    numpy arrays (floats with NaN; objects with None for missing)."""
    from runlog import hrmax

    def floats(name: str) -> np.ndarray:
        return pc.cast(runs.column(name), pa.float64()).to_numpy(zero_copy_only=False)

    untrusted = "|".join(hrmax.UNTRUSTED_HR_ISSUES)
    dropout = pc.match_substring_regex(runs.column("quality_issues"),
                                       f"(^|;)({untrusted})(;|$)")
    trusted = pc.and_(pc.fill_null(runs.column("quality_ok"), False),
                      pc.invert(pc.fill_null(dropout, False)))
    value, source = hrmax.hr_max_arrays(
        runs.column("start_utc").to_numpy(zero_copy_only=False), floats("tz_offset_min"),
        floats("best_30s_hr_bpm"), trusted.to_numpy(zero_copy_only=False), profile)
    stored = {c: runs.column(c).to_numpy(zero_copy_only=False) for c in hrmax.OUTPUT_COLUMNS}
    stored["hr_max_used_bpm"] = floats("hr_max_used_bpm")
    stored["main_hr_pct_max"] = floats("main_hr_pct_max")
    outputs = hrmax.resolved_outputs(value, source,
                                     [floats(c) for c in hrmax.HR_INPUT_COLUMNS],
                                     floats("metrics_version"), stored)
    return stored, outputs


def _same_values(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Elementwise: equal, or both missing (NaN, None, pd.NA, NaT)."""
    old_missing, new_missing = pd.isna(old), pd.isna(new)
    both = old_missing & new_missing
    either = old_missing | new_missing
    equal = np.zeros(len(old), dtype=bool)
    present = ~either
    equal[present] = np.asarray(old[present] == new[present], dtype=bool)
    return both | equal


def _is_in(column: pa.ChunkedArray, values: Iterable[str]) -> pa.ChunkedArray:
    """Whether each value of a string column is one of ``values`` (nulls are not)."""
    return pc.is_in(column, value_set=pa.array(sorted(values), column.type))


def _arrow_file_keys(files: pa.Table) -> pa.ChunkedArray:
    """:func:`_file_keys` of an Arrow files table."""
    def prefixed(prefix: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.binary_join_element_wise(pa.scalar(prefix, column.type), column,
                                           pa.scalar("", column.type))

    return pc.coalesce(prefixed("sha:", files.column("sha256")),
                       prefixed("path:", files.column("path")))


def _unique_run_ids(column: pa.ChunkedArray) -> set[str]:
    """Distinct run ids of a samples run_id column (plain or dictionary-encoded)."""
    if pa.types.is_dictionary(column.type):
        return {v for chunk in column.chunks for v in chunk.dictionary.to_pylist()}
    return set(pc.unique(column).to_pylist())


def _may_hold(part: dict, run_ids: list[str]) -> bool:
    """Whether a samples part may hold any of ``run_ids`` (True when it does not say)."""
    listed = part.get(PART_RUN_IDS)
    return not isinstance(listed, list) or not set(listed).isdisjoint(run_ids)


def _part_entry(name: str, rows: int, run_ids: Iterable[str]) -> dict:
    """A samples part's manifest entry (file name, row count, PART_RUN_IDS)."""
    return {"file": name, "rows": int(rows), PART_RUN_IDS: sorted(run_ids)}


def _file_keys(files: pd.DataFrame) -> pd.Series:
    """Upsert key of file rows: the content hash, else the path."""
    return ("sha:" + files["sha256"]).where(files["sha256"].notna(), "path:" + files["path"])


def _privacy_zones(value: Any) -> list[dict]:
    zones = []
    for zone in value:
        try:
            cleaned = {k: float(zone[k]) for k in PRIVACY_ZONE_KEYS}
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"a privacy zone needs numeric {', '.join(PRIVACY_ZONE_KEYS)}; "
                             f"got {zone!r}") from err
        if not (-90 <= cleaned["lat_deg"] <= 90 and -180 <= cleaned["lon_deg"] <= 180
                and cleaned["radius_m"] > 0):
            raise InputError(f"privacy zone out of range: {zone!r}")
        zones.append(cleaned)
    return zones

