"""A learned risk score trained on an imported log: gradient-boosted trees (LightGBM) on the engine's
declaration fields and the importer's record as of each declaration's date.

Features (`features`): `engine.score.FEATURES`, built here for a whole log at once and there for one
live declaration (a test holds both to the same bits). The importer's record covers the **180 days
before the declaration's day**. A day's outcomes count from the next day on, as the replay's standing
does, so no declaration's features see its own day's outcomes or later ones (a test plants one). A
window, not the firm's whole life: lifetime counts only grow, so a model trained on one year would see
every later month as drift (a score PSI of 0.10 in a month with no change), and a score must not
depend on where the log it is computed from begins.

Scores are always computed on the whole log and then cut to the rows asked for (`Model.score(log,
rows)`): computed on a slice, the record would lose the history before the slice's first day.

Where the log carries inclusion probabilities, each labelled declaration weighs their inverse
(`ipw`), so the random channel's unbiased labels count for the population.

LightGBM rather than scikit-learn's histogram boosting: a 3.6 MB wheel against scikit-learn's 13 MB
plus its dependencies, native categorical splits, and the published figures on this data set are
LightGBM's. Training stops early on a later validation period, which also gives the figures the
model file records. The file's format and its checks are `engine.score`'s: the live office reads the
same file.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.report import proportion
from engine.score import CATEGORIES, FEATURES, FORMAT, WINDOW_DAYS, calibrated, fingerprint, read
from replay.evaluate import top

WINDOW = f"{WINDOW_DAYS}D"  # the importer's record: the days before the declaration's that count
BUDGETS = (0.01, 0.02, 0.05, 0.10)
PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "cat_smooth": 10,
    "verbose": -1,
    "num_threads": 1,
    "seed": 1,
    "deterministic": True,
}


def features(log: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs for every row of an imported log (in its time order)."""
    hs = log["hs_code"].astype(str)
    out = pd.DataFrame(
        {
            "hs_chapter": hs.str[:2],
            "hs_heading": hs.str[:4],
            "hs_code": hs.str[:6],
            **{name: log[name].astype(str) for name in CATEGORIES[3:]},
            "log_value": np.log1p(log["declared_value"].astype(float)),
            "log_mass": np.log1p(log["net_mass_kg"].astype(float)),
            "log_value_per_kg": np.log1p(
                log["declared_value"].astype(float) / log["net_mass_kg"].astype(float).clip(lower=0.1)
            ),
        },
        index=log.index,
    )
    return pd.concat([out, firm_record(log)], axis=1)


def firm_record(log: pd.DataFrame) -> pd.DataFrame:
    """Each importer's declarations, inspections and violations on the 180 days before each
    declaration's day (that day excluded)."""
    day = log["declared_at"].dt.normalize()
    inspected = log["inspected"].astype(bool) & log["violation"].notna()
    per_day = (
        pd.DataFrame(
            {
                "firm": log["enterprise_id"],
                "day": day,
                "declarations": 1,
                "inspected": inspected.astype(int),
                "violations": (inspected & log["violation"].fillna(False).astype(bool)).astype(int),
            }
        )
        .groupby(["firm", "day"], sort=True)
        .sum()
    )
    # per firm, the window of days before each of its days (closed on the left: not the day itself)
    before = (
        per_day.reset_index(level="firm")
        .groupby("firm")[["declarations", "inspected", "violations"]]
        .rolling(WINDOW, closed="left")
        .sum()
        .fillna(0.0)
    )
    joined = before.reindex(pd.MultiIndex.from_arrays([log["enterprise_id"], day])).to_numpy(float)
    out = pd.DataFrame(
        joined, columns=["firm_declarations", "firm_inspected", "firm_violations"], index=log.index
    )
    out["firm_violation_share"] = (out["firm_violations"] + 1) / (out["firm_inspected"] + 2)
    return out


def _frame(x: pd.DataFrame, levels: dict[str, list[str]]) -> pd.DataFrame:
    """The features with each category on the training levels (an unseen level is missing)."""
    x = x.copy()
    for name in CATEGORIES:
        known = x[name].where(x[name].isin(levels[name]))  # an unseen level is missing, said so
        x[name] = pd.Categorical(known, categories=levels[name])
    return x[FEATURES]


@dataclass
class Model:
    booster: object  # lightgbm.Booster
    meta: dict

    def score(self, log: pd.DataFrame, rows: np.ndarray | pd.Series | None = None) -> np.ndarray:
        """The probability of a violation for every row of an imported log, or for `rows` (a mask):
        the features are built on the whole log first, so each row keeps its importer's record from
        before the rows asked for."""
        x = features(log)
        return self.predict(x if rows is None else x[np.asarray(rows, bool)])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        """The probability of a violation for rows of `features(log)` (built on the whole log),
        calibrated as the file says (`engine.score.calibrated`, one at a time: a live decision's bits)."""
        raw = self.booster.predict(_frame(x, self.meta["levels"]), num_iteration=self.meta["iterations"])
        calibration = self.meta.get("calibration")
        if not calibration:
            return raw
        return np.fromiter((calibrated(float(p), calibration) for p in raw), float, len(raw))

    def explain(self, x: pd.DataFrame, top: int = 3) -> list[list[tuple[str, float]]]:
        """Why each row scored as it did: the `top` features that pushed its score most (LightGBM's
        tree contributions, on the log-odds scale; they and the bias add up to the row's log-odds)."""
        contributions = self.booster.predict(
            _frame(x, self.meta["levels"]), num_iteration=self.meta["iterations"], pred_contrib=True
        )[:, :-1]  # the last column is the bias
        order = np.argsort(-np.abs(contributions), axis=1)[:, :top]
        return [[(FEATURES[k], float(row[k])) for k in keys] for row, keys in zip(contributions, order)]

    def save(self, path: str | Path) -> None:
        text = self.booster.model_to_string(num_iteration=self.meta["iterations"])
        body = {**self.meta, "booster": text}
        body["fingerprint"] = fingerprint(body)
        Path(path).write_text(json.dumps(body))


def train(
    log: pd.DataFrame, until: dt.date, valid_until: dt.date, rounds: int = 2000, calibrate: bool = False
) -> Model:
    """Train on the inspected declarations before `until`, stop early on those from `until` to
    `valid_until` (and record the validation figures there); with `calibrate`, recalibrate the
    probability there too (`platt`). Off by default: a validation period holds far fewer labels than
    the training, and with inverse-probability weights its few heavily weighted ones can move the
    probabilities' level more than the trees were off (a test: 0.093 against a true 0.121)."""
    import lightgbm as lgb

    labelled = log["inspected"].astype(bool) & log["violation"].notna()
    day = log["declared_at"].dt.date
    fit, valid = labelled & (day < until), labelled & (day >= until) & (day < valid_until)
    if fit.sum() < 100 or valid.sum() < 50:
        raise InputError(
            f"training needs at least 100 labelled declarations before {until} and 50 from then to "
            f"{valid_until}; the log has {int(fit.sum())} and {int(valid.sum())}"
        )
    x = features(log)
    levels = {name: sorted(x.loc[fit, name].unique().tolist()) for name in CATEGORIES}
    y = log["violation"].fillna(False).astype(int)
    weight = ipw(log)
    train_set = lgb.Dataset(
        _frame(x[fit], levels), y[fit], weight=weight[fit.to_numpy()], categorical_feature=CATEGORIES
    )
    valid_set = lgb.Dataset(
        _frame(x[valid], levels), y[valid], weight=weight[valid.to_numpy()], reference=train_set
    )
    booster = lgb.train(
        PARAMS, train_set, rounds, valid_sets=[valid_set], callbacks=[lgb.early_stopping(100, verbose=False)]
    )
    meta = {
        "format": FORMAT,
        "library": "lightgbm",
        "library_version": lgb.__version__,
        "features": FEATURES,
        "levels": levels,
        "trained_until": until.isoformat(),
        "validated_until": valid_until.isoformat(),
        "iterations": int(booster.best_iteration or booster.current_iteration()),
        "rows": {"train": int(fit.sum()), "validation": int(valid.sum())},
        "weighted": bool((weight != 1).any()),
    }
    model = Model(booster, meta)
    if calibrate:
        raw = model.predict(x[valid])
        model.meta["calibration"] = platt(raw, y[valid].to_numpy(float), weight[valid.to_numpy()])
    model.meta["validation"] = precision_at(model.predict(x[valid]), y[valid].to_numpy(bool))
    return model


def platt(p: np.ndarray, y: np.ndarray, weight: np.ndarray, steps: int = 50) -> dict | None:
    """Platt's recalibration on the validation period: the weighted logistic regression of the labels
    on the trees' log-odds (Newton's method, two parameters), so the calibrated probabilities' weighted
    mean there is the weighted violation rate (the intercept's score equation) and the ranking stays
    (a positive slope). None where it cannot be fitted or would reverse the ranking."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    x = np.column_stack([np.log(p / (1 - p)), np.ones(len(p))])
    beta = np.array([1.0, 0.0])
    for _ in range(steps):
        q = 1 / (1 + np.exp(-(x @ beta)))
        gradient = x.T @ (weight * (y - q))
        hessian = (x * (weight * q * (1 - q))[:, None]).T @ x
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if np.abs(step).max() < 1e-12:
            break
    if not np.isfinite(beta).all() or beta[0] <= 0:
        return None
    return {"slope": float(beta[0]), "intercept": float(beta[1])}


def ipw(log: pd.DataFrame) -> np.ndarray:
    """Inverse-probability weights where the log carries each declaration's inclusion probability (a
    live office's decisions do): a declaration the random channel picked at 1% stands for a hundred,
    one a rule was sure to pick for itself, so the labels stand for the population rather than for
    what the rules chose. 1 everywhere when the log has none (the Korean one)."""
    p = log["inclusion_probability"].to_numpy(float)
    if not (np.isfinite(p) & (p > 0)).any():
        return np.ones(len(log))
    return np.where(np.isfinite(p) & (p > 0), 1.0 / np.clip(p, 1e-6, 1.0), 1.0)


def load(path: str | Path) -> Model:
    """A model file, refused with one clear error unless everything it says matches
    (`engine.score.read`, as the live office reads it)."""
    return Model(*read(path))


def precision_at(score: np.ndarray, y: np.ndarray, budgets=BUDGETS, seed: int = 1) -> dict[str, dict]:
    """Precision and recall of the top `budget` share of the scores (replay's `top`: ties by a seeded
    draw), with Wilson 95% intervals."""
    out = {}
    for budget in budgets:
        chosen = top(score, budget, seed)
        k, found = int(chosen.sum()), int((chosen & y).sum())
        precision, low, high = proportion(found, k) if k else (math.nan,) * 3
        out[f"{budget:g}"] = {
            "selected": k,
            "found": found,
            "precision": precision,
            "precision_low": low,
            "precision_high": high,
            "recall": found / int(y.sum()) if y.sum() else math.nan,
        }
    return out


def seen_in_training(log: pd.DataFrame, until: dt.date) -> np.ndarray:
    """Rows whose goods code, mass and value all equal a row's before `until`: a copy a model can
    look up rather than predict (a synthesized data set may repeat its records across splits)."""
    key = ["hs_code", "net_mass_kg", "declared_value"]
    before = log.loc[log["declared_at"].dt.date < until, key].drop_duplicates()
    return log[key].merge(before.assign(_seen=True), on=key, how="left")["_seen"].notna().to_numpy()


def importance(model: Model, top: int = 8) -> list[tuple[str, float]]:
    """The features carrying the model: their share of the total gain."""
    gain = np.asarray(model.booster.feature_importance("gain", iteration=model.meta["iterations"]), float)
    names = model.booster.feature_name()
    order = np.argsort(-gain)[:top]
    return [(names[k], float(gain[k] / gain.sum())) for k in order]


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected` on the expected's deciles: the sum
    of (a - e) ln(a / e) over the bins (under 0.1 stable, over 0.25 a shift, by the usual reading)."""
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(((a - e) * np.log(a / e)).sum())


def category_psi(expected: pd.Series, actual: pd.Series) -> float:
    """Population stability index of a category's level shares: the expected's 20 commonest levels,
    all others as one more (thousands of six-digit codes in a month's rows would make sampling noise
    look like a shift: 0.9 in every month of the Korean test quarter)."""
    levels = pd.Index(expected.astype(str).value_counts().index[:20])

    def shares(values: pd.Series) -> np.ndarray:
        codes = levels.get_indexer(values.astype(str))  # -1: a level the expected never had
        return np.bincount(codes + 1, minlength=len(levels) + 1) / max(len(values), 1)

    e, a = np.clip(shares(expected), 1e-4, None), np.clip(shares(actual), 1e-4, None)
    return float(((a - e) * np.log(a / e)).sum())


def input_psi(reference: pd.DataFrame, month: pd.DataFrame) -> dict[str, float]:
    """Each input's population stability index in `month` against `reference` (the features)."""
    return {
        name: category_psi(reference[name], month[name])
        if name in CATEGORIES
        else psi(reference[name].to_numpy(float), month[name].to_numpy(float))
        for name in FEATURES
    }


def calibration(score: np.ndarray, y: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """The calibration curve: declarations in bins of equal count by score, each bin's mean score
    against its observed violation rate with a Wilson 95% interval (a calibrated score lies inside)."""
    order = np.argsort(score, kind="stable")
    rows = []
    for k, part in enumerate(np.array_split(order, bins)):
        if not len(part):
            continue
        found = int(y[part].sum())
        rate, low, high = proportion(found, len(part))
        rows.append(
            {
                "bin": k + 1,
                "declarations": len(part),
                "mean_score": float(score[part].mean()),
                "violation_rate": rate,
                "rate_low": low,
                "rate_high": high,
            }
        )
    return pd.DataFrame(rows)


def monthly_report(model: Model, log: pd.DataFrame, since: dt.date, budget: float = 0.05) -> pd.DataFrame:
    """Month by month from `since`: declarations, the score's PSI against the validation period's,
    the input that moved most (its PSI), the precision at `budget` with its interval, and a flag where
    that whole interval lies under the validation precision's lower bound (the model finds less than
    it did when it was checked)."""
    day = log["declared_at"].dt.date
    validation = (day >= dt.date.fromisoformat(model.meta["trained_until"])) & (
        day < dt.date.fromisoformat(model.meta["validated_until"])
    )
    floor = model.meta["validation"][f"{budget:g}"]["precision_low"]
    since_then = day >= since
    later = log[since_then]
    inputs = features(log)  # once, on the whole log: the inputs of both periods and their scores
    reference_inputs, later_inputs = inputs[validation.to_numpy()], inputs[since_then.to_numpy()]
    reference, scores = model.predict(reference_inputs), model.predict(later_inputs)
    y = later["violation"].fillna(False).to_numpy(bool)
    months = later["declared_at"].dt.strftime("%Y-%m").to_numpy()
    rows = []
    for month in sorted(set(months)):
        mine = months == month
        at = precision_at(scores[mine], y[mine], (budget,))[f"{budget:g}"]
        moved = input_psi(reference_inputs, later_inputs[mine])
        top_input = max(moved, key=moved.get)
        rows.append(
            {
                "month": month,
                "declarations": int(mine.sum()),
                "score_psi": psi(reference, scores[mine]),
                "top_input": top_input,
                "top_input_psi": moved[top_input],
                "mean_score": float(scores[mine].mean()),
                "violation_rate": float(y[mine].mean()),
                "precision": at["precision"],
                "precision_low": at["precision_low"],
                "precision_high": at["precision_high"],
                "below_validation": bool(at["precision_high"] < floor),
            }
        )
    return pd.DataFrame(rows)
