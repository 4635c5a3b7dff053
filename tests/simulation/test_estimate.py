"""The compliance estimate: right on average, intervals that cover as often as they say, and
undefined rather than wrong where the random sample cannot see."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulation import run, scenario
from simulation.metrics import stratified_estimate
from tests.conftest import ROOT

# a month of a mid-size port: class sizes, true violation rates and random-channel chances as in the
# baseline (advanced certified 0.2x, general certified 0.5x the 3% ratio, dishonest at the 0.8 floor)
STRATA = {
    "advanced_certified": (40000, 0.004, 0.006),
    "general_certified": (30000, 0.01, 0.015),
    "general": (45000, 0.03, 0.03),
    "dishonest": (1500, 0.25, 0.8),
}
DETECTION = {"document": 0.5, "physical": 0.9}


def one_month(rng: np.random.Generator) -> tuple[float, object]:
    rows, violations, total = [], 0, 0
    for credit, (size, rate, chance) in STRATA.items():
        violating = rng.random(size) < rate
        picked = rng.random(size) < chance
        kind = rng.choice(list(DETECTION), size=int(picked.sum()))
        detection = np.array([DETECTION[k] for k in kind])
        detected = violating[picked] & (rng.random(len(detection)) < detection)
        rows.append(pd.DataFrame({"credit_class": credit, "detected": detected, "detection": detection}))
        violations += int(violating.sum())
        total += size
    sample = pd.concat(rows, ignore_index=True)
    return violations / total, stratified_estimate(sample, {c: s[0] for c, s in STRATA.items()})


def test_intervals_cover_the_months_true_rate_95_percent_of_the_time():
    """Over 1,000 simulated months the 95% interval covers the realised rate 93-97% of the time
    (the binomial standard error of a 95% coverage over 1,000 is 0.7 points), and the estimate is
    unbiased within its standard error."""
    rng = np.random.default_rng(2026)
    truths, estimates, covered = [], [], 0
    for _ in range(1000):
        truth, estimate = one_month(rng)
        truths.append(truth)
        estimates.append(estimate.value)
        covered += estimate.low <= truth <= estimate.high
    assert 930 <= covered <= 970, covered
    errors = np.array(estimates) - np.array(truths)
    assert abs(errors.mean()) < 3 * errors.std() / np.sqrt(len(errors))


def test_a_class_with_no_chance_or_no_sample_makes_the_estimate_undefined():
    sample = pd.DataFrame(
        {"credit_class": ["general"] * 50, "detected": [True] * 5 + [False] * 45, "detection": [1.0] * 50}
    )
    assert stratified_estimate(sample, {"general": 1000}).defined
    assert not stratified_estimate(sample, {"general": 1000}, zero_chance=10).defined
    unseen = stratified_estimate(sample, {"general": 1000, "dishonest": 20})
    assert not unseen.defined and "no dishonest declaration" in unseen.why and np.isnan(unseen.value)
    sliver = stratified_estimate(sample, {"general": 1000, "dishonest": 5})  # 0.5%: pooled, not fatal
    assert sliver.defined and abs(sliver.value - 0.1) < 1e-12


def test_at_random_ratio_zero_the_estimate_is_undefined_with_a_warning():
    """Only dishonest firms (the 0.8 floor) are still sampled: once the estimate read 28% against a
    true 1.9%, with a tight interval. Now it is empty, flagged and explained."""
    spec = scenario.load(
        ROOT / "scenarios" / "baseline.yaml",
        ["horizon.warmup_months=0", "horizon.days=20", "policy.random_ratio=0"],
    )
    result = run(spec, seed=3)
    assert not result.monthly["noncompliance_defined"].any()
    assert result.monthly["noncompliance_estimate"].isna().all()
    assert result.summary["noncompliance_estimate"] is None and not result.summary["noncompliance_defined"]
    assert "no chance of random selection" in result.summary["noncompliance_warning"]


def test_the_baseline_meets_the_credit_rules_on_the_total_inspection_rate():
    """Advanced certified under 0.2x and general certified under 0.5x the general-credit average,
    dishonest at least 0.8, each judged on its whole 95% interval; the random channel stays a pure
    sample (a dishonest firm's random threshold is the plain ratio; its floor is the credit channel)."""
    spec = scenario.load(
        ROOT / "scenarios" / "baseline.yaml", ["horizon.warmup_months=0", "horizon.months=2"]
    )
    result = run(spec, seed=4)
    assert [r["class"] for r in result.summary["credit_rules"] if not r["met"]] == []
    dishonest = result.events[result.events["credit_class"] == "dishonest"]
    assert (
        dishonest.loc[dishonest["channel"].isin(["random", "both"]), "random_threshold"]
        == spec.policy.random_ratio
    ).all()
    assert (dishonest["channel"] == "credit").sum() > 100


def test_the_estimate_divides_by_the_detection_the_office_believes():
    """A live office does not know how often an inspection finds a violation: the estimate divides
    by what it assumes, and says so. Believing physical inspections find 90% when they find 70%
    scales the estimate by 0.7 / 0.9 (-22%): the baseline's random picks are all physical, so the
    same run (the belief changes no event) gives exactly that ratio."""
    from simulation import run, scenario
    from tests.conftest import ROOT

    small = [
        "horizon.warmup_months=0",
        "horizon.days=20",
        "arrivals.per_day=3000",
        "population.enterprises=6000",
        "inspection.detection={document: 0.5, scan: 0.7, physical: 0.7}",
    ]
    base = ROOT / "scenarios" / "baseline.yaml"
    knows = run(scenario.load(base, small), seed=3).summary
    believes = run(
        scenario.load(
            base, [*small, "inspection.assumed_detection={document: 0.5, scan: 0.7, physical: 0.9}"]
        ),
        seed=3,
    ).summary
    assert knows["estimate_detection"]["is_the_truth"] and not believes["estimate_detection"]["is_the_truth"]
    assert believes["estimate_detection"]["assumed"]["physical"] == 0.9
    assert knows["violations_found"] == believes["violations_found"]  # the belief changes no event
    assert believes["noncompliance_estimate"] / knows["noncompliance_estimate"] == pytest.approx(
        0.7 / 0.9, rel=1e-9
    )
