"""``runlog report`` from the cached assessment, without pandas.

When another command has computed the risk assessment (``runlog import`` listing its new
runs, a chart, another report format), the plain ``runlog report`` needs only a few columns
of the runs table and the cached levels. Read with pyarrow alone and formatted by
:mod:`runlog.report_text`, that answers in well under half the time of loading pandas
(≈ 0.6 s here) and computing the same text through :class:`runlog.api.RunLog`.

:func:`runs_report_from_cache` answers only when it is sure to print exactly what the pandas
path prints; anything unusual (no cached assessment, a store written by another schema
version, an empty store, a column of an unexpected type, a store changing while read, any
read error) returns None and the caller takes the pandas path, which also reports errors.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runlog.derived_cache import DerivedCache, current_manifest, read_frame_table
from runlog.report_text import render_columns, run_table_cells, runs_report_text
from runlog.schema import METRICS_VERSION

if TYPE_CHECKING:
    import pyarrow as pa

#: Numeric columns of the runs table the report shows.
NUMBER_COLUMNS = ("distance_m", "moving_s", "avg_hr_bpm", "avg_cadence_spm", "ascent_m",
                  "temp_c")
#: Text columns of the runs table the report uses.
TEXT_COLUMNS = ("run_id", "quality_issues")
#: Columns the report takes from the cached levels (runlog.risk.LEVEL_COLUMNS).
LEVEL_COLUMNS = ("knee_risk", "cramp_risk", "knee_top", "cramp_top")
NS_PER_MIN = 60_000_000_000
EPOCH = datetime(1970, 1, 1)


def runs_report_from_cache(root: str | os.PathLike) -> str | None:
    """The text ``runlog report`` prints for every run (table format, final newline
    included), or None when the cached assessment cannot give it (see the module
    docstring)."""
    try:
        return _report(Path(root))
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            ArithmeticError, ImportError, NotImplementedError):  # pyarrow's derive from these
        return None


def _report(root: Path) -> str | None:
    cache = DerivedCache(root)
    key = cache.key("assessment")
    payload = cache.get("assessment-levels", key)
    if payload is None:
        return None
    manifest = current_manifest(root)
    if manifest is None or not manifest["tables"].get("runs"):
        return None
    import pyarrow.parquet as pq

    with pq.ParquetFile(root / manifest["tables"]["runs"]) as runs_file:
        names = set(runs_file.schema_arrow.names)
        if names & set(LEVEL_COLUMNS):  # the runs' own columns would win over the levels'
            return None
        wanted = ["start_utc", "tz_offset_min", "metrics_version", *NUMBER_COLUMNS,
                  *TEXT_COLUMNS]
        runs = runs_file.read(columns=[c for c in wanted if c in names])
    levels = _levels(payload)
    if levels is None or runs.num_rows == 0 or cache.key("assessment") != key:
        return None  # nothing to show here, or the store changed while being read
    return _text(runs, levels)


def _levels(payload: bytes) -> dict[str, tuple[Any, ...]] | None:
    """run_id → (knee_risk, cramp_risk, knee_top, cramp_top) of the cached levels frame;
    None unless those columns were stored as texts (as DerivedCache.get_frame checks)."""
    table = read_frame_table(payload).select(["run_id", *LEVEL_COLUMNS])
    dtypes = dict(json.loads(table.schema.metadata[b"runlog_dtypes"]))
    if any(dtypes.get(c) != "str" or not _is_text(table.schema.field(c).type)
           for c in ("run_id", *LEVEL_COLUMNS)):
        return None
    columns = [table.column(c).to_pylist() for c in ("run_id", *LEVEL_COLUMNS)]
    return {row[0]: row[1:] for row in zip(*columns, strict=True)}


def _is_text(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _is_number(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_floating(kind) or pa.types.is_integer(kind)


def _text(runs: pa.Table, levels: dict[str, tuple[Any, ...]]) -> str | None:
    """The report's text from the runs table's columns and the levels, as the pandas path
    makes it: runs sorted by start_utc (numpy's quicksort, as pandas' sort_values), local
    start = start_utc + tz_offset_min, a missing column all-missing (as the store conforms
    its tables)."""
    import numpy as np
    import pyarrow as pa

    n = runs.num_rows
    if not {"start_utc", "run_id"} <= set(runs.column_names):
        return None
    start = runs.column("start_utc")
    if (not pa.types.is_timestamp(start.type) or start.null_count
            or runs.column("run_id").null_count):
        return None
    for name in runs.column_names:
        kind = runs.schema.field(name).type
        if name in TEXT_COLUMNS and not (_is_text(kind) or pa.types.is_null(kind)):
            return None
        if name in NUMBER_COLUMNS and not (_is_number(kind) or pa.types.is_null(kind)):
            return None
        # whole minutes and versions (Int64 in the store): a float here is an older layout
        if name in ("tz_offset_min", "metrics_version") and not (
                pa.types.is_integer(kind) or pa.types.is_null(kind)):
            return None
    # The same datetime64[ns] values and numpy quicksort as pandas' sort_values("start_utc"),
    # so runs starting at the same instant keep pandas' order too. Read from the data
    # buffers: pyarrow's to_numpy() and to_pylist() of timestamps load pandas (≈ 0.4 s).
    ticks = np.concatenate([np.zeros(0, dtype="int64")] + [
        np.frombuffer(chunk.buffers()[1], dtype="int64", count=len(chunk),
                      offset=chunk.offset * 8) for chunk in start.chunks])
    utc_ns = ticks.view(f"datetime64[{start.type.unit}]").astype("datetime64[ns]")
    order = utc_ns.argsort(kind="quicksort").tolist()

    def column(name: str) -> list[Any]:
        if name not in runs.column_names:
            return [None] * n
        values = runs.column(name).to_pylist()
        return [values[i] for i in order]

    utc_int = utc_ns.astype("int64").tolist()
    offsets = column("tz_offset_min")
    local_min = [(utc_int[i] + (off or 0) * NS_PER_MIN) // NS_PER_MIN
                 for i, off in zip(order, offsets, strict=True)]
    dates = [(EPOCH + timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M") for m in local_min]
    run_ids = column("run_id")
    values: dict[str, list[Any]] = {"run_id": run_ids, "date": dates}
    for name in NUMBER_COLUMNS:
        values[name] = column(name)
    values["quality_issues"] = column("quality_issues")
    assessed = [levels.get(r, (None,) * len(LEVEL_COLUMNS)) for r in run_ids]
    for i, name in enumerate(LEVEL_COLUMNS):
        values[name] = [row[i] for row in assessed]
    table = render_columns(run_table_cells(values).items())
    stale = sum(1 for v in column("metrics_version") if (v or 0) < METRICS_VERSION)
    quality = any(q not in (None, "") for q in values["quality_issues"])
    return runs_report_text(table, stale_runs=stale, quality_issues=quality) + "\n"
