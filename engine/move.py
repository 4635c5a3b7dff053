"""Moving an office from one database to another (SQLite to PostgreSQL, or back), verified.

The source's audit chain must verify before anything is copied; the destination must be empty. Every
table is copied row for row in its own order (the audit log record for record, hashes and all) in
one transaction, so a failed copy leaves the destination as it was. Afterwards the destination's
chain is walked again, its head must equal the source's, every table must hold as many rows, and the
state tables must reconcile with the log (engine/reconciliation.py).
"""

from __future__ import annotations

import json

from engine import schema
from engine.audit import AuditLog
from engine.database import Database, open_database
from engine.declarations import unstorable
from engine.errors import InputError
from engine.reconciliation import reconcile

ORDER = {"declarations": "rowid", "audit": "seq", "audit_seals": "seq"}  # the rest by id
CHUNK = 5_000


def copy(source_url: str, destination_url: str) -> dict:
    source = open_database(source_url, read_only=True)
    try:
        head = _check_source(source)
        destination = open_database(destination_url)
        try:
            schema.prepare(destination)
            _check_empty(destination)
            with destination.transaction():  # checked before it commits: a copy that fails leaves nothing
                destination.patient()
                counts = _copy_tables(source, destination)
                _check_copy(destination, head, counts)
        finally:
            destination.close()
    finally:
        source.close()
    return {"rows": counts, "audit_head": {"seq": head[0], "hash": head[1]}}


def _check_source(source: Database) -> tuple[int, str]:
    found = schema.refuse_newer(source)
    if found != schema.VERSION:
        raise InputError(f"{source.url}: schema {found}; upgrade it first (`doublerandom db upgrade`)")
    log = AuditLog(source)
    verdict = log.verify()
    if not verdict.ok:
        raise InputError(
            f"{source.url}: audit log broken at record {verdict.broken_at}: {verdict.reason}; nothing copied"
        )
    head = log.head()
    if head is None:
        raise InputError(f"{source.url}: no audit log to copy")
    return head


def _check_empty(destination: Database) -> None:
    for table in schema.TABLES:
        if destination.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
            raise InputError(
                f"{destination.url}: table {table} is not empty; copy into a new database or schema"
            )


def _copy_tables(source: Database, destination: Database) -> dict[str, int]:
    counts = {}
    for table in schema.TABLES:
        rows = source.execute(f"SELECT * FROM {table} ORDER BY {ORDER.get(table, 'id')}").fetchall()
        counts[table] = len(rows)
        if not rows:
            continue
        columns = [c for c in rows[0].keys() if c != "rowid"]  # the destination numbers its own order
        _check_storable(destination, table, rows, columns)
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        for start in range(0, len(rows), CHUNK):
            destination.executemany(
                insert, [tuple(r[c] for c in columns) for r in rows[start : start + CHUNK]]
            )
    if destination.dialect == "postgresql":  # ids copied as they were: the identity carries on after them
        destination.execute(
            "SELECT setval(pg_get_serial_sequence('enterprise_events', 'id'), "
            "greatest((SELECT max(id) FROM enterprise_events), 1))"
        )
    return counts


def _check_storable(destination: Database, table: str, rows: list, columns: list[str]) -> None:
    """A row PostgreSQL cannot hold (a NUL in a text, from before such text was refused) is named,
    and nothing is copied, instead of the copy dying half-way with the driver's error."""
    for row in rows:
        for column in columns:
            value = row[column]
            texts = _strings(json.loads(value)) if table == "audit" and column == "payload" else [value]
            for text in texts:
                problem = isinstance(text, str) and unstorable(text)
                if problem:
                    raise InputError(
                        f"{destination.url}: cannot copy {table} row {row[0]!r}: its {column} "
                        f"{problem}; nothing copied (mend the source by hand, or keep it on SQLite)"
                    )


def _strings(value) -> list:
    """Every string inside a JSON value, keys too."""
    if isinstance(value, dict):
        return [*value.keys(), *(s for v in value.values() for s in _strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value]


def _check_copy(destination: Database, head: tuple[int, str], counts: dict[str, int]) -> None:
    log = AuditLog(destination)
    verdict = log.verify()
    if not verdict.ok or log.head() != head:
        raise InputError(
            f"{destination.url}: the copied audit log does not verify ({verdict.reason or 'head differs'})"
        )
    for table, count in counts.items():
        if destination.execute(f"SELECT count(*) FROM {table}").fetchone()[0] != count:
            raise InputError(f"{destination.url}: table {table} does not hold the {count} rows copied")
    differences = reconcile(log)
    if differences:
        raise InputError(
            f"{destination.url}: copied, but {len(differences)} rows differ from the log: {differences[0]}"
        )
