"""Replaying the audit log: recompute every logged selection decision from its logged inputs.

For each selection record: the rules file must have the logged version; the rules are evaluated on
the logged declaration and enterprise; the threshold is recomputed from the logged policy; with the
draw key, each draw is recomputed from the declaration id, and without it the logged draws are used
(seeded draws depend on order, so only the comparison against them can be checked). Any difference
from the logged decision is a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.audit import AuditLog
from engine.declarations import Enterprise, parse_declaration
from engine.randomness import KeyedDraws
from engine.rules import RuleSet
from engine.selection import Decision, SelectionPolicy, Selector

COMPARED = ("selected", "channel", "rules", "sampled_rules", "random_draw", "random_threshold", "credit_draw",
            "credit_threshold",
            "rule_draws", "inspection_type", "inclusion_probability")


@dataclass(frozen=True)
class Mismatch:
    seq: int
    declaration_id: str
    field: str
    logged: object
    replayed: object


class _LoggedDraws:
    """Serves the draws a decision logged, for logs made with seeded (non-verifiable) draws."""

    verifiable = False

    def __init__(self, decision: dict):
        self.decision = decision

    def uniform(self, declaration_id: str, purpose: str) -> float:
        if purpose == "random":
            return self.decision["random_draw"]
        if purpose == "credit":
            return self.decision.get("credit_draw", 1.0)  # logs from before the credit channel had none
        return self.decision["rule_draws"][declaration_id.rsplit("/", 1)[1]][0]


def replay(log: AuditLog, rules: RuleSet | None = None, key: KeyedDraws | None = None) -> tuple[int, list[Mismatch]]:
    """(selection records replayed, mismatches found). Without `rules`, each decision is replayed with
    the rules text the log itself recorded for its version (`rules_loaded` records, from the service)."""
    logged = {} if rules is not None else logged_rules(log)
    mismatches: list[Mismatch] = []
    count = 0
    for record in log.records("selection"):
        count += 1
        version = record["payload"]["decision"]["rules_version"]
        use = rules if rules is not None else logged.get(version)
        if use is None:
            mismatches.append(Mismatch(record["seq"], record["payload"]["decision"]["declaration_id"],
                                       "rules_version", version, "no rules text for this version in the log"))
            continue
        mismatches += _replay_one(record["seq"], record["payload"], use, key)
    return count, mismatches


def logged_rules(log: AuditLog) -> dict[str, RuleSet]:
    out = {}
    for record in log.records("rules_loaded"):
        payload = record["payload"]
        out[payload["version"]] = RuleSet.from_text(payload["content"], f"audit record {record['seq']}")
    return out


def _replay_one(seq: int, payload: dict, rules: RuleSet, key: KeyedDraws | None) -> list[Mismatch]:
    logged = payload["decision"]
    did = logged["declaration_id"]
    if logged["rules_version"] != rules.version:
        return [Mismatch(seq, did, "rules_version", logged["rules_version"], rules.version)]
    declaration = parse_declaration(payload["declaration"], f"audit record {seq}")
    firm = Enterprise.model_validate(payload["enterprise"])
    draws = key if key is not None and payload["verifiable_draws"] else _LoggedDraws(logged)
    selector = Selector(rules, SelectionPolicy.model_validate(payload["policy"]), draws)
    again: Decision = selector.decide(declaration, firm)
    redone = again.to_dict()
    return [Mismatch(seq, did, f, logged.get(f), redone[f]) for f in COMPARED if logged.get(f) != redone[f]]
