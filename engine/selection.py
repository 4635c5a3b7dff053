"""The first random of double random: which declarations get inspected, and why.

A declaration is selected through two independent channels:
- random: a draw compared with the pure random ratio r, taken over *all* declarations whatever
  the rules say (so the random sample estimates compliance of the whole population), scaled by the
  enterprise's credit class (advanced certified 0.2x, dishonest at least 0.8 absolute);
- targeted: a risk rule fired, and its own sampling draw fell under the rule's sampling rate.
Every number compared is kept in the Decision, so an auditor can replay it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.declarations import CreditClass, Declaration, Enterprise, InspectionType
from engine.randomness import Draws
from engine.rules import RuleSet

class SelectionPolicy(BaseModel):
    """The sampling percentages policy staff set; defaults follow the customs credit measures."""

    model_config = ConfigDict(extra="forbid")

    random_ratio: float = Field(default=0.03, ge=0, le=1)
    credit_multipliers: dict[CreditClass, float] = {
        CreditClass.advanced_certified: 0.2, CreditClass.general_certified: 0.5,
        CreditClass.general: 1.0, CreditClass.dishonest: 1.0}
    credit_floors: dict[CreditClass, float] = {CreditClass.dishonest: 0.8}
    rule_sampling: dict[str, float] = Field(default={}, description="rule id -> rate, overrides the file")
    random_inspection: InspectionType = InspectionType.physical

    def random_threshold(self, credit: CreditClass) -> float:
        """The probability that the random channel picks a declaration of this credit class."""
        scaled = self.random_ratio * self.credit_multipliers.get(credit, 1.0)
        return min(1.0, max(scaled, self.credit_floors.get(credit, 0.0)))


@dataclass(frozen=True)
class Decision:
    """Everything needed to explain and replay one selection."""

    declaration_id: str
    selected: bool
    channel: str  # random | targeted | both | none
    rules: list[str]  # every active rule that matched
    sampled_rules: list[str]  # the matched rules whose sampling draw selected the declaration
    random_draw: float
    random_threshold: float
    rule_draws: dict[str, list[float]] = field(default_factory=dict)  # rule id -> [draw, rate]
    inclusion_probability: float = 0.0
    inspection_type: str | None = None
    credit_class: str = CreditClass.general.value
    rules_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Selector:
    """Rules + policy + a source of draws: `decide(declaration, enterprise) -> Decision`."""

    def __init__(self, rules: RuleSet, policy: SelectionPolicy, draws: Draws):
        self.rules, self.policy, self.draws = rules, policy, draws

    def decide(self, declaration: Declaration, enterprise: Enterprise) -> Decision:
        fired = self.rules.evaluate(declaration, enterprise)
        return self.decide_fired(declaration.id, enterprise.credit_class, fired)

    def decide_fired(self, declaration_id: str, credit: CreditClass, fired: list[str]) -> Decision:
        """The decision once the rules have spoken; the simulation calls this with vectorised hits."""
        threshold = self.policy.random_threshold(credit)
        u = self.draws.uniform(declaration_id, "random")  # drawn for every declaration: CRN
        rule_draws, sampled = {}, []
        for rule_id in fired:
            rate = self.sampling_rate(rule_id)
            v = 0.0 if rate >= 1 else self.draws.uniform(f"{declaration_id}/{rule_id}", "rule_sampling")
            rule_draws[rule_id] = [v, rate]
            if v < rate:
                sampled.append(rule_id)
        return _decision(declaration_id, credit, fired, sampled, u, threshold, rule_draws,
                         self._inspection(sampled, u < threshold), self.rules.version)

    def sampling_rate(self, rule_id: str) -> float:
        return self.policy.rule_sampling.get(rule_id, self.rules.by_id[rule_id].sampling_rate)

    def _inspection(self, sampled: list[str], random_hit: bool) -> InspectionType | None:
        types = [self.rules.by_id[r].inspection for r in sampled]
        if random_hit:
            types.append(self.policy.random_inspection)
        return max(types, key=lambda t: t.intensity) if types else None


def _decision(declaration_id, credit, fired, sampled, u, threshold, rule_draws, inspection, version):
    random_hit, targeted = u < threshold, bool(sampled)
    channel = {(True, True): "both", (True, False): "random",
               (False, True): "targeted", (False, False): "none"}[(random_hit, targeted)]
    miss = (1 - threshold) * math.prod(1 - rate for _, rate in rule_draws.values())
    return Decision(
        declaration_id=declaration_id, selected=random_hit or targeted, channel=channel,
        rules=list(fired), sampled_rules=sampled, random_draw=u, random_threshold=threshold,
        rule_draws=rule_draws, inclusion_probability=1 - miss,
        inspection_type=inspection.value if inspection else None,
        credit_class=CreditClass(credit).value, rules_version=version)
