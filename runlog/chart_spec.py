"""What the weekly risk chart shows, without pandas or matplotlib: its constants and data.

:mod:`runlog.chart` computes a :class:`ChartData` from the weekly table, the runs and their
flags (pandas); :mod:`runlog.chart_draw` draws it (numpy and matplotlib only). Keeping the
two apart lets the CLI draw in a helper process that loads matplotlib while the main process
loads pandas and computes the data (see :mod:`runlog.chart_helper`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runlog.errors import InputError

if TYPE_CHECKING:  # numpy loads with the data, not with this module
    import numpy as np

#: Output formats by file suffix.
FORMATS: dict[str, str] = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
#: Figure size [inch] and PNG resolution [dots per inch].
FIG_SIZE_IN = (11.0, 5.5)
#: Plot area within the figure (fractions): room for the two-line title, the right-hand ACWR
#: axis label and the three-column legend below the date axis.
MARGINS = {"left": 0.06, "right": 0.935, "top": 0.885, "bottom": 0.215}
DPI = 120
#: zlib level of the PNG file: 1 writes it ≈ 20 ms faster than Pillow's default (6), for a
#: file ≈ 10 % larger (≈ 100 kB for a year of weeks); the image is the same.
PNG_COMPRESS_LEVEL = 1
#: Bar colours by the week's highest knee-or-cramp level (colour-blind-safe-ish traffic light).
LEVEL_COLOURS: dict[str, str] = {
    "low": "#4caf50",        # green
    "moderate": "#f5a623",   # amber
    "high": "#d0021b",       # red
}
NOT_ASSESSED_COLOUR = "#9e9e9e"
ACWR_COLOUR = "#1f4e9c"
BAND_COLOUR = "#6fa8dc"
MARKER_COLOUR = "#7a0010"
#: Days in a local week (as :data:`runlog.weekly.WEEK_DAYS`; that module needs pandas).
WEEK_DAYS = 7
#: Bars fill this fraction of the 7-day week so neighbouring weeks stay apart.
BAR_WIDTH_DAYS = 6.0
#: Step between the ticks of the ACWR axis [ratio]: every 0.5 (0, 0.5, 1, ...) labels the
#: axis as clearly as matplotlib's default 0.25 with half the tick labels to draw.
ACWR_TICK_STEP = 0.5
#: The markers of high-risk runs sit above the week's bar by this fraction of the y range.
MARKER_GAP_FRAC = 0.06
#: Default chart window of the CLI: this many weeks up to the last week with runs.
DEFAULT_CHART_WEEKS = 52
#: At most this many rule ids in one marker's annotation.
MAX_RULES_SHOWN = 2
ACWR_LABEL = "training trend, not an injury predictor"
#: The shaded 0.8–1.3 band: Gabbett's "sweet spot" comes from team sports and is not proven
#: for runners (RULES.md L3, §9), so its label must not read as a target.
ACWR_BAND_LABEL = "team sports (Gabbett 2016), unproven in runners: not a target"
#: Shown when no week has an ACWR: each NaN has one of these two causes (runlog.weekly).
ACWR_NOT_SHOWN = ("ACWR not shown: under 28 days of history, or no running in the 3 weeks "
                  "before the last 7 days")
DISCLAIMER = ("Not medical advice: colours are relative flags from population studies, "
              "not your probability of injury or cramp.")


def check_format(path: str | Path) -> str:
    """The matplotlib format for ``path``'s suffix, or InputError naming the suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        shown = suffix or "(none)"
        raise InputError(f"unsupported chart format {shown!r}: use .png, .svg or .pdf",
                         path=str(path))
    return FORMATS[suffix]


@dataclass(frozen=True)
class ChartData:
    """Everything the chart draws, as plain arrays (picklable without pandas).

    One element per week shown (oldest first) in the ``week_*`` arrays, one per high-risk
    marker (by day, then run id) in the ``marker_*`` ones.
    """

    week_start: np.ndarray        # datetime64[ns]: Monday 00:00 local
    week_runs: np.ndarray         # int64: runs that week (0 = no bar)
    week_km: np.ndarray           # float64: distance [km], NaN without runs
    week_acwr: np.ndarray         # float64: ACWR at the week's end [ratio], NaN when none
    week_level: tuple[str | None, ...]  # "low" | "moderate" | "high", None = not assessed
    marker_day: np.ndarray        # datetime64[ns]: the run's local day, 00:00
    marker_base_km: np.ndarray    # float64: the height of its week's bar [km] (0 when none)
    marker_stack: np.ndarray      # int64: 0 for a week's first marker, 1 for the next, ...
    marker_run_id: tuple[str, ...]
    marker_rules: tuple[str, ...]  # "rule_a, rule_b": the rule ids behind the high level
    title_period: str             # the title's period ('' when no week is shown)
