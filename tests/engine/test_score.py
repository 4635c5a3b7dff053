"""A learned score in the live office: a decision ranked by it records the model, the probability, every
input and the inputs that pushed it most; the importer's record in it is what the office knew; the
pacer carries on across a restart by the same ranks; `audit replay` recomputes it all from the model
file and catches a record whose inputs or probability were changed; a policy and a model file that do
not go together are refused at the start."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from engine.declarations import parse_declaration
from engine.dispatch import Roster
from engine.errors import InputError
from engine.office import Office
from engine.randomness import KeyedDraws
from engine.replay import replay
from engine.rules import RuleSet
from engine.score import FEATURES, LearnedScore
from engine.selection import SelectionPolicy
from tests.conftest import BASELINE_RULES, declaration_data
from tests.engine.test_office import ROSTER

DAY = dt.datetime(2026, 6, 1, 9, 0)
RULES = RuleSet.load(BASELINE_RULES)
POLICY = {
    "random_ratio": 0.0,
    "expected_rate": 0.3,
    "rate_window": 24,
    "rate_refresh": 6,
    "model": {"combine": "alone", "weight": 10},
}
GOODS = [  # chapter 61 is where the synthetic log's violations are; no baseline rule flags these
    {"hs_code": "610910", "declared_value": 12000.0},
    {"hs_code": "847130", "declared_value": 9000.0},
    {"hs_code": "940360", "declared_value": 50000.0},
]


def _train(tmp_path, seed: int):
    from replay import learn
    from tests.replay.test_learn import synthetic_log

    path = tmp_path / f"model-{seed}.json"
    learn.train(synthetic_log(seed=seed), dt.date(2025, 8, 1), dt.date(2025, 10, 1)).save(path)
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("model"), 3)


def office_at(url, score: LearnedScore | None, policy=POLICY) -> Office:
    return Office(
        url,
        rules=RULES,
        policy=SelectionPolicy.model_validate(policy),
        draws=KeyedDraws.from_seed(1),
        roster=Roster.model_validate(ROSTER | {"rotation_days": 0}),  # every selected one dispatched
        score=score,
    )


def lodge(office: Office, k: int, firm: str, day: int):
    at = DAY + dt.timedelta(days=day, minutes=k)
    data = declaration_data(id=f"L{k:03d}", enterprise_id=firm, declared_at=at.isoformat(), **GOODS[k % 3])
    return office.admit(parse_declaration(data), at)


def run(office: Office, ks: range):
    """Declarations of four importers over five days; each dispatched inspection of F1 finds a
    problem at the end of its day, the others' are clean."""
    out = []
    for k in ks:
        day, firm = k // 12, f"F{k % 4}"
        decision = lodge(office, k, firm, day)
        out.append(decision)
        task = office.inspection(decision.declaration_id)
        if task and task["status"] == "dispatched":
            outcome = "problem" if firm == "F1" else "normal"
            department = "duties" if outcome == "problem" else ""
            at = DAY + dt.timedelta(days=day, hours=8)
            office.record_result(task["id"], task["inspector_id"], outcome, "misdeclared", department, at)
    return out


def test_a_decision_ranked_by_a_learned_score_says_why_and_what_the_office_knew(store_url, model_file):
    score = LearnedScore.load(model_file)
    office = office_at(store_url, score)
    decisions = run(office, range(60))
    # the record covers the 180 days before the declaration's day: day 180 still sees days 0-4 (15
    # declarations), day 185 sees only day 180's
    assert lodge(office, 100, "F0", 180).learned["inputs"]["firm_declarations"] == 15
    assert lodge(office, 101, "F0", 185).learned["inputs"]["firm_declarations"] == 1
    for d in decisions:
        learned = d.learned
        assert learned["model"] == score.version and 0 < learned["probability"] < 1
        assert list(learned["inputs"]) == FEATURES
        assert len(learned["reasons"]) == 3 and {name for name, _ in learned["reasons"]} <= set(FEATURES)
    # the importer's record: what the office had lodged and found on the days before
    for d in decisions:
        k = int(d.declaration_id[1:])
        day, firm = k // 12, k % 4
        earlier = [
            e
            for e in decisions
            if int(e.declaration_id[1:]) % 4 == firm and int(e.declaration_id[1:]) // 12 < day
        ]
        inspected = [e for e in earlier if e.selected]
        inputs = d.learned["inputs"]
        assert inputs["firm_declarations"] == len(earlier)
        assert inputs["firm_inspected"] == len(inspected)
        assert inputs["firm_violations"] == (len(inspected) if firm == 1 else 0)
    # the ranking follows the probability: what the score took scores higher than what it left
    taken = [d.learned["probability"] for d in decisions if d.channel == "targeted"]
    left = [d.learned["probability"] for d in decisions if not d.selected]
    assert taken and left and min(taken) > sorted(left)[len(left) // 2]
    assert any(d.channel == "targeted" and not d.rules for d in decisions)  # no rule flagged it
    assert all(d.inspection_type == "physical" for d in decisions if d.channel == "targeted" and not d.rules)


def test_a_restarted_office_ranks_by_the_same_scores_as_one_that_never_stopped(tmp_path, model_file):
    score = LearnedScore.load(model_file)
    whole = run(office_at(tmp_path / "whole.db", score), range(48))
    first = run(office_at(tmp_path / "cut.db", score), range(20))
    second = run(office_at(tmp_path / "cut.db", score), range(20, 48))  # a new office: pacer from the store
    assert [d.to_dict() for d in first + second] == [d.to_dict() for d in whole]


class _Changed:
    """An audit log's records with one selection record's decision changed (as a forger would)."""

    def __init__(self, log, seq: int, change):
        self.log, self.seq, self.change = log, seq, change

    def records(self, kind=None):
        for record in self.log.records(kind):
            if record["seq"] == self.seq:
                record = copy.deepcopy(record)
                self.change(record["payload"]["decision"]["learned"])
            yield record


def test_audit_replay_recomputes_the_score_and_catches_a_changed_input(tmp_path, model_file):
    score = LearnedScore.load(model_file)
    office = office_at(tmp_path / "office.db", score)
    run(office, range(30))
    key = KeyedDraws.from_seed(1)
    assert replay(office.audit, RULES, key=key, score=score) == (30, [])
    count, missing = replay(office.audit, RULES, key=key)
    assert count == 30 and len(missing) == 30 and {m.field for m in missing} == {"learned.model"}
    assert "give its model file" in missing[0].replayed
    other = LearnedScore.load(_train(tmp_path, 5))
    assert {m.field for m in replay(office.audit, RULES, key=key, score=other)[1]} == {"learned.model"}
    seq = [r["seq"] for r in office.audit.records("selection")][-1]

    def more_violations(learned):
        learned["inputs"]["firm_violations"] += 3

    def other_goods(learned):
        learned["inputs"]["hs_chapter"] = "84"

    def lower_probability(learned):
        learned["probability"] /= 2

    for change in (more_violations, other_goods, lower_probability):
        _, found = replay(_Changed(office.audit, seq, change), RULES, key=key, score=score)
        assert [m.field for m in found] == ["learned"], change.__name__


def test_a_policy_and_a_model_file_that_do_not_go_together_are_refused(tmp_path, model_file):
    with pytest.raises(InputError, match="needs its model file: give --model FILE"):
        office_at(tmp_path / "a.db", None)
    with pytest.raises(InputError, match="the policy names no learned score"):
        office_at(tmp_path / "b.db", LearnedScore.load(model_file), policy={"random_ratio": 0.03})
    from doublerandom.cli import app

    policy = tmp_path / "policy.yaml"
    policy.write_text("random_ratio: 0.0\nexpected_rate: 0.3\nmodel: {combine: added}\n")
    runner = CliRunner()
    common = ["select", "--rules", str(BASELINE_RULES), "--policy", str(policy), "--seed", "1"]
    alone = runner.invoke(app, [*common, "--model", str(model_file)], input="")
    assert alone.exit_code == 2 and "--model needs --db" in alone.output
    unnamed = runner.invoke(app, [*common, "--db", str(tmp_path / "c.db")], input="")
    assert unnamed.exit_code == 2 and "needs its model file" in unnamed.output
    assert "Traceback" not in unnamed.output and not (tmp_path / "c.db").exists()  # nothing made


def test_the_service_decides_with_the_model_and_the_audit_replays_it(tmp_path, model_file):
    """`serve --model`: each answer and the declaration's history show the probability and its
    reasons; `audit replay --model` recomputes every decision, and without the file names what it needs."""
    from fastapi.testclient import TestClient

    from doublerandom.cli import app
    from engine.service import create_app
    from tests.engine.test_service import h, office_files, post_declaration

    files = office_files(tmp_path, tmp_path / "office.db")
    service = create_app(
        files["rules"], files["db"], files["key"], files["keys"], files["roster"],
        SelectionPolicy.model_validate(POLICY), clock=lambda: DAY, score=LearnedScore.load(model_file),
    )  # fmt: skip
    answered = {}
    with TestClient(service) as client:
        for k in range(12):
            goods = GOODS[k % 3] | {"customs_office": "OFF-40"}
            answer = post_declaration(client, id=f"A{k}", enterprise_id=f"E{k % 3}", **goods)
            assert answer.status_code == 200, answer.text
            learned = answered[f"A{k}"] = answer.json()["decision"]["learned"]
            assert learned["model"] == LearnedScore.load(model_file).version and len(learned["reasons"]) == 3
        shown = client.get("/declarations/A5", headers=h("aud")).json()
        assert shown["decision"]["learned"] == answered["A5"]
        assert client.get("/health").json()["model_version"] == LearnedScore.load(model_file).version
        catalogue = client.get("/rules").json()  # the published catalogue stays rules only
        assert set(catalogue) == {"version", "rules"} and "model" not in json.dumps(catalogue)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "replay", str(files["db"]), "--model", str(model_file)])
    assert ok.exit_code == 0 and "OK 12 decisions replayed" in ok.output, ok.output
    missing = runner.invoke(app, ["audit", "replay", str(files["db"])])
    assert missing.exit_code == 1 and "audit replay --model FILE" in missing.output


def test_a_score_trained_on_the_offices_own_database_ranks_its_next_declarations(tmp_path):
    """The loop closed live: an office decides by its rules and random share for 90 days, its
    inspectors find problems mostly in chapter 61; `model train DB` learns from what it inspected,
    weighing each label by its decision's inclusion probability; the office then ranks by that model,
    and the score it gives chapter 61 is above the others'."""
    import numpy as np

    from doublerandom.cli import app
    from engine.imported import read

    db = tmp_path / "office.db"
    office = office_at(db, None, policy={"random_ratio": 0.3})
    rng = np.random.default_rng(7)
    for k in range(1800):
        day = k // 20
        goods = GOODS[k % 3]
        at = DAY + dt.timedelta(days=day, minutes=k % 20)
        data = declaration_data(
            id=f"T{k:04d}", enterprise_id=f"F{k % 37}", declared_at=at.isoformat(), **goods
        )
        office.admit(parse_declaration(data), at)
        task = office.inspection(f"T{k:04d}")
        if task and task["status"] == "dispatched":
            bad = rng.random() < (0.5 if goods["hs_code"].startswith("61") else 0.03)
            outcome, department = ("problem", "duties") if bad else ("normal", "")
            office.record_result(task["id"], task["inspector_id"], outcome, "misdeclared", department, at)
    log = read(db)
    assert len(log) == 1800 and log["inspected"].sum() == (log["violation"].notna()).sum() > 300
    assert log["inclusion_probability"].between(0.3, 1).all()
    model = tmp_path / "model.json"
    trained = CliRunner().invoke(
        app,
        [
            "model",
            "train",
            str(db),
            "--until",
            "2026-07-31",
            "--valid-until",
            "2026-09-01",
            "--out",
            str(model),
        ],
    )
    assert trained.exit_code == 0 and "declarations trained" in trained.output, trained.output
    score = LearnedScore.load(model)
    assert score.meta["weighted"] is True  # the labels weighed by 1 / inclusion probability
    later = office_at(db, score)
    picked = {
        g["hs_code"][:2]: lodge(later, 900 + i, "F1", 95).learned["probability"] for i, g in enumerate(GOODS)
    }
    assert picked["61"] > 2 * max(picked["84"], picked["94"]), picked
