"""Benchmark: importing a whole archive — throughput, memory, re-import, 5-year report/chart.

Everything runs on real corpus files (never synthetic FIT bytes). Four measurements:

1. **Throughput, same files.** The corpus' running FIT files (catalogue: FIT or FIT.gz,
   ``sport_norm == run``, fitparse ``ok``), each once, form the *distinct set*.

   * ``fitparse alone``: ``FitFile(...).get_messages()`` over every message of every file
     of the set (the decode only: no Activity, no metrics, no store).
   * ``runlog end to end``: ``import_paths`` of the same set into a *fresh* store (discover,
     read, hash, decode, quality, metrics, duplicate check, Parquet commit), repeated
     ``--repeats`` times into new stores; the median is reported, for ``jobs=1`` and for
     ``jobs=os.cpu_count()`` (pool start-up included; the pool starts only after
     ``runlog.importer.POOL_MIN_FILES`` files parsed with ``POOL_MIN_AHEAD`` more to read,
     so a smaller set runs in one process either way).
   * the same with the modules an import loads on first use (``LAZY_MODULES``: readers,
     Parquet writer, timezonefinder) imported before the clock starts, as fitparse is
     imported before its clock starts (the time-zone polygons are still opened inside).
   * ``runlog warm``: the same import into a second fresh store, timed in a process that
     has already imported the set once — the per-file cost once the one-off costs of a
     process (module loading, timezonefinder's polygons) are paid, as in the long middle of
     a first import of thousands of files. Commits and fsyncs are still counted.
   * ``run-sized files only``: fitparse and runlog (fresh process and warm) again on the
     files of the set with at least ``RUN_SIZED_RECORDS`` records, the length of a real
     run (the set also holds parser test fixtures of 14–21 records, where per-file costs
     dominate both decoders); reported beside, never instead of, the whole set.
1b. **Process pool.** ``data/sample`` and the whole corpus together (~250 real GPX, TCX
   and FIT files, more than ``POOL_MIN_FILES + POOL_MIN_AHEAD`` to parse) into fresh
   stores with ``jobs=1``
   and ``jobs=os.cpu_count()``: what the pool gains (or costs) on this machine.

   Both are record messages per wall-clock second, in the same run of this script. Copies
   of one file cannot measure parsing (an identical copy is recognised by its content hash
   and never parsed), hence fresh stores.
1c. **The corpus' whole FIT archive** (``fit_archive_paths``): every FIT file fitparse reads
   cleanly, of every sport (a watch export's mix: runs, rides, walks, swims), fitparse
   against runlog in a new process (``jobs=1``, modules preloaded, ``jobs=os.cpu_count()``).
   runlog decodes every file whole but measures and stores only the runs, so this is
   reported beside the running-only set, never instead of it.
2. **Archive of ~1,000 files.** The distinct set copied (renamed, in ``copy_NNN/``
   folders) until it holds ``--files`` files. First import into a fresh store (the copies
   are hashed, matched by content and not parsed), then the **unchanged re-import**, timed
   in-process (``import_paths``) and as the CLI a runner types (``runlog import -q``, new
   process, Python start-up included).
3. **Peak memory.** Every phase runs in its own child process; reported are its own peak
   RSS (``ru_maxrss``) and the peak of the summed PSS of it and all its descendants
   (forkserver, workers), sampled from /proc every 50 ms.
4. **5-year store** (``--years``, ``--runs``): built from the runs the distinct set
   imported that have ≥ ``--template-min-samples`` samples — each such stored run (row,
   samples, cadence bins) is copied with its start time (and every sample timestamp)
   shifted to a new day, so that runs fall every
   ``years × 365.25 / runs`` days; new run ids come from the new start
   (``runlog.importer.run_id_for``); written through ``Store.writer().add_runs`` in chunks.
   A runner's weekly import is timed on copies of it (``years_import``: one new file,
   in-process and ``runlog import -q``). Then ``runlog report`` (table) and
   ``runlog chart -o out.png`` are timed as CLI processes (start-up included) and
   in-process (``RunLog.runs()`` + table rendering; ``RunLog.chart``), *cold* (the
   store's derived cache cleared, so everything is computed and then cached) and *warm*
   (cache filled; CLI also "assessment cached": the first call of a command after another
   one cached the assessment; each CLI state timed ``CLI_REPEATS`` times, interleaved:
   median and range), and the cold in-process report is profiled (top functions
   by cumulative time) with ``--profile``.
   ``years_report(STORE, WORK_DIR, years, profile)`` runs this section alone on any store.

Before any timing, runlog's modules are compiled to bytecode (:func:`compile_runlog`), as
installing the package does: every new process then loads them as a runner's would, even
where ``PYTHONDONTWRITEBYTECODE`` is set.

Usage::

    .venv/bin/python benchmarks/import_archive.py [--corpus PATH] [--files 1000]
        [--repeats 3] [--years 5] [--runs 1500] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MIB = 1024 * 1024
RUNLOG_CLI = Path(sys.executable).with_name("runlog")


def default_corpus() -> Path:
    """$RUNLOG_CORPUS, else ../shared/corpus beside the repository."""
    env = os.environ.get("RUNLOG_CORPUS")
    return Path(env) if env else REPO.parent / "shared" / "corpus"


def running_fit_paths(corpus: Path) -> list[Path]:
    """The corpus' running FIT files (plain or gzipped) that fitparse reads cleanly."""
    import pandas as pd

    cat = pd.read_csv(corpus / "catalogue.csv")
    is_fit = (cat["format"] == "fit") | ((cat["format"] == "gz") & (cat["inner_format"] == "fit"))
    rows = cat[is_fit & (cat["sport_norm"] == "run") & (cat["fitparse"] == "ok")]
    return [corpus / p for p in sorted(rows["path"])]


def fit_archive_paths(corpus: Path) -> list[Path]:
    """Every corpus FIT file (plain or gzipped) that fitparse reads cleanly, of any sport:
    runs, rides, walks, swims and unlabelled files, as a watch's export holds them."""
    import pandas as pd

    cat = pd.read_csv(corpus / "catalogue.csv")
    is_fit = (cat["format"] == "fit") | ((cat["format"] == "gz") & (cat["inner_format"] == "fit"))
    return [corpus / p for p in sorted(cat[is_fit & (cat["fitparse"] == "ok")]["path"])]


def _fit_bytes(path: Path) -> bytes:
    import gzip

    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _pss_bytes(pid: int) -> int:
    """Proportional set size of one process (shared pages split between their users)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree_rss_bytes(root: int) -> int:
    """Summed PSS of ``root`` and all its descendants (forkserver, workers), from /proc.

    PSS, not RSS: the workers are forked from the forkserver and share its pages (Python,
    numpy, pandas, pyarrow); summing RSS would count those pages once per process.
    """
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                parent[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _pss_bytes(pid)
        todo.extend(child for child, ppid in parent.items() if ppid == pid)
    return total


class TreeMemory:
    """Samples the process tree's summed PSS every ``interval_s``; ``peak`` in bytes."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss_bytes(os.getpid()))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_rss_bytes(os.getpid()))


def _usage(tree: TreeMemory | None = None) -> dict:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return {"maxrss_main_mib": me.ru_maxrss / 1024,
            "tree_peak_mib": (tree.peak if tree else 0) / MIB}


# --- phases, each run in a child process (clean peak-memory figures) ------------------------

def phase_fitparse(folder: str) -> dict:
    """Decode every message of every file with fitparse; count record messages."""
    from fitparse import FitFile

    files = sorted(Path(folder).iterdir())
    blobs = [_fit_bytes(p) for p in files]
    t0 = time.perf_counter()
    records = messages = 0
    per_file: dict[str, int] = {}
    for path, data in zip(files, blobs, strict=True):
        before = records
        for msg in FitFile(io.BytesIO(data)).get_messages():
            messages += 1
            records += msg.name == "record"
        per_file[path.name] = records - before
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "records": records, "messages": messages, "files": len(files),
            "per_file": per_file, **_usage()}


#: Modules an import loads on first use (readers, Parquet writer, time-zone lookup): loaded
#: before the clock starts when ``preload`` is set, as phase_fitparse loads fitparse. The
#: ``timezonefinder`` package loads its finder (and cffi, ≈ 0.1 s) only on first attribute
#: access, hence its submodule here.
LAZY_MODULES = ("runlog.readers.fit", "runlog.readers.fastfit", "runlog.readers.gpx",
                "runlog.readers.tcx", "pyarrow.parquet", "timezonefinder.timezonefinder")


def phase_import(store: str, folder: str | list[str], jobs: int | None,
                 preload: bool = False, sample_memory: bool = True) -> dict:
    """import_paths(folder(s)) into ``store``; outcome counts, wall time, peak memory.

    ``preload``: import LAZY_MODULES first (module loading only: no data is read, the
    time-zone polygons are still opened inside the timed import). ``sample_memory``: sample
    the process tree's PSS during the import (a thread reading /proc every 50 ms, ~5 % of
    the wall time on this machine); throughput runs switch it off and report ru_maxrss."""
    import importlib

    from runlog.importer import import_paths
    from runlog.store import Store

    if preload:
        for module in LAZY_MODULES:
            importlib.import_module(module)

    folders = [folder] if isinstance(folder, str) else folder
    tree = TreeMemory() if sample_memory else None
    with tree or contextlib.nullcontext():
        t0 = time.perf_counter()
        result = import_paths(Store(store), folders, jobs=jobs)
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "counts": result.counts(), "workers": result.workers,
            **_usage(tree)}


def phase_import_warm(store: str, folder: str) -> dict:
    """Import ``folder`` into ``store``, then again into a second fresh store: the second
    import's wall time is runlog's per-file cost once a process has paid its one-off costs
    (module loading, timezonefinder's data), as in the long middle of a big first import.
    Per-commit costs (Parquet writes, fsync) are still included."""
    from runlog.importer import import_paths
    from runlog.store import Store

    import_paths(Store(store), [folder], jobs=1)
    t0 = time.perf_counter()
    result = import_paths(Store(store + "_again"), [folder], jobs=1)
    return {"wall_s": time.perf_counter() - t0, "counts": result.counts()}


def phase_report(store: str, out: str, profile: bool) -> dict:
    """In-process report (runs + assessment + table) and chart on ``store``, each *cold*
    (the store's derived cache cleared first: the assessment is computed, then cached) and
    *warm* (a new RunLog, as in a new process, reading the cached assessment)."""
    from runlog.api import open_store
    from runlog.derived_cache import DerivedCache
    from runlog.report import render_table, runs_table

    def report() -> tuple[str, int]:
        runs = open_store(store).runs()
        return render_table(runs_table(runs)), len(runs)

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    times = {}
    for name, fn in (("report", report), ("chart", lambda: open_store(store).chart(out))):
        DerivedCache(store).clear()
        times[f"{name}_cold_s"] = timed(fn)
        times[f"{name}_warm_s"] = statistics.median(timed(fn) for _ in range(3))
    text, n_runs = report()
    top = ""
    if profile:
        DerivedCache(store).clear()
        prof = cProfile.Profile()
        prof.enable()
        report()
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(18)
        top = buf.getvalue()
    return {**times, "lines": text.count("\n"), "runs": n_runs, "profile": top, **_usage()}


PHASES = {"fitparse": phase_fitparse, "import": phase_import, "import_warm": phase_import_warm,
          "report": phase_report}


def run_phase(name: str, **kwargs) -> dict:
    """Run a phase in a fresh Python process; its JSON result."""
    cmd = [sys.executable, __file__, "--phase", name, "--args", json.dumps(kwargs)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed_cli(*args: str) -> float:
    """Wall time of one ``runlog`` CLI process (output discarded)."""
    t0 = time.perf_counter()
    subprocess.run([str(RUNLOG_CLI), *args], check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


# --- archive and 5-year store builders ------------------------------------------------------

def build_distinct(paths: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True)
    for i, path in enumerate(paths):
        shutil.copyfile(path, folder / f"{i:03d}_{path.name}")


def build_copies(distinct: Path, n_files: int, folder: Path) -> int:
    """Renamed copies of the distinct set in copy_NNN/ folders, until ``n_files``."""
    files = sorted(distinct.iterdir())
    made = 0
    copy = 0
    while made < n_files:
        sub = folder / f"copy_{copy:03d}"
        sub.mkdir(parents=True)
        for path in files[: n_files - made]:
            shutil.copyfile(path, sub / path.name)
            made += 1
        copy += 1
    return made


def build_years_store(source_store: Path, target: Path, years: float, n_runs: int,
                      min_samples: int = 0) -> dict:
    """Copy stored runs of ``source_store`` onto ``n_runs`` days spread over ``years``.

    Only runs with at least ``min_samples`` samples serve as templates (the corpus' runs are
    short; the longer ones bring the store near a real runner's ~3,300 samples per run).
    """
    import pandas as pd

    from runlog.importer import run_id_for
    from runlog.store import Store

    src = Store(source_store)
    samples = src.samples()
    sizes = samples.groupby("run_id").size()
    runs = src.runs()
    runs = runs[runs["run_id"].isin(sizes[sizes >= min_samples].index)].reset_index(drop=True)
    if runs.empty:
        raise SystemExit(f"no stored run has ≥ {min_samples} samples to copy")
    bins = src.cadence_bins()
    by_run = {rid: frame for rid, frame in samples.groupby("run_id", sort=False)}
    bins_by_run = {rid: frame for rid, frame in bins.groupby("run_id", sort=False)}
    first_day = pd.Timestamp("2021-01-04", tz="UTC")
    spacing = pd.Timedelta(days=years * 365.25 / n_runs)
    store = Store(target)
    total_samples = 0
    chunk = 150
    for lo in range(0, n_runs, chunk):
        rows, parts, bin_parts = [], [], []
        for i in range(lo, min(lo + chunk, n_runs)):
            row = runs.iloc[i % len(runs)].copy()
            start = pd.Timestamp(row["start_utc"])
            new_day = (first_day + spacing * i).normalize()
            shift = new_day + (start - start.normalize()) - start
            rid = run_id_for(start + shift, None)
            old = row["run_id"]
            row["run_id"] = rid
            row["start_utc"] = start + shift
            row["source_file"] = f"{row['source_file']}#copy{i}"
            row["file_sha256"] = None
            rows.append(row)
            s = by_run[old].copy()
            s["run_id"] = rid
            s["timestamp"] = s["timestamp"] + shift
            parts.append(s)
            total_samples += len(s)
            if old in bins_by_run:
                bin_parts.append(bins_by_run[old].assign(run_id=rid))
        with store.writer() as tx:
            tx.add_runs(pd.DataFrame(rows).reset_index(drop=True),
                        pd.concat(parts, ignore_index=True),
                        pd.concat(bin_parts, ignore_index=True) if bin_parts else None)
    return {"runs": len(store.runs()), "samples": total_samples, "templates": len(runs)}


# --- main -------------------------------------------------------------------------------------

def compile_runlog() -> str:
    """Write the bytecode of runlog's modules (``__pycache__``, git-ignored), as installing
    the package does, and say whether the environment would have skipped it.

    ``pip install`` compiles a package's modules and an editable install writes their
    bytecode on first import, so a runner's CLI process never compiles runlog's source. With
    ``PYTHONDONTWRITEBYTECODE`` set (as in some sandboxes and containers) nothing would
    write it, and every new process of this benchmark would compile runlog's ≈ 10,000
    lines again (≈ 0.1 s here): time no runner spends.
    """
    import compileall

    ok = compileall.compile_dir(REPO / "runlog", quiet=1)
    skipped = " (PYTHONDONTWRITEBYTECODE is set here: written explicitly)" \
        if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    return f"runlog's bytecode compiled before timing{skipped}: {'ok' if ok else 'FAILED'}"


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()[:15]
    return "\n".join([f"nproc: {os.cpu_count()}   python {platform.python_version()}   "
                      f"{platform.platform()}", *lscpu])


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=default_corpus())
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=1500)
    parser.add_argument("--template-min-samples", type=int, default=1900,
                        help="only stored runs with this many samples are copied into the "
                             "multi-year store")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--phase", choices=sorted(PHASES))
    parser.add_argument("--args", default="{}")
    opts = parser.parse_args()
    if opts.phase:
        print(json.dumps(PHASES[opts.phase](**json.loads(opts.args))))
        return

    print("== machine\n" + machine())
    print(compile_runlog())
    paths = running_fit_paths(opts.corpus)
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="runlog-bench-") as tmp:
        work = Path(tmp)
        distinct = work / "distinct"
        build_distinct(paths, distinct)

        print(f"\n== 1. throughput: {len(paths)} distinct real running FIT files "
              f"({sum(p.stat().st_size for p in paths) / MIB:.1f} MiB)")
        fp = run_phase("fitparse", folder=str(distinct))
        fp_rate = fp["records"] / fp["wall_s"]
        print(f"fitparse alone   : {fp['records']} records ({fp['messages']} messages) in "
              f"{fp['wall_s']:.2f} s = {fp_rate:,.0f} records/s; peak "
              f"{fp['maxrss_main_mib']:.0f} MiB")
        rates: dict[str, float] = {}
        first_store = None
        for jobs in (1, cpus):
            walls, last = [], {}
            for k in range(opts.repeats):
                store = work / f"fresh_j{jobs}_{k}"
                last = run_phase("import", store=str(store), folder=str(distinct), jobs=jobs,
                                 sample_memory=False)
                walls.append(last["wall_s"])
                first_store = first_store or store
            wall = statistics.median(walls)
            rates[f"jobs={jobs}"] = fp["records"] / wall
            print(f"runlog jobs={jobs:<2}    : median {wall:.2f} s of "
                  f"{', '.join(f'{w:.2f}' for w in walls)} = {fp['records'] / wall:,.0f} "
                  f"records/s = {fp['records'] / wall / fp_rate:.1f}× fitparse; "
                  f"workers {last['workers']}; {last['counts']}; peak "
                  f"{last['maxrss_main_mib']:.0f} MiB (ru_maxrss)")
        preloaded = statistics.median(
            run_phase("import", store=str(work / f"fresh_pre_{k}"), folder=str(distinct),
                      jobs=1, preload=True, sample_memory=False)["wall_s"]
            for k in range(opts.repeats))
        print(f"runlog jobs=1, modules loaded before the clock (as fitparse's are): median "
              f"{preloaded:.2f} s = {fp['records'] / preloaded:,.0f} records/s = "
              f"{fp['records'] / preloaded / fp_rate:.1f}× fitparse")
        best = max(rates.values())
        print(f"target end-to-end ≥ 50× fitparse: {best / fp_rate:.1f}× → "
              f"{verdict(best >= 50 * fp_rate)}")
        warm = [run_phase("import_warm", store=str(work / f"warm_{k}"), folder=str(distinct))
                for k in range(opts.repeats)]
        warm_walls = [w["wall_s"] for w in warm]
        warm_wall = statistics.median(warm_walls)
        print(f"runlog warm      : median {warm_wall:.2f} s of "
              f"{', '.join(f'{w:.2f}' for w in warm_walls)} = "
              f"{fp['records'] / warm_wall:,.0f} records/s = "
              f"{fp['records'] / warm_wall / fp_rate:.1f}× fitparse (same files into a second "
              "fresh store in a process that has already imported once: the one-off start-up "
              "costs paid, commits and fsyncs still counted)")

        run_sized(work, distinct, fp["per_file"], opts.repeats)
        whole_fit_archive(work, fit_archive_paths(opts.corpus), opts.repeats)

        both = [str(REPO / "data" / "sample"), str(opts.corpus)]
        n_sample = sum(1 for folder in both for p in Path(folder).rglob("*") if p.is_file())
        print(f"\n== 1b. process pool: data/sample + corpus ({n_sample} files, GPX, TCX, FIT "
              f"and paperwork) into fresh stores, {opts.repeats} repeats")
        for jobs in (1, cpus):
            walls, last = [], {}
            for k in range(opts.repeats):
                last = run_phase("import", store=str(work / f"sample_j{jobs}_{k}"),
                                 folder=both, jobs=jobs)
                walls.append(last["wall_s"])
            wall = statistics.median(walls)
            print(f"runlog jobs={jobs:<2}    : median {wall:.2f} s of "
                  f"{', '.join(f'{w:.2f}' for w in walls)} = {n_sample / wall:.1f} files/s; "
                  f"workers {last['workers']}; new runs {last['counts']['new_runs']}; all "
                  f"processes together {last['tree_peak_mib']:.0f} MiB")

        print(f"\n== 2./3. archive of {opts.files} files (renamed copies of the distinct set)")
        archive = work / "archive"
        build_copies(distinct, opts.files, archive)
        store = work / "archive_store"
        first = run_phase("import", store=str(store), folder=str(archive), jobs=None)
        print(f"first import     : {first['wall_s']:.2f} s, {first['counts']}, workers "
              f"{first['workers']}; peak main {first['maxrss_main_mib']:.0f} MiB, all "
              f"processes together {first['tree_peak_mib']:.0f} MiB")
        again = run_phase("import", store=str(store), folder=str(archive), jobs=None)
        print(f"unchanged re-import (in-process import_paths): {again['wall_s']:.2f} s, "
              f"{again['counts']}")
        cli_s = timed_cli("--store", str(store), "import", "-q", str(archive))
        print(f"unchanged re-import (CLI `runlog import -q`, new process): {cli_s:.2f} s")
        print(f"target unchanged re-import of {opts.files} files < 2 s: "
              f"{verdict(max(cli_s, again['wall_s']) < 2)}")
        total = max(first["tree_peak_mib"], first["maxrss_main_mib"])
        print(f"peak memory, import of {opts.files} files (main + forkserver + workers, "
              f"summed PSS sampled every 50 ms): {total:.0f} MiB = {total * MIB / 1e6:.0f} MB"
              f" → target < 300 MB: {verdict(total * MIB / 1e6 < 300)} (only "
              f"{first['counts']['new_runs']} new runs: the copies are matched by hash)")

        print(f"\n== 4. {opts.years:g}-year store")
        years_store = work / "years_store"
        t0 = time.perf_counter()
        built = build_years_store(first_store, years_store, opts.years, opts.runs,
                                  opts.template_min_samples)
        print(f"built in {time.perf_counter() - t0:.1f} s from the {built['templates']} runs "
              f"with ≥ {opts.template_min_samples} samples of the distinct set's store: "
              f"{built['runs']} runs, {built['samples']:,} samples")
        years_import(years_store, work, distinct, opts.repeats)
        years_report(years_store, work, opts.years, opts.profile)


def years_import(store: Path, work: Path, distinct: Path, repeats: int) -> None:
    """A runner's weekly import: the largest distinct file, new to the store, into a copy
    of the multi-year ``store``; in-process (``import_paths``: read, hash, parse, duplicate
    check, commit of the whole runs, files and bins tables and a samples part) and as the
    CLI (``runlog import -q``, a new process: the import, then the table of the new run with
    its risk levels, which assesses the whole history)."""
    new_file = max(distinct.iterdir(), key=lambda p: p.stat().st_size)

    def fresh_copy(k: int) -> Path:
        target = work / f"years_copy_{k}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(store, target)
        return target

    runs = [run_phase("import", store=str(fresh_copy(k)), folder=str(new_file), jobs=1,
                      sample_memory=False) for k in range(repeats)]
    cli = [timed_cli("--store", str(fresh_copy(k)), "import", "-q", str(new_file))
           for k in range(repeats)]
    print(f"weekly import of one file ({new_file.name}) into a copy of this store, median of "
          f"{repeats}: in-process {statistics.median(r['wall_s'] for r in runs):.2f} s "
          f"({runs[0]['counts']}); CLI `runlog import -q` (lists the new run with its "
          f"levels) {statistics.median(cli):.2f} s")


#: A run-sized file: at least this many records (a 1-hour run logs ~1,000 with smart
#: recording, 3,600 at 1 s; the corpus also holds 14-record parser test fixtures).
RUN_SIZED_RECORDS = 1000


def run_sized(work: Path, distinct: Path, per_file: dict[str, int], repeats: int) -> None:
    """Section 1 again on the distinct files of at least RUN_SIZED_RECORDS records: fitparse
    and runlog (fresh process, and warm) on the same subset, in this run."""
    folder = work / "run_sized"
    folder.mkdir()
    for path in sorted(distinct.iterdir()):
        if per_file.get(path.name, 0) >= RUN_SIZED_RECORDS:
            shutil.copyfile(path, folder / path.name)
    n_files = len(list(folder.iterdir()))
    if not n_files:
        return
    fp = run_phase("fitparse", folder=str(folder))
    fp_rate = fp["records"] / fp["wall_s"]
    fresh = statistics.median(
        run_phase("import", store=str(work / f"run_sized_{k}"), folder=str(folder),
                  jobs=1, sample_memory=False)["wall_s"] for k in range(repeats))
    warm = statistics.median(
        run_phase("import_warm", store=str(work / f"run_sized_warm_{k}"),
                  folder=str(folder))["wall_s"] for k in range(repeats))
    print(f"run-sized files only (≥ {RUN_SIZED_RECORDS:,} records: {n_files} files, "
          f"{fp['records']:,} records): fitparse {fp['wall_s']:.2f} s = {fp_rate:,.0f} "
          f"records/s; runlog jobs=1 fresh process median {fresh:.2f} s = "
          f"{fp['records'] / fresh / fp_rate:.1f}×, warm median {warm:.2f} s = "
          f"{fp['records'] / warm / fp_rate:.1f}× fitparse")


def whole_fit_archive(work: Path, paths: list[Path], repeats: int) -> None:
    """Section 1c: the corpus' whole FIT archive (every sport), fitparse against runlog.

    runlog decodes every file whole, as fitparse does, but measures and stores only the runs:
    a ride or a swim ends with its file outcome. So this is the mix a runner's watch export
    holds, not the running-only set of section 1, and is reported beside it."""
    folder = work / "fit_archive"
    build_distinct(paths, folder)
    fp = run_phase("fitparse", folder=str(folder))
    fp_rate = fp["records"] / fp["wall_s"]
    print(f"\n== 1c. the corpus' whole FIT archive: {len(paths)} files of every sport that "
          f"fitparse reads cleanly ({sum(p.stat().st_size for p in paths) / MIB:.1f} MiB)")
    print(f"fitparse alone   : {fp['records']:,} records in {fp['wall_s']:.2f} s = "
          f"{fp_rate:,.0f} records/s")
    for jobs, preload in ((1, False), (1, True), (os.cpu_count() or 1, False)):
        runs = [run_phase("import", store=str(work / f"fit_archive_{jobs}_{preload}_{k}"),
                          folder=str(folder), jobs=jobs, preload=preload, sample_memory=False)
                for k in range(repeats)]
        walls = [r["wall_s"] for r in runs]
        wall = statistics.median(walls)
        label = f"jobs={jobs}" + (", modules loaded before the clock" if preload else "")
        print(f"runlog {label}: median {wall:.2f} s of "
              f"{', '.join(f'{w:.2f}' for w in walls)} = "
              f"{fp['records'] / wall / fp_rate:.1f}× fitparse; workers {runs[-1]['workers']}; "
              f"{runs[-1]['counts']}")


#: CLI timings per command and state in section 4 (median and range reported).
CLI_REPEATS = 5


def years_report(store: Path, work: Path, years: float, profile: bool) -> None:
    """Section 4's timings on a multi-year ``store``: in-process and CLI, cold and warm.

    CLI, each command three ways: *cold* (derived cache cleared: the assessment is computed
    and the output drawn, then both cached: the first call after an annotation or a profile
    change), *assessment cached* (the first call of this command after another one cached
    the assessment, as after `runlog import` printed its new runs) and *warm* (the same
    command again on the unchanged store). Each is timed ``CLI_REPEATS`` times, the commands
    and states interleaved (a shared machine drifts over minutes): median and range.
    """
    from runlog.derived_cache import DerivedCache

    rep = run_phase("report", store=str(store), out=str(work / "chart.png"), profile=profile)
    commands = {"report": ("report",), "chart": ("chart", "-o", str(work / "chart_cli.png"))}
    times: dict[str, dict[str, list[float]]] = {
        name: {"cold": [], "first": [], "warm": []} for name in commands}
    for _ in range(CLI_REPEATS):
        for name, args in commands.items():
            DerivedCache(store).clear()
            times[name]["cold"].append(timed_cli("--store", str(store), *args))
            DerivedCache(store).clear()
            timed_cli("--store", str(store), "report", "--format", "json")  # caches it
            times[name]["first"].append(timed_cli("--store", str(store), *args))
            times[name]["warm"].append(timed_cli("--store", str(store), *args))
    cli = {name: {state: statistics.median(t) for state, t in states.items()}
           for name, states in times.items()}

    def spread(name: str, state: str) -> str:
        t = times[name][state]
        return f"{statistics.median(t):.2f} s ({min(t):.2f}–{max(t):.2f})"

    for name, usage in (("report", "`runlog report`"), ("chart", "`runlog chart -o x.png`")):
        print(f"{name:<6} in-process: cold {rep[f'{name}_cold_s']:.2f} s, warm "
              f"{rep[f'{name}_warm_s']:.2f} s; CLI {usage}, median (range) of {CLI_REPEATS}: "
              f"cold {spread(name, 'cold')}, assessment cached {spread(name, 'first')}, "
              f"warm {spread(name, 'warm')}")
    print(f"({rep['runs']} runs; CLI times include Python start-up)")
    for state in ("cold", "first", "warm"):
        label = "assessment cached" if state == "first" else state
        on_cli = max(cli["report"][state], cli["chart"][state])
        in_process = ""
        if state != "first":
            slowest = max(rep[f"report_{state}_s"], rep[f"chart_{state}_s"])
            in_process = f"in-process {verdict(slowest < 1)}, "
        print(f"target report and chart on {years:g} years < 1 s, {label}: {in_process}"
              f"CLI (median) {verdict(on_cli < 1)}")
    if rep["profile"]:
        print("\n== profile of the in-process cold report (cumulative)\n" + rep["profile"])


if __name__ == "__main__":
    main()
