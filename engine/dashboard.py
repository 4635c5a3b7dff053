"""The supervisor's dashboard: the office's month at a glance, in a browser, from the live store.

`/dashboard` is served by `doublerandom serve` (same process, same keys): signing in exchanges an API
key, typed once into a form, for a session cookie (HttpOnly, SameSite=Strict, eight hours), so no key
ever appears in a URL or a page. Only roles that may read the monthly report (auditor, chief) get a
session. Both forms (sign in, sign out) carry a token checked against a cookie or the session, so
another site cannot post them. Sessions live in the process's memory: a restart signs everyone out.

The page polls `/dashboard/data` (the same `engine.report.monthly` figures `GET /reports/monthly` and
`doublerandom report` give) and draws them with Chart.js, shipped inside the package
(`engine/static`), never fetched from the internet; every chart has its numbers as a table beside it.
"""

from __future__ import annotations

import hmac
import html
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from engine.apikeys import Caller

READERS = ("auditor", "chief")  # the roles of GET /reports/monthly
SESSION, CSRF = "dr_session", "dr_csrf"
HOURS = 8
STATIC = Path(__file__).parent / "static"


@dataclass
class Session:
    who: Caller
    csrf: str
    expires: float  # time.monotonic()


class Sessions:
    """Signed-in browsers: an unguessable token -> who, until it expires."""

    def __init__(self, hours: float = HOURS, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.clock = hours * 3600, clock
        self._open: dict[str, Session] = {}

    def open(self, who: Caller) -> str:
        token = secrets.token_urlsafe(32)
        self._open[token] = Session(who, secrets.token_urlsafe(16), self.clock() + self.seconds)
        return token

    def get(self, token: str | None) -> Session | None:
        session = self._open.get(token or "")
        if session is not None and session.expires < self.clock():
            del self._open[token]  # type: ignore[arg-type]
            return None
        return session

    def close(self, token: str | None) -> None:
        self._open.pop(token or "", None)


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the login form has two; no multipart parser needed)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, max_num_fields=10).items()}


def _cookie(response: Response, name: str, value: str, request: Request, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/dashboard",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def routes(
    app: FastAPI,
    identify: Callable[[str], Caller | None],
    figures: Callable[[Caller], dict],
    sessions: Sessions | None = None,
) -> Sessions:
    """Add the dashboard's pages to `app`: `identify` turns a presented key into its caller (or None),
    `figures` gives what the page shows to a caller. Out of the API schema: pages, not operations."""
    sessions = sessions or Sessions()

    def sign_in_page(request: Request, problem: str = "", status: int = 200) -> HTMLResponse:
        token = secrets.token_urlsafe(16)
        page = LOGIN.replace("{{csrf}}", token).replace("{{problem}}", html.escape(problem))
        response = HTMLResponse(page, status_code=status)
        _cookie(response, CSRF, token, request, 3600)
        return response

    @app.get("/dashboard/login", include_in_schema=False)
    def login_page(request: Request) -> HTMLResponse:
        return sign_in_page(request)

    @app.post("/dashboard/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await _form(request)
        if not _same(form.get("csrf"), request.cookies.get(CSRF)):
            return sign_in_page(request, "The form expired or came from another site: sign in again.", 403)
        who = identify(form.get("key", ""))
        if who is None:
            return sign_in_page(request, "Unknown key.", 401)
        if who.role not in READERS:
            return sign_in_page(request, f"The role {who.role} may not read the office's reports.", 403)
        response = RedirectResponse("/dashboard", status_code=303)
        _cookie(response, SESSION, sessions.open(who), request, int(sessions.seconds))
        response.delete_cookie(CSRF, path="/dashboard")
        return response

    @app.post("/dashboard/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        session = sessions.get(request.cookies.get(SESSION))
        form = await _form(request)
        if session is None or not _same(form.get("csrf"), session.csrf):
            return HTMLResponse("Not signed out: the form came from another site.", status_code=403)
        sessions.close(request.cookies.get(SESSION))
        response = RedirectResponse("/dashboard/login", status_code=303)
        response.delete_cookie(SESSION, path="/dashboard")
        return response

    @app.get("/dashboard", include_in_schema=False)
    def dashboard(request: Request, refresh: int = 5) -> Response:
        session = sessions.get(request.cookies.get(SESSION))
        if session is None:
            return RedirectResponse("/dashboard/login", status_code=303)
        page = (
            PAGE.replace("{{csrf}}", session.csrf)
            .replace("{{who}}", html.escape(f"{session.who.name} ({session.who.role})"))
            .replace("{{refresh}}", str(min(max(refresh, 1), 300)))
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/dashboard/data", include_in_schema=False)
    def data(request: Request) -> JSONResponse:
        session = sessions.get(request.cookies.get(SESSION))
        if session is None:
            return JSONResponse({"detail": "signed out: sign in again"}, status_code=401)
        return JSONResponse(figures(session.who), headers={"Cache-Control": "no-store"})

    @app.get("/dashboard/chart.js", include_in_schema=False)
    def chart_library() -> FileResponse:
        return FileResponse(STATIC / "chart.umd.js", media_type="text/javascript")

    return sessions


LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>doublerandom: sign in</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto}
label,input,button{display:block;width:100%;margin:.4rem 0}.problem{color:#c00}</style></head>
<body><h1>Sign in to the dashboard</h1>
<p>Your API key is exchanged for a session of eight hours; it is not kept in the browser.</p>
<p class="problem">{{problem}}</p>
<form method="post" action="/dashboard/login">
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="key">API key</label><input id="key" name="key" type="password" autocomplete="off" required>
<button type="submit">Sign in</button></form></body></html>
"""

PAGE = (STATIC / "dashboard.html").read_text()
