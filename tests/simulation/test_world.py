"""Is the simulated world worth tuning against? The fitted risk, the steady state, the calibration.

Statistical checks use fixed seeds and tolerances from theory: a logit effect fitted on n rows at rate
p has a standard error near 1/sqrt(n p (1 - p)); a 95% interval covers its truth in 95% of repetitions,
so over N repetitions the count is Binomial(N, 0.95).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simulation import calibration, population, risk
from simulation.scenario import load
from tests.conftest import ROOT

SCENARIOS = "scenarios"


def test_the_fit_recovers_known_goods_and_origin_effects():
    rng = np.random.default_rng(5)
    headings = [f"{10 + k:02d}{k:02d}" for k in range(40)]
    origins = [f"O{k}" for k in range(8)]
    true_goods = dict(zip(headings, rng.normal(0, 0.7, 40)))
    true_origin = dict(zip(origins, rng.normal(0, 0.5, 8)))
    n = 80_000
    goods = pd.DataFrame(
        {
            "hs_code": rng.choice(headings, n) + "00",
            "origin_country": rng.choice(origins, n),
            "declared_value": 100.0,
            "net_mass_kg": 1.0,
        }
    )
    eta = -1.5 + goods["hs_code"].str[:4].map(true_goods) + goods["origin_country"].map(true_origin)
    violated = rng.random(n) < risk.expit(eta.to_numpy())
    fitted = risk.fit(goods, violated, penalty=0.1)
    # each heading sits alone in its chapter and hs6, so the three nested effects add up to its effect
    codes = goods.drop_duplicates("hs_code").set_index("hs_code")
    got = pd.Series(fitted.logodds(codes.reset_index()), index=codes.index)
    got = got - codes["origin_country"].map(fitted.effects("origin"))  # the goods part only
    truth = pd.Series({h + "00": true_goods[h] for h in headings})[got.index]
    errors = (got - got.mean()) - (truth - truth.mean())  # effects are relative: compare centred
    rows = goods["hs_code"].value_counts()[got.index]
    p = violated.mean()
    se = 1 / np.sqrt(rows * p * (1 - p))
    assert np.all(np.abs(errors) < 4 * se), errors[np.abs(errors) >= 4 * se]
    assert np.corrcoef(got, truth)[0, 1] > 0.97
    origin = pd.Series(fitted.effects("origin"))[origins]
    truth_origin = pd.Series(true_origin)[origins]
    assert np.all(
        np.abs((origin - origin.mean()) - (truth_origin - truth_origin.mean()))
        < 4 / np.sqrt(n / 8 * p * (1 - p))
    )


def test_the_shipped_effects_rank_held_out_declarations():
    """The regeneration script's own held-out figures: the effects must beat chance on 2021 data."""
    import json

    figures = json.loads(open(f"{SCENARIOS}/risk/kcs_effects.json").read())
    assert figures["test"]["correlation"] > 0.2
    assert figures["test"]["lift_top_5pct"] > 2.0


def test_goods_redistribute_violations_without_changing_each_class_level():
    scenario = load(f"{SCENARIOS}/baseline.yaml", ["horizon.warmup_months=0", "horizon.months=2"])
    firms = population.enterprises(scenario)
    table = risk.RiskTable.read(scenario.path(scenario.goods.risk))
    decls = population.declarations(
        scenario, firms, population.read_goods(scenario.path(scenario.goods.table)), table
    )
    p_flat = firms.propensity[decls.enterprise]
    p_goods = population.violation_probability(p_flat, decls.risk)
    klass = firms.credit[decls.enterprise]
    for code in np.unique(klass):
        where = klass == code
        assert p_goods[where].mean() == pytest.approx(p_flat[where].mean(), rel=1e-6)
    # and the goods matter: within the general class, the riskiest twentieth of goods violates
    # several times as often as the rest (the data's held-out top 5% ran at about 3x a 21% rate)
    general = klass == population.CREDIT_CLASSES.index(population.CreditClass.general)
    top = decls.risk >= np.quantile(decls.risk[general], 0.95)
    assert p_goods[general & top].mean() > 3 * p_goods[general & ~top].mean()


def test_a_month_holds_the_same_declarations_however_the_horizon_is_cut():
    """January to March, and a horizon starting on 10 February for 30 days: the declarations they
    share (10 February to 11 March) are the same, each draw to the last bit; and a run holds one month of
    declarations at a time, not its horizon."""
    small = ["horizon.warmup_months=0", "population.enterprises=2000", "arrivals.per_day=600"]
    whole = load(f"{SCENARIOS}/baseline.yaml", [*small, "horizon.months=3"])
    cut = load(f"{SCENARIOS}/baseline.yaml", [*small, "horizon.start=2026-02-10", "horizon.days=30"])
    assert population.enterprises(whole).volume.tolist() == population.enterprises(cut).volume.tolist()
    goods = population.read_goods(whole.path(whole.goods.table))
    table = risk.RiskTable.read(whole.path(whole.goods.risk))
    a = population.declarations(whole, population.enterprises(whole), goods, table)
    b = population.declarations(cut, population.enterprises(cut), goods, table)
    offset = 24 * 40  # 10 February is hour 960 of January's horizon
    shared = a.hours(offset, offset + 24 * 30)
    assert len(shared) == len(b) > 10_000
    # the same instants, counted from other starts: equal within 1e-9 hours (4 microseconds)
    np.testing.assert_allclose(shared.arrival_h - offset, b.arrival_h, rtol=0, atol=1e-9)
    for name in ("enterprise", "site", "risk", "u_violation", "u_random", "u_credit", "u_capacity"):
        np.testing.assert_array_equal(getattr(shared, name), getattr(b, name), err_msg=name)
    pd.testing.assert_frame_equal(shared.goods, b.goods)
    from engine.rules import RuleSet
    from simulation.model import OfficeModel

    office = OfficeModel(whole, RuleSet.load(whole.path(whole.rules)), "vector")
    office.env.process(office.shifts())
    office.env.process(office.source(None))
    office.env.run(until=len(office.month_of_hour))
    march = population.chunks(whole)[2]
    assert len(office.decls) == len(a.hours(march.first_h, march.end_h)) < len(a) / 2


def test_turnover_replaces_the_expected_share_of_enterprises():
    scenario = load(f"{SCENARIOS}/baseline.yaml", ["horizon.warmup_months=0", "horizon.months=2"])
    firms = population.enterprises(scenario)
    p = 1 - (1 - scenario.population.turnover) ** (1 / 12)
    counts = [len(population.newcomers(scenario, firms, month)[0]) for month in range(1, 25)]
    low, high = stats.binom.ppf([0.0005, 0.9995], len(firms), p)
    assert all(low <= c <= high for c in counts)
    leaving, credit, _ = population.newcomers(scenario, firms, 3)
    assert not np.any(credit == population.DISHONEST)  # a new firm has no record


def test_drift_interval_covers_zero_95_percent_on_trendless_correlated_series():
    rng = np.random.default_rng(11)
    covered = 0
    trials = 400
    for _ in range(trials):
        noise = rng.normal(size=24)
        y = np.empty(24)
        y[0] = noise[0]
        for t in range(1, 24):  # AR(1), phi 0.5: months that remember the last
            y[t] = 0.3 * y[t - 1] + noise[t]
        d = calibration.drift(100 + y)
        covered += d.low <= 0 <= d.high
    # 95% nominal; the band is the binomial's 99.9% range for a true coverage of 0.93-0.97
    assert stats.binom.ppf(0.0005, trials, 0.93) <= covered <= stats.binom.ppf(0.9995, trials, 0.97)


def test_drift_flags_a_real_trend():
    y = 100 + np.arange(24) * 1.0 + np.random.default_rng(2).normal(0, 1, 24)
    d = calibration.drift(y)
    assert d.rising and not d.stable and d.change == pytest.approx(23, abs=2)


SEEDS = (1, 2, 3, 4, 5)


def _baseline(seed: int) -> dict:
    """One seed of the shipped baseline as `make run` runs it (two warm-up years, two measured
    years): what the checks read, small enough to send back from a worker."""
    from simulation.model import run

    result = run(load(f"{SCENARIOS}/baseline.yaml"), seed=seed)
    return {"monthly": result.monthly, "summary": result.summary, "first_event": result.events["month"].min()}


@pytest.fixture(scope="module")
def baseline_runs():
    """The baseline on five seeds, two at a time (the two cores CI has): one seed's 24 months are too
    few and too autocorrelated to show the dishonest firms level (issue: a weight tuned until seed 1
    passed), so every check below holds on every seed or pooled over them (~2 minutes)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as pool:
        return dict(zip(SEEDS, pool.map(_baseline, SEEDS)))


def test_baseline_discards_its_warm_up(baseline_runs):
    for run in baseline_runs.values():
        assert list(run["monthly"]["month"])[:1] == ["2028-01"] and len(run["monthly"]) == 24
        assert run["first_event"] == "2028-01"


def test_baseline_holds_a_steady_state_pooled_over_seeds(baseline_runs):
    checked = calibration.across_seeds([run["monthly"] for run in baseline_runs.values()])
    assert [d.column for d in checked["steady"]] == [
        "inspection_rate", "dishonest_enterprises", "mean_wait_h", "backlog_end",
    ]  # fmt: skip
    assert [d.verdict for d in checked["steady"]] == ["met"] * 4, checked["steady"]
    # no seed alone shows a trend beyond chance (inconclusive or undetermined is no evidence of one)
    assert not [d for run in checked["per_seed"] for d in run["steady"] if d.verdict == "drifting"]


def test_baseline_meets_every_calibration_target_on_every_seed(baseline_runs):
    for seed, run in baseline_runs.items():
        rows = run["summary"]["calibration"]
        assert [r["name"] for r in rows if not r["met"]] == [], seed
        ratio = next(r for r in rows if r["column"] == "hit_ratio")
        assert 3 <= ratio["ci_low"] and ratio["ci_high"] <= 10
        drawn = next(r for r in rows if r["column"] == "drawn_share")  # China's 55%: random draws only
        assert 0.50 <= drawn["ci_low"] and drawn["ci_high"] <= 0.60


def test_the_readme_states_the_baseline_as_make_run_prints_it(baseline_runs):
    """The README's calibration table and its sentence on the drawn share are seed 1's run (`make run`):
    a change to the model that moves them fails here until the README says what it now does."""
    readme = (ROOT / "README.md").read_text()
    monthly = baseline_runs[1]["monthly"]
    rows = {r["column"]: r for r in baseline_runs[1]["summary"]["calibration"]}

    def share(column: str) -> str:
        r = rows[column]
        return f"{100 * r['value']:.1f}% [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]"

    def plain(column: str, unit: str = "") -> str:
        r = rows[column]
        return f"{r['value']:.1f}{unit} [{r['ci_low']:.1f}, {r['ci_high']:.1f}]"

    table = {
        "inspection rate": share("inspection_rate"),
        "drawn share": share("drawn_share"),
        "inspector utilization": share("inspector_utilization"),
        "p95 clearance of inspected declarations": plain("p95_clearance_h", " h"),
        "targeted / random hit rate": plain("hit_ratio"),
    }
    for name, value in table.items():
        assert re.search(rf"^\| {re.escape(name)} \|.*\| {re.escape(value)} \|$", readme, re.M), (name, value)
    mean = {c: 100 * monthly[c].mean() for c in monthly.columns if c.endswith("_share")}
    said = (
        f"chose {mean['random_dispatch_share']:.1f}% of inspections, {mean['drawn_share']:.1f}% drawn "
        f"({mean['pure_random_share']:.1f}% pure random, {mean['credit_share']:.1f}% the credit floor) "
        f"and {mean['scored_share']:.1f}% scored."
    )
    assert said in " ".join(readme.split()), said


def test_baseline_meets_the_credit_rules_on_the_total_rate_on_every_seed(baseline_runs):
    for seed, run in baseline_runs.items():
        assert all(rule["met"] for rule in run["summary"]["credit_rules"]), seed


def test_baseline_estimate_interval_holds_the_truth(baseline_runs):
    """A 95% interval misses on some seeds by design: missing on 2 or more of 5 has chance 2.3%."""
    covered = [
        low <= s["noncompliance_true"] <= high
        for s in (run["summary"] for run in baseline_runs.values())
        for low, high in [s["noncompliance_ci"]]
    ]
    assert sum(covered) >= 4, covered


SMALL_PORT = {
    "horizon": {"start": "2026-01-01", "warmup_months": 12, "months": 6},
    "arrivals": {"per_day": 450},
    "population": {"enterprises": 2000},
    "inspectors": {"count": 10},
}


def test_the_tuned_rate_holds_for_a_year_after_the_warm_up():
    """Tuned on 6 months after a 12-month warm-up (3 replications), the recommended expected rate
    (how much the computer selects: the baseline's capacity lever), simulated for 12 months with a
    each of three seeds the tuner never saw, keeps utilization and p95 clearance within the limits in
    every month (the tuner judges each run's worst month; judged on the average, a quiet February let
    the other months run over), and neither the backlog nor the clearance trends upward."""
    from simulation import scenario as scenarios
    from simulation import sweep, tuning
    from simulation.model import run

    raw = scenarios.merged(scenarios.read_raw(f"{SCENARIOS}/baseline.yaml"), SMALL_PORT)
    limits = tuning.Limits(max_utilization=0.8, max_p95_clearance_h=24.0)
    with sweep.Runner(workers=2) as runner:  # the two cores CI has
        found = tuning.tune_ratio(
            raw, SCENARIOS, runner, limits, "policy.expected_rate", 0.02, 0.14, None, 3, 0.03
        ).iloc[0]
    rate = found["recommended"]
    assert 0.02 < rate <= found["optimistic"] < 0.14, found  # a real boundary inside the range
    later = scenarios.merged(raw, {"horizon": {"months": 12}, "policy": {"expected_rate": float(rate)}})
    tuned = scenarios.validate(later, "tuned", __import__("pathlib").Path(SCENARIOS))
    for seed in (999, 1000, 1001):  # the tuner ran seeds 1-3
        m = run(tuned, seed=seed).monthly
        assert m["inspector_utilization"].max() <= limits.max_utilization, seed  # every month, season
        assert m["p95_clearance_h"].max() <= limits.max_p95_clearance_h, seed
        assert not calibration.drift(m["p95_clearance_h"]).rising, seed
        assert not calibration.drift(m["backlog_end"]).rising, seed


def test_a_trend_without_an_interval_says_why_instead_of_printing_infinities(monkeypatch):
    """Three months, or months so autocorrelated that fewer than three are independent: no interval,
    a reason, never 'stable', and the summary table says 'undetermined' with the reason, not
    'NOT met [-inf, +inf]'."""
    from rich.console import Console

    short = calibration.drift([1.0, 2.0, 3.0])
    assert not short.stable and "at least 4" in short.undefined
    persistent = calibration.drift(np.sin(np.arange(12) / 4))  # one slow swing: neighbours nearly equal
    assert not persistent.stable and "autocorrelated" in persistent.undefined
    steady = calibration.drift(100 + np.random.default_rng(1).normal(size=24))
    assert steady.undefined == "" and np.isfinite([steady.low, steady.high]).all()

    from simulation import cli

    summary = {
        "steady_state": [
            {
                "column": "dishonest_enterprises",
                "tolerance": 1.0,
                "change": 2.0,
                "low": -np.inf,
                "high": np.inf,
                "stable": False,
                "undefined": persistent.undefined,
            }
        ]
    }
    console = Console(record=True, width=250)
    monkeypatch.setattr(cli, "console", lambda stderr=False: console)  # what the command prints to
    cli.print_calibration(summary)
    text = console.export_text()
    assert "undetermined" in text and "autocorrelated" in text and "inf" not in text and "NOT met" not in text
