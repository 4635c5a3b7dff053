"""The audit log: tampering is caught at the right record, decisions replay, and a killed process
loses no acknowledged decision."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from engine import database
from engine.audit import AuditLog
from engine.cli import app
from engine.declarations import parse_declaration
from engine.office import Office
from engine.randomness import KeyedDraws
from engine.replay import replay
from engine.rules import RuleSet
from engine.selection import SelectionPolicy
from tests.conftest import BASELINE_RULES, ROOT, declaration_data

runner = CliRunner()
SAMPLE = ROOT / "scenarios" / "declarations" / "sample.jsonl"


@pytest.fixture
def logged(tmp_path):
    """A database with 40 decisions from the shipped sample, keyed draws from seed 5."""
    path = tmp_path / "audit.db"
    office = Office(path, rules=RuleSet.load(BASELINE_RULES), policy=SelectionPolicy(random_ratio=0.2),
                    draws=KeyedDraws.from_seed(5))
    for line in SAMPLE.read_text().splitlines()[:40]:
        office.admit(parse_declaration(json.loads(line)))
    office.conn.close()
    return path


def tamper(path, *statements):
    conn = sqlite3.connect(path)
    conn.executescript("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;" + "".join(statements))
    conn.commit()
    conn.close()


def verdict(path):
    return AuditLog(database.connect(path)).verify()


def test_an_untouched_log_verifies(logged):
    assert verdict(logged).ok and verdict(logged).count == 40


def test_the_engine_refuses_to_rewrite_history(logged):
    conn = database.connect(logged)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit SET kind = 'x' WHERE seq = 3")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE seq = 3")


def test_changing_one_byte_is_caught_at_that_record(logged):
    tamper(logged, "UPDATE audit SET payload = replace(payload, '\"selected\":false', '\"selected\":true ') "
                   "WHERE seq = (SELECT MIN(seq) FROM audit WHERE payload LIKE '%\"selected\":false%' AND seq > 10);")
    broken = verdict(logged)
    assert not broken.ok and broken.broken_at > 10 and broken.reason == "its content does not match its hash"


@pytest.mark.parametrize("column", ["at", "kind", "prev_hash", "hash"])
def test_changing_any_column_is_caught(logged, column):
    tamper(logged, f"UPDATE audit SET {column} = {column} || 'x' WHERE seq = 17;")
    broken = verdict(logged)
    assert not broken.ok and broken.broken_at in (17, 18)  # a bad stored hash shows in the next link
    if column != "hash":
        assert broken.broken_at == 17


def test_deleting_a_record_is_caught(logged):
    tamper(logged, "DELETE FROM audit WHERE seq = 23;")
    broken = verdict(logged)
    assert (broken.ok, broken.broken_at, broken.count) == (False, 23, 22)
    assert "record 23 is missing" in broken.reason


def test_reordering_two_records_is_caught(logged):
    tamper(logged, "UPDATE audit SET seq = -1 WHERE seq = 30; UPDATE audit SET seq = 30 WHERE seq = 31;"
                   "UPDATE audit SET seq = 31 WHERE seq = -1;")
    broken = verdict(logged)
    assert not broken.ok and broken.broken_at == 30


def test_cli_verify_reports_ok_or_the_broken_record(logged):
    ok = runner.invoke(app, ["audit", "verify", str(logged)])
    assert ok.exit_code == 0 and ok.stdout.strip() == "OK 40 records"
    tamper(logged, "UPDATE audit SET at = '2020-01-01' WHERE seq = 9;")
    broken = runner.invoke(app, ["audit", "verify", str(logged)])
    assert broken.exit_code == 1 and "broken at record 9" in broken.stderr


def test_replay_matches_an_untouched_log_with_the_key(logged):
    count, mismatches = replay(AuditLog(database.connect(logged)), RuleSet.load(BASELINE_RULES),
                               KeyedDraws.from_seed(5))
    assert count == 40 and mismatches == []
    done = runner.invoke(app, ["audit", "replay", str(logged), "--rules", str(BASELINE_RULES), "--seed", "5"])
    assert done.exit_code == 0 and "OK 40 decisions replayed" in done.stdout


def test_replay_catches_an_altered_draw(logged):
    conn = sqlite3.connect(logged)
    seq = conn.execute("SELECT MIN(seq) FROM audit WHERE json_extract(payload, '$.decision.selected') = 0").fetchone()[0]
    conn.close()
    tamper(logged, f"UPDATE audit SET payload = json_set(payload, '$.decision.random_draw', 0.0001) WHERE seq = {seq};")
    rules = RuleSet.load(BASELINE_RULES)
    _, with_key = replay(AuditLog(database.connect(logged)), rules, KeyedDraws.from_seed(5))
    assert [(m.seq, m.field) for m in with_key][:1] == [(seq, "random_draw")]
    # without the key the forged draw is taken as given, but it contradicts the logged outcome
    _, without_key = replay(AuditLog(database.connect(logged)), rules)
    assert {(m.seq, m.field) for m in without_key} >= {(seq, "selected"), (seq, "channel")}


def test_replay_catches_an_altered_rules_version_or_other_rules(logged, tmp_path):
    tamper(logged, "UPDATE audit SET payload = json_set(payload, '$.decision.rules_version', 'forged') WHERE seq = 6;")
    _, mismatches = replay(AuditLog(database.connect(logged)), RuleSet.load(BASELINE_RULES), KeyedDraws.from_seed(5))
    assert [(m.seq, m.field, m.logged) for m in mismatches] == [(6, "rules_version", "forged")]
    other = tmp_path / "other.yaml"
    other.write_text(BASELINE_RULES.read_text().replace("value_per_kg, lt: 20", "value_per_kg, lt: 25"))
    done = runner.invoke(app, ["audit", "replay", str(logged), "--rules", str(other), "--seed", "5"])
    assert done.exit_code == 1 and "40 mismatches in 40 decisions" in done.stderr


KILL_INPUT = 3000


def test_sigkill_while_deciding_loses_no_acknowledged_decision(tmp_path):
    db = tmp_path / "kill.db"
    lines = [json.dumps(declaration_data(id=f"K{i:05d}", enterprise_id=f"E{i % 50}")) for i in range(KILL_INPUT)]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "engine", "select", "--rules", str(BASELINE_RULES), "--seed", "2",
                             "--db", str(db), "--input", str(source)], stdout=subprocess.PIPE, cwd=ROOT)
    acknowledged = []
    while len(acknowledged) < 200:
        line = proc.stdout.readline()
        assert line, "the process ended before it was killed"
        acknowledged.append(json.loads(line)["declaration_id"])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    conn = database.connect(db)
    stored = {r[0] for r in conn.execute("SELECT id FROM declarations")}
    assert set(acknowledged) <= stored and len(stored) < KILL_INPUT  # killed mid-way, nothing acknowledged lost
    log = AuditLog(conn).verify()
    assert log.ok and log.count == len(stored)  # one selection record per stored decision, chain intact
