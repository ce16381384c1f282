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

Runs too damaged to assess (``quality_ok`` False) stay out of every rule and baseline. A rule
that takes ``quality_ok`` leaves them out of its history and does not assess them (level
``<NA>``, note ``load.QUALITY_NOTE``); risk.py (``risk.blocks``) does the same for every
rule's result, so a rule without a quality input (weather, sweat, shoes, knee pain) needs
none. A rule must also work when no run at all is good.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

NONE, MODERATE, HIGH = 0, 1, 2
RESULT_COLUMNS = ["level", "value", "threshold", "unit", "message", "note"]


#: Evidence grade of each rule exactly as RULES.md gives it: A large prospective cohort with
#: effect size, or official formula/consensus threshold; B smaller or borderline cohort, or
#: consistent lab biomechanics; C expert opinion, mechanism only, conflicting, or seed
#: article only; I shown, never scored. Two grades where RULES.md grades two parts; H1 and
#: D1 are "shown" in its table (= I); K4, a modifier, has none there.
EVIDENCE_GRADES: dict[str, str] = {
    "session_spike": "A", "weekly_jump": "B", "acwr": "I", "restart": "C", "new_runner": "B",
    "no_warmup": "C", "abrupt_finish": "I", "heat_index": "I", "heat": "C",
    "wind_chill": "I", "cold": "C", "fluid_deficit": "C", "sodium_no_electrolytes": "C",
    "low_cadence": "B", "descent_spike": "B knee, C cramp",
    "shoes": "C footwear type, I mileage", "knee_pain_recent": "not graded",
    "longer_than_usual": "B", "harder_than_usual": "B", "cramp_history": "A",
}
#: What each grade letter means, in a runner's words (RULES.md "Grade → weight").
GRADE_MEANINGS: dict[str, str] = {
    "A": "large prospective cohort or official formula",
    "B": "smaller cohort or consistent lab biomechanics",
    "C": "expert opinion, mechanism only or conflicting evidence",
    "I": "shown, never scored",
}


@dataclass(frozen=True)
class RuleInfo:
    """Static facts about a rule, from RULES.md's table.

    ``feeds`` maps each risk the rule scores into ("knee", "cramp") to its weight w (grade
    A 3, B 2, C 1); display-only rules have an empty ``feeds`` and ``kind`` "info" or "safety".
    ``grade`` is the rule's evidence grade as RULES.md gives it (see :data:`EVIDENCE_GRADES`,
    which fills it when a module does not pass it).
    """

    rule_id: str
    section: str
    feeds: dict[str, int]
    kind: str            # "knee" | "cramp" | "knee+cramp" | "safety" | "info" | "modifier"
    source: str          # short citation shown with the flag
    max_level: int = HIGH
    grade: str = field(default="")   # evidence grade: "A", "B", "C", "I", or two of them

    def __post_init__(self) -> None:
        if not self.grade:
            object.__setattr__(self, "grade", EVIDENCE_GRADES[self.rule_id])


#: The dtype pandas infers for Python strings (pandas 3: ``str``, backed by Arrow).
STR_DTYPE = pd.Series([""]).dtype


def str_array(data: pa.Array):
    """An Arrow large_string array as a pandas :data:`STR_DTYPE` array (no copy, no checks)."""
    if getattr(STR_DTYPE, "storage", None) == "pyarrow":
        return pd.arrays.ArrowStringArray(data, dtype=STR_DTYPE)
    return pd.array(data, dtype=STR_DTYPE)


def text_array(x, n: int):
    """``n`` texts (or one broadcast) as the column pandas would infer for them.

    Built by Arrow when every element is a string or missing: pandas' own inference from
    Python objects costs about twice as much, 60 times per assessment. Anything else
    (no string at all, other objects) goes through pandas' inference unchanged.
    """
    arr = np.asarray(x, dtype=object)
    try:
        data = (pa.repeat(pa.scalar(arr.item(), type=pa.large_string()), n) if arr.ndim == 0
                else pa.array(arr, type=pa.large_string(), from_pandas=True))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        data = None
    if data is None or data.null_count == len(data):
        return np.broadcast_to(arr, (n,)).copy() if arr.ndim == 0 else arr
    return str_array(data)


def level_array(level: np.ndarray) -> pd.arrays.IntegerArray:
    """Levels rounded to Int8, NaN → <NA>: ``pd.array(np.round(level), dtype="Int8")`` for
    levels 0–2, without its per-call checks."""
    level = np.asarray(level, dtype="float64")
    missing = np.isnan(level)
    return pd.arrays.IntegerArray(np.where(missing, 0, np.round(level)).astype("int8"), missing)


def rule_frame(index: pd.Index, level, value, threshold, unit, message, note=None) -> pd.DataFrame:
    """Assemble a rule result frame; scalars broadcast, ``level`` may hold NaN for not assessed."""
    n = len(index)

    def col(x, dtype=object):
        arr = np.asarray(x, dtype=dtype)
        return np.broadcast_to(arr, (n,)).copy() if arr.ndim == 0 else arr

    return pd.DataFrame(
        {
            "level": level_array(col(level, "float64")),
            "value": col(value, "float64"),
            "threshold": col(threshold, "float64"),
            "unit": text_array(unit, n),
            "message": text_array("" if message is None else message, n),
            "note": text_array("" if note is None else note, n),
        },
        index=index,
    )
