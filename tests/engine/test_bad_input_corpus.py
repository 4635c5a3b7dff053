"""A corpus of bad inputs across the command line, the files it reads and the HTTP API.

Each one must be refused with one clear message (a non-zero exit or a 4xx naming the field, the file
or the line) and never a traceback or a 5xx; and after each, the stores and the audit chain must be
exactly as they were.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from engine import schema
from engine.apikeys import key_digest
from engine.cli import app
from engine.database import open_database
from engine.declarations import Enterprise, parse_declaration
from engine.dispatch import Roster
from engine.office import Office
from engine.randomness import KeyedDraws
from engine.rules import RuleSet
from engine.selection import SelectionPolicy
from engine.service import create_app
from tests.conftest import BASELINE_RULES, ROOT, declaration_data, postgres_schema

ROSTER = ROOT / "scenarios" / "roster.yaml"
runner = CliRunner()
MORNING = dt.datetime(2026, 6, 1, 10, 0)


@pytest.fixture(scope="module")
def office_files(tmp_path_factory):
    """An office with some history: registrations, decisions, a dispatch, a result."""
    folder = tmp_path_factory.mktemp("corpus")
    return make_office(folder, folder / "office.db")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_office(request, tmp_path_factory):
    """The same office on either backend, for what the service refuses."""
    folder = tmp_path_factory.mktemp("corpus-http")
    if request.param == "sqlite":
        yield make_office(folder, str(folder / "office.db"))
    else:
        for url in postgres_schema("corpus"):
            yield make_office(folder, url)


def make_office(folder, db) -> dict:
    office = Office(
        db,
        rules=RuleSet.load(BASELINE_RULES),
        policy=SelectionPolicy(random_ratio=0.2),
        draws=KeyedDraws.from_seed(9),
        roster=Roster.load(ROSTER),
    )
    office.use_rules(office.rules, office.rules.text)
    office.register([Enterprise(id=f"E{i}", declarations=3) for i in range(5)])
    for i in range(8):
        office.admit(
            parse_declaration(
                declaration_data(
                    id=f"H{i}", enterprise_id=f"E{i % 5}", hs_code="930690", declared_at=MORNING.isoformat()
                )
            ),
            MORNING,
        )
    office.store.close()
    key = folder / "draw.key"
    key.write_text("ab" * 32)
    keys = folder / "keys.yaml"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {"name": "SEL-1", "role": "selector", "key_sha256": key_digest("sel")},
                    {"name": "INS-01", "role": "inspector", "key_sha256": key_digest("ins")},
                    {"name": "CHIEF-1", "role": "chief", "key_sha256": key_digest("chief")},
                ]
            }
        )
    )
    return {"folder": folder, "db": db, "key": key, "keys": keys}


def snapshot(db) -> dict:
    """Every row of every table, on either backend."""
    opened = open_database(db, read_only=True)
    out = {
        t: [tuple(r) for r in opened.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()]
        for t in schema.TABLES
    }
    opened.close()
    return out


def write(folder, name: str, content: str | bytes):
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# ---------------------------------------------------------------- declarations on `select --db`

BAD_LINES = [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "valid dictionary"),
    ("null", "valid dictionary"),
    ("42", "valid dictionary"),
    ('"text"', "valid dictionary"),
    ("[" * 50000 + "]" * 50000, "nested too deeply"),
    (b"\xff\xfe{}", "not UTF-8"),
    *[
        (json.dumps(declaration_data(**{field: value})), f"field '{field}'")
        for field, value in [
            ("id", ""),
            ("id", "a/b"),
            ("id", "x" * 65),
            ("id", "é1"),
            ("id", " D1"),
            ("id", 7),
            ("enterprise_id", "E 1"),
            ("enterprise_id", None),
            ("customs_office", "OFF 40"),
            ("hs_code", "12"),
            ("hs_code", "84713O"),
            ("hs_code", 847130),
            ("origin_country", "vn"),
            ("origin_country", "VNM"),
            ("departure_country", ""),
            ("trade_mode", "smuggling"),
            ("transport_mode", "teleport"),
            ("declared_value", 0),
            ("declared_value", -5),
            ("declared_value", "a lot"),
            ("declared_value", True),
            ("net_mass_kg", 0),
            ("quantity", -1),
            ("items", 0),
            ("items", 1000),
            ("items", 2.5),
            ("declared_at", "2026-13-01T00:00:00"),
            ("declared_at", "9999-12-31T25:00:00"),
            ("declared_at", "yesterday"),
            ("declared_at", 1767225600),
            ("declared_at", "2026-02-30T10:00:00"),
        ]
    ],
    (json.dumps({k: v for k, v in declaration_data().items() if k != "hs_code"}), "field 'hs_code'"),
    (json.dumps({**declaration_data(), "colour": "red"}), "field 'colour'"),
    (
        json.dumps(declaration_data(id="H0")).replace("930690", "940360").replace("610910", "940360"),
        "different content",
    ),
]


@pytest.mark.parametrize("line, message", BAD_LINES, ids=range(len(BAD_LINES)))
def test_a_bad_declaration_line_is_refused_and_writes_nothing(office_files, line, message):
    before = snapshot(office_files["db"])
    source = write(office_files["folder"], "line.jsonl", line if isinstance(line, bytes) else line + "\n")
    done = runner.invoke(
        app,
        [
            "select",
            "--rules",
            str(BASELINE_RULES),
            "--seed",
            "9",
            "--db",
            str(office_files["db"]),
            "--ratio",
            "0.2",
            "--input",
            str(source),
        ],
    )
    assert done.exit_code == 1 and isinstance(done.exception, SystemExit), done.output
    assert message in done.stderr and f"{source}:1" in done.stderr, done.stderr
    assert snapshot(office_files["db"]) == before


# ---------------------------------------------------------------- files the commands read

RULES = "version: v\nrules:\n  - {id: A, description: d, inspection: scan, when: {field: hs_code, eq: '1'}}\n"
BAD_RULES = [
    "",
    "just text",
    "- a\n- list\n",
    "version: v\n",
    "version: v\nrules: []\n",
    "rules: [\n",
    RULES.replace("scan", "xray"),
    RULES.replace("hs_code", "colour"),
    RULES.replace("eq: '1'", "eq: 1"),
    RULES.replace("eq: '1'", "prefix: '8.*'"),
    RULES.replace("eq: '1'", "between: ['9', '1']"),
    RULES.replace("id: A", "id: 'A B'"),
    RULES + RULES.split("rules:\n")[1],
    RULES.replace("eq: '1'", "in: []"),
    RULES.replace("eq: '1'", "in: {list: nowhere}"),
    RULES.replace("inspection: scan", "inspection: scan, sampling_rate: 2"),
    RULES.replace("inspection: scan", "inspection: scan, valid_from: 2026-13-01"),
    "version: v\nrules:\n  - {id: A, description: d, inspection: scan, when: "
    + "{not: " * 2000
    + "{}"
    + "}" * 2000
    + "}\n",
    "\x00\x01\x02",
    "a: &x [*x]\n",
]


@pytest.mark.parametrize("content", BAD_RULES, ids=range(len(BAD_RULES)))
def test_a_bad_rules_file_is_refused_by_validate_and_select(office_files, content):
    before = snapshot(office_files["db"])
    path = write(office_files["folder"], "bad-rules.yaml", content)
    for args in (
        ["validate", str(path)],
        [
            "select",
            "--rules",
            str(path),
            "--seed",
            "1",
            "--db",
            str(office_files["db"]),
            "--input",
            "/dev/null",
        ],
    ):
        done = runner.invoke(app, args)
        assert done.exit_code == 2 and isinstance(done.exception, SystemExit) and str(path) in done.stderr, (
            done.output
        )
    assert snapshot(office_files["db"]) == before


BAD_ENTERPRISES = [
    "id,credit_class\nE1,royal\n",
    "id,credit_class\n,general\n",
    "id,credit_class\nE 1,general\n",
    "id,declarations\nE1,-4\n",
    "id,declarations\nE1,many\n",
    "id,high_risk_until\nE1,2026-02-30\n",
    "id,credit_class\nE1,general\nE1,dishonest\n",
    b"id,credit_class\nE\xff,general\n",
    "id,colour\nE1,red\n",
    'id,credit_class\n"E1,general\n',
]


@pytest.mark.parametrize("content", BAD_ENTERPRISES, ids=range(len(BAD_ENTERPRISES)))
def test_a_bad_enterprises_file_is_refused_before_anything_is_registered(office_files, content):
    before = snapshot(office_files["db"])
    path = write(office_files["folder"], "firms.csv", content)
    done = runner.invoke(
        app,
        [
            "select",
            "--rules",
            str(BASELINE_RULES),
            "--seed",
            "1",
            "--db",
            str(office_files["db"]),
            "--enterprises",
            str(path),
            "--input",
            "/dev/null",
        ],
    )
    assert done.exit_code == 2 and isinstance(done.exception, SystemExit) and str(path) in done.stderr, (
        done.output
    )
    assert snapshot(office_files["db"]) == before


PERSON = "{id: I1, site: OFF-40, shifts: ['08:00-16:00'], qualifications: [physical]}"
BAD_ROSTERS = [
    "inspectors: []\n",
    f"inspectors: [{PERSON.replace('08:00-16:00', '8am-4pm')}]\n",
    f"inspectors: [{PERSON.replace('physical', 'psychic')}]\n",
    f"inspectors: [{PERSON}, {PERSON}]\n",
    f"inspectors: [{PERSON.replace('I1', 'I 1')}]\n",
    f"weighting: random\ninspectors: [{PERSON}]\n",
    f"rotation_days: -1\ninspectors: [{PERSON}]\n",
    f"recheck_share: 2\ninspectors: [{PERSON}]\n",
    "inspectors: [\n",
    b"\xff\xfe\x00",
]


@pytest.mark.parametrize("content", BAD_ROSTERS, ids=range(len(BAD_ROSTERS)))
def test_a_bad_roster_is_refused_by_the_step_commands(office_files, content):
    before = snapshot(office_files["db"])
    path = write(office_files["folder"], "roster.yaml", content)
    done = runner.invoke(
        app, ["dispatch", str(office_files["db"]), "H0", "--roster", str(path), "--seed", "1"]
    )
    assert done.exit_code == 2 and isinstance(done.exception, SystemExit) and str(path) in done.stderr, (
        done.output
    )
    assert snapshot(office_files["db"]) == before


BAD_AGENCY_LISTS = [
    "enterprise_id,status,source,date\nE1,naughty,tax,2026-05-01\n",
    "enterprise_id,status,source,date\nE1,dishonest,tax,2026-13-01\n",
    "enterprise_id,status,source,date\nE 1,dishonest,tax,2026-05-01\n",
    "enterprise_id,status,source,date\nE1,dishonest,,2026-05-01\n",
    "enterprise_id,status,source,date\nE1,dishonest,tax,2026-05-01\nE1,cleared,tax,2026-05-02\n",
    "enterprise_id,status\nE1,dishonest\n",
    b"enterprise_id,status,source,date\nE1,dishonest,t\xffx,2026-05-01\n",
    "enterprise_id,status,source,date\nE2,dishonest,tax,2026-05-01\nE3,dishonest,tax,someday\n",
]


@pytest.mark.parametrize("content", BAD_AGENCY_LISTS, ids=range(len(BAD_AGENCY_LISTS)))
def test_a_bad_agency_list_changes_nothing(office_files, content):
    before = snapshot(office_files["db"])
    path = write(office_files["folder"], "agency.csv", content)
    done = runner.invoke(app, ["integrity", "import", str(office_files["db"]), str(path)])
    assert done.exit_code == 2 and isinstance(done.exception, SystemExit) and str(path) in done.stderr, (
        done.output
    )
    assert snapshot(office_files["db"]) == before


BAD_STEPS = [
    (["result", "{db}", "NOPE", "--inspector", "INS-01", "--outcome", "normal"], "no inspection 'NOPE'"),
    (["result", "{db}", "H0", "--inspector", "INS-99", "--outcome", "normal"], "assigned to"),
    (["result", "{db}", "H0", "--inspector", "INS-01", "--outcome", "maybe"], "outcome must be"),
    (
        ["result", "{db}", "H0", "--inspector", "INS-01", "--outcome", "problem", "--department", "mars"],
        "transferred to",
    ),
    (["release", "{db}", "H0", "--officer", "OFFICER-2"], "this step needs it awaiting_release"),
    (["release", "{db}", "NOPE", "--officer", "OFFICER-2"], "no inspection 'NOPE'"),
    (["dispatch", "{db}", "H0", "--roster", str(ROSTER), "--seed", "1", "--at", "tomorrow"], "--at"),
    (
        [
            "reassign",
            "{db}",
            "H0",
            "--to",
            "INS-99",
            "--by",
            "CHIEF",
            "--reason",
            "x",
            "--roster",
            str(ROSTER),
        ],
        "may not take",
    ),
    (
        [
            "reassign",
            "{db}",
            "H0",
            "--to",
            "INS-03",
            "--by",
            "CHIEF",
            "--reason",
            " ",
            "--roster",
            str(ROSTER),
        ],
        "needs a reason",
    ),
    (["integrity", "export", "{db}", "{folder}/x.csv", "--on", "2026-13-01"], "--on"),
    (["dispatch", "{folder}/missing.db", "H0", "--roster", str(ROSTER), "--seed", "1"], "no such database"),
    (
        [
            "audit",
            "verify",
            "{db}",
            "--checkpoint",
            "{folder}/line.jsonl",
            "--public-key",
            "{folder}/draw.key",
        ],
        "not ",
    ),
    (["audit", "checkpoint", "{db}", "--key-file", "{folder}/draw.key"], "not a private audit signing key"),
    (
        [
            "select",
            "--rules",
            str(BASELINE_RULES),
            "--key-file",
            "{folder}/roster.yaml",
            "--input",
            "/dev/null",
        ],
        "hexadecimal",
    ),
    (
        [
            "select",
            "--rules",
            str(BASELINE_RULES),
            "--seed",
            "1",
            "--db",
            "{folder}/line.jsonl",
            "--input",
            "/dev/null",
        ],
        "cannot open",
    ),
]


@pytest.mark.parametrize("args, message", BAD_STEPS, ids=range(len(BAD_STEPS)))
def test_a_refused_step_changes_nothing(office_files, args, message):
    before = snapshot(office_files["db"])
    write(office_files["folder"], "line.jsonl", "{}\n")
    write(office_files["folder"], "roster.yaml", "inspectors: [\n")
    filled = [a.format(db=office_files["db"], folder=office_files["folder"]) for a in args]
    done = runner.invoke(app, filled)
    assert done.exit_code == 2 and isinstance(done.exception, SystemExit) and message in done.stderr, (
        filled,
        done.output,
    )
    assert snapshot(office_files["db"]) == before


# ---------------------------------------------------------------- the HTTP API

HTTP_CASES = [
    ("post", "/declarations", "sel", b"", 422),
    ("post", "/declarations", "sel", b"{", 422),
    ("post", "/declarations", "sel", b"\xff\xfe", 422),
    ("post", "/declarations", "sel", b"[]", 422),
    ("post", "/declarations", "sel", json.dumps(declaration_data(id="a/b")).encode(), 422),
    (
        "post",
        "/declarations",
        "sel",
        json.dumps(declaration_data(id="Z1", enterprise_id="NOBODY")).encode(),
        404,
    ),
    ("post", "/declarations", "sel", json.dumps(declaration_data(id="H1")).encode(), 409),
    ("post", "/declarations", "sel", json.dumps(declaration_data(declared_at=0)).encode(), 422),
    ("post", "/declarations", "sel", json.dumps(declaration_data(declared_value=1e400)).encode(), 422),
    ("post", "/declarations", "sel", b'{"declared_value": NaN}', 422),
    ("post", "/declarations", "sel", b"[" * 10000 + b"]" * 10000, 422),
    ("post", "/declarations", "ins", json.dumps(declaration_data(id="Z9")).encode(), 403),
    ("post", "/declarations", "nobody", json.dumps(declaration_data(id="Z9")).encode(), 401),
    ("post", "/declarations", None, json.dumps(declaration_data(id="Z9")).encode(), 401),
    ("post", "/declarations", "sel", b"x" * (70 * 1024), 413),
    ("post", "/inspections/H0/result", "ins", b'{"outcome": "problem"}', 422),
    ("post", "/inspections/H0/result", "ins", b'{"outcome": "maybe"}', 422),
    ("post", "/inspections/NOPE/result", "ins", b'{"outcome": "normal"}', 404),
    ("post", "/inspections/H0/result", "chief", b'{"outcome": "normal"}', 403),
    ("post", "/inspections/H0/reassign", "chief", b'{"to": "INS-99", "reason": "x"}', 409),
    ("post", "/inspections/H0/reassign", "chief", b'{"to": "a b", "reason": "x"}', 422),
    ("post", "/inspections/H0/reassign", "chief", b'{"to": "INS-03"}', 422),
    ("post", "/inspections/NOPE/dispatch", "chief", b"", 404),
    ("get", "/declarations/NOPE", "sel", None, 404),
    ("get", "/enterprises/NOPE", "chief", None, 404),
    ("get", "/audit/verify", "sel", None, 403),
    ("post", "/inspections/H0/result", "ins", b'{"outcome": "normal", "category": "a\\u0000b"}', 422),
    ("post", "/inspections/H0/reassign", "chief", b'{"to": "INS-03", "reason": "tip\\u0000off"}', 422),
    (
        "post",
        "/declarations",
        "sel",
        json.dumps(declaration_data(id="Z2", hs_code="\u0669\u0663\u0660\u0666\u0669\u0660")).encode(),
        422,
    ),
]


@pytest.mark.parametrize("method, path, who, body, status", HTTP_CASES, ids=range(len(HTTP_CASES)))
def test_a_refused_request_is_a_4xx_with_one_body_shape_and_changes_nothing(
    any_office, method, path, who, body, status
):
    office_files = any_office
    before = snapshot(office_files["db"])
    application = create_app(
        BASELINE_RULES,
        office_files["db"],
        office_files["key"],
        office_files["keys"],
        ROSTER,
        clock=lambda: MORNING,
    )
    headers = {"content-type": "application/json"} | ({"X-API-Key": who} if who else {})
    with TestClient(application) as client:
        answer = client.request(method.upper(), path, content=body, headers=headers)
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, (str, list)) and detail
    assert snapshot(office_files["db"]) == before
