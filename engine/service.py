"""The engine over HTTP: live selection of real declarations, with roles, persistence and audit.

    doublerandom serve --rules RULES --db office.db --key-file draw.key --api-keys keys.yaml [--roster R]

Every request carries `X-API-Key`; the keys file holds, per key, a name, a role and the key's SHA-256
(never the key itself). Roles: selector (the declaration system), inspector, chief, releasing_officer,
auditor. Keys are compared in constant time and never logged. Writes go through one lock to one
SQLite connection (WAL): a decision is answered only after its transaction, audit record included,
has committed. A changed rules file is picked up at the next declaration (hot reload); its text goes
into the audit log, so every version stays replayable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine import __version__
from engine.declarations import Declaration, Id
from engine.dispatch import Roster, Waiting
from engine.errors import Conflict, InputError, NotFound
from engine.files import read_model
from engine.office import Office
from engine.randomness import KeyedDraws
from engine.rules import RuleSet
from engine.selection import SelectionPolicy

ROLES = ("selector", "inspector", "chief", "releasing_officer", "auditor")
MAX_BODY = 64 * 1024
log = logging.getLogger("doublerandom.service")


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Id("who: the inspector id for inspectors")
    role: Literal["selector", "inspector", "chief", "releasing_officer", "auditor"]
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[KeyEntry] = Field(min_length=1)

    @field_validator("keys")
    @classmethod
    def _each_key_once(cls, value: list[KeyEntry]) -> list[KeyEntry]:
        seen = set()
        for entry in value:
            if entry.key_sha256 in seen:  # one key under two roles would take the more powerful one
                raise ValueError(f"the key of {entry.name!r} ({entry.role}) is listed twice; one entry per key")
            seen.add(entry.key_sha256)
        return value


def load_keys(path: str | Path) -> list[KeyEntry]:
    return read_model(path, KeysFile, "API keys file").keys


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    name: str
    role: str


class ResultBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["normal", "problem"]
    category: str = Field(default="", max_length=200)
    department: Literal["", "anti_smuggling", "duties", "health_quarantine", "intellectual_property", "other"] = ""


class ReassignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Id("the inspector to take it")
    reason: str = Field(min_length=1, max_length=500)


class LiveOffice:
    """The Office behind one lock, reloading the rules file when it changes."""

    def __init__(self, office: Office, rules_path: Path, allow_new_enterprises: bool):
        self.office, self.rules_path = office, rules_path
        self.allow_new = allow_new_enterprises
        self.lock = threading.Lock()
        self._mtime = None
        self.reload_if_changed()

    def reload_if_changed(self) -> None:
        mtime = self.rules_path.stat().st_mtime_ns
        if mtime == self._mtime:
            return
        text = self.rules_path.read_text(encoding="utf-8")
        try:
            rules = RuleSet.from_text(text, str(self.rules_path))
        except InputError as err:
            if self.office.rules is None:
                raise
            log.error("rules file changed but is invalid; still deciding with %s: %s", self.office.rules.version, err)
            self._mtime = mtime
            return
        self._mtime = mtime
        if self.office.rules is None or rules.version != self.office.rules.version:
            self.office.use_rules(rules, text)
            log.info("deciding with rules %s", rules.version)


def create_app(rules: str | Path, db: str | Path, draw_key: str | Path, api_keys: str | Path,
               roster: str | Path | None = None, policy: SelectionPolicy | None = None,
               allow_new_enterprises: bool = False,
               clock: Callable[[], dt.datetime] = dt.datetime.now) -> FastAPI:
    """The app; `clock` gives the office's local time (shifts are in local time)."""
    keys = load_keys(api_keys)
    office = Office(db, policy=policy or SelectionPolicy(), draws=KeyedDraws.from_file(draw_key),
                    roster=Roster.load(roster) if roster else None)
    live = LiveOffice(office, Path(rules), allow_new_enterprises)
    app = FastAPI(title="doublerandom", version=__version__,
                  description="Double-random customs inspection: selection, dispatch, results, release, audit.")
    app.state.live = live
    app.middleware("http")(_limit_body)
    app.exception_handler(InputError)(_input_error)
    app.exception_handler(RequestValidationError)(_invalid_request)

    async def caller(request: Request) -> Caller:  # async: no thread hop for a hash comparison
        presented = request.headers.get("x-api-key")
        if not presented:
            raise HTTPException(401, "missing X-API-Key header")
        digest, found = key_digest(presented), None
        for entry in keys:  # compare against every entry, each in constant time
            if hmac.compare_digest(digest, entry.key_sha256):
                found = entry
        if found is None:
            raise HTTPException(401, "unknown API key")
        return Caller(found.name, found.role)

    def allow(*roles: str):
        async def check(who: Caller = Depends(caller)) -> Caller:
            if who.role not in roles:
                raise HTTPException(403, f"role {who.role} may not do this; allowed: {', '.join(roles)}")
            return who
        return check

    @app.post("/declarations", summary="Decide a declaration (selector system); idempotent on its id")
    async def decide(declaration: Declaration, who: Caller = Depends(allow("selector"))) -> JSONResponse:
        # async on purpose: one writer, sub-millisecond work; the event loop serialises it cheaply
        with live.lock:
            live.reload_if_changed()
            decision = office.admit(declaration, clock(), registered_only=not live.allow_new)
            answer = {"decision": decision.to_dict(), "inspection": office.inspection(declaration.id)}
        return JSONResponse(answer)  # plain dicts of JSON types: skip FastAPI's re-encoding

    @app.post("/inspections/{inspection_id}/dispatch", summary="Try again to dispatch a waiting inspection")
    def redispatch(inspection_id: str, who: Caller = Depends(allow("selector", "chief"))) -> dict:
        with live.lock:
            outcome = office.dispatch(inspection_id, clock())
            return {"waiting": isinstance(outcome, Waiting), **vars(outcome)}

    @app.post("/inspections/{inspection_id}/result", summary="Record the result (the assigned inspector)")
    def result(inspection_id: str, body: ResultBody, who: Caller = Depends(allow("inspector"))) -> dict:
        with live.lock:
            return office.record_result(inspection_id, who.name, body.outcome, body.category, body.department)

    @app.post("/declarations/{declaration_id}/release", summary="Release after a normal result (not the inspector)")
    def release(declaration_id: str, who: Caller = Depends(allow("releasing_officer"))) -> dict:
        with live.lock:
            office.release(declaration_id, who.name)
            return {"released": declaration_id, "by": who.name}

    @app.post("/inspections/{inspection_id}/reassign", summary="Manual reassignment with a reason (chief)")
    def reassign(inspection_id: str, body: ReassignBody, who: Caller = Depends(allow("chief"))) -> dict:
        with live.lock:
            return vars(office.reassign(inspection_id, body.to, who.name, body.reason, clock()))

    @app.get("/declarations/{declaration_id}", summary="A decision, its inspection and its audit history")
    def declaration(declaration_id: str, who: Caller = Depends(allow("selector", "chief", "auditor"))) -> dict:
        with live.lock:
            decision = office.decision(declaration_id)
            if decision is None:
                raise NotFound(f"no declaration {declaration_id!r} has been decided")
            return {"decision": decision.to_dict(), "inspection": office.inspection(declaration_id),
                    "history": office.history(declaration_id)}

    @app.get("/enterprises/{enterprise_id}", summary="An enterprise's standing as the rules see it")
    def enterprise(enterprise_id: str, who: Caller = Depends(allow("selector", "chief", "auditor"))) -> dict:
        with live.lock:
            if not office.integrity.known(enterprise_id):
                raise NotFound(f"unknown enterprise {enterprise_id!r}")
            return office.integrity.get(enterprise_id).model_dump(mode="json")

    @app.get("/audit/verify", summary="Walk the audit log's hash chain (auditor)")
    def verify(who: Caller = Depends(allow("auditor"))) -> dict:
        with live.lock:
            verdict = office.audit.verify()
        return {"ok": verdict.ok, "records": verdict.count, "broken_at": verdict.broken_at, "reason": verdict.reason}

    @app.get("/rules", summary="The published catalogue of inspection matters (no thresholds, no lists)")
    def catalogue() -> dict:
        rules = office.rules
        return {"version": rules.version, "rules": rules.catalogue()}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__, "rules_version": office.rules.version}

    return app


async def _limit_body(request: Request, call_next):
    """Refuse bodies over MAX_BODY before anything reads them (a body needs a Content-Length)."""
    length = request.headers.get("content-length")
    if request.method in ("POST", "PUT", "PATCH") and length is None:
        return JSONResponse({"detail": "a request body needs a Content-Length header"}, status_code=411)
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return JSONResponse({"detail": f"body over {MAX_BODY} bytes"}, status_code=413)
    return await call_next(request)


async def _invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
    """One line per problem naming the field; the offending values are not echoed (they may not even
    be valid JSON, such as NaN or Infinity)."""
    problems = []
    for e in err.errors():
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        problems.append(f"field '{'.'.join(loc) or '(body)'}': {e.get('msg', 'invalid')}")
    return JSONResponse({"detail": problems}, status_code=422)


async def _input_error(request: Request, err: InputError) -> JSONResponse:
    status = 404 if isinstance(err, NotFound) else 409 if isinstance(err, Conflict) else 422
    return JSONResponse({"detail": str(err)}, status_code=status)

