"""The SQLite file the live engine keeps its integrity store, inspections and audit log in.

One connection per process, in autocommit mode, with explicit `BEGIN IMMEDIATE` transactions: each
step (decision, dispatch, result, release) is written whole or not at all, and a step is reported
only after its commit. WAL with synchronous=FULL survives a killed process and a power cut.
"""

from __future__ import annotations

import itertools
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from engine.errors import InputError


SCHEMA_VERSION = 2  # PRAGMA user_version of the files this code writes; 0 is the first release


def connect(path: str | Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        if str(path) != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as err:
        raise InputError(f"{path}: cannot open as a doublerandom database: {err}") from None
    conn.row_factory = sqlite3.Row
    check_version(conn, path)
    return conn


def connect_read_only(path: str | Path) -> sqlite3.Connection:
    """For verifying: no table created, no journal mode switched. A file in a read-only place (a
    copy handed to an auditor) is opened as immutable when SQLite cannot open it read-only."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such database")
    last: Exception | None = None
    for query in ("mode=ro", "immutable=1"):
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            check_version(conn, path)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as err:
            last = err
    raise InputError(f"{path}: cannot open read-only: {last}")


def check_version(conn: sqlite3.Connection, path: str | Path) -> int:
    """The file's schema version; a file from a newer doublerandom is refused, not half-understood."""
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as err:
        raise InputError(f"{path}: cannot open as a doublerandom database: {err}") from None
    if version > SCHEMA_VERSION:
        raise InputError(f"{path}: made by a newer doublerandom (schema {version}; this version reads up to "
                         f"{SCHEMA_VERSION}); upgrade doublerandom to open it")
    return version


def prepare(conn: sqlite3.Connection, schema: str, migrations: dict[int, list[str]], owner: str) -> None:
    """Create the tables of a new file, or bring an older file's tables up to SCHEMA_VERSION by the
    migrations numbered above its version (when its `owner` table exists); then stamp the version.
    `schema` holds plain statements (no triggers), separated by ';'."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    existing = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (owner,)).fetchone()
    with transaction(conn):
        if existing and version < SCHEMA_VERSION:
            for number in sorted(migrations):
                if number > version:
                    for statement in migrations[number]:
                        conn.execute(statement)
        for statement in schema.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """All writes inside commit together or roll back together. Inside another transaction it is a
    savepoint: its writes roll back alone if it fails, and commit with the outer one."""
    if conn.in_transaction:
        name = f"step{next(_savepoints)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_savepoints = itertools.count(1)
