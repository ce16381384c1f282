"""Parallel import: same outcomes as a serial one, unchanged files never parsed, dead workers.

The pool runs :func:`runlog.importer._parse_job` in worker processes (forkserver); functions
of this module stand in for it where a worker must raise or die, and are found there by
import (pytest puts ``tests/`` on sys.path, which the workers inherit).
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from runlog import importer
from runlog.importer import DUPLICATE, FAILED, NEW, import_paths
from runlog.sources import SourceFile
from runlog.store import Store

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
#: A few corpus running FIT files (different devices) added to the sample.
CORPUS_FIT = 4


def _corpus_running_fit(corpus: Path, catalogue: pd.DataFrame, n: int) -> list[Path]:
    rows = catalogue[(catalogue["format"] == "fit") & (catalogue["sport_norm"] == "run")
                     & (catalogue["fitparse"] == "ok")]
    return [corpus / p for p in sorted(rows["path"])[:n]]


@pytest.fixture
def archive(tmp_path: Path, corpus: Path, catalogue: pd.DataFrame) -> Path:
    """data/sample + a few corpus FIT runs + an identical copy + a gzipped copy of one."""
    root = tmp_path / "archive"
    shutil.copytree(SAMPLE, root / "sample")
    extra = root / "corpus"
    extra.mkdir()
    fits = _corpus_running_fit(corpus, catalogue, CORPUS_FIT)
    assert len(fits) == CORPUS_FIT
    for i, path in enumerate(fits):
        shutil.copyfile(path, extra / f"{i:02d}_{path.name}")
    shutil.copyfile(fits[0], extra / "zz_same_bytes.fit")          # identical content
    (extra / "zz_gzipped.fit.gz").write_bytes(gzip.compress(fits[1].read_bytes()))
    return root


def _outcomes(result: importer.ImportResult) -> list[tuple]:
    return [(o.path, o.fmt, o.outcome, o.reason, tuple(o.run_ids), o.matched_run_id, o.offset,
             o.sha256) for o in result.outcomes]


def test_parallel_import_equals_serial(tmp_path: Path, archive: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       pool_when_started: None) -> None:
    monkeypatch.setattr(importer, "POOL_MIN_FILES", 4)
    monkeypatch.setattr(importer, "POOL_MIN_AHEAD", 1)
    serial_store, parallel_store = Store(tmp_path / "s1"), Store(tmp_path / "s2")
    serial = import_paths(serial_store, [archive], jobs=1, batch_files=7)
    seen: list[str] = []
    parallel = import_paths(parallel_store, [archive], jobs=2, batch_files=7,
                            on_file=lambda o: seen.append(o.path))

    assert serial.workers == 0 and parallel.workers == 1  # jobs=2: one here, one worker
    assert _outcomes(parallel) == _outcomes(serial)
    assert seen == [o.path for o in serial.outcomes]      # on_file: once per file, in order
    counts = serial.counts()
    assert counts["new"] >= 71 + CORPUS_FIT - 1 and counts["failed"] == 0
    assert counts["duplicate"] >= 2                        # identical bytes, gzipped copy
    cols = ["run_id", "start_utc", "distance_m", "moving_s", "source_file"]
    pd.testing.assert_frame_equal(parallel_store.runs()[cols].reset_index(drop=True),
                                  serial_store.runs()[cols].reset_index(drop=True))
    assert len(parallel_store.samples()) == len(serial_store.samples()) > 0
    files = parallel_store.files().sort_values("path")["outcome"].tolist()
    assert files == serial_store.files().sort_values("path")["outcome"].tolist()


@pytest.mark.parametrize("jobs", [1, 2])
def test_unchanged_reimport_does_not_read_or_parse(tmp_path: Path, archive: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   jobs: int) -> None:
    store = Store(tmp_path / "store")
    first = import_paths(store, [archive], jobs=jobs)
    assert first.counts()["new"] > 0

    def forbidden(*_args, **_kwargs):
        raise AssertionError("an unchanged file was read or parsed")

    read: list[str] = []
    real_read = SourceFile.read_bytes

    def counted_read(self: SourceFile) -> bytes:
        read.append(self.display)
        return real_read(self)

    monkeypatch.setattr(importer, "process_file", forbidden)
    monkeypatch.setattr(importer, "_parse_job", forbidden)
    monkeypatch.setattr(SourceFile, "read_bytes", counted_read)
    monkeypatch.setattr(importer, "POOL_MIN_FILES", 1)
    monkeypatch.setattr(importer, "POOL_MIN_AHEAD", 1)
    again = import_paths(store, [archive], jobs=jobs)

    # Only files that were identical copies of another file are read (and hashed) again:
    # the files table holds one row per content, under the first path.
    copies = [o.path for o in first.outcomes if "identical file" in o.reason]
    assert copies and read == copies

    assert [o.path for o in again.outcomes] == [o.path for o in first.outcomes]
    assert all(o.outcome == DUPLICATE for o in again.outcomes)
    reasons = {o.path: o.reason for o in again.outcomes}
    assert all(reasons[p].startswith("already imported: same content as ") for p in copies)
    assert all(r == "already imported: unchanged since the last import"
               for p, r in reasons.items() if p not in copies)
    assert again.workers == 0                              # no pool was even started
    assert again.counts()["new_runs"] == 0


_REAL_PARSE_JOB = importer._parse_job  # taken before any test patches it


@pytest.fixture
def pool_when_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the pool is started, every later file goes to it: the import waits for the pool
    to be ready (instead of parsing here meanwhile, as it does to save time) and the pool
    is never full, so a test knows which files the workers parse."""
    real_has_room = importer._Parser.has_room

    def has_room(self: importer._Parser) -> bool:
        deadline = time.monotonic() + 60
        while self.pool is not None and not self.ready and time.monotonic() < deadline:
            time.sleep(0.01)
        return real_has_room(self)

    monkeypatch.setattr(importer, "IN_FLIGHT_PER_WORKER", 10_000)
    monkeypatch.setattr(importer._Parser, "has_room", has_room)


def _faulty_job(display: str, *rest):
    """Stand-in for _parse_job in the workers: dies on KILL files, raises on BOOM files."""
    if "KILL" in display:
        os.kill(os.getpid(), signal.SIGKILL)
    if "BOOM" in display:
        raise RuntimeError("reader exploded")
    return _REAL_PARSE_JOB(display, *rest)


def test_dead_or_raising_worker_fails_only_its_file(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    pool_when_started: None) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    samples = sorted(p for p in SAMPLE.rglob("*") if p.is_file())[:12]
    for i, path in enumerate(samples):
        tag = "KILL_" if i == 3 else "BOOM_" if i == 7 else ""
        shutil.copyfile(path, folder / f"{i:02d}_{tag}{path.name}")
    monkeypatch.setattr(importer, "_parse_job", _faulty_job)
    monkeypatch.setattr(importer, "POOL_MIN_FILES", 2)
    monkeypatch.setattr(importer, "POOL_MIN_AHEAD", 1)

    result = import_paths(Store(tmp_path / "store"), [folder], jobs=2)

    by_name = {Path(o.path).name: o for o in result.outcomes}
    assert len(by_name) == len(samples)
    killed = next(o for n, o in by_name.items() if "KILL_" in n)
    raised = next(o for n, o in by_name.items() if "BOOM_" in n)
    assert killed.outcome == FAILED and "died" in killed.reason
    assert raised.outcome == FAILED and "RuntimeError: reader exploded" in raised.reason
    others = [o for n, o in by_name.items() if "KILL_" not in n and "BOOM_" not in n]
    assert others and all(o.outcome == NEW for o in others)
    assert result.workers == 1
    # failed files are recorded and tried again next time
    files = Store(tmp_path / "store").files()
    assert set(files.loc[files["outcome"] == FAILED, "path"]) == {killed.path, raised.path}


def test_a_small_import_parses_here_and_starts_no_pool(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       pool_when_started: None) -> None:
    """Fewer files than POOL_MIN_FILES, or fewer than POOL_MIN_AHEAD after them, never pay
    for a pool, whatever ``jobs`` says; the first POOL_MIN_FILES files of a larger import
    are parsed here, then the pool starts."""
    files = sorted(p for p in SAMPLE.rglob("*") if p.is_file())[:6]
    monkeypatch.setattr(importer, "POOL_MIN_AHEAD", 1)
    monkeypatch.setattr(importer, "POOL_MIN_FILES", len(files))
    small = import_paths(Store(tmp_path / "small"), files, jobs=2)
    assert small.workers == 0 and small.counts()["new"] == len(files)

    # the pool is weighed at the 3rd file, with 3 files after it
    monkeypatch.setattr(importer, "POOL_MIN_FILES", 2)
    monkeypatch.setattr(importer, "POOL_MIN_AHEAD", 4)
    few_left = import_paths(Store(tmp_path / "few_left"), files, jobs=2)
    assert few_left.workers == 0 and few_left.counts()["new"] == len(files)
    monkeypatch.setattr(importer, "POOL_MIN_AHEAD", 3)
    enough_left = import_paths(Store(tmp_path / "enough_left"), files, jobs=2)
    assert enough_left.workers == 1 and enough_left.counts()["new"] == len(files)

    monkeypatch.setattr(importer, "POOL_MIN_FILES", 4)
    monkeypatch.setattr(importer, "POOL_MIN_AHEAD", 1)
    here: list[str] = []
    real_run_here = importer._Parser.run_here

    def counted(self, entry):
        here.append(entry.item.display)
        return real_run_here(self, entry)

    monkeypatch.setattr(importer._Parser, "run_here", counted)
    mixed = import_paths(Store(tmp_path / "mixed"), files, jobs=3)
    assert mixed.workers == 2 and mixed.counts()["new"] == len(files)
    assert here == [o.path for o in mixed.outcomes][:4]


@pytest.mark.parametrize(("cores", "jobs"), [(None, 1), (1, 1), (2, 1), (4, 3), (16, 15)])
def test_default_jobs_leaves_the_importing_process_a_core(monkeypatch: pytest.MonkeyPatch,
                                                           cores: int | None, jobs: int) -> None:
    monkeypatch.setattr(importer.os, "cpu_count", lambda: cores)
    assert importer.default_jobs() == jobs
    assert importer._Parser(None).workers == jobs - 1
