"""Schemathesis hooks (SCHEMATHESIS_HOOKS=tests.engine.schemathesis_roles): each operation is sent
with the key of a role allowed to call it, so one stateful run can follow the documented links from
a decision through every step (one key per run would stop at the first step of another role).
The per-role runs, without these hooks, check the refusals."""

from __future__ import annotations

import schemathesis

ROLE_KEY = {  # (method, path) -> the key (tests/engine/test_service.py KEYS) of a role allowed to call it
    ("POST", "/declarations"): "sel",
    ("POST", "/inspections/{inspection_id}/dispatch"): "chief",
    ("POST", "/inspections/{inspection_id}/result"): "ins1",
    ("POST", "/inspections/{inspection_id}/reassign"): "chief",
    ("POST", "/inspectors/{inspector_id}/suspension"): "chief",
    ("POST", "/declarations/{declaration_id}/release"): "rel",
    ("POST", "/instructions"): "risk",
    ("GET", "/declarations/{declaration_id}"): "chief",
    ("GET", "/enterprises/{enterprise_id}"): "chief",
    ("GET", "/reports/monthly"): "aud",
    ("GET", "/audit/verify"): "aud",
    ("POST", "/agencies/{agency}/listings"): "police",
    ("GET", "/integrity/changes"): "police",
}


PLACEHOLDER = "sel"  # the key the run's auth config gives: swapped for the operation's role's key


@schemathesis.hook
def before_call(context, case, kwargs):
    """The configured key becomes the role's; a key the checks took away or spoiled (to expect a 401)
    is left as it is."""
    key = ROLE_KEY.get((case.operation.method.upper(), case.operation.path))
    if key is not None and (case.headers or {}).get("X-API-Key") == PLACEHOLDER:
        case.headers = {**case.headers, "X-API-Key": key}
