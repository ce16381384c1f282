"""The convention every rule follows, so risk.py can combine them without knowing them.

A rule is a pure function over arrays/Series aligned with the runs being assessed (one element
per run) plus, where it compares with the past, the run history. It never prints and never reads
the store. It returns a :class:`pandas.DataFrame` built by :func:`rule_frame`, indexed like its
input, with these columns:

``level``      Int8: 0 none, 1 moderate, 2 high; ``<NA>`` = not assessed
``value``      float: the runner's measured number (NaN when not assessed)
``threshold``  float: the number it was compared with (the one crossed, else the nearest)
``unit``       str: unit of value and threshold ("%", "km", "°C", "min", ...)
``message``    str: one sentence for the runner, '' when level is 0 and nothing is worth saying
``note``       str: why not assessed ("No humidity — heat not assessed"), else ''

Each rule module declares, per rule, a :class:`RuleInfo` in its ``RULES`` list; risk.py reads
weights, which risk a rule feeds and its source from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

NONE, MODERATE, HIGH = 0, 1, 2
RESULT_COLUMNS = ["level", "value", "threshold", "unit", "message", "note"]


@dataclass(frozen=True)
class RuleInfo:
    """Static facts about a rule, from RULES.md's table.

    ``feeds`` maps each risk the rule scores into ("knee", "cramp") to its weight w (grade
    A 3, B 2, C 1); display-only rules have an empty ``feeds`` and ``kind`` "info" or "safety".
    """

    rule_id: str
    section: str
    feeds: dict[str, int]
    kind: str            # "knee" | "cramp" | "knee+cramp" | "safety" | "info" | "modifier"
    source: str          # short citation shown with the flag
    max_level: int = HIGH


def rule_frame(index: pd.Index, level, value, threshold, unit, message, note=None) -> pd.DataFrame:
    """Assemble a rule result frame; scalars broadcast, ``level`` may hold NaN for not assessed."""
    n = len(index)

    def col(x, dtype=object):
        arr = np.asarray(x, dtype=dtype)
        return np.broadcast_to(arr, (n,)).copy() if arr.ndim == 0 else arr

    lvl = pd.array(pd.Series(col(level, "float64"), index=index).round(), dtype="Int8")
    out = pd.DataFrame(
        {
            "level": lvl,
            "value": col(value, "float64"),
            "threshold": col(threshold, "float64"),
            "unit": col(unit),
            "message": col("" if message is None else message),
            "note": col("" if note is None else note),
        },
        index=index,
    )
    return out
