"""No secret and no internal detail in a message: the database password never (terminal, logs),
and to anyone outside (HTTP bodies, /health) neither the database's address nor a path on the
server. API keys bound to a site act on that site only."""

from __future__ import annotations

import json
import os
import time

import psycopg
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from engine.apikeys import key_digest
from engine.cli import app as cli
from engine.declarations import Enterprise
from engine.office import Office
from engine.service import create_app
from tests.conftest import BASELINE_RULES, POSTGRES, declaration_data
from tests.engine.test_service import MORNING, WEAPONS, h, office_files, post_declaration

PASSWORD = "s3cr3t-Pw_17"  # the test server trusts every connection, so any password connects


def with_password(url: str) -> str:
    return url.replace("://postgres@", f"://postgres:{PASSWORD}@", 1)


def cli_errors(url: str, tmp_path) -> list[str]:
    """Every command error a PostgreSQL URL with a password can produce here."""
    runner, out = CliRunner(), []

    def run(*args):
        done = runner.invoke(cli, list(args))
        assert done.exit_code != 0 and isinstance(done.exception, SystemExit), (args, done.output)
        out.append(done.output + done.stderr)

    run("db", "init-roles", url)  # a schema not yet upgraded
    source = tmp_path / "office.db"
    office = Office(source)
    office.register([Enterprise(id="E1")])  # a source with an audit log
    office.store.close()
    Office(url).store.close()
    with psycopg.connect(POSTGRES, autocommit=True) as conn:  # a schema a newer doublerandom made
        conn.execute(
            f'INSERT INTO "{url.rsplit("=", 1)[1]}".enterprises (id, credit_class) VALUES (%s, %s)',
            ("E9", "general"),
        )
    run("db", "copy", str(source), url)  # into a schema that is not empty
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'UPDATE "{url.rsplit("=", 1)[1]}".doublerandom_schema SET version = 99')
    run("audit", "verify", url)
    run("db", "upgrade", url)
    empty = tmp_path / "none.jsonl"
    empty.write_text("")
    run("select", "--rules", str(BASELINE_RULES), "--db", url, "--seed", "1", "--input", str(empty))
    return out


def test_no_command_prints_the_database_password(postgres_url, tmp_path):
    messages = cli_errors(with_password(postgres_url), tmp_path)
    assert len(messages) == 5 and all(m.strip() for m in messages)
    leaked = [m for m in messages if PASSWORD in m]
    assert leaked == [], leaked
    assert [m for m in messages[1:] if "***" not in m] == []  # the URL is still named, its password replaced


def test_no_http_body_names_the_database_or_a_server_path(tmp_path, postgres_url):
    url = with_password(postgres_url)
    setup = office_files(tmp_path, url)
    schema_name = url.rsplit("=", 1)[1]
    app = create_app(setup["rules"], url, setup["key"], setup["keys"], setup["roster"], clock=lambda: MORNING)
    bodies = []
    with TestClient(app) as client:
        with psycopg.connect(POSTGRES, autocommit=True) as holder:  # a 503
            holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"doublerandom:{schema_name}",))
            busy = post_declaration(client, id="L1", enterprise_id="E1", **WEAPONS)
            assert busy.status_code == 503
            bodies += [busy.text, client.get("/health").text]
        time.sleep(0.01)
        setup["rules"].write_text("rules: [unclosed")  # a rules problem, shown in /health
        os.utime(setup["rules"], ns=(time.time_ns(), time.time_ns() + 10**9))
        post_declaration(client, id="L2", enterprise_id="E1")
        health = client.get("/health")
        assert health.json()["rules_problem"].startswith("rules.yaml: ")
        bodies.append(health.text)
        for path, body, who in [
            ("/inspections/NONE/result", {"outcome": "normal"}, "ins1"),
            ("/instructions", {"declaration_id": "NONE", "reason": "x"}, "risk"),
            ("/declarations", {**declaration_data(), "enterprise_id": "NOBODY"}, "sel"),
        ]:
            bodies.append(client.post(path, json=body, headers=h(who)).text)
    secrets = [PASSWORD, "127.0.0.1", schema_name, str(tmp_path), "postgresql://"]
    leaked = [(s, b) for b in bodies for s in secrets if s in b]
    assert leaked == [], leaked


# ---------------------------------------------------------------- keys bound to a site

STATUSES = ("waiting", "dispatched", "awaiting_release")


def test_a_key_bound_to_a_site_acts_on_that_site_only(tmp_path):
    setup = office_files(tmp_path, tmp_path / "office.db")
    entries = json.loads(setup["keys"].read_text())["keys"]
    entries += [
        {"name": "CHIEF-30", "role": "chief", "key_sha256": key_digest("chief30"), "site": "OFF-30"},
        {"name": "SEL-30", "role": "selector", "key_sha256": key_digest("sel30"), "site": "OFF-30"},
        {"name": "CHIEF-40", "role": "chief", "key_sha256": key_digest("chief40"), "site": "OFF-40"},
    ]
    setup["keys"].write_text(json.dumps({"keys": entries}))
    app = create_app(
        setup["rules"], setup["db"], setup["key"], setup["keys"], setup["roster"], clock=lambda: MORNING
    )
    with TestClient(app) as client:
        decided = post_declaration(client, id="S1", enterprise_id="E1", **WEAPONS).json()  # at OFF-40
        first = decided["inspection"]["inspector_id"]
        other = "INS-03" if first == "INS-01" else "INS-01"
        move = {"to": other, "reason": "specialist"}
        refused = client.post("/inspections/S1/reassign", json=move, headers=h("chief30"))
        assert refused.status_code == 403 and "acts for site OFF-30" in refused.json()["detail"]
        assert client.get("/declarations/S1", headers=h("chief30")).status_code == 403
        lodged = post_declaration(client, id="S2", enterprise_id="E1", key="sel30", **WEAPONS)
        assert lodged.status_code == 403
        assert client.post("/inspections/S1/reassign", json=move, headers=h("chief40")).status_code == 200
        assert (
            post_declaration(
                client, id="S3", enterprise_id="E1", key="sel30", hs_code="930690", customs_office="OFF-30"
            ).status_code
            == 200
        )

        # the work queue: a site's key sees its site's inspections only
        def queue(who: str) -> set[str]:
            pages = [
                client.get("/inspections", params={"status": s}, headers=h(who)).json() for s in STATUSES
            ]
            return {q["id"] for page in pages for q in page["inspections"]}

        assert queue("chief30") == {"S3"} and "S1" in queue("chief40") and "S3" not in queue("chief40")


def test_apikey_writes_the_site(tmp_path):
    keys = tmp_path / "keys.yaml"
    done = CliRunner().invoke(
        cli, ["apikey", str(keys), "--role", "chief", "--name", "CHIEF-30", "--site", "OFF-30"]
    )
    assert done.exit_code == 0, done.output
    assert "site: OFF-30" in keys.read_text()
    bad = CliRunner().invoke(cli, ["apikey", str(keys), "--role", "chief", "--name", "C", "--site", "OFF 30"])
    assert bad.exit_code == 2 and "--site" in bad.stderr
