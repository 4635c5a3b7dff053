"""Declarations and enterprises: derived fields, and bad input refused with the field named."""

from __future__ import annotations

import pytest

from engine.declarations import Enterprise, parse_declaration, read_enterprises_csv, rule_fields
from engine.errors import InputError
from tests.conftest import declaration_data


def test_derived_fields():
    decl = parse_declaration(declaration_data(hs_code="8471300000", declared_value=1000, quantity=4, net_mass_kg=50))
    assert (decl.hs_chapter, decl.hs_heading) == ("84", "8471")
    assert decl.unit_value == 250 and decl.value_per_kg == 20
    fields = rule_fields(decl, Enterprise(id="E1"))
    assert fields["declared_date"] == "2026-06-01" and fields["enterprise.credit_class"] == "general"


BAD_DECLARATIONS = [
    ({"hs_code": "8471"}, "field 'hs_code'"),
    ({"hs_code": "84713A"}, "field 'hs_code'"),
    ({"origin_country": "China"}, "field 'origin_country'"),
    ({"declared_value": -5}, "field 'declared_value': Input should be greater than 0"),
    ({"declared_value": "a lot"}, "field 'declared_value'"),
    ({"net_mass_kg": 0}, "field 'net_mass_kg'"),
    ({"quantity": float("nan")}, "field 'quantity'"),
    ({"declared_at": "yesterday"}, "field 'declared_at'"),
    ({"transport_mode": "camel"}, "field 'transport_mode'"),
    ({"trade_mode": "barter"}, "field 'trade_mode'"),
    ({"id": ""}, "field 'id'"),
    ({"colour": "red"}, "field 'colour': Extra inputs are not permitted"),
]


@pytest.mark.parametrize("override, message", BAD_DECLARATIONS)
def test_bad_declarations_name_the_field(override, message):
    with pytest.raises(InputError) as refused:
        parse_declaration(declaration_data(**override), "input.jsonl:7")
    assert str(refused.value).startswith("input.jsonl:7: ")
    assert message in str(refused.value)


def test_a_missing_field_is_named():
    data = declaration_data()
    del data["enterprise_id"]
    with pytest.raises(InputError, match="field 'enterprise_id': Field required"):
        parse_declaration(data)


def test_enterprises_csv(tmp_path):
    good = tmp_path / "firms.csv"
    good.write_text("id,credit_class,high_risk,high_risk_until,problems\nE1,dishonest,true,2026-12-31,2\nE2,,,,\n")
    firms = read_enterprises_csv(str(good))
    assert firms["E1"].credit_class.value == "dishonest" and firms["E1"].problems == 2
    assert firms["E2"].credit_class.value == "general" and not firms["E2"].high_risk
    bad = tmp_path / "bad.csv"
    bad.write_text("id,credit_class\nE1,excellent\n")
    with pytest.raises(InputError, match=r"bad.csv:2: field 'credit_class'"):
        read_enterprises_csv(str(bad))


def test_rules_can_name_exactly_the_fields_the_engine_provides():
    from engine.declarations import RULE_FIELDS
    fields = rule_fields(parse_declaration(declaration_data()), Enterprise(id="E1"))
    assert set(fields) == set(RULE_FIELDS)
