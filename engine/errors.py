"""The one exception type for mistakes a user can make, and how pydantic errors become its message."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # read as pydantic's error, never imported here: the command line starts without pydantic
    from pydantic import ValidationError


class InputError(ValueError):
    """Bad input from a user (a rules file, a declaration, a scenario): the message says where and what."""


class NotFound(InputError):
    """The thing asked about does not exist (an unknown inspection or enterprise)."""


class Conflict(InputError):
    """The request is well formed but the rules forbid it now (self-release, wrong state, wrong inspector)."""


class Unavailable(InputError):
    """The database did not answer (a lost connection, a server restarting). The step was rolled
    back, unless the connection was lost while its commit was under way; either way the same request
    can be sent again: a declaration decided after all gets its first decision back, another step
    says it was done. One clear error (HTTP 503), like the user's mistakes."""


def field_path(loc: tuple) -> str:
    """pydantic's location tuple as a dotted path: ('rules', 3, 'when') -> 'rules[3].when'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def describe(source: str, err: ValidationError) -> InputError:
    """One readable message per pydantic error: '<source>: field <path>: <problem>'."""
    problems = []
    for e in err.errors(include_url=False):
        msg = e["msg"].removeprefix("Value error, ")
        problems.append(f"{source}: field '{field_path(e['loc'])}': {msg}")
    return InputError("\n".join(problems))


# What a message must never carry out: a password in a URL (user:password@ or password=...), and,
# to anyone outside (HTTP bodies, /health), the database's address or a path on the server.
_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@\s]*@")
_PASSWORD_PARAMETER = re.compile(r"(\bpassword=)[^&\s'\"]*", re.IGNORECASE)
_DATABASE_URL = re.compile(r"\b(?:postgres(?:ql)?|sqlite)://\S*?(?=:?\s|:?$|\)|'|\")")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^/\s:'\"]+/)+([^/\s:'\"]+)")


def redact(text: str) -> str:
    """A message fit for an operator's terminal and logs: passwords replaced by ***."""
    return _PASSWORD_PARAMETER.sub(r"\1***", _PASSWORD_IN_URL.sub(r"\1***@", text))


def public(text: str) -> str:
    """A message fit for anyone (an HTTP body, /health): no password, no database address (user,
    host, database, schema), no path on the server (a file keeps only its name)."""
    return _ABSOLUTE_PATH.sub(r"\1", _DATABASE_URL.sub("the database", redact(text)))
