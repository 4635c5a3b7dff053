"""Signed checkpoints of the audit log: what someone holding the database file cannot forge.

The hash chain alone proves only that the records agree with each other: whoever holds the file can
truncate it, or change a record and recompute every hash after it, and the chain still verifies.
A checkpoint is a statement "record <seq> has hash <head>, seen at <time>", signed with an Ed25519
key the database never holds, and kept outside it (another machine, a mail to the auditor, a
transparency log). `audit verify` then checks that each checkpoint's head is on the chain:
truncating below it, or rewriting any record up to it, is caught. A rewrite of the records after the
newest checkpoint can only be caught by the next one, so checkpoints should be frequent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.errors import InputError
from engine.keys import create_private

STATEMENT = "doublerandom-audit-checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head: str
    at: str
    key_id: str
    signature: str  # hex

    def statement(self) -> bytes:
        return "\x1f".join((STATEMENT, str(self.seq), self.head, self.at, self.key_id)).encode()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def new_signing_key(path: str | Path) -> Path:
    """Write a new private signing key (0600) and its public key beside it (`<path>.pub`)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = Path(f"{path}.pub")
    if public.exists():
        raise InputError(f"{public}: exists already; refusing to overwrite a public key")
    create_private(path, pem.decode())
    public.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public


def load_signing_key(path: str | Path) -> Ed25519PrivateKey:
    key = _load(path, serialization.load_pem_private_key, "a private audit signing key", password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path}: not an Ed25519 key; make one with `doublerandom audit keygen`")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    key = _load(path, serialization.load_pem_public_key, "a public audit key")
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{path}: not an Ed25519 public key")
    return key


def _load(path: str | Path, reader, what: str, **kwargs):
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read {what}: {err.strerror}") from None
    try:
        return reader(data, **kwargs)
    except (ValueError, TypeError):
        raise InputError(f"{path}: not {what} (PEM)") from None


def sign(seq: int, head: str, key: Ed25519PrivateKey, at: dt.datetime | None = None) -> Checkpoint:
    when = (at or dt.datetime.now(dt.timezone.utc)).isoformat()
    unsigned = Checkpoint(seq, head, when, key_id(key.public_key()), "")
    return Checkpoint(seq, head, when, unsigned.key_id, key.sign(unsigned.statement()).hex())


def write(checkpoint: Checkpoint, out: str | Path) -> Path:
    """Into a folder as checkpoint-<seq>.json, or to the file named; atomically (a temporary file
    beside it, flushed to disk, then renamed over), so a crash or a full disk never leaves half a
    checkpoint for `audit verify --checkpoints` to choke on."""
    out = Path(out)
    target = out / f"checkpoint-{checkpoint.seq:012d}.json" if out.is_dir() else out
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as file:
            file.write(checkpoint.to_json() + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, target)
        _sync_folder(target.parent)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise InputError(f"{target.name}: cannot write checkpoint: {err.strerror}") from None
    return target


def _sync_folder(folder: Path) -> None:
    """The rename is durable once the folder's entry is on disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: str | Path) -> Checkpoint:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        checkpoint = Checkpoint(
            seq=int(raw["seq"]),
            head=str(raw["head"]),
            at=str(raw["at"]),
            key_id=str(raw["key_id"]),
            signature=str(raw["signature"]),
        )
    except OSError as err:
        raise InputError(f"{path}: cannot read checkpoint: {err.strerror}") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InputError(f"{path}: not a checkpoint (JSON with seq, head, at, key_id, signature)") from None
    return checkpoint


def read_folder(folder: str | Path) -> tuple[list[tuple[Path, Checkpoint]], list[str]]:
    """The folder's checkpoints, and a problem for each file that is not one (half-written by a
    crash, say): one bad file must not stop the others from being checked."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of checkpoints")
    found, unreadable = [], []
    for path in sorted(folder.glob("checkpoint-*.json")):
        try:
            found.append((path, read(path)))
        except InputError as err:
            unreadable.append(str(err))
    return found, unreadable


def contradiction(checkpoint: Checkpoint, public: Ed25519PublicKey, log) -> str:
    """Why the log contradicts a checkpoint ('' when it does not): a forged or foreign signature,
    a log that ends before the signed record (truncated), or a signed record rewritten."""
    if not signed_by(checkpoint, public):
        return "the signature is not valid for this public key"
    stored = log.hash_at(checkpoint.seq)
    if stored is None:
        last = log.head()
        return (
            f"signed record {checkpoint.seq} (at {checkpoint.at}) is missing: the log ends at "
            f"{last[0] if last else 0} (truncated)"
        )
    if stored != checkpoint.head:
        return f"record {checkpoint.seq} differs from the one signed at {checkpoint.at} (rewritten)"
    return ""


def signed_by(checkpoint: Checkpoint, public: Ed25519PublicKey) -> bool:
    return valid_signature(public, checkpoint.key_id, checkpoint.signature, checkpoint.statement())


def valid_signature(public: Ed25519PublicKey, claimed_key_id: str, signature: str, statement: bytes) -> bool:
    """Whether `signature` (hex) is this public key's over `statement`, and names this key."""
    if claimed_key_id != key_id(public):
        return False
    try:
        public.verify(bytes.fromhex(signature), statement)
    except (InvalidSignature, ValueError):
        return False
    return True
