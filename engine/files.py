"""Reading the files users hand the engine: text, YAML 1.2, validated models; one clear error each.

Every file is read as UTF-8 (a byte-order mark, which spreadsheet exports add, is dropped); a file
that is not UTF-8 text, nests too deeply or is not valid YAML is one InputError naming the file.

YAML is read with YAML 1.2's core schema, not PyYAML's YAML 1.1 default: in 1.1 the unquoted `NO`
(Norway), `OFF`, `Y` or `on` become booleans, `1:20` a sexagesimal number and `2026-13-01` a date
that fails to construct; in 1.2 only `true`/`false` are booleans, `1e-05` is a float, and dates are
text that the models parse (so a bad date is reported with its field).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from engine.errors import InputError, describe

Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the implicit types of the YAML 1.2 core schema."""


Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
]:
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def _int12(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 16) if text.startswith("0x") else int(text)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _int12)


def read_text(path: str | Path, what: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read {what}: {err.strerror}") from None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: cannot read {what}: not UTF-8 text (byte {err.start + 1})") from None


def read_csv(path: str | Path, what: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) per data row of a UTF-8 CSV file with a header."""
    text = read_text(path, what)
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as err:
        raise InputError(f"{path}: not a CSV file: {err}") from None
    return list(enumerate(rows, start=2))


MAX_VALUES = 200_000  # values in a file once its aliases are expanded: far above any real rules file


def parse_yaml(text: str, source: str) -> Any:
    """YAML 1.2 text to plain data, or one InputError naming `source`. A file whose aliases expand
    to more than MAX_VALUES values (a "billion laughs" of a few hundred bytes) is refused at once:
    PyYAML shares an aliased value instead of copying it, but everything that walks the data after
    (validation, the rules' compilers) would walk every copy."""
    try:
        data = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise InputError(f"{source}: {yaml_problem(err)}") from None
    except RecursionError:
        raise InputError(f"{source}: nested too deeply to be a doublerandom file") from None
    except ValueError as err:  # a tagged value that does not construct, e.g. !!timestamp 2026-13-01
        raise InputError(f"{source}: {err}") from None
    try:
        expanded = _expanded_size(data, {})
    except RecursionError:
        raise InputError(f"{source}: nested too deeply to be a doublerandom file") from None
    if expanded > MAX_VALUES:
        raise InputError(
            f"{source}: its aliases expand to more than {MAX_VALUES:,} values; "
            "write the values out, or use named lists"
        )
    return data


def _expanded_size(value: Any, seen: dict[int, int]) -> int:
    """How many values `value` holds with every shared (aliased) part counted each time it occurs,
    computed once per distinct object, so the count itself never expands anything."""
    if not isinstance(value, (dict, list)):
        return 1
    key = id(value)
    if key not in seen:
        seen[key] = 0  # a cycle (a recursive alias) counts as nothing more on the way round
        children = value.values() if isinstance(value, dict) else value
        seen[key] = 1 + sum(_expanded_size(child, seen) for child in children)
        if seen[key] > MAX_VALUES:
            seen[key] = MAX_VALUES + 1  # enough to refuse; keeps the sums small
    return seen[key]


def read_yaml(path: str | Path, what: str) -> Any:
    return parse_yaml(read_text(path, what), str(path))


def first_repeat(items: Iterable[T], key: Callable[[T], Hashable]) -> T | None:
    """The first item whose key an earlier item has (an entry listed twice in a file), or None."""
    seen: set = set()
    for item in items:
        if key(item) in seen:
            return item
        seen.add(key(item))
    return None


def read_model(path: str | Path, model: type[Model], what: str) -> Model:
    """A YAML file validated into a pydantic model; any problem becomes one InputError naming the file."""
    raw = read_yaml(path, what)
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise describe(str(path), err) from None
    except RecursionError:
        raise InputError(f"{path}: nested too deeply to be a {what}") from None


class QuotedCodes(yaml.SafeDumper):
    """For writing YAML whose codes (HS 091011, headings "0203") must stay text: digit strings are
    quoted, whatever YAML version reads them back."""


QuotedCodes.add_representer(
    str,
    lambda dumper, s: dumper.represent_scalar("tag:yaml.org,2002:str", s, style='"' if s.isdigit() else None),
)


def yaml_problem(err: Exception) -> str:
    """A YAML parse error in one line: where and what."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"not valid YAML{where}: {getattr(err, 'problem', None) or err}"
