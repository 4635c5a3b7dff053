"""The SimPy model of a customs office under double-random inspection.

Covers: declarations arriving hour by hour -> the engine's selection (rules + random draw) and the
instruction channel -> random dispatch among idle, on-post, qualified inspectors with a free facility
of the right type, weighted by workload -> inspection (service time, detection may miss) -> a problem
is transferred, a clean result is released by a different officer after a delay -> the result feeds
the enterprise's standing, which the rules read from the next batch on.

Speed: declarations are decided in hourly batches with vectorised rules; only inspected declarations
become SimPy processes. The price is a feedback lag of at most one hour: a result found at 10:20 is
seen by the rules for declarations arriving from 11:00.

`run(scenario, seed) -> Results` is the one entry point the CLI, notebooks and sweeps use.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np
import simpy

from engine import __version__
from engine.declarations import InspectionType
from engine.dispatch import FACILITY_FOR, Inspector, Roster, Shift, weight
from engine.randomness import stream_generator
from engine.rules import RuleSet
from simulation import population
from simulation.adaptive import MonthCounts, next_settings
from simulation.population import CREDIT_CLASSES
from simulation.results import Results, build_results
from simulation.scenario import Scenario, ServiceTime
from simulation.screening import INSPECTION_TYPES, SITE, Batch, Screening
from simulation.standing import Standing

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class Case:
    """One inspected declaration: a row of the event log."""

    declaration: int
    arrival_h: float
    enterprise: int
    credit_class: str
    channel: str  # random | targeted | both | instruction
    rules: str
    inspection_type: str
    violating: bool
    random_threshold: float
    inspector: str = ""
    facility: str = ""
    dispatched_h: float = math.nan
    done_h: float = math.nan
    detected: bool = False
    outcome: str = ""
    department: str = ""
    released_by: str = ""
    cleared_h: float = math.nan


def build_roster(scenario: Scenario) -> Roster:
    """Inspectors split over the shifts by share; in each shift a share qualified for each type."""
    spec, rng = scenario.inspectors, stream_generator(scenario.seed, "roster")
    shares = np.array([s.share for s in spec.shifts])
    sizes = np.floor(spec.count * shares / shares.sum()).astype(int)
    for k in np.argsort(-(spec.count * shares / shares.sum() - sizes))[: spec.count - sizes.sum()]:
        sizes[k] += 1  # largest remainders
    people, number = [], 0
    for shift, size in zip(spec.shifts, sizes):
        qualified = {t: set(rng.permutation(size)[: max(1, round(share * size))]) for t, share in spec.qualified.items()}
        for k in range(size):
            number += 1
            kinds = [t for t in InspectionType if k in qualified.get(t, ())] or [InspectionType.document]
            people.append(Inspector(id=f"INS-{number:03d}", site=SITE, qualifications=set(kinds),
                                    shifts=[Shift.parse(shift.hours, frozenset(shift.weekdays))]))
    return Roster(per_declaration=spec.per_declaration, per_item=spec.per_item, weighting=spec.weighting,
                  rotation_days=int(spec.rotation_days), inspectors=people,
                  facilities={SITE: {f: n for f, n in scenario.facilities.items()}})


class Dispatcher:
    """Waiting inspections per type, and who and what is free; dispatches as soon as it can.

    Among the idle, on-post, qualified inspectors the pick is by rejection sampling: draw one
    uniformly, accept it with probability equal to its dispatch weight (at most 1). That gives
    exactly the engine's workload-weighted choice in O(1) instead of weighing everyone each time.
    """

    def __init__(self, env: simpy.Environment, roster: Roster, scenario: Scenario, rng: random.Random):
        self.env, self.roster, self.rng = env, roster, rng
        self.start = dt.datetime.combine(scenario.horizon.start, dt.time())
        self.kinds = {p.id: [t for t in InspectionType if t in p.qualifications] for p in roster.inspectors}
        self.free = {t: roster.facilities[SITE].get(FACILITY_FOR[t], 0) for t in InspectionType}
        self.busy: set[str] = set()
        self.on_post: list[str] = []
        self._on_post_set: set[str] = set()
        self.available = {t: _IndexedSet() for t in InspectionType}  # idle, on post, qualified
        self.queues: dict[InspectionType, deque] = {t: deque() for t in InspectionType}
        self.points: dict[str, float] = {}  # workload points today
        self.last_visit: dict[tuple[str, int], float] = {}
        self.rotation_h = scenario.inspectors.rotation_days * 24
        self.shift_change = env.event()

    def waiting(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def request(self, case: Case) -> simpy.Event:
        done = self.env.event()
        self.queues[InspectionType(case.inspection_type)].append((case, done))
        self.try_dispatch()
        return done

    def release_inspector(self, inspector: str, kind: InspectionType) -> None:
        self.busy.discard(inspector)
        self.free[kind] += 1
        if inspector in self._on_post_set:
            self._make_available(inspector)
        self.try_dispatch()

    def set_on_post(self, at_h: float) -> None:
        at = self.start + dt.timedelta(hours=at_h)
        self.on_post = [p.id for p in self.roster.inspectors if p.on_post(at)]
        self._on_post_set = set(self.on_post)
        self.available = {t: _IndexedSet() for t in InspectionType}
        for inspector in self.on_post:
            if inspector not in self.busy:
                self._make_available(inspector)
        self.try_dispatch()
        self.shift_change.succeed()
        self.shift_change = self.env.event()

    def _make_available(self, inspector: str) -> None:
        for kind in self.kinds[inspector]:
            self.available[kind].add(inspector)

    def try_dispatch(self) -> None:
        """Serve the oldest waiting inspection that a free facility and an eligible inspector allow."""
        while True:
            heads = sorted((q[0][0].arrival_h, t) for t, q in self.queues.items()
                           if q and self.free[t] > 0 and self.available[t])
            if not heads or not any([self._serve(kind) for _, kind in heads]):
                return

    def _serve(self, kind: InspectionType) -> bool:
        if not self.available[kind]:
            return False
        queue = self.queues[kind]
        if not self.rotation_h:
            case, done = queue.popleft()
            chosen = self._pick(self.available[kind].items)
        else:  # the rotation rule may rule out some pairs: first waiting inspection that can go
            for position, (case, done) in enumerate(queue):
                allowed = [i for i in self.available[kind].items if not self._rotated(i, case)]
                if allowed:
                    del queue[position]
                    chosen = self._pick(allowed)
                    break
            else:
                return False
        self._assign(chosen, case, kind)
        done.succeed(chosen)
        return True

    def _rotated(self, inspector: str, case: Case) -> bool:
        last = self.last_visit.get((inspector, case.enterprise))
        return last is not None and self.env.now - last < self.rotation_h

    def _pick(self, candidates: list[str]) -> str:
        while True:
            chosen = candidates[int(self.rng.random() * len(candidates))]
            if self.rng.random() < weight(self.roster, self.points.get(chosen, 0.0)):
                return chosen

    def _assign(self, inspector: str, case: Case, kind: InspectionType) -> None:
        for k in self.kinds[inspector]:
            self.available[k].discard(inspector)
        self.busy.add(inspector)
        self.free[kind] -= 1
        self.points[inspector] = self.points.get(inspector, 0.0) + self.roster.per_declaration + self.roster.per_item
        if self.rotation_h:
            self.last_visit[(inspector, case.enterprise)] = self.env.now

    def releasing_officer(self, inspector: str, rng: random.Random) -> str | None:
        """Someone on post other than the inspector, uniformly; None when nobody else is on post."""
        if not self.on_post or self.on_post == [inspector]:
            return None
        while True:
            officer = self.on_post[int(rng.random() * len(self.on_post))]
            if officer != inspector:
                return officer


class _IndexedSet:
    """A set with O(1) add, discard and uniform choice, in a reproducible order."""

    def __init__(self):
        self.items: list[str] = []
        self._where: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, item: str) -> None:
        if item not in self._where:
            self._where[item] = len(self.items)
            self.items.append(item)

    def discard(self, item: str) -> None:
        k = self._where.pop(item, None)
        if k is None:
            return
        last = self.items.pop()
        if k < len(self.items):
            self.items[k] = last
            self._where[last] = k


class Office:
    """Everything one run owns: the environment, the world, the engine's rules, and the records."""

    def __init__(self, scenario: Scenario, rules: RuleSet, backend: str):
        self.scenario, self.env = scenario, simpy.Environment()
        self.firms = population.enterprises(scenario)
        self.decls = population.declarations(scenario, self.firms, population.read_goods(scenario.path(scenario.goods.table)))
        self.standing = Standing(self.firms, scenario.feedback, scenario.horizon.start)
        self.propensity = self.firms.propensity.copy()
        self.screening = Screening(scenario, rules, self.decls, backend)
        self.rule_ids = [r.id for r in rules.rules]
        self.roster = build_roster(scenario)
        seeds = {name: int(stream_generator(scenario.seed, name).integers(2**63)) for name in
                 ("dispatch", "service", "detection", "release")}
        self.dispatcher = Dispatcher(self.env, self.roster, scenario, random.Random(seeds["dispatch"]))
        self.service_rng = random.Random(seeds["service"])
        self.detect_rng = random.Random(seeds["detection"])
        self.release_rng = random.Random(seeds["release"])
        self.policy = scenario.policy
        self.instruction_rate = scenario.instruction.rate
        self.cases: list[Case] = []
        n_hours = scenario.horizon.n_days * 24
        self.month_of_hour = month_index(scenario.horizon.start, n_hours)
        n_months = int(self.month_of_hour[-1]) + 1
        self.declarations = np.zeros(n_months, np.int64)
        self.violations = np.zeros(n_months, np.int64)
        self.on_post_hours = np.zeros(n_months)
        self.backlog_end = np.zeros(n_months, np.int64)
        self.channel_counts = np.zeros((n_months, 3), np.int64)  # random, targeted, instructed
        self.busy_hours = np.zeros(n_months)  # live, for the adaptive controller
        self.ratio_used = np.full(n_months, scenario.policy.random_ratio)
        self.instruction_used = np.full(n_months, scenario.instruction.rate)
        self.hourly_waiting = np.zeros(n_hours, np.int64)

    # ------------------------------------------------------------ processes

    def source(self, progress: Progress | None):
        env, decls, n_hours = self.env, self.decls, len(self.month_of_hour)
        bounds = np.searchsorted(decls.arrival_h, np.arange(n_hours + 1))
        n_days = n_hours // 24
        for hour in range(n_hours):
            if env.now < hour:
                yield env.timeout(hour - env.now)
            self.hourly_waiting[hour] = self.dispatcher.waiting()
            if hour % 24 == 0:
                self.dispatcher.points.clear()  # workload points count per day
                if progress:
                    progress(hour // 24, n_days)
            if hour and self.month_of_hour[hour] != self.month_of_hour[hour - 1]:
                self.backlog_end[self.month_of_hour[hour - 1]] = self.dispatcher.waiting()
                self._new_month(int(self.month_of_hour[hour]))
            lo, hi = int(bounds[hour]), int(bounds[hour + 1])
            if hi > lo:
                yield from self._arrivals(hour, lo, hi)
        if progress:
            progress(n_days, n_days)

    def _arrivals(self, hour: int, lo: int, hi: int):
        firms = self.decls.enterprise[lo:hi]
        violating = self.decls.u_violation[lo:hi] < self.propensity[firms]
        batch = self.screening.decide(lo, hi, self.standing, self.policy, self.instruction_rate, violating)
        self.standing.count_declarations(firms)
        month = self.month_of_hour[hour]
        self.channel_counts[month] += (int(batch.random_hit.sum()), int((batch.targeted & ~batch.random_hit).sum()),
                                       int(batch.instructed.sum()))
        self.declarations[month] += hi - lo
        self.violations[month] += int(violating.sum())
        for k in np.flatnonzero(batch.selected | batch.instructed):
            case = self._case(batch, int(k))
            if case.arrival_h > self.env.now:
                yield self.env.timeout(case.arrival_h - self.env.now)
            self.cases.append(case)
            self.env.process(self.inspection(case))

    def _case(self, batch: Batch, k: int) -> Case:
        i = batch.lo + k
        channel = ("both" if batch.targeted[k] else "random") if batch.random_hit[k] else (
            "targeted" if batch.targeted[k] else "instruction")
        firm = int(self.decls.enterprise[i])
        return Case(i, float(self.decls.arrival_h[i]), firm, CREDIT_CLASSES[self.standing.credit[firm]].value,
                    channel, ";".join(batch.fired(k, self.rule_ids)), INSPECTION_TYPES[batch.inspection[k]].value,
                    bool(batch.violating[k]), float(batch.threshold[k]))

    def inspection(self, case: Case):
        env, kind = self.env, InspectionType(case.inspection_type)
        case.inspector = yield self.dispatcher.request(case)
        case.facility, case.dispatched_h = FACILITY_FOR[kind].value, env.now
        service = draw_time(self.service_rng, self.scenario.inspection.service[kind])
        self.busy_hours[self.month_of_hour[min(int(env.now), len(self.month_of_hour) - 1)]] += service
        yield env.timeout(service)
        self.dispatcher.release_inspector(case.inspector, kind)
        case.done_h = env.now
        case.detected = case.violating and self.detect_rng.random() < self.scenario.inspection.detection[kind]
        self._feedback(case)
        if case.detected:
            departments = self.scenario.inspection.departments
            case.outcome = "problem"
            case.department = self.release_rng.choices(list(departments), list(departments.values()))[0]
            case.cleared_h = env.now
            return
        case.outcome = "normal"
        yield env.timeout(draw_time(self.release_rng, self.scenario.release.delay))
        while True:  # separation of duties: someone on post other than the inspector releases
            officer = self.dispatcher.releasing_officer(case.inspector, self.release_rng)
            if officer is not None:
                case.released_by, case.cleared_h = officer, env.now
                return
            yield self.dispatcher.shift_change

    def _new_month(self, month: int) -> None:
        """The adaptive controller (if any) sets this month's random ratio and instruction rate."""
        spec = self.scenario.adaptive
        if spec is None:
            return
        last = month - 1
        counts = MonthCounts(*(int(x) for x in self.channel_counts[last]),
                             utilization=self.busy_hours[last] / max(self.on_post_hours[last], 1e-9))
        ratio, rate = next_settings(spec, month, len(self.declarations), counts, self.policy.random_ratio,
                                    self.instruction_rate)
        self.policy = self.policy.model_copy(update={"random_ratio": ratio})
        self.instruction_rate = rate
        self.ratio_used[month], self.instruction_used[month] = ratio, rate

    def _feedback(self, case: Case) -> None:
        self.standing.record(case.enterprise, case.detected, case.done_h / 24.0)
        deterrence = self.scenario.population.deterrence
        if deterrence:
            self.propensity[case.enterprise] *= 1 - deterrence

    def shifts(self):
        """Keep the on-post list current; count on-post hours per month for utilization."""
        boundaries = shift_boundaries(self.roster, self.scenario, len(self.month_of_hour))
        self.dispatcher.set_on_post(0.0)
        for previous, t in zip(boundaries, boundaries[1:]):
            # counted before the wait: SimPy stops before the events at the horizon's very end
            month = self.month_of_hour[min(int(previous), len(self.month_of_hour) - 1)]
            self.on_post_hours[month] += len(self.dispatcher.on_post) * (t - previous)
            yield self.env.timeout(t - self.env.now)
            self.dispatcher.set_on_post(t)


def draw_time(rng: random.Random, spec: ServiceTime) -> float:
    if spec.dist == "fixed":
        return spec.mean_h
    if spec.dist == "exponential":
        return rng.expovariate(1.0 / spec.mean_h)
    sigma2 = math.log(1 + spec.cv**2)
    return rng.lognormvariate(math.log(spec.mean_h) - sigma2 / 2, math.sqrt(sigma2))


def month_index(start: dt.date, n_hours: int) -> np.ndarray:
    """For each hour of the horizon, the number of its calendar month counted from the start."""
    days = [start + dt.timedelta(days=d) for d in range(n_hours // 24)]
    per_day = np.array([(d.year - start.year) * 12 + d.month - start.month for d in days])
    return np.repeat(per_day, 24)


def shift_boundaries(roster: Roster, scenario: Scenario, n_hours: int) -> list[float]:
    """Every hour (fractional) at which some shift starts or ends, plus month starts."""
    times = {0.0, float(n_hours)}
    for person in roster.inspectors:
        for shift in person.shifts:
            start = shift.start.hour + shift.start.minute / 60
            end = shift.end.hour + shift.end.minute / 60
            for day in range(n_hours // 24 + 1):
                times.update({24.0 * day + start, 24.0 * day + end})
    month = month_index(scenario.horizon.start, n_hours)
    times.update(float(h) for h in np.flatnonzero(np.diff(month)) + 1)
    return sorted(t for t in times if 0 <= t <= n_hours)


def run(scenario: Scenario, seed: int | None = None, rules_backend: str = "vector",
        progress: Progress | None = None) -> Results:
    """Simulate the scenario's horizon once; the same scenario and seed give identical results."""
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    started = time.perf_counter()
    rules = RuleSet.load(scenario.path(scenario.rules))
    office = Office(scenario, rules, rules_backend)
    office.env.process(office.shifts())
    office.env.process(office.source(progress))
    office.env.run(until=len(office.month_of_hour))
    office.backlog_end[-1] = office.dispatcher.waiting()
    meta = {"scenario": scenario.name, "scenario_hash": scenario.digest(), "rules_version": rules.version,
            "package_version": __version__, "seed": scenario.seed, "rules_backend": rules_backend,
            "wall_seconds": round(time.perf_counter() - started, 3)}
    return build_results(office, meta)

