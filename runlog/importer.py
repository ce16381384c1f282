"""Import: sources → readers → metrics → store, one outcome per file, nothing lost.

Every file gets exactly one outcome — ``new``, ``duplicate`` (with the key that matched),
``skipped`` (with why) or ``failed`` (with why, and the byte offset for FIT). One bad file never
stops an import. Work is committed to the store in batches, each batch atomically, so an
interrupted import keeps every batch it finished and re-running it is safe: files already in
the store are recognised by path, size and modification time, or by content hash, unparsed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from runlog.activity import RUNNING, Activity
from runlog.errors import FileReadError, RunlogError, SkippedFile
from runlog.localtime import resolve_offset
from runlog.metrics import compute_run_metrics
from runlog.readers import read_activities
from runlog.readers.sport import normalise_sport
from runlog.sources import Ignored, SourceFile, discover
from runlog.store import Store

log = logging.getLogger(__name__)

NEW, DUPLICATE, SKIPPED, FAILED = "new", "duplicate", "skipped", "failed"
#: Files committed per store write; an interrupted import loses at most one batch of work.
BATCH_FILES = 100
#: Median moving speed band [m/s] that makes an untagged track a run (≈ 2:34–9:15 min/km).
INFERRED_RUN_MIN_SPEED_MPS = 1.8
INFERRED_RUN_MAX_SPEED_MPS = 6.5
#: Same activity from another file: starts within this many seconds ...
DUPLICATE_START_TOLERANCE_S = 60.0
#: ... and distances within this fraction of the larger one.
DUPLICATE_DISTANCE_TOLERANCE = 0.02


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

    def as_dict(self) -> dict:
        return {"path": self.path, "format": self.fmt, "outcome": self.outcome,
                "reason": self.reason, "run_ids": list(self.run_ids),
                "matched_run_id": self.matched_run_id, "byte_offset": self.offset}


@dataclass
class ImportResult:
    """All outcomes of one import, plus files that were not activity formats."""

    outcomes: list[FileOutcome] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)

    @property
    def new_run_ids(self) -> list[str]:
        return [rid for o in self.outcomes if o.outcome == NEW for rid in o.run_ids]

    def counts(self) -> dict[str, int]:
        keys = (NEW, DUPLICATE, SKIPPED, FAILED)
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


def process_file(source: SourceFile, data: bytes, sha256: str, profile: dict,
                 ) -> tuple[FileOutcome, list[tuple[dict, pd.DataFrame, pd.DataFrame]]]:
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

    hr_max = profile.get("hr_max_bpm")
    runs: list[tuple[dict, pd.DataFrame, pd.DataFrame]] = []
    skipped_reasons: list[str] = []
    for activity in activities:
        is_run, not_run_reason, inferred = _is_running(activity, source.extra)
        if not is_run:
            label = f"leg {activity.leg_index + 1}: " if activity.leg_index is not None else ""
            skipped_reasons.append(f"{label}{not_run_reason}")
            continue
        try:
            metrics, samples, bins = compute_run_metrics(activity, hr_max_bpm=hr_max)
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
    samples = activity.samples
    if start is None or pd.isna(start):
        start = samples["timestamp"].dropna().min()
    first_fix = samples[["lat_deg", "lon_deg"]].dropna().head(1)
    lat = float(first_fix["lat_deg"].iloc[0]) if len(first_fix) else None
    lon = float(first_fix["lon_deg"].iloc[0]) if len(first_fix) else None
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
        self.samples: list[pd.DataFrame] = []
        self.bins: list[pd.DataFrame] = []
        self.files: list[FileOutcome] = []

    def __len__(self) -> int:
        return len(self.files)


class RunIndex:
    """Start times and distances of known runs, to find the same activity from another file.

    Two recordings are one activity when they start in the same second (the run id is
    derived from it), or start within DUPLICATE_START_TOLERANCE_S of each other with
    distances within DUPLICATE_DISTANCE_TOLERANCE of the larger one. Kept sorted by start so
    each look-up is a binary search, not a scan.
    """

    def __init__(self, runs: pd.DataFrame) -> None:
        order = runs["start_utc"].argsort(kind="stable") if len(runs) else []
        ordered = runs.iloc[order] if len(runs) else runs
        self.start_ns = (ordered["start_utc"].dt.tz_convert("UTC").dt.as_unit("ns")
                         .astype("int64").to_numpy() if len(runs) else np.empty(0, "int64"))
        self.distance_m = ordered["distance_m"].to_numpy(dtype="float64", na_value=np.nan)
        self.run_ids = ordered["run_id"].astype(str).tolist()

    def match(self, run_id: str, start_utc: pd.Timestamp, distance_m: float) -> str | None:
        """run_id of the known run that is this activity, else None."""
        t = pd.Timestamp(start_utc).tz_convert("UTC").as_unit("ns").value
        tol = int(DUPLICATE_START_TOLERANCE_S * 1e9)
        lo = int(np.searchsorted(self.start_ns, t - tol, side="left"))
        hi = int(np.searchsorted(self.start_ns, t + tol, side="right"))
        for i in range(lo, hi):  # at most a handful of runs start within a minute
            if self.run_ids[i] == run_id:
                return run_id
        dist = self.distance_m[lo:hi]
        larger = np.fmax(dist, distance_m)
        close = np.abs(dist - distance_m) <= DUPLICATE_DISTANCE_TOLERANCE * larger
        hits = np.flatnonzero(close)
        if len(hits):
            best = hits[np.argmin(np.abs(self.start_ns[lo:hi][hits] - t))]
            return self.run_ids[lo + best]
        return None

    def add(self, run_id: str, start_utc: pd.Timestamp, distance_m: float) -> None:
        t = pd.Timestamp(start_utc).tz_convert("UTC").as_unit("ns").value
        i = int(np.searchsorted(self.start_ns, t, side="right"))
        self.start_ns = np.insert(self.start_ns, i, t)
        self.distance_m = np.insert(self.distance_m, i, distance_m)
        self.run_ids.insert(i, run_id)


def import_paths(store: Store, paths: Iterable[str], *,
                 on_file: Callable[[FileOutcome], None] | None = None,
                 batch_files: int = BATCH_FILES) -> ImportResult:
    """Import every activity file under ``paths`` (files, folders, archives) into ``store``.

    Raises only for problems with the whole import (a path that does not exist, a busy or
    damaged store); every per-file problem becomes that file's outcome.
    """
    return import_sources(store, discover(paths), on_file=on_file, batch_files=batch_files)


def import_sources(store: Store, sources: Iterable[SourceFile | Ignored], *,
                   on_file: Callable[[FileOutcome], None] | None = None,
                   batch_files: int = BATCH_FILES) -> ImportResult:
    """Import already discovered sources (see :func:`runlog.sources.discover`).

    ``on_file`` is called once per file as soon as its outcome is known (progress, printing).
    """
    result = ImportResult()
    profile = store.profile()
    index = RunIndex(store.runs())
    seen_hashes: dict[str, str] = {}
    batch = _Batch()

    def report(outcome: FileOutcome) -> None:
        result.outcomes.append(outcome)
        if on_file:
            on_file(outcome)

    for item in sources:
        if isinstance(item, Ignored):
            result.ignored.append(item)
            continue
        outcome = _known_unchanged(store, item)
        if outcome is not None:
            report(outcome)
            continue
        try:
            data = item.read_bytes()
        except FileReadError as err:
            outcome = FileOutcome(item.display, item.fmt, FAILED, err.reason,
                                  offset=err.offset, size_bytes=item.size_bytes,
                                  mtime_ns=item.mtime_ns)
            batch.files.append(outcome)
            report(outcome)
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        known = _known_content(store, seen_hashes, item, sha256)
        if known is not None:
            report(known)
            continue
        seen_hashes[sha256] = item.display
        try:
            outcome, runs = process_file(item, data, sha256, profile)
        except Exception as err:  # a reader bug must not stop the import: say so, go on
            log.debug("unexpected error on %s", item.display, exc_info=True)
            outcome = FileOutcome(item.display, item.fmt, FAILED,
                                  f"internal error while reading ({type(err).__name__}: {err})",
                                  sha256=sha256, size_bytes=item.size_bytes,
                                  mtime_ns=item.mtime_ns)
            runs = []
        new_ids: list[str] = []
        for row, samples, bins in runs:
            match = index.match(row["run_id"], row["start_utc"], row["distance_m"])
            if match:
                outcome.matched_run_id = match
                continue
            new_ids.append(row["run_id"])
            batch.rows.append(row)
            batch.samples.append(samples.assign(run_id=row["run_id"]))
            bins = bins.assign(run_id=row["run_id"]) if bins is not None else None
            if bins is not None:
                batch.bins.append(bins)
            index.add(row["run_id"], row["start_utc"], row["distance_m"])
        if runs and not new_ids:
            outcome.outcome = DUPLICATE
            outcome.reason = (f"same activity as run {outcome.matched_run_id} (same start "
                              "second, or start within 60 s and distance within 2 %)")
        outcome.run_ids = new_ids
        batch.files.append(outcome)
        report(outcome)
        if len(batch) >= batch_files:
            _commit(store, batch)
            batch = _Batch()
    if len(batch):
        _commit(store, batch)
    return result


def _known_unchanged(store: Store, item: SourceFile) -> FileOutcome | None:
    """Recognise an unchanged file by path, size and mtime, without reading it."""
    if item.size_bytes is None or item.mtime_ns is None:
        return None
    row = store.known_file(path=item.display, size=item.size_bytes, mtime_ns=item.mtime_ns)
    return _repeat_outcome(item, row, "unchanged since the last import")


def _known_content(store: Store, seen: dict[str, str], item: SourceFile,
                   sha256: str) -> FileOutcome | None:
    if sha256 in seen:
        return FileOutcome(item.display, item.fmt, DUPLICATE,
                           f"same content as {seen[sha256]} (identical file)", sha256=sha256)
    row = store.known_file(sha256=sha256)
    return _repeat_outcome(item, row, f"same content as {row['path']}" if row is not None
                           else "")


def _repeat_outcome(item: SourceFile, row: pd.Series | None, why: str) -> FileOutcome | None:
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


def _files_frame(outcomes: list[FileOutcome]) -> pd.DataFrame:
    now = pd.Timestamp.now(tz="UTC")
    return pd.DataFrame({
        "path": [o.path for o in outcomes],
        "sha256": [o.sha256 for o in outcomes],
        "size_bytes": pd.array([o.size_bytes for o in outcomes], dtype="Int64"),
        "mtime_ns": pd.array([o.mtime_ns for o in outcomes], dtype="Int64"),
        "format": [o.fmt for o in outcomes],
        "outcome": [o.outcome for o in outcomes],
        "reason": [o.reason for o in outcomes],
        "run_ids": [",".join(o.run_ids) for o in outcomes],
        "matched_run_id": [o.matched_run_id for o in outcomes],
        "first_seen_utc": now,
        "last_seen_utc": now,
    })


def _commit(store: Store, batch: _Batch) -> None:
    with store.writer() as tx:
        if batch.rows:
            runs = pd.DataFrame(batch.rows)
            samples = pd.concat(batch.samples, ignore_index=True)
            bins = pd.concat(batch.bins, ignore_index=True) if batch.bins else None
            tx.add_runs(runs, samples, bins)
        # Files without content (unreadable) have no hash; they are keyed by path instead.
        tx.record_files(_files_frame(batch.files))
