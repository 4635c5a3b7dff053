"""The engine over HTTP: live selection of real declarations, with roles, persistence and audit.

    doublerandom serve --rules RULES --db office.db --key-file draw.key --api-keys keys.yaml [--roster R]

Every request carries `X-API-Key` (engine/apikeys.py: the keys file and the roles: selector, the
declaration system; inspector; chief; releasing_officer; auditor; risk_officer). Keys are compared in
constant time and never logged. The routes are here; the runtime below them (the write lock, hot
reload, group commit, checkpoints) is engine/runtime.py, the HTTP protocol's limits engine/http.py.
Writes go through one lock to one connection (SQLite WAL, or PostgreSQL): a decision is answered
only after its transaction, audit record included, has committed. On PostgreSQL, `serve --workers N`
runs N such processes on one port and one database; their transactions take turns
(engine/database.py). A changed rules file is picked up at the next declaration (hot reload); its
text goes into the audit log, so every version stays replayable.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import os
import re
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Annotated, Callable, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine import __version__, answers, dashboard, report
from engine.apikeys import Caller, key_digest, load_keys
from engine.audit import AuditLog
from engine.database import open_database
from engine.declarations import (
    ID_PATTERN,
    SAYS_SOMETHING_STORABLE,
    STORABLE,
    Declaration,
    Enterprise,
    Id,
    InspectionType,
    Text,
)
from engine.dispatch import Roster, Waiting
from engine.errors import Conflict, InputError, NotFound, Unavailable, public
from engine.http import GuardedHttp
from engine.integrity import AgencyRow
from engine.lifecycle import Status
from engine.office import DEPARTMENTS, Office
from engine.randomness import KeyedDraws
from engine.reconciliation import reconcile
from engine.runtime import Checkpointing, GroupCommit, LiveOffice
from engine.score import LearnedScore
from engine.selection import SelectionPolicy

MAX_BODY = 64 * 1024
log = logging.getLogger("doublerandom.service")
# The key as an OpenAPI security scheme: /docs shows an Authorize button and "Try it out" sends the
# header; a missing key is still this service's own 401 (auto_error off), not FastAPI's 403.
API_KEY = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="an API key from `doublerandom apikey`"
)
REDISPATCH_LIMIT = 10_000  # waiting inspections tried per automatic round
TALLY_SLICE = 20_000  # declarations counted per hold of the read lock at start-up (about 0.3 s)


class NormalResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["normal"]
    category: Text = Field(default="", max_length=200, pattern=STORABLE)
    department: Literal[""] = ""


class ProblemResult(BaseModel):
    """A problem is transferred: the department is required (so the schema itself says so)."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["problem"]
    category: Text = Field(default="", max_length=200, pattern=STORABLE)
    department: Literal[DEPARTMENTS]  # a tuple subscript: the same as listing them


ResultBody = Annotated[NormalResult | ProblemResult, Field(discriminator="outcome")]


class ReassignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Id("the inspector to take it")
    reason: Text = Field(min_length=1, max_length=500, pattern=SAYS_SOMETHING_STORABLE)


class SuspensionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suspended: bool = Field(description="true: no more dispatches to them; false: back on dispatch")
    reason: Text = Field(min_length=1, max_length=500, pattern=SAYS_SOMETHING_STORABLE)


class InstructionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    declaration_id: str = Id("the declaration to inspect, already decided and not selected")
    reason: Text = Field(min_length=1, max_length=500, pattern=SAYS_SOMETHING_STORABLE)
    inspection_type: InspectionType = InspectionType.physical


class Listing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enterprise_id: str = Id("the enterprise")
    status: Literal["dishonest", "high_risk", "cleared"]
    date: dt.date = Field(description="the day the listing takes effect")


class ListingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_id: str = Id("the agency's id for this batch: the same batch sent again is a retry")
    # 201 rows of the longest ids stay far under the 64 KiB body limit, so a batch one row too long
    # gets the schema's 422, not 413 (at 500, generated rows with longer values reached 413)
    listings: list[Listing] = Field(min_length=1, max_length=200)


class Problem(BaseModel):
    """Every refusal has this body: what was wrong, naming the field where there is one."""

    detail: str | list[str]


def _problems(*codes: int) -> dict:
    text = {
        401: "no or unknown X-API-Key",
        403: "this role may not do this",
        404: "not found",
        409: "the rules forbid this step now, or the id was decided with other content",
        411: "a body needs a Content-Length",
        413: "body over 64 KiB",
        422: "invalid request, naming the field",
        503: "the database did not answer, or the write turn did not come within a few seconds; "
        "send the request again after Retry-After seconds",
    }
    return {code: {"model": Problem, "description": text[code]} for code in codes}


READ = _problems(401, 403, 404, 413, 422, 503)  # 413: a GET with a body over the limit is refused too
WRITE = _problems(401, 403, 404, 409, 411, 413, 422, 503)


def _answers(model: type, problems: dict, links: dict | None = None) -> dict:
    """An operation's documented answers: the body of a 200 (and where its ids lead), and the refusals."""
    ok: dict = {
        "model": model,
        "description": model.__doc__.strip().splitlines()[0] if model.__doc__ else "done",
    }
    if links:
        ok["links"] = links
    return {200: ok, **problems}


def create_app(
    rules: str | Path,
    db: str | Path,
    draw_key: str | Path,
    api_keys: str | Path,
    roster: str | Path | None = None,
    policy: SelectionPolicy | None = None,
    allow_new_enterprises: bool = False,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    checkpoints: Checkpointing | None = None,
    redispatch_every: float = 0.0,
    score: LearnedScore | None = None,
) -> FastAPI:
    """The app; `clock` gives the time (UTC: the roster's zones say what it is at each site; a clock
    without an offset is taken as the sites' wall time, as tests do); with a roster and
    `redispatch_every` seconds, the waiting inspections are tried again that often without anyone
    asking, so one waiting for a shift to start or a facility to free goes out when it can."""
    keys = load_keys(api_keys)
    office = Office(
        db,
        policy=policy or SelectionPolicy(),
        draws=KeyedDraws.from_file(draw_key),
        roster=Roster.load(roster) if roster else None,
        seal_key=checkpoints.key if checkpoints else None,  # the service seals what it writes
        score=score,
    )
    live = LiveOffice(office, Path(rules), allow_new_enterprises, db, checkpoints)

    def dispatch_waiting(site: str | None, limit: int) -> dict:
        """Every waiting inspection (of a site, or all), oldest id first, tried again: each its own
        transaction and draw, as one retry each would be."""
        with live.read_lock:
            queue = [row["id"] for row in live.reader.store.inspections("waiting", site, None, limit)]
        dispatched, waiting = [], []
        with live.lock:
            for inspection_id in queue:
                try:
                    outcome = office.dispatch(inspection_id, clock())
                except Conflict:  # dispatched by someone else since the queue was read
                    continue
                (waiting if isinstance(outcome, Waiting) else dispatched).append(inspection_id)
        live.wrote()
        return {"tried": len(queue), "dispatched": dispatched, "waiting": waiting}

    async def redispatching() -> None:
        while True:
            await asyncio.sleep(redispatch_every)
            try:
                done = await asyncio.to_thread(dispatch_waiting, None, REDISPATCH_LIMIT)
            except Exception as err:  # the next round tries again; the service goes on
                log.warning("re-dispatching the waiting inspections failed: %s", public(str(err)))
                continue
            if done["dispatched"]:
                log.info("re-dispatched %d of %d waiting inspections", len(done["dispatched"]), done["tried"])

    async def counting() -> None:
        """The store's decisions counted once, a slice at a time (a year of 10^6 takes seconds), so
        that the dashboard's first request finds them counted and other reads go on meanwhile."""
        try:
            while not await asyncio.to_thread(count_slice):
                pass
        except Exception as err:  # a request then counts what is left itself
            log.warning("counting the monthly report at start-up stopped: %s", public(str(err)))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        """The background work of a served app, stopped with it: an app only built (`serve
        --workers N` checks its settings so) starts none."""
        tasks = [asyncio.create_task(counting())]
        if redispatch_every > 0 and office.roster:
            tasks.append(asyncio.create_task(redispatching()))
        yield
        for task in tasks:
            task.cancel()

    app = FastAPI(
        lifespan=lifespan,
        title="doublerandom",
        version=__version__,
        description="Double-random customs inspection: selection, dispatch, results, release, audit.",
        docs_url=None,  # served below from the package: FastAPI's own pages fetch their files from a CDN
        redoc_url=None,
    )
    app.state.live = live
    _documentation(app)
    group = GroupCommit(live, clock)
    app.middleware("http")(_limit_body)
    app.middleware("http")(_access_log)  # added last: outermost, so refusals are logged too
    app.exception_handler(InputError)(_input_error)
    app.exception_handler(RequestValidationError)(_invalid_request)
    app.exception_handler(HTTPException)(_http_error)
    app.exception_handler(StarletteHTTPException)(_http_error)

    def identify(presented: str) -> Caller | None:
        digest, found = key_digest(presented), None
        for entry in keys:  # compare against every entry, each in constant time
            if hmac.compare_digest(digest, entry.key_sha256):
                found = entry
        return None if found is None else Caller(found.name, found.role, found.site, found.agency)

    async def caller(presented: str | None = Depends(API_KEY)) -> Caller:  # async: no thread hop
        if not presented:
            raise HTTPException(401, "missing X-API-Key header")
        found = identify(presented)
        if found is None:
            raise HTTPException(401, "unknown API key")
        return found

    def allow(*roles: str):
        async def check(who: Caller = Depends(caller)) -> Caller:
            if who.role not in roles:
                raise HTTPException(403, f"role {who.role} may not do this; allowed: {', '.join(roles)}")
            return who

        return check

    def at_site(who: Caller, site: str | None, what: str) -> None:
        """A key bound to a site acts there only (403 elsewhere); an unknown id is left to the step."""
        if who.site is not None and site is not None and site != who.site:
            raise HTTPException(403, f"this key acts for site {who.site}; {what} is at {site}")

    def inspection_at_site(who: Caller, inspection_id: str, what: str) -> None:
        if who.site is None:  # a key for every site: nothing to read
            return
        with live.read_lock:
            task = live.reader.inspection(inspection_id)
        at_site(who, task["site"] if task else None, what)

    def declaration_at_site(who: Caller, declaration_id: str) -> None:
        if who.site is None:
            return
        with live.read_lock:
            row = live.reader.store.lodged(declaration_id)
        site = json.loads(row["input"]).get("customs_office") if row and row["input"] else None
        at_site(who, site, f"declaration {declaration_id}")

    def written(answer):
        live.wrote()
        return answer

    verified: dict = {}  # the last GET /audit/verify's verdict, which the dashboard shows
    tally = report.Tally()  # the monthly figures, kept up to date rather than recomputed per request

    def count_slice() -> bool:
        with live.read_lock:
            return tally.count(live.reader.store, TALLY_SLICE)

    def dashboard_figures(who: Caller) -> dict:
        """What the dashboard shows: the monthly report's last 13 months (this one to date), the
        queue and the open work (a site's key: its site's), the rules in force and the audit status."""
        with live.read_lock:
            store = live.reader.store
            months = tally.update(store)
            queue = store.inspections("waiting", who.site, None, WAITING_SHOWN + 1)
            waiting = len(queue)
            work = store.open_work("dispatched")
        per_inspector = Counter(
            (inspector, site) for inspector, site, _facility, _items in work if who.site in (None, site)
        )
        signed = checkpoints.last if checkpoints is not None else None
        audit = (
            f"verified {verified['at'][:16]}: {'intact' if verified['ok'] else 'BROKEN'}, "
            f"{verified['records']:,} records"
            if verified
            else "not verified since the service started (an auditor's GET /audit/verify)"
        ) + (
            ""
            if signed is None
            else f"; newest signed checkpoint at record {signed}"
            if signed
            else "; no checkpoint signed since the start"
        )
        return {
            "now": clock().isoformat(timespec="seconds"),
            "rules_version": office.rules.version,
            "model_version": office.score.version[:12] if office.score else None,
            "audit": {"ok": verified.get("ok"), "text": audit},
            "waiting": f"{WAITING_SHOWN:,}+" if waiting > WAITING_SHOWN else str(waiting),
            "queue": [  # the oldest ids first, with why each waits
                {k: row[k] for k in ("id", "site", "inspection_type", "attempts", "wait_reason")}
                for row in queue[:QUEUE_SHOWN]
            ],
            "open_work": [
                {"inspector": inspector, "site": site, "open": n}
                for (inspector, site), n in sorted(per_inspector.items())
            ],
            "months": report.jsonable(months[-13:]),
        }

    dashboard.routes(app, identify, dashboard_figures)

    @app.post(
        "/declarations",
        summary="Decide a declaration (selector system); idempotent on its id",
        operation_id="decide",
        responses=_answers(answers.Decided, WRITE, answers.DECIDED_LINKS),
    )
    async def decide(declaration: Declaration, who: Caller = Depends(allow("selector"))) -> JSONResponse:
        at_site(who, declaration.customs_office, f"declaration {declaration.id}")
        answer = await group.admit(declaration)  # answered once the commit holding it is durable
        return JSONResponse(answer)  # plain dicts of JSON types: skip FastAPI's re-encoding

    @app.post(
        "/inspections/{inspection_id}/dispatch",
        summary="Try again to dispatch a waiting inspection",
        operation_id="redispatch",
        responses=_answers(answers.Dispatched, WRITE, answers.STEP_LINKS),
    )
    def redispatch(inspection_id: str, who: Caller = Depends(allow("selector", "chief"))) -> dict:
        inspection_at_site(who, inspection_id, f"inspection {inspection_id}")
        with live.lock:
            outcome = office.dispatch(inspection_id, clock())
            return written({"waiting": isinstance(outcome, Waiting), **vars(outcome)})

    @app.post(
        "/inspections/dispatch-waiting",
        summary="Try again to dispatch every waiting inspection, oldest id first (chief; a site's key: "
        "its site's)",
        operation_id="redispatch_waiting",
        responses=_answers(answers.DispatchedWaiting, WRITE),
    )
    def redispatch_waiting(
        limit: int = Query(1000, ge=1, le=10_000), who: Caller = Depends(allow("chief"))
    ) -> dict:
        return dispatch_waiting(who.site, limit)

    @app.post(
        "/inspections/{inspection_id}/result",
        summary="Record the result (the assigned inspector)",
        operation_id="result",
        responses=_answers(answers.Recorded, WRITE, answers.STEP_LINKS),
    )
    def result(inspection_id: str, body: ResultBody, who: Caller = Depends(allow("inspector"))) -> dict:
        inspection_at_site(who, inspection_id, f"inspection {inspection_id}")
        with live.lock:
            return written(
                office.record_result(inspection_id, who.name, body.outcome, body.category, body.department)
            )

    @app.post(
        "/declarations/{declaration_id}/release",
        summary="Release after a normal result (not the inspector)",
        operation_id="release",
        responses=_answers(answers.Released, WRITE, answers.RELEASED_LINKS),
    )
    def release(declaration_id: str, who: Caller = Depends(allow("releasing_officer"))) -> dict:
        inspection_at_site(who, declaration_id, f"declaration {declaration_id}")
        with live.lock:
            office.release(declaration_id, who.name)
            return written({"released": declaration_id, "by": who.name})

    @app.post(
        "/inspections/{inspection_id}/reassign",
        summary="Manual reassignment with a reason (chief)",
        operation_id="reassign",
        responses=_answers(answers.Reassigned, WRITE, answers.STEP_LINKS),
    )
    def reassign(inspection_id: str, body: ReassignBody, who: Caller = Depends(allow("chief"))) -> dict:
        inspection_at_site(who, inspection_id, f"inspection {inspection_id}")
        with live.lock:
            return written(vars(office.reassign(inspection_id, body.to, who.name, body.reason, clock())))

    @app.post(
        "/inspectors/{inspector_id}/suspension",
        summary="Take an inspector off dispatch, or put them back, with a reason (chief; a site's key: "
        "its site's inspectors)",
        operation_id="suspend",
        responses=_answers(answers.Suspension, WRITE),
    )
    def suspend(inspector_id: str, body: SuspensionBody, who: Caller = Depends(allow("chief"))) -> dict:
        if office.roster is None:
            raise HTTPException(404, "this service has no roster (serve --roster)")
        site = next((p.site for p in office.roster.inspectors if p.id == inspector_id), None)
        at_site(who, site, f"inspector {inspector_id}")
        with live.lock:
            return written(office.suspend(inspector_id, body.suspended, who.name, body.reason, clock()))

    @app.post(
        "/instructions",
        summary="A risk officer's order to inspect a declaration the computer did not "
        "select (chief or risk_officer)",
        operation_id="instruct",
        responses=_answers(answers.Instructed, WRITE, answers.INSTRUCTED_LINKS),
    )
    def instruct(body: InstructionBody, who: Caller = Depends(allow("chief", "risk_officer"))) -> dict:
        declaration_at_site(who, body.declaration_id)
        with live.lock:
            return written(
                office.instruct(
                    body.declaration_id, who.name, body.reason, body.inspection_type.value, clock()
                )
            )

    @app.post(
        "/agencies/{agency}/listings",
        summary="An agency's listings and clearances for joint discipline, applied whole or refused "
        "whole; idempotent on the batch id (agency, for its own agency only)",
        operation_id="agency_listings",
        responses=_answers(answers.AgencyBatch, WRITE),
    )
    def agency_listings(agency: str, body: ListingsBody, who: Caller = Depends(allow("agency"))) -> dict:
        if agency != who.agency:
            raise HTTPException(403, f"this key speaks for agency {who.agency}, not for {agency}")
        rows = [
            AgencyRow(enterprise_id=r.enterprise_id, status=r.status, source=agency, date=r.date)
            for r in body.listings
        ]
        with live.lock:
            return written(office.apply_agency_batch(agency, body.batch_id, rows, clock()))

    @app.get(
        "/integrity/changes",
        summary="Changes of enterprises' standing (customs' results, class changes, listings) after a "
        "cursor, in audit order, a page at a time (agency, auditor, chief)",
        operation_id="integrity_changes",
        responses=_answers(answers.IntegrityChanges, READ),
    )
    def integrity_changes(
        since: int = Query(0, ge=0, le=2**62, description="the previous page's next (0: from the start)"),
        limit: int = Query(100, ge=1, le=1000),
        who: Caller = Depends(allow("agency", "auditor", "chief")),
    ) -> dict:
        with live.read_lock:
            rows = live.reader.audit.records_after("integrity_change", since, limit)
        return {"changes": rows, "next": rows[-1]["seq"] if rows else since}

    @app.get(
        "/reports/monthly",
        summary="The monthly figures: selections by channel and lane, random-dispatch "
        "share, hit rates per channel and rule with 95% intervals (auditor, chief)",
        operation_id="monthly_report",
        responses=_answers(answers.Monthly, READ),
    )
    def monthly_report(who: Caller = Depends(allow("auditor", "chief"))) -> dict:
        with live.read_lock:
            months = tally.update(live.reader.store)
        return {"months": report.jsonable(months)}

    @app.get(
        "/inspections",
        summary="Inspections in one status, by id, a page at a time: the waiting queue with each "
        "inspection's reason, or an inspector's worklist (chief, auditor; a site's key sees its site; "
        "an inspector sees only its own)",
        operation_id="inspections",
        responses=_answers(answers.Worklist, READ),
    )
    def inspections(
        status: Status = Query(Status.waiting, description="waiting by default: the queue"),
        after: str | None = Query(
            None, pattern=ID_PATTERN, max_length=64, description="the previous page's next"
        ),
        limit: int = Query(100, ge=1, le=1000),
        inspector: str | None = Query(
            None, pattern=ID_PATTERN, max_length=64, description="one inspector's (an inspector: its own)"
        ),
        who: Caller = Depends(allow("chief", "auditor", "inspector")),
    ) -> dict:
        if who.role == "inspector":
            if inspector not in (None, who.name):
                raise HTTPException(403, f"an inspector reads its own worklist only, not {inspector}'s")
            inspector = who.name
        with live.read_lock:
            rows = live.reader.store.inspections(status.value, who.site, after, limit + 1, inspector)
        shown = [{k: row[k] for k in answers.Inspection.model_fields} for row in rows[:limit]]
        return {"inspections": shown, "next": shown[-1]["id"] if len(rows) > limit else None}

    @app.get(
        "/declarations/{declaration_id}",
        summary="A decision, its inspection and its audit history",
        operation_id="declaration",
        responses=_answers(answers.DeclarationHistory, READ),
    )
    def declaration(
        declaration_id: str, who: Caller = Depends(allow("selector", "chief", "auditor"))
    ) -> dict:
        declaration_at_site(who, declaration_id)
        with live.read_lock:
            reader = live.reader
            decision = reader.decision(declaration_id)
            if decision is None:
                raise NotFound(f"no declaration {declaration_id!r} has been decided")
            return {
                "decision": decision.to_dict(),
                "inspection": reader.inspection(declaration_id),
                "history": reader.history(declaration_id),
            }

    @app.get(
        "/enterprises/{enterprise_id}",
        summary="An enterprise's standing as the rules see it",
        operation_id="enterprise",
        responses=_answers(Enterprise, READ),
    )
    def enterprise(enterprise_id: str, who: Caller = Depends(allow("selector", "chief", "auditor"))) -> dict:
        with live.read_lock:
            if not live.reader.integrity.registered(enterprise_id):
                raise NotFound(f"unknown enterprise {enterprise_id!r}")
            return live.reader.integrity.get(enterprise_id).model_dump(mode="json")

    @app.get(
        "/audit/verify",
        summary="Walk the audit log's hash chain and reconcile the state (auditor)",
        operation_id="verify",
        responses=_answers(answers.Verified, READ),
    )
    def verify(who: Caller = Depends(allow("auditor"))) -> dict:
        # its own read-only connection: the writers carry on while the chain is walked
        log = AuditLog(open_database(db, read_only=True))
        try:
            verdict = log.verify()
            differences = [str(d) for d in reconcile(log)] if verdict.ok else []
            if verdict.ok and checkpoints is not None and log.sealed():  # the service holds the key
                differences += log.seal_problems(checkpoints.key.public_key())
            head = log.head()
        finally:
            log.db.close()
        verified.update(ok=verdict.ok and not differences, records=verdict.count, at=clock().isoformat())
        return {
            "ok": verdict.ok and not differences,
            "records": verdict.count,
            "broken_at": verdict.broken_at,
            "reason": verdict.reason,
            "differences": differences,
            "head": {"seq": head[0], "hash": head[1]} if head else None,
        }

    @app.get(
        "/rules",
        summary="The published catalogue of inspection matters (no thresholds, no lists)",
        operation_id="catalogue",
        responses=_answers(answers.Catalogue, _problems(413)),
    )
    def catalogue() -> dict:
        rules = office.rules
        return {"version": rules.version, "rules": rules.catalogue()}

    @app.get("/health", operation_id="health", responses=_answers(answers.Health, _problems(413)))
    def health() -> dict:
        problems = live.health()
        return {
            "status": "degraded" if any(problems.values()) else "ok",
            "version": __version__,
            "rules_version": office.rules.version,
            "model_version": office.score.version if office.score else None,
            **problems,
        }

    return app


RETRY_AFTER = 2  # seconds, in a 503's Retry-After
WAITING_SHOWN = 10_000  # the dashboard counts the queue up to this, then says "10,000+"
QUEUE_SHOWN = 50  # ... and lists this many of it with their reasons

SETTINGS = "DOUBLERANDOM_SERVE"  # the environment variable `serve --workers N` hands its settings down in


def to_environment(settings: dict) -> None:
    os.environ[SETTINGS] = json.dumps(settings)


def app_from_environment() -> FastAPI:
    """The app of one worker process of `serve --workers N`: uvicorn starts each worker by import,
    so the command's settings (already checked by the command) come through the environment."""
    settings = json.loads(os.environ[SETTINGS])
    GuardedHttp.request_timeout = settings.pop("request_timeout")
    GuardedHttp.max_connections = settings.pop("max_connections")
    GuardedHttp.max_per_client = settings.pop("max_per_client")
    configure_logging(settings.pop("log_level"))
    signing = settings.pop("checkpoints")
    policy = SelectionPolicy.model_validate(settings.pop("policy"))
    model = settings.pop("model")
    return create_app(
        **settings,
        policy=policy,
        checkpoints=Checkpointing(*signing) if signing else None,
        score=LearnedScore.load(model) if model else None,
    )


def _documentation(app: FastAPI) -> None:
    """/docs (Swagger UI 5.35) and /redoc (ReDoc 2.5) with their files from engine/static, so the
    pages work on a machine without internet, as a customs office's often is."""
    app.mount("/static", StaticFiles(directory=dashboard.STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="doublerandom: the API",
            swagger_js_url="/static/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui.css",
            swagger_favicon_url="/static/favicon-32x32.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="doublerandom: the API",
            redoc_js_url="/static/redoc.standalone.js",
            redoc_favicon_url="/static/favicon-32x32.png",
            with_google_fonts=False,
        )


REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access = logging.getLogger("doublerandom.access")


async def _access_log(request: Request, call_next):
    """One line per request: client, method, path, status, time and a request id (the caller's
    X-Request-ID when it is a plain id, else a new one), echoed in the answer's X-Request-ID so a
    complaint can be matched to its line. Headers (the API key among them) and bodies are not logged."""
    given = request.headers.get("x-request-id", "")
    request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
    start = time.perf_counter()
    response = await call_next(request)
    response.headers["X-Request-ID"] = request_id
    client = request.client.host if request.client else "-"
    access.info(
        "%s %s %s %d %.1f ms id=%s",
        client,
        request.method,
        request.url.path,
        response.status_code,
        1000 * (time.perf_counter() - start),
        request_id,
    )
    return response


def configure_logging(level: str) -> None:
    """The service's log lines on standard error, each with its time: start-up, rules, access."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s", force=True
    )


async def _limit_body(request: Request, call_next):
    """Refuse bodies over MAX_BODY before anything reads them (a body needs a Content-Length)."""
    length = request.headers.get("content-length")
    if request.method in ("POST", "PUT", "PATCH") and length is None:
        return JSONResponse({"detail": "a request body needs a Content-Length header"}, status_code=411)
    if length is not None and (not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY):
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


async def _http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
    if err.status_code == 400:  # FastAPI's answer to a body it cannot decode: one shape, one code (422)
        return JSONResponse({"detail": "field '(body)': not valid UTF-8 JSON"}, status_code=422)
    return JSONResponse({"detail": public(str(err.detail))}, status_code=err.status_code, headers=err.headers)


async def _input_error(request: Request, err: InputError) -> JSONResponse:
    if isinstance(err, Unavailable):  # shown in /health; a client waits a little and sends it again
        request.app.state.live.unavailable = (time.monotonic(), str(err))
        return JSONResponse(
            {"detail": public(str(err))}, status_code=503, headers={"Retry-After": str(RETRY_AFTER)}
        )
    status = 404 if isinstance(err, NotFound) else 409 if isinstance(err, Conflict) else 422
    return JSONResponse({"detail": public(str(err))}, status_code=status)
