"""The rules' condition tree, kept backend-neutral.

A condition is `all` / `any` / `not` over comparisons `{field: F, <op>: value}`. It is parsed once
into the small node classes below, pushed into negation normal form (durable-rules has no `not`),
and compiled three ways that must agree exactly: to durable-rules' dict form (the live engine), to a
Python predicate, and to a vectorised mask over a pandas DataFrame (bulk simulation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Union

from engine.declarations import RULE_FIELDS

if TYPE_CHECKING:  # the vectorised path (the simulation's) needs numpy and pandas; the live one does not
    import numpy as np

_PREFIX_TEXT = re.compile(r"^[A-Za-z0-9_-]+$")  # literal inside durable's small regex dialect (no escapes)


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    value: Any  # scalar; a tuple for in / not_in / prefix / not_prefix; (lo, hi) for between


@dataclass(frozen=True)
class All:
    children: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    child: Condition


Condition = Union[Compare, All, AnyOf, Not]


class ConditionError(ValueError):
    """A malformed condition; `path` says where inside the tree (e.g. 'all[1].any[0]')."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


# ---------------------------------------------------------------- the operators, one spec each


@dataclass(frozen=True)
class Operator:
    """One comparison, defined once: what value it takes, its negation, and its three forms (durable-rules'
    dict, a Python test of one value, a mask over a column). A new operator is one entry of OPERATORS
    (tests/engine/test_conditions.py runs every entry through the three forms against random data)."""

    name: str
    takes: str  # "scalar", "list" (non-empty), "pair" ([low, high]) or "prefixes" (text, one or a list)
    negate: Callable[[str, Any], Condition]  # (field, value) -> the condition meaning the opposite
    durable: Callable[[str, Any], dict]  # (fact key, value) -> durable-rules' condition
    test: Callable[[Any, Any], bool]  # (field's value, operand) -> bool, for one record
    mask: Callable[[Any, Any], np.ndarray]  # (column, operand) -> bool array
    written: bool = True  # may appear in a rules file (not_prefix arises only from negating prefix)
    ordered: bool = False  # compares order: not for true/false fields


def _opposite(op: str) -> Callable[[str, Any], Condition]:
    return lambda field, value: Compare(field, op, value)


def _array(values: Any) -> np.ndarray:
    import numpy as np

    return np.asarray(values, dtype=bool)


def _series(column: Any):
    import pandas as pd

    return pd.Series(column)


def _durable_compare(durable_op: str) -> Callable[[str, Any], dict]:
    return lambda key, value: {durable_op: {key: value}}


def _ordered(name: str, negation: str, durable_op: str, test: Callable[[Any, Any], bool]) -> Operator:
    return Operator(
        name, "scalar", negate=_opposite(negation), durable=_durable_compare(durable_op), test=test,
        mask=lambda column, v: _array(test(column, v)), ordered=True,
    )  # fmt: skip


def _not_starting_with(key: str, p: str) -> list[dict]:
    """durable's regular expressions have no lookahead: "does not start with p" is spelled out as
    "differs first at position i" or "is a proper start of p"."""
    differs = [{"$mt": {key: f"{p[:i]}[^{p[i]}].*"}} for i in range(len(p))]
    shorter = [{key: p[:i]} for i in range(len(p))]
    return differs + shorter


def _join(op: str, parts: list[dict]) -> dict:
    return parts[0] if len(parts) == 1 else {op: parts}


_OPERATORS = [
    Operator(
        "eq", "scalar", negate=_opposite("ne"), durable=lambda key, v: {key: v},
        test=lambda x, v: x == v, mask=lambda column, v: _array(column == v),
    ),
    Operator(
        "ne", "scalar", negate=_opposite("eq"), durable=_durable_compare("$neq"),
        test=lambda x, v: x != v, mask=lambda column, v: _array(column != v),
    ),
    _ordered("lt", "ge", "$lt", lambda x, v: x < v),
    _ordered("le", "gt", "$lte", lambda x, v: x <= v),
    _ordered("gt", "le", "$gt", lambda x, v: x > v),
    _ordered("ge", "lt", "$gte", lambda x, v: x >= v),
    Operator(
        "in", "list", negate=_opposite("not_in"),
        durable=lambda key, v: _join("$or", [{key: x} for x in v]),
        test=lambda x, v: x in v, mask=lambda column, v: _series(column).isin(v).to_numpy(dtype=bool),
    ),
    Operator(
        "not_in", "list", negate=_opposite("in"),
        durable=lambda key, v: _join("$and", [{"$neq": {key: x}} for x in v]),
        test=lambda x, v: x not in v, mask=lambda column, v: ~_series(column).isin(v).to_numpy(dtype=bool),
    ),
    Operator(
        "between", "pair",
        negate=lambda field, v: AnyOf((Compare(field, "lt", v[0]), Compare(field, "gt", v[1]))),
        durable=lambda key, v: {"$and": [{"$gte": {key: v[0]}}, {"$lte": {key: v[1]}}]},
        test=lambda x, v: v[0] <= x <= v[1],
        mask=lambda column, v: _array((column >= v[0]) & (column <= v[1])),
        ordered=True,
    ),
    Operator(
        "prefix", "prefixes", negate=_opposite("not_prefix"),
        durable=lambda key, v: _join("$or", [{"$mt": {key: p + ".*"}} for p in v]),
        test=lambda x, v: x.startswith(v),
        mask=lambda column, v: _series(column).str.startswith(v).to_numpy(dtype=bool),
    ),
    Operator(
        "not_prefix", "prefixes", negate=_opposite("prefix"),
        durable=lambda key, v: _join("$and", [_join("$or", _not_starting_with(key, p)) for p in v]),
        test=lambda x, v: not x.startswith(v),
        mask=lambda column, v: ~_series(column).str.startswith(v).to_numpy(dtype=bool),
        written=False,
    ),
]  # fmt: skip
OPERATORS: dict[str, Operator] = {op.name: op for op in _OPERATORS}
WRITTEN = tuple(name for name, op in OPERATORS.items() if op.written)  # what a rules file may say


# ---------------------------------------------------------------- parsing and validation


def parse(raw: Any, lists: Mapping[str, list] | None = None, path: str = "when") -> Condition:
    """Validate a raw YAML condition and build the tree; `{list: NAME}` values refer to named lists."""
    lists = lists or {}
    if not isinstance(raw, dict):
        raise ConditionError(path, f"expected a mapping with all/any/not or field+operator, got {raw!r}")
    if "field" not in raw:
        if len(raw) != 1 or next(iter(raw)) not in ("all", "any", "not"):
            raise ConditionError(
                path, f"expected exactly one of all/any/not, or a 'field', got keys {sorted(raw)}"
            )
        ((key, body),) = raw.items()
        if key == "not":
            return Not(parse(body, lists, f"{path}.not"))
        if not isinstance(body, list) or not body:
            raise ConditionError(f"{path}.{key}", "must be a non-empty list of conditions")
        children = tuple(parse(c, lists, f"{path}.{key}[{i}]") for i, c in enumerate(body))
        return All(children) if key == "all" else AnyOf(children)
    return _parse_compare(raw, lists, path)


def _parse_compare(raw: dict, lists: Mapping[str, list], path: str) -> Compare:
    field = raw["field"]
    if field not in RULE_FIELDS:
        raise ConditionError(path, f"unknown field {field!r}; known fields: {', '.join(sorted(RULE_FIELDS))}")
    ops = [k for k in raw if k != "field"]
    if len(ops) != 1 or ops[0] not in WRITTEN:
        raise ConditionError(
            path, f"field {field!r} needs exactly one operator of {', '.join(WRITTEN)}, got {ops}"
        )
    op = ops[0]
    value = _resolve_list(raw[op], lists, f"{path}.{op}")
    return Compare(field, op, _check_value(field, op, value, f"{path}.{op}"))


def _resolve_list(value: Any, lists: Mapping[str, list], path: str) -> Any:
    if isinstance(value, dict):
        if set(value) != {"list"}:
            raise ConditionError(path, f"a mapping value must be {{list: NAME}}, got {value!r}")
        name = value["list"]
        if name not in lists:
            raise ConditionError(
                path, f"unknown list {name!r}; defined lists: {', '.join(sorted(lists)) or 'none'}"
            )
        return list(lists[name])
    return value


def _check_value(field: str, op: str, value: Any, path: str) -> Any:
    kind, takes = RULE_FIELDS[field], OPERATORS[op].takes
    if takes in ("list", "prefixes"):
        items = [value] if takes == "prefixes" and isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise ConditionError(path, f"{op} needs a non-empty list (or {{list: NAME}}), got {value!r}")
        if takes == "prefixes" and kind != "str":
            raise ConditionError(path, f"{op} only applies to text fields, {field!r} is {kind}")
        for item in items:
            _check_scalar(field, kind, item, path)
        if takes == "prefixes":
            bad = [p for p in items if not _PREFIX_TEXT.match(p)]
            if bad:
                raise ConditionError(path, f"prefixes are letters, digits, '_' and '-' only, got {bad}")
        return tuple(items)
    if takes == "pair":
        if not isinstance(value, list) or len(value) != 2:
            raise ConditionError(path, f"{op} needs [low, high], got {value!r}")
        for item in value:
            _check_scalar(field, kind, item, path)
        if value[0] > value[1]:
            raise ConditionError(path, f"{op} needs low <= high, got {value!r}")
        return tuple(value)
    _check_scalar(field, kind, value, path)
    if kind == "bool" and OPERATORS[op].ordered:
        allowed = " and ".join(
            n for n in WRITTEN if OPERATORS[n].takes == "scalar" and not OPERATORS[n].ordered
        )
        raise ConditionError(path, f"{field!r} is true/false: only {allowed} apply, not {op}")
    return value


def _check_scalar(field: str, kind: str, value: Any, path: str) -> None:
    if kind == "str" and not isinstance(value, str):
        hint = (
            " (quote codes in YAML, e.g. '0203', or leading zeros are lost)" if isinstance(value, int) else ""
        )
        raise ConditionError(path, f"{field!r} is text; {value!r} is not a string{hint}")
    if kind == "num" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConditionError(path, f"{field!r} is a number; {value!r} is not")
    if kind == "bool" and not isinstance(value, bool):
        raise ConditionError(path, f"{field!r} is true/false; {value!r} is not")


def fields_used(node: Condition) -> set[str]:
    if isinstance(node, Compare):
        return {node.field}
    if isinstance(node, Not):
        return fields_used(node.child)
    return set().union(*(fields_used(c) for c in node.children))


def simultaneous(node: Condition) -> int:
    """At most how many of durable's alternative paths for a tree in normal form can match one
    declaration at once: what fills durable's 64-node matching stack. An `in` list is one test of
    equality (one value at most matches); prefixes may nest ('84', '8471'), so each counts; a
    `not_prefix` spelled out as "differs first at position i" matches at one position only."""
    if isinstance(node, AnyOf):
        return sum(simultaneous(c) for c in node.children)
    if isinstance(node, All):
        total = 1
        for c in node.children:
            total = min(total * simultaneous(c), 10**6)
        return total
    if isinstance(node, Not):
        return simultaneous(node.child)
    return len(node.value) if node.op == "prefix" else 1


# ---------------------------------------------------------------- negation normal form


def normal_form(node: Condition, negate: bool = False) -> Condition:
    """Push every `not` down to the comparisons (De Morgan), since durable-rules cannot say `not`."""
    if isinstance(node, Not):
        return normal_form(node.child, not negate)
    if isinstance(node, (All, AnyOf)):
        children = tuple(normal_form(c, negate) for c in node.children)
        flip = isinstance(node, All) == negate
        return AnyOf(children) if flip else All(children)
    return OPERATORS[node.op].negate(node.field, node.value) if negate else node


# ---------------------------------------------------------------- compiler: durable-rules


def fact_key(field: str) -> str:
    """Fact keys never collide with durable's own `id`/`sid` and carry no dots."""
    return "f_" + field.replace(".", "__")


def to_durable(node: Condition) -> dict:
    """durable-rules' dict condition for a tree in normal form."""
    if isinstance(node, All):
        return _join("$and", [to_durable(c) for c in node.children])
    if isinstance(node, AnyOf):
        return _join("$or", [to_durable(c) for c in node.children])
    if isinstance(node, Not):
        raise AssertionError("durable-rules takes a tree in normal form (no `not`)")
    return OPERATORS[node.op].durable(fact_key(node.field), node.value)


# ---------------------------------------------------------------- compiler: Python predicate

Predicate = Callable[[Mapping[str, Any]], bool]


def to_predicate(node: Condition) -> Predicate:
    """A plain-Python test of one flat record (keys as in `rule_fields`)."""
    if isinstance(node, All):
        parts = [to_predicate(c) for c in node.children]
        return lambda rec: all(p(rec) for p in parts)
    if isinstance(node, AnyOf):
        parts = [to_predicate(c) for c in node.children]
        return lambda rec: any(p(rec) for p in parts)
    if isinstance(node, Not):
        inner = to_predicate(node.child)
        return lambda rec: not inner(rec)
    test, field, value = OPERATORS[node.op].test, node.field, node.value
    if node.op in ("in", "not_in"):
        value = frozenset(value)
    return lambda rec: test(rec[field], value)


# ---------------------------------------------------------------- compiler: vectorised mask


def to_mask(
    node: Condition,
    frame: Mapping[str, Any],
    precomputed: Callable[[Condition], np.ndarray | None] | None = None,
) -> np.ndarray:
    """Boolean array: which rows of `frame` (columns named as in `rule_fields`) satisfy the tree.
    `precomputed` may answer for any node itself (the simulation precomputes the subtrees that read only
    fields that never change); it returns None for nodes it leaves to this function."""
    import numpy as np

    answer = precomputed(node) if precomputed else None
    if answer is not None:
        return answer
    if isinstance(node, All):
        return np.logical_and.reduce([to_mask(c, frame, precomputed) for c in node.children])
    if isinstance(node, AnyOf):
        return np.logical_or.reduce([to_mask(c, frame, precomputed) for c in node.children])
    if isinstance(node, Not):
        return ~to_mask(node.child, frame, precomputed)
    return compare_mask(node, frame[node.field])


def compare_mask(node: Compare, column: Any) -> np.ndarray:
    """One comparison over a column (pandas Series or numpy array)."""
    return OPERATORS[node.op].mask(column, node.value)
