"""Capacity-aware targeting: the online score cutoff tracks the expected rate, the random channel
ignores it, and the live office (one declaration at a time, across restarts) decides exactly as the
batch core the simulation uses."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from engine import database
from engine.audit import AuditLog
from engine.capacity import Pacer, cutoff_for
from engine.declarations import CreditClass, Enterprise, parse_declaration
from engine.office import Office
from engine.randomness import KeyedDraws
from engine.replay import replay
from engine.rules import RuleSet
from engine.selection import CREDIT_CLASSES, Pacers, PolicyTable, SelectionPolicy, Selector, choose
from tests.conftest import declaration_data

DAY = 4500  # declarations a day at the simulated baseline port
LEVELS = np.array([0.0, 1.0, 2.0, 3.0, 5.0])  # sums of a few rule weights: ties are the rule


def stream(days: int, flagged_share, seed: int = 2) -> tuple[np.ndarray, ...]:
    """Scores with `flagged_share(t)` of them positive at time t in [0, 1], a tenth of the
    declarations from certified firms (multiplier 0.4), the channel's draws, and 1% taken by the
    random channel first."""
    rng = np.random.default_rng(seed)
    n = days * DAY
    t = np.arange(n) / n
    flagged = rng.random(n) < flagged_share(t)
    score = np.where(flagged, rng.choice(LEVELS[1:], n, p=[0.55, 0.25, 0.13, 0.07]), 0.0)
    return score, np.where(rng.random(n) < 0.1, 0.4, 1.0), rng.random(n), rng.random(n) < 0.01


def daily_rates(hit: np.ndarray, warm_days: int = 2) -> np.ndarray:
    return hit[warm_days * DAY :].reshape(-1, DAY).mean(axis=1)


@pytest.mark.parametrize(
    "shape, share",
    [
        ("stationary", lambda t: np.full_like(t, 0.15)),
        ("drifting", lambda t: 0.06 + 0.2 * t),  # the flagged share more than quadruples over the run
        ("step", lambda t: np.where(t < 0.5, 0.08, 0.25)),  # a new rule starts firing mid-way
    ],
)
def test_the_online_cutoff_keeps_every_day_within_ten_percent_of_the_expected_rate(shape, share):
    """Open loop, a day's count at 3% of 4,500 is binomial, sd 8.6% of the target; the feedback keeps
    every day's selections (random and targeted, after two days of warm-up) within +-10%."""
    score, weight, u, taken = stream(40, share)
    pacer = Pacer(0.03, window=2000, refresh=200)
    rates = daily_rates(pacer.run(score, weight, u, taken).hit | taken) / 0.03
    assert rates.min() > 0.9 and rates.max() < 1.1, (shape, rates.min(), rates.max())


def test_open_loop_would_miss_the_band_so_the_test_can_fail(monkeypatch):
    """With the feedback switched off the same stream leaves the band on some days."""
    monkeypatch.setattr("engine.capacity.GAIN", 0.0)
    score, weight, u, taken = stream(40, lambda t: 0.06 + 0.2 * t)
    rates = daily_rates(Pacer(0.03, 5000, 250).run(score, weight, u, taken).hit | taken) / 0.03
    assert rates.min() < 0.9 or rates.max() > 1.1


def test_the_highest_scores_go_first():
    """The channel's chance never falls as the score rises, and a score above the cutoff is always
    taken (multiplier 1)."""
    score, weight, u, taken = stream(5, lambda t: np.full_like(t, 0.15))
    out = Pacer(0.03, 2000, 200).run(score, np.ones_like(weight), u, taken)
    assert not (out.hit & taken).any()
    assert (out.hit[(score > out.cutoff) & ~taken]).all()
    assert not out.hit[score < out.cutoff].any()
    assert not out.hit[score == 0].any()


def test_cutoff_for_splits_the_tie_to_meet_the_goal():
    score = np.array([0, 1, 1, 1, 1, 2, 2, 3], float)
    weight = np.ones(8)
    assert cutoff_for(score, weight, 1.0) == (3.0, 1.0)  # the top one exactly
    assert cutoff_for(score, weight, 2.0) == (2.0, 0.5)  # the 3, and one of the two 2s
    assert cutoff_for(score, weight, 5.0) == (1.0, 0.5)  # 3, both 2s, two of the four 1s
    assert cutoff_for(score, weight, 9.0) == (0.0, 0.0)  # more than flagged: every flagged one
    assert cutoff_for(score, weight, 0.0) == (3.0, 0.0)  # nothing


def test_one_at_a_time_in_batches_or_after_a_restart_the_same_decisions():
    score, weight, u, taken = stream(3, lambda t: np.full_like(t, 0.15))
    whole = Pacer(0.03, 2000, 200).run(score, weight, u, taken)
    one = Pacer(0.03, 2000, 200)
    singles = np.array(
        [
            one.run(score[i : i + 1], weight[i : i + 1], u[i : i + 1], taken[i : i + 1]).hit[0]
            for i in range(3000)
        ]
    )
    assert (singles == whole.hit[:3000]).all()
    for stop in (3000, 3400, 5001):  # mid-block, on a block boundary, anywhere
        first = Pacer(0.03, 2000, 200).run(score[:stop], weight[:stop], u[:stop], taken[:stop])
        again = Pacer(0.03, 2000, 200)
        back = slice(max(0, stop - 2000), stop)
        again.restore(
            stop, score[back], weight[back], first.hit[back], taken[back], first.cutoff[-1], first.tie[-1]
        )
        rest = again.run(score[stop:], weight[stop:], u[stop:], taken[stop:])
        assert (rest.hit == whole.hit[stop:]).all() and (rest.cutoff == whole.cutoff[stop:]).all()


TEX = {
    "id": "TEX",
    "description": "textiles",
    "inspection": "physical",
    "weight": 3,
    "when": {"field": "hs_chapter", "eq": "61"},
}
VN = {
    "id": "VN",
    "description": "from Viet Nam",
    "inspection": "document",
    "weight": 1,
    "when": {"field": "origin_country", "eq": "VN"},
}


def test_two_instances_taking_turns_decide_as_one_pacer():
    """Two instances on one database each run their own pacer over their own batches and absorb the
    other's decisions before their next: every cutoff and decision is the single pacer's."""
    score, weight, u, taken = stream(2, lambda t: np.full_like(t, 0.15))
    alone = Pacer(0.03, window=2000, refresh=200).run(score, weight, u, taken)
    pacers, unseen = [Pacer(0.03, 2000, 200), Pacer(0.03, 2000, 200)], [[], []]
    rng, i, turn, cutoffs = np.random.default_rng(4), 0, 0, np.zeros(len(score))
    while i < len(score):
        j = min(len(score), i + int(rng.integers(1, 400)))  # batches of any size, across refreshes
        me, other = pacers[turn], 1 - turn
        for a, b, out in unseen[turn]:  # what the other decided since this one's last turn
            me.absorb(score[a:b], weight[a:b], out.hit, taken[a:b], out.cutoff[-1], out.tie[-1])
        unseen[turn] = []
        out = me.run(score[i:j], weight[i:j], u[i:j], taken[i:j])
        unseen[other].append((i, j, out))
        cutoffs[i:j] = out.cutoff
        i, turn = j, other if rng.random() < 0.6 else turn
    assert (cutoffs == alone.cutoff).all()


def test_the_random_channel_ignores_the_scores_and_the_expected_rate():
    """Random picks among top-scored and unscored declarations: the same binomial rate (chi-square)."""
    policy = SelectionPolicy(random_ratio=0.05, expected_rate=0.02)
    selector = Selector(
        RuleSet.from_dict({"version": "t", "rules": [TEX, VN]}), policy, KeyedDraws.from_seed(4)
    )
    table = np.zeros((2, 2), int)
    for i in range(40_000):
        fired = ["TEX", "VN"] if i % 4 == 0 else []
        d = selector.decide_fired(f"D{i}", CreditClass.general, fired, "PORT")
        table[int(bool(fired)), int(d.random_draw < d.random_threshold)] += 1
    assert stats.chi2_contingency(table).pvalue > 0.01
    for row in table:
        low, high = stats.binom.interval(0.99, row.sum(), 0.05)
        assert low <= row[1] <= high


def test_min_random_rate_is_a_floor_under_the_ratio():
    policy = SelectionPolicy(random_ratio=0.001, min_random_rate=0.01)
    assert policy.random_threshold(CreditClass.general) == 0.01
    assert policy.random_threshold(CreditClass.advanced_certified) == pytest.approx(0.0015)


def lodged(i: int, office: str) -> dict:
    return declaration_data(
        id=f"D{i:05d}",
        customs_office=office,
        enterprise_id=f"E{i % 40}",
        hs_code="610910" if i % 5 == 0 else "847130",
        origin_country="VN" if i % 3 == 0 else "CN",
    )


def test_the_live_office_across_a_restart_decides_as_the_batch_core(store_url):
    """Two customs offices, 1,200 declarations one at a time through two instances of the live
    office on one database, taking turns in runs of any length (up to more than a pacer's window),
    one of them restarted half-way; the same declarations through `choose` in one batch with the
    offices' pacers (the simulation's path): identical, on either backend."""
    rules = RuleSet.from_dict({"version": "cap", "rules": [TEX, VN]})
    policy = SelectionPolicy(
        random_ratio=0.02,
        expected_rate=0.04,
        office_expected_rates={"B": 0.1},
        rate_window=300,
        rate_refresh=30,
    )
    draws = KeyedDraws.from_seed(8)
    data = [lodged(i, "A" if i % 3 else "B") for i in range(1200)]
    instance = [Office(store_url, rules=rules, policy=policy, draws=draws) for _ in range(2)]
    live, rng, i, restarted = [], np.random.default_rng(3), 0, False
    while i < len(data):
        if i >= 555 and not restarted:  # a restart: the instance rebuilds its pacers from the store
            instance[0].store.close()
            instance[0], restarted = Office(store_url, rules=rules, policy=policy, draws=draws), True
        j = min(len(data), i + int(rng.choice([1, 7, 40, 350])))
        office = instance[int(rng.random() < 0.5)]
        live += [office.admit(parse_declaration(d, "test")) for d in data[i:j]]
        i = j
    firms = {}
    credit, hits = [], np.zeros((1200, 2), bool)
    for k, d in enumerate(data):
        firm = firms.setdefault(d["enterprise_id"], Enterprise(id=d["enterprise_id"]))
        fired = rules.evaluate(parse_declaration(d, "test"), firm)
        firm.declarations += 1
        hits[k] = ["TEX" in fired, "VN" in fired]
        credit.append(CREDIT_CLASSES.index(firm.credit_class))
    ids = [d["id"] for d in data]
    u = {p: np.array([draws.uniform(i, p) for i in ids]) for p in ("random", "credit", "capacity")}
    pace = Pacers().pace(policy, np.array([d["customs_office"] for d in data]), u["capacity"])
    batch = choose(
        PolicyTable.of(policy, rules),
        np.array(credit),
        hits,
        u["random"],
        np.zeros(hits.shape),
        u["credit"],
        pace,
    )
    assert [d.selected for d in live] == batch.selected.tolist()
    assert [d.cutoff for d in live] == batch.paced.cutoff.tolist()
    assert [d.tie for d in live] == batch.paced.tie.tolist()
    for office, rate in (("A", 0.04), ("B", 0.1)):
        mine = [d for d, x in zip(live, data) if x["customs_office"] == office][150:]
        share = np.mean([d.selected for d in mine])
        assert abs(share / rate - 1) < 0.25, (
            office,
            share,
        )  # a few hundred declarations: binomial-size slack
    count, mismatches = replay(instance[1].audit, rules, key=draws)
    assert count == 1200 and mismatches == []


def test_replay_recomputes_the_cutoffs_and_finds_one_altered(tmp_path):
    rules = RuleSet.from_dict({"version": "cap", "rules": [TEX, VN]})
    policy = SelectionPolicy(expected_rate=0.05, rate_window=100, rate_refresh=10)
    office = Office(tmp_path / "office.db", rules=rules, policy=policy, draws=KeyedDraws.from_seed(8))
    for i in range(200):
        office.admit(parse_declaration(lodged(i, "A"), "test"))
    log = AuditLog(database.connect(tmp_path / "office.db"))

    class Altered:  # the log as a forger who rewrote one cutoff would present it
        def records(self, kind):
            for record in log.records(kind):
                if kind == "selection" and record["payload"]["decision"]["declaration_id"] == "D00150":
                    record["payload"]["decision"]["cutoff"] += 1
                yield record

    assert replay(log, rules) == (200, [])
    count, mismatches = replay(Altered(), rules)
    assert [(m.declaration_id, m.field) for m in mismatches] == [("D00150", "cutoff")]


def test_the_shipped_sample_at_one_office_meets_its_expected_rate(tmp_path):
    """The sample's 1,000 declarations lodged five times over at one office (5,000, about a day at
    the simulated port), decided by `doublerandom select --policy`: after the first 1,000, the
    computer's selections (1% random, the rest topped up by score) are within +-10% of the expected 3%."""
    from typer.testing import CliRunner

    from engine.cli import app
    from tests.conftest import ROOT

    lines = (ROOT / "scenarios/declarations/sample.jsonl").read_text().splitlines()
    with open(tmp_path / "day.jsonl", "w") as out:
        for k in range(5):
            for line in lines:
                d = json.loads(line)
                out.write(json.dumps({**d, "id": f"{d['id']}-{k}", "customs_office": "PORT"}) + "\n")
    (tmp_path / "policy.yaml").write_text("random_ratio: 0.01\nexpected_rate: 0.03\n")
    result = CliRunner().invoke(
        app,
        [
            "select",
            "--rules",
            str(ROOT / "scenarios/rules/kcs_derived.yaml"),
            "--policy",
            str(tmp_path / "policy.yaml"),
            "--enterprises",
            str(ROOT / "scenarios/declarations/enterprises.csv"),
            "--input",
            str(tmp_path / "day.jsonl"),
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    decisions = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(decisions) == 5000 and all(d["cutoff"] is not None for d in decisions)
    share = np.mean([d["selected"] for d in decisions[1000:]])
    assert abs(share / 0.03 - 1) < 0.1, share
