"""The live office: select -> dispatch -> result -> transfer or release, with feedback and audit."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.declarations import CreditClass, parse_declaration
from engine.dispatch import Roster
from engine.errors import Conflict, InputError, NotFound
from engine.integrity import FeedbackPolicy
from engine.office import Office
from engine.randomness import KeyedDraws
from engine.rules import RuleSet
from engine.selection import SelectionPolicy
from tests.conftest import BASELINE_RULES, declaration_data

DAY = dt.datetime(2026, 6, 1, 9, 0)
ROSTER = {
    "facilities": {"OFF-40": {"document_desk": 5, "machine_scan": 5, "physical_bay": 5}},
    "inspectors": [
        {
            "id": f"I{i}",
            "site": "OFF-40",
            "shifts": ["00:00-23:59"],
            "qualifications": ["document", "scan", "physical"],
        }
        for i in range(1, 5)
    ],
}
TEXTILE = {"hs_code": "930690", "declared_value": 100.0}  # WEAPONS-PARTS: always targeted
ALWAYS = {"HIGH-RISK-ENTERPRISE": 1.0, "DISHONEST-ENTERPRISE": 1.0}  # no sampling: the feedback shows at once
PLAIN = {"hs_code": "940360", "declared_value": 50000.0}  # no baseline rule unless the firm is flagged


@pytest.fixture
def office(store_url) -> Office:
    """On each backend: SQLite, and PostgreSQL when the test server is there."""
    return make_office(store_url)


def make_office(url, ratio=0.0, feedback=None, **roster) -> Office:
    return Office(
        url,
        rules=RuleSet.load(BASELINE_RULES),
        policy=SelectionPolicy(random_ratio=ratio, rule_sampling=ALWAYS),
        draws=KeyedDraws.from_seed(1),
        roster=Roster.model_validate(ROSTER | roster),
        feedback=feedback,
    )


def lodge(office: Office, id: str, firm: str = "E1", day: int = 0, **fields):
    at = DAY + dt.timedelta(days=day)
    data = declaration_data(id=id, enterprise_id=firm, declared_at=at.isoformat(), **fields)
    return office.admit(parse_declaration(data), at)


def inspect(office: Office, id: str, outcome: str, day: int = 0):
    """The inspection `admit` dispatched: its inspector records the outcome."""
    at = DAY + dt.timedelta(days=day)
    task = office.inspection(id)
    assert task["status"] == "dispatched", task
    department = "duties" if outcome == "problem" else ""
    return task["inspector_id"], office.record_result(
        id, task["inspector_id"], outcome, "undervaluation", department, at
    )


def test_a_problem_makes_the_firm_a_target_for_its_next_declaration(office):
    assert lodge(office, "P0", firm="E7", **PLAIN).selected is False  # not a target yet
    assert lodge(office, "P1", firm="E7", **TEXTILE).channel == "targeted"
    _, outcome = inspect(office, "P1", "problem")
    assert outcome["status"] == "transferred"
    assert {c["field"] for c in outcome["changes"]} >= {"high_risk", "high_risk_until", "problems"}
    later = lodge(office, "P2", firm="E7", day=1, **PLAIN)
    assert later.selected and "HIGH-RISK-ENTERPRISE" in later.rules
    assert office.inspection("P1")["department"] == "duties"
    kinds = [r["kind"] for r in office.audit.records()]
    assert kinds.count("transfer") == 1 and "integrity_change" in kinds


def test_nobody_releases_what_they_inspected(office):
    lodge(office, "R1", **TEXTILE)
    inspector, outcome = inspect(office, "R1", "normal")
    assert outcome["status"] == "awaiting_release"
    with pytest.raises(InputError, match="may not also release it"):
        office.release("R1", inspector)
    assert office.inspection("R1")["status"] == "awaiting_release"  # the refusal changed nothing
    office.release("R1", "OFFICER-9")
    assert office.inspection("R1")["released_by"] == "OFFICER-9"


def test_a_declaration_not_selected_is_a_conflict_to_release_and_an_unknown_one_is_not_found(office):
    """The declaration exists but cleared without inspection: 409, not a 404 saying it does not exist."""
    cleared = next(f"N{i}" for i in range(20) if not lodge(office, f"N{i}", day=i, **PLAIN).selected)
    records = list(office.audit.records())
    with pytest.raises(Conflict, match=f"{cleared} was not selected for inspection"):
        office.release(cleared, "OFFICER-9")
    with pytest.raises(NotFound, match="no inspection 'NOPE'"):
        office.release("NOPE", "OFFICER-9")
    assert list(office.audit.records()) == records and office.inspection(cleared) is None


def test_only_the_assigned_inspector_records_a_result(office):
    lodge(office, "W1", **TEXTILE)
    assigned = office.inspection("W1")["inspector_id"]
    other = next(f"I{i}" for i in range(1, 5) if f"I{i}" != assigned)
    with pytest.raises(InputError, match=f"assigned to {assigned}"):
        office.record_result("W1", other, "normal")
    with pytest.raises(InputError, match="transferred to one of"):
        office.record_result("W1", assigned, "problem", department="nowhere")


def test_admit_is_idempotent_and_notices_a_changed_declaration(office):
    first = lodge(office, "I1", **TEXTILE)
    assert lodge(office, "I1", **TEXTILE) == first  # the same declaration again: the first decision
    records, state = list(office.audit.records()), office.inspection("I1")
    with pytest.raises(
        InputError, match=r"decided before with different content \(declared_value, hs_code differ\)"
    ):
        lodge(office, "I1", **PLAIN)  # an amendment keeping its id is not waved through
    assert list(office.audit.records()) == records and office.inspection("I1") == state
    assert sum(1 for _ in office.audit.records("selection")) == 1


def test_manual_reassignment_needs_a_reason_and_an_eligible_inspector(office):
    lodge(office, "M1", **TEXTILE)
    first = office.inspection("M1")
    to = next(f"I{i}" for i in range(1, 5) if f"I{i}" != first["inspector_id"])
    with pytest.raises(InputError, match="needs a reason"):
        office.reassign("M1", to, "CHIEF", "  ", DAY)
    with pytest.raises(InputError, match="may not take"):
        office.reassign("M1", "NOBODY", "CHIEF", "sick", DAY)
    moved = office.reassign("M1", to, "CHIEF", "inspector called in sick", DAY)
    assert moved.manual and office.inspection("M1")["inspector_id"] == to
    record = list(office.audit.records("manual_reassignment"))[-1]["payload"]
    assert record == {
        "inspection": "M1",
        "from": first["inspector_id"],
        "to": to,
        "by": "CHIEF",
        "reason": "inspector called in sick",
    }


def test_k_problems_downgrade_and_a_clean_streak_restores(store_url):
    policy = FeedbackPolicy(downgrade_after_problems=2, downgrade_window_days=365, restore_after_clean=3)
    office = make_office(store_url, feedback=policy, rotation_days=0)
    for n, outcome in enumerate(["problem", "problem"]):
        lodge(office, f"K{n}", day=n, **TEXTILE)
        inspect(office, f"K{n}", outcome, day=n)
    assert office.integrity.get("E1").credit_class == CreditClass.dishonest
    assert "DISHONEST-ENTERPRISE" in lodge(office, "K9", day=3, **PLAIN).rules
    for n in range(3):
        lodge(office, f"C{n}", day=10 + n, **TEXTILE)
        inspect(office, f"C{n}", "normal", day=10 + n)
    restored = office.integrity.get("E1")
    assert restored.credit_class == CreditClass.general and not restored.high_risk


def test_problems_outside_the_window_do_not_downgrade(store_url):
    office = make_office(store_url, feedback=FeedbackPolicy(downgrade_window_days=30), rotation_days=0)
    lodge(office, "O1", **TEXTILE)
    inspect(office, "O1", "problem")
    lodge(office, "O2", day=60, **TEXTILE)
    inspect(office, "O2", "problem", day=60)
    assert office.integrity.get("E1").credit_class == CreditClass.general


def test_agency_list_is_honoured_and_a_bad_list_changes_nothing(office, tmp_path):
    good = tmp_path / "agency.csv"
    good.write_text(
        "enterprise_id,status,source,date\nE5,dishonest,tax-bureau,2026-05-20\n"
        "E6,high_risk,market-regulator,2026-05-20\n"
    )
    changes = office.import_agency_list(good)
    assert {(c["enterprise_id"], c["field"]) for c in changes} >= {
        ("E5", "credit_class"),
        ("E6", "high_risk"),
    }
    assert "DISHONEST-ENTERPRISE" in lodge(office, "A1", firm="E5", **PLAIN).rules
    assert "HIGH-RISK-ENTERPRISE" in lodge(office, "A2", firm="E6", **PLAIN).rules
    bad = tmp_path / "bad.csv"
    bad.write_text("enterprise_id,status,source,date\nE8,dishonest,x,2026-05-20\nE9,naughty,x,2026-05-20\n")
    with pytest.raises(InputError, match=r"bad.csv:3: field 'status'"):
        office.import_agency_list(bad)
    assert office.integrity.get("E8").credit_class == CreditClass.general
    out = tmp_path / "export.csv"
    assert office.integrity.export_discipline_list(out, dt.date(2026, 6, 1)) == 2
    assert "E5,dishonest,customs" in out.read_text()


def test_a_recheck_goes_to_a_different_inspector(store_url):
    office = make_office(store_url, recheck_share=1.0)
    lodge(office, "Q1", **TEXTILE)
    first, outcome = inspect(office, "Q1", "normal")
    assert outcome["recheck"] is True
    for _ in range(20):  # whatever the draw, the re-check never goes back to the first inspector
        again = office.dispatch("Q1~recheck", DAY)
        assert again.inspector_id != first
        office.store.db.execute(
            "UPDATE inspections SET status = 'selected', dispatched_at = NULL WHERE id = 'Q1~recheck'"
        )
    assert office.inspection("Q1~recheck")["kind"] == "recheck" and office.inspection("Q1")["kind"] == "first"


def test_a_waiting_inspection_is_recorded_with_its_reason(store_url):
    office = make_office(
        store_url,
        inspectors=[{"id": "N", "site": "OFF-40", "shifts": ["22:00-06:00"], "qualifications": ["physical"]}],
    )
    lodge(office, "Z1", **TEXTILE)  # admitted at 09:00: selected, and its dispatch waits
    assert office.inspection("Z1")["status"] == "waiting"
    waiting = office.dispatch("Z1", DAY)
    assert waiting.reason == "no inspector is on post (Mon 09:00 at OFF-40, server time)"
    assert office.inspection("Z1")["wait_reason"] == waiting.reason
    assert office.dispatch("Z1", DAY.replace(hour=23)).inspector_id == "N"


def test_a_problem_extends_a_high_risk_flag_and_never_shortens_it():
    from engine.declarations import Enterprise

    policy, on = FeedbackPolicy(high_risk_days=30), dt.date(2026, 6, 1)
    long_flag = Enterprise(id="E", high_risk=True, high_risk_until=dt.date(2026, 12, 31))
    assert policy.apply(long_flag, 0, True, on, 0)[0].high_risk_until == dt.date(2026, 12, 31)
    short_flag = Enterprise(id="E", high_risk=True, high_risk_until=dt.date(2026, 6, 10))
    assert policy.apply(short_flag, 0, True, on, 0)[0].high_risk_until == dt.date(2026, 7, 1)
    permanent = Enterprise(id="E", high_risk=True)
    assert policy.apply(permanent, 0, True, on, 0)[0].high_risk_until is None


def test_a_suspended_inspector_gets_no_dispatch_even_after_a_restart_until_put_back(store_url):
    """A chief's suspension is audited and applied by every office on the database: the one that
    recorded it, and one opened afterwards (a restart, another instance), over the roster file."""
    office = make_office(store_url)
    assert office.suspend("I1", True, "CHIEF-1", "on leave")["suspended"] is True
    restarted = make_office(store_url)  # the roster file knows nothing of it

    def picks(by: list, ids: range) -> set:
        out = set()
        for k in ids:  # each inspection finished at once, so nobody is ever busy
            lodge(by[k % len(by)], f"S{k}", firm=f"E{k}", day=k, **TEXTILE)
            out.add(inspect(by[k % len(by)], f"S{k}", "normal", k)[0])
        return out

    assert picks([office, restarted], range(24)) == {"I2", "I3", "I4"}  # 24 picks among the three left
    restarted.suspend("I1", False, "CHIEF-1", "back from leave")
    assert "I1" in picks([office], range(24, 60))  # the other office saw the return too
    records = list(office.audit.records())
    with pytest.raises(NotFound, match="no inspector 'I9'"):
        office.suspend("I9", True, "CHIEF-1", "on leave")
    with pytest.raises(InputError, match="needs a reason"):
        office.suspend("I2", True, "CHIEF-1", "  ")
    assert list(office.audit.records()) == records  # refused: nothing recorded
    kinds = [r["payload"]["suspended"] for r in records if r["kind"] == "suspension"]
    assert kinds == [True, False]
