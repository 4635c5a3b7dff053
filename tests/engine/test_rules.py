"""Rules files: loading, versions, validity dates, enterprise fields, and durable-rules' quirks."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap

import pytest
import yaml
from typer.testing import CliRunner

from engine.cli import app
from engine.declarations import CreditClass, Enterprise, parse_declaration
from engine.errors import InputError
from engine.rules import RuleSet
from tests.conftest import BASELINE_RULES, declaration_data


def ruleset(*rules: dict, lists: dict | None = None) -> RuleSet:
    return RuleSet.from_dict({"version": "test", "lists": lists or {}, "rules": list(rules)})


def rule(id: str, when: dict, **extra) -> dict:
    return {"id": id, "description": f"rule {id}", "inspection": "document", "when": when, **extra}


def test_baseline_rules_load_with_a_content_hash_version():
    rules = RuleSet.load(BASELINE_RULES)
    assert len(rules.rules) == 20
    assert rules.version.startswith("baseline-2026.11+") and len(rules.version.split("+")[1]) == 12
    assert all(r.description for r in rules.rules)


def test_version_changes_with_content_not_with_layout(tmp_path):
    text = BASELINE_RULES.read_text()
    relaid = tmp_path / "relaid.yaml"
    relaid.write_text("# a new comment\n" + text)
    assert RuleSet.load(relaid).version == RuleSet.load(BASELINE_RULES).version
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace("value_per_kg, lt: 20", "value_per_kg, lt: 21"))
    assert RuleSet.load(changed).version != RuleSet.load(BASELINE_RULES).version


def test_every_matching_rule_fires_not_just_one():
    rules = ruleset(
        rule("A", {"field": "hs_chapter", "eq": "61"}),
        rule("B", {"field": "origin_country", "eq": "VN"}),
        rule("C", {"field": "declared_value", "gt": 1}),
        rule("D", {"field": "origin_country", "eq": "CN"}),
    )
    fired = rules.evaluate(parse_declaration(declaration_data()), Enterprise(id="E1"))
    assert fired == ["A", "B", "C"]


def test_a_declaration_matching_nothing_gives_an_empty_list():
    rules = ruleset(rule("A", {"field": "hs_chapter", "eq": "02"}))
    assert rules.evaluate(parse_declaration(declaration_data()), Enterprise(id="E1")) == []


def test_identical_declarations_give_identical_results():
    rules = RuleSet.load(BASELINE_RULES)
    decl = parse_declaration(declaration_data(hs_code="620342", declared_value=100.0))
    firm = Enterprise(id="E1", declarations=0, credit_class=CreditClass.dishonest)
    first = rules.evaluate(decl, firm)
    assert first == ["TEX-UNDERVALUE", "NEW-ENTERPRISE", "DISHONEST-ENTERPRISE"]
    assert all(rules.evaluate(decl, firm) == first for _ in range(50))


def test_validity_dates_bound_a_campaign():
    rules = ruleset(
        rule(
            "CAMPAIGN",
            {"field": "origin_country", "eq": "VN"},
            valid_from="2026-05-01",
            valid_until="2026-05-31",
        )
    )
    firm = Enterprise(id="E1")

    def on(day):
        return rules.evaluate(parse_declaration(declaration_data(declared_at=f"{day}T12:00:00")), firm)

    assert on("2026-04-30") == []
    assert on("2026-05-01") == ["CAMPAIGN"]
    assert on("2026-05-31") == ["CAMPAIGN"]
    assert on("2026-06-01") == []


def test_enterprise_fields_reach_the_rules_and_high_risk_expires():
    rules = ruleset(
        rule("HR", {"field": "enterprise.high_risk", "eq": True}),
        rule("DIS", {"field": "enterprise.credit_class", "eq": "dishonest"}),
        rule("PROB", {"field": "enterprise.problems", "ge": 3}),
    )
    decl = parse_declaration(declaration_data(declared_at="2026-06-01T08:00:00"))
    flagged = Enterprise(
        id="E1", high_risk=True, high_risk_until="2026-06-01", problems=3, credit_class="dishonest"
    )
    assert rules.evaluate(decl, flagged) == ["HR", "DIS", "PROB"]
    expired = flagged.model_copy(update={"high_risk_until": dt.date(2026, 5, 31)})
    assert rules.evaluate(decl, expired) == ["DIS", "PROB"]


def test_two_rule_sets_live_side_by_side():
    strict = ruleset(rule("X", {"field": "origin_country", "eq": "VN"}))
    loose = ruleset(
        rule("X", {"field": "origin_country", "eq": "CN"}), rule("Y", {"field": "quantity", "gt": 0})
    )
    decl, firm = parse_declaration(declaration_data()), Enterprise(id="E1")
    for _ in range(3):
        assert strict.evaluate(decl, firm) == ["X"]
        assert loose.evaluate(decl, firm) == ["Y"]
    strict.close()
    assert loose.evaluate(decl, firm) == ["Y"]


HANG_SCRIPT = textwrap.dedent("""
    from engine import conditions
    from engine.rules import RuleSet
    # Conditions durable-rules satisfies with its own session-state fact {sid, id, $s}: unguarded,
    # each loops forever on the first assert (shared notes, section 1).
    shapes = [{"$nex": {"f_anything": 1}}, {"$ex": {"id": 1}}, {"$ex": {"sid": 1}}]
    for shape in shapes:
        conditions.to_durable = lambda node, shape=shape: shape
        rules = RuleSet.from_dict({"version": "t", "rules": [
            {"id": "R", "description": "d", "inspection": "scan", "when": {"field": "hs_code", "eq": "1"}}]})
        print(rules.evaluate_fields({"hs_code": "847130", "declared_date": "2026-01-01"}))
""")


def test_known_hang_shapes_return_instead_of_looping(root):
    done = subprocess.run(
        [sys.executable, "-c", HANG_SCRIPT], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["['R']"] * 3  # each shape is true of a declaration, too


BAD_RULES = [
    ("not: [valid", "not valid YAML at line"),
    ("- just\n- a list\n", "a rules file is a mapping"),
    ("rules: []\n", "field 'version'"),
    ("version: v\nrules: []\n", "field 'rules'"),
    (
        "version: v\nrules:\n  - {id: A, inspection: scan, when: {field: hs_code, eq: '84'}}\n",
        "rule 'A': field 'description'",
    ),
    (
        "version: v\nrules:\n  - {id: A, description: d, inspection: xray, when: {field: hs_code, eq: "
        "'84'}}\n",
        "rule 'A': field 'inspection'",
    ),
    (
        "version: v\nrules:\n  - {id: A, description: d, inspection: scan, when: {field: colour, eq: red}}\n",
        "rule 'A': field 'when': unknown field 'colour'",
    ),
    (
        "version: v\nrules:\n  - {id: A, description: d, inspection: scan, when: {all: [{field: hs_code, "
        "eq: 0203}]}}\n",
        "rule 'A': field 'when.all[0].eq': 'hs_code' is text",
    ),
    (
        "version: v\nrules:\n  - {id: A, description: d, inspection: scan, sampling_rate: 1.5, when: "
        "{field: hs_code, eq: '1'}}\n",
        "rule 'A': field 'sampling_rate'",
    ),
    (
        "version: v\nrules:\n  - {id: A, description: d, inspection: scan, valid_from: 2026-06-01, "
        "valid_until: 2026-05-01,"
        " when: {field: hs_code, eq: '1'}}\n",
        "valid_from 2026-06-01 is after valid_until",
    ),
    (
        "version: v\nrules:\n  - {id: A, description: d, inspection: scan, when: {field: hs_code, eq: '1'}}\n"
        "  - {id: A, description: d, inspection: scan, when: {field: hs_code, eq: '2'}}\n",
        "rule 'A': the id is used twice",
    ),
    (
        "version: v\nrules:\n  - {id: '$x', description: d, inspection: scan, when: {field: hs_code, eq: "
        "'1'}}\n",
        "rule '$x': field 'id': String should match pattern",
    ),
    (
        "version: v\nrules:\n  - {id: A, description: d, inspection: scan, colour: red, when: {field: "
        "hs_code, eq: '1'}}\n",
        "rule 'A': field 'colour': Extra inputs are not permitted",
    ),
]


@pytest.mark.parametrize("text, message", BAD_RULES)
def test_bad_rules_files_are_refused_with_file_rule_and_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as refused:
        RuleSet.load(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert message in str(refused.value)


def test_missing_rules_file_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="cannot read rules file"):
        RuleSet.load(tmp_path / "nope.yaml")


def test_catalogue_publishes_descriptions_not_thresholds():
    catalogue = RuleSet.load(BASELINE_RULES).catalogue()
    assert {"id", "description", "inspection"} == set(catalogue[0])
    assert "when" not in yaml.safe_dump(catalogue)


def test_vectorised_masks_honour_validity_dates_like_evaluate():
    import pandas as pd

    rules = ruleset(
        rule(
            "CAMPAIGN",
            {"field": "origin_country", "eq": "VN"},
            valid_from="2026-05-01",
            valid_until="2026-05-31",
        )
    )
    days = ["2026-04-30", "2026-05-01", "2026-05-31", "2026-06-01"]
    records = [{"origin_country": "VN", "declared_date": d} for d in days]
    masks = rules.masks(pd.DataFrame(records))["CAMPAIGN"]
    assert masks.tolist() == [False, True, True, False]
    assert [bool(rules.evaluate_python(r)) for r in records] == masks.tolist()


# ---------------------------------------------------------------- files durable-rules cannot run


def _tree(depth: int, counter: list) -> dict:
    """A condition `depth` levels of all/any deep, with 2**depth distinct comparisons."""
    if depth == 0:
        counter.append(1)
        return {"field": "declared_value", "gt": len(counter)}
    return {"all" if depth % 2 == 0 else "any": [_tree(depth - 1, counter), _tree(depth - 1, counter)]}


def _rules_with(condition) -> dict:
    return {
        "version": "t",
        "rules": [
            {
                "id": "FINE",
                "description": "d",
                "inspection": "document",
                "when": {"field": "hs_chapter", "eq": "93"},
            },
            {"id": "TOO-DEEP", "description": "d", "inspection": "document", "when": condition},
        ],
    }


def test_a_condition_durable_cannot_compile_is_refused_naming_the_rule(tmp_path):
    """Four levels of all/any over 16 comparisons exceed durable's 32 expressions on one path (its
    error 113): one error naming the rule, from the loader and from `validate`, instead of a crash."""
    with pytest.raises(InputError, match="rule 'TOO-DEEP': the rules engine cannot run this condition"):
        RuleSet.from_dict(_rules_with(_tree(4, [])))
    path = tmp_path / "deep.yaml"
    path.write_text(json.dumps(_rules_with(_tree(4, []))))  # JSON is YAML
    done = CliRunner().invoke(app, ["validate", str(path)])
    assert done.exit_code == 2 and isinstance(done.exception, SystemExit) and "TOO-DEEP" in done.stderr
    assert RuleSet.from_dict(_rules_with(_tree(3, []))).by_id["TOO-DEEP"]  # three levels compile


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    lines = ["version: x", "lists:", '  l0: &l0 ["1","2","3","4","5","6","7","8","9"]']
    lines += [f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    lines += ["rules:", "  - {id: R, description: d, inspection: document, when: {field: hs_code, in: *l8}}"]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines))  # 600 bytes, 387 million values once expanded
    done = CliRunner().invoke(app, ["validate", str(path)])  # it took 90 s and 300 MB before the crash
    assert done.exit_code == 2 and isinstance(done.exception, SystemExit)
    assert "aliases expand to more than 200,000 values" in done.stderr
