"""Where the live office keeps its records: declarations and inspections, enterprises' standing and
the audit log, behind one protocol (`Store`), so `Office` never touches a database API.

`SqlStore` implements it on either database `engine/database.py` opens: SQLite (the embedded
default, one file) or PostgreSQL (several service instances on one database). `open_store(url)`
picks by the URL. Every method called inside `transaction()` commits or rolls back with it; a
nested `transaction()` is a savepoint; a transaction is one writer's turn.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

from engine import schema
from engine.audit import AuditLog
from engine.database import Database, open_database
from engine.integrity import FeedbackPolicy, IntegrityStore

INSPECTION_COLUMNS = (
    "kind",
    "status",
    "inspector_id",
    "facility",
    "dispatched_at",
    "attempts",
    "exclude",
    "wait_reason",
    "outcome",
    "category",
    "department",
    "released_by",
)  # the ones that change


class Store(Protocol):
    integrity: IntegrityStore
    audit: AuditLog

    def transaction(self) -> AbstractContextManager: ...
    def close(self) -> None: ...
    def lodged(self, declaration_id: str) -> dict[str, Any] | None:
        """The stored decision (JSON text), fingerprint and input of a declaration, or None."""

    def add_declaration(
        self,
        declaration_id: str,
        enterprise_id: str,
        customs_office: str,
        declared_at: str,
        decision: str,
        selected: bool,
        fingerprint: str,
        lodged: str,
    ) -> None: ...
    def add_inspection(
        self,
        inspection_id: str,
        kind: str,
        declaration_id: str,
        enterprise_id: str,
        site: str,
        inspection_type: str,
        items: int,
        status: str,
        exclude: str = "",
    ) -> None: ...
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

    def last_decided(self) -> int:
        """The newest declaration's place in the order decided."""

    def decided_since(self, after: int, limit: int) -> list[tuple[str, dict[str, Any]]]:
        """(customs office, decision) of the declarations decided after place `after`, in order."""

    def history(self, declaration_id: str, recheck_suffix: str) -> list[dict[str, Any]]: ...
    def report_rows(self) -> Iterable[tuple[str, str, str | None, str | None]]:
        """(declared_at, decision JSON, first inspection's type or None, its outcome or None) per
        declaration, in the order decided."""

    def report_rows_after(
        self, order: int, limit: int | None = None
    ) -> Iterable[tuple[int, str, str, str, str | None, str | None]]:
        """(order, id, and the `report_rows` fields) of the (first `limit`) declarations decided after
        `order`."""

    def inspected_since(self, after: int, up_to: int) -> set[str]:
        """The declarations whose first inspection was ordered or got its result in the audit records
        after `after` up to `up_to`: the only steps that change what the report counts of them."""

    def counted_state(self, declaration_id: str) -> tuple[int, str, str, str | None, str | None]:
        """(order, declared_at, decision JSON, first inspection's type, its outcome) of a declaration."""

    def log_rows(self) -> Iterable[tuple[str, str, str, str, str | None, str | None]]:
        """(id, declared_at, the declaration as lodged, decision JSON, first inspection's outcome and
        category) per declaration, in the order decided: the office's own log, to train a score on."""

    def firm_record(self, enterprise_id: str, since: str, until: str) -> dict[str, float]:
        """An importer's declarations lodged from `since` up to (not including) `until`, those whose
        first inspection has a result, and those found with a problem (engine.score.FIRM)."""


def open_store(url: str | Path, feedback: FeedbackPolicy | None = None) -> SqlStore:
    """The store a database URL names (a file name or sqlite:///… for SQLite, postgresql://… for
    PostgreSQL), its tables created or checked (engine.schema)."""
    return SqlStore(open_database(url), feedback)


class SqlStore:
    """The Store on SQLite or PostgreSQL: the same SQL, `?` placeholders, one JSON helper."""

    def __init__(self, db: Database, feedback: FeedbackPolicy | None = None):
        schema.prepare(db)
        self.db = db
        self.integrity = IntegrityStore(db, feedback)
        self.audit = AuditLog(db)
        self.sealer = None  # the office's Ed25519 signing key: each write transaction seals what it appended
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[SqlStore]:
        """The database's transaction; the audit log's remembered head is forgotten when it ends or a
        part of it rolls back (then other writers may append, or the remembered record is gone)."""
        outer = self._depth == 0
        self._depth += 1
        try:
            with self.db.transaction():
                yield self
                if outer and self.sealer is not None:
                    self.audit.seal(self.sealer)  # commits with the records it seals
        except BaseException:
            self.audit.last = None
            raise
        finally:
            self._depth -= 1
            if outer:
                self.audit.last, self.audit.first = None, None

    def close(self) -> None:
        self.db.close()

    def lodged(self, declaration_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT decision, fingerprint, input FROM declarations WHERE id = ?", (declaration_id,)
        ).fetchone()
        return {"decision": row[0], "fingerprint": row[1], "input": row[2]} if row else None

    def add_declaration(
        self,
        declaration_id: str,
        enterprise_id: str,
        customs_office: str,
        declared_at: str,
        decision: str,
        selected: bool,
        fingerprint: str,
        lodged: str,
    ) -> None:
        self.db.execute(
            "INSERT INTO declarations (id, enterprise_id, customs_office, declared_at, decision, "
            "selected, fingerprint, input) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                declaration_id,
                enterprise_id,
                customs_office,
                declared_at,
                decision,
                int(selected),
                fingerprint,
                lodged,
            ),
        )

    def add_inspection(
        self,
        inspection_id: str,
        kind: str,
        declaration_id: str,
        enterprise_id: str,
        site: str,
        inspection_type: str,
        items: int,
        status: str,
        exclude: str = "",
    ) -> None:
        self.db.execute(
            "INSERT INTO inspections (id, kind, declaration_id, enterprise_id, site, inspection_type, "
            "items, status,"
            " exclude) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                inspection_id,
                kind,
                declaration_id,
                enterprise_id,
                site,
                inspection_type,
                items,
                status,
                exclude,
            ),
        )

    def inspection(self, inspection_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM inspections WHERE id = ?", (inspection_id,)).fetchone()
        return {k: row[k] for k in row.keys()} if row else None

    def update_inspection(self, inspection_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(INSPECTION_COLUMNS)
        if unknown:  # column names go into the SQL text: only the known ones ever do
            raise ValueError(f"not an inspection column: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self.db.execute(
            f"UPDATE inspections SET {assignments} WHERE id = ?", (*fields.values(), inspection_id)
        )

    def inspections(
        self, status: str, site: str | None, after: str | None, limit: int, inspector: str | None = None
    ) -> list[dict[str, Any]]:
        """Inspections in one status (at one site, of one inspector), by id after `after`: a page of
        a work queue or of an inspector's worklist."""
        where, args = ["status = ?"], [status]
        if site is not None:
            where.append("site = ?")
            args.append(site)
        if inspector is not None:
            where.append("inspector_id = ?")
            args.append(inspector)
        if after:
            where.append("id > ?")
            args.append(after)
        rows = self.db.execute(
            f"SELECT * FROM inspections WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", (*args, limit)
        )
        return [{k: row[k] for k in row.keys()} for row in rows]

    def open_work(self, status: str) -> list[tuple[str, str, str, int]]:
        return [
            tuple(r)
            for r in self.db.execute(
                "SELECT inspector_id, site, facility, items FROM inspections WHERE status = ?", (status,)
            )
        ]

    def visits_since(self, since: str) -> set[tuple[str, str]]:
        return {
            (r[0], r[1])
            for r in self.db.execute(
                "SELECT inspector_id, enterprise_id FROM inspections WHERE dispatched_at > ? "
                "AND inspector_id IS NOT NULL",
                (since,),
            )
        }

    def rules_logged(self, version: str) -> bool:
        return (
            self.db.execute(
                f"SELECT 1 FROM audit WHERE kind = 'rules_loaded' AND "
                f"{self.db.json('payload', 'version')} = ?",
                (version,),
            ).fetchone()
            is not None
        )

    def office_decisions(self, office: str, last: int) -> tuple[int, list[dict[str, Any]]]:
        count = self.db.execute(
            "SELECT count(*) FROM declarations WHERE customs_office = ?", (office,)
        ).fetchone()[0]
        rows = self.db.execute(
            "SELECT decision FROM declarations WHERE customs_office = ? ORDER BY rowid DESC LIMIT ?",
            (office, last),
        ).fetchall()
        return count, [json.loads(r[0]) for r in reversed(rows)]

    def last_decided(self) -> int:
        """The newest declaration's place in the order decided (0 for none): another writer's
        decisions since a pacer was built show here."""
        return self.db.execute("SELECT max(rowid) FROM declarations").fetchone()[0] or 0

    def decided_since(self, after: int, limit: int) -> list[tuple[str, dict[str, Any]]]:
        return [
            (r[0], json.loads(r[1]))
            for r in self.db.execute(
                "SELECT customs_office, decision FROM declarations WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (after, limit),
            )
        ]

    def log_rows(self) -> Iterable[tuple[str, str, str, str, str | None, str | None]]:
        return self.db.execute(
            "SELECT d.id, d.declared_at, d.input, d.decision, i.outcome, i.category "
            "FROM declarations d LEFT JOIN inspections i ON i.id = d.id ORDER BY d.rowid"
        )

    def firm_record(self, enterprise_id: str, since: str, until: str) -> dict[str, float]:
        row = self.db.execute(
            "SELECT count(*), count(i.outcome), "
            "coalesce(sum(CASE WHEN i.outcome = 'problem' THEN 1 ELSE 0 END), 0) "
            "FROM declarations d LEFT JOIN inspections i ON i.id = d.id "
            "WHERE d.enterprise_id = ? AND d.declared_at >= ? AND d.declared_at < ?",
            (enterprise_id, since, until),
        ).fetchone()
        return {
            "firm_declarations": float(row[0]),
            "firm_inspected": float(row[1]),
            "firm_violations": float(row[2]),
        }

    def report_rows(self) -> Iterable[tuple[str, str, str | None, str | None]]:
        return (row[2:] for row in self.report_rows_after(0))

    def report_rows_after(
        self, order: int, limit: int | None = None
    ) -> Iterable[tuple[int, str, str, str, str | None, str | None]]:
        return self.db.execute(
            "SELECT d.rowid, d.id, d.declared_at, d.decision, i.inspection_type, i.outcome "
            "FROM declarations d LEFT JOIN inspections i ON i.id = d.id WHERE d.rowid > ? ORDER BY d.rowid"
            + (" LIMIT ?" if limit is not None else ""),
            (order, limit) if limit is not None else (order,),
        )

    def inspected_since(self, after: int, up_to: int) -> set[str]:
        rows = self.db.execute(
            "SELECT kind, payload FROM audit WHERE seq > ? AND seq <= ? "
            "AND kind IN ('instruction', 'result')",
            (after, up_to),
        )
        named = (json.loads(p)["declaration" if k == "instruction" else "inspection"] for k, p in rows)
        return {
            name for name in named if "~" not in name
        }  # a re-check (id~recheck) leaves the first as it was

    def counted_state(self, declaration_id: str) -> tuple[int, str, str, str | None, str | None]:
        return self.db.execute(
            "SELECT d.rowid, d.declared_at, d.decision, i.inspection_type, i.outcome FROM declarations d "
            "LEFT JOIN inspections i ON i.id = d.id WHERE d.id = ?",
            (declaration_id,),
        ).fetchone()

    def history(self, declaration_id: str, recheck_suffix: str) -> list[dict[str, Any]]:
        json_ = self.db.json
        rows = self.db.execute(
            f"SELECT seq, at, kind, payload FROM audit WHERE {json_('payload', 'decision.declaration_id')} "
            f"= ? "
            f"OR {json_('payload', 'inspection')} IN (?, ?) OR {json_('payload', 'declaration')} = ? ORDER "
            f"BY seq",
            (declaration_id, declaration_id, declaration_id + recheck_suffix, declaration_id),
        )
        return [{"seq": r[0], "at": r[1], "kind": r[2], "payload": json.loads(r[3])} for r in rows]
