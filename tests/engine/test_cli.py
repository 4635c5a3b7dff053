"""The engine's command line end to end: validate, select (good and bad lines), keygen."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from engine.cli import app
from tests.conftest import BASELINE_RULES, ROOT, declaration_data

runner = CliRunner()
SAMPLE = ROOT / "scenarios" / "declarations" / "sample.jsonl"
FIRMS = ROOT / "scenarios" / "declarations" / "enterprises.csv"


def test_validate_ok_and_bad(tmp_path):
    ok = runner.invoke(app, ["validate", str(BASELINE_RULES)])
    assert ok.exit_code == 0 and "20 rules" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: v\nrules:\n  - {id: A, description: d, inspection: scan, when: {field: colour, eq: r}}\n"
    )
    refused = runner.invoke(app, ["validate", str(bad)])
    assert refused.exit_code == 2
    assert "unknown field 'colour'" in refused.stderr and isinstance(refused.exception, SystemExit)


def test_select_the_shipped_sample_is_reproducible():
    args = [
        "select",
        "--rules",
        str(BASELINE_RULES),
        "--enterprises",
        str(FIRMS),
        "--input",
        str(SAMPLE),
        "--seed",
        "1",
    ]
    first, second = runner.invoke(app, args), runner.invoke(app, args)
    assert first.exit_code == 0, first.stderr
    decisions = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(decisions) == 1000 and first.stdout == second.stdout
    assert {d["channel"] for d in decisions} == {"none", "random", "targeted", "both", "credit"}
    assert all(d["selected"] == (d["channel"] != "none") for d in decisions)
    other = runner.invoke(app, args[:-1] + ["2"])
    assert other.stdout != first.stdout


def test_bad_lines_are_reported_and_the_rest_decided(tmp_path):
    lines = [
        json.dumps(declaration_data(id="A")),
        "{not json",
        json.dumps(declaration_data(id="B", hs_code="12")),
        "",
        json.dumps(declaration_data(id="C")),
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    done = runner.invoke(
        app, ["select", "--rules", str(BASELINE_RULES), "--input", str(source), "--seed", "3"]
    )
    assert done.exit_code == 1
    assert [json.loads(x)["declaration_id"] for x in done.stdout.splitlines()] == ["A", "C"]
    assert f"{source}:2: not valid JSON" in done.stderr
    assert f"{source}:3: field 'hs_code'" in done.stderr
    assert "2 bad lines" in done.stderr


def test_select_from_stdin_with_a_key_file(tmp_path):
    key = tmp_path / "draw.key"
    assert runner.invoke(app, ["keygen", str(key)]).exit_code == 0
    assert runner.invoke(app, ["keygen", str(key)]).exit_code == 2  # never overwrites a key
    stdin = json.dumps(declaration_data(id="Z9")) + "\n"
    args = ["select", "--rules", str(BASELINE_RULES), "--key-file", str(key)]
    first, second = runner.invoke(app, args, input=stdin), runner.invoke(app, args, input=stdin)
    assert first.exit_code == 0 and first.stdout == second.stdout  # keyed draws: same id, same draw


def test_select_needs_exactly_one_source_of_draws():
    done = runner.invoke(app, ["select", "--rules", str(BASELINE_RULES)], input="")
    assert done.exit_code == 2 and "exactly one of --seed" in done.stderr


def test_the_readme_session_selects_dispatches_records_releases_and_verifies(tmp_path):
    db, roster = str(tmp_path / "office.db"), str(ROOT / "scenarios" / "roster.yaml")
    chosen = runner.invoke(
        app,
        [
            "select",
            "--rules",
            str(BASELINE_RULES),
            "--seed",
            "7",
            "--db",
            db,
            "--enterprises",
            str(FIRMS),
            "--input",
            str(SAMPLE),
        ],
    )
    assert chosen.exit_code == 0
    selected = {
        json.loads(x)["declaration_id"] for x in chosen.stdout.splitlines() if json.loads(x)["selected"]
    }
    assert {"KR63072603", "KR47433385"} <= selected

    def step(*args):
        done = runner.invoke(app, list(args))
        assert done.exit_code == 0, done.stderr
        return json.loads(done.stdout)

    first = step("dispatch", db, "KR63072603", "--roster", roster, "--seed", "7", "--at", "2026-04-13T11:00")
    problem = step(
        "result",
        db,
        "KR63072603",
        "--inspector",
        first["inspector_id"],
        "--outcome",
        "problem",
        "--category",
        "undervaluation",
        "--department",
        "duties",
        "--at",
        "2026-04-13T13:00",
    )
    assert problem["status"] == "transferred"
    second = step("dispatch", db, "KR47433385", "--roster", roster, "--seed", "7", "--at", "2026-04-09T15:00")
    assert (
        step(
            "result",
            db,
            "KR47433385",
            "--inspector",
            second["inspector_id"],
            "--outcome",
            "normal",
            "--at",
            "2026-04-09T16:00",
        )["status"]
        == "awaiting_release"
    )
    refused = runner.invoke(app, ["release", db, "KR47433385", "--officer", second["inspector_id"]])
    assert refused.exit_code == 2 and "separation of duties" in refused.stderr
    assert step("release", db, "KR47433385", "--officer", "OFFICER-2") == {
        "released": "KR47433385",
        "by": "OFFICER-2",
    }
    verified = runner.invoke(app, ["audit", "verify", db])
    assert verified.exit_code == 0 and verified.stdout.startswith("OK ")
    shown = json.loads(runner.invoke(app, ["integrity", "show", db, "IMP-1SBDO12"]).stdout)
    assert shown["high_risk"] is True


def test_step_commands_refuse_bad_files_without_a_traceback(tmp_path):
    db = str(tmp_path / "office.db")
    assert (
        runner.invoke(
            app, ["select", "--rules", str(BASELINE_RULES), "--seed", "1", "--db", db, "--input", str(SAMPLE)]
        ).exit_code
        == 0
    )
    roster = tmp_path / "roster.yaml"
    roster.write_text("inspectors: []\n")
    done = runner.invoke(app, ["dispatch", db, "KR63072603", "--roster", str(roster), "--seed", "1"])
    assert (
        done.exit_code == 2 and "field 'inspectors'" in done.stderr and isinstance(done.exception, SystemExit)
    )
    missing = runner.invoke(app, ["release", str(tmp_path / "nope.db"), "X", "--officer", "O"])
    assert missing.exit_code == 2 and "no such database" in missing.stderr
    unknown = runner.invoke(app, ["release", db, "NOT-SELECTED", "--officer", "O"])
    assert unknown.exit_code == 2 and "no inspection 'NOT-SELECTED'" in unknown.stderr


def test_an_undervalued_line_is_decided_and_bad_bytes_spoil_only_their_line(tmp_path):
    """$1 for 100,000 units (unit value 1e-05) once crashed durable-rules and left every later line
    undecided; a byte that is not UTF-8, or a byte-order mark, must not either."""
    lines = [
        b"\xef\xbb\xbf" + json.dumps(declaration_data(id="A")).encode(),
        json.dumps(
            declaration_data(id="CHEAP", hs_code="620342", declared_value=1, quantity=100000)
        ).encode(),
        json.dumps(declaration_data(id="B\u00e9")).encode().replace(b"\\u00e9", b"\xe9"),
        b"[" * 100000 + b"]" * 100000,
        json.dumps(declaration_data(id="C")).encode(),
    ]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    done = runner.invoke(
        app, ["select", "--rules", str(BASELINE_RULES), "--input", str(source), "--seed", "1"]
    )
    decided = [json.loads(x) for x in done.stdout.splitlines()]
    assert [d["declaration_id"] for d in decided] == ["A", "CHEAP", "C"]
    assert "TEX-UNDERVALUE" in decided[1]["rules"]
    assert f"{source}:3: not UTF-8 text" in done.stderr
    assert f"{source}:4: JSON nested too deeply" in done.stderr
    assert done.exit_code == 1 and isinstance(done.exception, SystemExit)


def test_an_agency_key_names_its_agency_and_only_an_agency_key_does(tmp_path):
    keys = tmp_path / "keys.yaml"
    runner = CliRunner()
    made = runner.invoke(
        app, ["apikey", str(keys), "--role", "agency", "--name", "feed", "--agency", "POLICE"]
    )
    assert made.exit_code == 0 and "agency: POLICE" in keys.read_text()
    for extra in (["--role", "agency"], ["--role", "chief", "--agency", "POLICE"]):
        refused = runner.invoke(app, ["apikey", str(keys), "--name", "other", *extra])
        assert refused.exit_code == 2 and "--agency given with --role agency only" in refused.output
    assert "other" not in keys.read_text()  # a refused key is not written
