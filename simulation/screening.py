"""Deciding a batch of simulated declarations the way the engine decides one.

The model hands over one hour of arrivals at a time. The rules are the live rules file, evaluated
either vectorised (the default: comparisons on declaration fields are computed once for the whole
horizon, those on `enterprise.*` fields per batch from the current standing) or through
durable-rules itself, declaration by declaration (`backend="durable"`, slow, for checking). Then the
random channel (`u < ratio x credit multiplier`, floor for dishonest), per-rule sampling and the
instruction (intelligence) channel, with the same arithmetic as `engine.selection`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine import conditions
from engine.declarations import InspectionType
from engine.randomness import stream_generator
from engine.rules import RuleSet
from engine.selection import SelectionPolicy
from simulation.population import CREDIT_CLASSES, Declarations
from simulation.scenario import Scenario
from simulation.standing import Standing

INSPECTION_TYPES = list(InspectionType)  # codes: document 0, scan 1, physical 2 (= intensity)
NONE = -1
SITE = "PORT"  # the simulated office is one site


@dataclass
class Batch:
    """The decisions for declarations lo..hi (arrival order)."""

    lo: int
    hi: int
    fired: list[list[str]]  # per declaration, the rules that matched
    random_hit: np.ndarray
    targeted: np.ndarray  # a matched rule's sampling draw selected it
    instructed: np.ndarray  # flagged by intelligence and not selected by the computer
    inspection: np.ndarray  # code into INSPECTION_TYPES, NONE when not inspected
    threshold: np.ndarray  # the random channel's inclusion probability
    violating: np.ndarray

    @property
    def selected(self) -> np.ndarray:
        return self.random_hit | self.targeted


class Screening:
    def __init__(self, scenario: Scenario, rules: RuleSet, decls: Declarations, backend: str = "vector"):
        if backend not in ("vector", "durable"):
            raise ValueError(f"rules backend is 'vector' or 'durable', not {backend!r}")
        self.rules, self.decls, self.backend = rules, decls, backend
        self.instruction = scenario.instruction
        self.instructed_type = INSPECTION_TYPES.index(scenario.inspection.instructed_type)
        self.start = pd.Timestamp(scenario.horizon.start)
        self.day = decls.arrival_h / 24.0
        self.frame = self._static_frame()
        self._leaves: dict[conditions.Compare, np.ndarray] = {}
        self._active = self._validity()
        sampling = stream_generator(scenario.seed, "rule_sampling")
        self._sampling_draws = {r.id: sampling.random(len(decls)) for r in rules.rules}

    # ------------------------------------------------------------ static part, once per run

    def _static_frame(self) -> pd.DataFrame:
        """Columns for the declaration fields some rule reads (building all of them costs seconds)."""
        goods, n = self.decls.goods, len(self.decls)
        build = {
            "hs_code": lambda: goods["hs_code"], "hs_chapter": lambda: goods["hs_code"].str[:2],
            "hs_heading": lambda: goods["hs_code"].str[:4], "origin_country": lambda: goods["origin_country"],
            "departure_country": lambda: goods["departure_country"], "trade_mode": lambda: goods["trade_mode"],
            "transport_mode": lambda: goods["transport_mode"], "customs_office": lambda: np.full(n, SITE, object),
            "declared_value": lambda: goods["declared_value"], "net_mass_kg": lambda: goods["net_mass_kg"],
            "quantity": lambda: goods["quantity"], "items": lambda: np.ones(n, np.int64),
            "unit_value": lambda: goods["declared_value"] / goods["quantity"],
            "value_per_kg": lambda: goods["declared_value"] / goods["net_mass_kg"],
            "declared_date": lambda: (self.start + pd.to_timedelta(np.floor(self.day), unit="D")).strftime("%Y-%m-%d"),
            "enterprise_id": lambda: "E" + pd.Series(self.decls.enterprise).astype(str).str.zfill(6),
            "id": lambda: "S" + pd.Series(np.arange(n)).astype(str).str.zfill(8),
        }
        used = set().union(*(conditions.fields_used(r.condition) for r in self.rules.rules))
        needed = {f for f in used if not f.startswith("enterprise.")} | {"declared_date"}
        return pd.DataFrame({f: np.asarray(build[f]()) for f in sorted(needed)})

    def _validity(self) -> dict[str, np.ndarray]:
        out = {}
        for rule in self.rules.rules:
            if rule.valid_from or rule.valid_until:
                days = pd.to_datetime(self.frame["declared_date"]).dt.date
                out[rule.id] = np.fromiter((rule.active_on(d) for d in days), bool, len(days))
        return out

    def _leaf(self, node: conditions.Compare, lo: int, hi: int, firm_fields: dict) -> np.ndarray:
        if node.field.startswith("enterprise."):
            return conditions.compare_mask(node, firm_fields[node.field])
        if node not in self._leaves:  # computed once for the whole horizon
            self._leaves[node] = conditions.compare_mask(node, self.frame[node.field])
        return self._leaves[node][lo:hi]

    # ------------------------------------------------------------ one batch

    def decide(self, lo: int, hi: int, standing: Standing, policy: SelectionPolicy,
               violating: np.ndarray) -> Batch:
        firms = self.decls.enterprise[lo:hi]
        firm_fields = standing.fields(firms, self.day[lo:hi])
        hits = self._fire(lo, hi, firm_fields)
        thresholds = np.array([policy.random_threshold(c) for c in CREDIT_CLASSES])
        threshold = thresholds[standing.credit[firms]]
        random_hit = self.decls.u_random[lo:hi] < threshold
        targeted = np.zeros(hi - lo, bool)
        inspection = np.full(hi - lo, NONE)
        for rule in self.rules.rules:
            hit = hits[rule.id]
            rate = policy.rule_sampling.get(rule.id, rule.sampling_rate)
            sampled = hit & (self._sampling_draws[rule.id][lo:hi] < rate) if rate < 1 else hit
            targeted |= sampled
            inspection = np.where(sampled, np.maximum(inspection, rule.inspection.intensity), inspection)
        random_type = policy.random_inspection.intensity
        inspection = np.where(random_hit, np.maximum(inspection, random_type), inspection)
        flag_p = np.where(violating, min(1.0, self.instruction.rate * self.instruction.lift), self.instruction.rate)
        instructed = (self.decls.u_instruction[lo:hi] < flag_p) & ~(random_hit | targeted)
        inspection = np.where(instructed, self.instructed_type, inspection)
        fired = [[] for _ in range(hi - lo)]
        for rule in self.rules.rules:
            for k in np.flatnonzero(hits[rule.id]):
                fired[k].append(rule.id)
        return Batch(lo, hi, fired, random_hit, targeted, instructed, inspection, threshold, violating)

    def _fire(self, lo: int, hi: int, firm_fields: dict) -> dict[str, np.ndarray]:
        if self.backend == "durable":
            return self._fire_durable(lo, hi, firm_fields)
        out = {}
        for rule in self.rules.rules:
            hit = conditions.to_mask(rule.condition, {}, lambda c: self._leaf(c, lo, hi, firm_fields))
            if rule.id in self._active:
                hit = hit & self._active[rule.id][lo:hi]
            out[rule.id] = hit
        return out

    def _fire_durable(self, lo: int, hi: int, firm_fields: dict) -> dict[str, np.ndarray]:
        out = {r.id: np.zeros(hi - lo, bool) for r in self.rules.rules}
        for k, record in enumerate(self.records(lo, hi, firm_fields)):
            for rule_id in self.rules.evaluate_fields(record):
                out[rule_id][k] = True
        return out

    def records(self, lo: int, hi: int, firm_fields: dict) -> list[dict]:
        """The flat per-declaration records the engine's rules read (as `engine.declarations.rule_fields`)."""
        rows = self.frame.iloc[lo:hi].to_dict("records")
        for k, row in enumerate(rows):
            for name, values in firm_fields.items():
                row[name] = values[k].item() if hasattr(values[k], "item") else values[k]
        return rows
