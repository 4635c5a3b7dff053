"""State reconciliation: the state tables must be what the audit log says they are.

The log is the record of every automatic step; the tables (enterprises, declarations, inspections)
are what the next decision reads. One UPDATE to `enterprises` could make a dishonest firm advanced
certified without touching the log, so the chain alone proves nothing about them. Here the log is
replayed from the first record into whole rows: enterprise standing from its registrations, the
declarations counted by selections and every `integrity_change`; each declaration as lodged (input,
fingerprint, office, time) with its decision; each inspection from its selection or instruction
(type, site, items, enterprise), dispatches and waits (inspector, facility, time, attempts, reason),
results and transfers (outcome, category, department), re-checks (who is excluded) and releases.
Every column of every stored row is compared, column by column as the table has them: a column
this module does not rebuild is itself reported, unless `NOT_RECONCILED` names it with its reason,
so a new column cannot slip past. Every standing a decision saw that differs from what the log
implied at that moment is reported too.

Not reconciled: the table `enterprise_events` and the column `enterprises.clean_streak`
(bookkeeping the feedback policy reads; a forged streak shows up later, as an `integrity_change`
the log records), and PostgreSQL's `declarations.rowid` (the order decided in, not state).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from engine.audit import AuditLog, canonical
from engine.database import Database
from engine.declarations import Enterprise, InspectionType, parse_declaration
from engine.dispatch import FACILITY_FOR
from engine.errors import InputError
from engine.lifecycle import Status, after_result
from engine.office import RECHECK, fingerprint

# Columns of the state tables that are not rebuilt from the log, each with its reason.
NOT_RECONCILED = {
    ("declarations", "rowid"): "the order decided in (PostgreSQL's identity column), not state",
    (
        "enterprises",
        "clean_streak",
    ): "the feedback policy's bookkeeping; a forged streak shows as a logged change",
}
UNKNOWN = "(a column the reconciliation does not rebuild)"


@dataclass(frozen=True)
class Difference:
    table: str
    row: str
    field: str
    stored: Any
    logged: Any

    def __str__(self) -> str:
        return (
            f"{self.table} {self.row!r}: {self.field} is {self.stored!r}, the audit log says {self.logged!r}"
        )


def reconcile(log: AuditLog) -> list[Difference]:
    replayed = _Replay()
    for record in log.records():
        replayed.apply(record)
    conn = log.db
    return (
        replayed.seen
        + _compare(conn, "enterprises", replayed.firms, _enterprise)
        + _compare(conn, "declarations", replayed.declarations, _declaration)
        + _compare(conn, "inspections", replayed.inspections, _plain)
    )


def _fresh(enterprise_id: str) -> dict[str, Any]:
    return Enterprise(id=enterprise_id).model_dump(mode="json")


def _task(
    inspection_id: str, kind: str, declaration: dict[str, Any], inspection_type: str, exclude: str = ""
) -> dict[str, Any]:
    """An inspection row as the office adds it (engine.office: `add_inspection`)."""
    return {
        "id": inspection_id,
        "kind": kind,
        "declaration_id": declaration["declaration_id"],
        "enterprise_id": declaration["enterprise_id"],
        "site": declaration["site"],
        "inspection_type": inspection_type,
        "items": declaration["items"],
        "status": Status.selected.value,
        "inspector_id": None,
        "facility": None,
        "dispatched_at": None,
        "attempts": 0,
        "exclude": exclude,
        "wait_reason": None,
        "outcome": None,
        "category": None,
        "department": None,
        "released_by": None,
    }


class _Replay:
    """The state tables as the log builds them, record by record."""

    def __init__(self):
        self.firms: dict[str, dict] = {}
        self.declarations: dict[str, dict] = {}
        self.inspections: dict[str, dict] = {}
        self.lodged: dict[str, dict] = {}  # per declaration: what its inspections are made from
        self.seen: list[Difference] = []

    def apply(self, record: dict[str, Any]) -> None:
        kind, p, seq, at = record["kind"], record["payload"], record["seq"], record["at"]
        try:
            step = getattr(self, f"_{kind}", None)
            if step is not None:
                step(p, seq, at)
        except (KeyError, TypeError, ValueError, AttributeError, InputError) as err:
            self.seen.append(
                Difference("audit", f"record {seq}", kind, "unreadable", f"{type(err).__name__}: {err}")
            )

    def _enterprise_registered(self, p, seq, at):
        self.firms[p["enterprise"]["id"]] = dict(p["enterprise"])

    def _selection(self, p, seq, at):
        lodged, decision = p["declaration"], p["decision"]
        declaration = parse_declaration(lodged, f"audit record {seq}")
        firm_id = declaration.enterprise_id
        expected = self.firms.setdefault(firm_id, _fresh(firm_id))
        for field, value in p["enterprise"].items():
            if expected.get(field) != value:  # the decision read a standing the log never gave
                self.seen.append(
                    Difference(
                        "audit",
                        f"record {seq}",
                        f"enterprise.{field} seen by the decision",
                        value,
                        expected.get(field),
                    )
                )
        expected["declarations"] += 1
        text = canonical(lodged)
        did = decision["declaration_id"]
        self.declarations[did] = {
            "id": did,
            "enterprise_id": firm_id,
            "customs_office": declaration.customs_office,
            "declared_at": declaration.declared_at.isoformat(),
            "decision": decision,
            "selected": decision["selected"],
            "fingerprint": fingerprint(text),
            "input": text,
        }
        self.lodged[did] = {
            "declaration_id": did,
            "enterprise_id": firm_id,
            "site": declaration.customs_office,
            "items": declaration.items,
        }
        if decision["selected"]:
            self.inspections[did] = _task(did, "first", self.lodged[did], decision["inspection_type"])

    def _integrity_change(self, p, seq, at):
        firm = self.firms.setdefault(p["enterprise_id"], _fresh(p["enterprise_id"]))
        firm[p["field"]] = p["new"]

    def _instruction(self, p, seq, at):
        did = p["declaration"]
        self.inspections[did] = _task(did, "first", self.lodged[did], p["inspection_type"])

    def _recheck(self, p, seq, at):
        first = self.inspections[p["inspection"]]
        self.inspections[p["inspection"] + RECHECK] = _task(
            p["inspection"] + RECHECK, "recheck", first, first["inspection_type"], exclude=p["excluded"]
        )

    def _dispatch(self, p, seq, at):
        task = self.inspections[p["inspection"]]
        task.update(
            status=Status.dispatched.value,
            inspector_id=p["inspector_id"],
            facility=p["facility"],
            dispatched_at=at,
            attempts=task["attempts"] + 1,
            wait_reason=None,
        )

    def _dispatch_wait(self, p, seq, at):
        task = self.inspections[p["inspection"]]
        task.update(status=Status.waiting.value, attempts=task["attempts"] + 1, wait_reason=p["reason"])

    def _manual_reassignment(self, p, seq, at):
        task = self.inspections[p["inspection"]]
        task.update(
            status=Status.dispatched.value,
            inspector_id=p["to"],
            dispatched_at=at,
            wait_reason=None,
            facility=FACILITY_FOR[InspectionType(task["inspection_type"])].value,
        )

    def _result(self, p, seq, at):
        task = self.inspections[p["inspection"]]
        task.update(
            status=after_result(task["kind"] == "recheck", p["outcome"] == "problem").value,
            outcome=p["outcome"],
            category=p["category"],
            department=None,
        )

    def _transfer(self, p, seq, at):
        self.inspections[p["inspection"]]["department"] = p["department"] or None

    def _release(self, p, seq, at):
        self.inspections[p["declaration"]].update(status=Status.released.value, released_by=p["officer"])


def _rows(conn: Database, table: str):
    """A table's rows by id; none when the table is missing (then every logged row is reported)."""
    if not conn.has_table(table):
        return []
    return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


def _plain(column: str, value: Any) -> Any:
    return value


def _flag(value: Any) -> Any:
    """A stored 0/1 as the log's true/false; any other value stays itself (and differs)."""
    return bool(value) if value in (0, 1) else value


def _declaration(column: str, value: Any) -> Any:
    if column == "decision":
        return json.loads(value)
    return _flag(value) if column == "selected" else value


def _enterprise(column: str, value: Any) -> Any:
    return _flag(value) if column == "high_risk" else value


def _compare(conn: Database, table: str, logged_rows: dict[str, dict], read) -> list[Difference]:
    """Every column of every stored row against the row the log built; rows on one side only too."""
    out, stored_ids = [], set()
    for row in _rows(conn, table):
        row_id = row["id"]
        stored_ids.add(row_id)
        logged = logged_rows.get(row_id)
        if logged is None and table == "enterprises":
            logged = _fresh(row_id)  # a row the log never mentions must be a new firm
        if logged is None:
            out.append(Difference(table, row_id, "row", "present", None))
            continue
        for column in row.keys():
            if (table, column) in NOT_RECONCILED:
                continue
            stored = read(column, row[column])
            expected = logged.get(column, UNKNOWN)
            if stored == expected:
                continue
            if isinstance(stored, dict) and isinstance(expected, dict):  # a decision: say which of its fields
                out += [
                    Difference(table, row_id, f"{column}.{f}", stored.get(f), expected.get(f))
                    for f in sorted(set(stored) | set(expected))
                    if stored.get(f) != expected.get(f)
                ]
            else:
                out.append(Difference(table, row_id, column, stored, expected))
    out += [
        Difference(table, row_id, "row", None, "in the log")
        for row_id in sorted(set(logged_rows) - stored_ids)
    ]
    return out
