"""The HTTP service: every endpoint, every role refusal, idempotency, separation of duties, hot reload,
a fuzz of bad bodies, concurrency and a SIGKILL of the server."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import database
from engine.apikeys import key_digest
from engine.audit import AuditLog
from engine.office import Office
from engine.service import create_app
from engine.store import open_store
from tests.conftest import BASELINE_RULES, ROOT, declaration_data
from tests.engine.schemathesis_roles import PLACEHOLDER

KEYS = {
    "sel": ("selector-system", "selector"),
    "ins1": ("INS-01", "inspector"),
    "ins3": ("INS-03", "inspector"),
    "chief": ("CHIEF-1", "chief"),
    "rel": ("OFFICER-2", "releasing_officer"),
    "aud": ("AUDIT-1", "auditor"),
    "rel-ins": ("INS-01", "releasing_officer"),
    "risk": ("RISK-1", "risk_officer"),
    "police": ("POLICE-FEED", "agency"),  # speaks for agency POLICE
}
AGENCY = {"police": "POLICE"}
WEAPONS = {"hs_code": "930690", "customs_office": "OFF-40"}  # WEAPONS-PARTS: always targeted, physical


def office_files(folder, db) -> dict:
    """Files for one office on database `db`: rules (a copy, to change), draw key, API keys, and 20
    registered enterprises."""
    rules = folder / "rules.yaml"
    shutil.copy(BASELINE_RULES, rules)
    key = folder / "draw.key"
    key.write_text("ab" * 32)
    keys = folder / "keys.yaml"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {
                        "name": n,
                        "role": r,
                        "key_sha256": key_digest(k),
                        **({"agency": AGENCY[k]} if k in AGENCY else {}),
                    }
                    for k, (n, r) in KEYS.items()
                ]
            }
        )
    )
    office = Office(db)
    from engine.declarations import Enterprise

    office.register([Enterprise(id=f"E{i}", declarations=5) for i in range(20)])
    office.store.close()
    return {"rules": rules, "key": key, "keys": keys, "db": db, "roster": ROOT / "scenarios" / "roster.yaml"}


@pytest.fixture
def setup(tmp_path):
    return office_files(tmp_path, tmp_path / "office.db")


MORNING = dt.datetime(2026, 6, 1, 10, 0)  # INS-01 and INS-03 (physical) are on post at OFF-40


@pytest.fixture
def client(setup):
    app = create_app(
        setup["rules"], setup["db"], setup["key"], setup["keys"], setup["roster"], clock=lambda: MORNING
    )
    with TestClient(app) as c:
        yield c


@pytest.fixture
def any_setup(tmp_path, store_url):
    """The office's files on either backend (SQLite, and PostgreSQL with the test server)."""
    return office_files(tmp_path, store_url)


@pytest.fixture
def any_client(any_setup):
    app = create_app(
        any_setup["rules"],
        any_setup["db"],
        any_setup["key"],
        any_setup["keys"],
        any_setup["roster"],
        clock=lambda: MORNING,
    )
    with TestClient(app) as c:
        yield c


def h(who: str) -> dict:
    return {"X-API-Key": who}


def post_declaration(client, key="sel", **fields):
    data = declaration_data(**{"declared_at": "2026-06-01T10:00:00", **fields})
    return client.post("/declarations", json=data, headers=h(key))


def test_health_rules_and_docs_are_public(client):
    assert client.get("/health").json()["status"] == "ok"
    catalogue = client.get("/rules").json()
    assert len(catalogue["rules"]) == 20 and set(catalogue["rules"][0]) == {"id", "description", "inspection"}
    assert "value_per_kg" not in json.dumps(catalogue)  # thresholds and lists are not published
    assert client.get("/openapi.json").status_code == 200 and client.get("/docs").status_code == 200


def test_the_api_key_is_a_security_scheme_and_a_missing_one_is_our_401(client):
    """/docs' Authorize button and "Try it out" use the declared scheme; every operation but the
    public ones requires it; without the header the answer is still the service's own 401."""
    spec = client.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["APIKeyHeader"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    secured = {path for path, ops in spec["paths"].items() for op in ops.values() if op.get("security")}
    assert "/declarations" in secured and "/reports/monthly" in secured
    assert not {"/health", "/rules"} & secured
    missing = client.get("/reports/monthly")
    assert missing.status_code == 401 and missing.json()["detail"] == "missing X-API-Key header"


def test_an_inspection_waiting_for_a_shift_goes_out_when_the_shift_starts_without_anyone_asking(setup):
    """At 07:00 nobody is on post at OFF-40: the inspection waits, saying why. At 08:00 the shift
    starts; the service's own round (every 0.05 s here, 60 s by default) dispatches it, audited as
    any dispatch. With the rounds off it stays waiting until a chief asks."""
    now = {"at": dt.datetime(2026, 6, 1, 7, 0)}
    for every, expect in ((0.05, "dispatched"), (0.0, "waiting")):
        folder = setup["db"].parent / f"every-{every}"
        folder.mkdir()
        files = office_files(folder, folder / "office.db")
        now["at"] = dt.datetime(2026, 6, 1, 7, 0)
        app = create_app(
            files["rules"], files["db"], files["key"], files["keys"], files["roster"],
            clock=lambda: now["at"], redispatch_every=every,
        )  # fmt: skip
        with TestClient(app) as client:
            decided = post_declaration(client, id="S1", enterprise_id="E1", **WEAPONS).json()
            assert decided["inspection"]["status"] == "waiting", decided
            assert "on post" in decided["inspection"]["wait_reason"]
            now["at"] = dt.datetime(2026, 6, 1, 8, 30)
            deadline = time.monotonic() + (5 if every else 0.3)  # off: a few rounds' worth of waiting
            while time.monotonic() < deadline:
                shown = client.get("/declarations/S1", headers=h("aud")).json()
                if shown["inspection"]["status"] == expect == "dispatched":
                    break
                time.sleep(0.05)
            assert shown["inspection"]["status"] == expect, shown["inspection"]
            kinds = [step["kind"] for step in shown["history"]]
            assert kinds[:2] == ["selection", "dispatch_wait"] and ("dispatch" in kinds) == bool(every)


def test_the_rosters_zone_not_the_servers_decides_who_is_on_post(setup):
    """The service's clock is UTC. At 23:30 UTC on a Sunday it is Monday 08:30 in Seoul, where the
    shipped roster's day shift is on post, and 00:30 in London: the same declaration goes out under
    the one roster and waits, saying the site's time and zone, under the other."""
    instant = dt.datetime(2026, 5, 31, 23, 30, tzinfo=dt.timezone.utc)
    shipped = (ROOT / "scenarios" / "roster.yaml").read_text()
    for zone, expect in (("Asia/Seoul", "dispatched"), ("Europe/London", "waiting")):
        folder = setup["db"].parent / zone.replace("/", "-")
        folder.mkdir()
        files = office_files(folder, folder / "office.db")
        roster = folder / "roster.yaml"
        roster.write_text(shipped.replace("time_zone: Asia/Seoul", f"time_zone: {zone}"))
        app = create_app(
            files["rules"], files["db"], files["key"], files["keys"], roster, clock=lambda: instant
        )
        with TestClient(app) as client:
            inspection = post_declaration(client, id="Z1", enterprise_id="E1", **WEAPONS).json()["inspection"]
        assert inspection["status"] == expect, inspection
        if expect == "waiting":
            assert inspection["wait_reason"] == "no inspector is on post (Mon 00:30 at OFF-40, Europe/London)"


def test_a_chief_suspends_an_inspector_over_the_api_and_dispatch_follows(any_client):
    """Of the two physical inspectors on post at OFF-40, INS-01 is suspended: every pick goes to
    INS-03 until the chief puts INS-01 back. Only a chief may; an unknown inspector is a 404."""
    refused = any_client.post(
        "/inspectors/INS-01/suspension", json={"suspended": True, "reason": "on leave"}, headers=h("ins1")
    )
    assert refused.status_code == 403
    unknown = any_client.post(
        "/inspectors/NOBODY/suspension", json={"suspended": True, "reason": "on leave"}, headers=h("chief")
    )
    assert unknown.status_code == 404 and "no inspector 'NOBODY'" in unknown.json()["detail"]
    done = any_client.post(
        "/inspectors/INS-01/suspension", json={"suspended": True, "reason": "on leave"}, headers=h("chief")
    )
    assert done.status_code == 200 and done.json() == {
        "inspector": "INS-01",
        "suspended": True,
        "by": "CHIEF-1",
    }
    picked = set()
    for k in range(8):  # each finished at once, so INS-03 is never too busy to take the next
        decided = post_declaration(any_client, id=f"P{k}", enterprise_id=f"E{k}", **WEAPONS).json()
        picked.add(decided["inspection"]["inspector_id"])
        any_client.post(f"/inspections/P{k}/result", json={"outcome": "normal"}, headers=h("ins3"))
    assert picked == {"INS-03"}  # 8 picks; with both eligible, all to one would be 1 in 128
    back = any_client.post(
        "/inspectors/INS-01/suspension", json={"suspended": False, "reason": "back"}, headers=h("chief")
    )
    assert back.status_code == 200
    shown = any_client.get("/audit/verify", headers=h("aud")).json()
    assert shown["ok"] is True


def test_a_declaration_is_decided_once_and_dispatched(any_client):
    first = post_declaration(any_client, id="D1", enterprise_id="E1", **WEAPONS)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["decision"]["channel"] in ("targeted", "both") and body["decision"]["selected"]
    assert body["inspection"]["status"] in ("dispatched", "waiting")
    again = post_declaration(any_client, id="D1", enterprise_id="E1", **WEAPONS)  # never a new draw
    assert again.json()["decision"] == body["decision"]
    amended = post_declaration(any_client, id="D1", enterprise_id="E1", hs_code="940360")
    assert amended.status_code == 409 and "hs_code differ" in amended.json()["detail"]
    shown = any_client.get("/declarations/D1", headers=h("aud")).json()
    assert shown["decision"] == body["decision"] and shown["history"][0]["kind"] == "selection"


def test_the_full_workflow_and_separation_of_duties(any_client):
    decided = post_declaration(any_client, id="W1", enterprise_id="E2", **WEAPONS).json()
    first = decided["inspection"]["inspector_id"]
    assert decided["inspection"]["status"] == "dispatched" and first in ("INS-01", "INS-03")
    other = "INS-03" if first == "INS-01" else "INS-01"
    refused = any_client.post(
        "/inspections/W1/reassign", json={"to": "INS-02", "reason": "x"}, headers=h("chief")
    )
    assert refused.status_code == 409  # INS-02 is not qualified for physical inspection
    moved = any_client.post(
        "/inspections/W1/reassign", json={"to": other, "reason": "specialist needed"}, headers=h("chief")
    )
    assert moved.status_code == 200 and moved.json()["manual"] is True
    keys = {"INS-01": "ins1", "INS-03": "ins3"}
    wrong = any_client.post("/inspections/W1/result", json={"outcome": "normal"}, headers=h(keys[first]))
    assert wrong.status_code == 409 and f"assigned to {other}" in wrong.json()["detail"]
    ok = any_client.post("/inspections/W1/result", json={"outcome": "normal"}, headers=h(keys[other]))
    assert ok.status_code == 200 and ok.json()["status"] == "awaiting_release"
    if other == "INS-01":  # the key that is both INS-01 and a releasing officer
        self_release = any_client.post("/declarations/W1/release", headers=h("rel-ins"))
        assert self_release.status_code == 409 and "separation of duties" in self_release.json()["detail"]
    released = any_client.post("/declarations/W1/release", headers=h("rel"))
    assert released.status_code == 200 and released.json() == {"released": "W1", "by": "OFFICER-2"}
    history = any_client.get("/declarations/W1", headers=h("aud")).json()["history"]
    kinds = [r["kind"] for r in history]
    assert kinds == ["selection", "dispatch", "manual_reassignment", "result", "release"]
    assert history[2]["payload"] == {
        "inspection": "W1",
        "from": first,
        "to": other,
        "by": "CHIEF-1",
        "reason": "specialist needed",
    }
    assert any_client.get("/audit/verify", headers=h("aud")).json()["ok"] is True


def test_a_problem_result_flags_the_enterprise(any_client):
    decided = post_declaration(any_client, id="P1", enterprise_id="E3", **WEAPONS).json()
    inspector = {"INS-01": "ins1", "INS-03": "ins3"}[decided["inspection"]["inspector_id"]]
    done = any_client.post(
        "/inspections/P1/result",
        headers=h(inspector),
        json={"outcome": "problem", "category": "undervaluation", "department": "duties"},
    )
    assert done.status_code == 200 and done.json()["status"] == "transferred"
    assert any_client.get("/enterprises/E3", headers=h("chief")).json()["high_risk"] is True
    later = post_declaration(any_client, id="P2", enterprise_id="E3", hs_code="940360").json()
    assert "HIGH-RISK-ENTERPRISE" in later["decision"]["rules"]


LISTING = {
    "batch_id": "B1",
    "listings": [{"enterprise_id": "E1", "status": "high_risk", "date": "2026-06-01"}],
}


@pytest.mark.parametrize(
    "method, path, body, allowed",
    [
        ("post", "/declarations", declaration_data(enterprise_id="E1"), {"sel"}),
        ("post", "/inspections/X/result", {"outcome": "normal"}, {"ins1", "ins3"}),
        ("post", "/declarations/X/release", None, {"rel", "rel-ins"}),
        ("post", "/inspections/X/reassign", {"to": "INS-01", "reason": "r"}, {"chief"}),
        ("post", "/inspections/X/dispatch", None, {"sel", "chief"}),
        ("get", "/declarations/X", None, {"sel", "chief", "aud"}),
        ("get", "/enterprises/E1", None, {"sel", "chief", "aud"}),
        ("get", "/audit/verify", None, {"aud"}),
        ("post", "/instructions", {"declaration_id": "X", "reason": "tip-off"}, {"chief", "risk"}),
        ("get", "/reports/monthly", None, {"aud", "chief"}),
        ("post", "/agencies/POLICE/listings", LISTING, {"police"}),
        ("get", "/integrity/changes", None, {"police", "aud", "chief"}),
        ("post", "/inspections/dispatch-waiting", None, {"chief"}),
    ],
)
def test_each_endpoint_refuses_other_roles_and_strangers(client, method, path, body, allowed):
    send = getattr(client, method)
    kwargs = {"json": body} if body is not None else ({"content": b""} if method == "post" else {})
    assert send(path, **kwargs).status_code == 401
    assert send(path, headers=h("not-a-key"), **kwargs).status_code == 401
    for who in KEYS:
        status = send(path, headers=h(who), **kwargs).status_code
        assert (status == 403) == (who not in allowed), (who, status)


def test_bad_input_is_refused_and_nothing_is_written(any_client, any_setup):
    client, setup = any_client, any_setup
    before = open_store(setup["db"]).audit.verify().count
    cases = [
        (b"{not json", 422),
        (json.dumps({**declaration_data(), "hs_code": "12"}).encode(), 422),
        (json.dumps({k: v for k, v in declaration_data().items() if k != "id"}).encode(), 422),
        (json.dumps({**declaration_data(), "declared_value": "a lot"}).encode(), 422),
        (json.dumps(declaration_data(enterprise_id="NOBODY")).encode(), 404),
        (b"x" * (70 * 1024), 413),
    ]
    for body, status in cases:
        answer = client.post(
            "/declarations", content=body, headers={**h("sel"), "content-type": "application/json"}
        )
        assert answer.status_code == status, (body[:40], answer.text)
    missing = client.post("/declarations", json={**declaration_data(), "hs_code": "12"}, headers=h("sel"))
    assert missing.json()["detail"] == ["field 'hs_code': String should match pattern '^[0-9]{6,10}$'"]
    assert (
        "unknown enterprise 'NOBODY'"
        in client.post(
            "/declarations", json=declaration_data(enterprise_id="NOBODY"), headers=h("sel")
        ).json()["detail"]
    )
    assert open_store(setup["db"]).audit.verify().count == before


def test_hot_reload_changes_the_version_and_keeps_the_old_one_replayable(client, setup):
    first = post_declaration(client, id="V1", enterprise_id="E4").json()["decision"]["rules_version"]
    time.sleep(0.01)
    setup["rules"].write_text(
        setup["rules"].read_text().replace("value_per_kg, lt: 20", "value_per_kg, lt: 25")
    )
    os.utime(setup["rules"], ns=(time.time_ns(), time.time_ns() + 10**9))
    second = post_declaration(client, id="V2", enterprise_id="E4").json()["decision"]["rules_version"]
    assert first != second and client.get("/rules").json()["version"] == second
    loaded = [r["payload"] for r in AuditLog(database.connect(setup["db"])).records("rules_loaded")]
    assert [r["version"] for r in loaded] == [first, second] and "value_per_kg, lt: 20" in loaded[0][
        "content"
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.dictionaries(
            st.sampled_from(list(declaration_data()) + ["x", "id"]),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(allow_nan=True),
                st.text(max_size=30),
                st.lists(st.integers(), max_size=3),
            ),
            max_size=14,
        ),
        st.builds(
            lambda k, v: {**declaration_data(), k: v},
            st.sampled_from(list(declaration_data())),
            st.one_of(st.none(), st.integers(-(10**20), 10**20), st.floats(), st.text(max_size=12)),
        ),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    )
)
def test_fuzzed_bodies_never_cause_a_server_error(client, body):
    raw = (body if isinstance(body, str) else json.dumps(body, default=str)).encode()  # NaN and Infinity too
    for path, who in (
        ("/declarations", "sel"),
        ("/inspections/Q/result", "ins1"),
        ("/inspections/Q/reassign", "chief"),
    ):
        answer = client.post(path, content=raw, headers={**h(who), "content-type": "application/json"})
        assert answer.status_code < 500, (path, answer.text)


# ------------------------------------------------------------------ a real server process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(setup, port: int, *extra: str, log_level: str = "warning") -> subprocess.Popen:
    """A real `serve` process on the office's files, once it answers /health. Its stderr is a pipe
    read only on failure, so the default level is warning: an access line per request would fill it
    and stall the server (a test reading the log asks for info)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "serve",
            "--rules",
            str(setup["rules"]),
            "--db",
            str(setup["db"]),
            "--key-file",
            str(setup["key"]),
            "--api-keys",
            str(setup["keys"]),
            "--port",
            str(port),
            "--log-level",
            log_level,
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(proc.stderr.read().decode())


def test_sigkill_loses_no_acknowledged_decision(setup):
    port = free_port()
    server = start_server(setup, port)
    acknowledged = []
    stop = threading.Event()

    def stream():
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=h("sel")) as http:
            for i in range(100000):
                if stop.is_set():
                    return
                try:
                    answer = http.post(
                        "/declarations", json=declaration_data(id=f"K{i}", enterprise_id=f"E{i % 20}")
                    )
                except httpx.TransportError:
                    return
                if answer.status_code == 200:
                    acknowledged.append(f"K{i}")

    writer = threading.Thread(target=stream)
    writer.start()
    while len(acknowledged) < 150:
        time.sleep(0.01)
    server.send_signal(signal.SIGKILL)
    server.wait()
    stop.set()
    writer.join()
    restarted = start_server(setup, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            for declaration_id in acknowledged:
                assert http.get(f"/declarations/{declaration_id}", headers=h("aud")).status_code == 200
            verdict = http.get("/audit/verify", headers=h("aud")).json()
        assert verdict["ok"] and verdict["records"] >= len(acknowledged)
    finally:
        restarted.kill()
        restarted.wait()


def test_concurrent_clients_lose_and_duplicate_nothing(setup):
    port = free_port()
    server = start_server(setup, port)
    try:

        def client_run(k: int) -> list[str]:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=h("sel")) as http:
                ids = [f"C{k}-{i % 30}" for i in range(45)]  # each client re-posts 15 of its own
                codes = [
                    http.post(
                        "/declarations", json=declaration_data(id=declaration_id, enterprise_id=f"E{k}")
                    ).status_code
                    for declaration_id in ids
                ]
                return (
                    ids if codes == [200] * len(ids) else [f"refused: {codes}"]
                )  # asserted in the main thread

        results: list[list[str]] = []
        threads = [threading.Thread(target=lambda k=k: results.append(client_run(k))) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        conn = database.connect(setup["db"])
        stored = [r[0] for r in conn.execute("SELECT id FROM declarations")]
        assert sorted(stored) == sorted({i for ids in results for i in ids}) and len(stored) == 6 * 30
        selections = [r["payload"]["decision"]["declaration_id"] for r in AuditLog(conn).records("selection")]
        assert sorted(selections) == sorted(stored)  # exactly one selection record each
        assert AuditLog(conn).verify().ok
    finally:
        server.kill()
        server.wait()


def test_decisions_replay_from_the_rules_texts_the_log_kept(client, setup):
    from engine.randomness import KeyedDraws
    from engine.replay import replay

    post_declaration(client, id="R1", enterprise_id="E5")
    setup["rules"].write_text(
        setup["rules"].read_text().replace("value_per_kg, lt: 20", "value_per_kg, lt: 30")
    )
    os.utime(setup["rules"], ns=(time.time_ns(), time.time_ns() + 10**9))
    post_declaration(client, id="R2", enterprise_id="E5", hs_code="620342", declared_value=200.0)
    log = AuditLog(database.connect(setup["db"]))
    count, mismatches = replay(log, key=KeyedDraws.from_file(setup["key"]))
    assert count == 2 and mismatches == []


@pytest.mark.parametrize("value, quantity", [(1, 100000), (5e-324, 1.0), (1e300, 1e-300)])
def test_extreme_but_valid_numbers_are_decided_not_a_500(client, value, quantity):
    """Exponent forms (1e-05, 5e-324, 1e+16, an overflow to infinity) once crashed durable-rules."""
    answer = post_declaration(
        client,
        id=f"X{quantity}",
        enterprise_id="E1",
        hs_code="620342",
        declared_value=value,
        quantity=quantity,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"]["declaration_id"] == f"X{quantity}"


# ------------------------------------------------------------------ the rules file under change


def test_a_missing_or_invalid_rules_file_keeps_the_last_good_version(client, setup):
    good = client.get("/health").json()["rules_version"]
    text = setup["rules"].read_text()
    setup["rules"].unlink()  # briefly missing, as during a careless deploy
    answer = post_declaration(client, id="H1", enterprise_id="E3")
    assert answer.status_code == 200 and answer.json()["decision"]["rules_version"] == good
    health = client.get("/health").json()
    assert health["status"] == "degraded" and "cannot read rules file" in health["rules_problem"]
    setup["rules"].write_text(
        "version: v\nrules:\n  - {id: A, description: d, inspection: scan, when: {field: x, eq: 1}}\n"
    )
    assert post_declaration(client, id="H2", enterprise_id="E3").json()["decision"]["rules_version"] == good
    assert "unknown field 'x'" in client.get("/health").json()["rules_problem"]
    setup["rules"].write_text(text.replace("value_per_kg, lt: 20", "value_per_kg, lt: 22"))
    os.utime(setup["rules"], ns=(time.time_ns(), time.time_ns() + 10**9))
    new = post_declaration(client, id="H3", enterprise_id="E3").json()["decision"]["rules_version"]
    assert new != good and client.get("/health").json() | {"version": None} == {
        "status": "ok",
        "version": None,
        "rules_version": new,
        "model_version": None,
        "rules_problem": None,
        "database_problem": None,
        "checkpoint_problem": None,
    }


def test_a_rules_file_still_being_written_is_not_deployed(setup):
    """The file changes between the two reads `settle` apart: the old version keeps deciding."""
    from engine.runtime import LiveOffice

    office = Office(setup["db"], draws=None)
    live = LiveOffice(office, setup["rules"], False, setup["db"], settle=0.2)
    good = office.rules.version
    text = setup["rules"].read_text()
    half = (
        text[: text.index("  - id: WEAPONS-PARTS")]
        if "  - id: WEAPONS-PARTS" in text
        else text[: len(text) // 2]
    )
    setup["rules"].write_text(half)  # valid YAML: the rules before WEAPONS-PARTS

    def finish():
        time.sleep(0.05)
        setup["rules"].write_text(text.replace("value_per_kg, lt: 20", "value_per_kg, lt: 23"))

    writer = threading.Thread(target=finish)
    writer.start()
    live.reload()
    writer.join()
    assert office.rules.version == good and "changed while it was read" in live.problem
    live.reload()
    assert office.rules.version != good and live.problem is None and "lt: 23" in office.rules.text


# ------------------------------------------------------------------ the contract, checked by an outsider


def _failures(report: str) -> str:
    """Schemathesis' failures section, each line cut to 300 characters: its tail alone was mostly one
    generated request body, which hid which check failed."""
    start = report.find("FAILURES")
    section = report[start:] if start >= 0 else report[-3000:]
    return "\n".join(line[:300] for line in section.splitlines()[:80])


def test_schemathesis_finds_no_failure_for_any_role(any_setup):
    """An independent client reads /openapi.json and tries every operation with each role's key, on
    either database: all checks, coverage, fuzzing and stateful phases (following the documented
    links from a decision to its dispatch, result, reassignment, release, instruction, history and
    enterprise). No 5xx, no undocumented status code, every body as its schema declares."""
    setup = any_setup
    port = free_port()
    server = start_server(setup, port, "--roster", str(setup["roster"]), "--allow-new-enterprises")

    def keyed(key: str) -> list[str]:
        """The key through the schema's security scheme (not a fixed header), so the checks that
        send no key or a wrong one can take it away and expect the service's 401."""
        config = setup["rules"].parent / f"schemathesis-{key}.toml"
        config.write_text(f'[auth.openapi.APIKeyHeader]\napi_key = "{key}"\n')
        return ["--config-file", str(config)]

    run = [
        str(ROOT / ".venv" / "bin" / "schemathesis"),
        "run",
        f"http://127.0.0.1:{port}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        "15",
        "--seed",
        "7",
        "--no-color",
    ]
    try:
        for key in KEYS:  # each role alone: what it may do, and the refusals of what it may not
            done = subprocess.run(
                [run[0], *keyed(key), *run[1:]], capture_output=True, text=True, timeout=240
            )
            assert done.returncode == 0, (key, _failures(done.stdout))
        # every operation with a key of a role allowed to call it, so the stateful phase can follow
        # the links from a decision to the steps of other roles (tests/engine/schemathesis_roles.py)
        roles = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.engine.schemathesis_roles",
            "PYTHONPATH": str(ROOT),
        }
        every = [run[0], *keyed(PLACEHOLDER), *run[1:]]
        done = subprocess.run(every, capture_output=True, text=True, timeout=240, env=roles, cwd=ROOT)
        assert done.returncode == 0 and "Stateful" in done.stdout, _failures(done.stdout)
    finally:
        server.kill()
        server.wait()


def test_the_service_writes_signed_checkpoints_that_verify(setup, tmp_path):
    from typer.testing import CliRunner

    from engine import checkpoint
    from engine.cli import app as cli
    from engine.runtime import Checkpointing

    checkpoint.new_signing_key(tmp_path / "audit.key")
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    app = create_app(
        setup["rules"],
        setup["db"],
        setup["key"],
        setup["keys"],
        setup["roster"],
        clock=lambda: MORNING,
        checkpoints=Checkpointing(tmp_path / "audit.key", folder, every=5),
    )
    with TestClient(app) as c:
        for i in range(12):
            assert post_declaration(c, id=f"CP{i}", enterprise_id=f"E{i}").status_code == 200
        assert c.get("/audit/verify", headers=h("aud")).json()["ok"]
    written = sorted(folder.glob("checkpoint-*.json"))
    assert len(written) >= 2
    done = CliRunner().invoke(
        cli,
        [
            "audit",
            "verify",
            str(setup["db"]),
            "--checkpoints",
            str(folder),
            "--public-key",
            str(tmp_path / "audit.key.pub"),
        ],
    )
    assert done.exit_code == 0 and f"{len(written)} checkpoints" in done.stdout, done.output


def test_slow_clients_are_cut_off_and_connections_are_bounded(setup):
    """51 slowloris connections (headers never finished) are closed after --request-timeout; beyond
    --max-connections a connection is closed at once; an ordinary client is served once they are gone."""
    port = free_port()
    server = start_server(setup, port, "--request-timeout", "1", "--max-connections", "40")
    slow = []
    try:
        for _ in range(51):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            slow.append(s)
        time.sleep(0.3)
        closed_early = sum(1 for s in slow if _closed(s, wait=0.05))
        assert closed_early >= 11  # those over the limit of 40
        time.sleep(1.5)
        assert all(_closed(s, wait=0.5) for s in slow)  # the rest cut off after the timeout
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    finally:
        for s in slow:
            s.close()
        server.kill()
        server.wait()


def _closed(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def test_a_risk_officers_instruction_is_inspected_audited_and_reported(any_client):
    """An order on a declaration the computer released: dispatched, in the history, counted in the
    monthly report as the instruction channel; an order on a selected one is a conflict."""
    plain = post_declaration(
        any_client,
        id="PLAIN-1",
        enterprise_id="E1",
        customs_office="OFF-40",
        hs_code="940360",
        declared_value=50000.0,
    ).json()
    targeted = post_declaration(any_client, id="WEAP-1", enterprise_id="E2", **WEAPONS).json()
    assert not plain["decision"]["selected"], plain["decision"]
    assert targeted["decision"]["selected"]
    ordered = any_client.post(
        "/instructions",
        json={"declaration_id": "PLAIN-1", "reason": "tip-off from the port", "inspection_type": "physical"},
        headers=h("risk"),
    )
    assert ordered.status_code == 200, ordered.text
    assert ordered.json()["inspection"]["status"] == "dispatched"
    again = any_client.post(
        "/instructions", json={"declaration_id": "WEAP-1", "reason": "x"}, headers=h("risk")
    )
    assert again.status_code == 409
    missing = any_client.post(
        "/instructions", json={"declaration_id": "NOPE", "reason": "x"}, headers=h("chief")
    )
    assert missing.status_code == 404
    kinds = [r["kind"] for r in any_client.get("/declarations/PLAIN-1", headers=h("aud")).json()["history"]]
    assert kinds[:3] == ["selection", "instruction", "dispatch"]
    month = any_client.get("/reports/monthly", headers=h("aud")).json()["months"][0]
    assert (month["declarations"], month["instructed_selected"], month["targeted_selected"]) == (2, 1, 1)
    assert month["random_dispatch_share"] == 0.5 and month["hit_rate_instructed"] is None
    assert any_client.get("/audit/verify", headers=h("aud")).json()["ok"]


def test_a_lost_database_connection_is_a_503_and_the_next_request_is_decided(tmp_path, postgres_url):
    import psycopg

    from tests.conftest import POSTGRES

    files = office_files(tmp_path, postgres_url)
    app = create_app(
        files["rules"], files["db"], files["key"], files["keys"], files["roster"], clock=lambda: MORNING
    )
    with TestClient(app) as client:
        assert post_declaration(client, id="L1", enterprise_id="E1").status_code == 200
        with psycopg.connect(POSTGRES, autocommit=True) as conn:  # a failover: the office's connections go
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND application_name = %s",
                (f"doublerandom:{postgres_url.rsplit('=', 1)[1]}",),
            )
        lost = post_declaration(client, id="L2", enterprise_id="E1")
        assert lost.status_code == 503 and "did not answer" in lost.json()["detail"]
        again = post_declaration(client, id="L2", enterprise_id="E1")
        assert again.status_code == 200, again.text
        assert client.get("/audit/verify", headers=h("aud")).json()["ok"] is True


@pytest.mark.parametrize(
    "path, body, who",
    [
        (
            "/inspections/N1/result",
            {"outcome": "problem", "category": "under\u0000valued", "department": "duties"},
            None,
        ),
        ("/inspections/N1/result", {"outcome": "normal", "category": "\ud800"}, None),
        ("/inspections/N1/reassign", {"to": "INS-01", "reason": "tip\u0000off"}, "chief"),
        ("/instructions", {"declaration_id": "N2", "reason": "tip\u0000off"}, "risk"),
    ],
)
def test_text_a_database_cannot_store_is_refused_alike_on_both_backends(
    any_client, any_setup, path, body, who
):
    """A NUL (PostgreSQL stores none) or a lone surrogate: 422 naming the field on both databases,
    and nothing written; it was a 500 on PostgreSQL and stored on SQLite."""
    decided = post_declaration(any_client, id="N1", enterprise_id="E3", **WEAPONS).json()
    post_declaration(any_client, id="N2", enterprise_id="E3", hs_code="940360")
    inspector = decided["inspection"]["inspector_id"]
    key = who or ("ins1" if inspector == "INS-01" else "ins3")
    head = any_client.get("/audit/verify", headers=h("aud")).json()["head"]
    raw = json.dumps(body)  # \\u escapes survive: the body holds exactly what a client could send
    refused = any_client.post(path, content=raw, headers={**h(key), "content-type": "application/json"})
    assert refused.status_code == 422, refused.text
    field = "category" if "category" in body else "reason"
    assert field in json.dumps(refused.json())
    assert any_client.get("/audit/verify", headers=h("aud")).json()["head"] == head
    assert any_client.get("/declarations/N1", headers=h("aud")).json()["inspection"]["status"] == "dispatched"


def test_the_step_commands_refuse_a_nul_with_one_error(setup):
    from typer.testing import CliRunner

    from engine.cli import app as cli

    office = Office(setup["db"])
    before = office.audit.head()
    office.store.close()
    done = CliRunner().invoke(
        cli, ["instruct", str(setup["db"]), "X1", "--by", "RISK-1", "--reason", "a\x00b"]
    )
    assert done.exit_code == 2 and isinstance(done.exception, SystemExit) and "NUL" in done.stderr
    office = Office(setup["db"])
    assert office.audit.head() == before


def test_a_rules_file_durable_cannot_run_is_not_deployed_and_health_says_so(client, setup):
    """Hot reload of a file whose condition exceeds durable's limits: the last good version keeps
    deciding (it answered 500 to every POST while /health said ok)."""
    from tests.engine.test_rules import _rules_with, _tree

    good = client.get("/health").json()["rules_version"]
    time.sleep(0.01)
    setup["rules"].write_text(json.dumps(_rules_with(_tree(4, []))))
    os.utime(setup["rules"], ns=(time.time_ns(), time.time_ns() + 10**9))
    decided = post_declaration(client, id="DR1", enterprise_id="E4", **WEAPONS)
    assert decided.status_code == 200 and decided.json()["decision"]["rules_version"] == good
    health = client.get("/health").json()
    assert health["status"] == "degraded" and "TOO-DEEP" in health["rules_problem"]


def test_one_client_holding_half_sent_requests_does_not_starve_the_others(setup):
    """A sustained slowloris from one address (127.0.0.2), re-opening every connection the server
    cuts: the other clients (127.0.0.1) are all served, since one address takes at most
    --max-per-client places. Failures are collected in the attacking thread and asserted here."""
    port = free_port()
    server = start_server(
        setup, port, "--request-timeout", "1", "--max-connections", "40", "--max-per-client", "10"
    )
    stop, held, problems = threading.Event(), [], []

    def attack():
        try:
            while not stop.is_set():
                held[:] = [s for s in held if not _closed(s, wait=0)]
                while len(held) < 60 and not stop.is_set():  # more than the whole server's places
                    s = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                    held.append(s)
                time.sleep(0.05)
        except Exception as err:  # noqa: BLE001 - reported in the main thread
            problems.append(err)

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        time.sleep(0.5)
        answers = []
        for _ in range(30):
            try:
                answers.append(httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code)
            except httpx.TransportError as err:
                answers.append(type(err).__name__)
            time.sleep(0.05)
        assert answers == [200] * 30, answers
    finally:
        stop.set()
        attacker.join()
        for s in held:
            s.close()
        server.kill()
        server.wait()
    assert problems == []


def test_headers_over_the_limit_are_refused_431_and_the_server_carries_on(setup):
    port = free_port()
    server = start_server(setup, port)
    try:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)  # never ends on its own
        s.settimeout(5)
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
        s.close()
        assert answer.startswith(b"HTTP/1.1 431 ") and b"over 32768 bytes" in answer
        ok = httpx.get(f"http://127.0.0.1:{port}/health", headers={"X-Fine": "b" * 8000}, timeout=5)
        assert ok.status_code == 200
        # small headers and a 50 KB body sent in one write: the body is read as a body (it was 431) and
        # refused for what it says (450 rows, over the 200 a batch may hold)
        rows = [
            {"enterprise_id": f"E{k:04d}-" + "X" * 40, "status": "high_risk", "date": "2026-06-01"}
            for k in range(450)
        ]
        s = socket.create_connection(("127.0.0.1", port))
        body = json.dumps({"batch_id": "big", "listings": rows}).encode()
        assert len(body) > 40_000
        s.sendall(
            b"POST /agencies/POLICE/listings HTTP/1.1\r\nHost: x\r\nX-API-Key: police\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)
        )
        s.settimeout(10)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        s.close()
        assert answer.startswith(b"HTTP/1.1 422 ") and b"listings" in answer, answer[:300]
    finally:
        server.kill()
        server.wait()


def _documented(spec: dict, method: str, path: str) -> dict:
    """The JSON Schema the OpenAPI document declares for an operation's 200 body, its refs resolvable."""
    body = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    return {**body, "components": spec["components"]}


def test_every_answer_matches_the_schema_the_api_documents(any_client):
    """A declaration's whole way, one operation after another with the role each needs, on either
    database: every 200 body validates against the schema /openapi.json declares for it, and every
    operation of the document is reached (schemathesis's stateful phase follows the same links, but
    rarely gets far: most generated declarations are refused or never selected)."""
    import jsonschema

    client = any_client
    spec = client.get("/openapi.json").json()
    seen = set()

    def call(method, path, template, who=None, body=None):
        answer = client.request(method.upper(), path, json=body, headers=h(who) if who else {})
        assert answer.status_code == 200, (path, answer.text)
        jsonschema.validate(
            answer.json(), _documented(spec, method, template), cls=jsonschema.Draft202012Validator
        )
        seen.add((method, template))
        return answer.json()

    decided = call(
        "post",
        "/declarations",
        "/declarations",
        "sel",
        declaration_data(id="J1", enterprise_id="E5", declared_at="2026-06-01T10:00:00", **WEAPONS),
    )
    first = decided["inspection"]["inspector_id"]
    other = "INS-03" if first == "INS-01" else "INS-01"
    call(
        "post",
        "/inspections/J1/reassign",
        "/inspections/{inspection_id}/reassign",
        "chief",
        {"to": other, "reason": "specialist"},
    )
    recorded = call(
        "post",
        "/inspections/J1/result",
        "/inspections/{inspection_id}/result",
        "ins1" if other == "INS-01" else "ins3",
        {"outcome": "normal", "category": "clean"},
    )
    assert recorded["status"] == "awaiting_release"
    call("post", "/declarations/J1/release", "/declarations/{declaration_id}/release", "rel")
    call(
        "post",
        "/declarations",
        "/declarations",
        "sel",
        declaration_data(id="J2", enterprise_id="E6", declared_at="2026-06-01T10:00:00", hs_code="940360"),
    )
    instructed = call(
        "post",
        "/instructions",
        "/instructions",
        "risk",
        {"declaration_id": "J2", "reason": "a tip-off", "inspection_type": "document"},
    )
    assert instructed["inspection"]["status"] in ("dispatched", "waiting")
    call(
        "post",
        "/declarations",
        "/declarations",
        "sel",
        declaration_data(
            id="J3",
            enterprise_id="E7",
            declared_at="2026-06-01T10:00:00",
            customs_office="OFF-99",
            hs_code="930690",
        ),
    )  # nobody works at OFF-99: it waits
    waiting = call("post", "/inspections/J3/dispatch", "/inspections/{inspection_id}/dispatch", "chief")
    assert waiting["waiting"] is True
    history = call("get", "/declarations/J1", "/declarations/{declaration_id}", "aud")
    assert [r["kind"] for r in history["history"]][:2] == ["selection", "dispatch"]
    call("get", "/enterprises/E5", "/enterprises/{enterprise_id}", "chief")
    call("get", "/reports/monthly", "/reports/monthly", "aud")
    assert call("get", "/audit/verify", "/audit/verify", "aud")["ok"]
    call("get", "/rules", "/rules")
    call("get", "/health", "/health")
    queue = call("get", "/inspections", "/inspections", "chief")["inspections"]
    assert [q["id"] for q in queue] == ["J3"] and "OFF-99" in queue[0]["wait_reason"]
    retried = call("post", "/inspections/dispatch-waiting", "/inspections/dispatch-waiting", "chief")
    assert retried == {"tried": 1, "dispatched": [], "waiting": ["J3"]}
    listed = call("post", "/agencies/POLICE/listings", "/agencies/{agency}/listings", "police", LISTING)
    assert listed["applied"] and listed["changes"]
    call("get", "/integrity/changes", "/integrity/changes", "police")
    suspended = call(
        "post",
        "/inspectors/INS-02/suspension",
        "/inspectors/{inspector_id}/suspension",
        "chief",
        {"suspended": True, "reason": "on leave"},
    )
    assert suspended == {"inspector": "INS-02", "suspended": True, "by": "CHIEF-1"}
    documented = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert seen == documented  # every operation the document lists was reached with a 200


def test_the_waiting_queue_pages_by_id_with_each_reason_and_only_for_its_readers(client):
    """Five declarations at an office nobody works at wait; a chief reads them two at a time, in id
    order, each with its reason; a dispatched one is in its own status; a selector may not read it."""
    for k in range(5):
        body = declaration_data(
            id=f"Q{k}", enterprise_id=f"E{k}", declared_at="2026-06-01T10:00:00", **WEAPONS
        )
        body["customs_office"] = "OFF-99"
        assert client.post("/declarations", json=body, headers=h("sel")).status_code == 200
    seen, after = [], None
    while True:
        page = client.get(
            "/inspections", params={"limit": 2, **({"after": after} if after else {})}, headers=h("chief")
        ).json()
        assert len(page["inspections"]) <= 2
        seen += page["inspections"]
        after = page["next"]
        if after is None:
            break
    assert [q["id"] for q in seen] == [f"Q{k}" for k in range(5)]
    assert all(q["status"] == "waiting" and "OFF-99" in q["wait_reason"] for q in seen)
    assert (
        client.get("/inspections", params={"status": "released"}, headers=h("aud")).json()["inspections"]
        == []
    )
    assert client.get("/inspections", headers=h("sel")).status_code == 403
    bad = client.get("/inspections", params={"status": "lost"}, headers=h("chief"))
    assert bad.status_code == 422 and "status" in bad.text


def test_an_agency_sends_its_listings_whole_or_not_at_all_and_polls_customs_changes(any_client, any_setup):
    """An agency's key sends a batch of listings: applied in one transaction and audited; the same
    batch again changes nothing, the same id with other rows is refused; a bad row refuses the whole
    batch, naming the row, and writes nothing; another agency's path is refused. It then reads every
    change of standing (its listings, customs' results) after a cursor, a page at a time, without
    gaps or repeats, and the audit chain still verifies and reconciles."""
    client = any_client
    batch = {
        "batch_id": "2026-06-01-a",
        "listings": [
            {"enterprise_id": "E1", "status": "dishonest", "date": "2026-06-01"},
            {"enterprise_id": "E2", "status": "high_risk", "date": "2026-06-01"},
        ],
    }
    done = client.post("/agencies/POLICE/listings", json=batch, headers=h("police"))
    assert done.status_code == 200 and done.json()["applied"], done.text
    assert client.get("/enterprises/E1", headers=h("chief")).json()["credit_class"] == "dishonest"
    again = client.post("/agencies/POLICE/listings", json=batch, headers=h("police"))
    assert again.status_code == 200 and again.json() == {
        "batch_id": "2026-06-01-a",
        "applied": False,
        "changes": [],
    }
    other = {**batch, "listings": batch["listings"][:1]}
    assert client.post("/agencies/POLICE/listings", json=other, headers=h("police")).status_code == 409
    assert (
        client.post(
            "/agencies/TAX/listings", json={**batch, "batch_id": "x"}, headers=h("police")
        ).status_code
        == 403
    )

    before = client.get("/integrity/changes", params={"limit": 1000}, headers=h("aud")).json()
    bad = {
        "batch_id": "2026-06-02",
        "listings": [
            {"enterprise_id": "E3", "status": "dishonest", "date": "2026-06-02"},
            {"enterprise_id": "E4", "status": "wanted", "date": "2026-06-02"},
            {"enterprise_id": "E3", "status": "cleared", "date": "2026-06-02"},
        ],
    }
    refused = client.post("/agencies/POLICE/listings", json=bad, headers=h("police"))
    assert refused.status_code == 422 and "listings.1.status" in str(refused.json()["detail"])
    bad["listings"][1]["status"] = "high_risk"
    twice = client.post("/agencies/POLICE/listings", json=bad, headers=h("police"))
    assert twice.status_code == 409 and "row 3" in twice.json()["detail"]
    assert client.get("/enterprises/E3", headers=h("chief")).json()["credit_class"] == "general"
    assert client.get("/integrity/changes", params={"limit": 1000}, headers=h("aud")).json() == before

    # customs' own result feeds the same stream: E5 found with a problem becomes high-risk
    decided = post_declaration(client, id="AG1", enterprise_id="E5", **WEAPONS).json()
    inspector = decided["inspection"]["inspector_id"]
    key = "ins1" if inspector == "INS-01" else "ins3"
    problem = {"outcome": "problem", "category": "smuggling", "department": "anti_smuggling"}
    assert client.post("/inspections/AG1/result", json=problem, headers=h(key)).status_code == 200

    pages, since = [], 0
    while True:
        page = client.get(
            "/integrity/changes", params={"since": since, "limit": 2}, headers=h("police")
        ).json()
        if not page["changes"]:
            assert page["next"] == since
            break
        pages += page["changes"]
        since = page["next"]
    seqs = [c["seq"] for c in pages]
    assert seqs == sorted(set(seqs))  # in order, no repeat
    assert {(c["enterprise_id"], c["field"]) for c in pages} >= {("E1", "credit_class"), ("E5", "high_risk")}
    assert client.get("/audit/verify", headers=h("aud")).json()["ok"]


def test_serve_logs_its_start_and_each_request_with_a_time_and_an_id_but_never_a_key(setup):
    """`serve --log-level info`: a start-up line (version, address, rules), then a line per request
    with its time, status and request id (the caller's X-Request-ID, echoed in the answer, or a new
    one), refusals included; no API key in any line."""
    port = free_port()
    server = start_server(setup, port, log_level="info")
    try:
        url = f"http://127.0.0.1:{port}"
        answer = httpx.get(url + "/reports/monthly", headers={**h("chief"), "X-Request-ID": "case-17"})
        assert answer.status_code == 200 and answer.headers["x-request-id"] == "case-17"
        refused = httpx.get(url + "/reports/monthly", headers={**h("sel"), "X-Request-ID": "bad id!"})
        assert refused.status_code == 403 and re.fullmatch(r"[0-9a-f]{16}", refused.headers["x-request-id"])
    finally:
        server.terminate()
        server.wait(timeout=20)
    text = server.stderr.read().decode()
    lines = text.splitlines()
    stamp = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} INFO "
    assert re.match(
        stamp + r"doublerandom.service doublerandom \S+ serving http://127.0.0.1:\d+: rules ", lines[0]
    )
    assert any(
        re.match(stamp + r"doublerandom.access 127.0.0.1 GET /reports/monthly 200 .* id=case-17$", x)
        for x in lines
    )
    assert any(" GET /reports/monthly 403 " in x and refused.headers["x-request-id"] in x for x in lines)
    assert "chief" not in text and "X-API-Key" not in text  # the keys sent, and no header at all


def test_a_chief_retries_the_whole_waiting_queue_once_inspectors_are_on_post(setup):
    """Three declarations decided at 03:00, when nobody works at OFF-40, wait; at 10:00 one call
    retries the queue: all three are dispatched to inspectors now on post, and the queue is empty."""
    now = [dt.datetime(2026, 6, 1, 3, 0)]
    app = create_app(
        setup["rules"], setup["db"], setup["key"], setup["keys"], setup["roster"], clock=lambda: now[0]
    )
    with TestClient(app) as client:
        for k in range(3):
            decided = post_declaration(client, id=f"W{k}", enterprise_id=f"E{k}", **WEAPONS).json()
            assert decided["inspection"]["status"] == "waiting"
        assert client.post("/inspections/dispatch-waiting", headers=h("chief")).json()["waiting"] == [
            "W0",
            "W1",
            "W2",
        ]
        now[0] = MORNING
        retried = client.post("/inspections/dispatch-waiting", headers=h("chief")).json()
        assert retried == {"tried": 3, "dispatched": ["W0", "W1", "W2"], "waiting": []}
        assert client.get("/inspections", headers=h("chief")).json()["inspections"] == []
        for k in range(3):
            inspection = client.get(f"/declarations/W{k}", headers=h("chief")).json()["inspection"]
            assert inspection["status"] == "dispatched" and inspection["inspector_id"] in ("INS-01", "INS-03")


def test_an_inspector_reads_its_own_worklist_and_a_chief_anyones(client):
    """Four declarations at OFF-40 in the morning go to INS-01 and INS-03: each inspector's key reads
    exactly its own dispatched inspections (asking for another's is 403), a chief reads either's, and
    the two lists add up to everything dispatched."""
    for k in range(4):
        assert post_declaration(client, id=f"K{k}", enterprise_id=f"E{k}", **WEAPONS).status_code == 200
    mine = {}
    for key, name in (("ins1", "INS-01"), ("ins3", "INS-03")):
        own = client.get("/inspections", params={"status": "dispatched"}, headers=h(key)).json()[
            "inspections"
        ]
        assert all(q["inspector_id"] == name for q in own)
        by_chief = client.get(
            "/inspections", params={"status": "dispatched", "inspector": name}, headers=h("chief")
        ).json()["inspections"]
        assert by_chief == own
        mine[name] = {q["id"] for q in own}
    everything = client.get("/inspections", params={"status": "dispatched"}, headers=h("chief")).json()
    assert mine["INS-01"] | mine["INS-03"] == {q["id"] for q in everything["inspections"]}
    assert mine["INS-01"] and mine["INS-03"] and not mine["INS-01"] & mine["INS-03"]
    other = client.get("/inspections", params={"inspector": "INS-03"}, headers=h("ins1"))
    assert other.status_code == 403 and "its own worklist" in other.text
