"""Inspectors and facilities during a run: who is on post and idle, and the random pick among them.

The simulated twin of `engine.dispatch`, meaning what the live office means: an inspection is
dispatched once a facility of its type is free and some inspector is eligible (on post, qualified, not
rotated out, under the roster's `max_open` if it sets one), idle or not; the pick is weighted by open
work (`engine.dispatch.weight` of `workload_points` per inspection dispatched and not finished, as the
live office counts it). The facility is held from dispatch to the result, as live. An inspector
works their dispatched inspections one at a time, in the order they were handed over (`turn`), so
an inspection handed to a busy inspector waits for them even while a colleague is idle: the cost of
a random pick that the workload weighting reduces. Kept in sets so a year of dispatches stays fast.
A parity test runs both on the same office, with busy inspectors and unequal workloads.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import deque

import numpy as np
import simpy

from engine.declarations import InspectionType
from engine.dispatch import FACILITY_FOR, Inspector, Roster, Shift, weight, workload_points
from engine.randomness import stream_generator
from simulation.recorder import Case
from simulation.scenario import Scenario


def build_roster(scenario: Scenario) -> Roster:
    """Each site's inspectors split over its shifts by share; in each shift a share qualified for each
    type. One site keeps the ids INS-001...; several are prefixed with the site's name."""
    rng = stream_generator(scenario.seed, "roster")
    sites = scenario.sites
    people = []
    for site in sites:
        spec, prefix = site.inspectors, (f"{site.name}-" if len(sites) > 1 else "")
        shares = np.array([s.share for s in spec.shifts])
        sizes = np.floor(spec.count * shares / shares.sum()).astype(int)
        for k in np.argsort(-(spec.count * shares / shares.sum() - sizes))[: spec.count - sizes.sum()]:
            sizes[k] += 1  # largest remainders
        number = 0
        for shift, size in zip(spec.shifts, sizes):
            qualified = {
                t: set(rng.permutation(size)[: max(1, round(share * size))])
                for t, share in spec.qualified.items()
            }
            for k in range(size):
                number += 1
                kinds = [t for t in InspectionType if k in qualified.get(t, ())] or [InspectionType.document]
                people.append(
                    Inspector(
                        id=f"{prefix}INS-{number:03d}",
                        site=site.name,
                        qualifications=set(kinds),
                        shifts=[Shift.parse(shift.hours, frozenset(shift.weekdays))],
                    )
                )
    first = sites[0].inspectors  # each site's Dispatcher applies its own dispatch settings (site_rules)
    return Roster(
        per_declaration=first.per_declaration,
        per_item=first.per_item,
        weighting=first.weighting,
        rotation_days=int(first.rotation_days),
        max_open=first.max_open,
        inspectors=people,
        facilities={site.name: dict(site.facilities) for site in sites},
    )


def site_rules(roster: Roster, scenario: Scenario, site: str) -> Roster:
    """The roster with this site's dispatch settings (weighting, workload points, rotation): every
    site honours its own, as the scenario says (the office's template unless the site overrides it)."""
    spec = next(s.inspectors for s in scenario.sites if s.name == site)
    return roster.model_copy(
        update={
            "per_declaration": spec.per_declaration,
            "per_item": spec.per_item,
            "weighting": spec.weighting,
            "rotation_days": int(spec.rotation_days),
            "max_open": spec.max_open,
        }
    )


class Dispatcher:
    """Waiting inspections per type, and who and what is free; dispatches as soon as it can.

    Among the eligible inspectors the pick is by rejection sampling: draw one uniformly, accept it
    with probability equal to its dispatch weight (at most 1, and 1 for an inspector with no open
    work). That gives exactly the engine's workload-weighted choice without weighing everyone each
    time.
    """

    def __init__(
        self, env: simpy.Environment, roster: Roster, scenario: Scenario, rng: random.Random, site: str
    ):
        self.env, self.roster, self.rng, self.site = env, site_rules(roster, scenario, site), rng, site
        self.start = dt.datetime.combine(scenario.horizon.start, dt.time())
        self.people = [p for p in roster.inspectors if p.site == site]  # nobody works outside their site
        self.kinds = {p.id: [t for t in InspectionType if t in p.qualifications] for p in self.people}
        self.free = {t: roster.facilities[site].get(FACILITY_FOR[t], 0) for t in InspectionType}
        self.open: dict[str, int] = {p.id: 0 for p in self.people}  # dispatched, not finished
        self.busy: set[str] = set()  # inspectors at work on an inspection
        self.desks: dict[str, deque] = {p.id: deque() for p in self.people}  # work waiting its turn
        self.on_post: list[str] = []
        self._rota: dict[tuple[int, dt.time], list[str]] = {}  # (weekday, time): on post then
        self._on_post_set: set[str] = set()
        self.available = {t: _IndexedSet() for t in InspectionType}  # eligible: on post, qualified, under cap
        self.queues: dict[InspectionType, deque] = {t: deque() for t in InspectionType}
        self.points: dict[str, float] = {}  # open work: dispatched, not finished
        self.last_visit: dict[tuple[str, int], float] = {}
        self.rotation_h = next(s.inspectors.rotation_days for s in scenario.sites if s.name == site) * 24
        self.shift_change = env.event()

    def waiting(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def request(self, case: Case) -> simpy.Event | None:
        """Queue the inspection and dispatch what can go. None when it went at once (its inspector
        is then set on the case, with no event to wait for); else the event its dispatch succeeds
        with the inspector."""
        entry = [case, None]
        self.queues[InspectionType(case.inspection_type)].append(entry)
        self.try_dispatch()
        if case.inspector:
            return None
        entry[1] = self.env.event()
        return entry[1]

    def turn(self, inspector: str) -> simpy.Event | None:
        """The inspector's own turn: their dispatched inspections are worked one at a time, in the
        order handed over. None when they are free (the work starts at once, with no event), else
        an event that `done` succeeds when the work before it ends: a queue per inspector rather
        than a SimPy resource, whose request and release cost two events per inspection."""
        if inspector not in self.busy:
            self.busy.add(inspector)
            return None
        waiting = self.env.event()
        self.desks[inspector].append(waiting)
        return waiting

    def done(self, inspector: str) -> None:
        """The inspector finished the work in hand: the next handed over starts now."""
        if self.desks[inspector]:
            self.desks[inspector].popleft().succeed()
        else:
            self.busy.discard(inspector)

    def release_inspector(self, inspector: str, kind: InspectionType) -> None:
        """An inspection's result is in: its facility and the inspector's open work are freed."""
        self.open[inspector] -= 1
        self.points[inspector] -= workload_points(self.roster, 1)
        self.free[kind] += 1
        if inspector in self._on_post_set:
            self._make_available(inspector)
        self.try_dispatch()

    def _under_cap(self, inspector: str) -> bool:
        cap = self.roster.max_open
        return cap is None or self.open[inspector] < cap

    def set_on_post(self, at_h: float) -> None:
        at = self.start + dt.timedelta(hours=at_h)
        week = (at.weekday(), at.time())  # shifts repeat weekly: who is on post is read once per slot
        if week not in self._rota:
            self._rota[week] = [p.id for p in self.people if p.on_post(at)]
        self.on_post = self._rota[week]
        self._on_post_set = set(self.on_post)
        self.available = {t: _IndexedSet() for t in InspectionType}
        for inspector in self.on_post:
            self._make_available(inspector)
        self.try_dispatch()
        self.shift_change.succeed()
        self.shift_change = self.env.event()

    def _make_available(self, inspector: str) -> None:
        if self._under_cap(inspector):
            for kind in self.kinds[inspector]:
                self.available[kind].add(inspector)

    def try_dispatch(self) -> None:
        """Serve the oldest waiting inspection that a free facility and an eligible inspector allow."""
        while True:  # per-kind queues: only their heads (at most one per type) are ever ordered
            heads = [
                (q[0][0].arrival_h, t)
                for t, q in self.queues.items()
                if q and self.free[t] > 0 and self.available[t]
            ]
            if not heads:
                return
            if len(heads) > 1:
                heads.sort()
            if not any([self._serve(kind) for _, kind in heads]):
                return

    def _serve(self, kind: InspectionType) -> bool:
        if not self.available[kind]:
            return False
        queue = self.queues[kind]
        if not self.rotation_h:
            case, done = queue.popleft()
            chosen = self._pick(self.available[kind].items)
        else:  # the rotation rule may rule out some pairs: first waiting inspection that can go
            for position, (case, done) in enumerate(queue):  # noqa: B007 - done is used after the break
                allowed = [i for i in self.available[kind].items if not self._rotated(i, case)]
                if allowed:
                    del queue[position]
                    chosen = self._pick(allowed)
                    break
            else:
                return False
        self._assign(chosen, case, kind)
        if done is None:  # the inspection being requested: it goes on at once
            case.inspector = chosen
        else:
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
        self.open[inspector] += 1
        if not self._under_cap(inspector):
            for k in self.kinds[inspector]:
                self.available[k].discard(inspector)
        self.free[kind] -= 1
        self.points[inspector] = self.points.get(inspector, 0.0) + workload_points(self.roster, 1)
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
