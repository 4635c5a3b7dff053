"""The one exception type for mistakes a user can make, and how pydantic errors become its message."""

from __future__ import annotations

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
