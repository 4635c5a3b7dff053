"""Warm starts: a what-if taken up from a saved warm-up gives what simulating the warm-up would have
given, in distribution (the inspections in progress at the cut are not carried over), applies its own
policy from the first measured hour, and a state saved for another warm-up is refused."""

from __future__ import annotations

import math

import pytest

from engine.errors import InputError
from simulation import scenario
from simulation.model import run
from tests.conftest import ROOT

SMALL = [
    "horizon.warmup_months=6",
    "horizon.months=2",
    "arrivals.per_day=900",
    "population.enterprises=3000",
    "inspectors.count=16",
]


def load(*extra: str):
    return scenario.load(ROOT / "scenarios" / "baseline.yaml", [*SMALL, *extra])


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("warm")
    cold = run(load(), seed=5, save_warm=folder)
    return folder, cold


def test_a_run_from_the_warm_state_matches_the_cold_run(warm):
    """The same seed: the standing carried over exactly (the dishonest stock at the first measured
    month's end within a few firms), the declarations identical, and every rate within what one
    month's sampling allows."""
    folder, cold = warm
    again = run(load(), seed=5, from_warm=folder)
    c, w = cold.monthly, again.monthly
    assert (c["declarations"] == w["declarations"]).all() and len(w) == 2
    assert abs(int(c["dishonest_enterprises"].iloc[0]) - int(w["dishonest_enterprises"].iloc[0])) <= 10
    for column in ("inspection_rate", "random_dispatch_share", "pure_random_share"):
        for k in range(2):
            n = (
                int(c["inspections"].iloc[k])
                if column != "inspection_rate"
                else int(c["declarations"].iloc[k])
            )
            p = float(c[column].iloc[k])
            assert abs(float(w[column].iloc[k]) - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-9, (column, k)
    assert again.summary["from_warm"] == str(folder) and cold.summary["from_warm"] is None
    assert again.summary["wall_seconds"] < cold.summary["wall_seconds"]


def test_a_what_if_from_the_warm_state_applies_its_own_policy(warm):
    """More random inspection and more inspectors from the first measured hour: the pure random share
    rises well beyond the cold run's, on the same declarations."""
    folder, cold = warm
    more = run(load("policy.random_ratio=0.08", "inspectors.count=30"), seed=5, from_warm=folder)
    assert (more.monthly["declarations"] == cold.monthly["declarations"]).all()
    assert more.monthly["pure_random_share"].mean() > 2 * cold.monthly["pure_random_share"].mean()


def test_a_warm_state_for_another_warm_up_is_refused(warm, tmp_path):
    folder, _ = warm
    for changed, seed in (
        (load("population.turnover=0.3"), 5),
        (load(), 6),
        (load("horizon.warmup_months=5"), 5),
    ):
        with pytest.raises(InputError, match="another warm-up"):
            run(changed, seed=seed, from_warm=folder)
    with pytest.raises(InputError, match="no warm state here"):
        run(load(), seed=5, from_warm=tmp_path)
    (tmp_path / "warm.pickle").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="not a readable warm state"):
        run(load(), seed=5, from_warm=tmp_path)


def test_a_warm_sweep_starts_every_point_from_todays_office(tmp_path):
    """A sweep with a warm folder simulates one warm-up per seed, under the base scenario's policy,
    and every point starts from it: each run equals a what-if from that warm-up bit for bit (it
    would not if a point's own policy had shaped the warm-up), serially and on the pool alike, and a
    second sweep reuses the saved warm-ups."""
    from simulation import sweep

    base = scenario.read_raw(ROOT / "scenarios" / "baseline.yaml")
    for item in SMALL:
        scenario.apply_override(base, item, str(ROOT / "scenarios" / "baseline.yaml"))
    axes = [sweep.Axis("policy.random_ratio", (0.0, 0.03))]
    with sweep.Runner(workers=0, warm=tmp_path / "w") as runner:
        serial = sweep.sweep(base, ROOT / "scenarios", axes, 2, runner)
    saved = sorted((tmp_path / "w").glob("*/warm.pickle"))
    assert len(saved) == 2  # one per seed, not one per point
    stamps = [p.stat().st_mtime_ns for p in saved]

    today = tmp_path / "today"  # the sweep's warm-up measures a day (draws depend on the horizon's length)
    run(load("horizon.days=1"), seed=1, save_warm=today)
    what_if = run(load("policy.random_ratio=0.03"), seed=1, from_warm=today)
    row = serial.runs[(serial.runs["policy.random_ratio"] == 0.03) & (serial.runs["seed"] == 1)].iloc[0]
    assert row["violations_found"] == what_if.summary["violations_found"]
    assert row["inspections"] == what_if.summary["inspections"]

    with sweep.Runner(workers=2, warm=tmp_path / "w") as runner:
        pooled = sweep.sweep(base, ROOT / "scenarios", axes, 2, runner)
    assert [p.stat().st_mtime_ns for p in saved] == stamps
    columns = ["policy.random_ratio", "seed", "violations_found", "inspections", "p95_clearance_h"]
    assert pooled.runs[columns].sort_values(columns[:2]).values.tolist() == (
        serial.runs[columns].sort_values(columns[:2]).values.tolist()
    )
