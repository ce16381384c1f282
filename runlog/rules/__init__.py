"""Risk rules, one pure function per rule (see RULES.md), and their registry.

:data:`REGISTRY` maps every rule id of RULES.md's table to its :class:`RuleInfo` (section,
weights per risk, kind, source). Thresholds live in :mod:`runlog.rules.thresholds`.

The rule modules (and pandas with them) load on first use of :data:`REGISTRY` or
:class:`RuleInfo`, not with this package, so constants such as
``runlog.rules.thresholds`` can be imported where pandas is not wanted (the chart's drawing
helper).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runlog.rules.base import RuleInfo

#: Rule ids in RULES.md's table order.
RULE_IDS: tuple[str, ...] = (
    "session_spike", "weekly_jump", "acwr", "restart", "new_runner", "no_warmup",
    "abrupt_finish", "heat_index", "heat", "wind_chill", "cold", "fluid_deficit",
    "sodium_no_electrolytes", "low_cadence", "descent_spike", "shoes", "knee_pain_recent",
    "longer_than_usual", "harder_than_usual", "cramp_history",
)


def _registry() -> dict[str, RuleInfo]:
    """rule id → RuleInfo, in RULES.md's order, from every rule module's ``RULES``."""
    from runlog.rules import cramp, environment, knee, load, sweat, warmup

    every = {info.rule_id: info for module in (load, warmup, environment, sweat, knee, cramp)
             for info in module.RULES}
    return {rule_id: every[rule_id] for rule_id in RULE_IDS}


def rule_grade(rule_id: object) -> str | None:
    """The evidence grade RULES.md gives ``rule_id`` (:attr:`RuleInfo.grade`: "A", "B", "C",
    "I", two graded parts, or "not graded"); None for an id that is not a rule."""
    registry = globals().get("REGISTRY") or __getattr__("REGISTRY")
    info = registry.get(str(rule_id))
    return None if info is None else info.grade


def __getattr__(name: str) -> Any:
    # Lazy: built once, then an ordinary module attribute.
    if name == "REGISTRY":
        globals()["REGISTRY"] = registry = _registry()
        return registry
    if name == "RuleInfo":
        from runlog.rules.base import RuleInfo

        return RuleInfo
    raise AttributeError(f"module 'runlog.rules' has no attribute {name!r}")


__all__ = ["REGISTRY", "RULE_IDS", "RuleInfo", "rule_grade"]
