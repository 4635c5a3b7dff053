"""The append-only, hash-chained audit log: every automatic step, so responsibility can be traced.

Each record carries a sequence number, a time, a kind, a canonical-JSON payload, the previous
record's hash and its own: SHA-256 over all of them. Changing a byte, deleting or reordering records
breaks the chain at a sequence number `verify` reports. SQLite triggers refuse UPDATE, DELETE and an
INSERT over an existing record (`INSERT OR REPLACE` deletes without firing the DELETE trigger), so
tampering needs deliberate work outside the engine. What the chain alone cannot catch (a truncated
tail, a rewrite rehashed to the end) the signed checkpoints of `engine/checkpoint.py` do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_replace BEFORE INSERT ON audit
WHEN EXISTS (SELECT 1 FROM audit WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE INDEX IF NOT EXISTS audit_by_kind ON audit (kind);
-- what a declaration's history reads (GET /declarations/{id}); without them each GET scans the log
CREATE INDEX IF NOT EXISTS audit_by_decision ON audit (json_extract(payload, '$.decision.declaration_id'));
CREATE INDEX IF NOT EXISTS audit_by_inspection ON audit (json_extract(payload, '$.inspection'));
CREATE INDEX IF NOT EXISTS audit_by_declaration ON audit (json_extract(payload, '$.declaration'));
"""
GENESIS = "0" * 64
KINDS = ("selection", "dispatch", "dispatch_wait", "manual_reassignment", "result", "transfer",
         "release", "recheck", "integrity_change", "rules_loaded", "enterprise_registered", "instruction")


def canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(seq: int, at: str, kind: str, payload: str, prev_hash: str) -> str:
    text = "\x1f".join((str(seq), at, kind, payload, prev_hash))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    broken_at: int | None = None
    reason: str = ""


class AuditLog:
    def __init__(self, conn: sqlite3.Connection, create: bool = True):
        """`create=False` for reading only (verify, replay): nothing is written to the file."""
        self.conn = conn
        if create:
            conn.executescript(SCHEMA)

    def exists(self) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").fetchone() \
            is not None

    def head(self) -> tuple[int, str] | None:
        """The last record's sequence number and hash: what a checkpoint signs and what is published."""
        row = self.conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else None

    def hash_at(self, seq: int) -> str | None:
        row = self.conn.execute("SELECT hash FROM audit WHERE seq = ?", (seq,)).fetchone()
        return row[0] if row else None

    def append(self, kind: str, payload: dict[str, Any], at: dt.datetime | None = None) -> int:
        """Add one record; call inside a transaction so it commits with the step it records."""
        if kind not in KINDS:
            raise ValueError(f"unknown audit record kind {kind!r}")
        last = self.conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        when = (at or dt.datetime.now(dt.timezone.utc)).isoformat()
        body = canonical(payload)
        self.conn.execute("INSERT INTO audit (seq, at, kind, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                          (seq, when, kind, body, prev, record_hash(seq, when, kind, body, prev)))
        return seq

    def records(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        query = "SELECT seq, at, kind, payload FROM audit" + (" WHERE kind = ?" if kind else "") + " ORDER BY seq"
        for seq, at, k, payload in self.conn.execute(query, (kind,) if kind else ()):
            yield {"seq": seq, "at": at, "kind": k, "payload": json.loads(payload)}

    def verify(self) -> Verdict:
        """Walk the chain from the first record; report the first sequence number that breaks it."""
        expected_seq, prev, count = 1, GENESIS, 0
        rows = self.conn.execute("SELECT seq, at, kind, payload, prev_hash, hash FROM audit ORDER BY seq")
        for seq, at, kind, payload, prev_hash, stored in rows:
            if seq != expected_seq:
                return Verdict(False, count, expected_seq, f"record {expected_seq} is missing (next is {seq})")
            if prev_hash != prev:
                return Verdict(False, count, seq, "its previous-hash does not match the record before it")
            if record_hash(seq, at, kind, payload, prev_hash) != stored:
                return Verdict(False, count, seq, "its content does not match its hash")
            expected_seq, prev, count = seq + 1, stored, count + 1
        return Verdict(True, count)
