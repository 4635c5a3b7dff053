"""State reconciliation: the state tables must be what the audit log says they are.

The log is the record of every automatic step; the tables (enterprises, declarations, inspections)
are what the next decision reads. One UPDATE to `enterprises` could make a dishonest firm advanced
certified without touching the log, so the chain alone proves nothing about them. Here the log is
replayed from the first record: enterprise standing from its registrations, the declarations
counted by selections and every `integrity_change`; each declaration's decision; each inspection's
state from dispatches, results, re-checks and releases. Every table row that differs, and every
standing a decision saw that differs from what the log implied at that moment, is reported.

Not reconciled: `enterprise_events` and the clean streak (bookkeeping the feedback policy reads;
a forged streak shows up later, as an `integrity_change` the log records), times of dispatch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from engine.audit import AuditLog
from engine.database import Database
from engine.declarations import Enterprise
from engine.office import RECHECK
from engine.lifecycle import Status, after_result
COMPARED_INSPECTION = ("kind", "status", "inspector_id", "outcome", "released_by")


@dataclass(frozen=True)
class Difference:
    table: str
    row: str
    field: str
    stored: Any
    logged: Any

    def __str__(self) -> str:
        return f"{self.table} {self.row!r}: {self.field} is {self.stored!r}, the audit log says {self.logged!r}"


def reconcile(log: AuditLog) -> list[Difference]:
    firms, decisions, inspections, seen = _replay(log)
    conn = log.db
    return (seen + _compare_enterprises(conn, firms) + _compare_declarations(conn, decisions)
            + _compare_inspections(conn, inspections))


def _fresh(enterprise_id: str) -> dict[str, Any]:
    return Enterprise(id=enterprise_id).model_dump(mode="json")


def _replay(log: AuditLog):
    firms: dict[str, dict] = {}
    decisions: dict[str, dict] = {}
    inspections: dict[str, dict] = {}
    seen: list[Difference] = []
    for record in log.records():
        kind, p, seq = record["kind"], record["payload"], record["seq"]
        if kind == "enterprise_registered":
            firms[p["enterprise"]["id"]] = dict(p["enterprise"])
        elif kind == "selection":
            firm_id = p["declaration"]["enterprise_id"]
            expected = firms.setdefault(firm_id, _fresh(firm_id))
            for field, value in p["enterprise"].items():
                if expected.get(field) != value:  # the decision read a standing the log never gave
                    seen.append(Difference("audit", f"record {seq}", f"enterprise.{field} seen by the decision",
                                           value, expected.get(field)))
            expected["declarations"] += 1
            decision = p["decision"]
            decisions[decision["declaration_id"]] = decision
            if decision["selected"]:
                inspections[decision["declaration_id"]] = _task("first")
        elif kind == "integrity_change":
            firm = firms.setdefault(p["enterprise_id"], _fresh(p["enterprise_id"]))
            firm[p["field"]] = p["new"]
        elif kind in ("dispatch", "manual_reassignment"):
            task = inspections.setdefault(p["inspection"], _task("first"))
            task.update(status=Status.dispatched.value, inspector_id=p["inspector_id"] if kind == "dispatch" else p["to"])
        elif kind == "dispatch_wait":
            inspections.setdefault(p["inspection"], _task("first"))["status"] = Status.waiting.value
        elif kind == "result":
            task = inspections.setdefault(p["inspection"], _task("first"))
            task.update(status=after_result(task["kind"] == "recheck", p["outcome"] == "problem").value,
                        outcome=p["outcome"])
        elif kind == "instruction":
            inspections[p["declaration"]] = _task("first")
        elif kind == "recheck":
            inspections[p["inspection"] + RECHECK] = _task("recheck")
        elif kind == "release":
            inspections.setdefault(p["declaration"], _task("first")).update(status=Status.released.value,
                                                                             released_by=p["officer"])
    return firms, decisions, inspections, seen


def _rows(conn: Database, table: str, columns: str = "*"):
    """A table's rows by id; none when the table is missing (then every logged row is reported)."""
    if not conn.has_table(table):
        return []
    return conn.execute(f"SELECT {columns} FROM {table} ORDER BY id").fetchall()


def _task(kind: str) -> dict[str, Any]:
    return {"kind": kind, "status": Status.selected.value, "inspector_id": None, "outcome": None, "released_by": None}


def _compare_enterprises(conn: Database, firms: dict[str, dict]) -> list[Difference]:
    out = []
    stored_ids = set()
    for row in _rows(conn, "enterprises"):
        stored = Enterprise(id=row["id"], credit_class=row["credit_class"], high_risk=bool(row["high_risk"]),
                            high_risk_until=row["high_risk_until"], declarations=row["declarations"],
                            inspections=row["inspections"], problems=row["problems"]).model_dump(mode="json")
        stored_ids.add(row["id"])
        logged = firms.get(row["id"], _fresh(row["id"]))  # a row the log never mentions must be a new firm
        out += [Difference("enterprises", row["id"], f, stored[f], logged.get(f))
                for f in stored if stored[f] != logged.get(f)]
    out += [Difference("enterprises", firm_id, "row", None, "registered") for firm_id in sorted(set(firms) - stored_ids)]
    return out


def _compare_declarations(conn: Database, decisions: dict[str, dict]) -> list[Difference]:
    out = []
    stored_ids = set()
    for row in _rows(conn, "declarations", "id, decision, selected"):
        stored_ids.add(row["id"])
        logged = decisions.get(row["id"])
        if logged is None:
            out.append(Difference("declarations", row["id"], "row", "present", None))
            continue
        stored = json.loads(row["decision"])
        out += [Difference("declarations", row["id"], f"decision.{f}", stored.get(f), logged.get(f))
                for f in sorted(set(stored) | set(logged)) if stored.get(f) != logged.get(f)]
        if bool(row["selected"]) != logged["selected"]:
            out.append(Difference("declarations", row["id"], "selected", bool(row["selected"]), logged["selected"]))
    out += [Difference("declarations", d, "row", None, "decided") for d in sorted(set(decisions) - stored_ids)]
    return out


def _compare_inspections(conn: Database, inspections: dict[str, dict]) -> list[Difference]:
    out = []
    stored_ids = set()
    for row in _rows(conn, "inspections"):
        stored_ids.add(row["id"])
        logged = inspections.get(row["id"])
        if logged is None:
            out.append(Difference("inspections", row["id"], "row", "present", None))
            continue
        out += [Difference("inspections", row["id"], f, row[f], logged[f])
                for f in COMPARED_INSPECTION if row[f] != logged[f]]
    out += [Difference("inspections", i, "row", None, "selected") for i in sorted(set(inspections) - stored_ids)]
    return out
