"""The learning loop inside a run: a learned score retrained on what was inspected, and drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from engine.errors import InputError
from engine.rules import RuleSet
from simulation import learning, population, scenario
from simulation.model import OfficeModel
from tests.conftest import ROOT

SMALL = [  # the drift scenario, small: 6 months at 1,000 declarations a day, the drift in month 3
    "horizon.warmup_months=0",
    "horizon.months=6",
    "arrivals.per_day=1000",
    "population.enterprises=3000",
    "inspectors.count=14",
    "model.retrain_days=20",
    "model.min_labels=50",
    "goods.drift=[{at: 2026-03-01, origin_country: [VN], log_odds: 2.5}]",
]


def small(*overrides: str) -> scenario.Scenario:
    return scenario.load(ROOT / "scenarios" / "drift.yaml", SMALL + list(overrides))


def simulate(spec: scenario.Scenario, trainings: list) -> OfficeModel:
    """A run as `simulation.run` makes it, keeping the office; each training notes its hour and the
    labels it sees."""
    office = OfficeModel(spec, RuleSet.load(spec.path(spec.rules)), "vector")
    retrain = office.learner.retrain

    def noted():
        trainings.append((office.env.now, len(office.learner.label)))
        retrain()

    office.learner.retrain = noted
    office.env.process(office.shifts())
    office.env.process(office.source(None))
    office.env.run(until=len(office.month_of_hour))
    return office


def case_table(office: OfficeModel) -> pd.DataFrame:
    return office.record.all_cases()


@pytest.fixture(scope="module")
def ran():
    trainings: list = []
    office = simulate(small(), trainings)
    return office, trainings


def test_retraining_sees_only_the_labels_of_inspections_already_ended(ran):
    """A label exists where an inspection happened and ended, nowhere else: each training sees
    exactly the inspections that had ended by its hour, and each label is what that inspection found."""
    office, trainings = ran
    cases = case_table(office)
    assert len(trainings) == (len(office.month_of_hour) - 1) // (24 * 20)  # days 20, 40, ...
    assert office.learner.trainings  # and it did train
    for hour, labels in trainings:
        ended = cases["done_h"].to_numpy()
        assert (ended < hour).sum() <= labels <= (ended <= hour).sum(), (hour, labels)
    label = office.learner.label
    finished = cases.dropna(subset=["done_h"])
    assert len(label) == len(finished)  # never inspected: no label
    assert [label[n] for n in finished["declaration"]] == finished["detected"].astype(float).tolist()
    assert office.learner.trainings == [n for _, n in trainings if n >= 50][: len(office.learner.trainings)]


def test_the_learned_score_ranks_the_targeted_channel_above_random(ran):
    """Once trained, the score's picks (targeted, most with no rule fired) find violations at a rate well
    above the random channel's (a two-proportion test on the run's cases after the second training:
    9.4% against 2.8% when written)."""
    office, trainings = ran
    cases = case_table(office)
    after = cases[cases["arrival_h"] >= trainings[1][0]]
    targeted, random = after[after["channel"] == "targeted"], after[after["channel"] == "random"]
    table = [
        [targeted["violating"].sum(), (~targeted["violating"]).sum()],
        [random["violating"].sum(), (~random["violating"]).sum()],
    ]
    assert (targeted["rules"] == "").mean() > 0.5  # most picks no rule flagged: the score's own (73%)
    assert targeted["violating"].mean() > 2 * random["violating"].mean()
    assert stats.fisher_exact(table, alternative="greater").pvalue < 0.001


def test_ipw_weighs_each_label_by_the_inverse_of_its_chance_of_inspection(ran):
    """The weights are the office's own inclusion probabilities: their inverse summed over the
    inspected declarations estimates how many were declared (Horvitz-Thompson), within its error."""
    office, _ = ran
    cases = case_table(office)
    computer = cases[cases["channel"] != "instructed"]
    p = np.array([office.learner.kept[n][1] for n in computer["declaration"]])
    estimate, declared = (1 / p).sum(), int(office.record.declarations.sum())
    se = np.sqrt(((1 - p) / p**2).sum())
    assert abs(estimate - declared) < 4 * se, (estimate, declared, se)


def test_drift_moves_only_its_segment_and_only_from_its_date():
    spec = small()
    goods = pd.DataFrame({"origin_country": ["VN", "CN", "VN", "CN"], "hs_code": ["850440"] * 4})
    hour_of_drift = (spec.goods.drift[0].at - spec.horizon.start).days * 24
    arrival = np.array([hour_of_drift - 1, hour_of_drift - 1, hour_of_drift, hour_of_drift + 5.0])
    moved = population.drifted(np.zeros(4), goods, arrival, spec)
    assert moved.tolist() == [0.0, 0.0, 2.5, 0.0]


def test_a_learned_score_needs_both_its_training_and_its_use():
    with pytest.raises(InputError, match="needs both `model`"):
        small("model=null")
    with pytest.raises(InputError, match="ranks under an expected rate"):
        small("policy.expected_rate=null")
    with pytest.raises(InputError, match="names its segment"):
        small("goods.drift=[{at: 2026-03-01, log_odds: 1}]")


def test_features_are_what_a_declaration_lodges_and_its_firm_at_decision_time(ran):
    """No outcome among the inputs, and the firm's record as it stood when each declaration was
    decided: the busiest firm's count of declarations grows along its own declarations."""
    office, _ = ran
    assert learning.FEATURES[: len(learning.LODGED)] == learning.LODGED
    assert not {"violating", "detected", "risk", "propensity", "label"} & set(learning.FEATURES)
    firms = office.decls.enterprise
    busiest = np.flatnonzero(firms == np.bincount(firms).argmax())
    seen = office.learner.x[busiest, learning.FEATURES.index("declarations")]
    assert (np.diff(seen) >= 0).all() and seen[-1] > seen[0]


def test_a_run_with_a_learned_score_without_lightgbm_says_which_extra_to_install(monkeypatch, tmp_path):
    import importlib.util

    from typer.testing import CliRunner

    from simulation.cli import app

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "lightgbm" else real(name, *a)
    )
    done = CliRunner().invoke(
        app, ["run", str(ROOT / "scenarios" / "drift.yaml"), "--out", str(tmp_path / "o")]
    )
    assert done.exit_code == 2 and "pip install 'doublerandom[model]'" in done.output
    assert not (tmp_path / "o").exists()
