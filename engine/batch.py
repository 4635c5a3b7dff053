"""The rules over many declarations at once: the engine's second speed, for the simulation's hourly
batches and for replaying a real log.

A frame holds, per declaration, the rule fields that never change (lodged fields and those derived
from them by `engine.declarations.DERIVED`, exactly as for one live declaration). Every subtree of a
condition that reads only those is computed once over the whole frame; the rest (`enterprise.*`,
the standing at decision time) is computed per batch from the arrays the caller passes. pandas and
numpy are imported here only: the live engine starts without them.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from engine import conditions
from engine.declarations import DERIVED, ENTERPRISE_FIELDS
from engine.rules import RuleSet


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
        self.used = set().union(*(conditions.fields_used(r.condition) for r in rules.rules))
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
