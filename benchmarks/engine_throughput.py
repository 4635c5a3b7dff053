"""Decisions per second through the engine, beside raw durable-rules in the same run.

For 1, 20 (the baseline file) and 100 rules, on N declarations replayed from the shipped sample:
  raw durable   assert_fact + retract_fact of a prepared fact on a bare private Host (the floor)
  evaluate      RuleSet.evaluate(declaration, enterprise): flattening + durable + validity dates
  decide        Selector.decide: evaluate + random draw + sampling draws + Decision
  python/mask   the plain-Python and vectorised evaluators of the same rules, for comparison
Usage: python benchmarks/engine_throughput.py [N]      (default 100000; one core)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

from engine import conditions
from engine.declarations import Enterprise, parse_declaration, rule_fields
from engine.randomness import SeededDraws
from engine.rules import RuleSet, _SyncHost
from engine.selection import SelectionPolicy, Selector

ROOT = Path(__file__).resolve().parents[1]


def declarations(n: int):
    rows = [json.loads(x) for x in (ROOT / "scenarios/declarations/sample.jsonl").read_text().splitlines()]
    return [parse_declaration(dict(rows[i % len(rows)], id=f"B{i:07d}")) for i in range(n)]


def rules_of_size(k: int) -> RuleSet:
    base = RuleSet.load(ROOT / "scenarios/rules/baseline.yaml")
    if k <= len(base.rules):
        return RuleSet(base.rules[:k], base.version)
    extra = RuleSet.from_dict(
        {
            "version": "bench",
            "rules": [
                {
                    "id": f"X{i:03d}",
                    "description": "generated",
                    "inspection": "document",
                    "when": {
                        "all": [
                            {"field": "hs_chapter", "eq": f"{(i % 97) + 1:02d}"},
                            {"field": "declared_value", "gt": 1000 * (i % 7)},
                        ]
                    },
                }
                for i in range(k - len(base.rules))
            ],
        }
    )
    return RuleSet(base.rules + extra.rules, "bench")


def raw_durable_rate(rules: RuleSet, facts: list[dict]) -> float:
    host = _SyncHost()
    defs = {
        r.id: {
            "all": [{"m": {"$and": [{"$ex": {"_decl": 1}}, conditions.to_durable(r.condition)]}}],
            "run": lambda c: None,
        }
        for r in rules.rules
    }
    defs["$all"] = {"all": [{"m": {"$ex": {"_decl": 1}}}], "run": lambda c: None}
    host.register_rulesets({"raw": defs})
    start = time.perf_counter()
    for i, fact in enumerate(facts, 1):
        fact["id"] = i
        host.assert_fact("raw", fact)
        host.retract_fact("raw", fact)
    return len(facts) / (time.perf_counter() - start)


def rate(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - start)


def main(n: int) -> None:
    decls = declarations(n)
    firm = Enterprise(id="E", declarations=10)
    fields = [rule_fields(d, firm) for d in decls]
    frame = pd.DataFrame(fields)
    print(f"{n:,} declarations, one core; decisions per second")
    print(
        f"{'rules':>5} {'raw durable':>12} {'evaluate':>10} {'decide':>10} {'decide/raw':>10} "
        f"{'python':>10} {'mask':>12}"
    )
    for k in (1, 20, 100):
        rules = rules_of_size(k)
        facts = [{conditions.fact_key(f): rec[f] for f in rules.fields_used} | {"_decl": 1} for rec in fields]
        raw = raw_durable_rate(rules, facts)
        evaluate = rate(lambda d: rules.evaluate(d, firm), decls)  # noqa: B023 - measured here, in this pass
        selector = Selector(rules, SelectionPolicy(random_ratio=0.03), SeededDraws(1))
        decide = rate(lambda d: selector.decide(d, firm), decls)  # noqa: B023 - measured here, in this pass
        python = rate(rules.evaluate_python, fields)
        start = time.perf_counter()
        rules.masks(frame)
        mask = n / (time.perf_counter() - start)
        print(
            f"{k:>5} {raw:>12,.0f} {evaluate:>10,.0f} {decide:>10,.0f} {decide / raw:>10.2f} "
            f"{python:>10,.0f} {mask:>12,.0f}"
        )


def selection_step(n: int) -> None:
    """The selection arithmetic alone, once the 20 baseline rules have spoken: the live path's
    `choose_one` on plain numbers beside `choose` on arrays of one (how the live path ran before), on
    the same decisions in the same run."""
    import numpy as np

    from engine.selection import PolicyTable, choose, choose_one

    rules = rules_of_size(20)
    table = PolicyTable.of(SelectionPolicy(random_ratio=0.03), rules)
    rng = np.random.default_rng(1)
    k = len(rules.rules)
    cases = [
        ([int(j) for j in np.flatnonzero(rng.random(k) < 0.1)], rng.random(), rng.random(), rng.random(k))
        for _ in range(n)
    ]
    start = time.perf_counter()
    for fired, u, uc, ur in cases:
        choose_one(table, 2, fired, u, {j: float(ur[j]) for j in fired}, uc)
    scalar = (time.perf_counter() - start) / n
    start = time.perf_counter()
    for fired, u, uc, ur in cases:
        hits = np.zeros((1, k), bool)
        hits[0, fired] = True
        choose(table, np.array([2]), hits, np.array([u]), ur[None, :], np.array([uc]))
    arrays = (time.perf_counter() - start) / n
    print(
        f"selection step per decision: {scalar * 1e6:.1f} us on plain numbers, "
        f"{arrays * 1e6:.1f} us on arrays of one: {arrays / scalar:.1f}x"
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    selection_step(min(count, 50_000))
    main(count)
