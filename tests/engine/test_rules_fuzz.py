"""durable-rules must agree with the plain-Python evaluator on the engine's whole input domain.

durable's C parser once failed on any float whose JSON form was an exponent without a decimal
point (`1e-05`): a trader could shape value and quantity so a declaration could not be decided.
These tests draw from the real input domain (tiny, huge, subnormal, integer-valued floats, long and
unicode strings) and require the same fired rules from both evaluators on every draw.
"""

from __future__ import annotations

import json
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.declarations import Enterprise, parse_declaration, rule_fields
from engine.rules import RuleSet, durable_json
from tests.conftest import declaration_data

EXTREMES = [
    5e-324,
    2.2250738585072014e-308,
    1e-300,
    1e-05,
    4e-06,
    0.1,
    1.0,
    20.0,
    1e16,
    1.7976931348623157e308,
]


def _numeric_rules() -> list[dict]:
    rules = []
    for k, threshold in enumerate(EXTREMES + [0.0, -0.0, 3]):
        for op in ("lt", "le", "gt", "ge", "eq", "ne"):
            for field in ("unit_value", "value_per_kg", "declared_value", "quantity"):
                rules.append(
                    {
                        "id": f"N{k}-{op}-{field}",
                        "description": "d",
                        "inspection": "scan",
                        "when": {"field": field, op: threshold},
                    }
                )
    rules.append(
        {
            "id": "BETWEEN",
            "description": "d",
            "inspection": "scan",
            "when": {"field": "unit_value", "between": [1e-05, 1e16]},
        }
    )
    rules.append(
        {
            "id": "ITEMS",
            "description": "d",
            "inspection": "scan",
            "when": {"not": {"field": "items", "in": [1, 2, 999]}},
        }
    )
    return rules


def _text_rules() -> list[dict]:
    return [
        {
            "id": "T-EQ",
            "description": "d",
            "inspection": "scan",
            "when": {"field": "customs_office", "eq": 'Zé"\\x'},
        },
        {
            "id": "T-IN",
            "description": "d",
            "inspection": "scan",
            "when": {"field": "enterprise_id", "in": ["E1", "日本", "a\u0000b", ""]},
        },
        {
            "id": "T-PREFIX",
            "description": "d",
            "inspection": "scan",
            "when": {"field": "hs_code", "prefix": ["84", "6203"]},
        },
        {
            "id": "T-NOT-PREFIX",
            "description": "d",
            "inspection": "scan",
            "when": {"not": {"field": "customs_office", "prefix": ["AB", "Z"]}},
        },
        {"id": "T-NE", "description": "d", "inspection": "scan", "when": {"field": "id", "ne": "D1"}},
        {
            "id": "T-DASH",
            "description": "d",
            "inspection": "scan",
            "when": {"field": "customs_office", "prefix": ["OFF-4", "A_"]},
        },
        {
            "id": "T-NOT-DASH",
            "description": "d",
            "inspection": "scan",
            "when": {"not": {"field": "customs_office", "prefix": ["OFF-4", "-_"]}},
        },
    ]


RULES = RuleSet.from_dict({"version": "fuzz", "rules": _numeric_rules() + _text_rules()})

positive = st.one_of(
    st.sampled_from([x for x in EXTREMES if x > 0]),
    st.floats(min_value=5e-324, max_value=1.7976931348623157e308, allow_nan=False, allow_infinity=False),
    st.integers(min_value=1, max_value=10**15).map(float),
)
text = st.one_of(
    st.text(max_size=200),
    st.sampled_from(["OFF-40", "OFF-4", "OFF-", "OFF_4", "A_B", "A-", "-_x", "-", "_"]),
    st.text(alphabet="OF-_4A", max_size=8),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=positive,
    quantity=positive,
    mass=positive,
    items=st.integers(1, 999),
    hs=st.sampled_from(["620342", "847130", "8471300000", "010121"]),
)
def test_durable_agrees_with_python_on_any_valid_declaration(value, quantity, mass, items, hs):
    decl = parse_declaration(
        declaration_data(declared_value=value, quantity=quantity, net_mass_kg=mass, items=items, hs_code=hs)
    )
    fields = rule_fields(decl, Enterprise(id="E1"))
    assert RULES.evaluate(decl, Enterprise(id="E1")) == RULES.evaluate_python(fields)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(office=text, firm=text, ident=text, number=st.floats(allow_nan=False, allow_infinity=True, width=64))
def test_durable_agrees_with_python_on_any_field_values(office, firm, ident, number):
    """Below validation too: any text and any float (negative zero, infinities) the fields can hold."""
    decl = parse_declaration(declaration_data())
    fields = rule_fields(decl, Enterprise(id="E1")) | {
        "customs_office": office,
        "enterprise_id": firm,
        "id": ident,
        "unit_value": number,
        "quantity": -number,
    }
    assert RULES.evaluate_fields(fields) == RULES.evaluate_python(fields)


@given(st.floats(allow_nan=False))
def test_every_float_is_written_with_a_point_and_reads_back_exactly(x):
    text = durable_json(x)
    assert "." in text
    assert json.loads(text) == x or (x in (float("inf"), float("-inf")) and json.loads(text) == x)


def test_the_reported_undervaluation_is_decided(root):
    """$1 for 100,000 units (unit value 1e-05): the rule that targets it fires, through durable."""
    rules = RuleSet.load(root / "scenarios" / "rules" / "baseline.yaml")
    decl = parse_declaration(declaration_data(hs_code="620342", declared_value=1, quantity=100000))
    assert "TEX-UNDERVALUE" in rules.evaluate(decl, Enterprise(id="E1", declarations=5))


def test_durable_json_matches_json_for_everything_but_floats():
    value = {"a": [1, True, None, 'é"\\\u0001'], "b": {"c": -7}}
    assert json.loads(durable_json(value)) == value
    assert sys.float_info.max == json.loads(durable_json(sys.float_info.max))


def test_more_rules_matching_at_once_than_durables_stack_holds():
    """durable fails a fact (error 303) when more than 64 paths match it at once; packing the rules
    into several rulesets keeps every one of 200 matching rules (each an `any` of three) firing."""
    rules = [
        {
            "id": f"R{i}",
            "description": "d",
            "inspection": "scan",
            "when": {"any": [{"field": "unit_value", "gt": -i - 1000.0 * j - 0.5} for j in range(3)]},
        }
        for i in range(200)
    ]
    rules.append(
        {
            "id": "CHAPTERS",
            "description": "d",
            "inspection": "scan",
            "when": {"field": "hs_code", "in": [f"{k:06d}" for k in range(100)] + ["847130"]},
        }
    )
    ruleset = RuleSet.from_dict({"version": "many", "rules": rules})
    fields = {"unit_value": 5.0, "hs_code": "847130", "declared_date": "2026-01-01"}
    assert ruleset.evaluate_fields(fields) == ruleset.evaluate_python(fields) == [r["id"] for r in rules]
