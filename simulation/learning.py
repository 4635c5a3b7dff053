"""The learning loop inside a simulated run: a learned score that sees labels only where an
inspection happened (`scenario.model`; `policy.model` says how selection ranks by it).

Each declaration's features are fixed when it is decided: what it lodges (HS chapter, heading and
six-digit code, origin and departure country, transport and trade mode, office as categories;
declared value, net mass and value per kg on a log scale) and its enterprise's standing at that
moment (declarations lodged, inspections, problems found, the share found with a prior of one clean
and one bad, the credit class, whether it is flagged high risk). Its label is what the inspection
found, known from the moment the inspection ends; a declaration never inspected has none, which is
the point: a score retrained only on what it chose to inspect sees only where it already looks.

Every `retrain_days` the score is trained again (LightGBM, as `replay.learn`) on every label so far,
each weighing 1, or with `ipw` the inverse of the declaration's chance of inspection (the computer's
inclusion probability combined with the officers' nominal order rate), so the random channel's few
unbiased labels count for the population they stand for. Until the first training (`min_labels`
labels) the targeted channel ranks by the rules alone.

Its own small training rather than `replay.learn`'s: the replay model's importer record is a window
over an imported log, while here the standing is the run's own arrays (and the two packages stay
independent of each other).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.standing import Standing
from simulation.population import Declarations
from simulation.scenario import Learning

LODGED = ["hs_chapter", "hs_heading", "hs_code", "origin_country", "departure_country", "transport_mode",
          "trade_mode", "site", "log_value", "log_mass", "log_value_per_kg"]  # fmt: skip
STANDING = ["credit", "declarations", "inspections", "problems", "problem_share", "high_risk"]
FEATURES = LODGED + STANDING
CATEGORIES = LODGED[:8] + ["credit"]  # LightGBM's own categorical handling (codes)
FIRM = slice(len(LODGED), None)  # the columns set as each declaration is decided
PARAMS = {
    "objective": "binary",
    "learning_rate": 0.08,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "cat_smooth": 10,
    "verbose": -1,
    "num_threads": 1,
    "seed": 1,
    "deterministic": True,
}


class Learner:
    """Features, labels and the current booster for every declaration of a run."""

    def __init__(self, spec: Learning, decls: Declarations):
        self.spec = spec
        self.x = lodged_features(decls)
        n = len(decls)
        self.label = np.full(n, np.nan)  # nan: not inspected, or its inspection not finished
        self.inclusion = np.ones(n)
        self.booster = None
        self.trainings: list[int] = []  # the labels each training saw (what the tests count)

    def describe(self, lo: int, hi: int, firms: np.ndarray, day: np.ndarray, standing: Standing) -> None:
        """The enterprise's standing as the declarations are decided."""
        inspections, problems = standing.inspections[firms], standing.problems[firms]
        self.x[lo:hi, FIRM] = np.column_stack(
            [
                standing.credit[firms],
                standing.declarations[firms],
                inspections,
                problems,
                (problems + 1) / (inspections + 2),
                standing.flag_until[firms] >= day,
            ]
        )

    def probability(self, lo: int, hi: int) -> np.ndarray | None:
        """The score of declarations lo..hi, or None before the first training."""
        if self.booster is None or hi <= lo:
            return None
        return self.booster.predict(self.x[lo:hi], num_threads=1)  # threads cost more than 60 rows

    def selected(self, lo: int, hi: int, inclusion: np.ndarray) -> None:
        self.inclusion[lo:hi] = inclusion

    def learn(self, i: int, found: bool) -> None:
        """An inspection of declaration i ended: its label is what it found."""
        self.label[i] = float(found)

    def retrain(self) -> None:
        import lightgbm  # only a run with a learned score needs it (the `model` extra)

        known = ~np.isnan(self.label)
        if known.sum() < self.spec.min_labels or len(np.unique(self.label[known])) < 2:
            return
        weight = 1 / self.inclusion[known] if self.spec.ipw else None
        data = lightgbm.Dataset(
            self.x[known],
            self.label[known],
            weight=weight,
            feature_name=FEATURES,
            categorical_feature=CATEGORIES,
            free_raw_data=True,
        )
        self.booster = lightgbm.train(PARAMS, data, num_boost_round=self.spec.rounds)
        self.trainings.append(int(known.sum()))


def lodged_features(decls: Declarations) -> np.ndarray:
    """The features a declaration lodges, for the whole horizon (categories as codes: LightGBM's
    own handling); the standing's columns are filled as each batch is decided."""
    goods = decls.goods
    hs = goods["hs_code"].astype(str).str.zfill(6)
    mass = goods["net_mass_kg"].to_numpy(float)
    value = goods["declared_value"].to_numpy(float)
    columns = {
        "hs_chapter": hs.str[:2],
        "hs_heading": hs.str[:4],
        "hs_code": hs,
        **{name: goods[name].astype(str) for name in CATEGORIES[3:7]},
    }
    x = np.zeros((len(decls), len(FEATURES)))
    for j, values in enumerate(columns.values()):
        x[:, j] = pd.factorize(values, sort=True)[0]
    x[:, LODGED.index("site")] = decls.site
    x[:, LODGED.index("log_value")] = np.log1p(value)
    x[:, LODGED.index("log_mass")] = np.log1p(mass)
    x[:, LODGED.index("log_value_per_kg")] = np.log1p(value / np.clip(mass, 0.1, None))
    return x
