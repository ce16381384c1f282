"""The runs table of ``runlog report`` from plain values: formatting only, no pandas.

:func:`runlog.report.runs_table` (a DataFrame) and the CLI's answer from the cached
assessment (:mod:`runlog.cached_report`, which never loads pandas) both build their cells
here, so the two cannot drift apart. Missing values are ``None`` or NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DISCLAIMER = (
    "runlog is not medical advice, diagnosis or treatment. Knee and cramp levels are relative "
    "flags built from population studies, not your probability of injury or cramp; no rule is "
    "validated as a predictor inside this app, and its weights and cut-offs are uncalibrated "
    "heuristics. Sweat, sodium, WBGT and device temperatures are "
    "estimates with wide error. Confusion, collapse or chest pain: stop and get emergency help."
)

#: Columns of the runs table, in order, and those aligned right (numbers).
RUN_TABLE_COLUMNS = ("run", "date", "km", "time", "pace", "HR", "cad", "asc m", "°C", "knee",
                     "cramp", "reason")
RIGHT_ALIGNED = frozenset({"km", "time", "pace", "HR", "cad", "asc m", "°C"})
#: Characters of the run id shown, and the most of the reason shown (then "…").
RUN_ID_CHARS = 8
REASON_CHARS = 70
#: Order of the risk levels, for the reason behind the higher one.
RISK_RANK = {"low": 0, "moderate": 1, "high": 2}
#: Shown for a missing number or level.
MISSING = "–"
#: Separator of the messages in knee_top / cramp_top (as runlog.risk.SEP).
MESSAGE_SEP = " | "
#: The values a run's table row is made of (RUN_VALUE_COLUMNS) and the optional ones.
RUN_VALUE_COLUMNS = ("run_id", "date", "distance_m", "moving_s", "avg_hr_bpm",
                     "avg_cadence_spm", "ascent_m", "temp_c")
RUN_OPTIONAL_COLUMNS = ("knee_risk", "cramp_risk", "knee_top", "cramp_top", "quality_issues")


def is_missing(value: Any) -> bool:
    """None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_duration(seconds: float | None) -> str:
    """1:02:03 or 42:05; '–' when unknown."""
    if is_missing(seconds):
        return MISSING
    total = round(float(seconds))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_pace(s_per_km: float | None) -> str:
    """5:12 /km; '–' when unknown."""
    if is_missing(s_per_km) or not math.isfinite(s_per_km):
        return MISSING
    m, s = divmod(round(float(s_per_km)), 60)
    return f"{m}:{s:02d}"


def format_whole(value: float | None) -> str:
    """A number without decimals; '–' when unknown."""
    return MISSING if is_missing(value) else f"{value:.0f}"


def pace_s_per_km(moving_s: float | None, distance_m: float | None) -> float:
    """Moving pace [s/km]; NaN without a positive distance and moving time."""
    km = math.nan if is_missing(distance_m) else distance_m / 1000.0
    if not km > 0 or is_missing(moving_s) or not moving_s > 0:
        return math.nan
    return moving_s / km


def top_reason(knee_risk: Any, cramp_risk: Any, knee_top: Any, cramp_top: Any) -> str:
    """The first message behind the higher of the knee and cramp levels ('' when both are
    low; the knee's on a tie). A low run may still carry a moderate flag (a tip-level score
    below the moderate cut-off); the one-line table keeps quiet about it."""
    knee = RISK_RANK.get(knee_risk, 0) if isinstance(knee_risk, str) else 0
    cramp = RISK_RANK.get(cramp_risk, 0) if isinstance(cramp_risk, str) else 0
    if knee == 0 and cramp == 0:
        return ""
    chosen = knee_top if knee >= cramp else cramp_top
    return "" if is_missing(chosen) else str(chosen).split(MESSAGE_SEP, 1)[0]


def run_table_cells(values: Mapping[str, Sequence[Any]]) -> dict[str, list[str]]:
    """The runs table's cells, column by column (:data:`RUN_TABLE_COLUMNS`).

    ``values``: one sequence per :data:`RUN_VALUE_COLUMNS` entry (``date``: the local start,
    already 'YYYY-MM-DD HH:MM') and per :data:`RUN_OPTIONAL_COLUMNS` entry present, one
    element per run. A '*' after the km marks runs with data-quality issues.
    """
    n = len(values["run_id"])
    absent = [None] * n
    knee, cramp = values.get("knee_risk", absent), values.get("cramp_risk", absent)
    knee_top, cramp_top = values.get("knee_top", absent), values.get("cramp_top", absent)
    quality = values.get("quality_issues", absent)
    reasons = [top_reason(*four) for four in zip(knee, cramp, knee_top, cramp_top,
                                                strict=True)]
    km = [f"{math.nan if is_missing(d) else d / 1000:.2f}" for d in values["distance_m"]]
    return {
        "run": [str(r)[:RUN_ID_CHARS] for r in values["run_id"]],
        "date": [str(d) for d in values["date"]],
        "km": [k + "*" if not is_missing(q) and q != "" else k
               for k, q in zip(km, quality, strict=True)],
        "time": [format_duration(s) for s in values["moving_s"]],
        "pace": [format_pace(pace_s_per_km(s, d))
                 for s, d in zip(values["moving_s"], values["distance_m"], strict=True)],
        "HR": [format_whole(x) for x in values["avg_hr_bpm"]],
        "cad": [format_whole(x) for x in values["avg_cadence_spm"]],
        "asc m": [format_whole(x) for x in values["ascent_m"]],
        "°C": [format_whole(x) for x in values["temp_c"]],
        "knee": [MISSING if is_missing(x) else str(x) for x in knee],
        "cramp": [MISSING if is_missing(x) else str(x) for x in cramp],
        "reason": [r if len(r) <= REASON_CHARS else r[:REASON_CHARS - 1] + "…"
                   for r in reasons],
    }


def render_columns(columns: Iterable[tuple[Any, Sequence[str]]]) -> str:
    """Plain aligned text (no external table library): header, rule, rows.

    ``columns``: (name, cells) pairs, in order. Numbers (:data:`RIGHT_ALIGNED`) are aligned
    right, the rest left; lines carry no trailing spaces; columns are two spaces apart.
    """
    widths, padded = [], []
    for name, cells in columns:                     # column by column: one pad per cell
        texts = [str(name), *cells]
        width = max(map(len, texts))
        pad = str.rjust if name in RIGHT_ALIGNED else str.ljust
        widths.append(width)
        padded.append([pad(t, width) for t in texts])
    header, *rows = ("  ".join(cells).rstrip() for cells in zip(*padded, strict=True))
    return "\n".join([header, "  ".join("-" * w for w in widths), *rows])


#: Under a runs table with a '*' after some km.
QUALITY_LEGEND = ("\n* data-quality problems were found (cleaned where they could be); "
                  "see `runlog report --run RUN`.")


def runs_report_text(table: str, *, stale_runs: int, quality_issues: bool) -> str:
    """Everything ``runlog report`` prints after a non-empty runs table (no final newline)."""
    lines = [table]
    if stale_runs:
        lines.append(f"\n{stale_runs} runs were computed by an older runlog; "
                     "`runlog store refresh` recomputes them from their files.")
    if quality_issues:
        lines.append(QUALITY_LEGEND)
    lines.append(f"\n{DISCLAIMER}")
    return "\n".join(lines)
