"""Benchmark: fitparse vs runlog's fast FIT path on an archive of real running FIT files.

Builds an archive (a temporary folder) of copies of the corpus' clean running FIT files,
repeated until it holds at least ``--min-records`` record messages (never synthetic bytes),
then times, in the same run and on the same files:

* ``fitparse``        FitFile(...).get_messages(): every message decoded as fitparse does;
* ``read_fit``        runlog's fitparse reader, bytes → Activities;
* ``read_fit_fast``   runlog's fast path, bytes → the same Activities (read_fit when it
  declines, as the importer would);
* ``fast decode``     the fast path's decoding stage alone (header walk + CRC + every record
  field as numpy columns), without building Activities.

Each is reported in records/s (record messages per second of this process' CPU time, so
that other work on a shared machine does not distort the figures), with the ratio to
fitparse and the peak Python memory while reading the largest file (tracemalloc, numpy
included). Usage::

    .venv/bin/python benchmarks/fit_decode.py [--corpus PATH] [--min-records N]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import io
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fitparse import FitFile  # noqa: E402

from runlog.errors import SkippedFile  # noqa: E402
from runlog.readers import fastfit  # noqa: E402
from runlog.readers import fit as fit_module  # noqa: E402
from runlog.readers.fit import read_fit  # noqa: E402

#: Records the archive holds at least (the issue's target scale).
DEFAULT_MIN_RECORDS = 50_000
#: fitparse is timed on at most this many records of the archive (it is ~100× slower);
#: the rate is records/s, so a prefix of the same files gives the same figure.
DEFAULT_FITPARSE_RECORDS = 20_000
BYTES_PER_MIB = 1024 * 1024


def default_corpus() -> Path:
    """$RUNLOG_CORPUS, else ../shared/corpus beside the repository."""
    env = os.environ.get("RUNLOG_CORPUS")
    return Path(env) if env else REPO.parent / "shared" / "corpus"


def running_fit_files(corpus: Path) -> list[tuple[str, bytes]]:
    """(path, bytes) of the clean running FIT files of the corpus (.fit.gz decompressed).

    Files runlog deliberately skips (no absolute start time) are left out: they import
    nothing, whichever decoder reads them.
    """
    catalogue = pd.read_csv(corpus / "catalogue.csv")
    is_fit = (catalogue["format"] == "fit") | (
        (catalogue["format"] == "gz") & (catalogue["inner_format"] == "fit"))
    rows = catalogue[is_fit & (catalogue["sport_norm"] == "run")
                     & (catalogue["fitparse"] == "ok")]
    files = []
    for path in rows["path"]:
        data = (corpus / path).read_bytes()
        data = gzip.decompress(data) if path.endswith(".gz") else data
        try:
            read_fit(data, path)
        except SkippedFile:
            continue
        files.append((path, data))
    return files


def count_records(data: bytes) -> int:
    """Record messages (global 20) in a FIT file, counted by fitparse (the reference)."""
    return sum(1 for _ in FitFile(io.BytesIO(data)).get_messages("record"))


def build_archive(files: list[tuple[str, bytes]], min_records: int,
                  folder: Path) -> list[tuple[Path, int]]:
    """Copies of ``files`` in ``folder``, repeated until ``min_records``: (path, records)."""
    counts = [(path, data, count_records(data)) for path, data in files]
    counts = [c for c in counts if c[2] > 0]
    archive: list[tuple[Path, int]] = []
    total, copy = 0, 0
    while total < min_records:
        for path, data, n in counts:
            target = folder / f"{copy:03d}-{Path(path).name}"
            target.write_bytes(data)
            archive.append((target, n))
            total += n
        copy += 1
    return archive


def fitparse_all(data: bytes) -> int:
    """Decode every message with fitparse; return the number of record messages."""
    return sum(1 for m in FitFile(io.BytesIO(data)).get_messages() if m.name == "record")


def _declined(*_args: object, **_kwargs: object) -> None:
    raise fastfit._Decline("benchmark: fitparse path")


def read_fit_count(data: bytes) -> int:
    """read_fit on its fitparse path (even once read_fit tries the fast path first)."""
    real = fastfit._read
    fastfit._read = _declined
    try:
        return sum(len(a.columns["timestamp"]) for a in read_fit(data, "bench.fit"))
    finally:
        fastfit._read = real


def fast_with_fallback(data: bytes) -> int:
    activities = fastfit.read_fit_fast(data, "bench.fit")
    if activities is None:
        fast_with_fallback.declined += 1
        activities = read_fit(data, "bench.fit")
    return sum(len(a.columns["timestamp"]) for a in activities)


fast_with_fallback.declined = 0


def fast_decode_only(data: bytes) -> int:
    """The fast path's decoding: header walk, CRCs, all record fields as numpy columns."""
    walk = fastfit._walk(data)
    data_np = np.frombuffer(data, dtype=np.uint8)
    positions, lids = walk.positions, walk.lids
    kinds = np.array([lay.mesg_num for lay in walk.layouts], dtype=np.int64)[lids]
    stamps = fastfit._message_timestamps(data_np, walk, positions, lids)
    is_record = kinds == fastfit.MESG_RECORD
    names = list(fit_module._RECORD_FIELDS)
    columns = fastfit._record_columns(data_np, walk, positions, lids, stamps, is_record, names)
    return len(columns["timestamp"])


def timed(func: Callable[[bytes], int], archive: list[tuple[Path, int]],
          max_records: int | None = None) -> tuple[int, float, int]:
    """Run ``func`` over the archive's files: (records, CPU seconds decoding, files).

    Files are read from disk outside the timed region (the same for every method).
    """
    records, files, seconds = 0, 0, 0.0
    gc.collect()
    for path, expected in archive:
        if max_records is not None and records >= max_records:
            break
        data = path.read_bytes()
        start = time.process_time()
        got = func(data)
        seconds += time.process_time() - start
        if got != expected and func is not read_fit_count and func is not fast_with_fallback:
            raise SystemExit(f"{func.__name__}: {got} records in {path.name}, "
                             f"fitparse counted {expected}")
        records += expected
        files += 1
    return records, seconds, files


def peak_memory(func: Callable[[bytes], int], data: bytes) -> float:
    """Peak traced Python memory (numpy included) while ``func`` reads ``data`` [MiB]."""
    gc.collect()
    tracemalloc.start()
    func(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / BYTES_PER_MIB


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=default_corpus())
    parser.add_argument("--min-records", type=int, default=DEFAULT_MIN_RECORDS)
    parser.add_argument("--fitparse-records", type=int, default=DEFAULT_FITPARSE_RECORDS,
                        help="records timed for the two fitparse-based readers")
    args = parser.parse_args(argv)
    wall = time.perf_counter()
    files = running_fit_files(args.corpus)
    if not files:
        raise SystemExit(f"no running FIT files in {args.corpus}")
    folder = Path(tempfile.mkdtemp(prefix="runlog-fit-bench-"))
    try:
        archive = build_archive(files, args.min_records, folder)
        total_records = sum(n for _, n in archive)
        total_bytes = sum(p.stat().st_size for p, _ in archive)
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"Python {platform.python_version()}, numpy {np.__version__}, "
              f"pandas {pd.__version__}")
        print(f"archive: {len(archive)} files ({len(files)} distinct real running FIT files "
              f"from the corpus, copied), {total_records:,} records, "
              f"{total_bytes / BYTES_PER_MIB:.1f} MiB")
        for path, _ in archive[:len(files)]:               # warm-up: imports, tables
            fast_decode_only(path.read_bytes())
            fastfit.read_fit_fast(path.read_bytes(), "warmup.fit")
        results = {
            "fitparse (all messages)": timed(fitparse_all, archive, args.fitparse_records),
            "read_fit (fitparse reader)": timed(read_fit_count, archive,
                                                args.fitparse_records),
            "read_fit_fast (Activities)": timed(fast_with_fallback, archive),
            "fast decode only": timed(fast_decode_only, archive),
        }
        largest = max((p for p, _ in archive[:len(files)]), key=lambda p: p.stat().st_size)
        data = largest.read_bytes()
        memory = {
            "fitparse (all messages)": peak_memory(fitparse_all, data),
            "read_fit (fitparse reader)": peak_memory(read_fit_count, data),
            "read_fit_fast (Activities)": peak_memory(fast_with_fallback, data),
            "fast decode only": peak_memory(fast_decode_only, data),
        }
        base_rate = results["fitparse (all messages)"][0] / results["fitparse (all messages)"][1]
        print(f"\n{'method':30s} {'records':>9s} {'files':>6s} {'seconds':>8s} "
              f"{'records/s':>11s} {'× fitparse':>10s} {'peak MiB':>9s}")
        for method, (records, seconds, n_files) in results.items():
            rate = records / seconds
            print(f"{method:30s} {records:9,d} {n_files:6d} {seconds:8.2f} {rate:11,.0f} "
                  f"{rate / base_rate:10.1f} {memory[method]:9.1f}")
        print(f"\npeak memory: traced while reading the largest file ({largest.name[4:]}, "
              f"{len(data) / 1024:.0f} KiB); process max RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        print(f"read_fit_fast declined {fast_with_fallback.declined} of "
              f"{results['read_fit_fast (Activities)'][2]} files (read_fit used for those)")
        print(f"total benchmark time {time.perf_counter() - wall:.0f} s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
