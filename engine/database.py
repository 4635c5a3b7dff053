"""The database the live engine keeps its records in, chosen by a URL: SQLite (the embedded
default: a file name or `sqlite:///office.db`) or PostgreSQL (`postgresql://user@host/db?schema=s`).

Both speak through one small interface (`Database`): `execute` with `?` placeholders, rows that
answer by position and by column name, `transaction()` (nested: a savepoint), `has_table`, and the
one SQL difference the stores need, `json()` (a field of a JSON text column). The schema and its
versions are in `engine/schema.py`.

Writers take turns: SQLite by `BEGIN IMMEDIATE`, PostgreSQL by a transaction-scoped advisory lock
taken first in every write transaction (`transaction(write=True)`). The audit log is one hash chain,
a single total order, so the steps that append to it cannot interleave anyway; what several
PostgreSQL instances share out is everything around the transaction (HTTP, validation, answers,
reads). SQLite runs WAL with synchronous=FULL, which survives a killed process and a power cut.
"""

from __future__ import annotations

import functools
import itertools
import re
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from engine.errors import InputError, Unavailable, redact

_savepoints = itertools.count(1)

# A writer waits at most TURN_WAIT seconds for its turn, then answers "unavailable, send it again"
# (a stuck or stopped peer must not stop every writer); on PostgreSQL a statement of a write may run
# STATEMENT_LIMIT seconds, and a write transaction left idle IDLE_LIMIT seconds (its process stopped
# or hung) is ended by the server, which frees the turn for the others.
TURN_WAIT, STATEMENT_LIMIT, IDLE_LIMIT = 5, 30, 10
_BUSY = (
    f"the office's turn to write did not come within {TURN_WAIT} s: another instance or connection "
    "holds it (a stuck process?); send it again"
)


class Database:
    """What the stores need of a connection; `SqliteDatabase` and `PostgresDatabase` provide it."""

    dialect: str
    url: str

    def execute(self, sql: str, params: tuple | list = ()) -> Any: ...
    def executemany(self, sql: str, rows: list) -> None: ...
    def executescript(self, script: str) -> None: ...
    def transaction(self, write: bool = True): ...
    def has_table(self, name: str) -> bool: ...
    def json(self, column: str, path: str) -> str: ...
    def close(self) -> None: ...

    def patient(self) -> None:
        """Lift the statement and idle limits for the rest of this write transaction (a migration, a
        copy: long statements, and long reads of the source between them)."""


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, url: str = ""):
        conn.row_factory = sqlite3.Row
        self.conn, self.url = conn, url

    def execute(self, sql: str, params: tuple | list = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: list) -> None:
        self.conn.executemany(sql, rows)

    def executescript(self, script: str) -> None:
        self.conn.executescript(script)

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[SqliteDatabase]:
        """All writes inside commit together or roll back together. Inside another transaction it is
        a savepoint: its writes roll back alone if it fails, and commit with the outer one."""
        conn = self.conn
        if conn.in_transaction:
            name = f"step{next(_savepoints)}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield self
            except BaseException:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
                raise
            conn.execute(f"RELEASE {name}")
            return
        try:
            conn.execute("BEGIN IMMEDIATE")  # concurrent writers queue here, for the busy timeout at most
        except sqlite3.OperationalError as err:
            if "locked" in str(err) or "busy" in str(err):
                raise Unavailable(_BUSY) from None
            raise
        try:
            yield self
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def has_table(self, name: str) -> bool:
        return (
            self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
            ).fetchone()
            is not None
        )

    def json(self, column: str, path: str) -> str:
        return f"json_extract({column}, '$.{path}')"

    def close(self) -> None:
        self.conn.close()


class Row(tuple):
    """A PostgreSQL row that answers by position and by column name, as sqlite3.Row does."""

    names: tuple[str, ...] = ()

    def __getitem__(self, key):
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names.index(key))
        return tuple.__getitem__(self, key)

    def keys(self) -> tuple[str, ...]:
        return self.names


def _row_factory(cursor):
    result = cursor.pgresult  # its field names, not `description`: that builds column objects each time
    kind = _row_kind(tuple(result.fname(i).decode() for i in range(result.nfields)) if result else ())
    return lambda values: kind(values)


@functools.lru_cache(maxsize=256)
def _row_kind(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"names": names})


class Result:
    """A statement's rows, fetched whole (so the connection goes back to its pool at once)."""

    def __init__(self, rows: list, rowcount: int):
        self.rows, self.rowcount = rows, rowcount

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list:
        return self.rows

    def __iter__(self):
        return iter(self.rows)


class PostgresDatabase(Database):
    """A psycopg connection pool on one database and schema. A transaction holds one connection
    from the pool for its duration (per thread); a statement outside one borrows a connection for
    itself. A broken connection (a restarted server) is replaced by the pool, not fatal."""

    dialect = "postgresql"

    def __init__(self, url: str, read_only: bool = False, size: int = 2):
        import psycopg
        from psycopg_pool import ConnectionPool, PoolTimeout

        self.url = redact(url)  # for messages; the password stays in the pool's connection string only
        conninfo, self.schema = _split_schema(url)
        self._local = threading.local()
        # named, so an operator (and a test) can tell an office's connections in pg_stat_activity
        settings = (
            {}
            if "application_name" in url
            else {"application_name": f"doublerandom:{self.schema or 'public'}"}
        )
        if read_only:
            settings["options"] = "-c default_transaction_read_only=on"

        def configure(conn) -> None:
            conn.autocommit = True
            conn.row_factory = _row_factory
            conn.reused_cursor = conn.cursor()
            if self.schema:
                conn.execute(f"SET search_path TO {identifier(self.schema)}")

        try:
            psycopg.connect(conninfo, connect_timeout=10).close()  # fails at once with the server's reason
            self.pool = ConnectionPool(
                conninfo,
                min_size=1,
                max_size=size,
                configure=configure,
                open=True,
                kwargs=settings,
                timeout=10,
                name="doublerandom",
            )
            self.pool.wait(timeout=10)
        except Exception as err:  # psycopg's errors, or the pool's timeout
            raise InputError(f"{redact(url)}: cannot connect to PostgreSQL: {_reason(err)}") from None
        self.lost = (psycopg.OperationalError, PoolTimeout)
        self.busy = (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled)
        self.refused = psycopg.errors.InsufficientPrivilege

    def _current(self):
        return getattr(self._local, "conn", None)

    def patient(self) -> None:
        self.execute("SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0")

    @contextmanager
    def _answering(self) -> Iterator[None]:
        """A lost connection is one clear error, and the pool replaces the connection; what the
        transaction held is rolled back by the server."""
        try:
            yield
        except self.busy:
            raise Unavailable(f"{self.url}: {_BUSY}") from None
        except self.lost as err:
            raise Unavailable(
                f"{self.url}: the database did not answer ({_reason(err)}); "
                "send it again (a declaration already decided gets its first decision back)"
            ) from None
        except self.refused as err:  # the wrong role for the step, e.g. the app role running db upgrade
            raise InputError(
                f"{self.url}: {_reason(err)} (README 'Running in production': which role does what)"
            ) from None

    def execute(self, sql: str, params: tuple | list = ()) -> Result:
        if params:
            sql = sql.replace("%", "%%").replace("?", "%s")  # the stores write SQLite's placeholders
        conn = self._current()
        with self._answering():
            if conn is not None:
                return _run(conn, sql, params)
            with self.pool.connection() as conn:
                return _run(conn, sql, params)

    def executemany(self, sql: str, rows: list) -> None:
        sql = sql.replace("%", "%%").replace("?", "%s")
        conn = self._current()
        if conn is None:
            raise RuntimeError("executemany belongs in a transaction")
        with self._answering(), conn.cursor() as cur:
            cur.executemany(sql, rows)

    def executescript(self, script: str) -> None:
        self.execute(script)  # psycopg sends a parameterless text as one multi-statement query

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[PostgresDatabase]:
        conn = self._current()
        if conn is not None:  # nested: psycopg makes it a savepoint
            with conn.transaction():
                yield self
            return
        with self._answering(), self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    if write:  # writers take turns, as on SQLite: the audit chain is one total order
                        conn.execute(_TURN)
                    yield self
            finally:
                self._local.conn = None

    def has_table(self, name: str) -> bool:
        return self.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()[0]

    def json(self, column: str, path: str) -> str:
        return f"({column}::jsonb #>> '{{{','.join(path.split('.'))}}}')"

    def close(self) -> None:
        self.pool.close()


_TURN = (
    f"SET LOCAL lock_timeout = '{TURN_WAIT}s'; SET LOCAL statement_timeout = '{STATEMENT_LIMIT}s'; "
    f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_LIMIT}s'; "
    "SELECT pg_advisory_xact_lock(hashtext('doublerandom:' || current_schema()))"
)


def _run(conn, sql: str, params) -> Result:
    cur = conn.reused_cursor  # one cursor per connection, reused: making one per statement costs more
    cur.execute(sql, params or None)
    return Result(cur.fetchall() if cur.pgresult is not None and cur.pgresult.nfields else [], cur.rowcount)


def identifier(name: str) -> str:
    """A schema or role name, checked and quoted for the SQL text (they cannot be parameters)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise InputError(f"schema {name!r}: use lower-case letters, digits and _ (at most 63)")
    return f'"{name}"'


def _split_schema(url: str) -> tuple[str, str | None]:
    """The `schema` query parameter is ours (psycopg does not know it): split it off the URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = next((v for k, v in query if k == "schema"), None)
    if schema is not None:
        identifier(schema)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def is_postgres(url: str | Path) -> bool:
    return str(url).startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str | Path) -> Path:
    text = str(url)
    return Path(text[len("sqlite:///") :] if text.startswith("sqlite:///") else text)


def open_database(url: str | Path, read_only: bool = False) -> Database:
    """The database a URL names; not prepared (engine.schema does that). `read_only` opens it for
    verifying: nothing is created or written."""
    if is_postgres(url):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None or importlib.util.find_spec("psycopg_pool") is None:
            raise InputError(
                f"{redact(str(url))}: PostgreSQL needs the 'postgres' extra: "
                "pip install 'doublerandom[postgres]'"
            )
        return PostgresDatabase(str(url), read_only=read_only)
    if str(url).startswith("sqlite://") and not str(url).startswith("sqlite:///"):
        raise InputError(f"{url}: a SQLite URL is sqlite:///path/to/office.db")
    path = sqlite_path(url)
    return SqliteDatabase(connect_read_only(path) if read_only else connect(path), str(path))


def connect(path: str | Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=TURN_WAIT)
        if str(path) != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as err:
        raise InputError(f"{path}: cannot open as a doublerandom database: {err}") from None
    conn.row_factory = sqlite3.Row
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
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.DatabaseError as err:
            last = err
    raise InputError(f"{path}: cannot open read-only: {last}")
