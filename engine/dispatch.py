"""The second random of double random: who inspects a selected declaration.

The pick is random among the *eligible* inspectors only: on post at that time, not suspended,
qualified for the inspection type, working at the site of the goods, and not rotated out (the same
inspector does not get the same enterprise twice within `rotation_days`), and holding fewer than
`max_open` open inspections where the roster sets a cap. Among them the draw is weighted by current
workload (ASYCUDA-style points of the open inspections: 10 per declaration + 5 per item), or uniform:
an inspector already holding work may be picked, less likely the more they hold.
Nobody eligible, or no free facility of the right type: the request waits, with the reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.declarations import Id, InspectionType
from engine.errors import InputError
from engine.files import first_repeat, read_model


class FacilityType(str, Enum):
    document_desk = "document_desk"
    machine_scan = "machine_scan"
    physical_bay = "physical_bay"
    laboratory = "laboratory"


FACILITY_FOR = {
    InspectionType.document: FacilityType.document_desk,
    InspectionType.scan: FacilityType.machine_scan,
    InspectionType.physical: FacilityType.physical_bay,
}


class Shift(BaseModel):
    """An on-post window 'HH:MM-HH:MM' (may cross midnight) on some weekdays (0 = Monday)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: dt.time
    end: dt.time
    weekdays: frozenset[int] = frozenset(range(7))

    @classmethod
    def parse(cls, text: str, weekdays=frozenset(range(7))) -> Shift:
        try:
            start, end = (dt.time.fromisoformat(t.strip()) for t in text.split("-"))
        except ValueError:
            raise ValueError(f"a shift is 'HH:MM-HH:MM', got {text!r}") from None
        return cls(start=start, end=end, weekdays=weekdays)

    def covers(self, at: dt.datetime) -> bool:
        t = at.time()
        if self.start < self.end:
            return at.weekday() in self.weekdays and self.start <= t < self.end
        # overnight: the part after midnight belongs to the shift that began the day before
        if t >= self.start:
            return at.weekday() in self.weekdays
        return t < self.end and (at.weekday() - 1) % 7 in self.weekdays


class Inspector(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Id("the inspector")
    site: str = Id("the customs office or section worked at")
    shifts: list[Shift] = Field(min_length=1)
    qualifications: set[InspectionType] = Field(min_length=1)
    suspended: bool = False

    @field_validator("shifts", mode="before")
    @classmethod
    def _shift_texts(cls, value):
        return [Shift.parse(s) if isinstance(s, str) else s for s in value]

    def on_post(self, at: dt.datetime) -> bool:
        return any(s.covers(at) for s in self.shifts)


class Roster(BaseModel):
    """Inspectors, facilities per site, and the dispatch rules: a YAML file for live use."""

    model_config = ConfigDict(extra="forbid")

    per_declaration: float = Field(default=10, ge=0, description="workload points per open declaration")
    per_item: float = Field(default=5, ge=0, description="workload points per goods item")
    weighting: Literal["workload", "uniform"] = "workload"
    rotation_days: int = Field(default=30, ge=0)
    max_open: int | None = Field(
        default=None, ge=1, description="most inspections an inspector holds open (dispatched, no result)"
    )
    recheck_share: float = Field(default=0.0, ge=0, le=1, description="finished inspections re-inspected")
    time_zone: str | None = Field(
        default=None,
        description="IANA zone the shifts are read in (Asia/Seoul); unset: the server's local time",
    )
    time_zones: dict[str, str] = Field(default={}, description="site -> its own zone, over time_zone")
    facilities: dict[str, dict[FacilityType, int]] = {}
    inspectors: list[Inspector] = Field(min_length=1)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _zone(value).key

    @field_validator("time_zones")
    @classmethod
    def _known_zones(cls, value: dict[str, str]) -> dict[str, str]:
        return {site: _zone(name).key for site, name in value.items()}

    @field_validator("inspectors")
    @classmethod
    def _each_inspector_once(cls, value: list[Inspector]) -> list[Inspector]:
        twice = first_repeat(value, lambda person: person.id)
        if twice is not None:  # listed twice would mean twice the draw weight
            raise ValueError(f"inspector {twice.id!r} is listed twice; one entry per inspector")
        return value

    @model_validator(mode="after")
    def _zones_of_known_sites(self) -> Roster:
        sites = {p.site for p in self.inspectors}
        for site in self.time_zones:
            if site not in sites:  # a misspelt site would silently keep the default zone
                raise ValueError(f"time_zones names {site!r}, where no inspector on the roster works")
        return self

    @classmethod
    def load(cls, path: str | Path) -> Roster:
        return read_model(path, cls, "roster")

    def zone(self, site: str) -> str | None:
        return self.time_zones.get(site, self.time_zone)

    def wall_time(self, site: str, at: dt.datetime) -> dt.datetime:
        """The clock on the wall at the site, which the shifts are written in. An instant with an
        offset (the service's clock, UTC) is converted to the site's zone, or to the server's own
        zone where the roster names none; a time without one (`--at 11:00`) is already wall time."""
        if at.tzinfo is None:
            return at
        zone = self.zone(site)
        return (at.astimezone(ZoneInfo(zone)) if zone else at.astimezone()).replace(tzinfo=None)

    def inspector(self, inspector_id: str) -> Inspector:
        for person in self.inspectors:
            if person.id == inspector_id:
                return person
        raise InputError(f"no inspector {inspector_id!r} on the roster")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as Asia/Seoul") from None


@dataclass(frozen=True)
class Request:
    declaration_id: str
    enterprise_id: str
    site: str
    inspection_type: InspectionType
    items: int = 1
    exclude: frozenset[str] = frozenset()  # e.g. the first inspector, for a re-check


@dataclass(frozen=True)
class Assignment:
    declaration_id: str
    inspector_id: str
    facility: str
    draw: float
    candidates: list[str]
    weights: list[float]
    manual: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Waiting:
    declaration_id: str
    reason: str


@dataclass
class Workload:
    """What dispatch needs to know about the office right now."""

    points: dict[str, float] = field(default_factory=dict)  # inspector id -> open workload
    open: dict[str, int] = field(default_factory=dict)  # inspector id -> inspections dispatched, no result
    recent: set[tuple[str, str]] = field(default_factory=set)  # (inspector, enterprise) within rotation
    facilities_busy: dict[tuple[str, str], int] = field(default_factory=dict)  # (site, type) -> in use


def eligible(
    roster: Roster, request: Request, at: dt.datetime, load: Workload
) -> tuple[list[Inspector], str]:
    """The inspectors who may take this request, or [] and the reason nobody may."""
    people = [p for p in roster.inspectors if p.site == request.site and p.id not in request.exclude]
    wall = roster.wall_time(request.site, at)
    steps = [
        (f"no inspector works at {request.site}", lambda p: True),
        (f"no inspector is on post ({_when(roster, request.site, wall)})", lambda p: p.on_post(wall)),
        ("every inspector on post is suspended", lambda p: not p.suspended),
        (
            f"nobody on post is qualified for {request.inspection_type.value} inspection",
            lambda p: request.inspection_type in p.qualifications,
        ),
        (
            f"every qualified inspector inspected {request.enterprise_id} within {roster.rotation_days} days",
            lambda p: (p.id, request.enterprise_id) not in load.recent,
        ),
        (
            f"every eligible inspector holds {roster.max_open} open inspections",
            lambda p: roster.max_open is None or load.open.get(p.id, 0) < roster.max_open,
        ),
    ]
    for reason, keep in steps:
        people = [p for p in people if keep(p)]
        if not people:
            return [], reason
    return people, ""


def _when(roster: Roster, site: str, wall: dt.datetime) -> str:
    """'Mon 03:12 at OFF-40, Asia/Seoul': the site's time that put nobody on post."""
    return f"{wall:%a %H:%M} at {site}, {roster.zone(site) or 'server time'}"


def weight(roster: Roster, points: float) -> float:
    """Less loaded inspectors are likelier: 1 / (1 + open points / points per declaration), at most 1."""
    if roster.weighting == "uniform":
        return 1.0
    return 1.0 / (1.0 + points / (roster.per_declaration or 1.0))


def weights(roster: Roster, people: list[Inspector], load: Workload) -> list[float]:
    return [weight(roster, load.points.get(p.id, 0.0)) for p in people]


def pick(weights_: list[float], u: float) -> int:
    """Inverse-CDF pick: index i with probability weights[i] / sum(weights), for u in [0, 1)."""
    target, running = u * sum(weights_), 0.0
    for i, w in enumerate(weights_):
        running += w
        if target < running:
            return i
    return len(weights_) - 1


def dispatch(
    roster: Roster, request: Request, at: dt.datetime, load: Workload, u: float
) -> Assignment | Waiting:
    """Assign at random among the eligible, or say why the request must wait."""
    facility = FACILITY_FOR[request.inspection_type]
    capacity = roster.facilities.get(request.site, {}).get(facility, 0)
    if capacity == 0:
        return Waiting(request.declaration_id, f"no {facility.value} at {request.site}")
    if load.facilities_busy.get((request.site, facility.value), 0) >= capacity:
        return Waiting(
            request.declaration_id, f"all {capacity} {facility.value} at {request.site} are in use"
        )
    people, reason = eligible(roster, request, at, load)
    if not people:
        return Waiting(request.declaration_id, reason)
    w = weights(roster, people, load)
    chosen = people[pick(w, u)]
    return Assignment(request.declaration_id, chosen.id, facility.value, u, [p.id for p in people], w)


def workload_points(roster: Roster, items: int) -> float:
    return roster.per_declaration + roster.per_item * items
