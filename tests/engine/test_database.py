"""The live office on both databases: SQLite (the default) and PostgreSQL (several instances).

Every test named with `store_url` runs on each backend; the PostgreSQL ones need the server named by
DOUBLERANDOM_TEST_POSTGRES (set by .ci/run) and skip, saying so, without it.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter

import psycopg
import pytest
from typer.testing import CliRunner

from engine import schema
from engine.cli import app
from engine.database import open_database
from engine.declarations import Enterprise, parse_declaration
from engine.dispatch import Roster
from engine.errors import InputError
from engine.office import Office
from engine.randomness import KeyedDraws
from engine.reconciliation import reconcile
from engine.replay import replay
from engine.rules import RuleSet
from engine.selection import SelectionPolicy
from engine.store import open_store
from tests.conftest import BASELINE_RULES, POSTGRES, ROOT, declaration_data

runner = CliRunner()
ROSTER = ROOT / "scenarios" / "roster.yaml"
SAMPLE = ROOT / "scenarios" / "declarations" / "sample.jsonl"
MORNING = dt.datetime(2026, 6, 1, 10, 0)
PACED = SelectionPolicy(expected_rate=0.1, rate_refresh=10, rate_window=40)


def office(url, policy=PACED, roster=True) -> Office:
    rules = RuleSet.load(BASELINE_RULES)
    o = Office(
        url,
        rules=rules,
        policy=policy,
        draws=KeyedDraws.from_seed(11),
        roster=Roster.load(ROSTER) if roster else None,
    )
    o.use_rules(rules, rules.text)
    return o


def sample(n: int, prefix: str = "") -> list:
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    return [
        parse_declaration({**rows[i % len(rows)], "id": f"{prefix}{rows[i % len(rows)]['id']}-{i}"})
        for i in range(n)
    ]


def work_through(o: Office, declarations) -> list[dict]:
    """Decide, and take every dispatched inspection to a result and a release: every step audited."""
    out = []
    for i, d in enumerate(declarations):
        decision = o.admit(d, MORNING)
        out.append(decision.to_dict())
        task = o.inspection(d.id)
        if task and task["status"] == "dispatched":
            problem = i % 3 == 0
            o.record_result(
                d.id,
                task["inspector_id"],
                "problem" if problem else "normal",
                department="duties" if problem else "",
                at=MORNING,
            )
            if not problem:
                o.release(d.id, "REL-1", MORNING)
    return out


def test_a_new_database_is_made_at_the_current_version(store_url):
    store = open_store(store_url)
    assert schema.version(store.db) == schema.VERSION
    assert {t for t in schema.TABLES if store.db.has_table(t)} == set(schema.TABLES)


def test_the_same_office_steps_give_the_same_records_on_both_backends(store_url, tmp_path):
    """Decisions (paced, so the cutoffs too), dispatches, results, releases and integrity changes are
    the same on either database; the chain verifies, the tables reconcile, the log replays."""
    declarations = sample(60)
    here = office(store_url)
    decided = work_through(here, declarations)
    reference = office(tmp_path / "reference.db")
    assert decided == work_through(reference, declarations)
    strip = [(r["kind"], r["payload"]) for r in here.audit.records()]
    assert strip == [(r["kind"], r["payload"]) for r in reference.audit.records()]
    assert here.audit.verify().ok and reconcile(here.audit) == []
    count, mismatches = replay(here.audit, None, KeyedDraws.from_seed(11))
    assert count == 60 and mismatches == []
    assert any(d["channel"] == "targeted" for d in decided) and any(d["cutoff"] > 0 for d in decided)
    first = declarations[0].id
    assert (
        [(r["kind"], r["payload"]) for r in here.history(first)]
        == [(r["kind"], r["payload"]) for r in reference.history(first)]
        != []
    )


def test_every_command_takes_the_database_url(store_url, tmp_path):
    lines = tmp_path / "in.jsonl"
    lines.write_text("".join(json.dumps(d.as_input()) + "\n" for d in sample(12)))
    done = runner.invoke(
        app,
        [
            "select",
            "--rules",
            str(BASELINE_RULES),
            "--seed",
            "3",
            "--input",
            str(lines),
            "--db",
            store_url,
            "--ratio",
            "0.5",
        ],
    )
    assert done.exit_code == 0, done.output
    chosen = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    selected = next(d["declaration_id"] for d in chosen if d["selected"])
    done = runner.invoke(
        app,
        [
            "dispatch",
            store_url,
            selected,
            "--roster",
            str(ROSTER),
            "--seed",
            "3",
            "--at",
            MORNING.isoformat(),
        ],
    )
    assert done.exit_code == 0 and json.loads(done.stdout)["inspector_id"], done.output
    for command in (
        ["audit", "verify", store_url],
        ["audit", "replay", store_url, "--seed", "3"],
        ["report", store_url, "--format", "json"],
        ["integrity", "show", store_url, chosen[0]["declaration_id"]],
    ):
        done = runner.invoke(app, command)
        assert done.exit_code == 0, (command, done.output)
    assert runner.invoke(app, ["audit", "verify", store_url]).stdout.startswith("OK ")


def test_signed_checkpoints_work_on_both_backends(store_url, tmp_path):
    o = office(store_url)
    work_through(o, sample(10))
    key = tmp_path / "audit.key"
    assert runner.invoke(app, ["audit", "keygen", str(key)]).exit_code == 0
    signed = tmp_path / "checkpoint.json"
    done = runner.invoke(
        app, ["audit", "checkpoint", store_url, "--key-file", str(key), "--out", str(signed)]
    )
    assert done.exit_code == 0 and json.loads(done.stdout)["seq"] == o.audit.head()[0], done.output
    verify = ["audit", "verify", store_url, "--checkpoint", str(signed), "--public-key", f"{key}.pub"]
    assert runner.invoke(app, verify).stdout.startswith("OK ")
    forged = json.loads(signed.read_text()) | {"head": "0" * 64}
    signed.write_text(json.dumps(forged))
    assert runner.invoke(app, verify).exit_code != 0


def test_a_database_from_a_newer_doublerandom_is_refused(store_url):
    store = open_store(store_url)
    with store.transaction():
        schema._stamp(store.db, schema.VERSION + 1)
    store.close()
    with pytest.raises(InputError, match="made by a newer doublerandom"):
        open_store(store_url)
    done = runner.invoke(app, ["audit", "verify", store_url])
    assert (
        done.exit_code != 0 and "newer doublerandom" in done.stderr and isinstance(done.exception, SystemExit)
    )


def test_an_older_postgres_database_waits_for_its_owner_to_upgrade_it(postgres_url):
    """A version-2 database (before declarations kept their office): refused at start with the
    command to run; `db upgrade` adds and fills the column; the pacers then read it."""
    db = open_database(postgres_url)
    db.executescript(schema.base(db))
    with db.transaction():
        schema._stamp(db, 2)
        db.execute(
            "INSERT INTO declarations (id, enterprise_id, declared_at, decision, selected, input) VALUES "
            "('OLD-1', 'E1', '2026-05-01', '{}', 0, ?)",
            (json.dumps(declaration_data(id="OLD-1")),),
        )
    with pytest.raises(InputError, match="db upgrade"):
        open_store(postgres_url)
    done = runner.invoke(app, ["db", "upgrade", postgres_url])
    assert done.exit_code == 0 and f"schema 2 -> {schema.VERSION}" in done.stdout, done.output
    store = open_store(postgres_url)
    assert store.db.execute("SELECT customs_office FROM declarations").fetchone()[0] == "OFF-40"
    assert store.office_decisions("OFF-40", 10)[0] == 1
    assert "nothing to do" in runner.invoke(app, ["db", "upgrade", postgres_url]).stdout


@pytest.fixture
def roles(postgres_url):
    """The three roles of README "Running in production", with names of this test's own."""
    suffix = postgres_url.rsplit("=", 1)[1]
    owner, app_role, log_role = f"own_{suffix}", f"app_{suffix}", f"log_{suffix}"
    yield postgres_url, owner, app_role, log_role
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{suffix}" CASCADE')
        for role in (app_role, owner, log_role):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(f'DROP OWNED BY "{role}" CASCADE')
                conn.execute(f'DROP ROLE "{role}"')


def as_role(url: str, role: str) -> str:
    return url.replace("://postgres@", f"://{role}@", 1)


def init_roles(url, owner, app_role, log_role):
    assert runner.invoke(app, ["db", "upgrade", url]).exit_code == 0
    done = runner.invoke(
        app, ["db", "init-roles", url, "--owner", owner, "--app", app_role, "--log-owner", log_role]
    )
    assert done.exit_code == 0, done.output


# What a role that can alter a table could do to the log without touching a row through the triggers.
REWRITES = [
    "UPDATE audit SET kind = 'x' WHERE seq = 2",
    "DELETE FROM audit WHERE seq = 2",
    "TRUNCATE audit",
    "ALTER TABLE audit DISABLE TRIGGER audit_no_change",
    "ALTER TABLE audit DISABLE TRIGGER ALL",
    "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RETURN NEW; END $$",
    "DROP TRIGGER audit_no_change ON audit",
    "ALTER TABLE audit RENAME TO audit_old",
    "ALTER TABLE audit RENAME COLUMN payload TO p",
    "DROP TABLE audit",
    "ALTER TABLE audit OWNER TO CURRENT_USER",
    "DROP FUNCTION audit_append_only() CASCADE",
    "CREATE RULE r AS ON UPDATE TO audit DO INSTEAD NOTHING",
]


def test_neither_the_app_role_nor_the_owner_can_rewrite_the_log(roles):
    """Every rewrite, tried as each role the service and the migrations use, is refused; the owner
    owned the log before, and a table's owner may disable its triggers, replace their function, drop
    or rename it."""
    url, owner, app_role, log_role = roles
    init_roles(url, owner, app_role, log_role)
    work_through(office(as_role(url, app_role)), sample(20))  # the service's whole work, as the app role
    schema_name = url.rsplit("=", 1)[1]
    for role in (app_role, owner):
        with psycopg.connect(as_role(url, role).split("?")[0], autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema_name}"')
            for attempt in REWRITES + ['DROP SCHEMA "%s" CASCADE' % schema_name]:
                with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException)):
                    conn.execute(attempt)
                    pytest.fail(f"{role} could: {attempt}")
            if role == app_role:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("DELETE FROM declarations")
    assert runner.invoke(app, ["audit", "verify", as_role(url, app_role)]).exit_code == 0
    assert (
        runner.invoke(app, ["db", "upgrade", as_role(url, owner)]).exit_code == 0
    )  # the owner still migrates
    refused = runner.invoke(
        app,
        [
            "db",
            "init-roles",
            as_role(url, app_role),
            "--owner",
            owner,
            "--app",
            app_role,
            "--log-owner",
            log_role,
        ],
    )
    assert (
        refused.exit_code == 2
        and isinstance(refused.exception, SystemExit)
        and "must be owner" in refused.stderr
    )


def test_init_roles_refuses_an_owner_who_is_a_member_of_the_log_owner(roles):
    url, owner, app_role, log_role = roles
    init_roles(url, owner, app_role, log_role)
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'GRANT "{log_role}" TO "{owner}"')
    done = runner.invoke(
        app, ["db", "init-roles", url, "--owner", owner, "--app", app_role, "--log-owner", log_role]
    )
    assert done.exit_code == 2 and "could rewrite the log" in done.stderr


def test_db_upgrade_makes_a_schema_that_is_not_there_yet(postgres_url):
    fresh = postgres_url + "_new"
    try:
        done = runner.invoke(app, ["db", "upgrade", fresh])
        assert done.exit_code == 0 and f"schema 0 -> {schema.VERSION}" in done.stdout, done.output
        assert open_store(fresh).audit.exists()
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{fresh.rsplit("=", 1)[1]}" CASCADE')


def test_two_instances_on_one_database_keep_one_chain_and_book_nobody_twice(postgres_url):
    """Two offices (two connections, as two service instances) decide and dispatch at once, racing
    on the same ids: each id is decided once, no facility holds more inspections than it has places,
    the chain verifies, the tables reconcile, and every paced cutoff replays in the log's order."""
    first, second = office(postgres_url), office(postgres_url)
    first.register([Enterprise(id=f"E{i}") for i in range(40)])
    declarations = sample(120)
    answers: dict[str, list] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def run(o, name, order):
        try:
            for d in order:
                answers[name].append(o.admit(d, MORNING).to_dict())
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [
        threading.Thread(target=run, args=(first, "a", declarations)),
        threading.Thread(target=run, args=(second, "b", declarations[::-1])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    by_id = {d["declaration_id"]: d for d in answers["a"]}
    assert all(
        by_id[d["declaration_id"]] == d for d in answers["b"]
    )  # the race's loser got the first decision
    store = first.store
    assert store.db.execute("SELECT count(*) FROM declarations").fetchone()[0] == 120
    busy = Counter((r[1], r[2]) for r in store.open_work("dispatched"))
    places = Roster.load(ROSTER).facilities
    assert busy and all(n <= places[site][facility] for (site, facility), n in busy.items())
    assert store.audit.verify().ok and reconcile(store.audit) == []
    count, mismatches = replay(store.audit, None, KeyedDraws.from_seed(11))
    assert count == 120 and mismatches == []


def test_an_office_moves_to_postgres_and_back_with_its_chain(postgres_url, tmp_path):
    source = tmp_path / "office.db"
    o = office(source)
    work_through(o, sample(30))
    head = o.audit.head()
    o.store.close()
    done = runner.invoke(app, ["db", "copy", str(source), postgres_url])
    assert done.exit_code == 0 and f"audit head {head[0]} {head[1]}" in done.stdout, done.output
    back = tmp_path / "back.db"
    assert runner.invoke(app, ["db", "copy", postgres_url, f"sqlite:///{back}"]).exit_code == 0
    moved = office(postgres_url)  # and it carries on where it stopped
    work_through(moved, sample(5, prefix="after-"))
    assert moved.audit.verify().ok and reconcile(moved.audit) == []
    for url in (postgres_url, str(back)):
        assert runner.invoke(app, ["audit", "replay", url, "--seed", "11"]).exit_code == 0
    refused = runner.invoke(app, ["db", "copy", str(source), postgres_url])
    assert refused.exit_code != 0 and "not empty" in refused.stderr


def test_a_broken_chain_is_not_copied(postgres_url, tmp_path):
    import sqlite3

    source = tmp_path / "office.db"
    work_through(office(source), sample(10))
    conn = sqlite3.connect(source)
    conn.executescript("DROP TRIGGER audit_no_update; UPDATE audit SET kind = 'x' WHERE seq = 4;")
    conn.close()
    done = runner.invoke(app, ["db", "copy", str(source), postgres_url])
    assert done.exit_code == 2 and isinstance(done.exception, SystemExit)  # one error, not an exception
    assert "broken at record 4" in done.stderr and open_store(postgres_url).audit.head() is None


def test_a_row_postgres_cannot_hold_is_named_and_nothing_is_copied(postgres_url, tmp_path, monkeypatch):
    """An office kept on SQLite from before NUL was refused: `db copy` names the row, copies nothing."""
    source = tmp_path / "office.db"
    o = office(source, policy=SelectionPolicy(random_ratio=1.0))
    d = sample(1)[0]
    o.admit(d, MORNING)
    monkeypatch.setattr("engine.office.unstorable", lambda text: None)  # as the office was before
    o.record_result(d.id, o.inspection(d.id)["inspector_id"], "problem", "under\x00valued", "duties", MORNING)
    o.store.close()
    done = runner.invoke(app, ["db", "copy", str(source), postgres_url])
    assert done.exit_code == 2 and isinstance(done.exception, SystemExit), done.output
    assert "NUL" in done.stderr and "nothing copied" in done.stderr
    assert open_store(postgres_url).audit.head() is None


def test_a_lost_connection_is_one_clear_error_and_the_next_step_works(postgres_url):
    """The server drops the office's connections mid-work (a restart, a failover): the step in
    flight is refused as Unavailable, nothing of it is kept, and the pool reconnects for the next."""
    from engine.errors import Unavailable

    o = office(postgres_url)
    declarations = sample(4)
    o.admit(declarations[0], MORNING)
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND application_name = %s",
            (f"doublerandom:{postgres_url.rsplit('=', 1)[1]}",),
        )
    with pytest.raises(Unavailable, match="did not answer"):
        o.admit(declarations[1], MORNING)
    for d in declarations[1:]:
        o.admit(d, MORNING)
    assert o.audit.verify().ok and reconcile(o.audit) == [] and len(list(o.audit.records("selection"))) == 4


def test_an_unreachable_server_is_one_clear_error(tmp_path):
    done = runner.invoke(app, ["audit", "verify", "postgresql://nobody:secret@127.0.0.1:1/none"])
    assert done.exit_code != 0 and "cannot connect to PostgreSQL" in done.stderr
    assert "secret" not in done.output and isinstance(done.exception, SystemExit)


@pytest.mark.parametrize(
    "variable, outcome",
    [
        ("postgresql://postgres@127.0.0.1:1/test", "error"),  # named but silent: the run fails, never skips
        ("", "skipped"),  # not named: skipped, saying how to run them
    ],
)
def test_the_postgres_tests_fail_when_the_named_server_is_silent_and_skip_when_none_is_named(
    variable, outcome
):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DOUBLERANDOM_TEST_POSTGRES"}
    if variable:
        env["DOUBLERANDOM_TEST_POSTGRES"] = variable
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            "tests/engine/test_store.py::test_only_known_inspection_columns_reach_the_sql",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert f"1 passed, 1 {outcome}" in done.stdout, done.stdout[-800:]
    assert ("does not answer" if variable else "set DOUBLERANDOM_TEST_POSTGRES") in done.stdout
    assert (done.returncode != 0) == bool(variable)


def _changed(value):
    """Another value of the same column type: what a direct UPDATE would leave."""
    if isinstance(value, int):
        return value + 1
    if value is None:
        return "forged"
    if value.startswith("{"):  # a decision or a lodged declaration
        return value.replace('"', '"x', 1)
    return value + "x"


def test_every_column_of_every_state_table_is_reconciled(store_url):
    """Each column of each row of the state tables, changed by a direct UPDATE, is reported: the
    columns are read from the database itself, so a new column cannot be left unchecked."""
    from engine.reconciliation import NOT_RECONCILED

    o = office(store_url, policy=SelectionPolicy(random_ratio=0.5), roster=True)
    o.register([Enterprise(id="E0", credit_class="dishonest", high_risk=True, high_risk_until="2026-12-01")])
    for d in sample(30):
        o.admit(d.model_copy(update={"enterprise_id": "E0"}), MORNING)
    waiting = [r["id"] for r in o.store.db.execute("SELECT id FROM inspections").fetchall()]
    for inspection_id in waiting[:3]:
        task = o.inspection(inspection_id)
        if task["status"] == "dispatched":
            o.record_result(
                inspection_id, task["inspector_id"], "problem", "undervaluation", "duties", MORNING
            )
    assert reconcile(o.audit) == []
    db = o.store.db
    other = db.execute("SELECT max(id) FROM declarations").fetchone()[0]  # a key the inspections may point to
    checked = 0
    for table in ("declarations", "inspections", "enterprises"):
        for row in db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()[:4]:
            for column in row.keys():
                if (table, column) in NOT_RECONCILED or column == "id":
                    continue
                with db.transaction():
                    db.execute(
                        f"UPDATE {table} SET {column} = ? WHERE id = ?",
                        (other if column == "declaration_id" else _changed(row[column]), row["id"]),
                    )
                found = {(d.table, d.row, d.field.split(".")[0]) for d in reconcile(o.audit)}
                with db.transaction():
                    db.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (row[column], row["id"]))
                assert (table, row["id"], column) in found, (table, column)
                checked += 1
    assert checked == 4 * 7 + 4 * 17 + 1 * 6 and reconcile(o.audit) == []  # rows x columns, one firm


def test_the_app_role_seals_what_it_writes_and_the_owner_cannot_touch_the_seals(roles, tmp_path):
    from engine import checkpoint

    url, owner, app_role, log_role = roles
    init_roles(url, owner, app_role, log_role)
    checkpoint.new_signing_key(tmp_path / "office.key")
    o = office(as_role(url, app_role))
    o.store.sealer = checkpoint.load_signing_key(tmp_path / "office.key")
    work_through(o, sample(5))
    done = runner.invoke(
        app, ["audit", "verify", as_role(url, app_role), "--public-key", str(tmp_path / "office.key.pub")]
    )
    assert done.exit_code == 0 and "every record sealed" in done.stdout, done.output
    schema_name = url.rsplit("=", 1)[1]
    for role in (app_role, owner):
        with psycopg.connect(as_role(url, role).split("?")[0], autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema_name}"')
            for attempt in (
                "DELETE FROM audit_seals",
                "UPDATE audit_seals SET signature = ''",
                "DROP TABLE audit_seals",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(attempt)
