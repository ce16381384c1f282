"""The on-disk store: round trips, replacement, dedup rule, atomic commits, crashes, locks,
damage and schema versions. Everything runs on tmp_path."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runlog.store as store_module
from runlog.activity import SAMPLE_COLUMNS
from runlog.errors import (
    InputError,
    ManifestLostError,
    RunNotFoundError,
    StoreBusyError,
    StoreError,
)
from runlog.schema import STORE_SCHEMA_VERSION
from runlog.store import (
    FILES_COLUMNS,
    MANIFEST,
    RUN_DTYPES,
    Store,
    conform,
    write_table_file,
)

REPO = Path(__file__).resolve().parents[1]
T0 = pd.Timestamp("2024-05-01 06:00:00", tz="UTC")


# --- builders ---------------------------------------------------------------------------------

def make_runs(ids: list[str], starts: list[pd.Timestamp] | None = None,
              distances: list[float] | None = None) -> pd.DataFrame:
    """A runs frame with every column filled (and some missing values) in store dtypes."""
    n = len(ids)
    starts = starts or [T0 + pd.Timedelta(days=i) for i in range(n)]
    distances = distances or [5000.0 + 100 * i for i in range(n)]
    frame = pd.DataFrame({"run_id": ids, "start_utc": starts, "distance_m": distances})
    for col, dtype in RUN_DTYPES.items():
        if col in frame:
            continue
        if dtype == "str":
            frame[col] = [f"{col}-{i}" if i % 2 == 0 else None for i in range(n)]
        elif dtype == "boolean":
            frame[col] = pd.array([[True, False, None][i % 3] for i in range(n)],
                                  dtype="boolean")
        elif dtype == "Int64":
            frame[col] = pd.array([i if i % 2 == 0 else None for i in range(n)], dtype="Int64")
        elif dtype == "float64":
            frame[col] = [np.nan if i % 3 == 2 else 1.5 * i + 0.25 for i in range(n)]
    return conform(frame, "runs")


def make_samples(run_id: str, n: int, start: pd.Timestamp = T0) -> pd.DataFrame:
    """``n`` one-second samples with full-precision coordinates and some NaN."""
    rng = np.random.default_rng(abs(hash(run_id)) % 2**32)
    frame = pd.DataFrame({
        "run_id": run_id,
        "timestamp": start + pd.to_timedelta(np.arange(n), unit="s"),
        "lat_deg": 46.0 + rng.random(n) * 1e-3 + 1.23456789012e-9,
        "lon_deg": 14.0 + rng.random(n) * 1e-3 + 9.87654321098e-9,
    })
    for col in SAMPLE_COLUMNS:
        if col not in frame:
            frame[col] = np.where(np.arange(n) % 7 == 3, np.nan, rng.random(n) * 100)
    return conform(frame, "samples")


def add(store: Store, ids: list[str], n_samples: int = 10, **kw) -> pd.DataFrame:
    runs = make_runs(ids, **kw)
    samples = pd.concat([make_samples(r, n_samples, s) for r, s in
                         zip(runs["run_id"], runs["start_utc"], strict=True)])
    with store.writer() as tx:
        tx.add_runs(runs, samples)
    return runs


def snapshot(store: Store) -> dict:
    """Everything a reader can see, for before/after comparisons."""
    return {"manifest": (store.root / MANIFEST).read_bytes() if store.exists() else None,
            "runs": store.runs(), "samples": store.samples(), "files": store.files(),
            "annotations": store.annotations(), "bins": store.cadence_bins(),
            "profile": store.profile()}


def assert_same(a: dict, b: dict) -> None:
    assert a["manifest"] == b["manifest"]
    assert a["profile"] == b["profile"]
    for key in ("runs", "samples", "files", "annotations", "bins"):
        pd.testing.assert_frame_equal(a[key], b[key])


# --- empty / new store ------------------------------------------------------------------------

def test_missing_store_reads_as_empty_frames(tmp_path: Path) -> None:
    store = Store(tmp_path / "nope" / "store")
    assert not store.exists()
    runs = store.runs()
    assert runs.empty and {"run_id", "start_utc", "distance_m"} <= set(runs.columns)
    assert str(runs["start_utc"].dtype) == "datetime64[ns, UTC]"
    assert list(store.samples().columns) == ["run_id", *SAMPLE_COLUMNS]
    assert list(store.files().columns) == list(FILES_COLUMNS)
    assert store.annotations().empty and store.cadence_bins().empty
    assert store.profile() == {}
    assert store.check() == []
    assert store.known_file(sha256="ab") is None
    assert not (tmp_path / "nope").exists()  # reading creates nothing


def test_first_write_creates_directory(tmp_path: Path) -> None:
    store = Store(tmp_path / "a" / "b" / "store")
    add(store, ["r1"])
    assert store.exists() and store.generation() == 1
    assert store.schema_version() == STORE_SCHEMA_VERSION


# --- round trips ------------------------------------------------------------------------------

def test_runs_and_samples_round_trip_exactly(tmp_path: Path) -> None:
    store = Store(tmp_path)
    runs = make_runs(["bbb", "aaa", "ccc"],
                     starts=[T0 + pd.Timedelta(days=2), T0, T0 + pd.Timedelta(days=1)])
    samples = pd.concat([make_samples("bbb", 50), make_samples("aaa", 30),
                         make_samples("ccc", 20)], ignore_index=True)
    with store.writer() as tx:
        tx.add_runs(runs, samples)
    back = Store(tmp_path).runs()
    expected = runs.sort_values("start_utc").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected)
    assert back["run_id"].tolist() == ["aaa", "ccc", "bbb"]
    got = store.samples()
    want = samples.sort_values(["run_id", "timestamp"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert got["lat_deg"].dtype == np.float64
    # full float64 precision survives (float32 would lose the 1e-9 part)
    np.testing.assert_array_equal(got["lat_deg"].to_numpy(), want["lat_deg"].to_numpy())
    # a filtered read returns only those runs
    only = store.samples(["ccc", "unknown"])
    assert set(only["run_id"]) == {"ccc"} and len(only) == 20
    assert store.samples([]).empty


def test_whole_tables_are_read_without_pyarrow_dataset(tmp_path: Path) -> None:
    """runs, files, annotations and cadence bins are read through ParquetFile: a report
    then never pays pyarrow.dataset's import (≈ 15–25 ms per process)."""
    store = Store(tmp_path / "s")
    runs = add(store, ["a1", "b2"])
    with store.writer() as tx:
        tx.set_annotation("a1", electrolytes=True)
    tables = json.loads((store.root / MANIFEST).read_text())["tables"]
    assert tables["runs"] and tables["annotations"]  # real files to read, not empty frames
    code = textwrap.dedent(f"""
        import sys
        from runlog.store import Store
        store = Store({str(store.root)!r})
        runs = store.runs()
        for read in (store.files, store.annotations, store.cadence_bins):
            read()
        assert "pyarrow.dataset" not in sys.modules, "pyarrow.dataset was loaded"
        print(",".join(runs["run_id"]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ",".join(runs["run_id"])


def test_extra_run_columns_are_kept(tmp_path: Path) -> None:
    store = Store(tmp_path)
    runs = make_runs(["r1", "r2"]).assign(extra_score=[1.5, np.nan])
    with store.writer() as tx:
        tx.add_runs(runs, make_samples("r1", 3))
    pd.testing.assert_series_equal(store.runs()["extra_score"], runs["extra_score"])


def test_files_round_trip_and_upsert(tmp_path: Path) -> None:
    store = Store(tmp_path)
    t1 = pd.Timestamp("2024-01-01 10:00", tz="UTC").as_unit("ns")
    t2 = pd.Timestamp("2024-02-01 10:00", tz="UTC").as_unit("ns")
    files = conform(pd.DataFrame({
        "path": ["a.fit", "b.gpx", "broken.zip!x.fit"],
        "sha256": ["h1", "h2", None],
        "size_bytes": pd.array([10, 20, None], dtype="Int64"),
        "mtime_ns": pd.array([1_700_000_000_123_456_789, 5, None], dtype="Int64"),
        "format": ["fit", "gpx", "fit"],
        "outcome": ["new", "skipped", "failed"],
        "reason": ["", "cycling", "truncated"],
        "run_ids": ["r1,r2", "", ""],
        "matched_run_id": [None, None, None],
        "first_seen_utc": [t1, t1, t1],
        "last_seen_utc": [t1, t1, t1],
    }), "files")
    with store.writer() as tx:
        tx.record_files(files)
    pd.testing.assert_frame_equal(store.files(), files)
    row = store.known_file(sha256="h1")
    assert row is not None and row["path"] == "a.fit" and row["run_ids"] == "r1,r2"
    row = store.known_file(path="a.fit", size=10, mtime_ns=1_700_000_000_123_456_789)
    assert row is not None and row["sha256"] == "h1"
    assert store.known_file(path="a.fit", size=10, mtime_ns=1) is None
    assert store.known_file(sha256="nope") is None

    # later outcome wins, first_seen kept; the unreadable file, now readable, replaces its row
    update = conform(pd.DataFrame({
        "path": ["b.gpx", "broken.zip!x.fit"], "sha256": ["h2", "h3"],
        "size_bytes": pd.array([20, 30], dtype="Int64"),
        "mtime_ns": pd.array([6, 7], dtype="Int64"), "format": ["gpx", "fit"],
        "outcome": ["new", "new"], "reason": ["", ""], "run_ids": ["r9", "r8"],
        "matched_run_id": [None, None], "first_seen_utc": [t2, t2], "last_seen_utc": [t2, t2],
    }), "files")
    with store.writer() as tx:
        tx.record_files(update)
    back = store.files().set_index("path")
    assert len(back) == 3
    assert back.loc["b.gpx", "outcome"] == "new" and back.loc["b.gpx", "run_ids"] == "r9"
    assert back.loc["b.gpx", "first_seen_utc"] == t1
    assert back.loc["b.gpx", "last_seen_utc"] == t2
    assert back.loc["broken.zip!x.fit", "sha256"] == "h3"
    assert store.known_file(sha256="h2")["mtime_ns"] == 6


def test_annotations_round_trip_and_merge(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["r1", "r2"])
    with store.writer() as tx:
        row = tx.set_annotation("r1", knee_pain=3, electrolytes=True, note="hot day",
                                fluid_l=0.5)
    assert row["knee_pain"] == 3 and bool(row["electrolytes"]) is True
    with store.writer() as tx:
        row = tx.set_annotation("r1", rpe=7, knee_pain=None, note=pd.NA)
    assert row["knee_pain"] == 3 and row["rpe"] == 7 and pd.isna(row["note"])
    ann = store.annotations()
    assert len(ann) == 1 and ann.loc[0, "fluid_l"] == 0.5
    assert str(ann["knee_pain"].dtype) == "Int64"
    assert str(ann["electrolytes"].dtype) == "boolean"
    assert str(ann["updated_utc"].dtype) == "datetime64[ns, UTC]"
    # what is read back equals what the writer returned
    pd.testing.assert_series_equal(ann.iloc[0], row, check_names=False)
    with pytest.raises(InputError, match="unknown annotation field"), store.writer() as tx:
        tx.set_annotation("r1", knee_pian=3)
    with pytest.raises(RunNotFoundError), store.writer() as tx:
        tx.set_annotation("zzz", rpe=3)
    # a full table written then read is identical
    pd.testing.assert_frame_equal(conform(ann, "annotations"), ann)


def test_cadence_bins_round_trip_and_replace(tmp_path: Path) -> None:
    store = Store(tmp_path)
    runs = make_runs(["r1", "r2"])
    bins = conform(pd.DataFrame({"run_id": ["r1", "r1", "r2"],
                                 "speed_bin_mps": [2.75, 2.5, 3.0],
                                 "minutes": [3.5, 10.0, np.nan],
                                 "median_cadence_spm": [168.0, 165.5, 171.0]}),
                   "cadence_bins")
    with store.writer() as tx:
        tx.add_runs(runs, pd.concat([make_samples("r1", 5), make_samples("r2", 5)]), bins)
    want = bins.sort_values(["run_id", "speed_bin_mps"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(store.cadence_bins(), want)
    new = conform(pd.DataFrame({"run_id": ["r1"], "speed_bin_mps": [4.0], "minutes": [1.0],
                                "median_cadence_spm": [180.0]}), "cadence_bins")
    with store.writer() as tx:
        tx.replace_cadence_bins(new, ["r1"])
    got = store.cadence_bins()
    assert got["run_id"].tolist() == ["r1", "r2"]
    assert got.loc[0, "speed_bin_mps"] == 4.0


def test_profile_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.writer() as tx:
        tx.set_profile(mass_kg=np.float64(70.5), sex="female", cramp_prone=True,
                       privacy_zones=[{"lat_deg": 46.1, "lon_deg": 14.5, "radius_m": 300}])
    with store.writer() as tx:
        out = tx.set_profile(hr_max_bpm=188, mass_kg=None)
    expected = {"mass_kg": 70.5, "sex": "female", "cramp_prone": True, "hr_max_bpm": 188,
                "privacy_zones": [{"lat_deg": 46.1, "lon_deg": 14.5, "radius_m": 300.0}]}
    assert out == expected and Store(tmp_path).profile() == expected
    with store.writer() as tx:
        tx.set_profile(sex=pd.NA)
    assert "sex" not in store.profile()
    with pytest.raises(InputError), store.writer() as tx:
        tx.set_profile(weight=3)
    with pytest.raises(InputError), store.writer() as tx:
        tx.set_profile(privacy_zones=[{"lat_deg": 95, "lon_deg": 0, "radius_m": 10}])


# --- replacement, update, removal ---------------------------------------------------------------

def test_add_runs_twice_replaces_not_duplicates(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["r1", "r2"], n_samples=10)
    runs = make_runs(["r2"], distances=[9999.0])
    with store.writer() as tx:
        tx.add_runs(runs, make_samples("r2", 4))
    got = store.runs()
    assert got["run_id"].tolist() == ["r1", "r2"]
    assert got.set_index("run_id").loc["r2", "distance_m"] == 9999.0
    counts = store.samples()["run_id"].value_counts()
    assert counts["r1"] == 10 and counts["r2"] == 4
    assert store.check() == []
    # twice inside one transaction as well
    with store.writer() as tx:
        tx.add_runs(make_runs(["r3"]), make_samples("r3", 5))
        tx.add_runs(make_runs(["r3"]), make_samples("r3", 6))
    assert (store.samples(["r3"])["run_id"] == "r3").sum() == 6
    assert store.runs()["run_id"].tolist().count("r3") == 1


def test_add_runs_rejects_bad_input(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(ValueError, match="unique"), store.writer() as tx:
        tx.add_runs(make_runs(["a", "a"]), make_samples("a", 2))
    with pytest.raises(ValueError, match="samples for runs"), store.writer() as tx:
        tx.add_runs(make_runs(["a"]), make_samples("b", 2))
    assert not store.exists()


def test_update_runs_replaces_given_columns_only(tmp_path: Path) -> None:
    store = Store(tmp_path)
    before = add(store, ["r1", "r2"])
    update = pd.DataFrame({"run_id": ["r2"], "distance_m": [np.nan], "metrics_version": [2],
                           "has_gps": [True]})
    with store.writer() as tx:
        tx.update_runs(update)
    after = store.runs().set_index("run_id")
    assert pd.isna(after.loc["r2", "distance_m"]) and after.loc["r2", "metrics_version"] == 2
    assert bool(after.loc["r2", "has_gps"]) is True
    untouched = [c for c in before.columns if c not in update.columns]
    pd.testing.assert_frame_equal(after.reset_index()[untouched], before[untouched])
    assert after.loc["r1", "distance_m"] == before.set_index("run_id").loc["r1", "distance_m"]
    assert str(after["metrics_version"].dtype) == "Int64"
    with pytest.raises(RunNotFoundError), store.writer() as tx:
        tx.update_runs(pd.DataFrame({"run_id": ["zz"], "distance_m": [1.0]}))


def test_annotations_survive_remove_and_re_add(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["r1", "r2"])
    with store.writer() as tx:
        tx.set_annotation("r1", cramp=True, shoes="Pegasus")
    with store.writer() as tx:
        tx.remove_runs(["r1"])
    assert store.runs()["run_id"].tolist() == ["r2"]
    assert set(store.samples()["run_id"]) == {"r2"}
    ann = store.annotations()
    assert ann["run_id"].tolist() == ["r1"] and ann.loc[0, "shoes"] == "Pegasus"
    assert store.check() == ["1 run not in the store with annotations (kept): r1"]
    add(store, ["r1"])
    assert store.annotations().loc[0, "cramp"]
    assert store.check() == []


# --- duplicates and run references ------------------------------------------------------------

@pytest.mark.parametrize(("dt_s", "distance", "expected"), [
    (0, 10_000.0, "r1"),
    (59, 10_000.0, "r1"),
    (-59, 10_000.0, "r1"),
    (60, 10_000.0, "r1"),
    (61, 10_000.0, None),
    (-61, 10_000.0, None),
    (0, 10_190.0, "r1"),        # 1.9 % of the larger distance (10 190)
    (0, 10_210.0, None),        # 2.1 %
    (30, 9_810.0, "r1"),        # 1.9 % below
    (30, 9_790.0, None),        # 2.1 % below
])
def test_find_duplicates_tolerances(tmp_path: Path, dt_s: float, distance: float,
                                    expected: str | None) -> None:
    store = Store(tmp_path)
    add(store, ["r1", "r2"], starts=[T0, T0 + pd.Timedelta(hours=3)],
        distances=[10_000.0, 10_000.0])
    candidates = pd.DataFrame({"start_utc": [T0 + pd.Timedelta(seconds=dt_s)],
                               "distance_m": [distance]}, index=[42])
    got = store.find_duplicates(candidates)
    assert got.index.tolist() == [42]
    assert (pd.isna(got[42]) if expected is None else got[42] == expected)


def test_find_duplicates_vectorised_cases(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["a", "b", "z"], starts=[T0, T0 + pd.Timedelta(seconds=40), T0 + pd.Timedelta(
        days=1)], distances=[5000.0, 8000.0, np.nan])
    candidates = pd.DataFrame({
        "start_utc": [T0 + pd.Timedelta(seconds=35),   # nearest is b, but only a matches 5 km
                      T0 + pd.Timedelta(seconds=20),   # both in window, b matches 8 km
                      T0 + pd.Timedelta(days=1, seconds=10),  # both distances missing
                      T0 + pd.Timedelta(days=1, seconds=10),  # one missing: no match
                      pd.NaT],
        "distance_m": [5050.0, 8000.0, 0.0, 5000.0, 5000.0]}, index=list("vwxyq"))
    got = store.find_duplicates(candidates)
    assert str(got.dtype) == "string"
    assert got.index.tolist() == list("vwxyq")
    assert got[["v", "w", "x"]].tolist() == ["a", "b", "z"]
    assert got[["y", "q"]].isna().all()
    assert store.find_duplicates(candidates, start_tolerance_s=5).isna().all()
    assert Store(tmp_path / "empty").find_duplicates(candidates).isna().all()


def test_resolve_run(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(RunNotFoundError, match="no runs"):
        store.resolve_run("last")
    add(store, ["abc111", "abd222", "f00000"],
        starts=[T0 + pd.Timedelta(days=5), T0, T0 + pd.Timedelta(days=1)])
    assert store.resolve_run("last") == "abc111"
    assert store.resolve_run("LAST") == "abc111"
    assert store.resolve_run("f") == "f00000"
    assert store.resolve_run("abd222") == "abd222"
    assert store.resolve_run("abc") == "abc111"
    with pytest.raises(RunNotFoundError, match=r"ambiguous.*abc111, abd222"):
        store.resolve_run("ab")
    with pytest.raises(RunNotFoundError, match="no run matches 'xyz'"):
        store.resolve_run("xyz")


# --- atomicity ---------------------------------------------------------------------------------

def test_exception_inside_writer_leaves_store_as_before(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["r1", "r2"])
    with store.writer() as tx:
        tx.set_annotation("r1", rpe=5)
        tx.set_profile(mass_kg=60)
    before = snapshot(store)
    files_before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="boom"), store.writer() as tx:
        tx.add_runs(make_runs(["r3"]), make_samples("r3", 5))
        tx.remove_runs(["r1"])
        tx.set_annotation("r2", rpe=9)
        tx.set_profile(mass_kg=99)
        tx.record_files(pd.DataFrame({"path": ["x"], "sha256": ["h"], "outcome": ["new"]}))
        raise RuntimeError("boom")
    assert_same(before, snapshot(store))
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before


def test_a_commits_files_are_written_together(tmp_path: Path, monkeypatch) -> None:
    """A commit's new files (runs, files, cadence bins, samples part) are written at the same
    time: each write waits at a barrier until all four have begun. Written one after
    another, the first would wait alone and time out."""
    arrived = threading.Barrier(4, timeout=20)
    written: list[str] = []
    real = store_module._write_arrow_durably

    def write_when_all_began(root, table, name, row_group_size=None):
        arrived.wait()
        real(root, table, name, row_group_size)
        written.append(name.split("-")[0])

    monkeypatch.setattr(store_module, "_write_arrow_durably", write_when_all_began)
    store = Store(tmp_path)
    runs = make_runs(["r1", "r2"])
    bins = conform(pd.DataFrame({"run_id": ["r1", "r2"], "speed_bin_mps": [3.0, 3.0],
                                 "minutes": [1.0, 1.5], "median_cadence_spm": [170.0, 172.0]}),
                   "cadence_bins")
    with store.writer() as tx:
        tx.add_runs(runs, pd.concat([make_samples("r1", 5), make_samples("r2", 5)]), bins)
        tx.record_files(pd.DataFrame({"path": ["a.fit"], "sha256": ["h"], "outcome": ["new"]}))
    assert sorted(written) == ["cadence_bins", "files", "runs", "samples"]
    assert store.check() == []
    assert sorted(store.runs()["run_id"]) == ["r1", "r2"]
    assert len(store.samples()) == 10


def test_a_failed_file_write_leaves_the_store_as_before(tmp_path: Path, monkeypatch) -> None:
    """One of a commit's files cannot be written (disk full) while the others are: the
    commit fails with that error, and the files the other writes left are deleted."""
    store = Store(tmp_path)
    add(store, ["r1"])
    before = snapshot(store)
    files_before = sorted(p.name for p in tmp_path.iterdir())
    real = store_module._write_arrow_durably

    def disk_full_on_runs(root, table, name, row_group_size=None):
        if name.startswith("runs-"):
            time.sleep(0.05)  # the other files are written meanwhile
            raise OSError(28, "No space left on device")
        real(root, table, name, row_group_size)

    monkeypatch.setattr(store_module, "_write_arrow_durably", disk_full_on_runs)
    with pytest.raises(OSError, match="No space left"), store.writer() as tx:
        tx.add_runs(make_runs(["r2"]), make_samples("r2", 5))
        tx.record_files(pd.DataFrame({"path": ["b.fit"], "sha256": ["h2"], "outcome": ["new"]}))
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before
    assert_same(before, snapshot(store))


def test_writer_killed_before_manifest_leaves_old_store_and_strays_are_cleaned(
        tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["r1"])
    before = snapshot(store)
    # a writer wrote its new files (and a half-written temp file) and died before the manifest
    stray_runs = write_table_file(tmp_path, "runs", make_runs(["r1", "r9"]), 2)
    stray_part = write_table_file(tmp_path, "samples", make_samples("r9", 5), 2)
    (tmp_path / f".{stray_part}.deadbeef.tmp").write_bytes(b"PAR1 half")
    (tmp_path / "manifest.json.tmp").write_text('{"format": "runlog-st')
    (tmp_path / "notes.txt").write_text("not ours")
    assert_same(before, snapshot(store))
    assert store.check() == []
    add(store, ["r2"])
    names = {p.name for p in tmp_path.iterdir()}
    assert stray_runs not in names and stray_part not in names
    assert not any(n.endswith(".tmp") for n in names)
    assert "notes.txt" in names  # only our own files are collected
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    referenced = {*filter(None, manifest["tables"].values()),
                  *(p["file"] for p in manifest["samples_parts"])}
    assert {n for n in names if n.endswith(".parquet")} == referenced
    assert store.runs()["run_id"].tolist() == ["r1", "r2"]


WRITER_LOOP = textwrap.dedent("""
    import sys
    import numpy as np, pandas as pd
    sys.path.insert(0, {repo!r})
    from runlog.store import Store
    store = Store({root!r})
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    i = {first}
    while True:
        rid = f"run{{i:05d}}"
        n = 200 + (i * 37) % 300   # the sample count is a function of the id
        runs = pd.DataFrame({{"run_id": [rid], "start_utc": [t0 + pd.Timedelta(hours=i)],
                             "distance_m": [float(n)]}})
        samples = pd.DataFrame({{"run_id": rid,
                                "timestamp": t0 + pd.to_timedelta(np.arange(n), unit="s"),
                                "lat_deg": np.linspace(46, 47, n)}})
        with store.writer() as tx:
            tx.add_runs(runs, samples)
            if i % 3 == 0 and i % 5 != 4:   # runs i % 5 == 4 get removed below
                tx.set_annotation(rid, rpe=i % 10 + 1)
            if i % 5 == 0 and i > {first}:
                tx.remove_runs([f"run{{i - 1:05d}}"])
        print(i, flush=True)
        i += 1
""")


def test_sigkill_during_commits_leaves_a_consistent_store(tmp_path: Path,
                                                         monkeypatch) -> None:
    root = tmp_path / "store"
    store = Store(root)
    rng = random.Random(20240501)
    first = 0
    for _round in range(10):
        code = WRITER_LOOP.format(repo=str(REPO), root=str(root), first=first)
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        # wait until it has committed at least once, then kill it at a random moment
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert store.check() == []
        runs = store.runs()
        assert len(runs) > 0
        samples = store.samples()
        counts = samples.groupby("run_id").size()
        index = runs["run_id"].str[3:].astype(int)
        expected = 200 + (index * 37) % 300
        assert counts.reindex(runs["run_id"]).tolist() == expected.tolist()
        assert (runs["distance_m"] == expected.astype(float)).all()
        first = int(index.max()) + 1
    # the next writer cleans whatever the killed ones left
    add(store, ["final"])
    names = {p.name for p in root.iterdir()}
    manifest = json.loads((root / MANIFEST).read_text())
    referenced = {*filter(None, manifest["tables"].values()),
                  *(p["file"] for p in manifest["samples_parts"])}
    assert names - referenced == {MANIFEST, "lock"}
    assert store.check() == []


# --- concurrency -------------------------------------------------------------------------------

LOCK_HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from runlog.store import Store
    with Store({root!r}).writer():
        print("locked", flush=True)
        time.sleep(30)
""")


def test_second_writer_in_another_process_gets_store_busy(tmp_path: Path) -> None:
    store = Store(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c",
                             LOCK_HOLDER.format(repo=str(REPO), root=str(tmp_path))],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(StoreBusyError) as err, store.writer(timeout_s=0.5):
            pass
        waited = time.monotonic() - started
        assert 0.4 <= waited < 3
        assert err.value.reason == "store is busy: another runlog is writing to it"
        assert err.value.path == str(tmp_path)
        assert isinstance(err.value, StoreError)
    finally:
        proc.kill()
        proc.wait()
    with store.writer(timeout_s=2) as tx:  # free again once the holder is gone
        tx.set_profile(mass_kg=70)
    assert store.profile() == {"mass_kg": 70}


def test_writer_waits_for_a_short_lock(tmp_path: Path) -> None:
    store = Store(tmp_path)
    release = threading.Event()

    def hold() -> None:
        with store.writer() as tx:
            tx.set_profile(sex="male")
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    threading.Timer(0.3, release.set).start()
    with Store(tmp_path).writer(timeout_s=5) as tx:
        tx.set_profile(mass_kg=80)
    holder.join()
    assert store.profile() == {"sex": "male", "mass_kg": 80}


def test_concurrent_readers_while_writing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "COMPACT_PARTS_ABOVE", 4)
    store = Store(tmp_path)
    add(store, ["r0000"], n_samples=50)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        reader = Store(tmp_path)
        while not stop.is_set():
            try:
                runs = reader.runs()
                samples = reader.samples(runs["run_id"].tolist()[-3:])
                counts = samples.groupby("run_id").size()
                assert (counts == 50).all()
                reader.annotations()
                reader.known_file(sha256="x")
                time.sleep(0.005)  # let the writer run too
            except BaseException as err:  # collected and re-raised in the main thread
                errors.append(err)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    for i in range(1, 25):
        rid = f"r{i:04d}"
        with store.writer() as tx:
            tx.add_runs(make_runs([rid], starts=[T0 + pd.Timedelta(days=i)]),
                        make_samples(rid, 50))
            if i % 4 == 0:
                tx.remove_runs([f"r{i - 1:04d}"])
    stop.set()
    for thread in readers:
        thread.join()
    assert not errors, errors[0]
    assert store.check() == []
    assert len(json.loads((tmp_path / MANIFEST).read_text())["samples_parts"]) <= 4


def test_reader_retries_when_a_writer_collected_its_file(tmp_path: Path, monkeypatch) -> None:
    store = Store(tmp_path)
    add(store, ["r1"])
    real_read = store_module._read_parquet
    collected: list[str] = []

    def read_after_a_commit(root: Path, name: str, **kwargs):
        if not collected:  # the first read: a writer commits (and collects `name`) just before
            collected.append(name)
            add(store, ["r2"], starts=[T0 + pd.Timedelta(days=1)])
        return real_read(root, name, **kwargs)

    monkeypatch.setattr(store_module, "_read_parquet", read_after_a_commit)
    assert Store(tmp_path).runs()["run_id"].tolist() == ["r1", "r2"]
    assert collected and not (tmp_path / collected[0]).exists()


def test_parts_are_appended_then_compacted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "COMPACT_PARTS_ABOVE", 3)
    store = Store(tmp_path)
    parts_seen = []
    for i in range(5):
        add(store, [f"r{i}"], n_samples=7, starts=[T0 + pd.Timedelta(days=i)])
        parts = json.loads((tmp_path / MANIFEST).read_text())["samples_parts"]
        parts_seen.append(len(parts))
    assert parts_seen == [1, 2, 3, 1, 2]
    samples = store.samples()
    assert len(samples) == 35 and samples["run_id"].is_monotonic_increasing
    assert store.check() == []


# --- damage and versions ------------------------------------------------------------------------

def test_truncated_table_file_gives_clear_error_and_check_names_it(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["r1", "r2"])
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    runs_file = tmp_path / manifest["tables"]["runs"]
    runs_file.write_bytes(runs_file.read_bytes()[:100])
    fresh = Store(tmp_path)
    with pytest.raises(StoreError) as err:
        fresh.runs()
    message = err.value.one_line()
    assert runs_file.name in message
    assert "runlog store check" in message and "runlog store rebuild" in message
    problems = fresh.check()
    assert len(problems) == 1 and runs_file.name in problems[0]
    with pytest.raises(StoreError, match=runs_file.name), fresh.writer() as tx:
        tx.add_runs(make_runs(["r3"]), make_samples("r3", 2))


def _store_with_three_commits(root: Path) -> Store:
    """Runs in two samples parts, files, an annotation and a profile: three commits."""
    store = Store(root)
    add(store, ["r1"])
    add(store, ["r2", "r3"], starts=[T0 + pd.Timedelta(days=3), T0 + pd.Timedelta(days=4)])
    t = pd.Timestamp("2024-06-01", tz="UTC")
    with store.writer() as tx:
        tx.set_annotation("r2", knee_pain=4)
        tx.record_files(pd.DataFrame({"path": ["one.fit", "two.fit"], "sha256": ["h1", "h2"],
                                      "outcome": ["new", "new"], "run_ids": ["r1", "r2,r3"],
                                      "first_seen_utc": [t, t], "last_seen_utc": [t, t]}))
        tx.set_profile(birth_year=1980)
    return store


def test_rebuild_recovers_from_a_lost_samples_part_and_a_lost_runs_file(tmp_path: Path) -> None:
    store = _store_with_three_commits(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    second_part = manifest["samples_parts"][1]["file"]
    (tmp_path / second_part).write_bytes(b"garbage")
    actions = store.rebuild()
    assert any(second_part in a for a in actions)
    assert "removed 2 runs without samples" in actions
    assert store.runs()["run_id"].tolist() == ["r1"]
    assert store.files()["path"].tolist() == ["one.fit"]  # two.fit will be read again
    assert store.annotations()["run_id"].tolist() == ["r2"]  # kept
    assert store.check() == ["1 run not in the store with annotations (kept): r2"]

    runs_file = json.loads((tmp_path / MANIFEST).read_text())["tables"]["runs"]
    (tmp_path / runs_file).unlink()
    with pytest.raises(StoreError):
        Store(tmp_path).runs()  # (store itself still holds the frame it read: files are immutable)
    actions = store.rebuild()
    assert actions[0].startswith(f"runs table file {runs_file} was unreadable")
    assert "removed samples of 1 runs not in the store" in actions
    assert store.runs().empty and store.samples().empty and store.files().empty
    assert store.check() == ["1 run not in the store with annotations (kept): r2"]
    assert store.rebuild() == []  # nothing left to do


def test_missing_samples_part_is_reported(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["r1"])
    part = json.loads((tmp_path / MANIFEST).read_text())["samples_parts"][0]["file"]
    (tmp_path / part).unlink()
    with pytest.raises(StoreError, match=part):
        store.samples()
    assert any(part in p for p in store.check())


def test_damaged_manifest(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["r1"])
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(StoreError, match="manifest is damaged"):
        store.runs()
    assert "manifest is damaged" in store.check()[0]


def _readable(store: Store) -> dict:
    """What a reader sees, without the manifest's bytes (a recovered one differs)."""
    return {key: value for key, value in snapshot(store).items() if key != "manifest"}


@pytest.mark.parametrize("damage", ["deleted", "not json", "json without generation"])
def test_a_lost_manifest_is_damage_and_rebuild_recovers_every_file(tmp_path: Path,
                                                                   damage: str) -> None:
    """Data files without a readable manifest are never read as an empty store, never
    collected by a writer, and `rebuild` lists them in a new manifest."""
    store = _store_with_three_commits(tmp_path)
    before = _readable(store)
    data_files = sorted(p.name for p in tmp_path.glob("*.parquet"))
    old = json.loads((tmp_path / MANIFEST).read_text())
    if damage == "deleted":
        (tmp_path / MANIFEST).unlink()
    elif damage == "not json":
        (tmp_path / MANIFEST).write_text((tmp_path / MANIFEST).read_text()[:200])
    else:
        (tmp_path / MANIFEST).write_text(json.dumps({**old, "generation": None}))
    with pytest.raises(ManifestLostError, match="runlog store rebuild"):
        Store(tmp_path).runs()
    with pytest.raises(ManifestLostError), Store(tmp_path).writer() as tx:
        tx.set_annotation("r1", rpe=3)
    assert sorted(p.name for p in tmp_path.glob("*.parquet")) == data_files  # none collected
    problems = Store(tmp_path).check()
    assert len(problems) == 1 and "rebuild" in problems[0]

    actions = Store(tmp_path).recover_manifest()
    state = "missing" if damage == "deleted" else "damaged"
    assert actions[0] == (f"{MANIFEST} was {state}: wrote a new one listing the "
                          f"{len(data_files)} data files found in the folder (generation 3)")
    recovered = Store(tmp_path)
    after = _readable(recovered)
    if damage == "json without generation":  # the profile was still readable: kept
        assert len(actions) == 1
    else:
        assert actions[1].startswith("the profile (`runlog profile`) was kept only in")
        assert after["profile"] == {} and before["profile"] == {"birth_year": 1980}
        after["profile"] = before["profile"]
    for key in ("runs", "samples", "files", "annotations", "bins"):
        pd.testing.assert_frame_equal(after[key], before[key])
    assert recovered.check() == [] and recovered.generation() == 3
    add(recovered, ["r4"], starts=[T0 + pd.Timedelta(days=9)])  # writable again
    assert recovered.runs()["run_id"].tolist() == ["r1", "r2", "r3", "r4"]
    assert recovered.generation() == 4
    assert recovered.rebuild() == []  # nothing left to do


def test_rebuild_leaves_out_samples_parts_contained_in_newer_ones(tmp_path: Path) -> None:
    """A compaction's leftover part (all its runs in a newer part) is not listed again."""
    store = _store_with_three_commits(tmp_path)
    before = _readable(store)
    newest_part = json.loads((tmp_path / MANIFEST).read_text())["samples_parts"][-1]["file"]
    shutil.copy(tmp_path / newest_part, tmp_path / "samples-000001-0123abcd.parquet")
    (tmp_path / MANIFEST).unlink()
    actions = store.rebuild()
    assert "left out 1 older samples parts whose runs are all in newer ones" in actions
    pd.testing.assert_frame_equal(store.samples(), before["samples"])
    assert not (tmp_path / "samples-000001-0123abcd.parquet").exists()  # collected
    assert store.check() == []


def test_a_new_store_has_a_manifest_before_any_data_file(tmp_path: Path) -> None:
    """A first commit killed halfway leaves an empty store (generation 0) and strays the
    next writer collects, not data files without a manifest (which would be damage)."""
    store = Store(tmp_path / "s")
    with store.writer() as tx:
        assert json.loads((tmp_path / "s" / MANIFEST).read_text())["generation"] == 0
        tx.add_runs(make_runs(["r1"]), make_samples("r1", 5))
        assert store.runs().empty and store.check() == []  # readers see the empty store
    assert store.generation() == 1 and store.runs()["run_id"].tolist() == ["r1"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["r1"])
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["schema_version"] = STORE_SCHEMA_VERSION + 1
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    expected = (f"store was written by a newer runlog \\(schema {STORE_SCHEMA_VERSION + 1}\\);"
                " upgrade runlog")
    with pytest.raises(StoreError, match=expected):
        store.runs()
    with pytest.raises(StoreError, match=expected), store.writer():
        pass
    assert store.check() and "newer runlog" in store.check()[0]


def test_migration_runs_in_place_under_the_lock(tmp_path: Path, monkeypatch) -> None:
    store = Store(tmp_path)
    add(store, ["r1", "r2"])
    with store.writer() as tx:
        tx.set_annotation("r1", note="old")
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["schema_version"] = 0
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    calls = []

    def v0_to_v1(root: Path, old: dict) -> dict:
        """Fake migration: notes were lower case in schema 0, upper case in 1."""
        calls.append(old["schema_version"])
        ann = Store(root)._table(old, "annotations")
        ann = ann.assign(note=ann["note"].str.upper())
        name = write_table_file(root, "annotations", ann, old["generation"] + 1)
        return {**old, "tables": {**old["tables"], "annotations": name}}

    monkeypatch.setattr(store_module, "MIGRATIONS", {0: v0_to_v1})
    assert store.schema_version() == 0
    assert store.annotations().loc[0, "note"] == "OLD"  # reading migrated first
    assert calls == [0]
    assert store.schema_version() == STORE_SCHEMA_VERSION
    assert store.annotations().loc[0, "note"] == "OLD" and calls == [0]  # only once
    assert store.check() == []
    assert len(list(tmp_path.glob("annotations-*.parquet"))) == 1  # old file collected

    # a two-step upgrade with a patched current version, and a missing step
    monkeypatch.setattr(store_module, "STORE_SCHEMA_VERSION", STORE_SCHEMA_VERSION + 1)
    monkeypatch.setattr(store_module, "MIGRATIONS", {
        STORE_SCHEMA_VERSION: lambda root, m: {**m, "profile": {**m["profile"], "sex": "x"}}})
    with store.writer() as tx:
        tx.set_profile(mass_kg=50)
    assert store.schema_version() == STORE_SCHEMA_VERSION + 1
    assert store.profile() == {"sex": "x", "mass_kg": 50}
    monkeypatch.setattr(store_module, "STORE_SCHEMA_VERSION", STORE_SCHEMA_VERSION + 2)
    monkeypatch.setattr(store_module, "MIGRATIONS", {})
    with pytest.raises(StoreError, match="no migration from store schema"):
        store.runs()


def test_no_stray_files_or_env_leaks(tmp_path: Path) -> None:
    """Several writers in a row leave exactly the referenced files behind."""
    store = Store(tmp_path)
    for i in range(4):
        add(store, [f"r{i}"], starts=[T0 + pd.Timedelta(days=i)])
        with store.writer() as tx:
            tx.set_annotation(f"r{i}", rpe=i + 1)
    assert store.generation() == 8
    names = {p.name for p in tmp_path.iterdir()}
    assert len([n for n in names if n.startswith("runs-")]) == 1
    assert len([n for n in names if n.startswith("annotations-")]) == 1
    assert os.path.exists(tmp_path / "lock")
    assert store.annotations()["rpe"].tolist() == [1, 2, 3, 4]


# --- the import's Arrow path --------------------------------------------------------------------

def _arrow(frame: pd.DataFrame, table: str):
    """``frame`` as the Arrow table the import hands the store (arrow_schema(table))."""
    import pyarrow as pa

    return pa.Table.from_arrays(
        store_module._to_arrow(conform(frame, table), table).columns,
        schema=store_module.arrow_schema(table))


def _files(paths: list[str], hashes: list[str | None], outcomes: list[str],
           seen: pd.Timestamp) -> pd.DataFrame:
    n = len(paths)
    return conform(pd.DataFrame({
        "path": paths, "sha256": hashes, "size_bytes": pd.array(range(n), dtype="Int64"),
        "mtime_ns": pd.array([None] * n, dtype="Int64"), "format": ["fit"] * n,
        "outcome": outcomes, "reason": [""] * n, "run_ids": [""] * n,
        "matched_run_id": [None] * n, "first_seen_utc": [seen] * n,
        "last_seen_utc": [seen] * n}), "files")


def _bins(ids: list[str]) -> pd.DataFrame:
    return conform(pd.DataFrame({"run_id": [i for i in ids for _ in range(2)],
                                 "speed_bin_mps": [3.0, 2.5] * len(ids),
                                 "minutes": [1.0, np.nan] * len(ids),
                                 "median_cadence_spm": [170.0, 166.5] * len(ids)}),
                   "cadence_bins")


def _import_like(store: Store, arrow: bool) -> None:
    """Three commits as an import makes them: new runs, then a run replaced, a new one and
    files seen again (one unreadable before, one twice in the batch)."""
    t1, t2 = T0 + pd.Timedelta(days=30), T0 + pd.Timedelta(days=60)
    commits = [
        (make_runs(["r1", "r2"]), ["r1", "r2"],
         _files(["a.fit", "b.fit", "bad.fit"], ["h1", "h2", None], ["new", "new", "failed"], t1)),
        (make_runs(["r3", "r2"], starts=[T0 + pd.Timedelta(days=9), T0 + pd.Timedelta(days=5)],
                   distances=[7000.0, 4200.0]), ["r3", "r2"],
         _files(["bad.fit", "a.fit", "c.fit", "c.fit"], ["h3", "h1", "h4", "h4"],
                ["new", "duplicate", "skipped", "new"], t2)),
        (make_runs(["r4"], starts=[T0 - pd.Timedelta(days=3)]), ["r4"],
         _files(["d.fit"], ["h5"], ["new"], t2)),
    ]
    for runs, ids, files in commits:
        samples = pd.concat([make_samples(r, 6, T0 + pd.Timedelta(days=k))
                             for k, r in enumerate(ids)], ignore_index=True)
        bins = _bins(ids)
        with store.writer() as tx:
            if arrow:
                tx.add_runs(_arrow(runs, "runs"), _arrow(samples, "samples"),
                            _arrow(bins, "cadence_bins"))
                tx.record_files(_arrow(files, "files"))
            else:
                tx.add_runs(runs, samples, bins)
                tx.record_files(files)


def test_arrow_path_writes_exactly_what_the_frame_path_writes(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    by_frames, by_arrow = Store(tmp_path / "frames"), Store(tmp_path / "arrow")
    _import_like(by_frames, arrow=False)
    _import_like(by_arrow, arrow=True)
    a, b = snapshot(by_frames), snapshot(by_arrow)
    for key in ("runs", "samples", "files", "bins"):
        pd.testing.assert_frame_equal(a[key], b[key])
    assert b["runs"]["run_id"].tolist() == ["r4", "r1", "r2", "r3"]   # sorted by start
    files = b["files"].set_index("path")
    assert files.loc["a.fit", "first_seen_utc"] == T0 + pd.Timedelta(days=30)   # kept
    assert files.loc["c.fit", "outcome"] == "new"                 # the batch's last row wins
    assert files.loc["bad.fit", "sha256"] == "h3" and len(files) == 5
    # the files on disk too: same schema (pandas metadata included) and values
    for table in ("runs", "files", "cadence_bins"):
        written = [pq.read_table(s.root / json.loads((s.root / MANIFEST).read_text())
                                 ["tables"][table]) for s in (by_frames, by_arrow)]
        assert written[0].schema.equals(written[1].schema, check_metadata=True)
        assert written[0].equals(written[1])
    assert by_arrow.check() == []


def test_arrow_add_after_frame_changes_in_one_transaction(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["r1"])
    with store.writer() as tx:
        tx.update_runs(pd.DataFrame({"run_id": ["r1"], "distance_m": [9999.0]}))
        tx.add_runs(_arrow(make_runs(["r2"], starts=[T0 + pd.Timedelta(days=2)]), "runs"),
                    _arrow(make_samples("r2", 4), "samples"))
        tx.update_runs(pd.DataFrame({"run_id": ["r2"], "distance_m": [1234.0]}))
    runs = store.runs().set_index("run_id")
    assert runs.loc["r1", "distance_m"] == 9999.0 and runs.loc["r2", "distance_m"] == 1234.0
    assert store.samples()["run_id"].value_counts().to_dict() == {"r1": 10, "r2": 4}


def test_arrow_add_keeps_extra_run_columns_through_the_frame_path(tmp_path: Path) -> None:
    store = Store(tmp_path)
    runs = make_runs(["r1"]).assign(extra_score=[1.5])
    with store.writer() as tx:
        tx.add_runs(runs, make_samples("r1", 3))
    with store.writer() as tx:
        tx.add_runs(_arrow(make_runs(["r2"], starts=[T0 + pd.Timedelta(days=1)]), "runs"),
                    _arrow(make_samples("r2", 3), "samples"))
    back = store.runs()
    assert back["run_id"].tolist() == ["r1", "r2"]
    assert back["extra_score"].iloc[0] == 1.5 and np.isnan(back["extra_score"].iloc[1])


def test_arrow_add_rejects_bad_input_like_the_frame_path(tmp_path: Path) -> None:
    store = Store(tmp_path)
    runs = _arrow(make_runs(["r1", "r1"]), "runs")
    with pytest.raises(ValueError, match="repeated: \\['r1'\\]"), store.writer() as tx:
        tx.add_runs(runs, _arrow(make_samples("r1", 2), "samples"))
    with pytest.raises(ValueError, match="samples for runs not being added"), \
            store.writer() as tx:
        tx.add_runs(_arrow(make_runs(["r1"]), "runs"), _arrow(make_samples("zz", 2), "samples"))
    assert not store.exists() or store.runs().empty


# --- samples parts list their runs ---------------------------------------------------------------

def _parts(root: Path) -> list[dict]:
    return json.loads((root / MANIFEST).read_text())["samples_parts"]


def test_samples_parts_list_their_runs_and_adding_runs_opens_no_old_part(
        tmp_path: Path, monkeypatch) -> None:
    store = Store(tmp_path)
    add(store, ["r2", "r1"])
    add(store, ["r3"], starts=[T0 + pd.Timedelta(days=5)])
    assert [p[store_module.PART_RUN_IDS] for p in _parts(tmp_path)] == [["r1", "r2"], ["r3"]]

    read_parquet = store_module._read_parquet

    def no_part_reads(root: Path, name: str, **kwargs):
        assert not name.startswith("samples-"), f"samples part {name} was opened"
        return read_parquet(root, name, **kwargs)

    monkeypatch.setattr(store_module, "_read_parquet", no_part_reads)
    add(store, ["r4"], starts=[T0 + pd.Timedelta(days=7)])   # new ids: no part is opened
    monkeypatch.undo()
    add(store, ["r1"])                                        # replaced: its part is rewritten
    parts = [p[store_module.PART_RUN_IDS] for p in _parts(tmp_path)]
    assert sorted(parts) == [["r1"], ["r2"], ["r3"], ["r4"]]
    assert store.check() == []


def test_older_part_entries_learn_their_runs_and_check_compares_them(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["r1", "r2"])
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    del manifest["samples_parts"][0][store_module.PART_RUN_IDS]     # as an older runlog wrote
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    assert store.check() == []
    add(store, ["r3"], starts=[T0 + pd.Timedelta(days=5)])
    assert _parts(tmp_path)[0][store_module.PART_RUN_IDS] == ["r1", "r2"]

    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["samples_parts"][0][store_module.PART_RUN_IDS] = ["r1"]   # wrong
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    problems = store.check()
    assert len(problems) == 1 and "holds other runs than the manifest lists" in problems[0]
    store.rebuild()
    assert store.check() == []
    assert _parts(tmp_path)[0][store_module.PART_RUN_IDS] == ["r1", "r2"]


def test_samples_of_some_runs_read_only_the_parts_listing_them(tmp_path: Path) -> None:
    store = Store(tmp_path)
    add(store, ["r1"])
    add(store, ["r2"], starts=[T0 + pd.Timedelta(days=5)])
    want = store.samples(["r2"])
    first_part = _parts(tmp_path)[0]["file"]
    (tmp_path / first_part).write_bytes(b"garbage")
    pd.testing.assert_frame_equal(Store(tmp_path).samples(["r2"]), want)
    with pytest.raises(StoreError, match=first_part):
        Store(tmp_path).samples()


def test_only_run_ids_are_dictionary_encoded(tmp_path: Path, monkeypatch) -> None:
    """Parts' run ids are read from dictionary pages; every other column is written plain."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(store_module, "COMPACT_PARTS_ABOVE", 1)   # the 2nd add compacts
    store = Store(tmp_path)
    add(store, ["r1", "r2"], n_samples=50)
    add(store, ["r3"], n_samples=50, starts=[T0 + pd.Timedelta(days=5)])
    assert len(_parts(tmp_path)) == 1
    files = sorted(tmp_path.glob("*.parquet"))
    assert {f.name.split("-")[0] for f in files} >= {"runs", "samples"}
    for path in files:
        meta = pq.ParquetFile(path).metadata
        for group in range(meta.num_row_groups):
            for i in range(meta.num_columns):
                column = meta.row_group(group).column(i)
                dictionary = column.dictionary_page_offset is not None
                assert dictionary == (column.path_in_schema == "run_id"), (path.name, column)
    assert store.samples()["run_id"].value_counts().to_dict() == {"r1": 50, "r2": 50, "r3": 50}
