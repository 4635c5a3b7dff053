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
    """The features of this month's declarations, those of every inspected one with its inclusion
    probability and, once its inspection ended, its label; and the current booster."""

    def __init__(self, spec: Learning):
        self.spec = spec
        self.levels: dict[str, list[str]] | None = None  # each category's values: one code all run long
        self.x, self.first = np.zeros((0, len(FEATURES))), 0
        self.kept: dict[int, tuple[np.ndarray, float]] = {}  # declaration number -> features, inclusion
        self.label: dict[int, float] = {}  # ... -> what its inspection found, once it ended
        self.booster = None
        self.trainings: list[int] = []  # the labels each training saw (what the tests count)

    def month(self, decls: Declarations, first: int) -> None:
        """A new month's declarations, the first numbered `first` in the run."""
        self.x, self.first = lodged_features(decls, self.levels), first

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

    def selected(self, lo: int, hi: int, inclusion: np.ndarray, inspected: np.ndarray) -> None:
        """Declarations lo..hi were decided: the inspected ones' features, as at decision time, are
        kept to learn from when their inspection ends."""
        for k in np.flatnonzero(inspected):
            self.kept[self.first + lo + int(k)] = (self.x[lo + k].copy(), float(inclusion[k]))

    def learn(self, number: int, found: bool) -> None:
        """An inspection of declaration `number` ended: its label is what it found."""
        self.label[number] = float(found)

    def retrain(self) -> None:
        import lightgbm  # only a run with a learned score needs it (the `model` extra)

        known = sorted(self.label)  # in the order decided
        labels = np.array([self.label[n] for n in known])
        if len(known) < self.spec.min_labels or len(np.unique(labels)) < 2:
            return
        x = np.array([self.kept[n][0] for n in known])
        weight = 1 / np.array([self.kept[n][1] for n in known]) if self.spec.ipw else None
        data = lightgbm.Dataset(
            x,
            labels,
            weight=weight,
            feature_name=FEATURES,
            categorical_feature=CATEGORIES,
            free_raw_data=True,
        )
        self.booster = lightgbm.train(PARAMS, data, num_boost_round=self.spec.rounds)
        self.trainings.append(len(known))


def _categories(goods: pd.DataFrame) -> dict[str, pd.Series]:
    hs = goods["hs_code"].astype(str).str.zfill(6)
    return {
        "hs_chapter": hs.str[:2],
        "hs_heading": hs.str[:4],
        "hs_code": hs,
        **{name: goods[name].astype(str) for name in CATEGORIES[3:7]},
    }


def levels(goods: pd.DataFrame, trade_modes: list[str]) -> dict[str, list[str]]:
    """Every value each lodged category can take (the goods the declarations are drawn from, or a
    log's), sorted: a value's code is its place here, the same in every month of a run."""
    if "trade_mode" not in goods:  # a goods table: the scenario's modes are drawn beside its lines
        goods = goods.assign(trade_mode=str(trade_modes[0]))
    out = {name: sorted(values.unique()) for name, values in _categories(goods).items()}
    out["trade_mode"] = sorted(set(out["trade_mode"]) | set(map(str, trade_modes)))
    return out


def lodged_features(decls: Declarations, levels: dict[str, list[str]]) -> np.ndarray:
    """The features declarations lodge (categories as codes into `levels`: LightGBM's own
    handling); the standing's columns are filled as each batch is decided."""
    goods = decls.goods
    mass = goods["net_mass_kg"].to_numpy(float)
    value = goods["declared_value"].to_numpy(float)
    x = np.zeros((len(decls), len(FEATURES)))
    for j, (name, values) in enumerate(_categories(goods).items()):
        x[:, j] = pd.Categorical(values, categories=levels[name]).codes
    x[:, LODGED.index("site")] = decls.site
    x[:, LODGED.index("log_value")] = np.log1p(value)
    x[:, LODGED.index("log_mass")] = np.log1p(mass)
    x[:, LODGED.index("log_value_per_kg")] = np.log1p(value / np.clip(mass, 0.1, None))
    return x
