"""Long fuzzing run: the generators of ``tests/test_fuzz_readers.py`` for N minutes.

Usage::

    .venv/bin/python benchmarks/fuzz_long.py 10            # ten minutes
    .venv/bin/python benchmarks/fuzz_long.py 0.5 --seed 7  # thirty seconds, another seed

Every input is (seed file, mutation, integer seed), judged by the same contract as the CI
tests (:func:`test_fuzz_readers.check_read` and ``check_source``): a list of Activities or a
one-line RunlogError naming the file, within 5 s and 200 MiB, ``process_file`` never raising,
and for FIT the numpy fast path declining or agreeing with fitparse. About 8 % of the inputs
are damaged .gz, .zip and nested (Garmin-export) zips read through ``runlog.sources``.
Reports inputs tried, time, the distinct outcome kinds and every distinct contract
violation (with the first input that showed it, to reproduce with ``mutate(...)``).
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import test_fuzz_readers as fuzz  # the shared generators and judge

from runlog.sources import discover


def _one_input(rng: random.Random, scratch: Path) -> tuple[str, fuzz.Outcome]:
    """Draw one input, judge it; returns (label to reproduce it, outcome)."""
    roll = rng.random()
    seed_value = rng.randrange(2**32)
    if roll < 0.08:                                     # archives through runlog.sources
        kind = rng.choice(("gz", "zip", "nested_zip"))
        mutate = fuzz.mutate_gz if kind == "gz" else fuzz.mutate_zip
        seed_bytes = {"gz": fuzz.gz_seed, "zip": fuzz.zip_seed,
                      "nested_zip": fuzz.nested_zip_seed}[kind]()
        path = scratch / (f"{seed_value}.fit.gz" if kind == "gz" else f"{seed_value}.zip")
        path.write_bytes(mutate(seed_bytes, random.Random(seed_value)))
        try:
            outcome = fuzz.check_source(lambda: list(discover([path])))
        finally:
            path.unlink()
        return f"{mutate.__name__}({kind}_seed(), Random({seed_value}))", outcome
    seed = rng.choice(sorted(fuzz.SEEDS))
    fmt = fuzz.SEEDS[seed][1]
    mutation = rng.choice(sorted(fuzz.MUTATIONS_BY_FORMAT[fmt]))
    data = fuzz.mutate(seed, mutation, seed_value)
    if rng.random() < 0.15:                             # stack a second mutation
        second = rng.choice(sorted(fuzz.MUTATIONS_BY_FORMAT[fmt]))
        try:
            data = fuzz.MUTATIONS_BY_FORMAT[fmt][second](data, random.Random(seed_value + 1))
            mutation = f"{mutation}+{second}"
        except (ValueError, IndexError, StopIteration, KeyError, struct.error):
            pass                                        # the layout walker needs a sane FIT
    return f"mutate({seed!r}, {mutation!r}, {seed_value})", fuzz.check_read(data, fmt, seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("minutes", type=float, help="how long to run [min]")
    parser.add_argument("--seed", type=int, default=20261121, help="master random seed")
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore", RuntimeWarning)   # numpy overflow on absurd values
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.minutes * 60
    started = time.monotonic()
    kinds: Counter[str] = Counter()
    violations: dict[str, tuple[str, str]] = {}
    tried = 0
    slowest = (0.0, "")
    peak = (0, "")
    with tempfile.TemporaryDirectory(prefix="runlog-fuzz-") as scratch:
        while time.monotonic() < deadline:
            label, outcome = _one_input(rng, Path(scratch))
            tried += 1
            kinds[outcome.kind] += 1
            if outcome.seconds > slowest[0]:
                slowest = (outcome.seconds, label)
            if outcome.peak_bytes > peak[0]:
                peak = (outcome.peak_bytes, label)
            if outcome.problem is not None:
                key = f"{outcome.kind} | {fuzz._reason_class(outcome.problem)}"
                if key not in violations:
                    violations[key] = (label, outcome.problem)
                    print(f"VIOLATION {key}\n    {label}\n    {outcome.problem}", flush=True)
            if tried % 500 == 0:
                print(f"... {tried} inputs, {time.monotonic() - started:.0f} s, "
                      f"{len(violations)} violations", flush=True)
    elapsed = time.monotonic() - started
    print(f"\n{tried} inputs in {elapsed:.0f} s ({tried / elapsed:.1f}/s), seed {args.seed}")
    print(f"slowest input {slowest[0]:.2f} s: {slowest[1]}")
    print(f"largest traced peak {peak[0] / 2**20:.1f} MiB: {peak[1]}")
    print(f"{len(kinds)} distinct outcome kinds:")
    for kind, count in kinds.most_common():
        print(f"  {count:6d}  {kind}")
    print(f"{len(violations)} distinct contract violations")
    for key, (label, problem) in violations.items():
        print(f"  {key}\n      {label}\n      {problem}")
    return 1 if violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
