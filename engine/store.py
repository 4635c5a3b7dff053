"""Where the live office keeps its records: declarations and inspections, enterprises' standing and
the audit log, behind one protocol (`Store`), so `Office` never touches a database API.

`SqliteStore` is the embedded default (one file, WAL, one writer at a time). A store for another
database implements the same methods with the same meaning: every method called inside
`transaction()` commits or rolls back with it; a nested `transaction()` is a savepoint.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Iterable, Protocol

from engine import database
from engine.audit import AuditLog
from engine.integrity import FeedbackPolicy, IntegrityStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS declarations (
    id TEXT PRIMARY KEY,
    enterprise_id TEXT NOT NULL,
    declared_at TEXT NOT NULL,
    decision TEXT NOT NULL,
    selected INTEGER NOT NULL,
    fingerprint TEXT,                -- SHA-256 of the canonical declaration as lodged
    input TEXT                       -- the declaration as lodged (canonical JSON)
);
CREATE TABLE IF NOT EXISTS inspections (
    id TEXT PRIMARY KEY,             -- the declaration id, or '<declaration id>~recheck' ('~' is never in an id)
    kind TEXT NOT NULL DEFAULT 'first',  -- first | recheck
    declaration_id TEXT NOT NULL REFERENCES declarations (id),
    enterprise_id TEXT NOT NULL,
    site TEXT NOT NULL,
    inspection_type TEXT NOT NULL,
    items INTEGER NOT NULL,
    status TEXT NOT NULL,            -- selected waiting dispatched awaiting_release transferred released checked
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
"""
# Files made before fingerprints and inspection kinds: add the columns, mark the old '/recheck' rows.
MIGRATIONS = {2: ["ALTER TABLE declarations ADD COLUMN fingerprint TEXT",
                  "ALTER TABLE declarations ADD COLUMN input TEXT",
                  "ALTER TABLE inspections ADD COLUMN kind TEXT NOT NULL DEFAULT 'first'",
                  "UPDATE inspections SET kind = 'recheck' WHERE id LIKE '%/recheck'"]}
INSPECTION_COLUMNS = ("kind", "status", "inspector_id", "facility", "dispatched_at", "attempts", "exclude",
                      "wait_reason", "outcome", "category", "department", "released_by")  # the ones that change


class Store(Protocol):
    integrity: IntegrityStore
    audit: AuditLog

    def transaction(self) -> AbstractContextManager: ...
    def close(self) -> None: ...
    def lodged(self, declaration_id: str) -> dict[str, Any] | None:
        """The stored decision (JSON text), fingerprint and input of a declaration, or None."""
    def add_declaration(self, declaration_id: str, enterprise_id: str, declared_at: str, decision: str,
                        selected: bool, fingerprint: str, lodged: str) -> None: ...
    def add_inspection(self, inspection_id: str, kind: str, declaration_id: str, enterprise_id: str, site: str,
                       inspection_type: str, items: int, status: str, exclude: str = "") -> None: ...
    def inspection(self, inspection_id: str) -> dict[str, Any] | None: ...
    def update_inspection(self, inspection_id: str, **fields: Any) -> None: ...
    def open_work(self, status: str) -> Iterable[tuple[str, str, str, int]]:
        """(inspector, site, facility, items) of every inspection in this status."""
    def visits_since(self, since: str) -> set[tuple[str, str]]:
        """(inspector, enterprise) pairs dispatched after this ISO time."""
    def rules_logged(self, version: str) -> bool: ...
    def office_decisions(self, office: str, last: int) -> tuple[int, list[dict[str, Any]]]:
        """How many declarations lodged at this customs office were decided, and the last `last` of
        their decisions, oldest first (what an office's pacer is rebuilt from)."""
    def history(self, declaration_id: str, recheck_suffix: str) -> list[dict[str, Any]]: ...
    def report_rows(self) -> Iterable[tuple[str, str, str | None, str | None]]:
        """(declared_at, decision JSON, first inspection's type or None, its outcome or None) per
        declaration, in the order decided."""


class SqliteStore:
    """The Store on one SQLite file (or an open connection)."""

    def __init__(self, db: str | Path | sqlite3.Connection, feedback: FeedbackPolicy | None = None):
        self.conn = db if isinstance(db, sqlite3.Connection) else database.connect(db)
        database.prepare(self.conn, SCHEMA, MIGRATIONS, owner="declarations")
        self.integrity = IntegrityStore(self.conn, feedback)
        self.audit = AuditLog(self.conn)

    def transaction(self) -> AbstractContextManager:
        return database.transaction(self.conn)  # BEGIN IMMEDIATE: concurrent writers queue here

    def close(self) -> None:
        self.conn.close()

    def lodged(self, declaration_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT decision, fingerprint, input FROM declarations WHERE id = ?",
                                (declaration_id,)).fetchone()
        return dict(row) if row else None

    def add_declaration(self, declaration_id: str, enterprise_id: str, declared_at: str, decision: str,
                        selected: bool, fingerprint: str, lodged: str) -> None:
        self.conn.execute("INSERT INTO declarations (id, enterprise_id, declared_at, decision, selected, "
                          "fingerprint, input) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (declaration_id, enterprise_id, declared_at, decision, int(selected), fingerprint, lodged))

    def add_inspection(self, inspection_id: str, kind: str, declaration_id: str, enterprise_id: str, site: str,
                       inspection_type: str, items: int, status: str, exclude: str = "") -> None:
        self.conn.execute(
            "INSERT INTO inspections (id, kind, declaration_id, enterprise_id, site, inspection_type, items, status,"
            " exclude) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (inspection_id, kind, declaration_id, enterprise_id, site, inspection_type, items, status, exclude))

    def inspection(self, inspection_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM inspections WHERE id = ?", (inspection_id,)).fetchone()
        return dict(row) if row else None

    def update_inspection(self, inspection_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(INSPECTION_COLUMNS)
        if unknown:  # column names go into the SQL text: only the known ones ever do
            raise ValueError(f"not an inspection column: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self.conn.execute(f"UPDATE inspections SET {assignments} WHERE id = ?", (*fields.values(), inspection_id))

    def open_work(self, status: str) -> list[tuple[str, str, str, int]]:
        return [tuple(r) for r in self.conn.execute(
            "SELECT inspector_id, site, facility, items FROM inspections WHERE status = ?", (status,))]

    def visits_since(self, since: str) -> set[tuple[str, str]]:
        return {(r[0], r[1]) for r in self.conn.execute(
            "SELECT inspector_id, enterprise_id FROM inspections WHERE dispatched_at > ? "
            "AND inspector_id IS NOT NULL", (since,))}

    def rules_logged(self, version: str) -> bool:
        return self.conn.execute("SELECT 1 FROM audit WHERE kind = 'rules_loaded' AND "
                                 "json_extract(payload, '$.version') = ?", (version,)).fetchone() is not None

    def office_decisions(self, office: str, last: int) -> tuple[int, list[dict[str, Any]]]:
        where = "FROM declarations WHERE json_extract(input, '$.customs_office') = ?"
        count = self.conn.execute(f"SELECT count(*) {where}", (office,)).fetchone()[0]
        rows = self.conn.execute(f"SELECT decision {where} ORDER BY rowid DESC LIMIT ?", (office, last)).fetchall()
        return count, [json.loads(r[0]) for r in reversed(rows)]

    def report_rows(self) -> Iterable[tuple[str, str, str | None, str | None]]:
        return self.conn.execute(
            "SELECT d.declared_at, d.decision, i.inspection_type, i.outcome FROM declarations d "
            "LEFT JOIN inspections i ON i.id = d.id ORDER BY d.rowid")

    def history(self, declaration_id: str, recheck_suffix: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT seq, at, kind, payload FROM audit WHERE json_extract(payload, '$.decision.declaration_id') = ?1 "
            "OR json_extract(payload, '$.inspection') IN (?1, ?1 || ?2) "
            "OR json_extract(payload, '$.declaration') = ?1 ORDER BY seq", (declaration_id, recheck_suffix))
        return [{"seq": r[0], "at": r[1], "kind": r[2], "payload": json.loads(r[3])} for r in rows]
