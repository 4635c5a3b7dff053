"""Shared fixtures: paths into the repository and a factory for valid declarations."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASELINE_RULES = ROOT / "scenarios" / "rules" / "baseline.yaml"


def declaration_data(**overrides) -> dict:
    """A valid declaration as raw JSON-like data; override any field."""
    data = {
        "id": "D1",
        "declared_at": "2026-06-01T09:30:00",
        "enterprise_id": "E1",
        "hs_code": "610910",
        "origin_country": "VN",
        "departure_country": "VN",
        "trade_mode": "general",
        "transport_mode": "sea",
        "customs_office": "OFF-40",
        "declared_value": 12000.0,
        "net_mass_kg": 1000.0,
        "quantity": 4000.0,
    }
    data.update(overrides)
    return data


@pytest.fixture
def root() -> Path:
    return ROOT


# ---------------------------------------------------------------- the two database backends

POSTGRES = os.environ.get("DOUBLERANDOM_TEST_POSTGRES")  # .ci/run sets it; unset, those tests skip
HOW = (
    "PostgreSQL tests need a server: set "
    "DOUBLERANDOM_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5432/test "
    "(.ci/run does)"
)


def postgres_schema(label: str = "t") -> Iterator[str]:
    """A schema of its own on the test server, as a database URL; dropped afterwards. With the
    variable set, an unreachable server fails the test: it never skips silently."""
    import psycopg

    if not POSTGRES:
        pytest.skip(HOW)
    name = f"{label}_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
    except psycopg.OperationalError as err:
        pytest.fail(f"DOUBLERANDOM_TEST_POSTGRES={POSTGRES} is set but the server does not answer: {err}")
    yield f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}schema={name}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')  # a test's owner role may have taken it


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_schema()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> Iterator[str]:
    """A new, empty office database on each backend: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "office.db")
    else:
        yield from postgres_schema()


# Browser tests drive Debian's Chromium through Playwright (never a browser Playwright downloads).
# .ci/run installs it and sets DOUBLERANDOM_TEST_BROWSER=1, so there a missing browser fails the test;
# elsewhere those tests skip, saying how to run them.
CHROMIUM = os.environ.get("DOUBLERANDOM_CHROMIUM", "/usr/bin/chromium")
BROWSER_HOW = (
    "needs Debian's Chromium: `apt-get install chromium chromium-driver`, then "
    "DOUBLERANDOM_TEST_BROWSER=1 make test (.ci/run does both)"
)
ARTIFACTS = Path(os.environ.get("DOUBLERANDOM_TEST_ARTIFACTS", ROOT / "out" / "test-artifacts"))


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).is_file():
        if os.environ.get("DOUBLERANDOM_TEST_BROWSER"):
            pytest.fail(f"DOUBLERANDOM_TEST_BROWSER is set but there is no Chromium at {CHROMIUM}")
        pytest.skip(BROWSER_HOW)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process, seconds: float = 90.0) -> None:
    """Until the server at `url` answers, or fail with what it printed."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}: {process.stdout.read()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {seconds:.0f} s")
