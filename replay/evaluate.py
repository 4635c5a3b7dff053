"""Replaying an imported log through a policy: "had we used these rules and this random share, what
would we have found?"

Day by day in time order, the engine's batch decider (engine.batch.BatchDecider, the one the
simulation uses) decides that day's declarations with seeded draws; only then are that
day's logged outcomes applied to the enterprises' standing through the engine's FeedbackPolicy, so
no decision ever sees an outcome logged on its own day or later. Declarations before `start` only
build the standing.

Figures per channel and overall, with 95% Wilson intervals: selection rate, precision (hit rate),
recall (share of the log's violations found), lift (precision over the log's rate) and revenue
recall. At a fixed budget (a share of declarations), the top of the scores within it, as the
capacity policy does, ties broken at random. A log of inspected declarations only (the Korean one)
measures precision among declarations someone chose to inspect: the report says so. Where the log
carries inclusion probabilities, rates are weighted by their inverse (Horvitz-Thompson) to stand for
the whole population.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.batch import BatchDecider, seeded_draws
from engine.declarations import CreditClass
from engine.integrity import FeedbackPolicy
from engine.randomness import stream_generator
from engine.report import proportion, wilson
from engine.rules import RuleSet
from engine.selection import CREDIT_CLASSES, INSPECTION_TYPES, LANES, NOT_INSPECTED, SelectionPolicy
from engine.standing import Standing

CHANNELS = ("random", "targeted", "credit")


@dataclass
class Evaluation:
    policy: str
    rows: int  # declarations evaluated (from `start`)
    base_rate: float  # the log's violation rate over them (weighted when the log has inclusion probabilities)
    only_inspected: bool
    weighted: bool
    figures: dict[str, dict[str, float]] = field(default_factory=dict)  # channel or "overall" or "budget"
    rules: dict[str, dict[str, float]] = field(default_factory=dict)  # per rule: fired, found, contribution

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"policy": self.policy, "channel": k, **v} for k, v in self.figures.items()])


def evaluate(
    log: pd.DataFrame,
    rules: RuleSet,
    policy: SelectionPolicy,
    *,
    budget: float | None = None,
    start: dt.date | None = None,
    seed: int = 1,
    feedback: FeedbackPolicy | None = None,
    name: str = "policy",
) -> Evaluation:
    decided = decide(log, rules, policy, seed, feedback or FeedbackPolicy())
    keep = (log["declared_at"].dt.date >= start).to_numpy() if start else np.ones(len(log), bool)
    return measure(log[keep], {k: v[keep] for k, v in decided.items()}, budget, name, seed, rules)


def decide(
    log: pd.DataFrame, rules: RuleSet, policy: SelectionPolicy, seed: int, feedback: FeedbackPolicy
) -> dict[str, np.ndarray]:
    """Every declaration's channel flags, score and rule hits, deciding a day at a time."""
    n = len(log)
    firms, firm_ids = pd.factorize(log["enterprise_id"])
    general = CREDIT_CLASSES.index(CreditClass.general)
    first = log["declared_at"].iloc[0].date() if n else dt.date.today()
    m = len(firm_ids)  # every importer starts general, with no record: the log is all we know of them
    standing = Standing(np.full(m, general, np.int8), np.zeros(m, np.int64), feedback, first)
    lodged = {name: (lambda name=name: log[name]) for name in log.columns} | {
        "declared_date": lambda: log["declared_at"].dt.strftime("%Y-%m-%d"),
        "items": lambda: np.ones(n, np.int64),
    }
    decider = BatchDecider(rules, lodged, log["customs_office"].to_numpy(), seeded_draws(seed, n), seed)
    day = (log["declared_at"].dt.normalize() - pd.Timestamp(first)).dt.days.to_numpy()
    out = {
        "random": np.zeros(n, bool),
        "targeted": np.zeros(n, bool),
        "credit": np.zeros(n, bool),
        "score": np.zeros(n),
        "hits": np.zeros((n, len(rules.rules)), bool),
        "inspection": np.full(n, NOT_INSPECTED, np.int8),
        "lane": np.zeros(n, np.int8),
    }
    logged = log["inspected"].to_numpy(bool) & log["violation"].notna().to_numpy()
    violated = log["violation"].fillna(False).to_numpy(bool)
    bounds = np.flatnonzero(np.diff(day)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, n]):
        codes = firms[lo:hi]
        d = decider.decide(lo, hi, codes, day[lo:hi].astype(float), standing, policy)
        c = d.chosen
        out["random"][lo:hi], out["targeted"][lo:hi], out["credit"][lo:hi] = (
            c.random_hit,
            c.targeted,
            c.credit_only,
        )
        out["score"][lo:hi], out["hits"][lo:hi] = c.score, d.hits
        out["inspection"][lo:hi], out["lane"][lo:hi] = c.inspection, d.lane
        standing.count_declarations(codes)
        for k in lo + np.flatnonzero(logged[lo:hi]):  # the day's outcomes, after the day's decisions
            standing.record(int(firms[k]), bool(violated[k]), float(day[k]))
    return out


def measure(
    log: pd.DataFrame, d: dict[str, np.ndarray], budget: float | None, name: str, seed: int, rules: RuleSet
) -> Evaluation:
    y = log["violation"].fillna(False).to_numpy(bool)
    revenue = log["revenue"].fillna(0.0).to_numpy(float) * y
    p = log["inclusion_probability"].to_numpy(float)
    weighted = bool(np.isfinite(p).all() and (p > 0).all()) and len(p) > 0
    w = 1 / p if weighted else np.ones(len(y))
    base = float((w * y).sum() / w.sum()) if len(y) else math.nan
    result = Evaluation(name, len(y), base, bool(log["inspected"].all()), weighted)
    selected = d["random"] | d["targeted"] | d["credit"]
    for channel in CHANNELS:
        result.figures[channel] = figures(d[channel], y, revenue, w, base)
    result.figures["overall"] = figures(selected, y, revenue, w, base)
    if budget is not None:
        result.figures["budget"] = figures(top(d["score"], budget, seed), y, revenue, w, base)
        result.figures["random at budget"] = figures(top(np.zeros(len(y)), budget, seed), y, revenue, w, base)
    for k, rule in enumerate(rules.rules):
        fired, found = int(d["hits"][:, k].sum()), int((d["hits"][:, k] & y).sum())
        result.rules[rule.id] = {
            "fired": fired,
            "found": found,
            **dict(zip(("hit_rate", "low", "high"), proportion(found, fired))),
        }
    return result


def figures(chosen: np.ndarray, y: np.ndarray, revenue: np.ndarray, w: np.ndarray, base: float) -> dict:
    """Selection rate, precision, recall, lift and revenue recall of a choice, with Wilson intervals
    (on the effective sample size when weighted)."""
    n_sel, n = float(w[chosen].sum()), float(w.sum())
    found, violations = float((w * (chosen & y)).sum()), float((w * y).sum())
    k_sel, k_viol = int(chosen.sum()), int(y.sum())
    precision = found / n_sel if n_sel else math.nan
    recall = found / violations if violations else math.nan
    out = {
        "selected": k_sel,
        "found": int((chosen & y).sum()),
        "selection_rate": n_sel / n if n else math.nan,
        "precision": precision,
        "recall": recall,
        "lift": precision / base if base else math.nan,
        "revenue_recall": float((w * revenue * chosen).sum() / (w * revenue).sum())
        if revenue.any()
        else math.nan,
    }
    out["selection_rate_low"], out["selection_rate_high"] = wilson(out["selection_rate"], len(y))
    out["precision_low"], out["precision_high"] = wilson(precision, k_sel) if k_sel else (math.nan, math.nan)
    out["recall_low"], out["recall_high"] = wilson(recall, k_viol) if k_viol else (math.nan, math.nan)
    return out


def top(score: np.ndarray, budget: float, seed: int) -> np.ndarray:
    """The budget's share of declarations with the highest scores, ties broken by a seeded draw."""
    k = int(round(budget * len(score)))
    tie = stream_generator(seed, "capacity", 1).random(len(score))
    order = np.lexsort((tie, -score))
    chosen = np.zeros(len(score), bool)
    chosen[order[:k]] = True
    return chosen


def report_rows(log: pd.DataFrame, decided: dict[str, np.ndarray], rules: RuleSet):
    """The replayed decisions as the live store's report rows (engine.report.monthly): a declaration
    the policy selected counts as inspected, with the outcome the log recorded for it."""
    ids = [r.id for r in rules.rules]
    months = log["declared_at"].dt.strftime("%Y-%m-%d").to_numpy()
    violation = log["violation"].to_numpy()
    for k in range(len(log)):
        channel = (
            "random"
            if decided["random"][k]
            else "targeted"
            if decided["targeted"][k]
            else "credit"
            if decided["credit"][k]
            else "none"
        )
        selected = channel != "none"
        fired = [ids[j] for j in np.flatnonzero(decided["hits"][k])]
        outcome = None if not selected or pd.isna(violation[k]) else ("problem" if violation[k] else "normal")
        kind = INSPECTION_TYPES[decided["inspection"][k]].value if selected else None
        yield (
            months[k],
            {"selected": selected, "channel": channel, "rules": fired, "lane": LANES[decided["lane"][k]]},
            kind,
            outcome,
        )
