"""The supervisor's dashboard: signing in exchanges a key for a session cookie only for the roles that
read reports, forms from another site are refused, and in a real browser (Debian's Chromium through
Playwright) the page shows the monthly report's figures and a new decision without a reload."""

from __future__ import annotations

import json
import re
import secrets

import httpx
import pytest
from fastapi.testclient import TestClient

from engine.apikeys import key_digest
from engine.dashboard import Sessions
from engine.service import create_app
from tests.conftest import ARTIFACTS, declaration_data, free_port
from tests.engine.test_service import MORNING, office_files, start_server

WEAPONS = {"hs_code": "930690", "customs_office": "OFF-40"}  # always targeted (WEAPONS-PARTS)


def long_keys(files: dict) -> dict[str, str]:
    """Keys long and random enough that finding one in a page means it leaked."""
    keys = {role: secrets.token_urlsafe(24) for role in ("selector", "chief", "auditor", "inspector")}
    names = {"selector": "selector-system", "chief": "CHIEF-1", "auditor": "AUDIT-1", "inspector": "INS-01"}
    entries = [{"name": names[r], "role": r, "key_sha256": key_digest(k)} for r, k in keys.items()]
    files["keys"].write_text(json.dumps({"keys": entries}))
    return keys


def csrf_of(page: httpx.Response) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


@pytest.fixture
def office(tmp_path):
    files = office_files(tmp_path, tmp_path / "office.db")
    keys = long_keys(files)
    app = create_app(
        files["rules"], files["db"], files["key"], files["keys"], files["roster"], clock=lambda: MORNING
    )
    return TestClient(app), keys


def sign_in(client: TestClient, key: str) -> httpx.Response:
    return client.post(
        "/dashboard/login",
        data={"csrf": csrf_of(client.get("/dashboard/login")), "key": key},
        follow_redirects=False,
    )


def test_signing_in_gives_a_strict_httponly_session_to_report_readers_only(office):
    client, keys = office
    assert client.get("/dashboard", follow_redirects=False).headers["location"] == "/dashboard/login"
    assert client.get("/dashboard/data").status_code == 401
    refused = sign_in(client, keys["inspector"])
    assert refused.status_code == 403 and "may not read" in refused.text
    assert "dr_session" not in refused.headers.get("set-cookie", "")
    assert sign_in(client, "not-a-key").status_code == 401
    done = sign_in(client, keys["chief"])
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith("dr_session="))
    assert done.status_code == 303 and done.headers["location"] == "/dashboard"
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=28800" in cookie
    page = client.get("/dashboard")
    assert page.status_code == 200 and keys["chief"] not in page.text
    # the chart library is the package's own copy: the page fetches nothing from another host
    assert not re.search(r'src="(https?:)?//', page.text)
    assert client.get("/dashboard/chart.js").content.startswith(b"/*!\n * Chart.js v4")


def test_a_form_posted_from_another_site_is_refused(office):
    client, keys = office
    forged = client.post(
        "/dashboard/login", data={"csrf": "guessed", "key": keys["chief"]}, follow_redirects=False
    )
    assert forged.status_code == 403 and "dr_session" not in forged.headers.get("set-cookie", "")
    assert sign_in(client, keys["chief"]).status_code == 303
    assert client.post("/dashboard/logout", data={"csrf": "guessed"}).status_code == 403
    assert client.get("/dashboard/data").status_code == 200  # still signed in
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/dashboard").text).group(1)
    assert client.post("/dashboard/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert client.get("/dashboard/data").status_code == 401


def test_a_session_expires():
    now = [0.0]
    sessions = Sessions(hours=8, clock=lambda: now[0])
    token = sessions.open(object())  # type: ignore[arg-type]
    now[0] = 8 * 3600 - 1
    assert sessions.get(token) is not None
    now[0] = 8 * 3600 + 1
    assert sessions.get(token) is None and sessions.get(token) is None


def test_the_data_are_the_monthly_reports_and_a_sites_key_sees_its_own_queue(office):
    client, keys = office
    for k in range(4):
        decl = declaration_data(id=f"D{k}", enterprise_id=f"E{k}", declared_at=MORNING.isoformat(), **WEAPONS)
        assert (
            client.post("/declarations", json=decl, headers={"X-API-Key": keys["selector"]}).status_code
            == 200
        )
    assert sign_in(client, keys["chief"]).status_code == 303
    shown = client.get("/dashboard/data").json()
    report = client.get("/reports/monthly", headers={"X-API-Key": keys["chief"]}).json()["months"]
    assert shown["months"] == report and report[-1]["targeted_selected"] == 4
    # a rule that inspects every hit chose them: no draw, so none of it counts as China's random share
    assert report[-1]["drawn_share"] == 0 and report[-1]["scored_share"] == 1
    assert sum(w["open"] for w in shown["open_work"]) + int(shown["waiting"]) == 4
    assert len(shown["queue"]) == int(shown["waiting"]) >= 1 and all(q["wait_reason"] for q in shown["queue"])
    assert shown["rules_version"] and "not verified" in shown["audit"]["text"]
    assert client.get("/audit/verify", headers={"X-API-Key": keys["auditor"]}).json()["ok"]
    assert (
        client.get("/dashboard/data").json()["audit"]["text"].startswith("verified 2026-06-01T10:00: intact")
    )


# ------------------------------------------------------------------ in a real browser


@pytest.fixture
def served(tmp_path):
    files = office_files(tmp_path, tmp_path / "office.db")
    keys = long_keys(files)
    port = free_port()
    server = start_server(files, port, "--roster", str(files["roster"]))
    try:
        yield f"http://127.0.0.1:{port}", keys
    finally:
        server.terminate()
        server.wait(timeout=20)


def post(url: str, keys: dict, k: int) -> None:
    decl = declaration_data(id=f"B{k}", enterprise_id=f"E{k}", **WEAPONS)
    answer = httpx.post(url + "/declarations", json=decl, headers={"X-API-Key": keys["selector"]})
    assert answer.status_code == 200, answer.text


def test_the_dashboard_in_a_browser(browser, served):
    url, keys = served
    for k in range(3):
        post(url, keys, k)
    page = browser.new_page(viewport={"width": 1400, "height": 1200})

    page.goto(url + "/dashboard")  # signed out: sent to sign in
    assert page.url == url + "/dashboard/login"
    page.fill("#key", keys["inspector"])
    page.click("button[type=submit]")
    assert "may not read the office's reports" in page.content() and page.url == url + "/dashboard/login"

    page.fill("#key", keys["chief"])
    page.click("button[type=submit]")
    page.wait_for_url(url + "/dashboard")
    page.goto(url + "/dashboard?refresh=1")
    page.locator("#shares-table tbody tr").first.wait_for()
    report = httpx.get(url + "/reports/monthly", headers={"X-API-Key": keys["chief"]}).json()["months"][-1]
    last = page.locator("#shares-table tbody tr").last
    for figure in (
        "random_dispatch_share",
        "drawn_share",
        "scored_share",
        "pure_random_share",
        "credit_share",
    ):
        value = last.locator(f"[data-figure={figure}]").get_attribute("data-value")
        assert float(value) == pytest.approx(report[figure]), figure
    targeted = page.locator("#mix-table tbody tr").last.locator("[data-figure=targeted_selected]")
    assert targeted.inner_text() == str(report["targeted_selected"]) == "3"

    post(url, keys, 3)  # a new decision shows up without reloading the page
    page.wait_for_function(
        "() => document.querySelector('#mix-table tbody tr:last-child [data-figure=targeted_selected]')"
        ".textContent === '4'",
        timeout=15_000,
    )
    assert page.evaluate("document.cookie") == ""  # the session cookie is out of the scripts' reach
    for key in keys.values():
        assert key not in page.content() and key not in page.url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    page.click("text=Sign out")
    page.wait_for_url(url + "/dashboard/login")
    page.goto(url + "/dashboard")
    assert page.url == url + "/dashboard/login"


def test_the_api_docs_name_only_files_the_service_serves(office):
    """/docs and /redoc load Swagger UI and ReDoc from the package (FastAPI's defaults fetch them
    from a CDN, blank on a machine without internet): every file they name is served here."""
    client, _ = office
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        named = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert named and all(url.startswith("/static/") for url in named), (page, named)
        assert all(client.get(url).status_code == 200 for url in named)
        assert "cdn" not in html.lower() and "fonts.googleapis" not in html


def test_the_api_docs_render_in_a_browser_without_the_internet(browser, served):
    """Chromium with every request outside the service refused: Swagger UI lists the operations and
    ReDoc shows the API, so neither needs a CDN (the shipped files fail this with FastAPI's defaults:
    their scripts come from cdn.jsdelivr.net)."""
    url, _ = served
    page = browser.new_page()
    outside: list[str] = []

    def only_the_service(route):
        if route.request.url.startswith(url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_service)
    page.goto(url + "/docs")
    page.get_by_text("/agencies/{agency}/listings").first.wait_for(timeout=30_000)
    page.goto(url + "/redoc")
    page.get_by_text("Decide a declaration").first.wait_for(timeout=30_000)
    # ReDoc's "by Redocly" badge tries one image from its CDN and hides itself when it fails: the
    # only outside request, and nothing the page needs
    assert set(outside) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}, outside
