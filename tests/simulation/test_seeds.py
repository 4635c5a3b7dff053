"""A steady state shown over several seeds: one run's 24 autocorrelated months leave a slow series
(the dishonest firms) with an interval wider than its tolerance on some seeds, which is no evidence
of a trend ('inconclusive', not 'NOT met'); pooling independent seeds gives the power one run lacks."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from doublerandom.cli import app
from simulation import calibration
from tests.conftest import ROOT


def _ar1(rng: np.random.Generator, n: int, r: float, sd: float, trend: float, level: float) -> np.ndarray:
    noise = np.zeros(n)
    noise[0] = rng.normal(0, sd)
    for k in range(1, n):
        noise[k] = r * noise[k - 1] + rng.normal(0, sd * np.sqrt(1 - r * r))
    return level + trend * np.arange(n) / (n - 1) + noise


def test_one_seed_is_inconclusive_where_pooled_seeds_show_the_level():
    """AR(1) months (r = 0.6, sd 4% of the level, no trend), tolerance 10% of the level: single runs
    are often inconclusive, never 'drifting' beyond chance; eight seeds pooled are 'met'."""
    rng = np.random.default_rng(11)
    runs = [_ar1(rng, 24, 0.6, 40.0, 0.0, 1000.0) for _ in range(8)]
    single = [calibration.drift(y, "x", tolerance=100.0) for y in runs]
    assert any(d.verdict == "inconclusive" for d in single)
    assert sum(d.verdict == "drifting" for d in single) <= 1
    pooled = calibration.pooled_drift(single, "x", 100.0)
    assert pooled.verdict == "met", pooled


def test_a_real_trend_is_drifting_pooled():
    rng = np.random.default_rng(12)
    runs = [_ar1(rng, 24, 0.6, 40.0, 300.0, 1000.0) for _ in range(5)]  # +30% over the months
    pooled = calibration.pooled_drift([calibration.drift(y, "x", tolerance=100.0) for y in runs], "x", 100.0)
    assert pooled.verdict == "drifting" and pooled.low > 100.0


def test_the_pooled_interval_covers_the_true_change():
    """Over 1,000 sets of 5 seeds with a known change of +50, the pooled 95% interval covers it
    between 93% and 97% of the time (binomial sd 0.7 points)."""
    rng, covered = np.random.default_rng(13), 0
    for _ in range(1000):
        runs = [
            calibration.drift(_ar1(rng, 24, 0.5, 40.0, 50.0, 1000.0), "x", tolerance=100.0) for _ in range(5)
        ]
        d = calibration.pooled_drift(runs, "x", 100.0)
        covered += d.low <= 50.0 <= d.high
    assert 930 <= covered <= 970, covered


def test_check_reports_each_seed_and_the_pooled_verdicts(tmp_path):
    out = tmp_path / "check"
    result = CliRunner().invoke(
        app,
        [
            "check",
            str(ROOT / "scenarios" / "baseline.yaml"),
            "--seeds",
            "3",
            "--workers",
            "0",
            "--out",
            str(out),
            "--set",
            "horizon.warmup_months=1",
            "--months",
            "4",
            "--set",
            "arrivals.per_day=500",
            "--set",
            "population.enterprises=2000",
            "--set",
            "inspectors.count=10",
        ],
    )
    assert result.exit_code == 0, result.output
    checked = json.loads((out / "check.json").read_text())
    assert checked["seeds"] == [1, 2, 3] and len(checked["per_seed"]) == 3
    names = [t["name"] for t in checked["targets"]]
    assert "drawn share" in names and "seed 3" in result.output
    pooled = {d["column"]: d for d in checked["steady_state"]}
    assert set(pooled) == {"inspection_rate", "dishonest_enterprises", "mean_wait_h", "backlog_end"}
    assert all(d["verdict"] in ("met", "drifting", "inconclusive", "undetermined") for d in pooled.values())
    # the pooled change is the mean of the seeds' own changes
    seeds_changes = [
        next(d["change"] for d in run["steady_state"] if d["column"] == "inspection_rate")
        for run in checked["per_seed"]
    ]
    assert np.isclose(pooled["inspection_rate"]["change"], np.mean(seeds_changes))
