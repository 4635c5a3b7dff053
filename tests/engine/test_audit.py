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
    office = Office(
        path,
        rules=RuleSet.load(BASELINE_RULES),
        policy=SelectionPolicy(random_ratio=0.2),
        draws=KeyedDraws.from_seed(5),
    )
    for line in SAMPLE.read_text().splitlines()[:40]:
        office.admit(parse_declaration(json.loads(line)))
    office.store.close()
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
    tamper(
        logged,
        "UPDATE audit SET payload = replace(payload, '\"selected\":false', '\"selected\":true ') "
        "WHERE seq = (SELECT MIN(seq) FROM audit WHERE payload LIKE '%\"selected\":false%' AND seq > 10);",
    )
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
    tamper(
        logged,
        "UPDATE audit SET seq = -1 WHERE seq = 30; UPDATE audit SET seq = 30 WHERE seq = 31;"
        "UPDATE audit SET seq = 31 WHERE seq = -1;",
    )
    broken = verdict(logged)
    assert not broken.ok and broken.broken_at == 30


def test_cli_verify_reports_ok_or_the_broken_record(logged):
    ok = runner.invoke(app, ["audit", "verify", str(logged)])
    assert ok.exit_code == 0 and ok.stdout.startswith("OK 40 records, head 40 ")
    tamper(logged, "UPDATE audit SET at = '2020-01-01' WHERE seq = 9;")
    broken = runner.invoke(app, ["audit", "verify", str(logged)])
    assert broken.exit_code == 1 and "broken at record 9" in broken.stderr


def test_replay_matches_an_untouched_log_with_the_key(logged):
    count, mismatches = replay(
        AuditLog(database.connect(logged)), RuleSet.load(BASELINE_RULES), KeyedDraws.from_seed(5)
    )
    assert count == 40 and mismatches == []
    done = runner.invoke(app, ["audit", "replay", str(logged), "--rules", str(BASELINE_RULES), "--seed", "5"])
    assert done.exit_code == 0 and "OK 40 decisions replayed" in done.stdout


def test_replay_catches_an_altered_draw(logged):
    conn = sqlite3.connect(logged)
    seq = conn.execute(
        "SELECT MIN(seq) FROM audit WHERE json_extract(payload, '$.decision.selected') = 0"
    ).fetchone()[0]
    conn.close()
    tamper(
        logged,
        f"UPDATE audit SET payload = json_set(payload, '$.decision.random_draw', 0.0001) WHERE seq = {seq};",
    )
    rules = RuleSet.load(BASELINE_RULES)
    _, with_key = replay(AuditLog(database.connect(logged)), rules, KeyedDraws.from_seed(5))
    assert [(m.seq, m.field) for m in with_key][:1] == [(seq, "random_draw")]
    # without the key the forged draw is taken as given, but it contradicts the logged outcome
    _, without_key = replay(AuditLog(database.connect(logged)), rules)
    assert {(m.seq, m.field) for m in without_key} >= {(seq, "selected"), (seq, "channel")}


def test_replay_catches_an_altered_rules_version_or_other_rules(logged, tmp_path):
    tamper(
        logged,
        "UPDATE audit SET payload = json_set(payload, '$.decision.rules_version', 'forged') WHERE seq = 6;",
    )
    _, mismatches = replay(
        AuditLog(database.connect(logged)), RuleSet.load(BASELINE_RULES), KeyedDraws.from_seed(5)
    )
    assert [(m.seq, m.field, m.logged) for m in mismatches] == [(6, "rules_version", "forged")]
    other = tmp_path / "other.yaml"
    other.write_text(BASELINE_RULES.read_text().replace("value_per_kg, lt: 20", "value_per_kg, lt: 25"))
    done = runner.invoke(app, ["audit", "replay", str(logged), "--rules", str(other), "--seed", "5"])
    assert done.exit_code == 1 and "40 mismatches in 40 decisions" in done.stderr


KILL_INPUT = 3000


def test_sigkill_while_deciding_loses_no_acknowledged_decision(tmp_path):
    db = tmp_path / "kill.db"
    lines = [
        json.dumps(declaration_data(id=f"K{i:05d}", enterprise_id=f"E{i % 50}")) for i in range(KILL_INPUT)
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "select",
            "--rules",
            str(BASELINE_RULES),
            "--seed",
            "2",
            "--db",
            str(db),
            "--input",
            str(source),
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
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
    assert (
        set(acknowledged) <= stored and len(stored) < KILL_INPUT
    )  # killed mid-way, nothing acknowledged lost
    log = AuditLog(conn).verify()
    assert log.ok and log.count == len(stored) + 1  # rules_loaded, then one selection record per decision


# ---------------------------------------------------------------- against whoever holds the file

ROSTER = ROOT / "scenarios" / "roster.yaml"


@pytest.fixture
def office_log(tmp_path):
    """A day of work: registrations, decisions, dispatches, results (two problems), a release; then a
    signed checkpoint kept outside the database, and three more decisions after it."""
    import datetime as dt

    from engine import checkpoint
    from engine.declarations import Enterprise
    from engine.dispatch import Roster

    db, key = tmp_path / "office.db", tmp_path / "audit.key"
    checkpoint.new_signing_key(key)
    office = Office(
        db,
        rules=RuleSet.load(BASELINE_RULES),
        policy=SelectionPolicy(random_ratio=0.1),
        draws=KeyedDraws.from_seed(3),
        roster=Roster.load(ROSTER),
    )
    office.register(
        [
            Enterprise(id=f"E{i}", declarations=5, credit_class="advanced_certified" if i == 1 else "general")
            for i in range(4)
        ]
    )
    at = dt.datetime(2026, 6, 1, 10, 0)
    for i in range(12):
        data = declaration_data(
            id=f"A{i}", enterprise_id=f"E{i % 4}", hs_code="930690", declared_at=at.isoformat()
        )
        office.admit(parse_declaration(data), at)
        if i < 4:  # the first four are inspected at once, freeing the bay
            outcome, task = ["problem", "normal"][i % 2], office.inspection(f"A{i}")
            office.record_result(
                f"A{i}", task["inspector_id"], outcome, "x", "duties" if outcome == "problem" else "", at
            )
    office.release("A1", "OFFICER-9", at)
    signed = checkpoint.sign(*office.audit.head(), checkpoint.load_signing_key(key))
    checkpoint.write(signed, tmp_path / "cp.json")
    for i in range(12, 15):
        office.admit(
            parse_declaration(declaration_data(id=f"A{i}", enterprise_id="E0", declared_at=at.isoformat())),
            at,
        )
    office.store.close()
    return {
        "db": db,
        "checkpoint": tmp_path / "cp.json",
        "public": tmp_path / "audit.key.pub",
        "signed": signed,
    }


def verify_cli(setup, *extra):
    return runner.invoke(
        app,
        [
            "audit",
            "verify",
            str(setup["db"]),
            "--checkpoint",
            str(setup["checkpoint"]),
            "--public-key",
            str(setup["public"]),
            *extra,
        ],
    )


def rehash_from(path, seq):
    """What a forger holding the file does after changing record `seq`: recompute every hash after it."""
    from engine.audit import GENESIS, record_hash

    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;"
        "DROP TRIGGER IF EXISTS audit_no_replace;"
    )
    rows = conn.execute("SELECT seq, at, kind, payload FROM audit ORDER BY seq").fetchall()
    prev = GENESIS
    for n, (old_seq, at, kind, payload) in enumerate(rows, start=1):
        if n >= seq:
            conn.execute(
                "UPDATE audit SET seq = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (n, prev, record_hash(n, at, kind, payload, prev), old_seq),
            )
        prev = conn.execute("SELECT hash FROM audit WHERE seq = ?", (n,)).fetchone()[0]
    conn.commit()
    conn.close()


def test_an_honest_office_verifies_with_its_checkpoint_and_reconciles(office_log):
    done = verify_cli(office_log)
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("OK ") and ", 1 checkpoints" in done.stdout
    conn = sqlite3.connect(office_log["db"])
    n = conn.execute("SELECT max(seq) FROM audit").fetchone()[0]
    assert n > office_log["signed"].seq and done.stdout.startswith(f"OK {n} records, head {n} ")


def test_a_problem_turned_normal_and_rehashed_is_caught_by_the_checkpoint(office_log):
    conn = sqlite3.connect(office_log["db"])
    seq = conn.execute(
        "SELECT min(seq) FROM audit WHERE kind = 'result' AND payload LIKE '%problem%'"
    ).fetchone()[0]
    conn.close()
    tamper(
        office_log["db"],
        f"UPDATE audit SET payload = replace(payload, 'problem', 'normal') WHERE seq = {seq};",
    )
    rehash_from(office_log["db"], seq)
    assert verdict(office_log["db"]).ok  # the chain alone is fooled ...
    done = verify_cli(office_log)  # ... the signed checkpoint is not
    assert done.exit_code == 1 and "differs from the one signed" in done.stderr


@pytest.mark.parametrize(
    "statements",
    [
        "DELETE FROM audit WHERE seq > 10;",  # truncating the tail
        "DELETE FROM audit WHERE seq = 5;",  # deleting a record, rehashed
        "UPDATE audit SET seq = -1 WHERE seq = 6; UPDATE audit SET seq = 6 WHERE seq = 7;"
        "UPDATE audit SET seq = 7 WHERE seq = -1;",  # swapping two, rehashed
    ],
)
def test_truncation_deletion_and_swaps_are_caught_even_when_rehashed(office_log, statements):
    tamper(office_log["db"], statements)
    rehash_from(office_log["db"], 1)
    done = verify_cli(office_log)
    assert done.exit_code == 1 and ("missing" in done.stderr or "differs" in done.stderr), done.output


def test_a_dropped_audit_table_is_no_audit_log(office_log):
    conn = sqlite3.connect(office_log["db"])
    conn.execute("DROP TABLE audit")
    conn.commit()
    conn.close()
    done = runner.invoke(app, ["audit", "verify", str(office_log["db"])])
    assert done.exit_code == 2 and "no audit log" in done.stderr


def test_insert_or_replace_over_a_record_is_refused(office_log):
    conn = sqlite3.connect(office_log["db"])
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("INSERT OR REPLACE INTO audit VALUES (3, 'x', 'result', '{}', 'x', 'x')")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("REPLACE INTO audit VALUES (3, 'x', 'result', '{}', 'x', 'x')")


@pytest.mark.parametrize(
    "statement, expected",
    [
        (
            "UPDATE enterprises SET credit_class = 'advanced_certified' WHERE id = 'E2'",
            "enterprises 'E2': credit_class",
        ),
        (
            "UPDATE enterprises SET high_risk = 0, high_risk_until = NULL WHERE id = 'E0'",
            "enterprises 'E0': high_risk",
        ),
        (
            "UPDATE declarations SET decision = json_set(decision, '$.selected', json('false')) WHERE id = "
            "'A4'",
            "declarations 'A4': decision.selected",
        ),
        (
            "UPDATE inspections SET status = 'released', released_by = 'X' WHERE id = 'A0'",
            "inspections 'A0': status",
        ),
        ("DELETE FROM inspections WHERE id = 'A3'", "inspections 'A3': row"),
    ],
)
def test_state_tables_are_reconciled_with_the_log(office_log, statement, expected):
    conn = sqlite3.connect(office_log["db"])
    conn.execute(statement)
    conn.commit()
    conn.close()
    done = runner.invoke(app, ["audit", "verify", str(office_log["db"])])
    assert done.exit_code == 1 and expected in done.stderr, done.output


def test_a_forged_checkpoint_is_refused(office_log, tmp_path):
    forged = json.loads(office_log["checkpoint"].read_text()) | {"seq": 3}
    office_log["checkpoint"].write_text(json.dumps(forged))
    done = verify_cli(office_log)
    assert done.exit_code == 1 and "signature is not valid" in done.stderr


def test_verify_reads_only_and_a_read_only_copy_verifies(office_log, tmp_path):
    import os
    import shutil

    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    conn = sqlite3.connect(office_log["db"])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    copy = copy_dir / "office.db"
    shutil.copy(office_log["db"], copy)
    conn = sqlite3.connect(copy)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    before = copy.read_bytes()
    os.chmod(copy, 0o444)
    done = runner.invoke(
        app,
        [
            "audit",
            "verify",
            str(copy),
            "--checkpoint",
            str(office_log["checkpoint"]),
            "--public-key",
            str(office_log["public"]),
        ],
    )
    assert done.exit_code == 0, done.output
    assert copy.read_bytes() == before  # no table created, journal mode not switched
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_checkpoint_command_signs_the_head_and_keys_are_private(office_log, tmp_path):
    key = tmp_path / "k2"
    assert runner.invoke(app, ["audit", "keygen", str(key)]).exit_code == 0
    assert (key.stat().st_mode & 0o777) == 0o600
    assert runner.invoke(app, ["audit", "keygen", str(key)]).exit_code == 2  # never overwritten
    folder = tmp_path / "cps"
    folder.mkdir()
    done = runner.invoke(
        app, ["audit", "checkpoint", str(office_log["db"]), "--key-file", str(key), "--out", str(folder)]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["seq"] > office_log["signed"].seq
    ok = runner.invoke(
        app,
        [
            "audit",
            "verify",
            str(office_log["db"]),
            "--checkpoints",
            str(folder),
            "--public-key",
            f"{key}.pub",
        ],
    )
    assert ok.exit_code == 0, ok.output
    wrong_key = runner.invoke(
        app,
        [
            "audit",
            "verify",
            str(office_log["db"]),
            "--checkpoints",
            str(folder),
            "--public-key",
            str(office_log["public"]),
        ],
    )
    assert wrong_key.exit_code == 1 and "signature is not valid" in wrong_key.stderr


def test_the_cli_session_replays_without_naming_the_rules(tmp_path):
    db = tmp_path / "cli.db"
    lines = "".join(json.dumps(declaration_data(id=f"R{i}")) + "\n" for i in range(30))
    source = tmp_path / "in.jsonl"
    source.write_text(lines)
    assert (
        runner.invoke(
            app,
            [
                "select",
                "--rules",
                str(BASELINE_RULES),
                "--seed",
                "1",
                "--db",
                str(db),
                "--input",
                str(source),
            ],
        ).exit_code
        == 0
    )
    done = runner.invoke(app, ["audit", "replay", str(db), "--seed", "1"])
    assert done.exit_code == 0 and "OK 30 decisions replayed" in done.stdout, done.output


# ---------------------------------------------------------------- forged records appended to the chain


def _append(path, payload):
    """Append a correctly chained selection record, as whoever holds the file (or INSERT) can."""
    log = AuditLog(database.connect(path))
    with log.db.transaction():
        seq = log.append("selection", payload)
    log.db.close()
    return seq


def _a_selected_payload(path):
    for record in AuditLog(database.connect(path)).records("selection"):
        if record["payload"]["decision"]["selected"]:
            return record["payload"]
    raise AssertionError("the fixture selects some declarations")


def _forged(path, verifiable):
    """A declaration the keyed draw selects, logged as not selected with every draw 0.99."""
    payload = json.loads(json.dumps(_a_selected_payload(path)))
    decision = payload["decision"]
    decision.update(
        selected=False,
        channel="none",
        sampled_rules=[],
        random_draw=0.99,
        credit_draw=0.99,
        inspection_type=None,
        lane="green",
        rule_draws={r: [0.99, rate] for r, (_, rate) in decision["rule_draws"].items()},
    )
    payload["verifiable_draws"] = verifiable
    return payload


@pytest.mark.parametrize("verifiable", [False, True])
def test_replay_with_the_key_catches_a_forged_selection_appended_to_the_chain(logged, verifiable):
    seq = _append(logged, _forged(logged, verifiable))
    assert verdict(logged).ok  # the chain cannot tell: the forger computed the hashes
    count, mismatches = replay(
        AuditLog(database.connect(logged)), RuleSet.load(BASELINE_RULES), KeyedDraws.from_seed(5)
    )
    fields = {m.field for m in mismatches if m.seq == seq}
    assert count == 41 and fields and all(m.seq == seq for m in mismatches)
    assert fields == ({"verifiable_draws"} if not verifiable else fields | {"random_draw", "selected"})
    done = runner.invoke(app, ["audit", "replay", str(logged), "--rules", str(BASELINE_RULES), "--seed", "5"])
    assert done.exit_code == 1 and f"record {seq} " in done.stderr


@pytest.mark.parametrize("damage", ["drop-field", "add-field", "crude", "not-a-declaration"])
def test_replay_reports_a_malformed_or_incomplete_record_instead_of_crashing(logged, damage):
    payload = json.loads(json.dumps(_a_selected_payload(logged)))
    if damage == "drop-field":  # leaving a field out must not skip its check
        del payload["decision"]["random_draw"]
    elif damage == "add-field":
        payload["decision"]["approved_by"] = "nobody"
    elif damage == "crude":
        payload = {
            "decision": {"declaration_id": "X1", "rules_version": payload["decision"]["rules_version"]}
        }
    else:
        payload["declaration"]["hs_code"] = "not a code"
    seq = _append(logged, payload)
    _, mismatches = replay(
        AuditLog(database.connect(logged)), RuleSet.load(BASELINE_RULES), KeyedDraws.from_seed(5)
    )
    assert [m.seq for m in mismatches] and {m.seq for m in mismatches} == {seq}
    done = runner.invoke(app, ["audit", "replay", str(logged), "--rules", str(BASELINE_RULES), "--seed", "5"])
    assert done.exit_code == 1 and isinstance(
        done.exception, SystemExit
    )  # not an exception the runner caught
    assert f"record {seq} " in done.stderr


# ---------------------------------------------------------------- seals: what only the key holder can write


def sealed_office(url, tmp_path):
    """An office that seals its log with a signing key held outside the database, after some work."""
    import datetime as dt

    from engine import checkpoint
    from engine.dispatch import Roster

    key_path = tmp_path / "office.key"
    checkpoint.new_signing_key(key_path)
    office = Office(
        url,
        rules=RuleSet.load(BASELINE_RULES),
        policy=SelectionPolicy(random_ratio=0.3),
        draws=KeyedDraws.from_seed(5),
        roster=Roster.load(ROSTER),
        seal_key=checkpoint.load_signing_key(key_path),
    )
    at = dt.datetime(2026, 6, 1, 10, 0)
    for line in SAMPLE.read_text().splitlines()[:30]:
        office.admit(parse_declaration(json.loads(line)), at)
    return office, key_path


def verify_sealed(url, key_path):
    return runner.invoke(app, ["audit", "verify", url, "--public-key", f"{key_path}.pub"])


def test_a_record_appended_without_the_offices_key_is_in_no_seal(store_url, tmp_path):
    """A correctly chained record appended by whoever can insert into the log (the file's holder, the
    PostgreSQL app role) is in no seal, even when the office seals more work after it; a seal whose
    signature was forged is refused. Both backends."""
    office, key_path = sealed_office(store_url, tmp_path)
    done = verify_sealed(store_url, key_path)
    assert done.exit_code == 0 and "every record sealed" in done.stdout, done.output
    forger = AuditLog(office.store.db)  # no key: what a role with INSERT alone can do
    with forger.db.transaction():
        forged = forger.append(
            "integrity_change",
            {
                "enterprise_id": "E1",
                "field": "credit_class",
                "old": "general",
                "new": "advanced_certified",
                "reason": "x",
            },
        )
    for line in SAMPLE.read_text().splitlines()[30:33]:  # the office carries on, sealing its own work
        office.admit(parse_declaration(json.loads(line)))
    assert office.audit.verify().ok  # the chain cannot tell
    done = verify_sealed(store_url, key_path)
    assert done.exit_code == 1 and isinstance(done.exception, SystemExit)
    assert f"records {forged} to {forged} are in no seal" in done.stderr


def test_a_forged_seal_is_refused(store_url, tmp_path):
    office, key_path = sealed_office(store_url, tmp_path)
    db = office.store.db
    with db.transaction():
        db.execute(
            "UPDATE audit_seals SET signature = ? WHERE seq = (SELECT max(seq) FROM audit_seals)",
            ("00" * 64,),
        )
    done = verify_sealed(store_url, key_path)
    assert done.exit_code == 1 and "the signature is not valid" in done.stderr


def test_verify_says_when_an_office_that_should_seal_has_no_seals(tmp_path):
    from engine import checkpoint

    db = tmp_path / "unsealed.db"
    office = Office(db, rules=RuleSet.load(BASELINE_RULES), draws=KeyedDraws.from_seed(5))
    office.admit(parse_declaration(json.loads(SAMPLE.read_text().splitlines()[0])))
    checkpoint.new_signing_key(tmp_path / "k")
    done = runner.invoke(
        app, ["audit", "verify", str(db), "--sealed", "--public-key", str(tmp_path / "k.pub")]
    )
    assert done.exit_code == 1 and "no seals" in done.stderr


def test_a_rewrite_rehashed_to_the_end_breaks_its_seal(tmp_path):
    """After the newest checkpoint a rewrite rehashed to the end fooled every check; in an office that
    seals, the rewritten range's seal no longer matches, and the forger cannot sign a new one."""
    db = tmp_path / "sealed.db"
    office, key_path = sealed_office(str(db), tmp_path)
    office.store.close()
    conn = sqlite3.connect(db)
    seq = conn.execute("SELECT max(seq) - 3 FROM audit").fetchone()[0]
    conn.close()
    tamper(db, f"UPDATE audit SET at = '2026-01-01T00:00:00' WHERE seq = {seq};")  # any change will do
    rehash_from(db, seq)
    assert verdict(db).ok  # the chain alone is fooled
    done = verify_sealed(str(db), key_path)
    assert done.exit_code == 1 and "differs from the one sealed" in done.stderr
