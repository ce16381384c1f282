"""rule_frame's building blocks, pinned to the pandas behaviour they replace."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from runlog.rules.base import level_array, rule_frame, text_array

TEXTS = st.one_of(st.sampled_from(["", "No HR — intensity from pace", "% HRR", "°C"]),
                  st.text(max_size=5), st.none(), st.just(np.nan))


@given(st.lists(TEXTS, max_size=8))
@settings(max_examples=200, deadline=None)
def test_text_array_is_the_column_pandas_infers(texts):
    arr = np.empty(len(texts), dtype=object)
    arr[:] = texts
    want = pd.DataFrame({"a": arr})["a"]
    got = pd.Series(text_array(arr, len(arr)))
    pd.testing.assert_series_equal(got, want, check_exact=True, check_names=False)


@given(st.one_of(TEXTS, st.integers(0, 3)), st.integers(0, 4))
def test_text_array_broadcasts_a_scalar(text, n):
    want = pd.DataFrame({"a": np.broadcast_to(np.asarray(text, dtype=object), (n,)).copy()})
    pd.testing.assert_series_equal(pd.Series(text_array(text, n)), want["a"], check_exact=True,
                                   check_names=False)


def test_text_array_leaves_non_strings_to_pandas():
    mixed = np.array(["a", 1], dtype=object)
    assert pd.Series(text_array(mixed, 2)).dtype == pd.DataFrame({"a": mixed})["a"].dtype


@given(st.lists(st.sampled_from([np.nan, 0.0, 1.0, 2.0, 0.5, 1.5, 2.5, -0.4, 1.0000001]),
                max_size=10))
def test_level_array_is_pandas_rounding_to_int8(levels):
    x = np.array(levels, dtype="float64")
    want = pd.array(pd.Series(x).round(), dtype="Int8")
    pd.testing.assert_extension_array_equal(level_array(x), want)


def test_rule_frame_dtypes():
    out = rule_frame(pd.Index(["a", "b"]), [np.nan, 1.0], 2.0, [1.0, np.nan], "%",
                     np.array(["", "msg"], dtype=object))
    assert out.dtypes.astype(str).to_dict() == {
        "level": "Int8", "value": "float64", "threshold": "float64", "unit": "str",
        "message": "str", "note": "str"}
    assert out["level"].isna().tolist() == [True, False] and out["note"].tolist() == ["", ""]


def test_registry_loads_on_first_use_and_thresholds_need_no_pandas() -> None:
    import subprocess
    import sys

    code = ("import sys, runlog.rules.thresholds, runlog.rules as r\n"
            "assert 'pandas' not in sys.modules, 'thresholds loaded pandas'\n"
            "assert r.RULE_IDS[0] == 'session_spike' and 'pandas' not in sys.modules\n"
            "reg = r.REGISTRY\n"
            "assert list(reg) == list(r.RULE_IDS) and r.REGISTRY is reg\n"
            "assert isinstance(reg['acwr'], r.RuleInfo)\n"
            "try:\n    r.NOT_THERE\nexcept AttributeError:\n    pass\n"
            "else:\n    raise AssertionError('no AttributeError')\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_rule_has_its_rules_md_evidence_grade() -> None:
    """RuleInfo.grade for every rule, exactly as RULES.md grades it (A/B/C/I; two parts
    graded apart in K2 and K3; H1 and D1 'shown' = I; K4 has no grade there)."""
    from runlog.rules import REGISTRY, RULE_IDS
    from runlog.rules.base import RuleInfo

    assert {r: REGISTRY[r].grade for r in RULE_IDS} == {
        "session_spike": "A", "weekly_jump": "B", "acwr": "I", "restart": "C",
        "new_runner": "B", "no_warmup": "C", "abrupt_finish": "I", "heat_index": "I",
        "heat": "C", "wind_chill": "I", "cold": "C", "fluid_deficit": "C",
        "sodium_no_electrolytes": "C", "low_cadence": "B", "descent_spike": "B knee, C cramp",
        "shoes": "C footwear type, I mileage", "knee_pain_recent": "not graded",
        "longer_than_usual": "B", "harder_than_usual": "B", "cramp_history": "A"}
    # the weight follows the grade (RULES.md: A 3, B 2, C 1) for every scored rule
    weight = {"A": 3, "B": 2, "C": 1}
    for rule_id in ("session_spike", "weekly_jump", "restart", "new_runner", "low_cadence",
                    "longer_than_usual", "harder_than_usual", "heat", "cold", "fluid_deficit",
                    "sodium_no_electrolytes"):
        info = REGISTRY[rule_id]
        assert list(info.feeds.values()) == [weight[info.grade]], rule_id
    # a module may pass its grade; otherwise the table fills it
    assert RuleInfo("heat", "H2", {}, "cramp", "s", grade="B").grade == "B"
    assert RuleInfo("heat", "H2", {}, "cramp", "s").grade == "C"
