"""Deciding a batch of simulated declarations the way the engine decides one.

The model hands over one hour of arrivals at a time. The rules are the live rules file, evaluated
decided by the engine's batch decider (`engine.batch.BatchDecider`, the one replay uses): the rules
either vectorised (the default: comparisons on declaration fields are computed once for the whole
horizon, those on `enterprise.*` fields per batch from the current standing) or through
durable-rules itself, declaration by declaration (`backend="durable"`, slow, for checking), then
the engine's selection arithmetic. The simulation adds the instruction (intelligence) channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.batch import BatchDecider
from engine.rules import RuleSet
from engine.selection import INSPECTION_TYPES, SelectionPolicy, lanes
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
    scored: np.ndarray  # targeted without a draw: ranked under an expected rate, or a rule at rate 1
    # the chance of inspection as the office knows it: the computer's inclusion probability and the
    # officers' nominal order rate (their intelligence's lift is theirs, not a known probability)
    inclusion: np.ndarray

    @property
    def selected(self) -> np.ndarray:
        return self.random_hit | self.targeted | self.credit_only


class Screening:
    def __init__(
        self,
        scenario: Scenario,
        rules: RuleSet,
        decls: Declarations,
        backend: str = "vector",
        sub: tuple[int, ...] = (),
        first: int = 0,
    ):
        """`decls`: one month's (`sub`: its stream number), the first of them the run's declaration
        number `first`."""
        if backend not in ("vector", "durable"):
            raise ValueError(f"rules backend is 'vector' or 'durable', not {backend!r}")
        self.rules, self.decls, self.backend, self.first = rules, decls, backend, first
        self.instruction = scenario.instruction
        self.instructed_type = INSPECTION_TYPES.index(scenario.inspection.instructed_type)
        self.start = pd.Timestamp(scenario.horizon.start)
        self.site_names = np.array([site.name for site in scenario.sites], dtype=object)
        self.day = decls.arrival_h / 24.0
        draws = {"random": decls.u_random, "credit": decls.u_credit, "capacity": decls.u_capacity}
        self.decider = BatchDecider(
            rules, self._lodged(), self.site_names[decls.site], draws, scenario.seed, *sub
        )
        self.frame, self.firm_fields_used = self.decider.batch.frame, self.decider.batch.firm_fields_used
        if backend == "durable":  # the rules through durable-rules, declaration by declaration
            self.decider.fire = self._fire_durable

    # ------------------------------------------------------------ static part, once per run

    def _lodged(self) -> dict:
        """What a simulated declaration lodges, as columns built on demand (building all of them costs
        seconds): the engine's batch rules derive the rest (hs_chapter, unit_value, ...) exactly as
        for one live declaration."""
        goods, n = self.decls.goods, len(self.decls)
        return {
            "customs_office": lambda: self.site_names[self.decls.site],
            "items": lambda: np.ones(n, np.int64),
            "declared_date": self._dates,
            "enterprise_id": lambda: "E" + pd.Series(self.decls.enterprise).astype(str).str.zfill(6),
            "id": lambda: "S" + pd.Series(self.first + np.arange(n)).astype(str).str.zfill(8),
            **{name: (lambda name=name: goods[name]) for name in goods.columns},
        }

    def _dates(self) -> pd.api.extensions.ExtensionArray:
        """Each declaration's date as the rules read it: each day of the month written once, then
        taken per declaration (writing 8 million dates one by one took seconds a month)."""
        day = np.floor(self.day).astype(np.int64)
        if not len(day):
            return pd.array([], dtype="str")
        first = int(day.min())
        days = self.start + pd.to_timedelta(np.arange(first, int(day.max()) + 1), unit="D")
        return pd.array(days.strftime("%Y-%m-%d"), dtype="str")[day - first]

    # ------------------------------------------------------------ one batch

    def screen(
        self,
        lo: int,
        hi: int,
        standing: Standing,
        policy: SelectionPolicy,
        instruction_rate: float,
        violating: np.ndarray,
        probability: np.ndarray | None = None,
    ) -> Batch:
        """The engine's batch decider (`engine.batch.BatchDecider`) over one batch, then the
        instruction channel, which the simulation adds for the officers' intelligence."""
        firms, day = self.decls.enterprise[lo:hi], self.day[lo:hi]
        d = self.decider.decide(lo, hi, firms, day, standing, policy, probability)
        chosen, credit = d.chosen, d.credit
        multiplier = self.decider.table(policy).multipliers[credit]
        flag_p = np.where(violating, min(1.0, instruction_rate * self.instruction.lift), instruction_rate)
        flag_p = flag_p * multiplier  # the credit measures bound the total rate, orders included
        instructed = (self.decls.u_instruction[lo:hi] < flag_p) & ~chosen.selected
        inspection = np.where(instructed, self.instructed_type, chosen.inspection)
        return Batch(
            lo,
            hi,
            d.hits,
            chosen.random_hit,
            chosen.targeted,
            instructed,
            inspection,
            chosen.threshold,
            violating,
            credit,
            chosen.credit_only,
            lanes(inspection, chosen.score, credit),
            chosen.scored,
            1 - (1 - chosen.inclusion) * (1 - instruction_rate * multiplier),
        )

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
