"""The service's API keys and roles: who may call, as what, for which site.

The keys file holds, per key, a name, a role and the key's SHA-256 (never the key itself); a key may
be bound to one customs office (site); an `agency` key is bound to one agency (another
law-enforcement department of joint discipline), whose listings alone it may send. The roles are
listed once, in engine.roles.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.declarations import ID_PATTERN, Id
from engine.files import first_repeat, read_model
from engine.roles import ROLES


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Id("who: the inspector id for inspectors")
    role: Literal[ROLES]  # a tuple subscript: the same as listing them
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    site: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="the customs office (site) the key acts for; none: every site",
    )
    agency: str | None = Field(
        default=None, pattern=ID_PATTERN, description="for the agency role: the agency the key speaks for"
    )

    @model_validator(mode="after")
    def _agency_keys_name_their_agency(self) -> KeyEntry:
        if (self.role == "agency") != (self.agency is not None):
            raise ValueError(
                f"key {self.name!r}: an agency key names its agency, and only an agency key does"
            )
        return self


class KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[KeyEntry] = Field(min_length=1)

    @field_validator("keys")
    @classmethod
    def _each_key_once(cls, value: list[KeyEntry]) -> list[KeyEntry]:
        twice = first_repeat(value, lambda entry: entry.key_sha256)
        if twice is not None:  # one key under two roles would take the more powerful one
            raise ValueError(f"the key of {twice.name!r} ({twice.role}) is listed twice; one entry per key")
        return value


def load_keys(path: str | Path) -> list[KeyEntry]:
    return read_model(path, KeysFile, "API keys file").keys


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    name: str
    role: str
    site: str | None = None  # a key bound to a site acts on that site's declarations and inspections only
    agency: str | None = None  # an agency key: the agency whose listings it sends
