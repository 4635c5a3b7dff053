"""The condition tree: every operator, nesting, lists, and agreement of the three evaluators."""

from __future__ import annotations

import random
import re

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import conditions
from engine.conditions import ConditionError, parse
from engine.rules import RuleSet

RECORD = {
    "hs_code": "847130",
    "hs_chapter": "84",
    "origin_country": "CN",
    "declared_value": 60000.0,
    "enterprise.high_risk": False,
    "enterprise.problems": 2,
    "declared_date": "2026-06-01",
}


def holds(raw: dict, record: dict = RECORD, lists: dict | None = None) -> bool:
    """Evaluate one condition with all three evaluators and insist they agree."""
    tree = conditions.normal_form(parse(raw, lists))
    by_python = conditions.to_predicate(tree)(record)
    by_mask = bool(conditions.to_mask(tree, pd.DataFrame([record]))[0])
    rules = RuleSet.from_dict(
        {
            "version": "t",
            "lists": lists or {},
            "rules": [{"id": "R", "description": "r", "inspection": "document", "when": raw}],
        }
    )
    by_durable = rules.evaluate_fields(record) == ["R"]
    rules.close()
    assert by_python == by_mask == by_durable, (raw, by_python, by_mask, by_durable)
    return by_python


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"field": "origin_country", "eq": "CN"}, True),
        ({"field": "origin_country", "eq": "VN"}, False),
        ({"field": "origin_country", "ne": "VN"}, True),
        ({"field": "declared_value", "lt": 60000}, False),
        ({"field": "declared_value", "le": 60000}, True),
        ({"field": "declared_value", "gt": 59999.5}, True),
        ({"field": "declared_value", "ge": 60000.01}, False),
        ({"field": "origin_country", "in": ["VN", "CN"]}, True),
        ({"field": "origin_country", "not_in": ["VN", "CN"]}, False),
        ({"field": "declared_value", "between": [50000, 60000]}, True),
        ({"field": "declared_value", "between": [60000.5, 70000]}, False),
        ({"field": "hs_code", "prefix": "8471"}, True),
        ({"field": "hs_code", "prefix": ["0101", "84713"]}, True),
        ({"field": "hs_code", "prefix": "8472"}, False),
        ({"field": "hs_code", "prefix": "1847"}, False),
        ({"field": "enterprise.high_risk", "eq": False}, True),
        ({"field": "enterprise.problems", "ge": 2}, True),
        ({"field": "declared_date", "lt": "2026-07-01"}, True),
    ],
)
def test_each_operator(raw, expected):
    assert holds(raw) is expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"not": {"field": "hs_code", "prefix": "8471"}}, False),
        ({"not": {"field": "hs_code", "prefix": "8472"}}, True),
        ({"not": {"field": "hs_code", "prefix": "84713099"}}, True),  # longer than the code itself
        ({"not": {"field": "declared_value", "between": [1, 10]}}, True),
        (
            {"not": {"all": [{"field": "hs_chapter", "eq": "84"}, {"field": "origin_country", "eq": "CN"}]}},
            False,
        ),
        (
            {"not": {"any": [{"field": "hs_chapter", "eq": "61"}, {"field": "origin_country", "eq": "VN"}]}},
            True,
        ),
        (
            {
                "all": [
                    {"field": "hs_chapter", "eq": "84"},
                    {
                        "any": [
                            {"field": "origin_country", "eq": "VN"},
                            {"not": {"field": "declared_value", "lt": 50000}},
                        ]
                    },
                ]
            },
            True,
        ),
        ({"not": {"not": {"field": "origin_country", "eq": "CN"}}}, True),
    ],
)
def test_nested_all_any_not(raw, expected):
    assert holds(raw) is expected


def test_named_lists_are_resolved():
    lists = {"risky": ["CN", "RU"], "it": ["8471", "8542"]}
    assert holds({"field": "origin_country", "in": {"list": "risky"}}, lists=lists)
    assert holds({"field": "hs_code", "prefix": {"list": "it"}}, lists=lists)
    assert not holds({"field": "origin_country", "not_in": {"list": "risky"}}, lists=lists)


def _random_tree(rng: random.Random, depth: int = 0) -> dict:
    if depth < 3 and rng.random() < 0.45:
        kind = rng.choice(["all", "any", "not"])
        if kind == "not":
            return {"not": _random_tree(rng, depth + 1)}
        return {kind: [_random_tree(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    return rng.choice(
        [
            lambda: {
                "field": "hs_code",
                "prefix": rng.sample(["84", "8471", "61", "0203", "847130"], rng.randint(1, 2)),
            },
            lambda: {"field": "origin_country", rng.choice(["eq", "ne"]): rng.choice(["CN", "VN", "DE"])},
            lambda: {
                "field": "origin_country",
                rng.choice(["in", "not_in"]): rng.sample(["CN", "VN", "DE", "US"], 2),
            },
            lambda: {
                "field": "declared_value",
                rng.choice(["lt", "le", "gt", "ge", "eq", "ne"]): rng.choice([100, 5000.5, 1e5]),
            },
            lambda: {
                "field": "declared_value",
                "between": sorted(rng.sample([10, 100, 5000.5, 1e5, 1e6], 2)),
            },
            lambda: {"field": "enterprise.high_risk", rng.choice(["eq", "ne"]): rng.random() < 0.5},
        ]
    )()


def _random_record(rng: random.Random) -> dict:
    code = rng.choice(["847130", "847150", "610910", "020311", "840000", "847130991"])
    return {
        "hs_code": code,
        "hs_chapter": code[:2],
        "origin_country": rng.choice(["CN", "VN", "DE", "US", "JP"]),
        "declared_value": rng.choice([100, 5000.5, 1e5, 7.0, 2e6]),
        "enterprise.high_risk": rng.random() < 0.3,
        "enterprise.problems": 0,
        "declared_date": "2026-06-01",
    }


def test_three_evaluators_agree_on_random_trees_and_records():
    """200 random rule trees x 50 random declarations: durable-rules == Python == vectorised."""
    rng = random.Random(7)
    trees = [_random_tree(rng) for _ in range(200)]
    rules = RuleSet.from_dict(
        {
            "version": "t",
            "rules": [
                {"id": f"R{i}", "description": "random", "inspection": "scan", "when": t}
                for i, t in enumerate(trees)
            ],
        }
    )
    records = [_random_record(rng) for _ in range(50)]
    frame = pd.DataFrame(records)
    masks = rules.masks(frame)
    fired_total = 0
    for row, record in enumerate(records):
        by_durable = rules.evaluate_fields(record)
        by_python = rules.evaluate_python(record)
        by_mask = [r.id for r in rules.rules if masks[r.id][row]]
        assert by_durable == by_python == by_mask, record
        fired_total += len(by_durable)
    assert 0 < fired_total < 200 * 50  # the trees are neither all-true nor all-false


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"field": "colour", "eq": "red"}, "unknown field 'colour'"),
        ({"field": "hs_code", "eq": 203}, "quote codes in YAML"),
        ({"field": "declared_value", "lt": "cheap"}, "is a number"),
        ({"field": "hs_code", "starts": "84"}, "exactly one operator"),
        ({"field": "hs_code", "eq": "84", "ne": "85"}, "exactly one operator"),
        ({"field": "declared_value", "between": [10, 1]}, "low <= high"),
        ({"field": "origin_country", "in": []}, "non-empty list"),
        ({"field": "origin_country", "in": {"list": "nowhere"}}, "unknown list 'nowhere'"),
        ({"field": "declared_value", "prefix": "1"}, "only applies to text"),
        ({"field": "hs_code", "prefix": "84.*"}, "letters, digits, '_' and '-' only"),
        ({"field": "enterprise.high_risk", "gt": True}, "only eq and ne"),
        ({"all": []}, "non-empty list"),
        ({"every": []}, "exactly one of all/any/not"),
    ],
)
def test_bad_conditions_say_what_is_wrong(raw, message):
    with pytest.raises(ConditionError, match=re.escape(message)):
        parse(raw, {})


# ---------------------------------------------------------------- every operator, three forms, random data

CODES = st.text(alphabet="0148", max_size=5)  # few symbols: equal, shorter and longer codes are frequent
NUMBERS = st.sampled_from([0.0, 1.0, 2.5, 7.0, 100.0, -3.0, 1e6])
COUNTRIES = st.sampled_from(["CN", "VN", "DE"])


def _operand(draw, op: str, kind: str):
    values = {"str": CODES, "num": NUMBERS, "bool": st.booleans()}[kind]
    takes = conditions.OPERATORS[op].takes
    if takes == "list":
        return draw(st.lists(COUNTRIES, min_size=1, max_size=3))
    if takes == "prefixes":
        return draw(st.lists(st.text(alphabet="0148", min_size=1, max_size=4), min_size=1, max_size=3))
    if takes == "pair":
        return sorted(draw(st.lists(values, min_size=2, max_size=2)))
    return draw(values)


def _comparisons(draw) -> list[dict]:
    """Every operator a rules file may write, on each kind of field it applies to, and each negated."""
    out = []
    for op in conditions.WRITTEN:
        spec = conditions.OPERATORS[op]
        for field, kind in (("hs_code", "str"), ("declared_value", "num"), ("enterprise.high_risk", "bool")):
            if spec.takes == "list":
                field, kind = "origin_country", "str"
            if (spec.takes == "prefixes" and kind != "str") or (kind == "bool" and spec.takes != "scalar"):
                continue
            if kind == "bool" and spec.ordered:
                continue
            compare = {"field": field, op: _operand(draw, op, kind)}
            out += [compare, {"not": compare}]
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_operator_means_the_same_in_durable_python_and_masks(data):
    """Each operator's durable-rules form, Python test and vectorised mask (and its negation's) agree on
    random operands and records: the check that would have caught durable's regular-expression gaps."""
    trees = _comparisons(data.draw)
    used = {node.op for t in trees for node in _leaves(conditions.normal_form(parse(t)))}
    assert used == set(conditions.OPERATORS)  # not_prefix arrives through negation
    rules = RuleSet.from_dict(
        {
            "version": "t",
            "rules": [
                {"id": f"R{i}", "description": "op", "inspection": "scan", "when": t}
                for i, t in enumerate(trees)
            ],
        }
    )
    records = [
        {
            "hs_code": data.draw(CODES),
            "origin_country": data.draw(COUNTRIES),
            "declared_value": data.draw(NUMBERS),
            "enterprise.high_risk": data.draw(st.booleans()),
            "declared_date": "2026-06-01",
        }
        for _ in range(8)
    ]
    masks = rules.masks(pd.DataFrame(records))
    try:
        for row, record in enumerate(records):
            by_durable = rules.evaluate_fields(record)
            by_python = rules.evaluate_python(record)
            by_mask = [r.id for r in rules.rules if masks[r.id][row]]
            assert by_durable == by_python == by_mask, (
                record,
                [trees[int(i[1:])] for i in set(by_durable) ^ set(by_python)],
            )
    finally:
        rules.close()


def _leaves(node):
    if isinstance(node, conditions.Compare):
        return [node]
    return [leaf for child in node.children for leaf in _leaves(child)]
