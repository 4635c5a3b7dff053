"""Random dispatch: only the eligible, in proportion to the intended weights, with rotation and waits."""

from __future__ import annotations

import datetime as dt
import random
import re

import pytest
from scipy import stats

from engine.declarations import InspectionType
from engine.dispatch import Assignment, Request, Roster, Shift, Waiting, Workload, dispatch, eligible, weights
from engine.errors import InputError

MORNING = dt.datetime(2026, 6, 1, 9, 0)  # a Monday


def roster(**extra) -> Roster:
    people = [
        {
            "id": "A",
            "site": "S1",
            "shifts": ["08:00-16:00"],
            "qualifications": ["document", "scan", "physical"],
        },
        {"id": "B", "site": "S1", "shifts": ["08:00-16:00"], "qualifications": ["document", "physical"]},
        {"id": "C", "site": "S1", "shifts": ["08:00-16:00"], "qualifications": ["physical"]},
        {"id": "D", "site": "S1", "shifts": ["08:00-16:00"], "qualifications": ["physical"]},
        {"id": "NIGHT", "site": "S1", "shifts": ["22:00-06:00"], "qualifications": ["physical"]},
        {
            "id": "SUSP",
            "site": "S1",
            "shifts": ["00:00-23:59"],
            "qualifications": ["physical"],
            "suspended": True,
        },
        {"id": "FAR", "site": "S2", "shifts": ["00:00-23:59"], "qualifications": ["physical"]},
    ]
    base = {
        "facilities": {"S1": {"physical_bay": 5, "document_desk": 2, "machine_scan": 1}},
        "inspectors": people,
    }
    return Roster.model_validate(base | extra)


def request(kind: str = "physical", firm: str = "E1", site: str = "S1", exclude=frozenset()) -> Request:
    return Request("D1", firm, site, InspectionType(kind), 1, frozenset(exclude))


def test_overnight_shift_belongs_to_the_day_it_starts():
    night = Shift.parse("22:00-06:00", weekdays=frozenset({0}))  # Monday night only
    assert night.covers(dt.datetime(2026, 6, 1, 23, 0))  # Monday 23:00
    assert night.covers(dt.datetime(2026, 6, 2, 5, 59))  # Tuesday 05:59, same shift
    assert not night.covers(dt.datetime(2026, 6, 2, 6, 0))
    assert not night.covers(dt.datetime(2026, 6, 2, 23, 0))  # Tuesday night: not on the roster


def test_never_dispatches_to_the_ineligible():
    """Random times, kinds and sites: every pick is on post, unsuspended, qualified and on site."""
    office, rng = roster(), random.Random(4)
    picked = set()
    for _ in range(3000):
        at = MORNING + dt.timedelta(minutes=rng.randint(0, 7 * 24 * 60))
        req = request(rng.choice(["document", "scan", "physical"]), site=rng.choice(["S1", "S2"]))
        out = dispatch(office, req, at, Workload(), rng.random())
        if isinstance(out, Assignment):
            person = office.inspector(out.inspector_id)
            assert person.on_post(at) and not person.suspended
            assert req.inspection_type in person.qualifications and person.site == req.site
            picked.add(out.inspector_id)
    assert "SUSP" not in picked and {"A", "B", "C", "D", "NIGHT"} <= picked


def test_picks_follow_workload_weights_chi_square():
    office = roster()
    load = Workload(points={"A": 0, "B": 10, "C": 30, "D": 90})  # weights 1, 1/2, 1/4, 1/10
    people, _ = eligible(office, request(), MORNING, load)
    w = weights(office, people, load)
    assert [p.id for p in people] == ["A", "B", "C", "D"] and w == [1.0, 0.5, 0.25, 0.1]
    rng = random.Random(10)
    counts = {p.id: 0 for p in people}
    n = 10_000
    for _ in range(n):
        counts[dispatch(office, request(), MORNING, load, rng.random()).inspector_id] += 1
    expected = [n * x / sum(w) for x in w]
    assert stats.chisquare(list(counts.values()), expected).pvalue > 0.01


def test_uniform_weighting_ignores_workload():
    office = roster(weighting="uniform")
    load = Workload(points={"A": 0, "B": 500})
    people, _ = eligible(office, request(), MORNING, load)
    assert weights(office, people, load) == [1.0] * len(people)


def test_rotation_excludes_a_recent_pair_and_waits_when_nobody_is_left():
    office = roster()
    recent = {("A", "E1"), ("B", "E1"), ("C", "E1")}
    out = dispatch(office, request(), MORNING, Workload(recent=recent), 0.3)
    assert out.inspector_id == "D" and out.candidates == ["D"]
    everyone = recent | {("D", "E1")}
    waiting = dispatch(office, request(), MORNING, Workload(recent=everyone), 0.3)
    assert isinstance(waiting, Waiting) and "inspected E1 within 30 days" in waiting.reason
    assert dispatch(office, request(firm="E2"), MORNING, Workload(recent=everyone), 0.3).inspector_id


@pytest.mark.parametrize(
    "req, at, busy, reason",
    [
        (request(site="S9"), MORNING, {}, "no physical_bay at S9"),
        (request("scan"), MORNING, {("S1", "machine_scan"): 1}, "all 1 machine_scan at S1 are in use"),
        (request("scan"), dt.datetime(2026, 6, 1, 17, 0), {}, "every inspector on post is suspended"),
        (request("scan", exclude={"SUSP"}), dt.datetime(2026, 6, 1, 17, 0), {}, "no inspector is on post"),
        (request("document", exclude={"A", "B"}), MORNING, {}, "nobody on post is qualified for document"),
    ],
)
def test_nobody_eligible_waits_with_the_reason(req, at, busy, reason):
    out = dispatch(roster(), req, at, Workload(facilities_busy=busy), 0.5)
    assert isinstance(out, Waiting) and reason in out.reason


def test_suspended_only_waits():
    office = roster(
        inspectors=[
            {
                "id": "S",
                "site": "S1",
                "shifts": ["00:00-23:59"],
                "qualifications": ["physical"],
                "suspended": True,
            }
        ]
    )
    assert "suspended" in dispatch(office, request(), MORNING, Workload(), 0.5).reason


def test_bad_roster_is_refused_with_the_field(tmp_path):
    path = tmp_path / "roster.yaml"
    path.write_text("inspectors:\n  - {id: A, site: S1, shifts: ['8 to 4'], qualifications: [document]}\n")
    with pytest.raises(InputError, match=r"roster.yaml: field 'inspectors\[0\].shifts'"):
        Roster.load(path)


def test_shifts_are_read_in_each_sites_zone_not_the_servers():
    """One instant, 23:30 UTC on a Sunday: Monday 08:30 in Seoul, where the day shift is on post, and
    Monday 00:30 in London, where nobody is. The roster's zones decide, whatever the server's zone;
    a time without an offset is the site's wall time already."""
    people = [
        {"id": "SEOUL", "site": "S1", "shifts": ["08:00-16:00"], "qualifications": ["physical"]},
        {"id": "LONDON", "site": "S2", "shifts": ["08:00-16:00"], "qualifications": ["physical"]},
    ]
    office = Roster.model_validate(
        {
            "time_zone": "Asia/Seoul",
            "time_zones": {"S2": "Europe/London"},
            "facilities": {"S1": {"physical_bay": 1}, "S2": {"physical_bay": 1}},
            "inspectors": people,
        }
    )
    instant = dt.datetime(2026, 5, 31, 23, 30, tzinfo=dt.timezone.utc)
    assert dispatch(office, request(site="S1"), instant, Workload(), 0.5).inspector_id == "SEOUL"
    waits = dispatch(office, request(site="S2"), instant, Workload(), 0.5)
    assert isinstance(waits, Waiting)
    assert waits.reason == "no inspector is on post (Mon 00:30 at S2, Europe/London)"
    # the same wall time without an offset: 08:30 at either site, both on post
    wall = dt.datetime(2026, 6, 1, 8, 30)
    assert dispatch(office, request(site="S2"), wall, Workload(), 0.5).inspector_id == "LONDON"
    # an hour later in UTC is 09:30 in Seoul and still night in London
    later = dispatch(office, request(site="S2"), instant + dt.timedelta(hours=1), Workload(), 0.5)
    assert isinstance(later, Waiting) and "01:30" in later.reason


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"time_zone": "Asia/Soul"}, "unknown time zone 'Asia/Soul'"),
        ({"time_zones": {"S1": "+09:00"}}, "unknown time zone '+09:00'"),
        ({"time_zones": {"S7": "Asia/Seoul"}}, "time_zones names 'S7', where no inspector"),
    ],
)
def test_a_roster_with_an_unknown_zone_or_site_is_refused(extra, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=re.escape(message)):
        roster(**extra)
