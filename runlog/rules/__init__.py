"""Risk rules, one pure function per rule (see RULES.md), and their registry.

:data:`REGISTRY` maps every rule id of RULES.md's table to its :class:`RuleInfo` (section,
weights per risk, kind, source). Thresholds live in :mod:`runlog.rules.thresholds`.
"""

from __future__ import annotations

from runlog.rules import cramp, environment, knee, load, sweat, warmup
from runlog.rules.base import RuleInfo

#: Rule ids in RULES.md's table order.
RULE_IDS: tuple[str, ...] = (
    "session_spike", "weekly_jump", "acwr", "restart", "new_runner", "no_warmup",
    "abrupt_finish", "heat_index", "heat", "wind_chill", "cold", "fluid_deficit",
    "sodium_no_electrolytes", "low_cadence", "descent_spike", "shoes", "knee_pain_recent",
    "longer_than_usual", "harder_than_usual", "cramp_history",
)

_ALL = {info.rule_id: info for module in (load, warmup, environment, sweat, knee, cramp)
        for info in module.RULES}
#: rule id → RuleInfo, in RULES.md's order.
REGISTRY: dict[str, RuleInfo] = {rule_id: _ALL[rule_id] for rule_id in RULE_IDS}

__all__ = ["REGISTRY", "RULE_IDS", "RuleInfo"]
