"""A signed export for another agency: the integrity list customs sends, and proof it came unaltered.

`integrity export --sign KEY` writes the CSV and beside it `<csv>.sig`: the statement "a file of
<bytes> bytes with SHA-256 <digest>, exported on <date>, signed by key <key id>", signed with the
office's Ed25519 key (the audit signing key, `audit keygen`). The receiving agency checks it with the
office's public key, obtained from customs out of band and never from the bundle itself:
`integrity verify-bundle CSV --public-key PUB`. A changed byte of the CSV, a changed date, or a
signature made with another key is refused with one error. The file's name is not signed: an agency
may file it under any name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.checkpoint import key_id
from engine.errors import InputError

STATEMENT = "doublerandom-integrity-export"


@dataclass(frozen=True)
class Signature:
    bytes: int
    sha256: str
    exported_on: str
    key_id: str
    signature: str  # hex

    def statement(self) -> bytes:
        return "\x1f".join((STATEMENT, str(self.bytes), self.sha256, self.exported_on, self.key_id)).encode()


def signature_path(path: str | Path) -> Path:
    return Path(f"{path}.sig")


def sign_file(path: str | Path, key: Ed25519PrivateKey, exported_on: dt.date) -> Path:
    """Write `<path>.sig` for the file as it is now."""
    data = Path(path).read_bytes()
    unsigned = Signature(
        len(data), hashlib.sha256(data).hexdigest(), exported_on.isoformat(), key_id(key.public_key()), ""
    )
    signed = Signature(**{**asdict(unsigned), "signature": key.sign(unsigned.statement()).hex()})
    out = signature_path(path)
    out.write_text(json.dumps(asdict(signed), sort_keys=True) + "\n", encoding="utf-8")
    return out


def verify_file(path: str | Path, public: Ed25519PublicKey, signature: str | Path | None = None) -> Signature:
    """The file's signature, checked against the office's public key; one InputError naming what is
    wrong otherwise."""
    sig_path = Path(signature) if signature else signature_path(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror}") from None
    try:
        raw = json.loads(sig_path.read_text(encoding="utf-8"))
        sig = Signature(
            bytes=int(raw["bytes"]),
            sha256=str(raw["sha256"]),
            exported_on=str(raw["exported_on"]),
            key_id=str(raw["key_id"]),
            signature=str(raw["signature"]),
        )
    except OSError as err:
        raise InputError(f"{sig_path}: cannot read the signature: {err.strerror}") from None
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{sig_path}: not a signature of an integrity export") from None
    if sig.key_id != key_id(public):
        raise InputError(
            f"{path}: signed by key {sig.key_id}, not by the public key given ({key_id(public)})"
        )
    try:
        public.verify(bytes.fromhex(sig.signature), sig.statement())
    except (InvalidSignature, ValueError):
        raise InputError(f"{sig_path}: the signature does not match its statement (altered)") from None
    if len(data) != sig.bytes or hashlib.sha256(data).hexdigest() != sig.sha256:
        raise InputError(f"{path}: the file is not the one customs signed (altered after export)")
    return sig
