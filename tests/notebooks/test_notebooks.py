"""Every notebook runs top to bottom, headless, with small-horizon parameters (papermill)."""

from __future__ import annotations

import json
import re

import nbformat
import papermill
import pytest

from simulation import sentences
from tests.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
SMALL = {
    "01_quickstart.ipynb": {"months": 1, "warmup_months": 0, "out_dir": "../out/test-notebook-01"},
    "02_sampling_ratio_for_policy.ipynb": {
        "days": 7,
        "warmup_months": 0,
        "tune_months": 1,
        "check_months": 1,
        "replications": 2,
        "tolerance": 0.05,
        "workers": 0,
        "shares": [0.2, 0.8],
    },
    "03_random_dispatch_share.ipynb": {"months": 2, "warmup_months": 0},
    "04_feedback_and_selection_bias.ipynb": {"months": 2, "warmup_months": 0},
    "05_live_engine.ipynb": {"n_declarations": 120, "workdir": "../out/test-notebook-05"},
    "07_replay_a_real_log.ipynb": {
        "data_files": ["../tests/data/kcs_test_head.csv"],
        "train_until": "2021-04-15",
        "evaluate_from": "2021-04-16",
        "min_support": 8,
        "out_dir": "../out/test-notebook-07",
    },
    "08_learned_score.ipynb": {
        "data_files": ["../tests/data/kcs_test_head.csv"],
        "train_until": "2021-04-13",
        "valid_until": "2021-04-20",
        "rounds": 60,
        "ratios": [0.0, 0.016],
        "replications": 2,
        "workers": 0,
        "overrides": [
            "horizon.start=2026-12-01",
            "horizon.warmup_months=0",
            "horizon.months=2",
            "arrivals.per_day=400",
            "population.enterprises=1200",
            "inspectors.count=6",
            "model.retrain_days=10",
            "model.min_labels=30",
        ],
        "out_dir": "../out/test-notebook-08",
    },
    "06_is_the_model_right.ipynb": {
        "warmup_months": 0,
        "months": 1,
        "tune": True,
        "tune_months": 1,
        "replications": 2,
        "tolerance": 0.05,
        "workers": 0,
        "variants": ["baseline", "goods effects x1.5"],
    },
}


# Notebooks served as pages (Voilà): run in a real browser by their own tests, not by papermill.
APPS = {"policy.ipynb": "tests/notebooks/test_policy_page.py"}


def test_every_notebook_is_covered_and_stored_clean():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted([*SMALL, *APPS])
    assert all((ROOT / test).is_file() for test in APPS.values())
    for path in NOTEBOOKS.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs"
        assert path.name in APPS or any("parameters" in c.metadata.get("tags", []) for c in code), (
            f"{path.name} has no parameters cell"
        )
        text = json.dumps(notebook)
        assert "/work/" not in text and "/home/" not in text and "/root/" not in text, (
            f"{path.name}: absolute path"
        )


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs_headless(name, tmp_path):
    executed = tmp_path / name
    papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(executed),
        parameters=SMALL[name],
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )
    notebook = nbformat.read(executed, as_version=4)
    images = sum(
        "image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs
    )
    assert images >= 1, f"{name} drew no plot"
    printed = "\n".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert sentences.check(printed) == []  # every stated comparison agrees with the numbers it states
    stated = len(sentences.COMPARISON.findall(printed)) + len(sentences.LIMIT.findall(printed))
    assert stated >= STATED.get(name, 0), f"{name} states {stated} computed comparisons"


# Notebooks whose words compare results: each states at least this many computed comparisons or limits.
STATED = {
    "02_sampling_ratio_for_policy.ipynb": 2,
    "03_random_dispatch_share.ipynb": 2,
    "04_feedback_and_selection_bias.ipynb": 2,
    "08_learned_score.ipynb": 3,
}


def test_no_notebook_types_a_verdict_in_its_prose():
    """The words that contradicted their numbers were typed in markdown: comparisons and verdicts now
    come from simulation.sentences, so the prose states none of its own."""
    typed = re.compile(r"\b(barely|fewer violating firms are|from 55% to 80%|\d+% random\))", re.IGNORECASE)
    for path in NOTEBOOKS.glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            found = typed.findall(cell.source)
            assert not found, (path.name, found)
