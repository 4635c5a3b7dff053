"""Sweeps and tuning: parallel equals serial, common random numbers, the Erlang C answer, failures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from typer.testing import CliRunner

from engine.errors import InputError
from simulation import run, scenario, sweep, tuning
from simulation.cli import app
from tests.conftest import ROOT
from tests.simulation.test_model import erlang_c_wait

SCENARIOS = ROOT / "scenarios"
SMALL = {
    "horizon": {"start": "2026-01-01", "warmup_months": 0, "days": 10},
    "arrivals": {"per_day": 600},
    "population": {"enterprises": 1500},
    "inspectors": {"count": 25},
}


def small_baseline() -> dict:
    return scenario.merged(scenario.read_raw(SCENARIOS / "baseline.yaml"), SMALL)


def test_parallel_runs_equal_serial_runs_bit_for_bit():
    axes = [sweep.parse_axis("policy.random_ratio=0.02,0.05"), sweep.parse_axis("inspectors.count=20,30")]
    with sweep.Runner(workers=0) as serial:
        alone = sweep.sweep(small_baseline(), SCENARIOS, axes, 2, serial)
    with sweep.Runner(workers=2) as cluster:
        together = sweep.sweep(small_baseline(), SCENARIOS, axes, 2, cluster)
    assert len(alone.runs) == 8 and not alone.failures
    assert alone.runs["rules_version"].str.startswith("kcs-derived-2026.11+").all()
    assert alone.runs["scenario_hash"].nunique() == 8  # the hash covers the settings and the seed
    assert alone.runs.equals(together.runs) and alone.monthly.equals(together.monthly)
    assert alone.summary.equals(together.summary)


def test_replication_k_uses_the_same_seed_at_every_point():
    tasks = sweep.tasks_for(
        sweep.grid([sweep.parse_axis("policy.random_ratio=0.01:0.03:0.01")]), 3, base_seed=7
    )
    seeds = {(t.point, t.replication): t.seed for t in tasks}
    assert all(seeds[(p, k)] == 7 + k for p in range(3) for k in range(3))


def test_common_random_numbers_make_the_lower_ratio_sample_a_subset():
    """No feedback on the random channel (all firms general, no floors): picks at 1% within those at 2%."""
    spec = scenario.load(
        SCENARIOS / "mmc_check.yaml",
        ["horizon.days=5", "arrivals.per_day=4000", "inspectors.count=60", "population.enterprises=3000"],
    )
    picked = {}
    for ratio in (0.01, 0.02):
        events = run(
            spec.model_copy(update={"policy": spec.policy.model_copy(update={"random_ratio": ratio})}), seed=3
        ).events
        picked[ratio] = set(events.loc[events["channel"] == "random", "declaration"])
    assert len(picked[0.01]) > 100 and picked[0.01] < picked[0.02]


def test_tune_finds_the_erlang_c_answer_on_the_mmc_check():
    """M/M/5, mu = 1/h, arrivals 4/h x ratio: the largest ratio keeping Wq <= 0.2 h is where Erlang C
    says Wq = 0.2; the tuned interval [recommended, optimistic] must hold it."""
    raw = scenario.read_raw(SCENARIOS / "mmc_check.yaml")
    raw["horizon"] = {"start": "2026-01-05", "days": 40}
    analytic = brentq(lambda lam: erlang_c_wait(5, lam, 1.0) - 0.2, 0.5, 4.99) / 4.0  # 0.8367
    with sweep.Runner(workers=0) as runner:
        table = tuning.tune_ratio(
            raw,
            str(SCENARIOS),
            runner,
            tuning.Limits(max_mean_wait_h=0.2),
            "policy.random_ratio",
            0.5,
            1.0,
            None,
            6,
            0.01,
        )
    row = table.iloc[0]
    assert row["recommended"] <= row["estimate"] <= row["optimistic"]
    assert row["recommended"] - 0.01 <= analytic <= row["optimistic"] + 0.01
    # an interval that says something: under a third of the searched range [0.5, 1]. Its width is
    # the replications' noise near saturation (rho 0.67): 0.08 and 0.12 on two draws of the world
    assert row["optimistic"] - row["recommended"] < 0.15


def test_a_failing_point_is_reported_and_the_others_complete():
    axes = [sweep.parse_axis("inspectors.count=20,-1,30")]
    with sweep.Runner(workers=0) as runner:
        result = sweep.sweep(small_baseline(), SCENARIOS, axes, 2, runner)
    assert len(result.runs) == 4 and set(result.runs["inspectors.count"]) == {20, 30}
    assert len(result.failures) == 2
    failure = result.failures[0]
    assert failure.task.params == {"inspectors.count": -1} and failure.task.seed in (1, 2)
    assert "field 'inspectors.count'" in failure.error


@pytest.mark.parametrize(
    "text, message",
    [
        ("policy.random_ratio", "expected path=values"),
        ("policy.random_ratio=0.1:0.01:0.01", "stop >= start"),
        ("policy.random_ratio=0.01:x:0.01", "three numbers"),
        ("policy.random_ratio=0:1:0.0001", "at most 1000"),
        ("=1,2", "both a field path and values"),
    ],
)
def test_bad_grid_syntax_is_a_clear_error(text, message):
    with pytest.raises(InputError, match=message):
        sweep.parse_axis(text)


def test_grid_ranges_are_exact():
    assert sweep.parse_axis("policy.random_ratio=0.01:0.05:0.01").values == (0.01, 0.02, 0.03, 0.04, 0.05)
    assert sweep.parse_axis("inspectors.count=20:60:20").values == (20, 40, 60)
    assert len(sweep.grid([sweep.parse_axis("a=1,2"), sweep.parse_axis("b=1:3:1")])) == 6


def test_intervals_come_from_replications():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    got = sweep.mean_interval(values, "x")
    half = 3.182446305284263 * values.std(ddof=1) / 2  # t(0.975, 3) x s / sqrt(4)
    assert math.isclose(got["x_low"], 2.5 - half) and math.isclose(got["x_high"], 2.5 + half)


def test_intervals_stay_in_their_physical_range_and_cover():
    """A share's interval never leaves 0..1 and a time's never goes below 0, however few and spread
    the replications; and over 2,000 sweeps of 5 replications of a rare share (Beta(2, 98), mean 2%)
    the interval covers the true mean at close to its 95% (binomial sd of the coverage: 0.005)."""
    near_zero = sweep.mean_interval(np.array([0.0, 0.0, 0.001, 0.05]), "inspection_rate")
    assert (
        0
        < near_zero["inspection_rate_low"]
        < near_zero["inspection_rate"]
        < near_zero["inspection_rate_high"]
        < 1
    )
    near_one = sweep.mean_interval(np.array([0.99, 1.0, 0.90, 1.0]), "random_dispatch_share")
    assert near_one["random_dispatch_share_high"] < 1
    times = sweep.mean_interval(np.array([0.5, 0.4, 30.0]), "p95_clearance_h")
    assert 0 < times["p95_clearance_h_low"] < times["p95_clearance_h"]
    plain = 0.34 - 4.303 * np.std([0.5, 0.4, 30.0], ddof=1) / np.sqrt(3)  # what a t-interval would say
    assert plain < 0
    rng, covered = np.random.default_rng(3), 0
    for _ in range(2000):
        got = sweep.mean_interval(rng.beta(2, 98, 5), "inspection_rate")
        assert 0 <= got["inspection_rate_low"] and got["inspection_rate_high"] <= 1
        covered += got["inspection_rate_low"] <= 0.02 <= got["inspection_rate_high"]
    assert 0.925 <= covered / 2000 <= 0.975, covered


def test_adaptive_policy_follows_its_target_share():
    spec = scenario.load(
        SCENARIOS / "adaptive.yaml",
        [
            "horizon.months=6",
            "adaptive.end_share=0.75",
            "arrivals.per_day=1500",
            "inspectors.count=70",
            "population.enterprises=6000",
        ],
    )
    monthly = run(spec).monthly
    assert monthly["random_ratio"].iloc[-1] > monthly["random_ratio"].iloc[0]
    assert monthly["instruction_rate"].iloc[-1] < monthly["instruction_rate"].iloc[0]
    later = monthly.iloc[2:]
    assert np.all(np.abs(later["random_dispatch_share"] - later["target_share"]) < 0.05)
    # the share rose without inflating the workload the controller steers; the dishonest floor's
    # credit channel grows with the number of dishonest firms (no steady state yet), so it is left out
    steered = (monthly["inspections"] - monthly["credit_selected"]) / monthly["declarations"]
    assert steered.iloc[-1] < steered.iloc[0] * 1.2


def test_cli_sweep_and_tune(tmp_path):
    runner = CliRunner()
    done = runner.invoke(
        app,
        [
            "sweep",
            str(SCENARIOS / "mmc_check.yaml"),
            "--grid",
            "policy.random_ratio=0.6,0.8",
            "-r",
            "2",
            "--set",
            "horizon.days=10",
            "--workers",
            "0",
            "--out",
            str(tmp_path),
        ],
    )
    assert done.exit_code == 0, done.output
    assert {"runs.parquet", "summary.csv", "frontier.png", "metrics_vs_axis.png", "by_month.png"} <= {
        p.name for p in tmp_path.iterdir()
    }
    refused = runner.invoke(
        app, ["sweep", str(SCENARIOS / "mmc_check.yaml"), "--grid", "policy.random_ratio=0.6",
              "--compare-from", "2026-13", "--out", str(tmp_path / "refused")],
    )  # fmt: skip
    assert refused.exit_code != 0 and "a month, YYYY-MM" in refused.output
    assert not (tmp_path / "refused").exists()  # refused before any run
    outside = runner.invoke(
        app, ["sweep", str(SCENARIOS / "mmc_check.yaml"), "--grid", "policy.random_ratio=0.6",
              "--compare-from", "2031-01", "--out", str(tmp_path / "outside")],
    )  # fmt: skip
    assert outside.exit_code != 0 and "must lie on both sides of it" in outside.output
    assert not (tmp_path / "outside").exists()
    tuned = runner.invoke(
        app,
        [
            "tune",
            str(SCENARIOS / "mmc_check.yaml"),
            "--max-utilization",
            "0.7",
            "--range",
            "0.5:1.0",
            "--tolerance",
            "0.05",
            "-r",
            "3",
            "--set",
            "horizon.days=10",
            "--workers",
            "0",
        ],
    )
    assert tuned.exit_code == 0, tuned.output
    assert "decision: policy.random_ratio up to" in tuned.stdout
    bad = runner.invoke(app, ["sweep", str(SCENARIOS / "mmc_check.yaml"), "--grid", "policy.random_ratio"])
    assert bad.exit_code == 2 and "expected path=values" in bad.stderr


def test_the_fixed_capacity_answer_reports_how_far_it_moves_across_assumptions(tmp_path, monkeypatch):
    """`tune --fixed-capacity --sensitivity`: the recommendation rerun at each assumption's values
    (deterrence: none, 0.5, 1, 2), a row each, one sentence with the range and one saying where
    randomness pays; a side that is the scenario as it stands is not run again; an unknown assumption
    is one clear error before anything runs."""
    frontiers_run = []
    real = tuning.fixed_capacity
    monkeypatch.setattr(tuning, "fixed_capacity", lambda *a, **k: frontiers_run.append(1) or real(*a, **k))
    tiny = [
        "--set", "horizon.warmup_months=0", "--months", "2", "--set", "arrivals.per_day=400",
        "--set", "population.enterprises=1500", "--set", "inspectors.count=12",
    ]  # fmt: skip
    runner = CliRunner()
    # three replications: with two, the t interval on one degree of freedom can put a tiny world's
    # half-width bound above any precision, and no share would meet it
    args = ["tune", str(SCENARIOS / "capacity_frontier.yaml"), "--fixed-capacity", "0.03",
            "--shares", "0:0.4:0.4", "--precision", "0.5", "-r", "3", "--workers", "0",
            "--out", str(tmp_path), *tiny]  # fmt: skip
    bad = runner.invoke(app, [*args, "--sensitivity", "weather"])
    assert bad.exit_code == 2 and "unknown weather" in bad.output and not (tmp_path / "frontier.csv").exists()
    done = runner.invoke(app, [*args, "--sensitivity", "goods-effects", "--sensitivity", "deterrence"])
    assert done.exit_code == 0, done.output
    assert len(frontiers_run) == 1 + 2 + 3  # the scenario's, goods-effects low and high, deterrence > 0
    table = pd.read_csv(tmp_path / "sensitivity.csv")
    assert list(zip(table["assumption"], table["side"])) == [
        ("goods-effects", "low"), ("goods-effects", "high"),
        ("deterrence", "none"), ("deterrence", "0.5"), ("deterrence", "1"), ("deterrence", "2"),
    ]  # fmt: skip
    assert (table["recommended_share"] == 0.4).all()  # the only share with a random sample
    # every frontier whole, to plot how the trade-off moves: committed and found per share and side
    frontiers = pd.read_csv(tmp_path / "sensitivity_frontiers.csv")
    assert len(frontiers) == 6 * 2 and set(frontiers["share"]) == {0.0, 0.4}
    assert frontiers[["violations_per_month", "violations_found_per_month"]].notna().all().all()
    assert (frontiers["violations_per_month"] >= frontiers["violations_found_per_month"]).all()
    # no deterrence is the scenario as it stands: its frontier is the scenario's own, not run again
    own = pd.read_csv(tmp_path / "frontier.csv")
    none = frontiers[frontiers["side"] == "none"]
    assert none["settings"].isna().all() and table.loc[2, "settings"] == "(as the scenario)"
    assert np.array_equal(none["violations_found_per_month"], own["violations_found_per_month"])
    # at the first share each change is 0 by construction; elsewhere undetected = committed - found
    first = frontiers[frontiers["share"] == 0.0]
    assert (first[["committed_change", "found_change", "undetected_change"]] == 0).all().all()
    assert np.allclose(
        frontiers["undetected_change"], frontiers["committed_change"] - frontiers["found_change"]
    )
    assert (tmp_path / "sensitivity.png").stat().st_size > 10_000
    assert (
        "is 40% as the scenario stands; across the assumptions tried it ranges from 40% to 40%" in done.stdout
    )
    assert done.stdout.count("Against 0% random, ") == 2  # the scenario's frontier, then every frontier


def test_the_tuner_starts_from_todays_office_with_warm(tmp_path):
    """`tune --fixed-capacity --warm DIR`: the warm-up simulated once per seed (not once per share)
    and kept, the frontier written from runs that start from it."""
    args = ["tune", str(SCENARIOS / "capacity_frontier.yaml"), "--fixed-capacity", "0.03",
            "--shares", "0:0.4:0.2", "--precision", "0.5", "-r", "2", "--workers", "0",
            "--out", str(tmp_path / "out"), "--warm", str(tmp_path / "warm"),
            "--set", "horizon.warmup_months=2", "--months", "2", "--set", "arrivals.per_day=400",
            "--set", "population.enterprises=1500", "--set", "inspectors.count=12"]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert len(list((tmp_path / "warm").glob("*/warm.pickle"))) == 2
    assert len(pd.read_csv(tmp_path / "out" / "frontier.csv")) == 3


def test_the_sensitivity_sentence_gives_the_range_and_names_where_nothing_meets():
    base = tuning.Frontier(0.032, 0.01, pd.DataFrame(), 0.45)
    table = pd.DataFrame(
        {"assumption": ["goods-effects", "goods-effects", "detection"], "side": ["low", "high", "low"],
         "recommended_share": [0.3, 0.6, math.nan]}
    )  # fmt: skip
    assert tuning.sensitivity_sentence(base, table) == (
        "The recommended random share is 45% as the scenario stands; across the assumptions tried it "
        "ranges from 30% to 60%, and under detection low no share meets it."
    )


def test_a_share_is_judged_by_the_paired_change_in_violations_that_go_undetected():
    """Each share against none random, seed by seed: a share that lets 30 fewer through on every
    seed (whatever each seed's own level) pays with no spread; one that lets 20 more through costs;
    one whose change flips sign across seeds shows no difference. The sentence says which is which."""
    level = {1: 1000.0, 2: 1400.0, 3: 900.0}
    runs = pd.DataFrame(
        [
            {"policy.random_ratio": ratio, "seed": seed, "violations_per_month": level[seed] + committed,
             "violations_found_per_month": 300.0 + found}
            for ratio, committed, found in ((0.0, 0, 0), (0.01, -40, -10))
            for seed in level
        ]
    )  # fmt: skip
    runs["violations_undetected_per_month"] = (
        runs["violations_per_month"] - runs["violations_found_per_month"]
    )
    changed = tuning.changes(runs, "policy.random_ratio")
    assert changed.loc[0.01, "committed_change"] == -40 and changed.loc[0.01, "undetected_change"] == -30
    assert changed.loc[0.01, "undetected_change_low"] == changed.loc[0.01, "undetected_change_high"] == -30
    assert changed.loc[0.0, "found_change"] == 0

    def frontier(*undetected: tuple[float, float, float]) -> tuning.Frontier:
        rows = [{"share": 0.0, "undetected_change": 0.0, "undetected_change_low": 0.0,
                 "undetected_change_high": 0.0}]  # fmt: skip
        rows += [
            {
                "share": share,
                "undetected_change": mean,
                "undetected_change_low": low,
                "undetected_change_high": high,
            }
            for share, (mean, low, high) in zip((0.3, 0.6), undetected)
        ]
        return tuning.Frontier(0.032, 0.01, pd.DataFrame(rows), 0.3)

    costs = frontier((20, 12, 28), (40, 30, 50))
    pays = frontier((-5, -15, 5), (-30, -42, -18)).table.assign(
        assumption="deterrence", side="2", settings="x"
    )
    unclear = frontier((5, -5, 15), (3, -9, 15)).table.assign(assumption="deterrence", side="1", settings="y")
    assert tuning.randomness_sentence(costs, pd.concat([pays, unclear])) == (
        "Against 0% random, randomness pays (fewer violations go undetected) under deterrence 2 "
        "(-30 [-42, -18] a month at 60%); it costs (more go undetected at every share; the least shown) "
        "as the scenario stands (+20 [+12, +28] a month at 30%); no difference beyond chance is shown "
        "under deterrence 1."
    )


def test_the_recommended_share_lets_fewest_violations_through_not_the_one_that_finds_most():
    """With deterrence a share that finds fewer can let fewer through: 60% finds 20 fewer a month
    than 30% but deters 100 more, so it is the answer; a share that misses a limit (0%) is never."""
    table = pd.DataFrame(
        {"share": [0.0, 0.3, 0.6], "meets": [False, True, True],
         "violations_found_per_month": [330.0, 300.0, 280.0],
         "violations_per_month": [1850.0, 1800.0, 1700.0]}
    )  # fmt: skip
    table["violations_undetected_per_month"] = (
        table["violations_per_month"] - table["violations_found_per_month"]
    )
    assert tuning.recommend(table) == 0.6
    assert math.isnan(tuning.recommend(table.assign(meets=False)))
    # where firms do not respond, every share commits the same: the answer is the share that finds most
    same = table.assign(violations_per_month=1850.0)
    same["violations_undetected_per_month"] = (
        same["violations_per_month"] - same["violations_found_per_month"]
    )
    assert tuning.recommend(same) == 0.3


def test_compare_pairs_each_seed_with_the_first_point_from_a_month_on():
    """`sweep --compare-from`: before and from the month, per point, and the paired gain over the
    first point: a setting that finds 10 more a month from then on, whatever the seed's own level,
    gains 10 with no spread; months before it do not count."""
    rows = []
    for point, ratio in enumerate((0.0, 0.01)):
        for seed, level in zip((1, 2, 3), (100, 140, 90)):
            for month in ("2026-01", "2026-02", "2026-03", "2026-04"):
                found = level + (10 * point if month >= "2026-03" else 0)
                rows.append({"point": point, "policy.random_ratio": ratio, "seed": seed, "month": month,
                             "violations_found": found})  # fmt: skip
    results = sweep.SweepResults(
        pd.DataFrame(), pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame(),
        axes=[sweep.Axis("policy.random_ratio", (0.0, 0.01))],
    )  # fmt: skip
    table = sweep.compare(results, "2026-03").set_index("point")
    assert table.loc[0, "violations_found_before"] == table.loc[1, "violations_found_before"] == 110
    assert table.loc[1, "violations_found_after"] == 120 and table.loc[1, "violations_found_gain"] == 10
    assert table.loc[1, "violations_found_gain_low"] == table.loc[1, "violations_found_gain_high"] == 10
    assert table.loc[0, "violations_found_gain"] == 0
    with pytest.raises(InputError, match="both sides"):
        sweep.compare(results, "2027-01")
