"""The live monthly report: its figures equal those recomputed independently from the audit log,
instructions are refused cleanly, and the command prints them."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.errors import Conflict, InputError, NotFound
from engine.report import monthly, wilson
from tests.engine.test_office import DAY, PLAIN, TEXTILE, inspect, lodge, make_office


@pytest.fixture
def busy(tmp_path):
    """Two months of an office: random and targeted selections, results, and officers' orders."""
    office = make_office(tmp_path / "office.db", ratio=0.2)
    for i in range(120):
        day = i // 2  # 60 days from 1 June: two months
        fields = TEXTILE if i % 7 == 0 else PLAIN
        decision = lodge(office, f"D{i:03d}", firm=f"E{i % 9}", day=day, **fields)
        at = DAY + dt.timedelta(days=day)
        if not decision.selected and i % 10 == 3:
            office.instruct(f"D{i:03d}", "RISK-1", "intelligence", "document", at)
        task = office.inspection(f"D{i:03d}")
        if task is not None and task["status"] == "dispatched" and i < 110:  # the last few still open
            inspect(office, f"D{i:03d}", "problem" if i % 5 == 0 else "normal", day)
    return office


def from_the_audit_log(office) -> dict[str, Counter]:
    """Per month, recomputed from the log alone: channel counts, results by channel, lanes, rules."""
    month_of, channel_of, out = {}, {}, {}
    for record in office.audit.records():
        kind, p = record["kind"], record["payload"]
        if kind == "selection":
            d = p["decision"]
            month = p["declaration"]["declared_at"][:7]
            c = out.setdefault(month, Counter())
            month_of[d["declaration_id"]] = month
            c["declarations"] += 1
            if d["selected"]:
                channel_of[d["declaration_id"]] = (
                    "random" if d["channel"] in ("random", "both") else d["channel"]
                )
                c[f"{channel_of[d['declaration_id']]}_selected"] += 1
            c[f"lane_{d['lane']}"] += 1
            for rule in d["rules"]:
                c[f"rule {rule} fired"] += 1
        elif kind == "instruction":
            c = out[month_of[p["declaration"]]]
            channel_of[p["declaration"]] = "instructed"
            c["instructed_selected"] += 1
            c["lane_green"] -= 1
            c["lane_yellow" if p["inspection_type"] == "document" else "lane_red"] += 1
        elif kind == "result":
            c = out[month_of[p["inspection"]]]
            c[f"finished_{channel_of[p['inspection']]}"] += 1
            c[f"hits_{channel_of[p['inspection']]}"] += p["outcome"] == "problem"
    return out


def test_the_monthly_report_equals_the_audit_logs_own_count(busy):
    months = monthly(busy.store.report_rows())
    recount = from_the_audit_log(busy)
    assert [m["month"] for m in months] == sorted(recount) == ["2026-06", "2026-07"]
    for m in months:
        expected = recount[m["month"]]
        for key, value in expected.items():
            if key.startswith("rule "):
                assert m["rules"][key.split()[1]]["fired"] == value, key
            else:
                assert m[key] == value, (m["month"], key)
        assert m["instructed_selected"] > 0 and m["random_selected"] > 0 and m["targeted_selected"] > 0
        computer = m["inspections"] - m["instructed_selected"]
        assert m["random_dispatch_share"] == computer / m["inspections"]
        k, n = m["hits_random"], m["finished_random"]
        assert (m["hit_rate_random_low"], m["hit_rate_random_high"]) == pytest.approx(wilson(k / n, n))


def test_a_refused_instruction_changes_nothing(busy):
    head = busy.audit.head()
    selected = next(f"D{i:03d}" for i in range(120) if busy.decision(f"D{i:03d}").selected)
    unselected = next(f"D{i:03d}" for i in range(120) if busy.inspection(f"D{i:03d}") is None)
    with pytest.raises(NotFound):
        busy.instruct("NOPE", "RISK-1", "tip-off")
    with pytest.raises(Conflict):
        busy.instruct(selected, "RISK-1", "tip-off")
    with pytest.raises(InputError):
        busy.instruct(unselected, "RISK-1", "  ")
    with pytest.raises(InputError):
        busy.instruct(unselected, "RISK-1", "tip-off", "x-ray")
    assert busy.audit.head() == head and busy.inspection(unselected) is None


def test_the_report_and_instruct_commands(busy, tmp_path):
    db = str(tmp_path / "office.db")
    unselected = next(f"D{i:03d}" for i in range(120) if busy.inspection(f"D{i:03d}") is None)
    ordered_before = sum(1 for _ in busy.audit.records("instruction"))
    busy.store.close()
    runner = CliRunner()
    ordered = runner.invoke(app, ["instruct", db, unselected, "--by", "RISK-2", "--reason", "tip-off"])
    assert ordered.exit_code == 0 and json.loads(ordered.stdout)["inspection"]["status"] == "selected"
    table = runner.invoke(app, ["report", db, "--by", "month"])
    assert table.exit_code == 0 and "2026-06" in table.stdout and "2026-07" in table.stdout
    as_json = json.loads(runner.invoke(app, ["report", db, "--format", "json"]).stdout)
    assert sum(m["instructed_selected"] for m in as_json) == ordered_before + 1
    refused = runner.invoke(app, ["report", db, "--by", "week"])
    assert refused.exit_code != 0 and isinstance(refused.exception, SystemExit)


def test_the_report_reads_whole_at_80_columns_and_its_csv_has_no_nan_text(busy, tmp_path):
    """Narrow terminals get the figures as rows (every header was cut at 80 columns); CSV leaves an
    undefined figure empty instead of writing 'nan', and --table rules gives the per-rule figures."""
    import csv
    import io

    from rich.console import Console

    from engine import report
    from engine.cli import _month_figures, _print_report

    months = report.monthly(busy.store.report_rows())
    busy.store.close()
    narrow = Console(width=80, record=True)
    _print_report(months, narrow)
    text = narrow.export_text()
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
    for name, _ in _month_figures(months[0]):
        assert name in text
    runner = CliRunner()
    db = str(tmp_path / "office.db")
    monthly_csv = runner.invoke(app, ["report", db, "--format", "csv"])
    assert monthly_csv.exit_code == 0 and "nan" not in monthly_csv.stdout.lower()
    rows = list(csv.DictReader(io.StringIO(monthly_csv.stdout)))
    assert len(rows) == len(months) and "credit_share" in rows[0]
    per_rule = runner.invoke(app, ["report", db, "--format", "csv", "--table", "rules"])
    assert per_rule.exit_code == 0 and "nan" not in per_rule.stdout.lower()
    rule_rows = list(csv.DictReader(io.StringIO(per_rule.stdout)))
    assert rule_rows and {"month", "rule", "fired", "found", "hit_rate", "low", "high"} <= set(rule_rows[0])
    assert len(rule_rows) == sum(len(m["rules"]) for m in months)


def test_a_pick_is_drawn_only_when_every_rule_that_selected_it_drew_under_a_rate_of_one():
    """China's random share counts rules' sampling draws, not picks a rule was sure to make: a
    declaration two rules selected, one at rate 0.5 and one at rate 1, was certain, so scored."""
    from engine.report import drawn_by_a_rule

    def decision(sampled, rates, cutoff=None):
        return {
            "sampled_rules": sampled,
            "rule_draws": {r: [0.1, rates[r]] for r in sampled},
            "cutoff": cutoff,
        }

    assert drawn_by_a_rule(decision(["A"], {"A": 0.5}))
    assert not drawn_by_a_rule(decision(["B"], {"B": 1.0}))
    assert not drawn_by_a_rule(decision(["A", "B"], {"A": 0.5, "B": 1.0}))
    assert not drawn_by_a_rule(decision(["A"], {"A": 0.5}, cutoff=2.0))  # ranked under an expected rate


def test_the_kept_tally_equals_the_report_recomputed_after_every_step(store_url):
    """What the dashboard and GET /reports/monthly serve, kept up to date a change at a time, equals the
    whole recomputation after every step of a run: decisions, officers' orders on declarations the
    computer left (months after they were counted), and results arriving late."""
    import random

    from engine.report import Tally, jsonable

    office, tally, rng = make_office(store_url, ratio=0.2), Tally(), random.Random(5)  # SQLite, PostgreSQL
    open_ids: list[str] = []
    for i in range(150):
        day = i // 3
        lodge(office, f"T{i:03d}", firm=f"E{i % 11}", day=day, **(TEXTILE if i % 6 == 0 else PLAIN))
        at = DAY + dt.timedelta(days=day)
        late = f"T{rng.randrange(i + 1):03d}"  # an order on an older declaration, maybe of an earlier month
        if office.inspection(late) is None and rng.random() < 0.3:
            office.instruct(late, "RISK-1", "intelligence", rng.choice(["document", "physical"]), at)
        open_ids += [
            d for d in (f"T{i:03d}", late) if (office.inspection(d) or {}).get("status") == "dispatched"
        ]
        if open_ids and rng.random() < 0.6:  # a result for some open inspection, not always the newest
            done = open_ids.pop(rng.randrange(len(open_ids)))
            if office.inspection(done)["status"] == "dispatched":
                inspect(office, done, rng.choice(["problem", "normal"]), day)
        if rng.random() < 0.4:
            assert jsonable(tally.update(office.store)) == jsonable(monthly(office.store.report_rows())), i
    assert jsonable(tally.update(office.store)) == jsonable(monthly(office.store.report_rows()))
    sliced = Tally()  # as a service counts a large store at start-up: a few declarations at a time
    while not sliced.count(office.store, limit=7):
        pass
    assert jsonable(sliced.update(office.store)) == jsonable(monthly(office.store.report_rows()))
    months = tally.update(office.store)
    assert len(months) >= 2 and sum(m["instructed_selected"] for m in months) > 0
    assert sum(m["finished_instructed"] + m["finished_random"] for m in months) > 0
