"""The live engine's tables, on SQLite and PostgreSQL, and their versions.

A database records the schema version it was made or last upgraded to (SQLite: `PRAGMA
user_version`; PostgreSQL: the table `doublerandom_schema`). Versions go up by numbered migrations,
each applied in a transaction together with its version stamp, so a failed upgrade changes nothing.
Both dialects are built the same way: the version-2 layout (`BASE`), then every migration above it.
A database from a newer doublerandom is refused, never half-understood. An older SQLite file (the
embedded default) is upgraded when opened; an older PostgreSQL database is refused until the owner
runs `doublerandom db upgrade URL`, because there the application's role may not alter tables
(README "Running in production").

History: 0 the first release; 2 declarations keep their fingerprint and content, inspections their
kind; 3 declarations keep their customs office in a column (the capacity pacers read an office's
last decisions, and a JSON scan per office does not scale on a shared server); 4 the audit log's
seals (engine/audit.py); 5 declarations indexed by importer and date (a learned score reads each
importer's record over the days before a declaration: engine.score).
"""

from __future__ import annotations

from engine.database import Database
from engine.database import identifier as name
from engine.errors import InputError

VERSION = 5
BASE_VERSION = 2

_TABLES = """
CREATE TABLE IF NOT EXISTS declarations (
    {rowid}
    id TEXT PRIMARY KEY,
    enterprise_id TEXT NOT NULL,
    declared_at TEXT NOT NULL,
    decision TEXT NOT NULL,
    selected INTEGER NOT NULL,
    fingerprint TEXT,                -- SHA-256 of the canonical declaration as lodged
    input TEXT                       -- the declaration as lodged (canonical JSON)
);
CREATE TABLE IF NOT EXISTS inspections (
    id TEXT PRIMARY KEY,             -- the declaration id, or '<declaration id>~recheck'
                                     -- ('~' is never in an id)
    kind TEXT NOT NULL DEFAULT 'first',  -- first | recheck
    declaration_id TEXT NOT NULL REFERENCES declarations (id),
    enterprise_id TEXT NOT NULL,
    site TEXT NOT NULL,
    inspection_type TEXT NOT NULL,
    items INTEGER NOT NULL,
    status TEXT NOT NULL,            -- selected waiting dispatched awaiting_release transferred
                                     -- released checked
    inspector_id TEXT,
    facility TEXT,
    dispatched_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    exclude TEXT NOT NULL DEFAULT '',
    wait_reason TEXT,
    outcome TEXT,
    category TEXT,
    department TEXT,
    released_by TEXT
);
CREATE INDEX IF NOT EXISTS inspections_by_status ON inspections (status, inspector_id);
CREATE TABLE IF NOT EXISTS enterprises (
    id TEXT PRIMARY KEY,
    credit_class TEXT NOT NULL,
    high_risk INTEGER NOT NULL DEFAULT 0,
    high_risk_until TEXT,
    declarations INTEGER NOT NULL DEFAULT 0,
    inspections INTEGER NOT NULL DEFAULT 0,
    problems INTEGER NOT NULL DEFAULT 0,
    clean_streak INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS enterprise_events (
    id {serial},
    enterprise_id TEXT NOT NULL,
    on_date TEXT NOT NULL,
    kind TEXT NOT NULL,        -- problem | clean | agency:<status> | change
    source TEXT NOT NULL,      -- customs, or the agency that sent a list
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS enterprise_events_by_firm ON enterprise_events (enterprise_id, kind, on_date);
CREATE TABLE IF NOT EXISTS audit (
    seq {integer} PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_kind ON audit (kind);
"""
# What a declaration's history reads (GET /declarations/{id}); without them each GET scans the log.
_HISTORY_INDEXES = {
    "audit_by_decision": "decision.declaration_id",
    "audit_by_inspection": "inspection",
    "audit_by_declaration": "declaration",
}

# SQLite: triggers refuse UPDATE, DELETE and an INSERT over an existing record (`INSERT OR REPLACE`
# deletes without firing the DELETE trigger).
_SQLITE_APPEND_ONLY = """
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_replace BEFORE INSERT ON audit
WHEN EXISTS (SELECT 1 FROM audit WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
# PostgreSQL: the application's role has no UPDATE, DELETE or TRUNCATE grant on the audit table at
# all (`db init-roles`); these triggers refuse them even to a role that has, such as the owner.
_POSTGRES_APPEND_ONLY = """
CREATE TABLE IF NOT EXISTS doublerandom_schema (version INTEGER NOT NULL);
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE OR REPLACE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"""
# Version 4: a seal per write transaction, signed by the office's key outside the database (audit.py):
# whoever can only insert into the log cannot sign, so an appended record shows as unsealed.
_SEALS = """CREATE TABLE IF NOT EXISTS audit_seals (
    seq {integer} PRIMARY KEY,  -- the last record the transaction appended
    first {integer} NOT NULL,   -- its first: the seal covers first..seq
    hash TEXT NOT NULL,
    at TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
)"""
# Numbered migrations: the statements that bring a database from the version below to this one.
_BY_FIRM = "CREATE INDEX declarations_by_firm ON declarations (enterprise_id, declared_at)"
MIGRATIONS = {
    "sqlite": {
        5: [_BY_FIRM],
        4: [_SEALS.format(integer="INTEGER")],
        2: [
            "ALTER TABLE declarations ADD COLUMN fingerprint TEXT",
            "ALTER TABLE declarations ADD COLUMN input TEXT",
            "ALTER TABLE inspections ADD COLUMN kind TEXT NOT NULL DEFAULT 'first'",
            "UPDATE inspections SET kind = 'recheck' WHERE id LIKE '%/recheck'",
        ],
        3: [
            "ALTER TABLE declarations ADD COLUMN customs_office TEXT",
            "UPDATE declarations SET customs_office = json_extract(input, '$.customs_office')",
            "CREATE INDEX declarations_by_office ON declarations (customs_office)",
        ],  # rowid is in every index
    },
    "postgresql": {
        5: [_BY_FIRM],
        4: [_SEALS.format(integer="BIGINT")],
        3: [
            "ALTER TABLE declarations ADD COLUMN customs_office TEXT",
            "UPDATE declarations SET customs_office = input::jsonb ->> 'customs_office'",
            "CREATE INDEX declarations_by_office ON declarations (customs_office, rowid)",
        ],
    },
}
TABLES = (
    "declarations",
    "inspections",
    "enterprises",
    "enterprise_events",
    "audit",
    "audit_seals",
)  # copy order


def base(db: Database) -> str:
    """The version-2 layout in this dialect (every statement idempotent)."""
    if db.dialect == "sqlite":
        tables = _TABLES.format(rowid="", serial="INTEGER PRIMARY KEY", integer="INTEGER")
        extra = _SQLITE_APPEND_ONLY
    else:  # `rowid`: the order decided in, named as SQLite's implicit column so the queries are shared
        tables = _TABLES.format(
            rowid="rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,",
            serial="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            integer="BIGINT",
        )
        extra = _POSTGRES_APPEND_ONLY
    indexes = "".join(
        f"CREATE INDEX IF NOT EXISTS {name} ON audit ({db.json('payload', path)});\n"
        for name, path in _HISTORY_INDEXES.items()
    )
    return tables + indexes + extra


def version(db: Database) -> int:
    if db.dialect == "sqlite":
        return db.execute("PRAGMA user_version").fetchone()[0]
    if not db.has_table("doublerandom_schema"):
        return 0
    row = db.execute("SELECT max(version) FROM doublerandom_schema").fetchone()
    return row[0] or 0


def _stamp(db: Database, number: int) -> None:
    if db.dialect == "sqlite":
        db.execute(f"PRAGMA user_version = {int(number)}")
    else:
        db.execute("DELETE FROM doublerandom_schema")
        db.execute("INSERT INTO doublerandom_schema (version) VALUES (?)", (number,))


def refuse_newer(db: Database) -> int:
    found = version(db)
    if found > VERSION:
        raise InputError(
            f"{db.url}: made by a newer doublerandom (schema {found}; this version reads up to "
            f"{VERSION}); upgrade doublerandom to open it"
        )
    return found


def prepare(db: Database) -> None:
    """At start: create a new database's tables; upgrade an older SQLite file; refuse a newer
    database, and an older PostgreSQL one (its owner upgrades it)."""
    found = refuse_newer(db)
    if found == VERSION:
        return
    if db.dialect == "postgresql" and db.has_table("declarations"):
        raise InputError(
            f"{db.url}: schema version {found}, this doublerandom needs {VERSION}: run "
            f"`doublerandom db upgrade URL` as the database's owner first"
        )
    upgrade(db)


def upgrade(db: Database, to: int = VERSION) -> tuple[int, int]:
    """Apply every migration above the database's version, up to `to`; returns (from, to). On
    PostgreSQL the whole upgrade is one writer's transaction (DDL is transactional there), so
    instances starting together on a new database create its tables once."""
    if db.dialect == "postgresql":
        with db.transaction():
            db.patient()  # a migration may rewrite every row
            return _upgrade(db, to)
    return _upgrade(db, to)


def _upgrade(db: Database, to: int) -> tuple[int, int]:
    found = refuse_newer(db)
    if found >= to:
        return found, found
    fresh = not db.has_table("declarations")
    if (
        db.dialect == "postgresql"
        and db.schema
        and not db.execute("SELECT 1 FROM pg_namespace WHERE nspname = ?", (db.schema,)).fetchone()
    ):
        db.execute(f"CREATE SCHEMA {name(db.schema)}")
    steps = MIGRATIONS[db.dialect]
    with db.transaction():
        for number in sorted(steps):  # a file from before the base layout: bring it up to the base
            if not fresh and found < number <= BASE_VERSION:
                _migrate(db, number, steps[number])
    if fresh or db.dialect == "sqlite":  # on PostgreSQL the log's objects belong to a role the owner is not
        db.executescript(base(db))  # idempotent; SQLite's executescript commits on its own
    current = max(found, BASE_VERSION)
    if fresh:
        with db.transaction():
            _stamp(db, BASE_VERSION)
    for number in sorted(steps):
        if current < number <= to:
            with db.transaction():
                _migrate(db, number, steps[number])
            current = number
    return found, current


def _migrate(db: Database, number: int, statements: list[str]) -> None:
    for statement in statements:
        db.execute(statement)
    _stamp(db, number)


def init_roles(db: Database, owner: str, app: str, log_owner: str = "doublerandom_log") -> list[str]:
    """PostgreSQL: the three roles of README "Running in production", made if missing (owner and app
    LOGIN, no password: set one with ALTER ROLE, or use the site's authentication). `owner` owns the
    state tables and runs `db upgrade`; `app`, the role the service and commands connect as, may read
    and write the state tables but only INSERT and SELECT the audit log. The audit table, its trigger
    function and the schema belong to `log_owner`, a role nobody logs in as: the owner cannot disable,
    replace, drop or rename what keeps the log append-only (PostgreSQL lets a table's owner do all of
    that), so only a superuser can. Run as a superuser, after `db upgrade` and again after each.
    Returns the statements."""
    if db.dialect != "postgresql":
        raise InputError(
            "db init-roles is for PostgreSQL; a SQLite file is protected by its file permissions"
        )
    if version(db) != VERSION:
        raise InputError(
            f"{db.url}: run `doublerandom db upgrade` first (schema {version(db)}, needs {VERSION})"
        )
    if log_owner in (owner, app):
        raise InputError(
            f"the log's owner {log_owner!r} must be a role of its own, neither the owner nor the app role"
        )
    o, a, g = name(owner), name(app), name(log_owner)
    current = db.execute("SELECT current_schema()").fetchone()[0]
    s = name(current)
    log_tables = ("audit", "audit_seals")
    state = ", ".join(t for t in TABLES if t not in log_tables)
    statements = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{r}') THEN CREATE ROLE {q} "
        f"{login}; END IF; END $$"
        for r, q, login in ((owner, o, "LOGIN"), (app, a, "LOGIN"), (log_owner, g, "NOLOGIN"))
    ]
    if current != "public":  # the schema's owner could drop the log: it is the log's owner
        statements.append(f"ALTER SCHEMA {s} OWNER TO {g}")
    statements += [f"GRANT USAGE, CREATE ON SCHEMA {s} TO {o}"]
    statements += [
        f"ALTER TABLE {t} OWNER TO {o}" for t in (*TABLES, "doublerandom_schema") if t not in log_tables
    ]
    statements += [
        f"ALTER TABLE audit OWNER TO {g}",
        f"ALTER TABLE audit_seals OWNER TO {g}",
        f"REVOKE ALL ON audit_seals FROM PUBLIC, {a}, {o}",
        f"GRANT SELECT, INSERT ON audit_seals TO {a}, {o}",
        f"ALTER FUNCTION audit_append_only() OWNER TO {g}",
        f"GRANT USAGE ON SCHEMA {s} TO {a}",
        f"GRANT SELECT, INSERT, UPDATE ON {state} TO {a}",
        f"GRANT SELECT ON doublerandom_schema TO {a}",
        f"REVOKE ALL ON audit FROM PUBLIC, {a}, {o}",
        f"GRANT SELECT, INSERT ON audit TO {a}, {o}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {a}",
    ]
    with db.transaction():
        for statement in statements:
            db.execute(statement)
        _refuse_members(db, log_owner, (owner, app))
    return statements


def _refuse_members(db: Database, log_owner: str, roles: tuple[str, ...]) -> None:
    """A role that is a member of the log's owner has its powers, so could rewrite the log."""
    for role in roles:
        if db.execute("SELECT pg_has_role(?, ?, 'MEMBER')", (role, log_owner)).fetchone()[0]:
            raise InputError(
                f"role {role!r} is a member of {log_owner!r}, the audit log's owner, so it could "
                f"rewrite the log; REVOKE {log_owner} FROM {role} first (nothing was changed)"
            )
