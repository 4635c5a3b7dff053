"""The SimPy model of a customs office under double-random inspection.

Covers: declarations arriving hour by hour -> the engine's selection (rules + random draw) and the
instruction channel -> random dispatch among idle, on-post, qualified inspectors with a free facility
of the right type, weighted by workload -> inspection (service time, detection may miss) -> a problem
is transferred, a clean result is released by a different officer after a delay -> the result feeds
the enterprise's standing, which the rules read from the next batch on.

Speed: declarations are decided in hourly batches with vectorised rules; only inspected declarations
become SimPy processes. Memory: the declarations are drawn a calendar month at a time
(`population.Chunk`), so a run holds a month of them, whatever its horizon. The price of the
batches is a feedback lag of at most one hour: a result found at 10:20 is
seen by the rules for declarations arriving from 11:00.

`run(scenario, seed) -> Results` is the one entry point the CLI, notebooks and sweeps use.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import simpy

from engine import __version__
from engine.declarations import InspectionType
from engine.dispatch import FACILITY_FOR, Roster
from engine.randomness import stream_generator
from engine.rules import RuleSet
from engine.selection import channel
from engine.standing import Standing
from simulation import learning, population, warm
from simulation.adaptive import MonthCounts, next_settings
from simulation.dispatcher import Dispatcher, build_roster
from simulation.learning import Learner
from simulation.population import CREDIT_CLASSES
from simulation.recorder import Case, Recorder
from simulation.results import Results, build_results
from simulation.risk import RiskTable
from simulation.scenario import Perceived, Scenario, ServiceTime
from simulation.screening import INSPECTION_TYPES, Batch, Screening

Progress = Callable[[int, int], None]


class OfficeModel:
    """Everything one run owns: the environment, the world, the engine's rules, and the records."""

    def __init__(self, scenario: Scenario, rules: RuleSet, backend: str, start_h: int = 0):
        self.scenario, self.env, self.start_h = scenario, simpy.Environment(initial_time=start_h), start_h
        self.firms = population.enterprises(scenario)
        self.risk = RiskTable.read(scenario.path(scenario.goods.risk)) if scenario.goods.risk else None
        self.goods = population.read_goods(scenario.path(scenario.goods.table))
        self.standing = Standing(
            self.firms.credit, self.firms.history, scenario.feedback, scenario.horizon.start
        )
        self.propensity = self.firms.propensity.copy()
        self.perception = Perception(scenario.population.perceived, len(self.propensity))
        self.rules, self.backend = rules, backend
        self.screening: Screening | None = None  # this month's
        self.decls: population.Declarations | None = None  # ... and its declarations
        self.carried_pacers = None  # a warm start's, for its first month
        self.months = [None] if scenario.arrivals.log else population.chunks(scenario)
        self.learner = Learner(scenario.model) if scenario.model else None
        self.rule_ids = [r.id for r in rules.rules]
        self.roster = build_roster(scenario)
        self.sites = scenario.sites
        self.site_names = [site.name for site in self.sites]
        seeds = {
            name: int(stream_generator(scenario.seed, name).integers(2**63))
            for name in ("dispatch", "service", "detection", "release")
        }
        self.dispatchers = {  # one per site: its own people, facilities and queues
            site.name: Dispatcher(
                self.env, self.roster, scenario, random.Random(seeds["dispatch"] + k), site.name
            )
            for k, site in enumerate(self.sites)
        }
        spec = scenario.inspection  # what an inspection of each type reads, looked up once
        self.kinds = {
            t.value: (t, FACILITY_FOR[t].value, spec.service[t], spec.detection[t]) for t in InspectionType
        }
        self.departments = (list(spec.departments), list(spec.departments.values()))
        self.service_rng = random.Random(seeds["service"])
        self.detect_rng = random.Random(seeds["detection"])
        self.release_rng = random.Random(seeds["release"])
        self.policy = scenario.policy
        self.instruction_rate = scenario.instruction.rate
        n_hours = scenario.horizon.n_days * 24
        self.month_of_hour = month_index(scenario.horizon.start, n_hours)
        self.record = Recorder(
            self.month_of_hour,
            [site.name for site in self.sites],
            scenario.policy.random_ratio,
            scenario.instruction.rate,
        )

    # ------------------------------------------------------------ processes

    def lodge_month(self, k: int, first: int) -> None:
        """The declarations of the horizon's k-th calendar month (a log's: all of them), numbered from
        `first`; its screening carries on with the pacers of the month before."""
        chunk = self.months[k]
        scenario, firms = self.scenario, self.firms
        pacers = self.screening.decider.pacers if self.screening else self.carried_pacers
        self.screening = self.decls = None  # last month's go before this one is drawn: one in memory
        if self.learner:
            self.learner.x = None
        decls = population.declarations(scenario, firms, self.goods, self.risk, chunk)
        sub = () if chunk is None else (chunk.number,)
        self.screening = Screening(scenario, self.rules, decls, self.backend, sub, first)
        if pacers is not None:
            self.screening.decider.pacers = pacers
        if scenario.population.adaptation:  # firms route around the rules in force
            enterprise = decls.enterprise
            decls.risk = population.adapted(
                decls.risk,
                self.screening.decider.batch.named(),
                population.propensity_logodds(firms.propensity)[enterprise],
                firms.credit[enterprise],
                scenario.population.adaptation,
            )
        if scenario.goods.drift:  # a segment's risk moves during the run
            decls.risk = population.drifted(decls.risk, decls.goods, decls.arrival_h, scenario)
        if self.learner:
            if self.learner.levels is None:  # every value's code, fixed for the run
                modes = list(scenario.goods.trade_modes)
                self.learner.levels = learning.levels(self.goods if chunk else decls.goods, modes)
            self.learner.month(decls, first)
        self.decls, self.first = decls, first
        end = len(self.month_of_hour) if chunk is None else chunk.end_h
        start = 0 if chunk is None else chunk.first_h
        self.bounds = np.searchsorted(decls.arrival_h, np.arange(start, end + 1))
        self.bounds_from, self.month_end = start, end

    def first_numbers(self) -> list[int]:
        """Each month's first declaration's number in the run (the first month's own hours before the
        horizon's start count negative), from the arrival counts alone."""
        out, number = [], 0
        for chunk in self.months:
            if chunk is None:
                return [0]
            before, inside = population.counted(self.scenario, chunk)
            out.append(number - before)
            number += inside
        return out

    def source(self, progress: Progress | None, warm_to: Path | None = None):
        """Declarations hour by hour from `start_h`, a month of them in memory at a time; with
        `warm_to`, the warm state is saved there at the first measured hour, before anything of that
        hour happens."""
        env, n_hours = self.env, len(self.month_of_hour)
        n_days = n_hours // 24
        firsts, k = self.first_numbers(), 0
        while self.months[k] is not None and self.months[k].end_h <= self.start_h:
            k += 1
        self.lodge_month(k, firsts[k])
        first_measured = int(self.record.month_edges[self.scenario.horizon.warmup_months])
        for hour in range(self.start_h, n_hours):
            if env.now < hour:
                yield env.timeout(hour - env.now)
            if warm_to is not None and hour == first_measured:
                warm.save(warm_to, self.scenario, hour, self.warm_state())
            self.record.hourly_waiting[hour] = self.waiting()
            if hour % 24 == 0 and progress:
                progress(hour // 24, n_days)
            if self.learner and hour and hour % (24 * self.scenario.model.retrain_days) == 0:
                self.learner.retrain()  # on the labels of the inspections ended so far
            if hour and self.month_of_hour[hour] != self.month_of_hour[hour - 1]:
                self.close_month(int(self.month_of_hour[hour - 1]), hour)
                self._new_month(int(self.month_of_hour[hour]))
            if hour >= self.month_end:
                k += 1
                self.lodge_month(k, firsts[k])
            lo, hi = int(self.bounds[hour - self.bounds_from]), int(self.bounds[hour + 1 - self.bounds_from])
            if hi > lo:
                yield from self._arrivals(hour, lo, hi)
        if progress:
            progress(n_days, n_days)

    def _arrivals(self, hour: int, lo: int, hi: int):
        """Each inspected declaration of the hour becomes a SimPy process at its arrival time; the
        rest of the hour's work (`decide_hour`) is done at once, on arrays."""
        for case in self.decide_hour(hour, lo, hi):
            if case.arrival_h > self.env.now:
                yield self.env.timeout(case.arrival_h - self.env.now)
            self.record.cases.append(case)
            self.env.process(self.inspection(case))

    def decide_hour(self, hour: int, lo: int, hi: int) -> list[Case]:
        """The hour's declarations lo..hi: who violates, the engine's decisions, the counts; returns
        the event-log rows of those to inspect."""
        firms = self.decls.enterprise[lo:hi]
        chance = population.violation_probability(self.propensity[firms], self.decls.risk[lo:hi])
        violating = self.decls.u_violation[lo:hi] < np.minimum(1.0, chance * self.perception.factor[firms])
        if self.decls.logged is not None:  # a real log: its outcome wherever it recorded one
            logged = self.decls.logged[lo:hi]
            violating = np.where(np.isnan(logged), violating, logged == 1)
        probability = None
        if self.learner:
            self.learner.describe(lo, hi, firms, self.decls.arrival_h[lo:hi] / 24.0, self.standing)
            probability = self.learner.probability(lo, hi)
        batch = self.screening.screen(
            lo, hi, self.standing, self.policy, self.instruction_rate, violating, probability
        )
        if self.learner:
            self.learner.selected(lo, hi, batch.inclusion, batch.selected | batch.instructed)
        self.standing.count_declarations(firms)
        self.perception.saw(firms, batch.selected | batch.instructed)
        channels = (
            int(batch.random_hit.sum()),
            int(((batch.targeted | batch.credit_only) & ~batch.random_hit).sum()),
            int(batch.instructed.sum()),
        )  # credit floors count with the rules
        self.record.arrivals(
            self.month_of_hour[hour],
            self.decls.site[lo:hi],
            violating,
            batch.credit,
            batch.threshold,
            channels,
            batch.lane,
        )
        return self._cases(batch, np.flatnonzero(batch.selected | batch.instructed))

    def _cases(self, batch: Batch, ks: np.ndarray) -> list[Case]:
        """The event-log rows of a batch's inspected declarations (rows `ks`), read a column at a
        time as plain Python values rather than element by element from the arrays."""
        rows, ids = batch.lo + ks, self.rule_ids
        flags = zip(
            batch.random_hit[ks].tolist(), batch.targeted[ks].tolist(), batch.credit_only[ks].tolist()
        )
        chosen_by = [channel(*f) for f in flags]
        columns = (
            (self.first + rows).tolist(),
            self.decls.arrival_h[rows].tolist(),
            [self.site_names[k] for k in self.decls.site[rows].tolist()],
            self.decls.enterprise[rows].tolist(),
            [CREDIT_VALUES[k] for k in batch.credit[ks].tolist()],
            ["instructed" if c == "none" else c for c in chosen_by],  # "none": the officers' order
            [";".join([r for r, hit in zip(ids, row) if hit]) for row in batch.hits[ks].tolist()],
            [TYPE_VALUES[k] for k in batch.inspection[ks].tolist()],
            batch.violating[ks].tolist(),
            batch.threshold[ks].tolist(),
            batch.scored[ks].tolist(),
        )
        return [Case(*row) for row in zip(*columns)]

    def inspection(self, case: Case):
        env, dispatcher = self.env, self.dispatchers[case.site]
        kind, facility, service_time, detection = self.kinds[case.inspection_type]
        waiting = dispatcher.request(case)
        if waiting is not None:  # no facility or eligible inspector yet
            case.inspector = yield waiting
        case.facility, case.dispatched_h = facility, env.now
        service = draw_time(self.service_rng, service_time)
        turn = dispatcher.turn(case.inspector)
        if turn is not None:  # after the work handed over before
            yield turn
        self.record.work(case.site, env.now, service)
        yield env.timeout(service)
        dispatcher.done(case.inspector)
        dispatcher.release_inspector(case.inspector, kind)
        case.done_h = env.now
        case.detected = case.violating and self.detect_rng.random() < detection
        self._feedback(case)
        if self.learner:
            self.learner.learn(case.declaration, case.detected)
        if case.detected:
            case.outcome = "problem"
            case.department = self.release_rng.choices(*self.departments)[0]
            case.cleared_h = env.now
            return
        case.outcome = "normal"
        yield env.timeout(draw_time(self.release_rng, self.scenario.release.delay))
        while True:  # separation of duties: someone on post other than the inspector releases
            officer = dispatcher.releasing_officer(case.inspector, self.release_rng)
            if officer is not None:
                case.released_by, case.cleared_h = officer, env.now
                return
            yield dispatcher.shift_change

    def close_month(self, month: int, hour: float) -> None:
        self.record.backlog_end[month] = [d.waiting() for d in self.dispatchers.values()]
        self.record.dishonest_end[month], self.record.high_risk_end[month] = self.standing.count(hour / 24.0)
        self.record.settle()  # the month's cleared inspections into compact columns

    def _new_month(self, month: int) -> None:
        """Enterprises leave and new ones take their trade; the adaptive controller (if any) sets this
        month's random ratio and instruction rate."""
        leaving, credit, propensity = population.newcomers(self.scenario, self.firms, month)
        self.standing.replace(leaving, credit)
        self.perception.new_month(leaving)
        self.propensity[leaving] = propensity
        self.record.entered[month] = len(leaving)
        spec = self.scenario.adaptive
        if spec is None:
            return
        last = month - 1
        record = self.record
        counts = MonthCounts(
            *(int(x) for x in record.channel_counts[last]),
            utilization=record.busy_hours[last].sum() / max(record.on_post_hours[last].sum(), 1e-9),
        )
        ratio, rate = next_settings(
            spec, month, record.n_months, counts, self.policy.random_ratio, self.instruction_rate
        )
        self.policy = self.policy.model_copy(update={"random_ratio": ratio})
        self.instruction_rate = rate
        record.ratio_used[month], record.instruction_used[month] = ratio, rate

    def _feedback(self, case: Case) -> None:
        self.standing.record(case.enterprise, case.detected, case.done_h / 24.0)
        deterrence = self.scenario.population.deterrence
        if deterrence:
            self.propensity[case.enterprise] *= 1 - deterrence

    def shifts(self):
        """Keep the on-post list current; count on-post hours per month for utilization."""
        boundaries = shift_boundaries(self.roster, self.scenario, len(self.month_of_hour))
        boundaries = [float(self.start_h)] + [t for t in boundaries if t > self.start_h]
        dispatchers = list(self.dispatchers.values())
        for d in dispatchers:
            d.set_on_post(float(self.start_h))
        for previous, t in zip(boundaries, boundaries[1:]):
            # counted before the wait: SimPy stops before the events at the horizon's very end
            month = self.month_of_hour[min(int(previous), len(self.month_of_hour) - 1)]
            self.record.on_post_hours[month] += [len(d.on_post) * (t - previous) for d in dispatchers]
            yield self.env.timeout(t - self.env.now)
            for d in dispatchers:
                d.set_on_post(t)

    def waiting(self) -> int:
        """Inspections waiting for dispatch, all sites."""
        return sum(d.waiting() for d in self.dispatchers.values())

    # ------------------------------------------------------------ warm starts (simulation/warm.py)

    def warm_state(self) -> dict:
        record = {name: getattr(self.record, name) for name in WARM_COUNTS}
        return {
            "standing": self.standing,
            "propensity": self.propensity,
            "perception": self.perception,
            "pacers": self.screening.decider.pacers,
            "streams": {name: getattr(self, name).getstate() for name in STREAMS},
            "dispatch": {site: d.rng.getstate() for site, d in self.dispatchers.items()},
            "record": record,
            "learner": self.learner,
        }

    def restore(self, state: dict) -> None:
        """Take up a warm state at `start_h` (the same first measured hour it was saved at)."""
        self.standing, self.propensity = state["standing"], state["propensity"]
        self.perception, self.carried_pacers = state["perception"], state["pacers"]
        self.learner = state.get("learner", self.learner)
        for name in STREAMS:
            getattr(self, name).setstate(state["streams"][name])
        for site, rng_state in state["dispatch"].items():
            if site in self.dispatchers:
                self.dispatchers[site].rng.setstate(rng_state)
        warm_months = self.scenario.horizon.warmup_months
        for name, saved in state["record"].items():  # the warm-up months: what the controller reads
            getattr(self.record, name)[:warm_months] = saved[:warm_months]


class Perception:
    """General deterrence (`population.perceived`): each firm's belief of how likely its declarations
    are inspected, from what it has seen (its own declarations and inspections, counts halving every
    `half_life_months`) and heard (last month's office-wide rate, weighted as `prior_declarations`
    declarations), turned monthly into a factor on its chance of violating. Without the setting the
    factor is 1 everywhere and nothing is counted."""

    def __init__(self, spec: Perceived | None, n_firms: int):
        self.spec, self.factor = spec, np.ones(n_firms)
        self.declarations, self.inspected = np.zeros(n_firms), np.zeros(n_firms)
        self.month_declarations = self.month_inspected = 0

    def saw(self, firms: np.ndarray, inspected: np.ndarray) -> None:
        if self.spec is None:
            return
        np.add.at(self.declarations, firms, 1.0)
        np.add.at(self.inspected, firms[inspected], 1.0)
        self.month_declarations += len(firms)
        self.month_inspected += int(inspected.sum())

    def new_month(self, leaving: np.ndarray) -> None:
        spec = self.spec
        if spec is None or not self.month_declarations:
            return
        heard = self.month_inspected / self.month_declarations
        keep = 0.5 ** (1.0 / spec.half_life_months)
        self.declarations *= keep
        self.inspected *= keep
        self.declarations[leaving] = self.inspected[leaving] = 0.0  # a newcomer knows only what it hears
        q = (self.inspected + spec.prior_declarations * heard) / (self.declarations + spec.prior_declarations)
        factor = (np.maximum(q, 1e-6) / spec.reference_rate) ** -spec.elasticity
        self.factor = np.clip(factor, 1 / spec.max_factor, spec.max_factor)
        self.month_declarations = self.month_inspected = 0


STREAMS = ("service_rng", "detect_rng", "release_rng")
CREDIT_VALUES = [c.value for c in CREDIT_CLASSES]  # the event log's names for the batch's codes
TYPE_VALUES = [t.value for t in INSPECTION_TYPES]
WARM_COUNTS = ("channel_counts", "busy_hours", "on_post_hours", "ratio_used", "instruction_used")


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


def run(
    scenario: Scenario,
    seed: int | None = None,
    rules_backend: str = "vector",
    progress: Progress | None = None,
    save_warm: Path | None = None,
    from_warm: Path | None = None,
) -> Results:
    """Simulate the scenario's horizon once; the same scenario and seed give identical results.
    `save_warm`: also save the world at the end of the warm-up there; `from_warm`: start from such a
    state at the first measured hour instead of simulating the warm-up (simulation/warm.py)."""
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    started = time.perf_counter()
    rules = RuleSet.load(scenario.path(scenario.rules))
    start_h, state = warm.load(from_warm, scenario) if from_warm is not None else (0, None)
    office = OfficeModel(scenario, rules, rules_backend, start_h)
    if state is not None:
        office.restore(state)
    office.env.process(office.shifts())
    office.env.process(office.source(progress, save_warm))
    office.env.run(until=len(office.month_of_hour))
    office.close_month(office.record.n_months - 1, float(len(office.month_of_hour)))
    meta = {
        "scenario": scenario.name,
        "scenario_hash": scenario.digest(),
        "rules_version": rules.version,
        "package_version": __version__,
        "seed": scenario.seed,
        "rules_backend": rules_backend,
        "wall_seconds": round(time.perf_counter() - started, 3),
        "from_warm": str(from_warm) if from_warm is not None else None,
    }
    if scenario.arrivals.log:  # what the log recorded decides what a trace run can say (results.py)
        logged = office.decls.logged
        meta["trace"] = {"declarations": int(len(logged)), "with_outcome": int(np.isfinite(logged).sum())}
    office.screening = office.decls = None  # the last month's declarations, before the tables are built
    return build_results(office.record, scenario, meta)
