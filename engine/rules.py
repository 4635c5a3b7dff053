"""Declarative risk criteria: a YAML rules file, validated, versioned and run on durable-rules.

durable-rules 2.0.28 is wrapped here and nowhere else. Its quirks (see shared notes):
- `post` fires at most one rule per event, so every declaration is asserted as a *fact* and
  retracted at once: all matching rules fire and working memory stays empty;
- a rule the engine's own session-state fact can satisfy loops forever, so a marker field is
  ANDed into every rule, and a catch-all on the marker keeps "no rule matched" from raising;
- the module-level registry keeps one definition per name and its Host runs actions on timer
  threads, so each RuleSet owns a private Host whose timers are switched off, behind a lock;
- its C JSON parser reads an exponent only after a decimal point (`1e-05` fails with error 204,
  `1.0e-05` parses, through `atof`, to the same double), so every JSON text durable sees is
  written by `durable_json`, which always puts a point in a float.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import durable.engine
import durable_rules_engine
from durable.engine import Host
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine import conditions

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
from engine.declarations import Declaration, Enterprise, InspectionType, rule_fields
from engine.errors import InputError, field_path
from engine.files import parse_yaml, read_text

_MARK = "_decl"  # present on every fact we assert, never on durable's session-state fact
_CATCH_ALL = "$catch_all"


class RuleSpec(BaseModel):
    """One risk criterion as written in the rules file."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    description: str = Field(min_length=1)
    inspection: InspectionType
    when: dict[str, Any]
    sampling_rate: float = Field(default=1.0, gt=0, le=1)
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    weight: float = Field(
        default=1.0, ge=0, le=1e6, description="what the rule adds to a declaration's risk score"
    )

    @model_validator(mode="after")
    def _dates_in_order(self) -> RuleSpec:
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise ValueError(f"valid_from {self.valid_from} is after valid_until {self.valid_until}")
        return self


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, description="a human label; the content hash is added to it")
    lists: dict[str, list[str | float]] = {}
    rules: list[dict[str, Any]] = Field(min_length=1)


@dataclass(frozen=True)
class Rule:
    """A validated rule with its condition tree in normal form."""

    id: str
    description: str
    inspection: InspectionType
    condition: conditions.Condition
    sampling_rate: float = 1.0
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    weight: float = 1.0

    def active_on(self, day: dt.date) -> bool:
        return (self.valid_from is None or day >= self.valid_from) and (
            self.valid_until is None or day <= self.valid_until
        )

    def active_mask(self, dates: pd.Series) -> np.ndarray:
        """`active_on` over a column of ISO dates (YYYY-MM-DD sorts as text)."""
        import numpy as np  # the vectorised path only: the live engine starts without numpy and pandas

        active = np.ones(len(dates), bool)
        if self.valid_from:
            active &= (dates >= self.valid_from.isoformat()).to_numpy(dtype=bool)
        if self.valid_until:
            active &= (dates <= self.valid_until.isoformat()).to_numpy(dtype=bool)
        return active


class RuleSet:
    """A loaded rules file: `evaluate` returns every rule a declaration matches, in file order."""

    def __init__(self, rules: list[Rule], version: str, source: str = "<rules>"):
        self.rules = rules
        self.version = version
        self.source = source
        self.text: str | None = None  # the file's text, when loaded from a file: what the audit log keeps
        self.by_id = {r.id: r for r in rules}
        self._dated = any(r.valid_from or r.valid_until for r in rules)
        self._position = {r.id: k for k, r in enumerate(rules)}
        self._session = _durable_session(rules, source)
        self.fields_used = set(self._session.fields)  # every field some rule reads
        # what `evaluate` reads of a declaration: those fields, and the date the rules' validity needs
        self._reads = sorted(self.fields_used | {"declared_date"})
        self._predicates = [(r, conditions.to_predicate(r.condition)) for r in rules]

    # ------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path) -> RuleSet:
        return cls.from_text(read_text(path, "rules file"), str(path))

    @classmethod
    def from_text(cls, text: str, source: str) -> RuleSet:
        """A rules file's text (YAML 1.2); the text is kept for the audit log."""
        rules = cls.from_dict(parse_yaml(text, source), source=source)
        rules.text = text
        return rules

    @classmethod
    def from_dict(cls, raw: Any, source: str = "<rules>") -> RuleSet:
        if not isinstance(raw, dict):
            raise InputError(f"{source}: a rules file is a mapping with version, lists and rules")
        try:
            spec = RulesFile.model_validate(raw)
            rules = [_build_rule(r, i, spec.lists, source) for i, r in enumerate(spec.rules)]
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            raise InputError(f"{source}: field '{field_path(first['loc'])}': {first['msg']}") from None
        except RecursionError:
            raise InputError(f"{source}: a condition nested too deeply") from None
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise InputError(f"{source}: rule '{rule.id}': the id is used twice; ids must be unique")
            seen.add(rule.id)
        digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
        return cls(rules, f"{spec.version}+{digest[:12]}", source)

    # ------------------------------------------------------------ evaluation

    def evaluate(self, declaration: Declaration, enterprise: Enterprise) -> list[str]:
        """Ids of every active rule this declaration matches (durable-rules), in file order."""
        return self.evaluate_fields(rule_fields(declaration, enterprise, self._reads))

    def evaluate_fields(self, fields: Mapping[str, Any]) -> list[str]:
        fired = self._session.fire(fields)
        return self._active(fired, fields["declared_date"])

    def evaluate_python(self, fields: Mapping[str, Any]) -> list[str]:
        """The same answer as `evaluate_fields`, from plain-Python predicates (no durable-rules)."""
        fired = {r.id for r, test in self._predicates if test(fields)}
        return self._active(fired, fields["declared_date"])

    def masks(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Vectorised: rule id -> which rows match (validity dates applied per row)."""
        out = {}
        for rule in self.rules:
            hit = conditions.to_mask(rule.condition, frame)
            if rule.valid_from or rule.valid_until:
                hit = hit & rule.active_mask(frame["declared_date"])
            out[rule.id] = hit
        return out

    def _active(self, fired: Iterable[str], declared_date: str) -> list[str]:
        """The fired rules once each (durable fires a rule once per matching `any` branch), in file
        order, without those outside their validity dates."""
        ordered = sorted(set(fired), key=self._position.__getitem__)
        if not self._dated:
            return ordered
        day = dt.date.fromisoformat(declared_date)
        return [r for r in ordered if self.by_id[r].active_on(day)]

    def catalogue(self) -> list[dict[str, str]]:
        """What may be published: ids, descriptions and inspection types, never the thresholds."""
        return [
            {"id": r.id, "description": r.description, "inspection": r.inspection.value} for r in self.rules
        ]

    def close(self) -> None:
        self._session.close()


def _build_rule(raw: dict, index: int, lists: Mapping[str, list], source: str) -> Rule:
    name = (
        f"rule '{raw['id']}'"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str)
        else f"rules[{index}]"
    )
    try:
        spec = RuleSpec.model_validate(raw)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = field_path(first["loc"])
        raise InputError(
            f"{source}: {name}: field '{where}': {first['msg'].removeprefix('Value error, ')}"
        ) from None
    try:
        tree = conditions.parse(spec.when, lists)
    except conditions.ConditionError as err:
        raise InputError(f"{source}: {name}: field '{err.path}': {err.problem}") from None
    return Rule(
        spec.id,
        spec.description,
        spec.inspection,
        conditions.normal_form(tree),
        spec.sampling_rate,
        spec.valid_from,
        spec.valid_until,
        spec.weight,
    )


_NUMBER_OR_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|-?Infinity|NaN')
_ENCODER = json.JSONEncoder(ensure_ascii=False)  # made once: json.dumps makes one per call with options


def durable_json(value: Any) -> str:
    """JSON text durable's parser reads back exactly: `json.dumps(ensure_ascii=False)`, but a float
    is always written with a decimal point (`1.0e-05`, `1.0e+16`); its digits stay `repr`'s
    shortest round-trip form, so `atof` gives back the very same double. An infinity (a ratio of
    valid inputs can overflow) is written `1.0e+999`, which atof reads as infinity."""
    text = _ENCODER.encode(value)
    if _plain(value):  # nearly always: nothing to mend (durable writes JSON three times a decision)
        return text
    return _NUMBER_OR_STRING.sub(_mend, text)


def _plain(value: Any) -> bool:
    """Whether every float in `value` is finite and written without an exponent (repr uses one below
    1e-4 and from 1e16 on): checked on the values, which costs less than scanning the text."""
    if isinstance(value, float):
        return value == 0.0 or 1e-4 <= abs(value) < 1e16
    if isinstance(value, dict):
        return all(map(_plain, value.values()))
    if isinstance(value, (list, tuple)):
        return all(map(_plain, value))
    return True


def _mend(token: re.Match) -> str:
    text = token.group()
    if text[0] == '"':
        return text  # a string, matched whole so that digits inside it are left alone
    if text.endswith("Infinity"):
        return "-1.0e+999" if text[0] == "-" else "1.0e+999"
    if text == "NaN":
        raise ValueError("durable-rules cannot compare NaN")
    mantissa, e, exponent = text.partition("e") if "e" in text else text.partition("E")
    if not e or "." in mantissa:
        return text
    return f"{mantissa}.0e{exponent}"


class _DurableCodec:
    """Stands in for the `json` module inside `durable.engine`, so rule definitions and facts alike
    are written by `durable_json` (durable calls `json.dumps(x, ensure_ascii=False)` internally)."""

    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(value: Any, **_: Any) -> str:
        return durable_json(value)


durable.engine.json = _DurableCodec  # the one place durable's serialisation is replaced


class _SyncHost(Host):
    def _run(self) -> None:
        """durable's Host starts timer threads that run actions in the background; we want none."""


class _DurableSession:
    """Private durable-rules rulesets on one Host; thread-safe, never raises on no match.

    durable walks its alpha network with a fixed stack of 64 nodes and fails a fact (error 303)
    when more paths match at once: measured, 64 rules all true of one declaration pass and 65 fail.
    So the rules are packed into several rulesets, each with at most `_BRANCH_BUDGET` paths that
    can match together, and every declaration is asserted into each."""

    def __init__(self, rules: list[Rule]):
        self._fired: list[str] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        # Only the fields some rule reads go into the fact: durable's cost grows with its JSON size.
        self.fields = sorted(set().union(*(conditions.fields_used(r.condition) for r in rules)))
        self._keys = [(f, conditions.fact_key(f)) for f in self.fields]
        self._host = _SyncHost()
        self._names = []
        for k, group in enumerate(_pack(rules)):
            definitions = {}
            for rule in group:
                guarded = {"$and": [{"$ex": {_MARK: 1}}, conditions.to_durable(rule.condition)]}
                definitions[rule.id] = {"all": [{"m": guarded}], "run": self._recorder(rule.id)}
            definitions[_CATCH_ALL] = {"all": [{"m": {"$ex": {_MARK: 1}}}], "run": _ignore}
            self._names.append(f"risk{k}")
            self._host.register_rulesets({f"risk{k}": definitions})  # built fresh: durable mutates it
        handles = [self._host.get_ruleset(name)._handle for name in self._names]
        self._finalizer = weakref.finalize(self, _delete_rulesets, handles)

    def _recorder(self, rule_id: str):
        def action(c):  # exactly one parameter: durable treats two-parameter actions as async
            self._fired.append(rule_id)

        return action

    def fire(self, fields: Mapping[str, Any]) -> list[str]:
        fact = {key: fields[field] for field, key in self._keys}
        fact[_MARK] = 1
        with self._lock:
            fact["id"] = next(self._ids)  # unique, so identical declarations never collide
            self._fired.clear()
            for name in self._names:
                self._host.assert_fact(name, fact)
                self._host.retract_fact(name, fact)
            return list(self._fired)

    def close(self) -> None:
        self._finalizer()


def _durable_session(rules: list[Rule], source: str) -> _DurableSession:
    """The rules compiled by durable-rules, or one InputError naming the rule it cannot run (its
    own limits, such as 32 expressions along one path, error 113, are checked by compiling: the
    engine is the authority on what it can run). Validation and hot reload both come through here,
    so a file durable refuses is refused whole and the last good version keeps deciding."""
    try:
        return _DurableSession(rules)
    except Exception as err:  # durable raises a bare Exception carrying its C error code
        culprit = next((r for r in rules if not _compiles(r)), None)
        which = f"rule '{culprit.id}'" if culprit else "the rules together"
        raise InputError(
            f"{source}: {which}: the rules engine cannot run this condition ({err}); durable-rules "
            "takes at most 32 comparisons and connectives along one path: split it into "
            "several rules or simplify it"
        ) from None


def _compiles(rule: Rule) -> bool:
    try:
        _DurableSession([rule]).close()
        return True
    except Exception:
        return False


_BRANCH_BUDGET = 48  # of durable's 64-node stack: the catch-all takes one, the rest is margin


def _pack(rules: list[Rule]) -> list[list[Rule]]:
    """Consecutive groups of rules whose simultaneously matching paths add up to at most the budget
    (a rule over the budget on its own gets a group of its own)."""
    groups: list[list[Rule]] = [[]]
    size = 0
    for rule in rules:
        n = min(conditions.simultaneous(rule.condition), _BRANCH_BUDGET)
        if groups[-1] and size + n > _BRANCH_BUDGET:
            groups.append([])
            size = 0
        groups[-1].append(rule)
        size += n
    return groups


def _delete_rulesets(handles: list[int]) -> None:
    for handle in handles:
        durable_rules_engine.delete_ruleset(handle)


def _ignore(c) -> None:
    """The catch-all's action: it exists only so that no declaration is 'not handled'."""
