"""Several service instances on one PostgreSQL database: real `serve` processes, real HTTP.

Needs the server named by DOUBLERANDOM_TEST_POSTGRES (set by .ci/run); skips, saying so, without it.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from typer.testing import CliRunner

from engine.cli import app
from tests.conftest import ROOT, declaration_data
from tests.engine.test_service import free_port, office_files

runner = CliRunner()
MORNING = "2026-06-01T10:00:00"


@pytest.fixture
def office(postgres_url, tmp_path):
    files = office_files(tmp_path, postgres_url)
    return {
        "url": postgres_url,
        "key": files["key"],
        "args": [
            "--rules",
            str(files["rules"]),
            "--db",
            postgres_url,
            "--key-file",
            str(files["key"]),
            "--api-keys",
            str(files["keys"]),
            "--roster",
            str(files["roster"]),
            "--expected-rate",
            "0.1",
        ],
    }


def start(office, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "serve",
            *office["args"],
            "--port",
            str(port),
            "--log-level",
            "warning",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/health", timeout=0.5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(proc.stderr.read().decode())


def stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()


def checked(office) -> None:
    """The chain verifies and reconciles, and every decision replays with the draw key."""
    for command in (
        ["audit", "verify", office["url"]],
        ["audit", "replay", office["url"], "--key-file", str(office["key"])],
    ):
        done = runner.invoke(app, command)
        assert done.exit_code == 0 and done.stdout.startswith("OK"), (command, done.output)


def post(http: httpx.Client, url: str, declaration_id: str, k: int) -> httpx.Response:
    return http.post(
        url + "/declarations",
        headers={"X-API-Key": "sel"},
        json=declaration_data(id=declaration_id, enterprise_id=f"E{k % 20}", declared_at=MORNING),
    )


def test_two_instances_share_the_work_without_a_server_error(office):
    """Eight clients spread over two instances, re-posting each other's ids: every answer is a
    decision, the same for an id wherever it was asked, and the log holds each decision once."""
    (a, url_a), (b, url_b) = start(office), start(office)
    answers: dict[str, set] = {}
    codes: list[int] = []
    try:

        def client(k: int) -> None:
            with httpx.Client(timeout=30) as http:
                for i, url in zip(range(30), itertools.cycle((url_a, url_b))):
                    n = (k * 30 + i) % 120  # every id is posted by two clients, with the same content
                    answer = post(http, url, f"S{n}", n)
                    declaration_id = f"S{n}"
                    codes.append(answer.status_code)
                    if answer.status_code == 200:
                        answers.setdefault(declaration_id, set()).add(
                            json.dumps(answer.json()["decision"], sort_keys=True)
                        )

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        stop(a, b)
    assert codes.count(200) == 240, sorted(set(codes))
    assert len(answers) == 120 and all(len(seen) == 1 for seen in answers.values())
    checked(office)


def test_a_killed_instance_loses_no_acknowledged_decision_and_the_other_carries_on(office):
    (a, url_a), (b, url_b) = start(office), start(office)
    acknowledged: list[str] = []
    after_kill: list[str] = []
    problems: list[str] = []  # what went wrong in a stream's thread, asserted in this one
    killed = threading.Event()
    done = threading.Event()

    def stream(url: str, name: str, survivor: bool) -> None:
        with httpx.Client(timeout=30) as http:
            for i in itertools.count():
                if done.is_set():
                    return
                try:
                    answer = post(http, url, f"{name}{i}", i)
                except httpx.TransportError as err:
                    if survivor:
                        problems.append(f"{name}{i}: {err!r}")
                    return
                if answer.status_code != 200:
                    problems.append(f"{name}{i}: {answer.status_code} {answer.text}")
                    return
                acknowledged.append(f"{name}{i}")
                if survivor and killed.is_set():
                    after_kill.append(f"{name}{i}")

    streams = [
        threading.Thread(target=stream, args=(url_a, "A", False)),
        threading.Thread(target=stream, args=(url_b, "B", True)),
    ]
    try:
        for t in streams:
            t.start()
        while len(acknowledged) < 150 and not problems:
            time.sleep(0.01)
        a.send_signal(signal.SIGKILL)
        a.wait()
        killed.set()
        while len(after_kill) < 50 and streams[1].is_alive():
            time.sleep(0.01)
        done.set()
        for t in streams:
            t.join()
        with httpx.Client(base_url=url_b, headers={"X-API-Key": "aud"}) as http:
            missing = [d for d in acknowledged if http.get(f"/declarations/{d}").status_code != 200]
    finally:
        stop(a, b)
    assert problems == [] and len(after_kill) >= 50, problems  # the survivor kept answering, every time 200
    assert a.returncode == -signal.SIGKILL and missing == []
    checked(office)


def test_serve_workers_runs_several_processes_on_postgres_and_refuses_sqlite(office, tmp_path):
    proc, url = start(office, "--workers", "2")
    try:
        with httpx.Client(timeout=30) as http:
            assert all(post(http, url, f"W{i}", i).status_code == 200 for i in range(20))
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert len(children) >= 2  # uvicorn's workers: one process each
    checked(office)
    refused = runner.invoke(
        app,
        ["serve", *office["args"][:2], "--db", str(tmp_path / "o.db"), *office["args"][4:], "--workers", "2"],
    )
    assert refused.exit_code != 0 and "needs a PostgreSQL database" in refused.stderr
