"""Replaying the audit log: recompute every logged selection decision from its logged inputs.

For each selection record: the rules file must have the logged version; the rules are evaluated on
the logged declaration and enterprise; the threshold is recomputed from the logged policy; with the
draw key, every draw is recomputed from the declaration id, and without it the logged draws are used
(then only the decision's consistency with its own draws can be checked). A record's claims about
itself are never trusted: with a key, a record saying its draws were not keyed is a mismatch (the
live engine draws only keyed: `select`, the step commands and `serve` all use `KeyedDraws`), so a
forged selection appended with a correct hash, made-up draws and that flag is caught; a record
missing what a decision needs, or holding what no declaration can, is a mismatch, never a crash. With an
expected rate, each office's pacer is rebuilt along the log exactly as the live office rebuilds it
(from its earlier decisions, whenever the policy changes), so the score cutoffs are recomputed too.
A decision ranked by a learned score is replayed with its model file (`score`, whose fingerprint
must be the one the decision names): its inputs are rebuilt from the logged declaration and the
importer's record it logged (what the office knew then), and the probability, the reasons and the
decision are recomputed from them. Any difference from the logged decision is a mismatch.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from engine.audit import AuditLog
from engine.declarations import Enterprise, parse_declaration
from engine.errors import InputError
from engine.randomness import KeyedDraws
from engine.rules import RuleSet
from engine.score import FIRM, LearnedScore
from engine.selection import Decision, Pacers, SelectionPolicy, Selector

_ABSENT = "(absent)"  # what a field missing from a record is shown as


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
        if purpose == "capacity":
            return self.decision.get("capacity_draw", 1.0)
        return self.decision["rule_draws"][declaration_id.rsplit("/", 1)[1]][0]


def replay(
    log: AuditLog,
    rules: RuleSet | None = None,
    key: KeyedDraws | None = None,
    score: LearnedScore | None = None,
) -> tuple[int, list[Mismatch]]:
    """(selection records replayed, mismatches found). Without `rules`, each decision is replayed with
    the rules text the log itself recorded for its version (`rules_loaded` records, from the service);
    `score`: the model file of the decisions a learned score ranked."""
    logged = {} if rules is not None else logged_rules(log)
    mismatches: list[Mismatch] = []
    count, pacing = 0, _Pacing()
    for record in log.records("selection"):
        count += 1
        try:
            mismatches += _replay_record(record, rules, logged, key, pacing, score)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, InputError) as err:
            mismatches.append(_malformed(record["seq"], record["payload"], err))
    return count, mismatches


def _replay_record(
    record: dict,
    rules: RuleSet | None,
    logged: dict[str, RuleSet],
    key: KeyedDraws | None,
    pacing: _Pacing,
    score: LearnedScore | None,
) -> list[Mismatch]:
    payload = record["payload"]
    version = payload["decision"]["rules_version"]
    use = rules if rules is not None else logged.get(version)
    if use is None:
        found = [
            Mismatch(
                record["seq"],
                payload["decision"]["declaration_id"],
                "rules_version",
                version,
                "no rules text for this version in the log",
            )
        ]
    else:
        found = _replay_one(record["seq"], payload, use, key, pacing, score)
    pacing.decided(payload)
    return found


def _malformed(seq: int, payload: Any, err: Exception) -> Mismatch:
    decision = payload.get("decision") if isinstance(payload, dict) else None
    did = decision.get("declaration_id", "?") if isinstance(decision, dict) else "?"
    reason = str(err) if isinstance(err, InputError) else f"{type(err).__name__}: {err}"
    return Mismatch(seq, str(did), "record", "malformed", f"cannot be replayed ({reason})")


class _Pacing:
    """The offices' pacers along the log, rebuilt from each office's earlier decisions whenever the
    policy changes, as `Office` rebuilds them."""

    def __init__(self):
        self.pacers, self.policy = Pacers(), None
        self.count: dict[str, int] = defaultdict(int)
        self.recent: dict[str, deque] = defaultdict(lambda: deque(maxlen=100_000))

    def before(self, payload: dict, policy: SelectionPolicy) -> Pacers:
        if policy != self.policy:
            self.pacers, self.policy = Pacers(), policy
        office = payload["declaration"].get("customs_office", "")
        if policy.paced and office not in self.pacers.by_office:
            recent = list(self.recent[office])[-policy.rate_window :]
            self.pacers.restore(policy, office, self.count[office], recent)
        return self.pacers

    def decided(self, payload: dict) -> None:
        office = payload["declaration"].get("customs_office", "")
        self.count[office] += 1
        self.recent[office].append(payload["decision"])


def logged_rules(log: AuditLog) -> dict[str, RuleSet]:
    out = {}
    for record in log.records("rules_loaded"):
        payload = record["payload"]
        out[payload["version"]] = RuleSet.from_text(payload["content"], f"audit record {record['seq']}")
    return out


def _wrong_model(learned: Any, score: LearnedScore | None) -> tuple[object, str] | None:
    """(what the decision names, why it cannot be replayed) when the model file is missing or another."""
    named = learned.get("model") if isinstance(learned, dict) else _ABSENT
    if score is None:
        return named, "ranked by a learned score: give its model file (audit replay --model FILE)"
    if named != score.version:
        return named, f"the model file given is {score.version}"
    return None


def _replay_one(
    seq: int,
    payload: dict,
    rules: RuleSet,
    key: KeyedDraws | None,
    pacing: _Pacing,
    score: LearnedScore | None,
) -> list[Mismatch]:
    logged = payload["decision"]
    did = logged["declaration_id"]
    if logged["rules_version"] != rules.version:
        return [Mismatch(seq, did, "rules_version", logged["rules_version"], rules.version)]
    declaration = parse_declaration(payload["declaration"], f"audit record {seq}")
    firm = Enterprise.model_validate(payload["enterprise"])
    if key is not None and payload.get("verifiable_draws") is not True:  # the record's word is not taken
        return [
            Mismatch(
                seq,
                did,
                "verifiable_draws",
                payload.get("verifiable_draws"),
                "the office draws with its key; this record's draws cannot be recomputed",
            )
        ]
    draws = key if key is not None else _LoggedDraws(logged)
    policy = SelectionPolicy.model_validate(payload["policy"])
    if policy.model is not None:
        wrong = _wrong_model(logged.get("learned"), score)
        if wrong:
            return [Mismatch(seq, did, "learned.model", *wrong)]
    use = score if policy.model is not None else None
    selector = Selector(rules, policy, draws, pacing.before(payload, policy), use)
    record = {k: logged["learned"]["inputs"][k] for k in FIRM} if use else None
    again: Decision = selector.decide(declaration, firm, record)
    redone = again.to_dict()
    # every field, both ways: a record cannot escape a check by leaving a field out or adding one
    return [
        Mismatch(seq, did, f, logged.get(f, _ABSENT), redone.get(f, _ABSENT))
        for f in sorted(set(logged) | set(redone))
        if logged.get(f, _ABSENT) != redone.get(f, _ABSENT)
    ]
