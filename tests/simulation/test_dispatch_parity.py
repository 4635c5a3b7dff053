"""The same small office dispatched by the live Office (SQLite) and by the simulation's Dispatcher.

Both hand an inspection to an eligible inspector whether or not they hold open work, weighted by it:
with every inspector free the pick is uniform in both; with inspectors holding unequal open work the
picks follow the workload weights in both (chi-square tests of homogeneity between the two, and of
each against the exact distribution the weights imply); the rotation rule and the open-work cap rule
out the same people.
"""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import simpy
from scipy import stats

from engine.declarations import InspectionType, parse_declaration
from engine.dispatch import Roster
from engine.office import Office
from engine.randomness import KeyedDraws
from engine.rules import RuleSet
from engine.selection import SelectionPolicy
from simulation.dispatcher import Dispatcher
from simulation.recorder import Case
from simulation.scenario import DEFAULT_SITE as SITE
from simulation.scenario import load
from tests.conftest import ROOT, declaration_data

PEOPLE = [f"I{k}" for k in range(1, 5)]
START = dt.datetime(2026, 1, 1, 9, 0)


def roster(rotation_days: int, weighting: str = "workload") -> Roster:
    return Roster.model_validate(
        {
            "rotation_days": rotation_days,
            "weighting": weighting,
            "facilities": {SITE: {"physical_bay": 4}},
            "inspectors": [
                {"id": p, "site": SITE, "shifts": ["00:00-23:59"], "qualifications": ["physical"]}
                for p in PEOPLE
            ],
        }
    )


def live_picks(n: int, firms: list[str], rotation_days: int, tmp_path) -> list[str | None]:
    """Each declaration selected (random ratio 1), dispatched, inspected and released before the next."""
    office = Office(
        tmp_path / f"parity-{rotation_days}.db",
        rules=RuleSet.load(ROOT / "scenarios/rules/never.yaml"),
        policy=SelectionPolicy(random_ratio=1.0),
        draws=KeyedDraws.from_seed(3),
        roster=roster(rotation_days),
    )
    picks = []
    for k in range(n):
        at = START + dt.timedelta(minutes=k)
        data = declaration_data(
            id=f"D{k}", enterprise_id=firms[k], declared_at=at.isoformat(), customs_office=SITE
        )
        office.admit(parse_declaration(data), at)
        task = office.inspection(f"D{k}")
        if task["status"] != "dispatched":
            picks.append(None)
            continue
        picks.append(task["inspector_id"])
        office.record_result(f"D{k}", task["inspector_id"], "normal", at=at)
        office.release(f"D{k}", next(p for p in PEOPLE if p != task["inspector_id"]), at)
    return picks


def simulated_picks(n: int, firms: list[str], rotation_days: int) -> list[str | None]:
    scenario = load(
        ROOT / "scenarios" / "baseline.yaml",
        [f"inspectors.rotation_days={rotation_days}", f"sites=[{{name: {SITE}, share: 1}}]"],
    )
    env = simpy.Environment()
    dispatcher = Dispatcher(env, roster(rotation_days), scenario, random.Random(3), SITE)
    dispatcher.set_on_post(9.0)
    picks = []
    for k in range(n):
        case = Case(k, 9.0, SITE, int(firms[k][1:]), "general", "random", "", "physical", False, 1.0)
        waiting = dispatcher.request(case)
        env.run(until=env.now + 1e-6)
        picks.append(picked(case, waiting))
        if picks[-1] is not None:
            dispatcher.release_inspector(picks[-1], InspectionType.physical)
    return picks


def picked(case: Case, waiting) -> str | None:
    """The inspector a request gave: at once (set on the case) or by its event, once it has run."""
    if waiting is None:
        return case.inspector
    return waiting.value if waiting.triggered else None


def test_both_pick_uniformly_among_free_inspectors(tmp_path):
    n = 800
    firms = [f"E{k}" for k in range(n)]  # a new firm each time: rotation never applies
    live_run, sim_run = live_picks(n, firms, 0, tmp_path), simulated_picks(n, firms, 0)
    live = np.array([live_run.count(p) for p in PEOPLE])
    sim = np.array([sim_run.count(p) for p in PEOPLE])
    assert live.sum() == sim.sum() == n
    assert stats.chi2_contingency(np.vstack([live, sim]))[1] > 0.001, (live, sim)
    assert stats.chisquare(live).pvalue > 0.001 and stats.chisquare(sim).pvalue > 0.001, (live, sim)


def test_the_rotation_rule_rules_out_the_same_inspectors(tmp_path):
    firms = ["E1"] * 5  # one enterprise five times within the rotation period
    for picks in (live_picks(5, firms, 30, tmp_path), simulated_picks(5, firms, 30)):
        assert len(set(picks[:4])) == 4 and picks[4] is None  # each inspector once, then nobody may


# Three inspections handed out before any result, four inspectors: how many different inspectors got
# them. Workload weights (10 points per declaration + 5 per item, weight 1 / (1 + points / 10)): one
# open inspection weighs 0.4, two 0.25, none 1.
P_WORKLOAD = {3: (3 / 3.4) * (2 / 2.8), 1: (0.4 / 3.4) * (0.25 / 3.25)}
P_WORKLOAD[2] = 1 - P_WORKLOAD[3] - P_WORKLOAD[1]


def live_spread(trials: int, tmp_path) -> np.ndarray:
    """Per trial, three declarations dispatched with no result in between, then all three finished."""
    office = Office(
        tmp_path / "spread.db",
        rules=RuleSet.load(ROOT / "scenarios/rules/never.yaml"),
        policy=SelectionPolicy(random_ratio=1.0),
        draws=KeyedDraws.from_seed(5),
        roster=roster(0),
    )
    counts = np.zeros(4, int)
    for t in range(trials):
        at, picked = START + dt.timedelta(minutes=t), []
        for k in range(3):
            data = declaration_data(
                id=f"D{t}-{k}", enterprise_id=f"E{t}-{k}", declared_at=at.isoformat(), customs_office=SITE
            )
            office.admit(parse_declaration(data), at)
            picked.append(office.inspection(f"D{t}-{k}")["inspector_id"])
        for k, person in enumerate(picked):
            office.record_result(f"D{t}-{k}", person, "normal", at=at)
            office.release(f"D{t}-{k}", next(p for p in PEOPLE if p != person), at)
        counts[len(set(picked))] += 1
    return counts


def simulated_spread(trials: int, weighting: str = "workload") -> np.ndarray:
    # the site's dispatch settings come from the scenario, as in a run: the test's weighting, no cap
    settings = [
        f"sites=[{{name: {SITE}, share: 1}}]",
        f"inspectors.weighting={weighting}",
        "inspectors.max_open=null",
    ]
    env = simpy.Environment()
    dispatcher = Dispatcher(
        env, roster(0), load(ROOT / "scenarios" / "baseline.yaml", settings), random.Random(5), SITE
    )
    dispatcher.set_on_post(9.0)
    counts = np.zeros(4, int)
    for t in range(trials):
        cases = [
            Case(3 * t + k, 9.0, SITE, 3 * t + k, "general", "random", "", "physical", False, 1.0)
            for k in range(3)
        ]
        waiting = [dispatcher.request(case) for case in cases]
        env.run(until=env.now + 1e-6)
        people = [picked(case, w) for case, w in zip(cases, waiting)]
        for person in people:
            dispatcher.release_inspector(person, InspectionType.physical)
        counts[len(set(people))] += 1
    return counts


def test_busy_inspectors_are_picked_by_their_open_work_live_and_simulated(tmp_path):
    """Weighted by open work in both: a change to either side's weighting alone fails this."""
    trials = 400
    live, sim = live_spread(trials, tmp_path)[1:], simulated_spread(trials)[1:]
    expected = trials * np.array([P_WORKLOAD[1], P_WORKLOAD[2], P_WORKLOAD[3]])
    assert stats.chi2_contingency(np.vstack([live, sim]) + 0.5)[1] > 0.001, (live, sim)
    for counts in (live, sim):
        # distinct 1 is rare (expected 3.6): pooled with 2 so every cell expects at least 5
        pooled = np.array([counts[0] + counts[1], counts[2]])
        assert stats.chisquare(pooled, [expected[0] + expected[1], expected[2]]).pvalue > 0.001, counts
    uniform = simulated_spread(trials, "uniform")[1:]  # the setting matters: 3 distinct in 37.5%, not 63%
    assert uniform[2] < sim[2] - 4 * np.sqrt(trials * 0.25), (uniform, sim)


def test_the_cap_on_open_work_rules_out_the_same_inspectors(tmp_path):
    """max_open 1: an inspector holding an inspection gets no second, live and simulated alike."""
    capped = roster(0).model_copy(update={"max_open": 1})
    office = Office(
        tmp_path / "cap.db",
        rules=RuleSet.load(ROOT / "scenarios/rules/never.yaml"),
        policy=SelectionPolicy(random_ratio=1.0),
        draws=KeyedDraws.from_seed(2),
        roster=capped,
    )
    live = []
    for k in range(5):
        data = declaration_data(
            id=f"D{k}", enterprise_id=f"E{k}", declared_at=START.isoformat(), customs_office=SITE
        )
        office.admit(parse_declaration(data), START)
        task = office.inspection(f"D{k}")
        live.append(task["inspector_id"] if task["status"] == "dispatched" else None)
    scenario = load(
        ROOT / "scenarios" / "baseline.yaml", [f"sites=[{{name: {SITE}, share: 1}}]", "inspectors.max_open=1"]
    )
    env = simpy.Environment()
    dispatcher = Dispatcher(env, capped, scenario, random.Random(2), SITE)
    dispatcher.set_on_post(9.0)
    cases = [Case(k, 9.0, SITE, k, "general", "random", "", "physical", False, 1.0) for k in range(5)]
    waiting = [dispatcher.request(case) for case in cases]
    env.run(until=1e-6)
    sim = [picked(case, w) for case, w in zip(cases, waiting)]
    for picks in (live, sim):
        assert len(set(picks[:4])) == 4 and picks[4] is None, picks


def test_the_weighting_setting_changes_simulated_dispatch():
    """In a simulated run too, workload weighting hands fewer inspections to an inspector who already
    holds open work than a uniform pick does (a two-proportion test on the dispatches)."""
    from simulation import run

    small = [
        "horizon.warmup_months=0",
        "horizon.days=10",
        "arrivals.per_day=1500",
        "population.enterprises=3000",
        "inspectors.count=45",  # idle inspectors exist: the pick between idle and busy matters
    ]
    shares = {}
    for weighting in ("workload", "uniform"):
        events = run(
            load(ROOT / "scenarios" / "baseline.yaml", [*small, f"inspectors.weighting={weighting}"]), seed=4
        ).events
        shares[weighting] = _to_busy(events)
    (k1, n1), (k2, n2) = shares["workload"], shares["uniform"]
    assert n1 > 500 and n2 > 500
    pooled = (k1 + k2) / (n1 + n2)
    z = (k2 / n2 - k1 / n1) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert z > 3.3, (shares, z)


def _to_busy(events) -> tuple[int, int]:
    """Dispatches that went to an inspector holding another open inspection, and all dispatches."""
    done = events.dropna(subset=["dispatched_h"])
    busy = 0
    for _, mine in done.groupby("inspector"):
        start, end = mine["dispatched_h"].to_numpy(), mine["done_h"].fillna(np.inf).to_numpy()
        for k in range(len(mine)):
            busy += int(((start < start[k]) & (end > start[k])).any())
    return busy, len(done)
