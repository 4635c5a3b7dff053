"""The one exception type for mistakes a user can make, and how pydantic errors become its message."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class InputError(ValueError):
    """Bad input from a user (a rules file, a declaration, a scenario): the message says where and what."""


class NotFound(InputError):
    """The thing asked about does not exist (an unknown inspection or enterprise)."""


class Conflict(InputError):
    """The request is well formed but the rules forbid it now (self-release, wrong state, wrong inspector)."""


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


def yaml_problem(err: Exception) -> str:
    """A YAML parse error in one line: where and what."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"not valid YAML{where}: {getattr(err, 'problem', None) or err}"


def read_model(path: str | Path, model: type[Model], what: str) -> Model:
    """A YAML file validated into a pydantic model; any problem becomes one InputError naming the file."""
    try:
        return model.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    except OSError as err:
        raise InputError(f"{path}: cannot read {what}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: {yaml_problem(err)}") from None
    except ValidationError as err:
        raise describe(str(path), err) from None
