"""A stuck writer stops nobody for long, and a checkpoint that cannot be written refuses nothing.

Writers take turns (engine/database.py). A peer that holds the turn (a stopped process in the
middle of a transaction, a role holding the office's advisory lock, a second SQLite process) makes
the others answer "unavailable, send it again" within TURN_WAIT seconds, never hang; on PostgreSQL a
write transaction left idle is ended by the server after IDLE_LIMIT seconds, and the others carry on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psycopg
import pytest
from fastapi.testclient import TestClient

from engine import checkpoint
from engine.database import IDLE_LIMIT, TURN_WAIT, connect
from engine.declarations import parse_declaration
from engine.errors import Unavailable
from engine.office import Office
from engine.randomness import KeyedDraws
from engine.rules import RuleSet
from engine.runtime import Checkpointing
from engine.service import create_app
from tests.conftest import BASELINE_RULES, POSTGRES, ROOT, declaration_data
from tests.engine.test_service import MORNING, WEAPONS, office_files, post_declaration


def _office(url) -> Office:
    return Office(url, rules=RuleSet.load(BASELINE_RULES), draws=KeyedDraws.from_seed(1))


def _decide(office: Office, n: int):
    return office.admit(parse_declaration(declaration_data(id=f"T{n}", declared_at="2026-06-01T10:00:00")))


def _timed_refusal(office: Office, n: int) -> float:
    started = time.monotonic()
    with pytest.raises(Unavailable, match="turn to write did not come"):
        _decide(office, n)
    return time.monotonic() - started


def test_a_second_sqlite_writer_holding_the_file_gets_unavailable_within_the_wait(tmp_path):
    db = tmp_path / "office.db"
    office = _office(db)
    holder = connect(db)
    holder.execute("BEGIN IMMEDIATE")  # another process's step, stuck in the middle
    waited = _timed_refusal(office, 1)
    assert TURN_WAIT - 0.5 < waited < TURN_WAIT + 3
    holder.execute("ROLLBACK")
    assert _decide(office, 1).declaration_id == "T1" and office.audit.verify().ok


def test_a_role_holding_the_offices_lock_gets_unavailable_not_a_hang(postgres_url):
    office = _office(postgres_url)
    schema_name = postgres_url.rsplit("=", 1)[1]
    with psycopg.connect(POSTGRES, autocommit=True) as holder:  # anyone who can connect can take it
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"doublerandom:{schema_name}",))
        waited = _timed_refusal(office, 1)
        assert TURN_WAIT - 0.5 < waited < TURN_WAIT + 3
    assert _decide(office, 1).declaration_id == "T1"  # the holder gone, the next step goes through


STOPPED_MID_TRANSACTION = textwrap.dedent("""
    import os, signal, sys
    from engine.office import Office
    office = Office(sys.argv[1])
    with office.store.transaction():
        office.store.db.execute("SELECT 1")
        print("holding", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)  # stopped with the turn held, as by SIGSTOP or a debugger
""")


def test_an_instance_stopped_mid_transaction_is_cut_off_and_the_others_carry_on(postgres_url):
    office = _office(postgres_url)
    stopped = subprocess.Popen(
        [sys.executable, "-c", STOPPED_MID_TRANSACTION, postgres_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert stopped.stdout.readline().strip() == "holding"
        started = time.monotonic()
        _timed_refusal(office, 1)  # while it holds the turn: unavailable, quickly
        while True:  # then the server ends its idle transaction and the turn is free again
            try:
                _decide(office, 1)
                break
            except Unavailable:
                assert time.monotonic() - started < IDLE_LIMIT + 2 * TURN_WAIT + 5
        assert time.monotonic() - started < IDLE_LIMIT + 2 * TURN_WAIT + 5
    finally:
        stopped.send_signal(signal.SIGKILL)
        stopped.wait()
    assert office.audit.verify().ok and office.decision("T1").declaration_id == "T1"


def test_the_service_answers_503_with_retry_after_and_health_says_why(tmp_path, store_url):
    setup = office_files(tmp_path, store_url)
    app = create_app(
        setup["rules"], setup["db"], setup["key"], setup["keys"], setup["roster"], clock=lambda: MORNING
    )
    with TestClient(app) as client:
        if store_url.startswith("postgresql"):
            holder = psycopg.connect(POSTGRES, autocommit=True)
            holder.execute(
                "SELECT pg_advisory_lock(hashtext(%s))", (f"doublerandom:{store_url.rsplit('=', 1)[1]}",)
            )
        else:
            holder = connect(setup["db"])
            holder.execute("BEGIN IMMEDIATE")
        refused = post_declaration(client, id="B1", enterprise_id="E1", **WEAPONS)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "2", refused.text
        health = client.get("/health").json()
        assert health["status"] == "degraded" and "turn to write" in health["database_problem"]
        holder.close()  # the lock goes with the session; SQLite's transaction with the connection
        assert post_declaration(client, id="B1", enterprise_id="E1", **WEAPONS).status_code == 200
        assert client.get("/health").json() | {"version": None} == {
            "status": "ok",
            "version": None,
            "rules_version": health["rules_version"],
            "model_version": None,
            "rules_problem": None,
            "database_problem": None,
            "checkpoint_problem": None,
        }


def test_a_checkpoint_that_cannot_be_written_refuses_no_stored_decision(tmp_path, monkeypatch):
    """The decision is committed before the checkpoint is tried: a full disk answers 200, /health
    says degraded, and the next write that can makes the checkpoint."""
    setup = office_files(tmp_path, tmp_path / "office.db")
    key, folder = tmp_path / "audit.key", tmp_path / "checkpoints"
    checkpoint.new_signing_key(key)
    folder.mkdir()
    real_replace = os.replace

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("engine.checkpoint.os.replace", full_disk)
    app = create_app(
        setup["rules"],
        setup["db"],
        setup["key"],
        setup["keys"],
        setup["roster"],
        clock=lambda: MORNING,
        checkpoints=Checkpointing(key, folder, every=1),
    )
    with TestClient(app) as client:
        first = post_declaration(client, id="C1", enterprise_id="E1", **WEAPONS)
        assert first.status_code == 200, first.text
        assert post_declaration(client, id="C1", enterprise_id="E1", **WEAPONS).json() == first.json()
        health = client.get("/health").json()
        assert health["status"] == "degraded" and "No space left" in health["checkpoint_problem"]
        assert list(folder.iterdir()) == []  # no half-written file left behind
        monkeypatch.setattr("engine.checkpoint.os.replace", real_replace)
        assert post_declaration(client, id="C2", enterprise_id="E2").status_code == 200
        assert client.get("/health").json()["checkpoint_problem"] is None
    written = sorted(folder.glob("checkpoint-*.json"))
    assert len(written) == 1 and checkpoint.read(written[0]).seq > 1


def test_verify_reports_a_half_written_checkpoint_and_checks_the_others(tmp_path):
    from typer.testing import CliRunner

    from engine.cli import app

    db, key, folder = tmp_path / "office.db", tmp_path / "audit.key", tmp_path / "cps"
    office = _office(db)
    _decide(office, 1)
    checkpoint.new_signing_key(key)
    folder.mkdir()
    checkpoint.write(checkpoint.sign(*office.audit.head(), checkpoint.load_signing_key(key)), folder)
    (folder / "checkpoint-000000000009.json").write_text(
        '{"seq": 9, "he'
    )  # a crash, before writes were atomic
    office.store.close()
    done = CliRunner().invoke(
        app, ["audit", "verify", str(db), "--checkpoints", str(folder), "--public-key", str(key) + ".pub"]
    )
    assert done.exit_code == 1 and isinstance(done.exception, SystemExit)
    assert "not a checkpoint" in done.stderr and "1 problems" in done.stderr
