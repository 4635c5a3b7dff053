"""The monthly table analysts plot: selection by channel, hit rates, the compliance estimate, load.

Column definitions are a public contract (README, "Monthly metrics"). Rows are calendar months of
the horizon; a declaration belongs to the month it arrived in.

The non-compliance estimate uses the random channel only, stratified by credit class: within a
class every declaration had the same known chance of random selection, so the share of violations
found in the class's random sample, divided by the sample's mean detection probability (an
inspection can miss a violation), estimates the class's rate; the classes are weighted by their
share of the month's declarations. The variance is that of Poisson (Bernoulli) sampling from the
month's actual declarations: for a class with n inspected of N at sampling fraction f = n/N, mean
detection d and rate p, Var = p (1 - f d) / (n d); the f d term is the finite-population
correction, which matters where a class is sampled heavily (dishonest firms at 0.8). The interval is
Wilson's on the effective sample size p (1 - p) / Var.

Where some declarations had no chance of random selection (a random ratio of 0, or a class scaled
to 0), or a class holding more than 1% of the declarations was not sampled at all, the random sample
says nothing about them: the estimate is undefined (empty, `noncompliance_defined` false), never a
confident number about a sub-population. A smaller unsampled class (a firm downgraded late in the
month) is counted with the largest sampled class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np
import pandas as pd

from engine.declarations import CreditClass
from engine.report import (
    CHANNELS,
    FIGURES,
    RANDOM_CHANNELS,
    Figure,
    channel_figures,
    proportion,
    shares,
    wilson,
)
from engine.selection import LANES

# one entry per monthly.csv column (or group of columns defined together); drives COLUMNS and the README
# table. The figures a live office reports too are engine.report's FIGURES, computed by the same function.
METRICS = [
    Figure(("month",), "YYYY-MM", "calendar month of arrival"),
    *FIGURES,  # the figures live and simulated alike (engine.report)
    Figure(("violations_true",), "count", "declarations that really violate (ground truth)"),
    Figure(("violations_found",), "count", "violations detected"),
    Figure(
        ("violations_missed",),
        "count",
        "`violations_true - violations_found` (not inspected, or inspected and missed)",
    ),
    Figure(("noncompliance_true",), "share", "`violations_true / declarations`"),
    Figure(
        ("noncompliance_estimate",),
        "share",
        "from the random channel only, stratified by credit class: per class, violations found / (random "
        "inspections x their mean detection probability), weighted by the class's share of the month's "
        "declarations; **empty** when some declarations had no chance of random selection or a class over "
        "1% of declarations went unsampled",
    ),
    Figure(
        ("noncompliance_ci_low", "noncompliance_ci_high"),
        "share",
        "95% Wilson interval on the effective sample size p(1-p)/Var, Var = sum over classes of (N_h/N)^2 "
        "p_h (1 - f_h d_h) / (n_h d_h) (Poisson sampling of the month's declarations, with the "
        "finite-population term f_h d_h, f_h = n_h/N_h)",
    ),
    Figure(
        ("inspector_utilization",),
        "share of on-post hours",
        "inspection hours worked in the month / inspector on-post hours (over 1 when inspectors work "
        "their open inspections past their shift)",
    ),
    Figure(
        ("facility_utilization",),
        "share",
        "inspection hours / (document desks + scanners + physical bays) x hours in the month",
    ),
    Figure(
        ("mean_wait_h",),
        "hours",
        "mean time from arrival to dispatch, inspected declarations; one never dispatched counts until the "
        "horizon's end",
    ),
    Figure(
        ("p95_clearance_h",),
        "hours",
        "95th percentile of arrival to release or transfer, inspected declarations, by Kaplan-Meier with "
        "the unfinished censored at the horizon's end (the longest time seen, a lower bound, when over 5% "
        "never clear): an overloaded office cannot look fast",
    ),
    Figure(
        ("mean_clearance_released_h",),
        "hours",
        "mean arrival to release, inspected declarations with a normal result",
    ),
    Figure(("backlog_end",), "count", "inspections waiting for dispatch at the month's end"),
    Figure(("random_ratio",), "share", "the pure random ratio in force"),
    Figure(("instruction_rate",), "share", "the instruction channel's rate in force"),
    Figure(
        ("target_share",),
        "share",
        "the adaptive policy's target computer-selection share (empty without one)",
    ),
    Figure(
        ("noncompliance_defined",),
        "bool",
        "false when the estimate is undefined (the summary then carries `noncompliance_warning` and the "
        "printed summary a warning)",
    ),
    Figure(
        (
            "inspection_rate_advanced_certified",
            "inspection_rate_general_certified",
            "inspection_rate_general",
            "inspection_rate_dishonest",
        ),
        "share",
        "inspections / declarations of the class (by the class when decided); `summary.json` has "
        "`credit_rules`: each class's whole-run rate with its 95% interval against its rule, and whether "
        "the whole interval meets it",
    ),
    Figure(
        ("dishonest_enterprises", "high_risk_enterprises"),
        "count",
        "enterprises in the dishonest class / flagged high-risk at the month's end",
    ),
    Figure(
        ("enterprises_entered",),
        "count",
        "new enterprises that replaced leavers at the month's start (`population.turnover`)",
    ),
]
COLUMNS = [name for metric in METRICS for name in metric.names]

# Whole-run figures (summary.json, and per run in sweeps and tuning, where each gets a 95% interval
# over replications), each stated once: the sweep table, the tuner's probes and the sweep plots read
# their names, units and titles here.
RUN_METRICS = [
    Figure(("declarations",), "count", "declarations in the measured months"),
    Figure(("inspections",), "count", "inspections of declarations that arrived in the measured months"),
    Figure(("inspection_rate",), "share", "inspections / declarations"),
    Figure(
        ("random_dispatch_share",),
        "share",
        "computer-selection share: inspections the computer chose (rules, pure random, credit floor) / "
        "all inspections",
    ),
    Figure(
        ("pure_random_share",), "share", "pure random share: the random draw's inspections / all inspections"
    ),
    Figure(
        ("drawn_share",),
        "share",
        "drawn share: inspections chosen by a random draw (pure random, credit floor, rules' sampling "
        "under 1) / "
        "all inspections; China's 55% from random selection",
    ),
    Figure(
        ("scored_share",),
        "share",
        "scored share: inspections the targeted channel chose without a draw (ranked risk scores, rules "
        "that inspect every hit) / all inspections",
    ),
    Figure(("credit_share",), "share", "credit share: the credit floor's inspections / all inspections"),
    Figure(("violations_true",), "count", "declarations that violate (ground truth)"),
    Figure(("violations_found",), "declarations per run", "violations found"),
    Figure(("noncompliance_true",), "share", "true non-compliance rate"),
    Figure(("noncompliance_estimate",), "share", "stratified random-sample estimate of non-compliance"),
    Figure(("noncompliance_ci_width",), "share", "width of the compliance estimate's 95% interval"),
    Figure(
        ("monthly_half_width",),
        "share",
        "the monthly compliance estimate's 95% interval half-width, mean over months",
    ),
    Figure(("violations_found_per_month",), "declarations per month", "violations found per measured month"),
    Figure(
        ("violations_per_month",),
        "declarations per month",
        "violations committed per measured month (ground truth: deterrence lowers it)",
    ),
    Figure(
        ("violations_undetected_per_month",),
        "declarations per month",
        "violations committed and not found per measured month: what gets through",
    ),
    Figure(("inspector_utilization",), "share of on-post hours", "inspector utilization"),
    Figure(("mean_wait_h",), "hours", "mean wait for dispatch"),
    Figure(("p95_clearance_h",), "hours", "95th percentile clearance, unfinished ones counted to the end"),
    Figure(
        ("unfinished",), "count", "inspections not cleared by the horizon's end (their times are censored)"
    ),
    Figure(("backlog_end",), "count", "inspections waiting at the end"),
    Figure(
        ("backlog_growth",), "share of a month's inspections per month", "growth of the month-end backlog"
    ),
    Figure(("p95_clearance_trend",), "share of its level", "significant rise of p95 clearance over the run"),
    Figure(("worst_month_utilization",), "share", "inspector utilization of the busiest measured month"),
    Figure(("worst_month_p95_clearance_h",), "hours", "p95 clearance of the slowest measured month"),
]
RUN = {metric.names[0]: metric for metric in RUN_METRICS}


def readme_table() -> str:
    """The README's "Monthly metrics" table, written from METRICS (a test holds the README to it)."""
    rows = ["| column | definition | unit |", "|---|---|---|"]
    rows += [f"| {', '.join(f'`{n}`' for n in m.names)} | {m.definition} | {m.unit} |" for m in METRICS]
    return "\n".join(rows)


CREDIT_COLUMNS = {c.value: f"declarations_{c.value}" for c in CreditClass}  # per-class totals of a month


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    defined: bool
    why: str = ""


UNDEFINED = Estimate(math.nan, math.nan, math.nan, False)
SMALL_STRATUM = 0.01  # an unsampled class this small a share of declarations is pooled, not fatal


def random_sample_estimate(events: pd.DataFrame, totals: Mapping) -> Estimate:
    """The stratified estimate from the finished random-channel inspections among `events`, for the
    declarations counted in `totals` (a month's row, or a whole run's sum)."""
    sample = events[events["channel"].isin(RANDOM_CHANNELS) & events["done_h"].notna()]
    return stratified_estimate(sample, population(totals), int(totals["zero_chance"]), "assumed_detection")


def stratified_estimate(
    sample: pd.DataFrame, population: Mapping[str, int], zero_chance: int = 0, detection: str = "detection"
) -> Estimate:
    """The population violation share from finished random-channel inspections, stratified by
    credit class. `sample` needs credit_class, detected and the `detection` column: the probability
    an inspection finds a violation, as the office believes it (a find is divided by it, so a wrong
    belief biases the estimate by truth / belief); `population` gives each class's declarations;
    `zero_chance` counts declarations the random channel could not pick."""
    total = sum(population.values())
    if total == 0:
        return replace(UNDEFINED, why="no declarations")
    if zero_chance:
        return replace(UNDEFINED, why=f"{zero_chance} declarations had no chance of random selection")
    sizes = {credit: count for credit, count in population.items() if count}
    seen = set(sample["credit_class"].unique())
    unseen = {credit: count for credit, count in sizes.items() if credit not in seen}
    if sum(unseen.values()) > SMALL_STRATUM * total:
        return replace(UNDEFINED, why=f"no {', '.join(unseen)} declaration was in the random sample")
    if unseen:  # a sliver (a firm downgraded late in the month): counted with the largest class sampled
        largest = max((c for c in sizes if c in seen), key=sizes.__getitem__)
        sizes[largest] += sum(unseen.values())
        sizes = {c: n for c, n in sizes.items() if c in seen}
    value = variance = sampled = 0.0
    for credit, count in sizes.items():
        part = sample[sample["credit_class"] == credit]
        n = len(part)
        d = float(part[detection].mean())
        p = min(1.0, float(part["detected"].sum()) / (n * d))
        weight = count / total
        value += weight * p
        variance += weight**2 * p * max(0.0, 1 - min(1.0, n / count) * d) / (n * d)
        sampled += n * d
    n_eff = value * (1 - value) / variance if variance > 0 else sampled
    low, high = wilson(value, n_eff)
    return Estimate(value, low, high, True)


def monthly(events: pd.DataFrame, totals: pd.DataFrame, capacity: pd.DataFrame) -> pd.DataFrame:
    """One row per month. `totals`: declarations and violations_true per month (all declarations);
    `capacity`: busy_hours (inspection hours worked in the month, whatever the arrival month),
    on_post_hours, facility_hours, backlog_end and random_ratio per month."""
    rows = []
    for month, total in totals.iterrows():
        ev = events[events["month"] == month]
        rows.append(_month_row(month, ev, total, capacity.loc[month]))
    return pd.DataFrame(rows, columns=COLUMNS)


def _month_row(month: str, ev: pd.DataFrame, total: pd.Series, cap: pd.Series) -> dict:
    finished, found = ev["done_h"].notna(), ev["detected"]
    declarations, violations = int(total["declarations"]), int(total["violations_true"])
    estimate = random_sample_estimate(ev, total)
    clearance = ev["clearance_h"]  # unfinished ones counted until the horizon's end (censored)
    released = ev[ev["outcome"] == "normal"]
    return {
        "month": month,
        **channel_figures(_counts(ev, total, finished, found)),
        "violations_true": violations,
        "violations_found": int(found.sum()),
        "violations_missed": violations - int(found.sum()),
        "noncompliance_true": _ratio(violations, declarations),
        "noncompliance_estimate": estimate.value,
        "noncompliance_ci_low": estimate.low,
        "noncompliance_ci_high": estimate.high,
        "noncompliance_defined": estimate.defined,
        "inspector_utilization": _ratio(cap["busy_hours"], cap["on_post_hours"]),
        "facility_utilization": _ratio(cap["busy_hours"], cap["facility_hours"]),
        "mean_wait_h": float(ev["wait_h"].mean()) if len(ev) else math.nan,
        "p95_clearance_h": censored_percentile(clearance, ev["censored"]) if len(clearance) else math.nan,
        "mean_clearance_released_h": float((released["cleared_h"] - released["arrival_h"]).mean())
        if len(released)
        else math.nan,
        "backlog_end": int(cap["backlog_end"]),
        "random_ratio": float(cap["random_ratio"]),
        "instruction_rate": float(cap["instruction_rate"]),
        "target_share": float(cap.get("target_share", math.nan)),
        **{
            name: int(cap[name])
            for name in ("dishonest_enterprises", "high_risk_enterprises", "enterprises_entered")
        },
        **{
            f"inspection_rate_{credit}": _ratio(int((ev["credit_class"] == credit).sum()), int(total[column]))
            for credit, column in CREDIT_COLUMNS.items()
        },
    }


def _counts(ev: pd.DataFrame, total: pd.Series, finished: pd.Series, found: pd.Series) -> dict[str, int]:
    """A simulated month's counts, as engine.report.channel_figures reads them: per channel (an
    event's `both` is the random channel's), inspections, finished ones and finds; lanes per month."""
    channel = report_channel(ev["channel"])
    out = {
        "declarations": int(total["declarations"]),
        "scored_selected": int(((channel == "targeted") & ev["scored"].astype(bool)).sum()),
    }
    for c in CHANNELS:
        mine = channel == c
        out |= {
            f"{c}_selected": int(mine.sum()),
            f"finished_{c}": int((mine & finished).sum()),
            f"hits_{c}": int((mine & found).sum()),
        }
    return out | {f"lane_{name}": int(total[f"lane_{name}"]) for name in LANES}


# The credit measures (2018): advanced certified under 0.2x, general certified under 0.5x the
# general-credit average inspection rate; dishonest at least 0.8 absolute.
CREDIT_RULES = {
    "advanced_certified": ("relative", 0.2, "under"),
    "general_certified": ("relative", 0.5, "under"),
    "dishonest": ("absolute", 0.8, "at least"),
}


def credit_rules(events: pd.DataFrame, population: Mapping[str, int]) -> list[dict]:
    """Each class's whole-run inspection rate (all channels, instruction included) against its rule,
    with a 95% Wilson interval."""

    def rate(credit: str) -> tuple[float, float, float]:
        return proportion(int((events["credit_class"] == credit).sum()), population[credit])

    general = rate("general")[0]
    rows = []
    for credit, (kind, bound, sense) in CREDIT_RULES.items():
        value, low, high = rate(credit)
        limit = bound * general if kind == "relative" else bound
        met = (high < limit) if sense == "under" else (low >= limit)
        rows.append(
            {
                "class": credit,
                "rate": value,
                "low": low,
                "high": high,
                "rule": f"{sense} {bound:g}" + (" x general" if kind == "relative" else ""),
                "limit": limit,
                "met": bool(met) if value == value else None,
            }
        )
    return rows


def censored_percentile(times, censored, q: float = 0.95) -> float:
    """The q-quantile of times some of which are right-censored (unfinished at the horizon's end: the
    time shown is how long they had waited so far), by the Kaplan-Meier estimate of the survival
    curve. When more than 1 - q are still unfinished beyond every finished time, the curve never falls
    to 1 - q within what was observed: the quantile is then beyond the longest time observed, and
    that time is returned, as a lower bound. Dropping the unfinished instead made an overloaded office
    look fast: its slowest cases are the ones that never clear."""
    t = np.asarray(times, float)
    c = np.asarray(censored, bool)
    keep = np.isfinite(t)
    t, c = t[keep], c[keep]
    if not len(t):
        return math.nan
    order = np.lexsort((c, t))  # at equal times, finished before censored (the usual convention)
    t, c = t[order], c[order]
    at_risk = len(t) - np.arange(len(t))
    survival = np.cumprod(np.where(c, 1.0, 1.0 - 1.0 / at_risk))
    reached = np.flatnonzero(survival <= 1 - q + 1e-12)
    return float(t[reached[0]]) if len(reached) else float(t[-1])


def dispatch_shares(channel: pd.Series) -> tuple[float, float, float]:
    """engine.report's three shares from a run's event channels."""
    merged = report_channel(channel)
    return shares({c: int((merged == c).sum()) for c in CHANNELS})


def report_channel(channel: pd.Series) -> pd.Series:
    """Events' channels as the report counts them: `both` (random draw and a rule) is the random
    channel's, as engine.report.channel_of says of a live decision."""
    return channel.where(~channel.isin(RANDOM_CHANNELS), "random")


def population(totals: Mapping) -> dict[str, int]:
    """Declarations per credit class (at decision time) from a row of totals."""
    return {credit: int(totals[column]) for credit, column in CREDIT_COLUMNS.items()}


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan
