"""The selection decision, tested statistically: rates inside binomial intervals, independence of the
random channel from the rules, credit multipliers, and verifiable keyed draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from engine.declarations import CreditClass, Enterprise, InspectionType, parse_declaration
from engine.randomness import KeyedDraws, SeededDraws
from engine.rules import RuleSet
from engine.selection import CREDIT_CLASSES, INSPECTION_TYPES, SelectionPolicy, Selector
from tests.conftest import declaration_data

N = 100_000


def binomial_interval(n: int, p: float, confidence: float = 0.99) -> tuple[int, int]:
    """The central interval holding `confidence` of Binomial(n, p) counts."""
    return tuple(int(x) for x in stats.binom.interval(confidence, n, p))


def rules_with(*rules: dict) -> RuleSet:
    return RuleSet.from_dict({"version": "t", "rules": list(rules)})


TEXTILE = {
    "id": "TEX",
    "description": "textiles",
    "inspection": "physical",
    "when": {"field": "hs_chapter", "eq": "61"},
}
HALF = {
    "id": "HALF",
    "description": "sampled",
    "inspection": "document",
    "sampling_rate": 0.5,
    "when": {"field": "origin_country", "eq": "VN"},
}


def test_random_channel_rate_is_binomial_over_all_declarations():
    selector = Selector(rules_with(TEXTILE), SelectionPolicy(random_ratio=0.03), SeededDraws(11))
    hits = sum(selector.decide_fired(f"D{i}", CreditClass.general, []).channel == "random" for i in range(N))
    low, high = binomial_interval(N, 0.03)
    assert low <= hits <= high


def test_random_channel_is_independent_of_rule_hits():
    """Random picks among declarations the rules hit and among the rest: same rate (chi-square)."""
    selector = Selector(rules_with(TEXTILE), SelectionPolicy(random_ratio=0.05), SeededDraws(3))
    table = np.zeros((2, 2), int)  # rows: rule hit or not; columns: random pick or not
    for i in range(N):
        fired = ["TEX"] if i % 3 == 0 else []
        decision = selector.decide_fired(f"D{i}", CreditClass.general, fired)
        table[int(bool(fired)), int(decision.random_draw < decision.random_threshold)] += 1
    assert stats.chi2_contingency(table).pvalue > 0.01
    for row in table:
        low, high = binomial_interval(row.sum(), 0.05)
        assert low <= row[1] <= high
    # and targeted declarations are all selected, whatever their random draw
    assert all(selector.decide_fired(f"T{i}", CreditClass.general, ["TEX"]).selected for i in range(1000))


@pytest.mark.parametrize(
    "credit, expected",
    [
        (CreditClass.advanced_certified, 0.15 * 0.05),
        (CreditClass.general_certified, 0.4 * 0.05),
        (CreditClass.general, 0.05),
        (CreditClass.dishonest, 1 - 0.95 * 0.2),  # the random 5% and, independently, the credit floor 0.8
    ],
)
def test_credit_multipliers_and_the_dishonest_floor(credit, expected):
    # one seed per class, so the four cases are independent trials of a 99% interval
    selector = Selector(
        rules_with(TEXTILE), SelectionPolicy(random_ratio=0.05), SeededDraws(list(CreditClass).index(credit))
    )
    n = 40_000
    hits = sum(selector.decide_fired(f"D{i}", credit, []).selected for i in range(n))
    low, high = binomial_interval(n, expected)
    assert low <= hits <= high


def test_credit_acts_on_every_computer_channel_and_the_floor_is_its_own_channel():
    """An advanced-certified firm's rule hits are sampled at its 0.15x too (the credit rules bound the
    total rate); a dishonest firm's random draw is a pure 1.0x sample, its floor a separate channel."""
    policy = SelectionPolicy(random_ratio=0.0)
    n = 40_000
    certified = Selector(rules_with(TEXTILE), policy, SeededDraws(4))
    picks = sum(
        certified.decide_fired(f"C{i}", CreditClass.advanced_certified, ["TEX"]).selected for i in range(n)
    )
    low, high = binomial_interval(n, 0.15)
    assert low <= picks <= high
    dishonest = Selector(rules_with(TEXTILE), SelectionPolicy(random_ratio=0.05), SeededDraws(6))
    decisions = [dishonest.decide_fired(f"X{i}", CreditClass.dishonest, []) for i in range(n)]
    assert all(d.random_threshold == 0.05 and d.credit_threshold == 0.8 for d in decisions)
    random = sum(d.channel == "random" for d in decisions)
    low, high = binomial_interval(n, 0.05)
    assert low <= random <= high
    credit = sum(d.channel == "credit" for d in decisions)
    low, high = binomial_interval(n, 0.95 * 0.8)
    assert low <= credit <= high
    assert all(math.isclose(d.inclusion_probability, 1 - 0.95 * 0.2) for d in decisions)


def test_rule_sampling_rate_and_inclusion_probability():
    selector = Selector(rules_with(HALF), SelectionPolicy(random_ratio=0.1), SeededDraws(8))
    n = 40_000
    decisions = [selector.decide_fired(f"D{i}", CreditClass.general, ["HALF"]) for i in range(n)]
    expected = 1 - (1 - 0.1) * (1 - 0.5)
    assert all(math.isclose(d.inclusion_probability, expected) for d in decisions)
    low, high = binomial_interval(n, expected)
    assert low <= sum(d.selected for d in decisions) <= high
    low, high = binomial_interval(n, 0.5)
    assert low <= sum("HALF" in d.sampled_rules for d in decisions) <= high
    assert all(d.rules == ["HALF"] for d in decisions)


def test_policy_can_override_a_rule_sampling_rate():
    policy = SelectionPolicy(random_ratio=0.0, rule_sampling={"HALF": 0.0001})
    selector = Selector(rules_with(HALF), policy, SeededDraws(8))
    assert (
        sum(selector.decide_fired(f"D{i}", CreditClass.general, ["HALF"]).selected for i in range(2000)) < 5
    )


def test_channels_and_inspection_type():
    policy = SelectionPolicy(random_ratio=1.0, random_inspection="scan")
    selector = Selector(rules_with(TEXTILE, HALF), policy, SeededDraws(1))
    both = selector.decide_fired("D1", CreditClass.general, ["TEX"])
    assert both.channel == "both" and both.inspection_type == "physical"  # most intensive wins
    only_random = selector.decide_fired("D2", CreditClass.general, [])
    assert only_random.channel == "random" and only_random.inspection_type == "scan"
    none = Selector(rules_with(TEXTILE), SelectionPolicy(random_ratio=0.0), SeededDraws(1))
    decided = none.decide_fired("D3", CreditClass.general, [])
    assert not decided.selected and decided.channel == "none" and decided.inspection_type is None


def test_full_decision_carries_what_replay_needs():
    rules = rules_with(TEXTILE)
    selector = Selector(rules, SelectionPolicy(random_ratio=0.03), KeyedDraws(b"k" * 32))
    decision = selector.decide(parse_declaration(declaration_data()), Enterprise(id="E1"))
    assert decision.rules == ["TEX"] and decision.selected and decision.channel in ("targeted", "both")
    assert decision.rules_version == rules.version
    assert decision.random_draw == KeyedDraws(b"k" * 32).uniform("D1", "random")


def test_keyed_draws_are_reproducible_differ_by_key_and_look_uniform():
    a, b = KeyedDraws(b"a" * 32), KeyedDraws(b"b" * 32)
    ids = [f"D{i}" for i in range(20_000)]
    draws = [a.uniform(i, "random") for i in ids]
    assert draws == [KeyedDraws(b"a" * 32).uniform(i, "random") for i in ids]
    assert sum(x == b.uniform(i, "random") for x, i in zip(draws, ids)) == 0
    assert all(0 <= x < 1 for x in draws)
    assert stats.kstest(draws, "uniform").pvalue > 0.01
    # purposes are separate streams: the rule-sampling draw is not the random-channel draw
    assert a.uniform("D1", "random") != a.uniform("D1", "rule_sampling")


def test_short_keys_are_refused(tmp_path):
    from engine.errors import InputError

    with pytest.raises(InputError, match="at least 16 bytes"):
        KeyedDraws(b"short")
    bad = tmp_path / "key"
    bad.write_text("not hex\n")
    with pytest.raises(InputError, match="hexadecimal"):
        KeyedDraws.from_file(bad)


def test_seeded_draws_are_reproducible_and_streams_independent():
    one, two = SeededDraws(42), SeededDraws(42)
    assert [one.uniform("x", "random") for _ in range(5)] == [two.uniform("y", "random") for _ in range(5)]
    # drawing from another purpose does not shift the random stream (common random numbers)
    three, four = SeededDraws(42), SeededDraws(42)
    three.uniform("x", "rule_sampling")
    assert three.uniform("x", "random") == four.uniform("x", "random")


def test_the_batch_core_and_the_single_decision_agree_exactly():
    """One definition of the arithmetic at two speeds: 2,000 random (credit class, fired rules)
    decided one by one by Selector and at once by `choose`, with the same draws."""
    from engine.selection import CREDIT_CLASSES, INSPECTION_TYPES, NOT_INSPECTED, PolicyTable, choose

    rules = RuleSet.load(__import__("tests.conftest", fromlist=["x"]).BASELINE_RULES)
    policy = SelectionPolicy(random_ratio=0.07, rule_sampling={"NEW-ENTERPRISE": 0.3})
    draws = KeyedDraws.from_seed(21)
    selector, table = Selector(rules, policy, draws), PolicyTable.of(policy, rules)
    rng = np.random.default_rng(5)
    n, ids = 2000, [r.id for r in rules.rules]
    credit = rng.integers(0, len(CREDIT_CLASSES), n)
    hits = rng.random((n, len(ids))) < 0.15
    u_random = np.array([draws.uniform(f"B{i}", "random") for i in range(n)])
    rates = table.rule_rates(credit)
    u_rules = np.array(
        [
            [
                draws.uniform(f"B{i}/{r}", "rule_sampling") if rates[i, k] < 1 else 0.0
                for k, r in enumerate(ids)
            ]
            for i in range(n)
        ]
    )
    u_credit = np.array([draws.uniform(f"B{i}", "credit") for i in range(n)])
    batch = choose(table, credit, hits, u_random, u_rules, u_credit)
    for i in range(n):
        one = selector.decide_fired(
            f"B{i}", CREDIT_CLASSES[credit[i]], [ids[k] for k in np.flatnonzero(hits[i])]
        )
        assert one.selected == bool(batch.selected[i]) and one.random_threshold == batch.threshold[i]
        assert (one.channel == "credit") == bool(batch.credit_only[i])
        assert one.inclusion_probability == batch.inclusion[i]
        assert one.sampled_rules == [ids[k] for k in np.flatnonzero(batch.sampled[i])]
        code = int(batch.inspection[i])
        assert one.inspection_type == (INSPECTION_TYPES[code].value if code != NOT_INSPECTED else None)


def test_a_decision_carries_its_risk_score_and_each_rules_contribution():
    weighted = rules_with(
        {**TEXTILE, "weight": 3.5},
        {**HALF, "weight": 0.0},
        {
            "id": "ANY",
            "description": "every declaration",
            "inspection": "document",
            "when": {"field": "declared_value", "gt": 0},
        },
    )
    selector = Selector(weighted, SelectionPolicy(random_ratio=0.0), SeededDraws(2))
    textile_vn = parse_declaration(declaration_data(hs_code="610910", origin_country="VN"))
    decision = selector.decide(textile_vn, Enterprise(id="E1"))
    assert decision.contributions == {"TEX": 3.5, "HALF": 0.0, "ANY": 1.0}  # weight 1 unless set
    assert decision.score == 4.5
    other = parse_declaration(declaration_data(hs_code="940360", origin_country="CN"))
    assert selector.decide(other, Enterprise(id="E1")).score == 1.0


def test_the_batch_core_scores_as_the_single_decision_does():
    from engine.selection import CREDIT_CLASSES, PolicyTable, choose

    weighted = rules_with({**TEXTILE, "weight": 2.0}, {**HALF, "weight": 0.25})
    table = PolicyTable.of(SelectionPolicy(), weighted)
    hits = np.array([[True, True], [True, False], [False, False]])
    n = len(hits)
    got = choose(
        table,
        np.full(n, CREDIT_CLASSES.index(CreditClass.general)),
        hits,
        np.ones(n),
        np.zeros(hits.shape),
        np.ones(n),
    )
    assert got.score.tolist() == [2.25, 2.0, 0.0]


def test_a_negative_weight_is_refused_with_its_field():
    from engine.errors import InputError

    with pytest.raises(InputError, match="field 'weight'"):
        rules_with({**TEXTILE, "weight": -1})


@pytest.mark.parametrize(
    "credit, fields, ratio, lane",
    [
        (CreditClass.general, {"hs_code": "610910"}, 0.0, "red"),  # TEX: physical
        (
            CreditClass.general,
            {"hs_code": "940360", "origin_country": "VN"},
            0.0,
            "yellow",
        ),  # HALF sampled: document
        (CreditClass.advanced_certified, {"hs_code": "610910"}, 0.0, "blue"),  # flagged, not selected
        (CreditClass.general, {"hs_code": "940360", "origin_country": "CN"}, 0.0, "green"),
        (CreditClass.advanced_certified, {"hs_code": "940360", "origin_country": "CN"}, 0.0, "green"),
        (
            CreditClass.general,
            {"hs_code": "940360", "origin_country": "CN"},
            1.0,
            "red",
        ),  # random picks: physical
    ],
)
def test_lanes_follow_the_inspection_the_score_and_the_credit_class(credit, fields, ratio, lane):
    """Red when the goods are examined, yellow for documents only, blue for a certified firm's flagged
    declaration released to post-clearance audit, green otherwise."""
    half_always = {**HALF, "sampling_rate": 1.0}
    policy = SelectionPolicy(random_ratio=ratio, credit_multipliers={CreditClass.advanced_certified: 0.0})
    selector = Selector(rules_with(TEXTILE, half_always), policy, SeededDraws(4))
    decision = selector.decide(
        parse_declaration(declaration_data(**fields)), Enterprise(id="E1", credit_class=credit)
    )
    assert decision.lane == lane, decision


# ---------------------------------------------------------------- the scalar live path against the batch core

SCALAR_FIELDS = (
    "threshold",
    "random_hit",
    "targeted",
    "floor",
    "credit_hit",
    "inspection",
    "inclusion",
    "score",
)


def _random_table(rng, paced: bool, model: str | None = None):
    from engine.selection import PolicyTable

    k = int(rng.integers(0, 12))
    rules = (
        RuleSet.from_dict(
            {
                "version": "p",
                "rules": [
                    {
                        "id": f"R{j}",
                        "description": "d",
                        "inspection": ["document", "scan", "physical"][int(rng.integers(3))],
                        "sampling_rate": float(rng.choice([1.0, rng.random() + 1e-9, 0.001])),
                        "weight": float(rng.random() * 5),
                        "when": {"field": "hs_chapter", "eq": "01"},
                    }
                    for j in range(k)
                ],
            }
        )
        if k
        else RuleSet([], "p")
    )
    policy = SelectionPolicy(
        random_ratio=float(rng.random() * 0.3),
        credit_multipliers={c: float(rng.random()) for c in CreditClass},
        credit_floors={c: float(rng.random() * 0.9) for c in CreditClass if rng.random() < 0.5},
        random_inspection=["document", "scan", "physical"][int(rng.integers(3))],
        **(
            {"expected_rate": float(rng.random() * 0.2), "rate_window": 50, "rate_refresh": 10}
            if paced
            else {}
        ),
        model={"combine": model, "weight": float(rng.random() * 20 + 0.1)} if model else None,
    )
    return policy, PolicyTable.of(policy, rules), k


@pytest.mark.parametrize("paced, model", [(False, None), (True, None), (True, "alone"), (True, "added")])
def test_the_scalar_live_path_equals_the_batch_core_bit_for_bit(paced, model):
    """10,000 random decisions over random policies (ratios, multipliers, floors, rule rates of 0, 1 and
    between, weights, inspection types; with and without an expected rate, with a learned score alone
    or added to the rules'): `choose_one` on plain numbers gives exactly what `choose` gives for the
    batch, field by field."""
    from engine.selection import Pacers, choose, choose_one, lanes

    rng = np.random.default_rng(2026)
    checked = 0
    for _ in range(50):
        policy, table, k = _random_table(rng, paced, model)
        n = 200
        credit = rng.integers(0, len(CreditClass), n)
        hits = rng.random((n, k)) < 0.3
        u_random, u_rules, u_credit, u_capacity = (
            rng.random(n),
            rng.random((n, k)),
            rng.random(n),
            rng.random(n),
        )
        probability = rng.random(n) if model else None
        offices = np.array(["OFF-1"] * n)
        batch_pacers, scalar_pacers = Pacers(), Pacers()
        pace = batch_pacers.pace(policy, offices, u_capacity) if paced else None
        c = choose(table, credit, hits, u_random, u_rules, u_credit, pace, probability)
        lane = lanes(c.inspection, c.score, credit)
        for i in range(n):
            fired = [int(j) for j in np.flatnonzero(hits[i])]
            one_pace = (
                scalar_pacers.pace(policy, offices[i : i + 1], u_capacity[i : i + 1]) if paced else None
            )
            one = choose_one(
                table,
                int(credit[i]),
                fired,
                float(u_random[i]),
                {j: float(u_rules[i, j]) for j in fired},
                float(u_credit[i]),
                one_pace,
                None if probability is None else float(probability[i]),
            )
            for name in SCALAR_FIELDS:
                assert getattr(one, name) == getattr(c, name)[i], (name, i)
            assert set(one.sampled) == set(np.flatnonzero(c.sampled[i])) and one.lane == lane[i]
            if paced:
                assert (one.cutoff, one.tie) == (c.paced.cutoff[i], c.paced.tie[i])
            checked += 1
    assert checked == 10_000


def test_a_learned_score_takes_the_most_likely_declarations_that_no_rule_flagged():
    """With a policy naming a model, the pacer ranks by the probability: under a 10% expected rate the
    targeted channel takes about the top 10% of probabilities, rules or not, and inspects them as the
    policy says; without the probability (no model trained yet) it ranks by the rules alone."""
    from engine.selection import Pacers, PolicyTable, choose

    policy = SelectionPolicy(
        random_ratio=0.0,
        credit_floors={},
        expected_rate=0.1,
        rate_window=500,
        rate_refresh=50,
        model={"combine": "alone", "inspection": "scan"},
    )
    table = PolicyTable.of(policy, RuleSet([], "p"))
    n, rng = 5000, np.random.default_rng(3)
    probability, credit = rng.random(n), np.full(n, CREDIT_CLASSES.index(CreditClass.general))
    none = np.zeros((n, 0), bool)
    pace = Pacers().pace(policy, np.array(["OFF-1"] * n), rng.random(n))
    c = choose(table, credit, none, rng.random(n), none, rng.random(n), pace, probability)
    taken = c.targeted[1000:]  # after the pacer's first windows
    assert 0.08 < taken.mean() < 0.12
    assert probability[1000:][taken].min() > 0.8  # the top tenth, give or take the online cutoff
    assert set(c.inspection[c.targeted]) == {INSPECTION_TYPES.index(InspectionType.scan)}
    rules_only = choose(
        table,
        credit,
        none,
        rng.random(n),
        none,
        rng.random(n),
        Pacers().pace(policy, np.array(["OFF-1"] * n), rng.random(n)),
    )
    assert not rules_only.targeted.any()  # no rule, no model yet: nothing to rank


def test_a_learned_score_needs_an_expected_rate():
    with pytest.raises(ValueError, match="ranks under an expected rate"):
        SelectionPolicy(model={"combine": "alone"})
