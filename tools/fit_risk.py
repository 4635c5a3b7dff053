"""Fit the simulation's risk effects from the Korean synthetic declaration data set (MIT, IBS/KCS).

Writes scenarios/risk/kcs_effects.csv (the shipped table the simulation reads) and
scenarios/risk/kcs_effects.json (the fitted figures: penalty chosen, held-out checks).
Rows are mapped to declaration fields exactly as the shipped goods mix is (prices in USD), so the
reference prices fit the goods the simulation draws. Fitted on the training split (2020), the
penalty chosen on the validation split (2021 Q1), checked on the test split (2021 Q2).
Run from the repository root:  python tools/fit_risk.py ../shared/data/customs-declaration-datasets
"""

import csv
import json
import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from make_sample_declarations import declaration  # the one mapping from a KCS row to our fields

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from simulation import risk  # noqa: E402

OUT = Path("scenarios/risk")


def split(data_dir: str, name: str) -> tuple[pd.DataFrame, np.ndarray]:
    rng = random.Random(0)  # only the trade mode and the hour are drawn, and the fit reads neither
    with open(Path(data_dir) / f"df_syn_{name}_eng.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if len(r["Country of Origin"]) == 2]
    goods = pd.DataFrame([declaration(r, rng) for r in rows])
    return goods, np.array([int(r["Fraud"]) for r in rows])


def held_out(table: risk.RiskTable, goods: pd.DataFrame, y: np.ndarray) -> dict:
    """How well the effects rank unseen declarations: correlation, and the fraud rate among the top
    5% and 20% of scores against the split's own rate (the lift rules built on them can expect)."""
    score = table.logodds(goods)
    order = np.argsort(-score, kind="stable")
    top = {
        f"lift_top_{int(q * 100)}pct": float(y[order[: int(q * len(y))]].mean() / y.mean())
        for q in (0.05, 0.2)
    }
    return {
        "rows": len(y),
        "fraud_rate": float(y.mean()),
        "correlation": float(np.corrcoef(score, y)[0, 1]),
        **top,
    }


def main(data_dir: str) -> None:
    train, y_train = split(data_dir, "train")
    valid, y_valid = split(data_dir, "valid")
    test, y_test = split(data_dir, "test")
    table, choice = risk.fit_with_validation(train, y_train, valid, y_valid)
    OUT.mkdir(parents=True, exist_ok=True)
    table.write(OUT / "kcs_effects.csv")
    effects = table.table[table.table["level"].isin(risk.LEVELS)]
    figures = {
        "source": "Customs-Declaration-Datasets (KCS/IBS, MIT), df_syn_*_eng.csv",
        **choice,
        "train": {"rows": len(y_train), "fraud_rate": float(y_train.mean())},
        "valid": held_out(table, valid, y_valid),
        "test": held_out(table, test, y_test),
        "effect_sd": effects.groupby("level")["effect"].std().round(4).to_dict(),
        "value_bands": table.effects("value_band"),
    }
    (OUT / "kcs_effects.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/customs-declaration-datasets")
