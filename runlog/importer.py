"""Import: sources → readers → metrics → store, one outcome per file, nothing lost.

Every file gets exactly one outcome — ``new``, ``replaced`` (a more complete recording of a
stored run: see :class:`RunIndex`), ``duplicate`` (with the key that matched), ``skipped``
(with why) or ``failed`` (with why, and the byte offset for FIT). One bad file never stops an
import. Work is committed to the store in batches, each batch atomically, so an
interrupted import keeps every batch it finished and re-running it is safe: files already in
the store are recognised by path, size and modification time, or by content hash, unparsed.

Parallel, streaming
    Files are parsed and their metrics computed by :func:`process_file` in a process pool
    beside this process: ``jobs`` files are parsed at a time (default: one per core but one,
    :func:`default_jobs`), one here and ``jobs − 1`` in workers; ``jobs=1`` keeps everything
    in this process. The pool starts once :data:`POOL_MIN_FILES` files have been parsed
    here, so small imports never pay for it, and it warms up in the background: this process
    goes on parsing, and files go to the pool only while it is ready and has room. The main
    process reads each file
    (the :class:`~runlog.sources.SourceFile` opener is a closure, not picklable), hashes it,
    and sends ``(display, fmt, extra, size, mtime, bytes, sha256)`` to a worker. Results are
    consumed strictly in discovery order, so duplicate detection, outcomes and run ids are
    exactly those of a serial import; at most ``2 × workers`` files are in flight, so memory
    stays flat however large the archive. A worker that raises gives that file a ``failed``
    outcome; a worker that dies (killed, crash in native code) breaks the pool: each file it
    held is retried alone in a fresh one-worker pool, and only the file that kills that one
    too is ``failed``.

Unchanged files
    The store's files table is loaded once at the start into two dicts — by
    ``(path, size, mtime_ns)`` and by ``sha256`` — so recognising an already imported file is
    a dict look-up, before any read or parse. (A path repeated within one import is caught
    by its content hash: "same content as ... (identical file)".)

Identical content, empty files
    Bytes already read in this import are not parsed again: they get the first file's
    outcome — a duplicate of it ("same content as ... (identical file)") when it gave runs or
    was skipped, but ``failed`` with its reason when it failed (it was not imported; calling
    the copy a duplicate would hide that). A copy under another format's name (a PNG as
    ``x.fit`` after ``photo.gpx``) is read in its own format, as it would be alone. Content
    that failed in an earlier import is read again (a newer runlog may read it). An empty file
    always fails ("empty file (0 bytes)") and is recorded by path, as it has no content.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from runlog.activity import (
    FLOAT_SAMPLE_COLUMNS,
    NAT_NS,
    RUNNING,
    Activity,
    SampleColumns,
    utc_from_ns,
)
from runlog.errors import FileReadError, RunlogError, SkippedFile
from runlog.localtime import resolve_offset
from runlog.metrics import run_metrics
from runlog.readers import read_activities
from runlog.readers.sport import normalise_sport
from runlog.schema import CADENCE_BIN_COLUMNS
from runlog.sources import Ignored, SourceFile, discover
from runlog.store import Store, arrow_from_rows, arrow_schema, frame_from_rows

log = logging.getLogger(__name__)

NEW, DUPLICATE, SKIPPED, FAILED = "new", "duplicate", "skipped", "failed"
#: A file whose run replaced a less complete stored copy of the same run (same run id). The
#: files table records it as ``new`` (the file the run now comes from), its vocabulary is
#: unchanged; the replaced copy's file becomes a ``duplicate`` of the run.
REPLACED = "replaced"
#: Outcome reason of an empty file, whatever its format.
EMPTY_FILE = "empty file (0 bytes)"
#: Files committed per store write; an interrupted import loses at most one batch of work.
BATCH_FILES = 100
#: Fewest timed samples that make a recording a run runlog can measure.
MIN_SAMPLES_PER_RUN = 2
#: Median moving speed band [m/s] that makes an untagged track a run (≈ 2:34–9:15 min/km).
INFERRED_RUN_MIN_SPEED_MPS = 1.8
INFERRED_RUN_MAX_SPEED_MPS = 6.5
#: Same activity from another file: starts within this many seconds ...
DUPLICATE_START_TOLERANCE_S = 60.0
#: ... and distances within this fraction of the larger one.
DUPLICATE_DISTANCE_TOLERANCE = 0.02
#: A recording starting in the same second as a stored run (the same run id) replaces it when
#: it is clearly more complete: it has more samples, and its elapsed time and its distance
#: both exceed the stored run's by more than this fraction of its own (a partial copy of a
#: file — a truncated FIT salvaged as a shorter run — then never blocks the whole one). A
#: less complete or equal recording stays a duplicate of the stored run.
MORE_COMPLETE_MARGIN = DUPLICATE_DISTANCE_TOLERANCE
#: The worker pool is started once this process has parsed this many files: its start-up (a
#: forkserver importing pandas/pyarrow/fitparse: ~0.9 s of one core on 2 cores, measured)
#: runs in the background while this process keeps parsing, but on a smaller import (10–30
#: ms a file) it would only take CPU from the parsing.
POOL_MIN_FILES = 32
#: ... and only when discovery shows at least this many more files to read after them: a
#: pool whose start-up outlasts the parsing left is waited for at the end (measured on the
#: corpus' 57 FIT files with jobs=2: 1.7 s, against 0.56 s in one process). 128 files are
#: ≈ 1 s of parsing at FIT speed, more for GPX/TCX.
POOL_MIN_AHEAD = 128
#: Imported once in the forkserver, shared by every worker forked from it.
WORKER_PRELOAD = ("runlog.importer", "runlog.readers.fit", "runlog.readers.fastfit",
                  "runlog.readers.gpx", "runlog.readers.tcx", "runlog.metrics",
                  "runlog.quality", "timezonefinder")
#: Files in flight per worker (submitted, result not yet consumed): bounds memory.
IN_FLIGHT_PER_WORKER = 2
#: Outcome reason of a file whose worker process died twice on it.
WORKER_DIED = ("internal error: the process reading this file died "
               "(killed, or crashed in native code)")


@dataclass
class FileOutcome:
    """What happened to one file."""

    path: str
    fmt: str | None
    outcome: str
    reason: str = ""
    run_ids: list[str] = field(default_factory=list)
    matched_run_id: str | None = None
    offset: int | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    mtime_ns: int | None = None
    #: Those of ``run_ids`` that replaced a less complete stored copy (same run id).
    replaced_run_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"path": self.path, "format": self.fmt, "outcome": self.outcome,
                "reason": self.reason, "run_ids": list(self.run_ids),
                "matched_run_id": self.matched_run_id, "byte_offset": self.offset}


@dataclass
class ImportResult:
    """All outcomes of one import, plus files that were not activity formats."""

    outcomes: list[FileOutcome] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    #: Worker processes used to parse (0: everything was parsed in this process).
    workers: int = 0

    @property
    def new_run_ids(self) -> list[str]:
        """Runs this import added (not those it replaced: :attr:`replaced_run_ids`)."""
        return [rid for o in self.outcomes if o.outcome in (NEW, REPLACED)
                for rid in o.run_ids if rid not in o.replaced_run_ids]

    @property
    def replaced_run_ids(self) -> list[str]:
        """Stored runs this import replaced by a more complete recording (same run id)."""
        return [rid for o in self.outcomes for rid in o.replaced_run_ids]

    def counts(self) -> dict[str, int]:
        keys = (NEW, REPLACED, DUPLICATE, SKIPPED, FAILED)
        out = {k: sum(o.outcome == k for o in self.outcomes) for k in keys}
        out["new_runs"] = len(self.new_run_ids)
        out["ignored"] = len(self.ignored)
        return out


def run_id_for(start_utc: pd.Timestamp, leg_index: int | None) -> str:
    """Stable id from content: sha1 of the UTC start (to the second) and the leg index."""
    leg = "" if leg_index is None else str(leg_index)
    key = f"{start_utc.tz_convert('UTC'):%Y-%m-%dT%H:%M:%SZ}|{leg}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def _is_running(activity: Activity, extra: dict[str, str]) -> tuple[bool, str, bool]:
    """(is a run, reason if not, sport inferred) — before metrics, from tags only.

    An export's own activity type (Strava's CSV) wins over the file's tag: it is the runner's
    latest word. Untagged files are decided later from their speeds.
    """
    sport = normalise_sport(extra.get("type")) or activity.sport
    untagged = sport is None or (sport == "other" and activity.sport_raw in (None, "", "generic"))
    if untagged and activity.leg_index is not None:
        # A multisport file labels each leg; a "generic" leg there is not a run.
        return False, f"{activity.sport_raw or 'untagged'} leg of a multisport file", False
    if untagged:
        return True, "", True
    if sport == RUNNING:
        return True, "", False
    return False, sport, False


def _plausible_running_speed(moving_s: float, distance_m: float) -> tuple[bool, float]:
    speed = distance_m / moving_s if moving_s and moving_s > 0 else float("nan")
    ok = INFERRED_RUN_MIN_SPEED_MPS <= speed <= INFERRED_RUN_MAX_SPEED_MPS
    return bool(ok), speed


#: One parsed run: its row (runs table), its cleaned samples and its cadence bins (arrays).
ParsedRun = tuple[dict, SampleColumns, dict[str, np.ndarray]]


def process_file(source: SourceFile, data: bytes, sha256: str, profile: dict,
                 ) -> tuple[FileOutcome, list[ParsedRun]]:
    """Read one file's bytes into run rows (no store access; safe to run in a worker)."""
    outcome = FileOutcome(source.display, source.fmt, NEW, sha256=sha256,
                          size_bytes=source.size_bytes, mtime_ns=source.mtime_ns)
    try:
        activities = read_activities(data, source.fmt, source.display)
    except SkippedFile as err:
        outcome.outcome, outcome.reason = SKIPPED, err.reason
        return outcome, []
    except FileReadError as err:
        outcome.outcome, outcome.reason, outcome.offset = FAILED, err.reason, err.offset
        return outcome, []

    # provisional: each commit gives every run the HRmax it resolves to (runlog.hrmax)
    hr_max = profile.get("hr_max_bpm")
    runs: list[ParsedRun] = []
    skipped_reasons: list[str] = []
    for activity in activities:
        is_run, not_run_reason, inferred = _is_running(activity, source.extra)
        if not is_run:
            label = f"leg {activity.leg_index + 1}: " if activity.leg_index is not None else ""
            skipped_reasons.append(f"{label}{not_run_reason}")
            continue
        if int((activity.columns["timestamp"] != NAT_NS).sum()) < MIN_SAMPLES_PER_RUN:
            # Laps or a summary alone: no track to measure, nothing for the rules to judge.
            skipped_reasons.append("no recorded samples (only laps or a summary)")
            continue
        try:
            metrics, samples, bins = run_metrics(activity, hr_max_bpm=hr_max)
        except RunlogError as err:
            skipped_reasons.append(err.reason)
            continue
        if inferred:
            ok, speed = _plausible_running_speed(metrics["moving_s"], metrics["distance_m"])
            if not ok:
                skipped_reasons.append(
                    "no sport tag and its speed does not look like running "
                    f"({speed:.1f} m/s while moving)" if np.isfinite(speed) else
                    "no sport tag and no usable speed to tell whether it is a run")
                continue
        row = _run_row(activity, source, sha256, metrics, inferred, profile)
        runs.append((row, samples, bins))
    if not runs:
        outcome.outcome = SKIPPED
        outcome.reason = "; ".join(dict.fromkeys(skipped_reasons)) or "no run in this file"
    elif skipped_reasons:
        outcome.reason = "other legs skipped: " + "; ".join(dict.fromkeys(skipped_reasons))
    return outcome, runs


def _run_row(activity: Activity, source: SourceFile, sha256: str, metrics: dict,
             inferred: bool, profile: dict) -> dict:
    start = activity.start_utc
    columns = activity.columns
    if start is None or pd.isna(start):
        times = columns["timestamp"][columns["timestamp"] != NAT_NS]
        start = pd.Timestamp(int(times.min()), tz="UTC") if len(times) else pd.NaT
    lats, lons = columns["lat_deg"], columns["lon_deg"]
    fixes = np.flatnonzero(~np.isnan(lats) & ~np.isnan(lons))
    lat = float(lats[fixes[0]]) if len(fixes) else None
    lon = float(lons[fixes[0]]) if len(fixes) else None
    offset, tz_source = resolve_offset(start, activity.tz_offset_min, lat, lon,
                                       profile.get("default_tz"))
    summary = activity.summary
    row = {
        "run_id": run_id_for(start, activity.leg_index),
        "source_file": source.display,
        "source_format": activity.source_format,
        "file_sha256": sha256,
        "device": activity.device,
        "sport": RUNNING,
        "sub_sport": activity.sub_sport,
        "sport_inferred": inferred,
        "multisport_leg": activity.leg_index,
        "name": source.extra.get("name") or activity.name,
        "gear": source.extra.get("gear"),
        "start_utc": start,
        "tz_offset_min": offset,
        "tz_source": tz_source,
        "start_lat_deg": lat,
        "start_lon_deg": lon,
        "summary_distance_m": summary.get("distance_m"),
        "summary_elapsed_s": summary.get("elapsed_s"),
        "summary_timer_s": summary.get("timer_s"),
    }
    row.update(metrics)
    if activity.notes:
        extra_notes = "; ".join(activity.notes)
        row["quality_notes"] = "; ".join(x for x in (row.get("quality_notes"), extra_notes) if x)
    return row


class _Batch:
    """Runs and file outcomes waiting for the next atomic commit."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        # per-run arrays without their run_id, and the run ids in the same order: frames
        # and the id column are built once per commit (a frame per run cost more than its
        # run's maths)
        self.samples: list[SampleColumns] = []
        self.sample_ids: list[str] = []
        self.bins: list[dict[str, np.ndarray]] = []
        self.bin_ids: list[str] = []
        self.files: list[FileOutcome] = []
        #: files-table rows of files whose runs were replaced (recorded after ``files``)
        self.superseded: list[_Provider] = []

    def __len__(self) -> int:
        return len(self.files)

    def add_run(self, row: dict, samples: SampleColumns,
                bins: dict[str, np.ndarray] | None) -> None:
        self.rows.append(row)
        self.samples.append(samples)
        self.sample_ids.append(row["run_id"])
        if bins is not None:
            self.bins.append(bins)
            self.bin_ids.append(row["run_id"])

    def drop_run(self, run_id: str) -> None:
        """Forget a run of this batch (replaced before its commit), if it holds it."""
        if run_id in self.sample_ids:
            i = self.sample_ids.index(run_id)  # rows, samples and their ids go together
            del self.rows[i], self.samples[i], self.sample_ids[i]
        if run_id in self.bin_ids:
            i = self.bin_ids.index(run_id)
            del self.bins[i], self.bin_ids[i]


@dataclass
class _Provider:
    """The files-table row of a file that runs come from, as it will be recorded."""

    row: FileOutcome
    #: when it was last seen; None: in this import (now)
    last_seen_utc: pd.Timestamp | None = None


def _distances(known_m: float, new_m: float) -> str:
    """'distance 5.02 vs 5.00 km (0.4 % apart)' for a duplicate's reason."""
    if not (np.isfinite(known_m) and np.isfinite(new_m)) or max(known_m, new_m) <= 0:
        return "distance unknown"
    apart = abs(known_m - new_m) / max(known_m, new_m) * 100
    return f"distance {new_m / 1000:.2f} vs {known_m / 1000:.2f} km ({apart:.1f} % apart)"


class RunIndex:
    """Start times and distances of known runs, to find the same activity from another file.

    Two recordings are one activity when they start in the same second (the run id is
    derived from it), or start within DUPLICATE_START_TOLERANCE_S of each other with
    distances within DUPLICATE_DISTANCE_TOLERANCE of the larger one. Kept sorted by start so
    each look-up is a binary search, not a scan.

    A recording in the same second that is clearly more complete than the known one
    (:meth:`more_complete`) replaces it; the index also knows each run's elapsed time, the
    file it came from and (for runs of this import, else read from the store when needed)
    its number of samples.
    """

    def __init__(self, runs: pd.DataFrame,
                 sample_count: Callable[[str], int] | None = None) -> None:
        order = runs["start_utc"].argsort(kind="stable") if len(runs) else []
        ordered = runs.iloc[order] if len(runs) else runs
        self.start_ns = (ordered["start_utc"].dt.tz_convert("UTC").dt.as_unit("ns")
                         .astype("int64").to_numpy() if len(runs) else np.empty(0, "int64"))
        self.distance_m = ordered["distance_m"].to_numpy(dtype="float64", na_value=np.nan)
        self.elapsed_s = (ordered["elapsed_s"].to_numpy(dtype="float64", na_value=np.nan)
                          if "elapsed_s" in ordered else np.full(len(ordered), np.nan))
        self.run_ids = ordered["run_id"].astype(str).tolist()
        sources = _plain(ordered["source_file"].tolist()) if "source_file" in ordered \
            else [None] * len(ordered)
        hashes = _plain(ordered["file_sha256"].tolist()) if "file_sha256" in ordered \
            else [None] * len(ordered)
        #: run id → (the file it came from, that file's sha256)
        self.origin: dict[str, tuple[str | None, str | None]] = dict(
            zip(self.run_ids, zip(sources, hashes, strict=True), strict=True))
        self._sample_counts: dict[str, int] = {}
        self._count_stored = sample_count

    def _nearby(self, start_utc: pd.Timestamp) -> tuple[int, int, int]:
        t = pd.Timestamp(start_utc).tz_convert("UTC").as_unit("ns").value
        tol = int(DUPLICATE_START_TOLERANCE_S * 1e9)
        lo = int(np.searchsorted(self.start_ns, t - tol, side="left"))
        hi = int(np.searchsorted(self.start_ns, t + tol, side="right"))
        return t, lo, hi

    def _position(self, run_id: str, start_utc: pd.Timestamp) -> int | None:
        """Where the known run ``run_id`` (same start second) is, if known."""
        _, lo, hi = self._nearby(start_utc)
        for i in range(lo, hi):  # at most a handful of runs start within a minute
            if self.run_ids[i] == run_id:
                return i
        return None

    def match(self, run_id: str, start_utc: pd.Timestamp,
              distance_m: float) -> tuple[str, str] | None:
        """(run_id, the key that matched, in words) of the known run that is this activity."""
        t, lo, hi = self._nearby(start_utc)
        i = self._position(run_id, start_utc)
        if i is not None:
            return run_id, f"same start second; {_distances(self.distance_m[i], distance_m)}"
        dist = self.distance_m[lo:hi]
        larger = np.fmax(dist, distance_m)
        close = np.abs(dist - distance_m) <= DUPLICATE_DISTANCE_TOLERANCE * larger
        hits = np.flatnonzero(close)
        if len(hits):
            best = lo + hits[np.argmin(np.abs(self.start_ns[lo:hi][hits] - t))]
            gap_s = abs(self.start_ns[best] - t) / 1e9
            return self.run_ids[best], (f"start {gap_s:.0f} s apart and "
                                        f"{_distances(self.distance_m[best], distance_m)}")
        return None

    def more_complete(self, run_id: str, start_utc: pd.Timestamp, distance_m: float,
                      elapsed_s: float, samples: int) -> tuple[float, float] | None:
        """(known distance, new distance) [m] when this recording of the known run
        ``run_id`` (same start second) is clearly more complete than it, else None:
        more samples, and elapsed time and distance both longer by more than
        MORE_COMPLETE_MARGIN of the new recording's. Unknown values never replace."""
        i = self._position(run_id, start_utc)
        if i is None:
            return None
        known_m, known_s = float(self.distance_m[i]), float(self.elapsed_s[i])
        distance_m, elapsed_s = _number(distance_m), _number(elapsed_s)
        if not np.isfinite([known_m, known_s, distance_m, elapsed_s]).all():
            return None
        longer = (distance_m - known_m > MORE_COMPLETE_MARGIN * distance_m
                  and elapsed_s - known_s > MORE_COMPLETE_MARGIN * elapsed_s)
        if not longer or samples <= self.samples_of(run_id):
            return None
        return known_m, float(distance_m)

    def samples_of(self, run_id: str) -> int:
        """Number of samples of a known run (read from the store once, if stored before)."""
        count = self._sample_counts.get(run_id)
        if count is None:
            count = self._count_stored(run_id) if self._count_stored is not None else 0
            self._sample_counts[run_id] = count
        return count

    def add(self, run_id: str, start_utc: pd.Timestamp, distance_m: float,
            elapsed_s: float = float("nan"), samples: int | None = None,
            origin: tuple[str | None, str | None] = (None, None)) -> None:
        t = pd.Timestamp(start_utc).tz_convert("UTC").as_unit("ns").value
        i = int(np.searchsorted(self.start_ns, t, side="right"))
        self.start_ns = np.insert(self.start_ns, i, t)
        self.distance_m = np.insert(self.distance_m, i, distance_m)
        self.elapsed_s = np.insert(self.elapsed_s, i, elapsed_s)
        self.run_ids.insert(i, run_id)
        self.origin[run_id] = origin
        if samples is not None:
            self._sample_counts[run_id] = samples

    def replace(self, run_id: str, start_utc: pd.Timestamp, distance_m: float,
                elapsed_s: float, samples: int, origin: tuple[str | None, str | None]) -> None:
        """The known run ``run_id`` is now this recording (its start may differ in ms)."""
        i = self._position(run_id, start_utc)
        if i is not None:
            self.start_ns = np.delete(self.start_ns, i)
            self.distance_m = np.delete(self.distance_m, i)
            self.elapsed_s = np.delete(self.elapsed_s, i)
            del self.run_ids[i]
        self.add(run_id, start_utc, distance_m, elapsed_s, samples, origin)


def import_paths(store: Store, paths: Iterable[str], *,
                 on_file: Callable[[FileOutcome], None] | None = None,
                 batch_files: int = BATCH_FILES, jobs: int | None = None) -> ImportResult:
    """Import every activity file under ``paths`` (files, folders, archives) into ``store``.

    Raises only for problems with the whole import (a path that does not exist, a busy or
    damaged store); every per-file problem becomes that file's outcome. ``jobs`` is the
    number of files parsed at a time: one in this process, the others in worker processes
    (None: :func:`default_jobs`, one per core but one; 1: parse in this process only).
    """
    return import_sources(store, discover(paths), on_file=on_file, batch_files=batch_files,
                          jobs=jobs)


class KnownFiles:
    """The store's files table as two dicts, loaded once per import.

    ``by_stat`` maps ``(path, size_bytes, mtime_ns)`` and ``by_hash`` maps ``sha256`` to the
    row (a plain dict); later rows win, as in :meth:`runlog.store.Store.known_file`.
    """

    COLUMNS = ("path", "sha256", "size_bytes", "mtime_ns", "format", "outcome", "reason",
               "run_ids", "matched_run_id", "last_seen_utc")

    def __init__(self, files: pd.DataFrame) -> None:
        cols = {c: _plain(files[c].tolist()) for c in self.COLUMNS if c in files.columns}
        n = len(files)
        rows = [{c: cols[c][i] for c in cols} for i in range(n)]
        self.by_hash: dict[str, dict] = {r["sha256"]: r for r in rows
                                         if isinstance(r.get("sha256"), str)}
        self.by_stat: dict[tuple[str, int, int], dict] = {}
        for r in rows:
            size, mtime = r.get("size_bytes"), r.get("mtime_ns")
            if size is not None and mtime is not None:
                self.by_stat[(r["path"], int(size), int(mtime))] = r

    def unchanged(self, item: SourceFile) -> FileOutcome | None:
        """Outcome of a file seen before with the same path, size and mtime, unread."""
        if item.size_bytes is None or item.mtime_ns is None:
            return None
        row = self.by_stat.get((item.display, int(item.size_bytes), int(item.mtime_ns)))
        return _repeat_outcome(item, row, "unchanged since the last import")

    def same_content(self, item: SourceFile, sha256: str) -> FileOutcome | None:
        """Outcome of a file whose content the store has seen under any path."""
        row = self.by_hash.get(sha256)
        return _repeat_outcome(item, row, f"same content as {row['path']}" if row is not None
                               else "")


def _number(value: Any) -> float:
    """A float, NaN for a missing value (None, NA)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _plain(values: list[Any]) -> list[Any]:
    """NA/NaN → None so that rows read like the store's (``isinstance(x, str)`` checks)."""
    return [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v
            for v in values]


def _parse_job(display: str, fmt: str | None, extra: dict[str, str], size: int | None,
               mtime: int | None, data: bytes, sha256: str, profile: dict,
               ) -> tuple[FileOutcome, list[ParsedRun]]:
    """Worker entry point: rebuild the SourceFile from picklable parts, run process_file.

    Any exception becomes the file's ``failed`` outcome, so nothing a reader does can stop
    the import (a dying process is handled by the caller).
    """
    source = SourceFile(display, fmt, size, mtime, lambda: data, extra=dict(extra))
    try:
        return process_file(source, data, sha256, profile)
    except Exception as err:  # a reader bug must not stop the import: say so, go on
        log.debug("unexpected error on %s", display, exc_info=True)
        return FileOutcome(display, fmt, FAILED,
                           f"internal error while reading ({type(err).__name__}: {err})",
                           sha256=sha256, size_bytes=size, mtime_ns=mtime), []


def _failed(job: tuple, err: BaseException) -> FileOutcome:
    """``failed`` outcome of a job whose worker raised outside process_file."""
    display, fmt, _extra, size, mtime, _data, sha256, _profile = job
    return FileOutcome(display, fmt, FAILED,
                       f"internal error while reading ({type(err).__name__}: {err})",
                       sha256=sha256, size_bytes=size, mtime_ns=mtime)


@dataclass
class _Entry:
    """One discovered file on its way through the import, in discovery order."""

    item: SourceFile
    outcome: FileOutcome | None = None       # known before parsing (or after, when done)
    record: bool = False                     # goes into the files table (read failures)
    job: tuple | None = None                 # _parse_job arguments, until consumed
    future: Future | None = None
    runs: list | None = None                 # process_file result, when parsed
    #: the first file of this import with the same content, and this file's outcome as its
    #: identical copy: settled in discovery order, once the first file's outcome is known
    same_as: _Entry | None = None
    identical: FileOutcome | None = None

    @property
    def waiting(self) -> bool:
        """Needs parsing and has no result yet."""
        return self.job is not None and self.runs is None


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver (a clean process with runlog preloaded) where available, else spawn.

    fork is avoided: the parent may hold pyarrow/OpenMP threads, which fork cannot copy.
    """
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        ctx.set_forkserver_preload(list(WORKER_PRELOAD))
    return ctx


def default_jobs() -> int:
    """Files parsed at a time when the caller does not say: one per core but one, at least 1.

    The importing process has its own work besides parsing (reading, hashing, matching,
    committing). Measured on 2 cores (data/sample + corpus, ~180 files to parse): a second
    parser in a worker saved 3–20 % of the time and took the summed memory of all processes
    from ~200 to ~330 MiB, so a 2-core machine imports in one process by default.
    """
    return max(1, (os.cpu_count() or 1) - 1)


def _worker_ready() -> int:
    """The pool's warm-up job: returns once a worker is up (runlog preloaded)."""
    return os.getpid()


class _Parser:
    """Runs _parse_job in this process and, once started, in a pool beside it.

    ``jobs`` files are parsed at a time: one in this process and ``jobs − 1`` in worker
    processes. The pool warms up in a background thread (the forkserver starts and imports
    runlog: ~0.9 s on 2 cores) while this process goes on parsing; files go to the pool only
    once it is ready and has room, so this process never waits for it to start.
    """

    def __init__(self, jobs: int | None) -> None:
        parsers = max(1, int(jobs if jobs is not None else default_jobs()))
        self.workers = parsers - 1
        self.limit = IN_FLIGHT_PER_WORKER * max(1, self.workers)  # files in the pool at most
        self.pool: ProcessPoolExecutor | None = None
        self.used_pool = False
        self.ready = False  # set by the warm-up thread once a worker answered
        self.in_flight = 0  # submitted, result not yet collected
        self._warming: threading.Thread | None = None

    @property
    def parallel(self) -> bool:
        return self.workers > 0

    def start(self) -> None:
        """Create the pool and warm it up in the background (returns at once)."""
        if self.pool is None:
            self.ready = False
            self.pool = ProcessPoolExecutor(self.workers, mp_context=_pool_context())
            self.used_pool = True
            self._warming = threading.Thread(target=self._warm_up, args=(self.pool,),
                                             name="runlog-pool-warm-up", daemon=True)
            self._warming.start()

    def _warm_up(self, pool: ProcessPoolExecutor) -> None:
        try:
            pool.submit(_worker_ready).result()
        except Exception:  # a pool that cannot start: this process parses everything
            log.debug("the worker pool did not start", exc_info=True)
            return
        if pool is self.pool:
            self.ready = True

    def has_room(self) -> bool:
        """The pool is up and holds fewer than its limit of files."""
        return self.ready and self.pool is not None and self.in_flight < self.limit

    def submit(self, entry: _Entry) -> None:
        assert self.pool is not None and entry.job is not None
        entry.future = self.pool.submit(_parse_job, *entry.job)
        self.in_flight += 1

    def run_here(self, entry: _Entry) -> None:
        assert entry.job is not None
        entry.outcome, entry.runs = _parse_job(*entry.job)

    def collect(self, entry: _Entry) -> None:
        """Wait for ``entry``'s result; a dead worker → retry alone → failed if it dies again."""
        assert entry.future is not None and entry.job is not None
        try:
            entry.outcome, entry.runs = entry.future.result()
        except BrokenProcessPool:
            self._replace_broken_pool()
            log.debug("worker died on %s (or on a file beside it); retrying it alone",
                      entry.item.display)
            entry.outcome, entry.runs = self._isolated(entry.job)
        except Exception as err:  # e.g. a result that cannot be sent back: this file fails
            log.debug("worker error on %s", entry.item.display, exc_info=True)
            entry.outcome, entry.runs = _failed(entry.job, err), []
        entry.future = None
        self.in_flight -= 1

    def _replace_broken_pool(self) -> None:
        if self.pool is not None and getattr(self.pool, "_broken", False):
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
            self.start()

    def _isolated(self, job: tuple) -> tuple[FileOutcome, list]:
        display, fmt, _extra, size, mtime, _data, sha256, _profile = job
        with ProcessPoolExecutor(1, mp_context=_pool_context()) as alone:
            try:
                return alone.submit(_parse_job, *job).result()
            except BrokenProcessPool:
                return FileOutcome(display, fmt, FAILED, WORKER_DIED, sha256=sha256,
                                   size_bytes=size, mtime_ns=mtime), []
            except Exception as err:
                return _failed(job, err), []

    def close(self, cancel: bool) -> None:
        if self.pool is not None:
            # a pool still starting has no file: don't wait for its start-up to end
            self.pool.shutdown(wait=self.ready, cancel_futures=cancel or not self.ready)
            self.pool = None
        if self._warming is not None:
            self._warming.join()
            self._warming = None


def import_sources(store: Store, sources: Iterable[SourceFile | Ignored], *,
                   on_file: Callable[[FileOutcome], None] | None = None,
                   batch_files: int = BATCH_FILES, jobs: int | None = None) -> ImportResult:
    """Import already discovered sources (see :func:`runlog.sources.discover`).

    ``on_file`` is called once per file, in discovery order, as soon as its outcome is known
    (progress, printing). ``jobs``: files parsed at a time, one here and ``jobs − 1`` in
    worker processes (None: :func:`default_jobs`, one per core but one; 1: no workers).
    Outcomes, run ids and duplicates do not depend on ``jobs``.
    """
    result = ImportResult()
    profile = store.profile()
    index = RunIndex(store.runs(), sample_count=lambda run_id: len(store.samples([run_id])))
    known = KnownFiles(store.files())
    seen_hashes: dict[str, _Entry] = {}
    providers: dict[str, _Provider] = {}  # by sha256: the files runs come from
    batch = _Batch()
    parser = _Parser(jobs)
    queue: deque[_Entry] = deque()
    parsed_here = 0  # files parsed in this process

    def report(outcome: FileOutcome) -> None:
        result.outcomes.append(outcome)
        if on_file:
            on_file(outcome)

    def finish(entry: _Entry) -> None:
        nonlocal batch
        if entry.same_as is not None:
            _settle_copy(entry)
        outcome = entry.outcome
        assert outcome is not None
        if entry.runs is None:  # known before parsing
            if entry.record:
                batch.files.append(outcome)
            report(outcome)
        else:
            _place_runs(outcome, entry.runs, index, batch, providers, known)
            batch.files.append(outcome)
            report(outcome)
        entry.job = entry.runs = None
        if len(batch) >= batch_files:
            _commit(store, batch)
            batch = _Batch()

    def drain(queued_at_most: int) -> None:
        """Finish entries from the head; wait for a head still in the pool only while more
        than ``queued_at_most`` entries are queued (files parsed here behind it hold their
        results in memory)."""
        while queue:
            head = queue[0]
            if head.waiting:
                if len(queue) <= queued_at_most and not head.future.done():
                    return
                parser.collect(head)
            finish(queue.popleft())

    queued_at_most = parser.limit + 2
    completed = False
    ahead = _Lookahead(sources, known)
    pool_wanted = parser.parallel
    try:
        for item in ahead:
            if isinstance(item, Ignored):
                result.ignored.append(item)
                continue
            entry = _prepare(item, known, seen_hashes, profile)
            queue.append(entry)
            if entry.waiting:
                # a small import never pays for a pool: it starts with the file after the
                # first POOL_MIN_FILES when POOL_MIN_AHEAD more follow, and this process
                # parses on while it warms up
                if pool_wanted and parsed_here >= POOL_MIN_FILES:
                    pool_wanted = False   # decided once: fewer ahead now means fewer later
                    if ahead.files_to_read(POOL_MIN_AHEAD) >= POOL_MIN_AHEAD:
                        parser.start()
                if parser.has_room():
                    parser.submit(entry)
                else:
                    parser.run_here(entry)
                    parsed_here += 1
            drain(queued_at_most)
        drain(0)
        if len(batch):
            _commit(store, batch)
        completed = True
    finally:
        parser.close(cancel=not completed)
    result.workers = parser.workers if parser.used_pool else 0
    return result


class _Lookahead:
    """Discovered sources, in order, with a peek at how many files to read come next."""

    def __init__(self, sources: Iterable[SourceFile | Ignored], known: KnownFiles) -> None:
        self._sources = iter(sources)
        self._known = known
        self._peeked: deque[SourceFile | Ignored] = deque()

    def __iter__(self) -> Iterator[SourceFile | Ignored]:
        while True:
            if self._peeked:
                yield self._peeked.popleft()
                continue
            item = next(self._sources, None)
            if item is None:
                return
            yield item

    def files_to_read(self, at_most: int) -> int:
        """How many of the next discovered sources are files to read (not unchanged since
        the last import), counting up to ``at_most``; discovers ahead as needed."""
        count = sum(self._to_read(item) for item in self._peeked)
        while count < at_most:
            item = next(self._sources, None)
            if item is None:
                break
            self._peeked.append(item)
            count += self._to_read(item)
        return count

    def _to_read(self, item: SourceFile | Ignored) -> bool:
        return isinstance(item, SourceFile) and self._known.unchanged(item) is None


def _prepare(item: SourceFile, known: KnownFiles, seen_hashes: dict[str, str],
             profile: dict) -> _Entry:
    """Everything before parsing: unchanged? readable? content already seen?"""
    outcome = known.unchanged(item)
    if outcome is not None:
        return _Entry(item, outcome)
    try:
        data = item.read_bytes()
    except FileReadError as err:
        outcome = FileOutcome(item.display, item.fmt, FAILED, err.reason, offset=err.offset,
                              size_bytes=item.size_bytes, mtime_ns=item.mtime_ns)
        return _Entry(item, outcome, record=True)
    if not data:
        # no content to recognise it by: recorded by path, and failed whatever its format
        return _Entry(item, FileOutcome(item.display, item.fmt, FAILED, EMPTY_FILE,
                                        size_bytes=item.size_bytes, mtime_ns=item.mtime_ns),
                      record=True)
    sha256 = hashlib.sha256(data).hexdigest()
    job = (item.display, item.fmt, dict(item.extra), item.size_bytes, item.mtime_ns, data,
           sha256, profile)
    first = seen_hashes.get(sha256)
    if first is not None:
        identical = FileOutcome(item.display, item.fmt, DUPLICATE,
                                f"same content as {first.item.display} (identical file)",
                                sha256=sha256, size_bytes=item.size_bytes,
                                mtime_ns=item.mtime_ns)
        # Another format's name: read it in its own (used only if the first file failed).
        return _Entry(item, job=job if first.item.fmt != item.fmt else None, same_as=first,
                      identical=identical)
    outcome = known.same_content(item, sha256)
    if outcome is not None:
        return _Entry(item, outcome)
    entry = _Entry(item, job=job)
    seen_hashes[sha256] = entry
    return entry


def _settle_copy(entry: _Entry) -> None:
    """The outcome of a file whose content an earlier file of this import had, now that the
    earlier file's outcome is known: a duplicate of it, unless it failed. Then this copy
    fails too, with its reason, when it has the same format (reading it would fail alike);
    under another format's name it keeps the outcome of being read in its own."""
    assert entry.same_as is not None and entry.identical is not None
    first = entry.same_as.outcome
    assert first is not None
    if first.outcome != FAILED:
        entry.outcome, entry.runs = entry.identical, None
    elif entry.runs is None:
        copy = entry.identical
        entry.outcome = FileOutcome(copy.path, copy.fmt, FAILED,
                                    f"{first.reason} (same content as {first.path})",
                                    offset=first.offset, sha256=copy.sha256,
                                    size_bytes=copy.size_bytes, mtime_ns=copy.mtime_ns)
    entry.same_as = entry.identical = None


def _place_runs(outcome: FileOutcome, runs: list[ParsedRun], index: RunIndex,
                batch: _Batch, providers: dict[str, _Provider], known: KnownFiles) -> None:
    """Match a parsed file's runs against known runs; new ones go into the batch, and so do
    those that replace a less complete known copy of themselves (same run id)."""
    new_ids: list[str] = []
    replaced: list[str] = []
    matched_key = ""
    for row, samples, bins in runs:
        run_id = row["run_id"]
        count = len(samples["timestamp"])
        origin = (outcome.path, outcome.sha256)
        match = index.match(run_id, row["start_utc"], row["distance_m"])
        distances = match and index.more_complete(run_id, row["start_utc"], row["distance_m"],
                                                  row["elapsed_s"], count)
        if distances:
            known_m, new_m = distances
            old_file, old_sha = index.origin.get(run_id, (None, None))
            replaced.append(f"more complete than the stored copy of run {run_id} from "
                            f"{old_file or 'an unknown file'} ({new_m / 1000:.2f} vs "
                            f"{known_m / 1000:.2f} km)")
            outcome.replaced_run_ids.append(run_id)
            outcome.matched_run_id = outcome.matched_run_id or run_id
            batch.drop_run(run_id)  # if its copy has not been committed yet
            _supersede(old_sha, run_id, outcome.path, providers, known, batch)
            index.replace(run_id, row["start_utc"], row["distance_m"], row["elapsed_s"],
                          count, origin)
        elif match:
            outcome.matched_run_id, matched_key = match
            continue
        else:
            index.add(run_id, row["start_utc"], row["distance_m"], row["elapsed_s"], count,
                      origin)
        new_ids.append(run_id)
        batch.add_run(row, samples, bins)
    outcome.run_ids = new_ids
    if runs and not new_ids:
        outcome.outcome = DUPLICATE
        outcome.reason = f"same activity as run {outcome.matched_run_id}: {matched_key}"
    elif replaced:
        if len(replaced) == len(new_ids):
            outcome.outcome = REPLACED
        outcome.reason = "; ".join([*replaced, *([outcome.reason] if outcome.reason else [])])
    if new_ids and outcome.sha256 is not None:
        # as the files table will hold it: the file these runs come from
        providers[outcome.sha256] = _Provider(dataclasses.replace(
            outcome, outcome=NEW, run_ids=list(new_ids), replaced_run_ids=[]))


def _supersede(sha256: str | None, run_id: str, by: str, providers: dict[str, _Provider],
               known: KnownFiles, batch: _Batch) -> None:
    """Record that the file ``run_id`` came from no longer gives it (a more complete file,
    ``by``, does): its files-table row loses the run, and with no run left it becomes a
    duplicate of it. Nothing when that file is not known (no row to correct)."""
    if sha256 is None:
        return
    provider = providers.get(sha256)
    if provider is None:
        stored = known.by_hash.get(sha256)
        if stored is None:
            return
        listed = stored.get("run_ids")
        provider = _Provider(FileOutcome(
            stored["path"], stored.get("format"), stored["outcome"], stored.get("reason") or "",
            run_ids=listed.split(",") if isinstance(listed, str) and listed else [],
            matched_run_id=stored.get("matched_run_id"), sha256=sha256,
            size_bytes=stored.get("size_bytes"), mtime_ns=stored.get("mtime_ns")),
            last_seen_utc=stored.get("last_seen_utc"))
        providers[sha256] = provider
    row = provider.row
    row.run_ids = [r for r in row.run_ids if r != run_id]
    if not row.run_ids:
        row.outcome, row.matched_run_id = DUPLICATE, run_id
        row.reason = f"superseded by {by}, a more complete recording of run {run_id}"
    batch.superseded.append(provider)


def _repeat_outcome(item: SourceFile, row: dict | None, why: str) -> FileOutcome | None:
    # Failed files are tried again: a newer runlog may read them.
    if row is None or row["outcome"] == FAILED:
        return None
    matched = None
    if isinstance(row.get("run_ids"), str) and row["run_ids"]:
        matched = row["run_ids"].split(",")[0]
    elif isinstance(row.get("matched_run_id"), str):
        matched = row["matched_run_id"]
    if row["outcome"] == SKIPPED:
        return FileOutcome(item.display, item.fmt, SKIPPED,
                           f"{row['reason']} (already seen: {why})", sha256=row["sha256"])
    return FileOutcome(item.display, item.fmt, DUPLICATE, f"already imported: {why}",
                       matched_run_id=matched, sha256=row["sha256"])


def _files_rows(outcomes: list[FileOutcome],
                superseded: list[_Provider] = ()) -> list[dict[str, Any]]:
    """The files table's rows for a batch's outcomes (seen now), then the corrected rows of
    files whose runs were replaced (seen when they were). A ``replaced`` file is recorded
    as ``new``: the file its runs come from."""
    now = pd.Timestamp.now(tz="UTC")
    seen = [(o, now) for o in outcomes] + [
        (p.row, now if p.last_seen_utc is None else p.last_seen_utc) for p in superseded]
    return [{"path": o.path, "sha256": o.sha256, "size_bytes": o.size_bytes,
             "mtime_ns": o.mtime_ns, "format": o.fmt,
             "outcome": NEW if o.outcome == REPLACED else o.outcome,
             "reason": o.reason, "run_ids": ",".join(o.run_ids),
             "matched_run_id": o.matched_run_id, "first_seen_utc": now,
             "last_seen_utc": last_seen} for o, last_seen in seen]


#: Columns of the arrays :func:`process_file` gives per run, in the store's order.
SAMPLE_ORDER = ["timestamp", *FLOAT_SAMPLE_COLUMNS]
BIN_ORDER = [c for c in CADENCE_BIN_COLUMNS if c != "run_id"]


def stacked_frame(parts: list[dict[str, np.ndarray]], run_ids: list[str],
                  columns: list[str]) -> pd.DataFrame:
    """Per-run arrays stacked into one frame: a first ``run_id`` column naming each part's
    run, then ``columns`` (``timestamp`` as int64 ns becomes UTC times). The store's column
    order and dtypes, so the store takes the frame without converting it again."""
    lengths = [len(part[columns[0]]) for part in parts]
    ids = np.repeat(np.array(run_ids, dtype=object), lengths)
    frame: dict[str, Any] = {"run_id": pd.array(ids, dtype="str")}
    for name in columns:
        values = np.concatenate([part[name] for part in parts]) if parts else np.zeros(0)
        frame[name] = utc_from_ns(values.astype("int64")).array if name == "timestamp" \
            else values.astype("float64", copy=False)
    return pd.DataFrame(frame, index=pd.RangeIndex(len(ids)), copy=False)


def stacked_table(parts: list[dict[str, np.ndarray]], run_ids: list[str],
                  table: str) -> pa.Table:
    """:func:`stacked_frame` as an Arrow table in the store's ``arrow_schema(table)``
    (``samples`` or ``cadence_bins``): what the import commits, without pandas. Missing
    values (NaN, the NaT sentinel) become nulls, as a frame's do when written."""
    schema = arrow_schema(table)
    lengths = [len(part[schema.names[1]]) for part in parts]
    which_run = np.repeat(np.arange(len(run_ids), dtype=np.int32), lengths)
    arrays = [pa.DictionaryArray.from_arrays(which_run, pa.array(run_ids, pa.string()))
              .cast(pa.string())]
    for column in list(schema)[1:]:
        values = np.concatenate([part[column.name] for part in parts]) if parts else \
            np.zeros(0)
        if pa.types.is_timestamp(column.type):
            ns = values.astype("int64", copy=False)
            arrays.append(pa.array(ns, type=column.type, mask=ns == NAT_NS))
        else:
            arrays.append(pa.array(values.astype("float64", copy=False), type=column.type,
                                   from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def _commit(store: Store, batch: _Batch) -> None:
    files_rows = _files_rows(batch.files, batch.superseded)
    with store.writer() as tx:
        if batch.rows:
            runs = arrow_from_rows(batch.rows, "runs")
            if runs is not None:
                samples = stacked_table(batch.samples, batch.sample_ids, "samples")
                bins = stacked_table(batch.bins, batch.bin_ids, "cadence_bins") \
                    if batch.bins else None
            else:  # a value only pandas converts: the frame path
                runs = frame_from_rows(batch.rows, "runs")
                samples = stacked_frame(batch.samples, batch.sample_ids, SAMPLE_ORDER)
                bins = stacked_frame(batch.bins, batch.bin_ids, BIN_ORDER) if batch.bins \
                    else None
            tx.add_runs(runs, samples, bins)
        # Files without content (unreadable) have no hash; they are keyed by path instead.
        files = arrow_from_rows(files_rows, "files")
        tx.record_files(files if files is not None else frame_from_rows(files_rows, "files"))
