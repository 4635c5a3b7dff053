"""The append-only, hash-chained audit log: every automatic step, so responsibility can be traced.

Each record carries a sequence number, a time, a kind, a canonical-JSON payload, the previous
record's hash and its own: SHA-256 over all of them. Changing a byte, deleting or reordering records
breaks the chain at a sequence number `verify` reports. Triggers refuse UPDATE and DELETE (and on
PostgreSQL the application's role has no grant for them either; engine/schema.py, `db init-roles`),
so tampering needs deliberate work outside the engine. Appends happen inside a writer's transaction
(engine/database.py), so concurrent instances keep one chain: the sequence number is the primary
key, and writers take turns. What the chain alone cannot catch (a truncated tail, a rewrite
rehashed to the end) the signed checkpoints of `engine/checkpoint.py` do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterator

from engine.database import Database, SqliteDatabase

GENESIS = "0" * 64
KINDS = (
    "selection",
    "dispatch",
    "dispatch_wait",
    "manual_reassignment",
    "result",
    "transfer",
    "release",
    "recheck",
    "integrity_change",
    "rules_loaded",
    "enterprise_registered",
    "instruction",
    "suspension",
)


def canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(seq: int, at: str, kind: str, payload: str, prev_hash: str) -> str:
    text = "\x1f".join((str(seq), at, kind, payload, prev_hash))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


SEAL = "doublerandom-audit-seal"


def _seal_statement(first: int, last: int, digest: str, at: str) -> bytes:
    return "\x1f".join((SEAL, str(first), str(last), digest, at)).encode()


def _key_id(public: Any) -> str:
    from engine.checkpoint import key_id  # cryptography: only an office that seals needs it

    return key_id(public)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    broken_at: int | None = None
    reason: str = ""


class AuditLog:
    def __init__(self, db: Database | sqlite3.Connection):
        """On a prepared database (engine.schema); a bare SQLite connection is taken as it is."""
        self.db = db if isinstance(db, Database) else SqliteDatabase(db)
        self.last: tuple[int, str] | None = None  # the head this writer appended, while its transaction lasts
        self.first: int | None = None  # the first record this writer's transaction appended (for its seal)

    def exists(self) -> bool:
        return self.db.has_table("audit")

    def head(self) -> tuple[int, str] | None:
        """The last record's sequence number and hash: what a checkpoint signs and what is published."""
        row = self.db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else None

    def hash_at(self, seq: int) -> str | None:
        row = self.db.execute("SELECT hash FROM audit WHERE seq = ?", (seq,)).fetchone()
        return row[0] if row else None

    def append(self, kind: str, payload: dict[str, Any], at: dt.datetime | None = None) -> int:
        """Add one record; call inside a transaction so it commits with the step it records."""
        if kind not in KINDS:
            raise ValueError(f"unknown audit record kind {kind!r}")
        last = self.last or self.head()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        when = (at or dt.datetime.now(dt.timezone.utc)).isoformat()
        body = canonical(payload)
        digest = record_hash(seq, when, kind, body, prev)
        self.db.execute(
            "INSERT INTO audit (seq, at, kind, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
            (seq, when, kind, body, prev, digest),
        )
        self.last = (seq, digest)  # a stale one cannot fork the chain: seq is the primary key
        if self.first is None:
            self.first = seq
        return seq

    def seal(self, key: Any) -> None:
        """At the end of a write transaction: sign the records it appended (first..last, the last's
        hash, the time) with the office's key, an Ed25519 private key held outside the database, in
        the same transaction. Every writer holding the key seals exactly what it wrote, so a record
        appended by anything else (the file's holder, a role with INSERT alone) lies in no sealed
        range, even when a sealed one follows it, and `seal_problems` names it."""
        if self.first is None:
            return
        head = self.head()
        if head is None or head[0] < self.first:  # everything it appended was rolled back
            return
        at = dt.datetime.now(dt.timezone.utc).isoformat()
        signature = key.sign(_seal_statement(self.first, head[0], head[1], at)).hex()
        self.db.execute(
            "INSERT INTO audit_seals (seq, first, hash, at, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)",
            (head[0], self.first, head[1], at, _key_id(key.public_key()), signature),
        )

    def sealed(self) -> bool:
        """Whether this office seals its log (it has at least one seal)."""
        return self.db.has_table("audit_seals") and bool(
            self.db.execute("SELECT 1 FROM audit_seals LIMIT 1").fetchone()
        )

    def seal_problems(self, public: Any) -> list[str]:
        """Every seal signed by the office's key over records on the chain, and every record from the
        first sealed one on inside a sealed range: one outside was appended by something that does
        not hold the key."""
        from engine.checkpoint import valid_signature  # cryptography: only sealed offices are checked

        problems: list[str] = []
        rows = self.db.execute("SELECT first, seq, hash, at, key_id, signature FROM audit_seals ORDER BY seq")
        covered_to, start = 0, None
        for first, last, digest, at, key, signature in rows.fetchall():
            start = first if start is None else start
            if not valid_signature(public, key, signature, _seal_statement(first, last, digest, at)):
                problems.append(
                    f"seal of records {first} to {last}: the signature is not valid for this public key"
                )
            elif self.hash_at(last) != digest:
                problems.append(
                    f"seal of records {first} to {last}: record {last} differs from the one sealed"
                )
            if covered_to and first > covered_to + 1:
                problems.append(
                    f"records {covered_to + 1} to {first - 1} are in no seal: appended by a writer "
                    "without the office's signing key"
                )
            covered_to = max(covered_to, last)
        head = self.head()
        if start is None:
            return [
                "no seals: the office does not seal its log (serve --checkpoint-key, or "
                "DOUBLERANDOM_SEAL_KEY for the step commands)"
            ]
        if head is not None and head[0] > covered_to:
            problems.append(
                f"records {covered_to + 1} to {head[0]} are in no seal: appended by a writer "
                "without the office's signing key"
            )
        return problems

    def records(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        query = (
            "SELECT seq, at, kind, payload FROM audit" + (" WHERE kind = ?" if kind else "") + " ORDER BY seq"
        )
        for seq, at, k, payload in self.db.execute(query, (kind,) if kind else ()):
            yield {"seq": seq, "at": at, "kind": k, "payload": json.loads(payload)}

    def records_after(self, kind: str, since: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` records of one kind after sequence number `since`, in order: a reader's cursor."""
        rows = self.db.execute(
            "SELECT seq, at, payload FROM audit WHERE kind = ? AND seq > ? ORDER BY seq LIMIT ?",
            (kind, since, limit),
        )
        return [{"seq": seq, "at": at, **json.loads(payload)} for seq, at, payload in rows]

    def verify(self) -> Verdict:
        """Walk the chain from the first record; report the first sequence number that breaks it."""
        expected_seq, prev, count = 1, GENESIS, 0
        rows = self.db.execute("SELECT seq, at, kind, payload, prev_hash, hash FROM audit ORDER BY seq")
        for seq, at, kind, payload, prev_hash, stored in rows:
            if seq != expected_seq:
                return Verdict(
                    False, count, expected_seq, f"record {expected_seq} is missing (next is {seq})"
                )
            if prev_hash != prev:
                return Verdict(False, count, seq, "its previous-hash does not match the record before it")
            if record_hash(seq, at, kind, payload, prev_hash) != stored:
                return Verdict(False, count, seq, "its content does not match its hash")
            expected_seq, prev, count = seq + 1, stored, count + 1
        return Verdict(True, count)
