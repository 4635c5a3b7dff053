"""The SQLite file the live engine keeps its integrity store, inspections and audit log in.

One connection per process, in autocommit mode, with explicit `BEGIN IMMEDIATE` transactions: each
step (decision, dispatch, result, release) is written whole or not at all, and a step is reported
only after its commit. WAL with synchronous=FULL survives a killed process and a power cut.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from engine.errors import InputError


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
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """All writes inside commit together or roll back together (nesting joins the outer one)."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
