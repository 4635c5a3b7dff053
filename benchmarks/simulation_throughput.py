"""Simulated declarations per second for the baseline scenario, beside two references measured in the
same run, each in its own process for a clean peak-memory figure:

  batched   simulation.run: hourly batches, vectorised rules, SimPy processes only for inspections
  naive     one SimPy process per declaration: wait for its arrival, evaluate the same rules with the
            engine's plain-Python evaluator, draw, and if selected hold an inspector and a facility
            (simpy.Resource) for the same service times
  bare      the floor: a bare SimPy M/M/c queue with as many inspections as the batched run had
            (Poisson arrivals, one process each, c = the inspectors, exponential service of the same
            mean), nothing else; our inspections/s as a share of it says what the model's logic costs
  national  simulation.run on scenarios/national.yaml (ten sites, about 10 million declarations a
            year), without its warm-up
  china     simulation.run on scenarios/china.yaml (40 sites, about 100 million declarations a year),
            without its warm-up; aim: a year in under 10 minutes on one core and under 4 GB peak
The baseline runs without its warm-up too (measured days only). Declarations are drawn a calendar
month at a time, so the peak follows a month's declarations, not the horizon's.
Usage: python benchmarks/simulation_throughput.py [DAYS] [--national] [--china]   (default 365: a year)
"""

from __future__ import annotations

import multiprocessing as mp
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def batched(days: int, name: str = "baseline") -> dict:
    from simulation import run, scenario

    spec = scenario.load(ROOT / f"scenarios/{name}.yaml", ["horizon.warmup_months=0", f"horizon.days={days}"])
    spent = declaration_side()
    start = time.perf_counter()
    result = run(spec)
    return {
        "declarations": result.summary["declarations"],
        "inspections": result.summary["inspections"],
        "seconds": time.perf_counter() - start,
        "declaration_side": spent[0],
    }


def declaration_side() -> list[float]:
    """Time the work done per declaration rather than per inspection: drawing each month's
    declarations (`OfficeModel.lodge_month`) and deciding and counting each hour's
    (`OfficeModel.decide_hour`: violations, the engine's batch decider, the counts, the event-log
    rows). A list the wrapped methods add their seconds to (this process only)."""
    from simulation.model import OfficeModel

    spent = [0.0]

    def timed(method):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        return run

    OfficeModel.lodge_month = timed(OfficeModel.lodge_month)
    OfficeModel.decide_hour = timed(OfficeModel.decide_hour)
    return spent


def naive(days: int) -> dict:
    import simpy

    from engine.declarations import InspectionType
    from engine.rules import RuleSet
    from engine.standing import CREDIT_NAMES
    from simulation import population, scenario
    from simulation.model import draw_time

    spec = scenario.load(
        ROOT / "scenarios/baseline.yaml", ["horizon.warmup_months=0", f"horizon.days={days}"]
    )
    start = time.perf_counter()
    rules = RuleSet.load(spec.path(spec.rules))
    firms = population.enterprises(spec)
    decls = population.declarations(spec, firms, population.read_goods(spec.path(spec.goods.table)))
    goods = decls.goods.to_dict("records")
    env, rng = simpy.Environment(), random.Random(1)
    inspectors = simpy.Resource(env, spec.sites[0].inspectors.count)
    bays = simpy.Resource(env, sum(spec.sites[0].facilities.values()))
    policy, counts = spec.policy, {"inspections": 0}
    thresholds = {c: policy.random_threshold(c) for c in population.CREDIT_CLASSES}

    def declaration(i: int):
        yield env.timeout(decls.arrival_h[i] - env.now)
        g, firm = goods[i], int(decls.enterprise[i])
        record = {
            **g,
            "hs_chapter": g["hs_code"][:2],
            "hs_heading": g["hs_code"][:4],
            "customs_office": "PORT",
            "unit_value": g["declared_value"] / g["quantity"],
            "value_per_kg": g["declared_value"] / g["net_mass_kg"],
            "items": 1,
            "declared_date": "2026-01-01",
            "enterprise.credit_class": CREDIT_NAMES[firms.credit[firm]],
            "enterprise.high_risk": False,
            "enterprise.declarations": 1,
            "enterprise.inspections": 0,
            "enterprise.problems": 0,
            "id": str(i),
            "enterprise_id": str(firm),
        }
        fired = rules.evaluate_python(record)
        credit = population.CREDIT_CLASSES[firms.credit[firm]]
        if not fired and decls.u_random[i] >= thresholds[credit]:
            return
        counts["inspections"] += 1
        with inspectors.request() as person, bays.request() as bay:
            yield person & bay
            yield env.timeout(draw_time(rng, spec.inspection.service[InspectionType.physical]))

    for i in range(len(decls)):
        env.process(declaration(i))
    env.run()
    return {
        "declarations": len(decls),
        "inspections": counts["inspections"],
        "seconds": time.perf_counter() - start,
    }


def bare(days: int, inspections: int) -> dict:
    """M/M/c with `inspections` customers over `days`: the same count of SimPy processes, no logic."""
    import simpy

    from simulation import scenario

    spec = scenario.load(
        ROOT / "scenarios/baseline.yaml", ["horizon.warmup_months=0", f"horizon.days={days}"]
    )
    start = time.perf_counter()
    env, rng = simpy.Environment(), random.Random(1)
    servers = simpy.Resource(env, spec.sites[0].inspectors.count)
    rate, mean = inspections / (24.0 * days), 2.0

    def customer():
        with servers.request() as request:
            yield request
            yield env.timeout(rng.expovariate(1 / mean))

    def source():
        for _ in range(inspections):
            yield env.timeout(rng.expovariate(rate))
            env.process(customer())

    env.process(source())
    env.run()
    return {"declarations": inspections, "inspections": inspections, "seconds": time.perf_counter() - start}


def national(days: int) -> dict:
    return batched(days, "national")


def china(days: int) -> dict:
    return batched(days, "china")


def measured(name: str, days: int, queue, *extra) -> None:
    run = {"batched": batched, "naive": naive, "bare": bare, "national": national, "china": china}[name]
    figures = run(days, *extra)
    figures["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(figures)


def main(days: int, larger: tuple[str, ...]) -> None:
    context = mp.get_context("spawn")
    results = {}
    for name in ("batched", "naive", "bare") + larger:
        queue = context.Queue()
        extra = (results["batched"]["inspections"],) if name == "bare" else ()
        proc = context.Process(target=measured, args=(name, days, queue, *extra))
        proc.start()
        results[name] = queue.get()
        proc.join()
    print(
        f"{days} simulated days, one core (bare: M/M/c with the batched run's inspections; national: 10 "
        f"sites; china: 40)"
    )
    print(
        f"{'model':>8} {'declarations':>13} {'inspections':>12} {'seconds':>8} {'decl/s':>10} {'insp/s':>9} "
        f"{'peak MiB':>9}"
    )
    for name, r in results.items():
        print(
            f"{name:>8} {r['declarations']:>13,} {r['inspections']:>12,} {r['seconds']:>8.2f} "
            f"{r['declarations'] / r['seconds']:>10,.0f} {r['inspections'] / r['seconds']:>9,.0f} "
            f"{r['peak_mib']:>9.0f}"
        )
    print(
        f"speed-up of the batched model over one process per declaration: "
        f"{results['naive']['seconds'] / results['batched']['seconds']:.1f}x"
    )
    ours = results["batched"]["inspections"] / results["batched"]["seconds"]
    floor = results["bare"]["inspections"] / results["bare"]["seconds"]
    print(
        f"batched inspections/s as a share of bare SimPy's: {ours / floor:.2f} "
        "(the rest of the time is the model: rules, draws, dispatch rules, feedback, records)"
    )
    b = results["batched"]
    rest, per = b["seconds"] - b["declaration_side"], b["declarations"] / b["inspections"]
    print(
        f"  of the batched run's {b['seconds']:.2f} s, {b['declaration_side']:.2f} s went to drawing and "
        f"deciding the declarations ({per:.0f} per inspection; the bare queue has none); the other "
        f"{rest:.2f} s (inspections, dispatch, feedback, shifts, results) as a share of bare "
        f"SimPy per inspection: {results['bare']['seconds'] / rest:.2f}"
    )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 365, tuple(n for n in ("national", "china") if f"--{n}" in sys.argv))
