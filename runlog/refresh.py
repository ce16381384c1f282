"""Recompute stored runs whose metrics came from an older runlog (METRICS_VERSION changed).

Metrics are derived data: when the code that computes them changes, stored runs are brought
up to date from their original files. Only metric columns, samples and cadence bins are
replaced; a run's identity, its export metadata (Strava name, gear) and every annotation stay
exactly as they were. A run whose original file is gone keeps its old metrics and is named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from runlog.errors import FileReadError
from runlog.schema import METRICS_VERSION, RUN_METRIC_COLUMNS

if TYPE_CHECKING:  # the importer (readers, metrics) loads only when something is recomputed
    from runlog.importer import ParsedRun
    from runlog.store import Store

#: Runs recomputed per atomic store commit.
REFRESH_BATCH_RUNS = 200


def stale_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs computed by an older metrics version (or with no version recorded)."""
    if runs.empty or "metrics_version" not in runs:
        return runs.iloc[0:0]
    version = pd.to_numeric(runs["metrics_version"], errors="coerce").fillna(0)
    return runs[version < METRICS_VERSION]


def refresh_metrics(store: Store, on_run: Callable[[str], None] | None = None,
                    ) -> tuple[int, list[str]]:
    """Recompute stale runs from their original files; returns (count, problems)."""
    stale = stale_runs(store.runs())
    if stale.empty:
        return 0, []
    profile = store.profile()
    problems: list[str] = []
    pending: list[tuple[dict, pd.DataFrame, pd.DataFrame]] = []
    done = 0
    disk_paths = stale["source_file"].str.split("!").str[0]
    for disk_path, group in stale.groupby(disk_paths, sort=True):
        if not Path(disk_path).exists():
            problems.extend(f"{rid}: original file {disk_path} is gone; old metrics kept"
                            for rid in group["run_id"])
            continue
        wanted = dict(zip(group["run_id"], group["source_file"], strict=True))
        for row, samples, bins in _recompute(disk_path, set(wanted.values()), profile,
                                             problems):
            if row["run_id"] in wanted:
                pending.append((row, samples, bins))
                if on_run:
                    on_run(row["run_id"])
        if len(pending) >= REFRESH_BATCH_RUNS:
            done += _commit(store, pending)
            pending = []
    if pending:
        done += _commit(store, pending)
    return done, problems


def _recompute(disk_path: str, displays: set[str], profile: dict, problems: list[str]):
    from runlog.importer import process_file
    from runlog.sources import SourceFile, discover

    for source in discover([disk_path]):
        if not isinstance(source, SourceFile) or source.display not in displays:
            continue
        try:
            data = source.read_bytes()
        except FileReadError as err:
            problems.append(err.one_line())
            continue
        outcome, results = process_file(source, data, hashlib.sha256(data).hexdigest(),
                                        profile)
        if not results:
            problems.append(f"{source.display}: now {outcome.outcome}: {outcome.reason}; "
                            "old metrics kept")
        yield from results


def _commit(store: Store, results: list[ParsedRun]) -> int:
    from runlog.importer import BIN_ORDER, SAMPLE_ORDER, stacked_frame

    metric_columns = ["run_id", *RUN_METRIC_COLUMNS]
    current = store.runs().set_index("run_id")
    rows = pd.DataFrame([r for r, _, _ in results])[metric_columns].set_index("run_id")
    # Identity columns (name, gear, tz, ...) from the stored row; metrics from the new one.
    merged = current.loc[rows.index].copy()
    for col in rows.columns:
        merged[col] = rows[col]
    run_ids = [r["run_id"] for r, _, _ in results]
    samples = stacked_frame([s for _, s, _ in results], run_ids, SAMPLE_ORDER)
    bins = stacked_frame([b for _, _, b in results], run_ids, BIN_ORDER)
    with store.writer() as tx:
        tx.add_runs(merged.reset_index(), samples, bins)
    return len(rows)
