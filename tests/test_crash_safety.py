"""Crash safety, for real: ``runlog import`` killed with SIGKILL at random moments.

Set-up: 30 real files (27 GPX and 3 FIT runs of ``data/sample``) in one folder. A clean
import of the folder into its own store is the reference: run ids, distances and the number
of samples of every run.

The store under test first gets a complete import of 5 of those files and two annotations.
Then, round after round, an import of the whole folder is started in
a subprocess and killed with SIGKILL after a seeded random delay between a few milliseconds
and a few seconds — during start-up, while files are parsed, while a batch is written, or
between batches. Half of the rounds run ``python -m runlog.cli import`` (one commit at the
end), half run the importer with 3 files per batch (a commit every few files, so kills land
inside and between commits too). After every kill:

* ``Store(S).check() == []`` — exactly nothing: no missing or unreadable table file, no
  samples part with a wrong row count, no run without samples, no orphaned samples, bins or
  annotations. (Leftover ``.tmp`` files of the killed writer are *not* problems: the manifest
  never lists them and the next writer deletes them; that is checked at the end.)
* every stored run is one of the reference runs, stored once, with exactly the reference's
  number of samples and distance (no half-written run);
* every file the files table calls ``new`` has its runs in the store;
* the annotations are exactly those made before the kills.

A round whose import got every run in before the kill is followed by a fresh copy of the
5-run store, so every round kills an import with work left to do, however fast it is.

Finally the import is run to completion: exit 0, the store holds exactly the reference runs
(same run ids, distances and sample counts), check() is empty, annotations are unchanged and
no temporary file is left in the store directory.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_process import cli_command, cli_env, run_cli

from runlog.importer import import_paths
from runlog.store import Store

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
#: Kill delays [s] are log-uniform within a band: "early" during interpreter start-up and
#: discovery, "parsing" while the first files are read and parsed. "in-write" waits until a
#: writer's first temporary file appears in the store (a commit has begun writing Parquet
#: files) and kills within 0.5-50 ms: inside the commit. "after-commit" waits until
#: the import has committed a batch (the manifest's generation moved), then kills after a
#: delay from the band: inside the next batch's parsing or its commit, or between batches —
#: independent of the machine's speed.
DELAY_BANDS_S = {"early": (0.005, 0.3), "parsing": (0.3, 2.5), "in-write": (0.0005, 0.05),
                 "after-commit": (0.005, 1.5)}
#: The CI rounds: (importer, band). "cli" commits once at the end, "small" every 3 files.
ROUNDS = (("cli", "in-write"), ("cli", "early"), ("small", "after-commit"),
          ("cli", "parsing"), ("small", "in-write"), ("small", "early"),
          ("small", "after-commit"), ("cli", "parsing"), ("small", "parsing"),
          ("small", "after-commit"))
AFTER = {"after-commit": "a commit", "in-write": "a commit began writing"}
SEED = 20261121
#: Importer run with small batches (a commit every 3 files).
SMALL_BATCH_IMPORT = (
    "import sys; from runlog.importer import import_paths; from runlog.store import Store; "
    "import_paths(Store(sys.argv[1]), [sys.argv[2]], batch_files=3)"
)


def sample_files() -> list[Path]:
    """27 GPX runs and 3 FIT runs from data/sample (sorted, so always the same 30)."""
    gpx = sorted((SAMPLE / "runpandas-session").glob("*.gpx.gz"))[:27]
    fit = sorted((SAMPLE / "fit").glob("*.fit"))[:3]
    return [*gpx, *fit]


def store_state(store: Store) -> pd.DataFrame:
    """run_id → distance_m and number of samples, sorted by run_id."""
    runs = store.runs()[["run_id", "distance_m"]]
    counts = store.samples().groupby("run_id").size().rename("n_samples")
    state = runs.set_index("run_id").join(counts).fillna({"n_samples": 0})
    return state.sort_index()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = sample_files()
    assert len(files) == 30, "data/sample changed: pick 30 files again"
    target = tmp_path_factory.mktemp("import-me")
    for path in files:
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture(scope="module")
def reference(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The state after one clean, uninterrupted import of the folder."""
    store = Store(tmp_path_factory.mktemp("reference") / "store")
    result = import_paths(store, [folder])
    assert result.counts()["failed"] == 0
    state = store_state(store)
    assert len(state) == 30 and (state["n_samples"] > 0).all()
    return state


def _start_import(store: Path, folder: Path, small_batches: bool) -> subprocess.Popen:
    if small_batches:
        command = [sys.executable, "-c", SMALL_BATCH_IMPORT, str(store), str(folder)]
    else:
        command = cli_command(store, "import", "-q", str(folder))
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=cli_env(), start_new_session=True)


def _wait_for_a_commit(store_dir: Path, process: subprocess.Popen,
                       timeout_s: float = 60.0) -> None:
    """Return once the store's generation moved (a batch was committed) or the import ended."""
    before = Store(store_dir).generation()
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        if Store(store_dir).generation() != before:
            return
        time.sleep(0.01)


def _wait_for_a_write(store_dir: Path, process: subprocess.Popen,
                      timeout_s: float = 60.0) -> None:
    """Return once a writer's temporary file exists in the store (or the import ended)."""
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            if any(name.endswith(".tmp") for name in os.listdir(store_dir)):
                return
        time.sleep(0.0005)


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the import; then clear its orphaned pool workers (same session, started here)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)   # the session created for this import only


def _assert_consistent(store_dir: Path, reference: pd.DataFrame,
                       annotations: pd.DataFrame, when: str) -> pd.DataFrame:
    store = Store(store_dir)
    assert store.check() == [], f"{when}: {store.check()}"
    state = store_state(store)
    assert not state.index.duplicated().any(), when
    unknown = set(state.index) - set(reference.index)
    assert not unknown, f"{when}: runs not in a clean import: {unknown}"
    expected = reference.loc[state.index]
    assert (state["n_samples"] == expected["n_samples"]).all(), \
        f"{when}: half-written runs:\n{state[state['n_samples'] != expected['n_samples']]}"
    np.testing.assert_allclose(state["distance_m"], expected["distance_m"], rtol=1e-9)
    files = store.files()
    for _, row in files[files["outcome"] == "new"].iterrows():
        ids = [r for r in str(row["run_ids"]).split(",") if r]
        assert set(ids) <= set(state.index), f"{when}: {row['path']} lost its runs {ids}"
    pd.testing.assert_frame_equal(store.annotations(), annotations, obj=f"annotations {when}")
    return state


def test_import_killed_at_random_moments_never_damages_the_store(
        folder: Path, reference: pd.DataFrame, tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    first = tmp_path / "first"
    first.mkdir()
    for path in sorted(folder.iterdir())[:5]:
        shutil.copy(path, first / path.name)
    import_paths(Store(store_dir), [first], jobs=1)
    run_ids = list(Store(store_dir).runs()["run_id"])
    assert len(run_ids) == 5
    with Store(store_dir).writer() as tx:
        for run_id, pain in zip(run_ids[:2], (3, 6), strict=True):
            tx.set_annotation(run_id, knee_pain=pain, note=f"before the kills ({pain})")
    annotations = Store(store_dir).annotations()
    assert len(annotations) == 2
    initial = tmp_path / "initial"          # the state every round may start from again
    shutil.copytree(store_dir, initial)

    rng = random.Random(SEED)
    history: list[tuple[float, bool, int, bool]] = []
    for round_no, (importer, band) in enumerate(ROUNDS):
        low, high = DELAY_BANDS_S[band]
        delay = math.exp(rng.uniform(math.log(low), math.log(high)))
        small = importer == "small"
        process = _start_import(store_dir, folder, small_batches=small)
        if band == "after-commit":
            _wait_for_a_commit(store_dir, process)
        elif band == "in-write":
            _wait_for_a_write(store_dir, process)
        time.sleep(delay)
        finished = process.poll() is not None
        _kill_tree(process)
        stderr = process.stderr.read().decode() if process.stderr else ""
        if finished:       # it beat the clock: then it must have succeeded
            assert process.returncode == 0, stderr
        when = f"round {round_no} ({'3-file batches' if small else 'CLI'}, killed " \
               f"{delay * 1000:.1f} ms after {AFTER.get(band, 'start')})"
        state = _assert_consistent(store_dir, reference, annotations, when)
        history.append((delay, small, len(state), finished))
        print(f"{when}: {len(state)} runs stored, finished={finished}")
        if len(state) == len(reference):
            # the import got everything in before the kill: later rounds would find nothing
            # left to import, so they start again from the 5 runs (however fast the commits)
            shutil.rmtree(store_dir)
            shutil.copytree(initial, store_dir)

    done = run_cli(store_dir, "import", "-q", str(folder))
    assert done.returncode == 0, done.stderr
    final = _assert_consistent(store_dir, reference, annotations, "after the final import")
    pd.testing.assert_frame_equal(final, reference)
    leftovers = [p.name for p in store_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [], leftovers
    # the kills really hit an import in progress, and work done before a kill was kept
    assert sum(not finished for *_, finished in history) >= len(ROUNDS) // 2, history
    assert any(5 < n < 30 for _, _, n, _ in history), history
