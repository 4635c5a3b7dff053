"""What each endpoint of the service answers, as schemas: the OpenAPI document declares every body,
so a client (and schemathesis, in the tests) can check each answer against it, and the links
between operations, so a stateful client can follow a declaration from its decision to its
dispatch, result, release, history and enterprise.

The models document the answers; the service builds them as plain dicts (the decision path skips
FastAPI's re-encoding for speed), and the schemathesis test is what holds the two together.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.dispatch import Assignment
from engine.selection import Decision


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Inspection(_Answer):
    """An inspection as stored: who, where, how far it has gone."""

    id: str
    kind: Literal["first", "recheck"]
    declaration_id: str
    enterprise_id: str
    site: str
    inspection_type: Literal["document", "scan", "physical"]
    items: int
    status: Literal[
        "selected", "waiting", "dispatched", "awaiting_release", "transferred", "released", "checked"
    ]
    inspector_id: str | None
    facility: str | None
    dispatched_at: str | None
    attempts: int
    exclude: str
    wait_reason: str | None
    outcome: Literal["normal", "problem"] | None
    category: str | None
    department: str | None
    released_by: str | None


class Worklist(_Answer):
    """Inspections in one status, by id, a page at a time: a work queue with each wait's reason."""

    inspections: list[Inspection]
    next: str | None = Field(description="the id to pass as `after` for the next page; none: the last page")


class Decided(_Answer):
    decision: Decision
    inspection: Inspection | None


class DispatchedWaiting(_Answer):
    """A chief's retry of the waiting queue: which inspections found an inspector, which still wait."""

    tried: int
    dispatched: list[str]
    waiting: list[str]


class Dispatched(_Answer):
    """An assignment (inspector, facility, the draw among the candidates and their weights) or,
    with `waiting`, why nobody could take it now."""

    waiting: bool
    declaration_id: str
    inspector_id: str | None = None
    facility: str | None = None
    draw: float | None = None
    candidates: list[str] | None = None
    weights: list[float] | None = None
    manual: bool | None = None
    reason: str


Reassigned = Assignment  # a manual reassignment answers with the assignment itself (engine.dispatch)


class Change(_Answer):
    enterprise_id: str
    field: str
    old: Any
    new: Any
    reason: str


class Recorded(_Answer):
    status: Literal["awaiting_release", "transferred", "checked"]
    changes: list[Change]
    recheck: bool


class Suspension(_Answer):
    inspector: str
    suspended: bool
    by: str


class Released(_Answer):
    released: str
    by: str


class Instructed(_Answer):
    instructed: str
    by: str
    inspection: Inspection


class AuditRecord(_Answer):
    seq: int
    at: str
    kind: str
    payload: dict[str, Any]


class DeclarationHistory(_Answer):
    decision: Decision
    inspection: Inspection | None
    history: list[AuditRecord]


class IntegrityChange(_Answer):
    """One field of one enterprise's standing changed, as the audit log recorded it."""

    seq: int  # the audit record's: the cursor
    at: str
    enterprise_id: str
    field: str
    old: Any
    new: Any
    reason: str


class IntegrityChanges(_Answer):
    """Changes of enterprises' standing after a cursor, in audit order: poll with `since=next`."""

    changes: list[IntegrityChange]
    next: int


class AgencyBatch(_Answer):
    """An agency's batch of listings: applied, or already applied under its id (a retry changes
    nothing)."""

    batch_id: str
    applied: bool
    changes: list[dict[str, Any]]


class Monthly(_Answer):
    months: list[dict[str, Any]]


class Head(_Answer):
    seq: int
    hash: str


class Verified(_Answer):
    ok: bool
    records: int
    broken_at: int | None
    reason: str
    differences: list[str]
    head: Head | None


class PublishedRule(_Answer):
    id: str
    description: str
    inspection: Literal["document", "scan", "physical"]


class Catalogue(_Answer):
    version: str
    rules: list[PublishedRule]


class Health(_Answer):
    status: Literal["ok", "degraded"]
    version: str
    rules_version: str
    model_version: str | None = Field(description="the learned score's fingerprint, where one ranks")
    rules_problem: str | None
    database_problem: str | None
    checkpoint_problem: str | None


def _link(operation: str, **parameters: str) -> dict:
    return {"operationId": operation, "parameters": parameters}


# OpenAPI links: where an answer's ids lead. Names are the operations' ids (the route functions').
DECIDED_LINKS = {
    "history": _link("declaration", declaration_id="$response.body#/decision/declaration_id"),
    "enterprise": _link("enterprise", enterprise_id="$request.body#/enterprise_id"),
    "dispatch": _link("redispatch", inspection_id="$response.body#/decision/declaration_id"),
    "result": _link("result", inspection_id="$response.body#/decision/declaration_id"),
    "reassign": _link("reassign", inspection_id="$response.body#/decision/declaration_id"),
    "release": _link("release", declaration_id="$response.body#/decision/declaration_id"),
    "instruct": {
        "operationId": "instruct",
        "requestBody": {
            "declaration_id": "$response.body#/decision/declaration_id",
            "reason": "a tip-off",
            "inspection_type": "document",
        },
    },
}
STEP_LINKS = {  # after a step on an inspection: its declaration's history and the next steps
    "history": _link("declaration", declaration_id="$request.path.inspection_id"),
    "result": _link("result", inspection_id="$request.path.inspection_id"),
    "release": _link("release", declaration_id="$request.path.inspection_id"),
}
RELEASED_LINKS = {"history": _link("declaration", declaration_id="$request.path.declaration_id")}
INSTRUCTED_LINKS = {
    "history": _link("declaration", declaration_id="$request.body#/declaration_id"),
    "result": _link("result", inspection_id="$request.body#/declaration_id"),
}
