"""Deciding a batch of simulated declarations the way the engine decides one.

The model hands over one hour of arrivals at a time. The rules are the live rules file, evaluated
either vectorised (the default: comparisons on declaration fields are computed once for the whole
horizon, those on `enterprise.*` fields per batch from the current standing) or through
durable-rules itself, declaration by declaration (`backend="durable"`, slow, for checking). Then the
engine's own selection arithmetic (`engine.selection.choose`: random channel, per-rule sampling,
inspection type, inclusion probability) over the batch, and the instruction (intelligence) channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.batch import BatchRules
from engine.randomness import stream_generator
from engine.rules import RuleSet
from engine.selection import INSPECTION_TYPES, Pacers, PolicyTable, SelectionPolicy, choose, lanes
from engine.standing import Standing
from simulation.population import Declarations
from simulation.scenario import Scenario


@dataclass
class Batch:
    """The decisions for declarations lo..hi (arrival order)."""

    lo: int
    hi: int
    hits: np.ndarray  # declarations x rules: which rules matched
    random_hit: np.ndarray
    targeted: np.ndarray  # a matched rule's sampling draw selected it
    instructed: np.ndarray  # flagged by intelligence and not selected by the computer
    inspection: np.ndarray  # code into INSPECTION_TYPES, NOT_INSPECTED when not inspected
    threshold: np.ndarray  # the random channel's inclusion probability
    violating: np.ndarray
    credit: np.ndarray  # index into CREDIT_CLASSES: the class the decision used, whatever happens later
    credit_only: np.ndarray  # selected by the credit floor alone (the `credit` channel)
    lane: np.ndarray  # code into engine.selection.LANES, after the officers' orders

    @property
    def selected(self) -> np.ndarray:
        return self.random_hit | self.targeted | self.credit_only

    def fired(self, k: int, rule_ids: list[str]) -> list[str]:
        return [rule_ids[j] for j in np.flatnonzero(self.hits[k])]


class Screening:
    def __init__(self, scenario: Scenario, rules: RuleSet, decls: Declarations, backend: str = "vector"):
        if backend not in ("vector", "durable"):
            raise ValueError(f"rules backend is 'vector' or 'durable', not {backend!r}")
        self.rules, self.decls, self.backend = rules, decls, backend
        self.instruction = scenario.instruction
        self.instructed_type = INSPECTION_TYPES.index(scenario.inspection.instructed_type)
        self.start = pd.Timestamp(scenario.horizon.start)
        self.site_names = np.array([site.name for site in scenario.sites], dtype=object)
        self.day = decls.arrival_h / 24.0
        self.batch = BatchRules(rules, self._lodged())
        self.frame, self.firm_fields_used = self.batch.frame, self.batch.firm_fields_used
        self._policy_table: tuple[SelectionPolicy, PolicyTable] | None = None
        self.seed = scenario.seed
        self._sampling_draws: dict[int, np.ndarray] = {}
        self.pacers = Pacers()  # each site's online score cutoff, when the policy has an expected rate

    # ------------------------------------------------------------ static part, once per run

    def _lodged(self) -> dict:
        """What a simulated declaration lodges, as columns built on demand (building all of them costs
        seconds): the engine's batch rules derive the rest (hs_chapter, unit_value, ...) exactly as
        for one live declaration."""
        goods, n = self.decls.goods, len(self.decls)
        return {
            "customs_office": lambda: self.site_names[self.decls.site],
            "items": lambda: np.ones(n, np.int64),
            "declared_date": lambda: (self.start + pd.to_timedelta(np.floor(self.day), unit="D")).strftime(
                "%Y-%m-%d"
            ),
            "enterprise_id": lambda: "E" + pd.Series(self.decls.enterprise).astype(str).str.zfill(6),
            "id": lambda: "S" + pd.Series(np.arange(n)).astype(str).str.zfill(8),
            **{name: (lambda name=name: goods[name]) for name in goods.columns},
        }

    def _sampling_draw(self, k: int) -> np.ndarray:
        """Rule k's sampling draws, one sub-stream per rule (drawn the first time a rate < 1 needs it)."""
        if k not in self._sampling_draws:
            self._sampling_draws[k] = stream_generator(self.seed, "rule_sampling", k).random(len(self.decls))
        return self._sampling_draws[k]

    # ------------------------------------------------------------ one batch

    def screen(
        self,
        lo: int,
        hi: int,
        standing: Standing,
        policy: SelectionPolicy,
        instruction_rate: float,
        violating: np.ndarray,
    ) -> Batch:
        """The engine's selection arithmetic (`engine.selection.choose`) over one batch, then the
        instruction channel, which the simulation adds for the officers' intelligence."""
        firms = self.decls.enterprise[lo:hi]
        firm_fields = standing.fields(firms, self.day[lo:hi], self.firm_fields_used)
        hits = self._fire(lo, hi, firm_fields)  # declarations x rules
        table = self._table(policy)
        credit = standing.credit[firms].copy()  # results later in the hour may change the standing
        u_rules, pace = np.zeros(hits.shape), None
        if table.paced:
            pace = self.pacers.pace(
                policy, self.site_names[self.decls.site[lo:hi]], self.decls.u_capacity[lo:hi]
            )
        else:
            for k in np.flatnonzero(table.rule_rates(credit).min(axis=0, initial=1.0) < 1):
                u_rules[:, k] = self._sampling_draw(k)[lo:hi]
        chosen = choose(
            table, credit, hits, self.decls.u_random[lo:hi], u_rules, self.decls.u_credit[lo:hi], pace
        )
        flag_p = np.where(violating, min(1.0, instruction_rate * self.instruction.lift), instruction_rate)
        flag_p = (
            flag_p * table.multipliers[credit]
        )  # the credit measures bound the total rate, orders included
        instructed = (self.decls.u_instruction[lo:hi] < flag_p) & ~chosen.selected
        inspection = np.where(instructed, self.instructed_type, chosen.inspection)
        return Batch(
            lo,
            hi,
            hits,
            chosen.random_hit,
            chosen.targeted,
            instructed,
            inspection,
            chosen.threshold,
            violating,
            credit,
            chosen.credit_only,
            lanes(inspection, chosen.score, credit),
        )

    def _table(self, policy: SelectionPolicy) -> PolicyTable:
        """The policy as arrays, worked out once per policy (the adaptive controller changes it
        monthly), not once per batch."""
        if self._policy_table is None or self._policy_table[0] is not policy:
            self._policy_table = (policy, PolicyTable.of(policy, self.rules))
        return self._policy_table[1]

    def _fire(self, lo: int, hi: int, firm_fields: dict) -> np.ndarray:
        if self.backend == "durable":
            return self._fire_durable(lo, hi, firm_fields)
        return self.batch.fire(lo, hi, firm_fields)

    def _fire_durable(self, lo: int, hi: int, firm_fields: dict) -> np.ndarray:
        column = {r.id: j for j, r in enumerate(self.rules.rules)}
        out = np.zeros((hi - lo, len(column)), bool)
        for k, record in enumerate(self.records(lo, hi, firm_fields)):
            for rule_id in self.rules.evaluate_fields(record):
                out[k, column[rule_id]] = True
        return out

    def records(self, lo: int, hi: int, firm_fields: dict) -> list[dict]:
        """The flat per-declaration records the engine's rules read (as `engine.declarations.rule_fields`)."""
        rows = self.frame.iloc[lo:hi].to_dict("records")
        for k, row in enumerate(rows):
            for name, values in firm_fields.items():
                row[name] = values[k].item() if hasattr(values[k], "item") else values[k]
        return rows
