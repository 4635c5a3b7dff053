"""Which declarations violate: relative risks by goods, origin and declared value, fitted from data.

A declaration's log-odds of violating is its enterprise's propensity (on the log-odds scale) plus
the effects of its goods (HS chapter, heading and six-digit code, nested), its origin and its value
band (declared value per kg against the goods' reference price). The effects are relative: the
level (how many declarations violate at all) comes from the scenario, because the data they are
fitted from hold inspected declarations only, so their fraud rate is a hit rate, not a population
rate (see README, "What is modelled").

The fit is a logistic regression with a Gaussian (ridge) penalty on every effect, the usual
empirical-Bayes shrinkage: a six-digit code seen 3 times stays near its heading, one seen 300 times
earns its own effect. The penalty is chosen on the validation split by log-likelihood. The fitted
table is shipped (`scenarios/risk/kcs_effects.csv`); `tools/fit_risk.py` regenerates it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, sparse

# Value bands on log(unit value / reference): far below the goods' usual price is the undervaluation
# signal, far above may be a mis-declared code.
BAND_EDGES = [-np.inf, -2.0, -1.0, -0.3, 0.3, 1.0, 2.0, np.inf]
BANDS = ["very_low", "low", "slightly_low", "typical", "slightly_high", "high", "very_high"]
LEVELS = ["chapter", "heading", "hs6", "origin", "value_band"]
REFERENCE_MIN_ROWS = 5  # a goods code needs this many rows to have its own reference price
PENALTIES = [0.03, 0.1, 0.3, 1.0, 3.0, 10.0]  # lambda; the prior SD of an effect is 1/sqrt(2 lambda)


def logit(p):
    return np.log(p) - np.log1p(-p)


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def log_unit_value(goods: pd.DataFrame) -> np.ndarray:
    return np.log(
        goods["declared_value"].clip(lower=0.01).to_numpy(float)
        / goods["net_mass_kg"].clip(lower=0.01).to_numpy(float)
    )


def references(goods: pd.DataFrame) -> pd.DataFrame:
    """Median log value per kg per goods code (hs6, heading, chapter, all), where there are enough rows."""
    lv = pd.Series(log_unit_value(goods), index=goods.index)
    rows = []
    for level, codes in goods_codes(goods).items():
        stats = lv.groupby(codes).agg(["median", "size"])
        stats = stats[stats["size"] >= REFERENCE_MIN_ROWS]
        rows += [
            {"level": f"reference_{level}", "code": code, "effect": m, "rows": n}
            for code, (m, n) in stats.iterrows()
        ]
    rows.append({"level": "reference_all", "code": "", "effect": float(lv.median()), "rows": len(lv)})
    return pd.DataFrame(rows)


def goods_codes(goods: pd.DataFrame) -> dict[str, pd.Series]:
    hs = goods["hs_code"].astype(str).str.zfill(6)
    return {"hs6": hs, "heading": hs.str[:4], "chapter": hs.str[:2]}


@dataclass
class RiskTable:
    """Fitted effects (log-odds, relative to the intercept) per level and code, and reference prices."""

    table: pd.DataFrame  # level, code, effect, rows, rate (the training data's raw fraud rate)
    _lines: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def intercept(self) -> float:
        return float(self.table.loc[self.table["level"] == "intercept", "effect"].iloc[0])

    def effects(self, level: str) -> dict[str, float]:
        part = self.table[self.table["level"] == level]
        return dict(zip(part["code"].astype(str), part["effect"]))

    def features(self, goods: pd.DataFrame) -> dict[str, pd.Series]:
        """The code of each declaration at each level, the value band included."""
        codes = goods_codes(goods)
        reference = pd.Series(self.effects("reference_all")[""], index=goods.index)
        for level in ("chapter", "heading", "hs6"):  # the most specific reference known wins
            known = codes[level].map(self.effects(f"reference_{level}"))
            reference = known.where(known.notna(), reference)
        anomaly = log_unit_value(goods) - reference.to_numpy()
        band = pd.cut(anomaly, BAND_EDGES, labels=BANDS).astype(str)
        return {
            **codes,
            "origin": goods["origin_country"].astype(str),
            "value_band": pd.Series(band, index=goods.index),
        }

    def logodds(self, goods: pd.DataFrame) -> np.ndarray:
        """The sum of the effects of each declaration's codes (unknown codes add 0), without the intercept."""
        total = np.zeros(len(goods))
        for level, codes in self.features(goods).items():
            total += codes.map(self.effects(level)).fillna(0.0).to_numpy(float)
        return total

    def line_logodds(self, goods: pd.DataFrame) -> np.ndarray:
        """`logodds` of the goods list a run draws from every month (5,000 lines, not a month's rows),
        worked out once and kept with this table while the same list is asked again."""
        if self._lines is None or self._lines[0] is not goods:
            self._lines = (goods, self.logodds(goods))
        return self._lines[1]

    def write(self, path: str | Path) -> None:
        self.table.to_csv(path, index=False, float_format="%.6g")

    @classmethod
    def read(cls, path: str | Path) -> RiskTable:
        table = pd.read_csv(
            path, dtype={"level": str, "code": str}, keep_default_na=False
        )  # code "NA" is Namibia
        for column in ("effect", "rows", "rate"):
            table[column] = pd.to_numeric(table[column], errors="coerce")
        return cls(table)


def fit(
    goods: pd.DataFrame, violated: np.ndarray, penalty: float, refs: pd.DataFrame | None = None
) -> RiskTable:
    """Ridge-penalised logistic regression of `violated` on the goods' codes at every level."""
    refs = references(goods) if refs is None else refs
    features = RiskTable(refs).features(goods)
    columns, blocks = [], []
    for level in LEVELS:
        codes = features[level].astype(str)
        levels = np.sort(codes.unique())
        index = np.searchsorted(levels, codes.to_numpy())
        blocks.append(
            sparse.csr_matrix(
                (np.ones(len(codes)), (np.arange(len(codes)), index)), shape=(len(codes), len(levels))
            )
        )
        columns += [(level, code) for code in levels]
    x = sparse.hstack(blocks).tocsr()
    y = np.asarray(violated, float)
    b0 = float(logit(np.clip(y.mean(), 1e-6, 1 - 1e-6)))

    def loss(w):
        eta = b0 + w[0] + x @ w[1:]
        nll = float(np.sum(np.logaddexp(0, eta) - y * eta))
        r = expit(eta) - y
        grad = np.concatenate([[r.sum()], x.T @ r + 2 * penalty * w[1:]])
        return nll + penalty * float(w[1:] @ w[1:]), grad

    w = optimize.minimize(
        loss, np.zeros(1 + x.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 2000}
    ).x
    rows = pd.Series(np.asarray(x.sum(axis=0)).ravel())
    rates = pd.Series(np.asarray(x.T @ y).ravel()) / rows
    table = pd.DataFrame(
        {
            "level": [c[0] for c in columns],
            "code": [c[1] for c in columns],
            "effect": w[1:],
            "rows": rows.astype(int),
            "rate": rates,
        }
    )
    head = pd.DataFrame(
        [{"level": "intercept", "code": "", "effect": b0 + w[0], "rows": len(y), "rate": y.mean()}]
    )
    return RiskTable(pd.concat([head, table, refs.assign(rate=math.nan)], ignore_index=True))


def log_likelihood(risk: RiskTable, goods: pd.DataFrame, violated: np.ndarray) -> float:
    eta = risk.intercept + risk.logodds(goods)
    y = np.asarray(violated, float)
    return float(np.mean(y * eta - np.logaddexp(0, eta)))


def fit_with_validation(train: pd.DataFrame, y_train, valid: pd.DataFrame, y_valid) -> tuple[RiskTable, dict]:
    """Fit at each penalty in PENALTIES, keep the one whose effects predict the validation split best."""
    refs = references(train)
    scores = {}
    for penalty in PENALTIES:
        scores[penalty] = log_likelihood(fit(train, y_train, penalty, refs), valid, y_valid)
    best = max(scores, key=scores.__getitem__)
    return fit(train, y_train, best, refs), {"penalty": best, "validation_loglik": scores}


def centred_shift(firm_logodds: np.ndarray, goods_logodds: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per group, the constant c that keeps the mean violation probability of the group's declarations
    at the firms' own mean when the goods effects are added: mean expit(f + g + c) = mean expit(f).
    So the goods redistribute violations among declarations without changing each class's level."""
    shift = np.zeros(int(group.max()) + 1 if len(group) else 0)
    for k in np.unique(group):
        f, g = firm_logodds[group == k], goods_logodds[group == k]
        target = float(expit(f).mean())
        shift[k] = optimize.brentq(lambda c: float(expit(f + g + c).mean()) - target, -30, 30)  # noqa: B023
    return shift
