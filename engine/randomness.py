"""Where the random draws come from.

Two sources with one interface, `uniform(declaration_id, purpose) -> float in [0, 1)`:
- `KeyedDraws` for live use: HMAC-SHA256 of the declaration id under a secret key. The same
  declaration always gets the same draw, an auditor holding the key recomputes it, and a declarant
  without the key cannot predict it (so cannot time or split declarations to dodge it).
- `SeededDraws` for simulation and tests: one numpy Generator per purpose, derived from one seed,
  so two runs sharing a seed share their random numbers stream by stream (common random numbers).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from engine.errors import InputError

if TYPE_CHECKING:  # the live path draws with hmac alone: numpy loads only for seeded (simulated) streams
    import numpy as np

# Stream numbers are part of the reproducibility contract: never renumber, only append.
STREAMS = {
    "random": 0,
    "rule_sampling": 1,
    "dispatch": 2,
    "recheck": 3,
    "credit": 4,
    "capacity": 5,
    # simulation only: the world the engine acts in
    "population": 10,
    "arrivals": 11,
    "goods": 12,
    "violation": 13,
    "instruction": 14,
    "service": 15,
    "detection": 16,
    "release": 17,
    "roster": 18,
    "turnover": 19,
    "site": 20,
}


class Draws(Protocol):
    def uniform(self, declaration_id: str, purpose: str) -> float: ...

    @property
    def verifiable(self) -> bool:
        """True when an auditor can recompute a draw from the declaration id alone."""


class KeyedDraws:
    """Unpredictable without the key, reproducible with it."""

    verifiable = True

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise InputError(
                f"the draw key is {len(key)} bytes; it must be at least 16 bytes "
                "(make one with `doublerandom keygen`)"
            )
        self._key = key

    @classmethod
    def from_file(cls, path: str | Path) -> KeyedDraws:
        try:
            key = bytes.fromhex(Path(path).read_bytes().decode("ascii").strip())
        except OSError as err:
            raise InputError(f"{path}: cannot read key file: {err.strerror}") from None
        except ValueError:  # not ASCII (UnicodeDecodeError is a ValueError) or not hexadecimal
            raise InputError(
                f"{path}: a key file holds one line of hexadecimal digits; "
                "make one with `doublerandom keygen`"
            ) from None
        try:
            return cls(key)
        except InputError as err:
            raise InputError(f"{path}: {err}") from None

    @classmethod
    def from_seed(cls, seed: int) -> KeyedDraws:
        """Reproducible and order-independent, but anyone knowing the seed can predict the draws:
        for demos, tests and step-by-step command-line use, never for live selection."""
        return cls(hashlib.sha256(f"doublerandom-seed:{seed}".encode()).digest())

    def uniform(self, declaration_id: str, purpose: str) -> float:
        mac = hmac.new(self._key, f"{purpose}\x1f{declaration_id}".encode(), hashlib.sha256).digest()
        return (int.from_bytes(mac[:8], "big") >> 11) / 2.0**53  # 53 bits: exact in a float


class SeededDraws:
    """Sequential draws from one numpy stream per purpose; order of calls matters, ids do not."""

    verifiable = False

    def __init__(self, seed: int):
        self.seed = seed
        self._streams = {name: stream_generator(seed, name) for name in STREAMS}

    def uniform(self, declaration_id: str, purpose: str) -> float:
        return float(self._streams[purpose].random())


def stream_generator(seed: int, purpose: str, *sub: int) -> np.random.Generator:
    """The numpy Generator for one purpose (and optional sub-stream, e.g. one per rule):
    independent of the others, fixed by (seed, purpose, sub)."""
    import numpy as np

    return np.random.default_rng([seed, STREAMS[purpose], *sub])


def new_key_hex() -> str:
    return secrets.token_hex(32)
