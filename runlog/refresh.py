"""Recompute stored runs whose metrics came from an older runlog (METRICS_VERSION changed).

Metrics are derived data: when the code that computes them changes, stored runs are brought
up to date from their original files. Only metric columns, samples and cadence bins are
replaced; a run's identity, its export metadata (Strava name, gear) and every annotation stay
exactly as they were. A run whose original file is gone keeps its old metrics and is named.
"""

from __future__ import annotations

import hashlib
import os
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


def _not_found(disk_path: str) -> str:
    """Why a run's original file cannot be read again, in the runner's words."""
    if Path(disk_path).is_absolute():
        return f"original file {disk_path} is gone"
    # Stores written before paths were recorded absolute: relative to that import's folder.
    return (f"original file {disk_path} not found from {Path.cwd()} (older runlog versions "
            f"recorded it relative to the folder the import ran in: run this there, or "
            f"import the file again)")


def _absolute_display(display: str) -> str:
    """A stored ``source_file`` as :func:`runlog.sources.discover` names it today: the file on
    disk made absolute (older stores hold paths as typed), then any ``!member`` of an archive."""
    disk, bang, member = display.partition("!")
    return os.path.abspath(disk) + bang + member


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
            problems.extend(f"{rid}: {_not_found(disk_path)}; old metrics kept"
                            for rid in group["run_id"])
            continue
        wanted = dict(zip(group["run_id"], group["source_file"], strict=True))
        found: set[str] = set()
        reported: set[str] = set()  # displays _recompute already named in a problem
        displays = {_absolute_display(d) for d in wanted.values()}
        for row, samples, bins in _recompute(disk_path, displays, profile, problems,
                                             reported):
            if row["run_id"] in wanted:
                found.add(row["run_id"])
                pending.append((row, samples, bins))
                if on_run:
                    on_run(row["run_id"])
        # never silent: a run its file no longer gives keeps its metrics, and says so
        problems.extend(f"{rid}: {wanted[rid]} no longer gives this run; old metrics kept"
                        for rid in wanted if rid not in found
                        and _absolute_display(wanted[rid]) not in reported)
        if len(pending) >= REFRESH_BATCH_RUNS:
            done += _commit(store, pending)
            pending = []
    if pending:
        done += _commit(store, pending)
    return done, problems


def _recompute(disk_path: str, displays: set[str], profile: dict, problems: list[str],
               reported: set[str]):
    """Parse again the files of ``disk_path`` named in ``displays``; yields their runs.
    A file that fails is added to ``problems`` and its display to ``reported``."""
    from runlog.importer import process_file
    from runlog.sources import SourceFile, discover

    for source in discover([disk_path]):
        if not isinstance(source, SourceFile) or source.display not in displays:
            continue
        try:
            data = source.read_bytes()
        except FileReadError as err:
            problems.append(err.one_line())
            reported.add(source.display)
            continue
        outcome, results = process_file(source, data, hashlib.sha256(data).hexdigest(),
                                        profile)
        if not results:
            problems.append(f"{source.display}: now {outcome.outcome}: {outcome.reason}; "
                            "old metrics kept")
            reported.add(source.display)
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
