"""Declarations and enterprises: derived fields, and bad input refused with the field named."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.declarations import Declaration, Enterprise, parse_declaration, read_enterprises_csv, rule_fields
from engine.errors import InputError
from engine.rules import RuleSet
from tests.conftest import declaration_data


def test_derived_fields():
    decl = parse_declaration(
        declaration_data(hs_code="8471300000", declared_value=1000, quantity=4, net_mass_kg=50)
    )
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
    good.write_text(
        "id,credit_class,high_risk,high_risk_until,problems\nE1,dishonest,true,2026-12-31,2\nE2,,,,\n"
    )
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


# ---------------------------------------------------------------- codes are ASCII, whatever Unicode offers


# Every category a lookalike can come from: digits of other scripts (Nd: Arabic-Indic, Devanagari,
# full-width), other numerals (No: superscripts, circled), letters (L*: full-width A, Cyrillic),
# dashes, spaces and marks.
NON_ASCII = st.characters(
    min_codepoint=128,
    categories=("Nd", "No", "Nl", "Lu", "Ll", "Lo", "Lt", "Lm", "Pd", "Pc", "Po", "Zs", "Mn", "Sm", "So"),
)
PATTERNED = [
    name
    for name, f in Declaration.model_fields.items()
    if any(getattr(m, "pattern", None) for m in f.metadata)
]


def test_every_patterned_field_is_covered():
    assert set(PATTERNED) == {
        "id",
        "enterprise_id",
        "hs_code",
        "origin_country",
        "departure_country",
        "customs_office",
    }


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(PATTERNED), at=st.integers(0, 9), char=NON_ASCII)
def test_a_non_ascii_character_in_any_code_is_refused(field, at, char):
    valid = declaration_data(id="KR12345678", enterprise_id="IMP-1", customs_office="OFF-40")[field]
    at = min(at, len(valid) - 1)
    with pytest.raises(InputError, match=f"field '{field}'"):
        parse_declaration(declaration_data(**{field: valid[:at] + char + valid[at + 1 :]}))


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(["declared_value", "net_mass_kg", "quantity", "items"]),
    digits=st.text(st.characters(categories=("Nd", "No")), min_size=1, max_size=6),
)
def test_numbers_written_in_any_digits_are_refused(field, digits):
    with pytest.raises(InputError, match=f"field '{field}'"):
        parse_declaration(declaration_data(**{field: digits}))


@pytest.mark.parametrize("digits", ["٩٣٠٦٩٠", "९३०६९०", "９３０６９０", "93069٠"])
def test_an_hs_code_in_other_digits_cannot_dodge_an_hs_rule(digits):
    """Arabic-Indic, Devanagari and full-width digits: refused, where they used to be decided with no
    HS rule firing (ASCII 930690 fires WEAPONS-PARTS)."""
    from tests.conftest import BASELINE_RULES

    rules = RuleSet.load(BASELINE_RULES)
    assert "WEAPONS-PARTS" in rules.evaluate(
        parse_declaration(declaration_data(hs_code="930690")), Enterprise(id="E1")
    )
    with pytest.raises(InputError, match="field 'hs_code'"):
        parse_declaration(declaration_data(hs_code=digits))


@pytest.mark.parametrize("field", ["declarations", "inspections", "problems", "high_risk_until"])
def test_enterprise_files_refuse_other_digits(tmp_path, field):
    path = tmp_path / "e.csv"
    value = "٢٠٢٦-01-01" if field == "high_risk_until" else "١٢"
    path.write_text(f"id,{field}\nE1,{value}\n", encoding="utf-8")
    with pytest.raises(InputError, match=field):
        read_enterprises_csv(str(path))
