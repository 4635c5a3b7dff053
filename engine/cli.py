"""The engine's command line: validate rules files and decide declarations (JSON lines in and out).

`doublerandom` (doublerandom/cli.py) mounts these commands beside the simulation's; `python -m engine`
is the engine alone.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, Iterator, Optional

import typer

from engine import __version__
from engine.commands import (
    console,
    fail,
    learned_score,
    make_draws,
    need,
    open_office,
    seal_key,
    selection_policy,
)
from engine.errors import InputError, redact
from engine.roles import ROLES


class LogLevel(str, enum.Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


if TYPE_CHECKING:  # loaded where a command needs them (engine.commands says why): start at once
    from rich.console import Console

    from engine.audit import AuditLog
    from engine.declarations import Enterprise
    from engine.selection import Selector

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="doublerandom: double-random customs inspection (selection engine and simulation).",
)


def _print_version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the package version"
    ),
) -> None:
    """doublerandom: double-random customs inspection."""


@app.command()
def validate(rules_file: Path = typer.Argument(..., help="a rules YAML file")) -> None:
    """Check a rules file; print its version and rules, or what is wrong."""
    from engine.rules import RuleSet

    try:
        rules = RuleSet.load(rules_file)
    except InputError as e:
        fail(str(e))
    print(f"OK {rules_file}: {len(rules.rules)} rules, version {rules.version}")


@app.command()
def keygen(out: Path = typer.Argument(..., help="where to write the new key (hex)")) -> None:
    """Write a new secret key for live, verifiable random draws."""
    from engine.keys import create_private
    from engine.randomness import new_key_hex

    try:
        create_private(out, new_key_hex() + "\n")
    except InputError as e:
        fail(str(e))
    print(f"wrote {out}")


def read_lines(source: BinaryIO, name: str) -> Iterator[tuple[str, object]]:
    """(where, parsed JSON) per non-blank line; a line that is not UTF-8 JSON yields an InputError
    for that line alone (bytes are decoded line by line, so one bad byte spoils one line)."""
    for number, raw in enumerate(source, start=1):
        where = f"{name}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield where, InputError(f"{where}: not UTF-8 text (byte {e.start + 1})")
            continue
        if number == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark is not part of the JSON
        if not line.strip():
            continue
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as e:
            yield where, InputError(f"{where}: not valid JSON: {e.msg} (column {e.colno})")
        except RecursionError:
            yield where, InputError(f"{where}: JSON nested too deeply")


SEED = typer.Option(None, "--seed", help="draws keyed by this seed: reproducible, for demos and tests")
KEY_FILE = typer.Option(None, "--key-file", help="draws keyed by a secret key file: live use")
DbUrl = Annotated[
    str,
    typer.Argument(
        metavar="DB",
        help="the office's database: a SQLite file, sqlite:///path, or postgresql://user@host/db?schema=s",
    ),
]
AT = typer.Option(
    None,
    "--at",
    help="when the step happens (ISO time; default now, UTC; without an offset: the site's wall time)",
)
POLICY = typer.Option(
    None,
    "--policy",
    help="YAML selection policy (random_ratio, expected_rate, "
    "office_expected_rates, min_random_rate, credit multipliers...; README 'Capacity')",
)
RATIO = typer.Option(
    None,
    "--ratio",
    min=0,
    max=1,
    help="pure random ratio over all declarations (default 0.03, or the policy file's)",
)
MODEL = typer.Option(
    None,
    "--model",
    help="a learned score the policy's `model` ranks by (from `doublerandom model train`; the model extra)",
)
EXPECTED_RATE = typer.Option(
    None,
    "--expected-rate",
    min=0,
    max=1,
    help="the targeted channel takes the highest risk scores, this share of each office's declarations",
)


@app.command()
def select(
    rules: Path = typer.Option(..., "--rules", help="rules YAML file"),
    ratio: Optional[float] = RATIO,
    expected_rate: Optional[float] = EXPECTED_RATE,
    policy_file: Optional[Path] = POLICY,
    model: Optional[Path] = MODEL,
    seed: Optional[int] = SEED,
    key_file: Optional[Path] = KEY_FILE,
    enterprises: Optional[Path] = typer.Option(None, "--enterprises", help="CSV of enterprise records"),
    input: Optional[Path] = typer.Option(None, "--input", help="declarations as JSON lines (default stdin)"),
    db: Optional[str] = typer.Option(
        None,
        "--db",
        help="database (a SQLite file, sqlite:///…, or "
        "postgresql://…): read and update the integrity store, record inspections "
        "and the audit log",
    ),
) -> None:
    """Decide declarations: one JSON decision per input line on stdout; bad lines on stderr."""
    from engine.declarations import parse_declaration, read_enterprises_csv
    from engine.office import Office
    from engine.rules import RuleSet
    from engine.selection import Selector

    try:
        ruleset, draws = RuleSet.load(rules), make_draws(seed, key_file)
        if model and not db:
            raise InputError("--model needs --db: the learned score reads each importer's record there")
        score = learned_score(model)
        policy = selection_policy(policy_file, ratio, expected_rate, score)
        firms = read_enterprises_csv(str(enterprises)) if enterprises else {}
        office = Office(db, policy=policy, draws=draws, seal_key=seal_key(), score=score) if db else None
        if office:
            office.use_rules(ruleset, ruleset.text)  # so `audit replay` needs no --rules
            office.register(firms.values())
        source = open(input, "rb") if input else sys.stdin.buffer
    except (InputError, OSError) as e:
        fail(str(e))
    decide = office.admit if office else _in_memory(Selector(ruleset, policy, draws), firms)
    bad = decided = 0
    with source:
        for where, raw in read_lines(source, str(input or "<stdin>")):
            try:
                if isinstance(raw, InputError):
                    raise raw
                decision = decide(parse_declaration(raw, where))
            except InputError as e:
                message = str(e) if str(e).startswith(where) else f"{where}: {e}"
                console(stderr=True).print(message, markup=False, highlight=False, soft_wrap=True)
                bad += 1
                continue
            except Exception as e:  # a defect of ours must not leave the following lines undecided
                console(stderr=True).print(
                    f"{where}: could not be decided ({type(e).__name__}: {e}); nothing was recorded "
                    "for it; please report this",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
                bad += 1
                continue
            print(
                json.dumps(decision.to_dict(), sort_keys=True), flush=bool(office)
            )  # flushed = acknowledged
            decided += 1
    console(stderr=True).print(f"decided {decided} declarations, {bad} bad lines", highlight=False)
    if bad:
        raise typer.Exit(1)


def _in_memory(selector: Selector, firms: dict[str, Enterprise]):
    """Without a database: enterprises from the CSV, counting declarations as they come."""
    from engine.declarations import Enterprise

    def decide(declaration):
        firm = firms.setdefault(declaration.enterprise_id, Enterprise(id=declaration.enterprise_id))
        decision = selector.decide(declaration, firm)
        firm.declarations += 1  # the firm's next declaration is no longer its first
        return decision

    return decide


def _when(at: Optional[str]) -> Optional[dt.datetime]:
    if at is None:
        return None
    try:
        return dt.datetime.fromisoformat(at)
    except ValueError:
        fail(f"--at: {at!r} is not an ISO time such as 2026-06-01T09:30")


def _step(action) -> None:
    """Run one office step; print its JSON answer, or the user's mistake without a traceback."""
    try:
        answer = action()
    except InputError as e:
        fail(str(e))
    print(json.dumps(answer, sort_keys=True, default=str))


@app.command("dispatch")
def dispatch_cmd(
    db: DbUrl,
    inspection: str,
    roster: Path = typer.Option(..., "--roster"),
    seed: Optional[int] = SEED,
    key_file: Optional[Path] = KEY_FILE,
    at: Optional[str] = AT,
) -> None:
    """Pick an inspector at random among the eligible, or say why the inspection waits."""
    office = open_office(db, roster, seed, key_file)
    _step(lambda: vars(office.dispatch(inspection, _when(at))))


@app.command()
def reassign(
    db: DbUrl,
    inspection: str,
    to: str = typer.Option(..., "--to"),
    by: str = typer.Option(..., "--by"),
    reason: str = typer.Option(..., "--reason"),
    roster: Path = typer.Option(..., "--roster"),
    at: Optional[str] = AT,
) -> None:
    """A chief moves an inspection to another eligible inspector; recorded as manual, with the reason."""
    office = open_office(db, roster)
    _step(lambda: vars(office.reassign(inspection, to, by, reason, _when(at))))


@app.command()
def result(
    db: DbUrl,
    inspection: str,
    inspector: str = typer.Option(..., "--inspector"),
    outcome: str = typer.Option(..., "--outcome", help="normal or problem"),
    category: str = typer.Option("", "--category", help="what was found"),
    department: str = typer.Option("", "--department", help="where a problem is transferred"),
    roster: Optional[Path] = typer.Option(None, "--roster", help="for the random re-check share"),
    seed: Optional[int] = SEED,
    key_file: Optional[Path] = KEY_FILE,
    at: Optional[str] = AT,
) -> None:
    """Record an inspection result; a problem is transferred and feeds the integrity store."""
    office = open_office(db, roster, seed, key_file)
    _step(lambda: office.record_result(inspection, inspector, outcome, category, department, _when(at)))


@app.command()
def release(
    db: DbUrl, declaration: str, officer: str = typer.Option(..., "--officer"), at: Optional[str] = AT
) -> None:
    """Release a declaration with a normal result, by an officer who did not inspect it."""
    office = open_office(db)
    _step(lambda: office.release(declaration, officer, _when(at)) or {"released": declaration, "by": officer})


@app.command()
def instruct(
    db: DbUrl,
    declaration: str,
    by: str = typer.Option(..., "--by", help="the risk officer ordering it"),
    reason: str = typer.Option(..., "--reason", help="why (intelligence, a tip-off...)"),
    inspection_type: str = typer.Option("physical", "--type", help="physical, scan or document"),
    roster: Optional[Path] = typer.Option(None, "--roster", help="to dispatch it at once"),
    seed: Optional[int] = SEED,
    key_file: Optional[Path] = KEY_FILE,
    at: Optional[str] = AT,
) -> None:
    """A risk officer orders the inspection of a declaration the computer did not select (the
    instruction channel), with a reason; audited like every step."""
    office = open_office(db, roster, seed, key_file)
    _step(lambda: office.instruct(declaration, by, reason, inspection_type, _when(at)))


@app.command()
def report(
    db: DbUrl,
    by: str = typer.Option("month", "--by", help="month (the only grouping so far)"),
    output: str = typer.Option("table", "--format", help="table, json or csv"),
    table: str = typer.Option(
        "months",
        "--table",
        help="csv: months, rules (per rule and month) or long (month x channel x figure with 95%% bounds, "
        "as the simulation's monthly_long.csv)",
    ),
) -> None:
    """The live office's monthly figures, as the simulation writes them: selections by channel and
    lane, the computer-selection, pure random and credit shares, hit rates per channel and per rule
    with 95% intervals."""
    from engine import report as monthly_report

    if by != "month":
        fail(f"--by: only 'month' is supported, not {by!r}")
    if output not in ("table", "json", "csv"):
        fail(f"--format: table, json or csv, not {output!r}")
    if table not in ("months", "rules", "long"):
        fail(f"--table: months, rules or long, not {table!r}")
    months = monthly_report.monthly(open_office(db).store.report_rows())
    if output == "json":
        print(json.dumps(monthly_report.jsonable(months), indent=1))
    elif output == "csv":
        rows = {"months": _month_rows, "rules": _rule_rows, "long": monthly_report.long_rows}[table](months)
        _print_csv(rows)
    else:
        from rich.console import Console

        _print_report(months, Console())


def _month_rows(months: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "rules"} for m in months]


def _rule_rows(months: list[dict]) -> list[dict]:
    return [{"month": m["month"], "rule": rule, **r} for m in months for rule, r in m["rules"].items()]


def _print_csv(rows: list[dict]) -> None:
    """Undefined figures (no finished inspection yet) as empty cells, never the text 'nan'."""
    import csv

    if rows:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {k: "" if isinstance(v, float) and v != v else v for k, v in r.items()} for r in rows
        )


def _interval(rate: float, low: float, high: float) -> str:
    return "-" if rate != rate else f"{rate:.1%} [{low:.1%}, {high:.1%}]"


def _month_figures(m: dict) -> list[tuple[str, str]]:
    """One month's figures as (name, value): the report's one list, shown as columns or as rows."""
    shares = "-" if m["inspections"] == 0 else None
    return [
        ("declarations", f"{m['declarations']:,}"),
        *((c, str(m[f"{c}_selected"])) for c in ("random", "targeted", "credit", "instructed")),
        ("computer-selection share", shares or f"{m['random_dispatch_share']:.1%}"),
        ("drawn share", shares or f"{m['drawn_share']:.1%}"),
        ("pure random share", shares or f"{m['pure_random_share']:.1%}"),
        ("credit share", shares or f"{m['credit_share']:.1%}"),
        *(
            (f"hit rate {c}", _interval(m[f"hit_rate_{c}"], m[f"hit_rate_{c}_low"], m[f"hit_rate_{c}_high"]))
            for c in ("random", "targeted", "credit", "instructed")
        ),
        ("lanes G/Y/R/B", "/".join(str(m[f"lane_{x}"]) for x in ("green", "yellow", "red", "blue"))),
    ]


WIDE = 160  # columns a terminal needs for the months side by side; narrower ones get one block per month


def _print_report(months: list[dict], console: Console) -> None:
    from rich.table import Table

    title = "selections and inspections by month (hit rates: finished inspections, 95% Wilson)"
    if console.width >= WIDE:
        wide = Table(title=title)
        for name in ("month", *(name for name, _ in _month_figures(months[0]))) if months else ("month",):
            wide.add_column(name)
        for m in months:
            wide.add_row(m["month"], *(value for _, value in _month_figures(m)))
        console.print(wide)
    else:  # figures as rows: every name and value whole at 80 columns
        console.print(title)
        for m in months:
            block = Table(title=m["month"], show_header=False)
            for name, value in _month_figures(m):
                block.add_row(name, value)
            console.print(block)
    rules = Table(title="per rule and month: fired, inspected, found, hit rate [95%]")
    for name in ("month", "rule", "fired", "inspected", "found", "hit rate"):
        rules.add_column(name, overflow="fold")  # a long rule id wraps, never loses its end
    for m in months:
        for rule, r in m["rules"].items():
            rules.add_row(
                m["month"],
                rule,
                str(r["fired"]),
                str(r["inspected"]),
                str(r["found"]),
                _interval(r["hit_rate"], r["low"], r["high"]),
            )
    console.print(rules)


audit_app = typer.Typer(no_args_is_help=True, help="Check the audit log.")
app.add_typer(audit_app, name="audit")


@audit_app.command("keygen")
def audit_keygen(out: Path = typer.Argument(..., help="where to write the private signing key")) -> None:
    """Write a new Ed25519 signing key for checkpoints (0600) and its public key (<out>.pub)."""
    from engine import checkpoint

    try:
        public = checkpoint.new_signing_key(out)
    except InputError as e:
        fail(str(e))
    print(f"wrote {out} (keep it away from the database) and {public} (give it to the auditors)")


@audit_app.command("checkpoint")
def audit_checkpoint(
    db: DbUrl,
    key_file: Path = typer.Option(..., "--key-file", help="the private signing key"),
    out: Optional[Path] = typer.Option(
        None, "--out", help="a file, or a folder for checkpoint-<seq>.json (keep it outside the database)"
    ),
) -> None:
    """Sign the log's head (sequence number, hash, time); print the checkpoint and write it to --out."""
    from engine import checkpoint

    try:
        key = checkpoint.load_signing_key(key_file)
        log = _read_only_log(db)
        signed = checkpoint.sign(*log.head(), key)
        where = checkpoint.write(signed, out) if out else None
    except InputError as e:
        fail(str(e))
    print(signed.to_json())
    if where:
        console(stderr=True).print(f"wrote {where}", highlight=False)


@audit_app.command("verify")
def audit_verify(
    db: DbUrl,
    checkpoints: list[Path] = typer.Option([], "--checkpoint", help="a signed checkpoint (repeatable)"),
    folder: Optional[Path] = typer.Option(None, "--checkpoints", help="a folder of checkpoints"),
    public_key: Optional[Path] = typer.Option(
        None, "--public-key", help="the public key of the checkpoints and the seals"
    ),
    sealed: bool = typer.Option(
        False,
        "--sealed",
        help="the office seals its log: every record must be in a seal (checked anyway "
        "when the log has seals)",
    ),
) -> None:
    """Walk the hash chain, check each signed checkpoint's head is on it and each record is in a
    valid seal, and reconcile the state tables with the log. Opens the database read-only."""
    from engine import checkpoint
    from engine.reconciliation import reconcile

    try:
        log = _read_only_log(db)
        in_folder, unreadable = checkpoint.read_folder(folder) if folder else ([], [])
        signed = [(p, checkpoint.read(p)) for p in checkpoints] + in_folder
        if signed and public_key is None:
            fail("checking checkpoints needs --public-key")
        key = checkpoint.load_public_key(public_key) if public_key else None
        verdict = log.verify()
        if not verdict.ok:
            fail(
                f"{db}: audit log broken at record {verdict.broken_at}: {verdict.reason} "
                f"({verdict.count} records verified before it)",
                code=1,
            )
        problems = unreadable + [
            f"{p}: {why}" for p, c in signed if (why := checkpoint.contradiction(c, key, log))
        ]
        sealing = sealed or log.sealed()
        if sealing and key is None:
            fail("the log is sealed: checking it needs --public-key")
        problems += log.seal_problems(key) if sealing else []
        problems += [str(d) for d in reconcile(log)]
    except InputError as e:
        fail(str(e))
    for problem in problems:
        console(stderr=True).print(problem, markup=False, highlight=False, soft_wrap=True)
    if problems:
        fail(f"{db}: {len(problems)} problems (the chain itself verifies: {verdict.count} records)", code=1)
    seq, head = log.head()
    print(
        f"OK {verdict.count} records, head {seq} {head}"
        + (f", {len(signed)} checkpoints" if signed else "")
        + (", every record sealed" if sealing else "")
    )


def _read_only_log(db: str) -> AuditLog:
    """The audit log of a database opened read-only; refused when there is none."""
    from engine import database, schema
    from engine.audit import AuditLog

    opened = database.open_database(db, read_only=True)
    schema.refuse_newer(opened)
    log = AuditLog(opened)
    if not log.exists() or log.head() is None:
        raise InputError(f"{db}: no audit log (no audit table, or an empty one)")
    return log


@audit_app.command("replay")
def audit_replay(
    db: DbUrl,
    rules: Optional[Path] = typer.Option(
        None, "--rules", help="the rules file (default: the versions the log recorded)"
    ),
    seed: Optional[int] = SEED,
    key_file: Optional[Path] = KEY_FILE,
    model: Optional[Path] = typer.Option(
        None, "--model", help="the model file of decisions a learned score ranked (the model extra)"
    ),
) -> None:
    """Recompute every logged selection decision from its logged inputs, rules, draws and, where a
    learned score ranked it, the model file."""
    from engine.replay import replay
    from engine.rules import RuleSet

    try:
        log = _read_only_log(db)
        ruleset = RuleSet.load(rules) if rules else None
        key = make_draws(seed, key_file) if (seed is not None or key_file is not None) else None
        count, mismatches = replay(log, ruleset, key, learned_score(model))
    except InputError as e:
        fail(str(e))
    for m in mismatches:
        console(stderr=True).print(
            f"record {m.seq} ({m.declaration_id}): {m.field} logged {m.logged!r}, replayed {m.replayed!r}",
            markup=False,
            highlight=False,
        )
    if mismatches:
        fail(f"{len(mismatches)} mismatches in {count} decisions", code=1)
    print(f"OK {count} decisions replayed" + ("" if key else " (draws taken from the log: no key given)"))


db_app = typer.Typer(no_args_is_help=True, help="The office's database: schema versions, roles, moving it.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(db: DbUrl) -> None:
    """Create a new database's tables, or apply the migrations above its schema version (as the
    owner role on PostgreSQL). A database from a newer doublerandom is refused."""
    from engine import database, schema

    try:
        opened = database.open_database(db)
        found, now = schema.upgrade(opened)
        opened.close()
    except InputError as e:
        fail(str(e))
    print(
        f"{redact(db)}: schema {found} -> {now}"
        if found != now
        else f"{redact(db)}: schema {now}, nothing to do"
    )


@db_app.command("init-roles")
def db_init_roles(
    db: DbUrl,
    owner: str = typer.Option("doublerandom_owner", "--owner", help="the role that owns the tables"),
    app_role: str = typer.Option("doublerandom_app", "--app", help="the role the service connects as"),
    log_owner: str = typer.Option(
        "doublerandom_log", "--log-owner", help="the role that owns the audit log; nobody logs in as it"
    ),
) -> None:
    """PostgreSQL: make the owner, application and log-owner roles and their grants; the application
    role may only INSERT and SELECT the audit log, the owner cannot touch what keeps it append-only.
    Run as a superuser after `db upgrade`."""
    from engine import database, schema

    try:
        opened = database.open_database(db)
        statements = schema.init_roles(opened, owner, app_role, log_owner)
        opened.close()
    except InputError as e:
        fail(str(e))
    print("\n".join(f"{s};" for s in statements))


@db_app.command("copy")
def db_copy(
    source: str = typer.Argument(..., metavar="SRC", help="the office's database now"),
    destination: str = typer.Argument(..., metavar="DST", help="a new, empty database (or schema)"),
) -> None:
    """Copy an office to another database (SQLite to PostgreSQL, or back), verifying the audit
    chain on both sides and reconciling the copy."""
    from engine.move import copy

    try:
        done = copy(source, destination)
    except InputError as e:
        fail(str(e))
    rows = ", ".join(f"{n:,} {t}" for t, n in done["rows"].items())
    print(f"copied {rows}; audit head {done['audit_head']['seq']} {done['audit_head']['hash']} on both sides")


integrity_app = typer.Typer(no_args_is_help=True, help="The enterprise integrity store.")
app.add_typer(integrity_app, name="integrity")


@integrity_app.command("show")
def integrity_show(db: DbUrl, enterprise: str) -> None:
    """An enterprise's standing as the rules see it."""
    print(open_office(db).integrity.get(enterprise).model_dump_json())


@integrity_app.command("import")
def integrity_import(db: DbUrl, csv_file: Path) -> None:
    """Apply another agency's list (enterprise_id, status, source, date) for joint discipline."""
    office = open_office(db)
    _step(lambda: office.import_agency_list(csv_file))


@integrity_app.command("import-results")
def integrity_import_results(
    db: DbUrl, folder: Path = typer.Argument(..., metavar="DIR", help="an imported log")
) -> None:
    """Apply a log's past inspection results in time order through the feedback policy, so the
    enterprises' standing is what it would have been (unknown enterprises are registered)."""
    need("sim", "pandas", "pyarrow")
    from engine.imported import read

    office = open_office(db)

    def apply():
        log = read(folder)
        done = log[log["inspected"] & log["violation"].notna()]
        return office.import_results(
            zip(
                done["enterprise_id"], done["declared_at"].dt.date, done["violation"].astype(bool), done["id"]
            ),
            str(folder),
        )

    _step(apply)


@integrity_app.command("export")
def integrity_export(
    db: DbUrl,
    csv_file: Path,
    on: str = typer.Option(None, "--on", help="date (default today)"),
    sign: Optional[Path] = typer.Option(
        None, "--sign", help="the office's Ed25519 key (`audit keygen`): also write <csv>.sig"
    ),
) -> None:
    """Write the enterprises customs holds dishonest or high-risk, for other agencies; with --sign,
    a signature the receiving agency checks with `integrity verify-bundle`."""
    from engine import bundle, checkpoint

    try:
        day = dt.date.fromisoformat(on) if on else dt.date.today()
    except ValueError:
        fail(f"--on: {on!r} is not a date such as 2026-06-01")
    try:
        key = checkpoint.load_signing_key(sign) if sign else None  # a bad key writes nothing
    except InputError as e:
        fail(str(e))
    count = open_office(db).integrity.export_discipline_list(csv_file, day)
    print(f"wrote {count} enterprises to {csv_file}")
    if key is not None:
        print(f"signed it: {bundle.sign_file(csv_file, key, day)}")


@integrity_app.command("verify-bundle")
def integrity_verify_bundle(
    csv_file: Path = typer.Argument(..., metavar="CSV", help="an export from customs"),
    public_key: Path = typer.Option(..., "--public-key", help="the office's public key, from customs"),
    signature: Optional[Path] = typer.Option(None, "--signature", help="default: <CSV>.sig"),
) -> None:
    """Check that an integrity export came from customs unaltered: its signature, made with the
    office's key, over the file's exact bytes and export date."""
    from engine import bundle, checkpoint

    try:
        sig = bundle.verify_file(csv_file, checkpoint.load_public_key(public_key), signature)
    except InputError as e:
        fail(str(e))
    print(f"verified: {csv_file} is customs' export of {sig.exported_on}, signed by key {sig.key_id}")


@app.command()
def serve(
    rules: Path = typer.Option(..., "--rules", help="rules YAML file (reloaded when it changes)"),
    db: str = typer.Option(
        ...,
        "--db",
        help="database for the integrity store, inspections and audit log: a "
        "SQLite file, sqlite:///…, or postgresql://user@host/db?schema=s",
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, help="service processes on one port (PostgreSQL only: SQLite takes one writer)"
    ),
    key_file: Path = typer.Option(..., "--key-file", help="the secret key for verifiable random draws"),
    api_keys: Path = typer.Option(..., "--api-keys", help="YAML: name, role and key_sha256 per API key"),
    roster: Optional[Path] = typer.Option(None, "--roster", help="inspectors and facilities, to dispatch"),
    enterprises: Optional[Path] = typer.Option(None, "--enterprises", help="CSV of enterprises to register"),
    ratio: Optional[float] = RATIO,
    expected_rate: Optional[float] = EXPECTED_RATE,
    policy_file: Optional[Path] = POLICY,
    model: Optional[Path] = MODEL,
    allow_new_enterprises: bool = typer.Option(
        False, "--allow-new-enterprises", help="decide declarations of unregistered enterprises too"
    ),
    checkpoint_key: Optional[Path] = typer.Option(
        None, "--checkpoint-key", help="audit signing key: write signed checkpoints while serving"
    ),
    checkpoint_dir: Optional[Path] = typer.Option(
        None, "--checkpoint-dir", help="folder for them, outside the database's disk if you can"
    ),
    checkpoint_every: int = typer.Option(
        1000, "--checkpoint-every", min=1, help="records between checkpoints"
    ),
    request_timeout: float = typer.Option(
        10.0,
        "--request-timeout",
        min=0.1,
        help="seconds a client has to send a whole request (slowloris guard)",
    ),
    max_connections: int = typer.Option(512, "--max-connections", min=1, help="open connections at most"),
    max_per_client: int = typer.Option(
        64, "--max-per-client", min=1, help="open connections at most from one client address"
    ),
    redispatch_every: float = typer.Option(
        60.0,
        "--redispatch-every",
        min=0,
        help="seconds between automatic tries of the waiting inspections (a shift starts, a facility "
        "frees); 0: only when a chief asks",
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    log_level: LogLevel = typer.Option(
        "info", "--log-level", help="info: a start-up line and one line per request; warning: problems only"
    ),
) -> None:
    """Serve the engine over HTTP (OpenAPI docs at /docs)."""
    from engine import database
    from engine.declarations import read_enterprises_csv
    from engine.office import Office

    need("service", "fastapi", "uvicorn")
    import uvicorn

    from engine.http import GuardedHttp
    from engine.runtime import Checkpointing
    from engine.service import configure_logging, create_app, to_environment

    if (checkpoint_key is None) != (checkpoint_dir is None):
        fail("--checkpoint-key and --checkpoint-dir go together")
    try:
        signing = Checkpointing(checkpoint_key, checkpoint_dir, checkpoint_every) if checkpoint_key else None
        if enterprises:
            office = Office(db, seal_key=seal_key())
            office.register(read_enterprises_csv(str(enterprises)).values())
            office.store.close()
        if workers > 1 and not database.is_postgres(db):
            raise InputError(
                "--workers above 1 needs a PostgreSQL database (SQLite takes one writer); "
                "README 'Running in production'"
            )
        score = learned_score(model)  # loaded and checked once; each worker of --workers N loads its own
        policy = selection_policy(policy_file, ratio, expected_rate, score)
        app_ = create_app(
            rules,
            db,
            key_file,
            api_keys,
            roster,
            policy,
            allow_new_enterprises,
            checkpoints=signing,
            redispatch_every=redispatch_every,
            score=score,
        )
    except InputError as e:
        fail(str(e))
    GuardedHttp.request_timeout, GuardedHttp.max_connections = request_timeout, max_connections
    GuardedHttp.max_per_client = max_per_client
    configure_logging(log_level.value)
    logging.getLogger("doublerandom.service").info(
        "doublerandom %s serving http://%s:%d: rules %s, database %s, %d worker(s)",
        __version__,
        host,
        port,
        app_.state.live.office.rules.version,
        redact(db),
        workers,
    )
    if workers == 1:
        uvicorn.run(app_, host=host, port=port, log_level="warning", access_log=False, http=GuardedHttp)
        return
    app_.state.live.close()  # checked here; each worker process opens its own
    to_environment(
        dict(
            rules=str(rules),
            db=db,
            draw_key=str(key_file),
            api_keys=str(api_keys),
            roster=str(roster) if roster else None,
            policy=policy.model_dump(mode="json"),
            model=str(model) if model else None,
            allow_new_enterprises=allow_new_enterprises,
            redispatch_every=redispatch_every,
            request_timeout=request_timeout,
            max_connections=max_connections,
            max_per_client=max_per_client,
            log_level=log_level.value,
            checkpoints=[str(checkpoint_key), str(checkpoint_dir), checkpoint_every]
            if checkpoint_key
            else None,
        )
    )
    uvicorn.run(
        "engine.service:app_from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http="engine.http:GuardedHttp",
    )


@app.command()
def apikey(
    keys_file: Path = typer.Argument(..., help="the API keys YAML file (created if missing)"),
    role: str = typer.Option(..., "--role", help=", ".join(ROLES)),
    name: str = typer.Option(..., "--name", help="who holds it; for an inspector, the inspector id"),
    site: Optional[str] = typer.Option(None, "--site", help="the customs office it acts for (default: all)"),
    agency: Optional[str] = typer.Option(
        None, "--agency", help="for --role agency: the agency it speaks for"
    ),
) -> None:
    """Make a new API key: its SHA-256 goes into the file, the key itself is printed once."""
    import secrets

    import yaml

    from engine.declarations import ID_RULE
    from engine.keys import create_private, replace_private

    need("service", "fastapi")
    from engine.apikeys import KeyEntry, key_digest, load_keys

    key = secrets.token_urlsafe(32)
    try:
        entry = KeyEntry(name=name, role=role, key_sha256=key_digest(key), site=site, agency=agency)
    except ValueError:
        fail(
            f"--role must be one of {', '.join(ROLES)}, --name, --site and --agency ids ({ID_RULE}), and "
            f"--agency given with --role agency only; got --role {role!r} --name {name!r} --site "
            f"{site!r} --agency {agency!r}"
        )
    try:
        entries = load_keys(keys_file) if keys_file.exists() else []
        text = yaml.safe_dump(
            {"keys": [e.model_dump(exclude_none=True) for e in entries + [entry]]}, sort_keys=False
        )
        (replace_private if entries else create_private)(keys_file, text)
    except InputError as e:
        fail(str(e))
    print(key)


def main() -> None:
    app()
