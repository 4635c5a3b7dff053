"""The rules over many declarations at once: the engine's second speed, for the simulation's hourly
batches and for replaying a real log.

A frame holds, per declaration, the rule fields that never change (lodged fields and those derived
from them by `engine.declarations.DERIVED`, exactly as for one live declaration). Every subtree of a
condition that reads only those is computed once over the whole frame; the rest (`enterprise.*`,
the standing at decision time) is computed per batch from the arrays the caller passes. pandas and
numpy are imported here only: the live engine starts without them. `BatchDecider` is the batch
decide loop both share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from engine import conditions
from engine.declarations import DERIVED, ENTERPRISE_FIELDS
from engine.randomness import stream_generator
from engine.rules import RuleSet
from engine.selection import Choices, Pacers, PolicyTable, SelectionPolicy, choose, lanes
from engine.standing import Standing


def rule_frame(lodged: Mapping[str, Callable[[], Any]], used: set[str]) -> pd.DataFrame:
    """The static rule fields `used` (plus declared_date, which dated rules read), each built from
    the lodged columns (callables, so only the needed ones are built) or derived from them."""

    def column(name: str):
        if name in DERIVED:
            derivation = DERIVED[name]
            return derivation(*(column(i) for i in derivation.inputs))
        if name not in lodged:
            raise KeyError(f"no column for the rule field {name!r}")
        return lodged[name]()

    needed = {f for f in used if f not in ENTERPRISE_FIELDS} | {"declared_date"}
    return pd.DataFrame({f: column(f) for f in sorted(needed)})


class BatchRules:
    """A rules file over a frame of declarations (rows in the caller's order)."""

    def __init__(self, rules: RuleSet, lodged: Mapping[str, Callable[[], Any]]):
        self.rules = rules
        self.used = rules.fields_used
        self.firm_fields_used = sorted(f for f in self.used if f.startswith("enterprise."))
        self.frame = rule_frame(lodged, self.used)
        self._static = self._static_subtrees()
        self._active = {
            rule.id: rule.active_mask(self.frame["declared_date"])
            for rule in rules.rules
            if rule.valid_from or rule.valid_until
        }

    def _static_subtrees(self) -> dict[int, np.ndarray]:
        """Masks over the whole frame for every subtree that reads no `enterprise.*` field."""
        out: dict[int, np.ndarray] = {}

        def visit(node) -> bool:  # True when the subtree is static
            children = getattr(node, "children", ())
            static = (
                all([visit(c) for c in children]) if children else not node.field.startswith("enterprise.")
            )
            if static:
                out[id(node)] = conditions.to_mask(node, self.frame)
            return static

        for rule in self.rules.rules:
            visit(rule.condition)
        return out

    def named(self) -> np.ndarray:
        """Rows a rule matches by what the declaration lodges alone (goods, origin, value, office: no
        `enterprise.*` field), on the days it is in force: what a firm can learn the rules aim at and
        route its violations around."""
        out = np.zeros(len(self.frame), bool)
        for rule in self.rules.rules:
            whole = self._static.get(id(rule.condition))
            if whole is not None:
                out |= whole & self._active.get(rule.id, True)
        return out

    def fire(self, lo: int, hi: int, firm_fields: Mapping[str, np.ndarray]) -> np.ndarray:
        """Rows lo..hi x rules: which active rules match, given the `enterprise.*` fields of those rows."""

        def precomputed(node):
            whole = self._static.get(id(node))
            return None if whole is None else whole[lo:hi]

        columns = []
        for rule in self.rules.rules:
            hit = conditions.to_mask(rule.condition, firm_fields, precomputed)
            if rule.id in self._active:
                hit = hit & self._active[rule.id][lo:hi]
            columns.append(hit)
        return np.column_stack(columns) if columns else np.zeros((hi - lo, 0), bool)


@dataclass
class Decided:
    """A batch's decisions (rows lo..hi): the rules that fired, the selection arithmetic's answer,
    the credit class it used (later results may change the standing) and the lane."""

    hits: np.ndarray  # rows x rules
    chosen: Choices
    credit: np.ndarray  # codes into CREDIT_CLASSES
    lane: np.ndarray  # codes into LANES


class BatchDecider:
    """The batch decide loop, once for the simulation's hourly batches and for replaying a log a day
    at a time: the rules over the batch (the standing's `enterprise.*` fields read at decision
    time), then `choose` with the policy's table, the offices' pacers and the draws.

    The channels' draws (`random`, `credit`, `capacity`: one per declaration) are the caller's: the
    simulation draws them with its population, as common random numbers across policies; replay
    draws them from its seed (`seeded_draws`). Rule k's sampling draws come from the seed's
    `rule_sampling` sub-stream k, drawn the first time a policy's scaled rate for rule k can fall
    under 1 (a draw under a rate of 1 always passes, so the others are never needed)."""

    def __init__(
        self,
        rules: RuleSet,
        lodged: Mapping[str, Callable[[], Any]],
        offices: np.ndarray,
        draws: Mapping[str, np.ndarray],
        seed: int,
        *sub: int,
    ):
        """`sub`: the rule-sampling streams' further numbers (the simulation's month: each month's
        declarations draw from their own)."""
        self.rules, self.offices, self.draws, self.seed, self.sub = rules, offices, draws, seed, sub
        self.batch = BatchRules(rules, lodged)
        self.fire = self.batch.fire  # a checking run may put durable-rules itself in its place
        self.pacers = Pacers()  # each office's online score cutoff, when the policy has an expected rate
        self._policy_table: tuple[SelectionPolicy, PolicyTable] | None = None
        self._sampling: dict[int, np.ndarray] = {}

    def table(self, policy: SelectionPolicy) -> PolicyTable:
        """The policy as arrays, once per policy (an adaptive controller changes it), not per batch."""
        if self._policy_table is None or self._policy_table[0] is not policy:
            self._policy_table = (policy, PolicyTable.of(policy, self.rules))
        return self._policy_table[1]

    def decide(
        self,
        lo: int,
        hi: int,
        firms: np.ndarray,
        day: np.ndarray,
        standing: Standing,
        policy: SelectionPolicy,
        probability: np.ndarray | None = None,
    ) -> Decided:
        """Rows lo..hi, lodged by `firms` (codes into the standing) on day numbers `day`; with a
        learned score's `probability` where the policy names a model."""
        hits = self.fire(lo, hi, standing.fields(firms, day, self.batch.firm_fields_used))
        table, credit = self.table(policy), standing.credit[firms].copy()
        pace, u_rules = None, np.zeros(hits.shape)
        if table.paced:
            pace = self.pacers.pace(policy, self.offices[lo:hi], self.draws["capacity"][lo:hi])
        else:
            for k in np.flatnonzero(table.rates * table.multipliers.min() < 1):
                u_rules[:, k] = self._sampling_draw(int(k))[lo:hi]
        chosen = choose(
            table,
            credit,
            hits,
            self.draws["random"][lo:hi],
            u_rules,
            self.draws["credit"][lo:hi],
            pace,
            probability,
        )
        return Decided(hits, chosen, credit, lanes(chosen.inspection, chosen.score, credit))

    def _sampling_draw(self, k: int) -> np.ndarray:
        if k not in self._sampling:
            n = len(self.draws["random"])
            self._sampling[k] = stream_generator(self.seed, "rule_sampling", k, *self.sub).random(n)
        return self._sampling[k]


def seeded_draws(seed: int, n: int) -> dict[str, np.ndarray]:
    """The channels' draws for n declarations from a seed (replay), one sub-stream per channel."""
    return {p: stream_generator(seed, p).random(n) for p in ("random", "credit", "capacity")}
