"""A golden back test: a short fixed-seed run's monthly.csv against a stored copy.

Any change to what the model does shows up here, on purpose. When a change is meant to alter the
model, regenerate the copy and say so in the commit:
    GOLDEN=regenerate .venv/bin/python -m pytest tests/simulation/test_golden.py
"""

from __future__ import annotations

import os

import pandas as pd

from simulation import run, scenario
from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "simulation" / "golden" / "monthly.csv"
SETTINGS = [
    "horizon.warmup_months=1",
    "horizon.months=2",
    "arrivals.per_day=600",
    "population.enterprises=2000",
    "inspectors.count=10",
]


def test_monthly_table_matches_the_stored_copy(tmp_path):
    result = run(scenario.load(ROOT / "scenarios" / "baseline.yaml", SETTINGS), seed=7)
    result.write(tmp_path, plots=False)
    if os.environ.get("GOLDEN") == "regenerate":
        GOLDEN.write_text((tmp_path / "monthly.csv").read_text())
    got, stored = pd.read_csv(tmp_path / "monthly.csv"), pd.read_csv(GOLDEN)
    assert list(got.columns) == list(stored.columns)
    pd.testing.assert_frame_equal(got, stored, rtol=1e-6, check_exact=False)


def test_the_readme_metrics_table_is_the_registry():
    """Each monthly column is defined once, in simulation.metrics.METRICS; the README shows that."""
    from simulation import metrics

    readme = (ROOT / "README.md").read_text()
    assert metrics.readme_table() in readme, (
        "README's metrics table differs from METRICS: paste metrics.readme_table()"
    )
    stored = pd.read_csv(GOLDEN)
    assert list(stored.columns) == metrics.COLUMNS
