"""Tuning the random ratio against capacity: the largest ratio the office can carry, or the smallest
capacity a ratio needs, with intervals from replications; and at a fixed capacity, which share of it
should be random (`fixed_capacity`, at the end).

The search is a bisection on the ratio, which is monotone under common random numbers (replication k
of every ratio sees the same declarations and draws, so a higher ratio only adds random picks). Each
probe runs R replications and takes 95% t-intervals of the constrained figures. Three boundaries
come out of the same probes:
- recommended: the largest ratio whose intervals' *upper* ends meet every limit (safe);
- estimate: the largest ratio whose *means* meet every limit;
- optimistic: the largest ratio whose intervals' *lower* ends meet every limit.
The true boundary lies in [recommended, optimistic] (up to the search tolerance). Utilization and
p95 clearance are judged on each run's worst measured month, so a limit holds in every month (judged
on the run's average, a quiet February let eleven busier months run over it). A backlog that
grows month over month (by more than 2% of a month's inspections per month) or a p95 clearance that
rises by more than 10% of its level over the run (judged on the mean over replications) also breaks the
limits:
an office that only keeps up because the run ended is not within them. Runs are judged on the
measured months only (the scenario's `horizon.warmup_months` are discarded); `tune` measures at
least 6 months (the scenario's own horizon when longer).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from engine.errors import InputError
from simulation.sweep import WHOLE_RUN, Axis, Runner, interval_table, mean_interval, paired_gain, tasks_for

LEVELS = ("recommended", "estimate", "optimistic")
MAX_BACKLOG_GROWTH = 0.02  # month-end backlog growing by more than 2% of a month's inspections, per month
MIN_MONTHS = 6  # measured months per run unless --months or horizon.days says otherwise
MAX_CLEARANCE_TREND = 0.10  # p95 clearance rising by more than 10% of its level over the measured months
BOUND = {"recommended": "_high", "estimate": "", "optimistic": "_low"}


@dataclass(frozen=True)
class Limits:
    max_utilization: float | None = None
    max_p95_clearance_h: float | None = None
    max_mean_wait_h: float | None = None

    def items(self) -> list[tuple[str, float]]:
        pairs = [  # utilization and clearance in every month (the worst one), the wait over the run
            ("worst_month_utilization", self.max_utilization),
            ("worst_month_p95_clearance_h", self.max_p95_clearance_h),
            ("mean_wait_h", self.max_mean_wait_h),
        ]
        return [(metric, limit) for metric, limit in pairs if limit is not None]


@dataclass
class Probe:
    """R replications at one setting: each figure's mean and interval."""

    value: float
    figures: dict[str, float]
    failures: list[str] = field(default_factory=list)

    def meets(self, limits: Limits, level: str) -> bool:
        if self.failures:
            return False
        suffix = BOUND[level]
        # the trends are judged on their means at every level: they ask whether the office is in a
        # steady state at all, not how close to a limit it runs (a 3-replication upper bound on a
        # 6-month slope would reject every ratio)
        trends = [("backlog_growth", MAX_BACKLOG_GROWTH), ("p95_clearance_trend", MAX_CLEARANCE_TREND)]
        return all(self.figures[f"{metric}{suffix}"] <= limit for metric, limit in limits.items()) and all(
            self.figures[metric] <= limit for metric, limit in trends
        )


class Search:
    """Probes one setting of the scenario at a time, caching each probe."""

    def __init__(
        self,
        raw: dict,
        base_dir: str,
        runner: Runner,
        replications: int,
        fixed: dict[str, object],
        progress: Callable[[str], None] | None = None,
    ):
        self.raw, self.base_dir, self.runner, self.replications = raw, base_dir, runner, replications
        self.fixed, self.progress = fixed, progress
        self.seed = int(raw.get("seed", 1))
        self.cache: dict[tuple, Probe] = {}

    def probe(self, path: str, value: float) -> Probe:
        key = (path, round(value, 12), tuple(sorted(self.fixed.items())))
        if key not in self.cache:
            params = {**self.fixed, path: value}
            tasks = tasks_for([params], self.replications, self.seed)
            outcomes = self.runner.map(self.raw, self.base_dir, tasks)
            good = [o.value["whole"] for o in outcomes if o.value is not None]
            figures: dict[str, float] = {}
            for metric in WHOLE_RUN:  # every whole-run figure of the registry, with its interval
                figures.update(mean_interval(np.array([g[metric] for g in good], float), metric))
            self.cache[key] = Probe(value, figures, [o.error for o in outcomes if o.error])
            if self.progress:
                self.progress(
                    f"{path}={value:g} " + ", ".join(self.fixed_text()) + f": {self._line(figures)}"
                )
        return self.cache[key]

    def fixed_text(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.fixed.items()]

    @staticmethod
    def _line(f: dict) -> str:
        return (
            f"worst month's utilization {f['worst_month_utilization']:.3f} "
            f"[{f['worst_month_utilization_low']:.3f}, {f['worst_month_utilization_high']:.3f}], "
            f"p95 clearance {f['p95_clearance_h']:.1f} h, "
            f"mean wait {f['mean_wait_h']:.2f} h"
        )


def largest_ratio(
    search: Search, path: str, low: float, high: float, limits: Limits, tolerance: float
) -> dict[str, float]:
    """For each level, the largest value in [low, high] meeting the limits (nan if even `low` fails)."""
    out = {}
    for level in LEVELS:
        lo, hi = low, high
        if not search.probe(path, lo).meets(limits, level):
            out[level] = math.nan
            continue
        if search.probe(path, hi).meets(limits, level):
            out[level] = hi
            continue
        while hi - lo > tolerance:
            mid = round((lo + hi) / 2, 10)
            if search.probe(path, mid).meets(limits, level):
                lo = mid
            else:
                hi = mid
        out[level] = lo
    return out


def smallest_capacity(search: Search, capacity: Axis, limits: Limits) -> dict[str, float]:
    """For each level, the smallest capacity value meeting the limits (bisection over the sorted values)."""
    values = sorted(capacity.values)
    out = {}
    for level in LEVELS:
        if not search.probe(capacity.path, values[-1]).meets(limits, level):
            out[level] = math.nan
            continue
        lo, hi = -1, len(values) - 1  # values[hi] meets the limits; values[lo] does not (or lo = -1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if search.probe(capacity.path, values[mid]).meets(limits, level):
                hi = mid
            else:
                lo = mid
        out[level] = values[hi]
    return out


def tune_ratio(
    raw: dict,
    base_dir: str,
    runner: Runner,
    limits: Limits,
    vary: str,
    low: float,
    high: float,
    capacity: Axis | None,
    replications: int,
    tolerance: float,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """One row per capacity value: the recommended, estimated and optimistic largest ratio."""
    rows = []
    for value in capacity.values if capacity else [None]:
        fixed = {capacity.path: value} if capacity else {}
        search = Search(raw, base_dir, runner, replications, fixed, progress)
        found = largest_ratio(search, vary, low, high, limits, tolerance)
        row = {capacity.path: value} if capacity else {}
        row.update(found)
        if not math.isnan(found["recommended"]):
            at = search.probe(vary, found["recommended"]).figures
            row.update(
                {
                    k: at[k]
                    for k in (
                        "inspector_utilization",
                        "inspector_utilization_high",
                        "p95_clearance_h",
                        "p95_clearance_h_high",
                        "random_dispatch_share",
                    )
                }
            )
        row["probes"] = len(search.cache)
        rows.append(row)
    return pd.DataFrame(rows)


def tune_capacity(
    raw: dict,
    base_dir: str,
    runner: Runner,
    limits: Limits,
    vary: str,
    ratio: float,
    capacity: Axis,
    replications: int,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    search = Search(raw, base_dir, runner, replications, {vary: ratio}, progress)
    found = smallest_capacity(search, capacity, limits)
    row = {
        vary: ratio,
        **{f"{capacity.path} ({level})": v for level, v in found.items()},
        "probes": len(search.cache),
    }
    return pd.DataFrame([row])


# ------------------------------------------------------------------ the policy question at fixed capacity


@dataclass(frozen=True)
class Frontier:
    """Per random share of a fixed capacity: detections, the monthly estimate's precision, service."""

    capacity: float  # the office's expected rate: the share of declarations the computer selects
    precision: float  # the monthly estimate's 95% half-width the office requires
    table: pd.DataFrame  # one row per share: share, random_ratio, each figure with its 95% interval
    recommended: float  # the share that lets fewest violations through within the precision and limits

    def sentence(self) -> str:
        """The answer in one sentence a policy officer can quote."""
        if math.isnan(self.recommended):
            return (
                f"At a capacity of {self.capacity:.1%} of declarations, no random share tried gives a "
                f"monthly "
                f"compliance estimate within ±{self.precision * 100:.2g} points within the limits: add "
                f"capacity "
                f"or accept a wider estimate."
            )
        row = self.table.set_index("share").loc[self.recommended]
        best = self.table.loc[self.table["violations_found_per_month"].idxmax()]
        lost = best["violations_found_per_month"] - row["violations_found_per_month"]
        cost = (
            "cannot estimate compliance at all (no random sample)"
            if math.isnan(best["monthly_half_width"])
            else f"estimates to only ±{best['monthly_half_width'] * 100:.2f}"
        )
        return (
            f"At a capacity of {self.capacity:.1%} of declarations, set the random ratio to "
            f"{row['random_ratio']:.2%} ({self.recommended:.0%} of the capacity before the credit "
            f"multipliers; "
            f"{row['random_of_selections']:.0%} of the computer's selections end up random): that finds "
            f"{row['violations_found_per_month']:.0f} violations a month "
            f"[{row['violations_found_per_month_low']:.0f}, {row['violations_found_per_month_high']:.0f}] "
            f"and "
            f"estimates compliance to ±{row['monthly_half_width'] * 100:.2f} points a month (required "
            f"±{self.precision * 100:.2g}); the share that finds most ({best['share']:.0%}) finds "
            f"{lost:.0f} more "
            f"a month but {cost}."
        )


OVER_CAPACITY = 1.05  # a share whose selections run more than 5% over the capacity does not hold it


def fixed_capacity(
    raw: dict,
    base_dir: str,
    runner: Runner,
    capacity: float,
    shares: list[float],
    precision: float,
    limits: Limits,
    replications: int,
    progress: Callable[[int, int], None] | None = None,
    fixed: dict[str, Any] | None = None,
) -> Frontier:
    """Hold the computer's selections at `capacity` (policy.expected_rate) and give `share` of it to
    the random channel (random_ratio = share x capacity; the targeted channel tops up the rest with
    the highest scores). Common random numbers across shares: replication k of every share sees the
    same declarations. Recommends the share that lets the fewest violations through undetected
    (committed and not found) among those whose monthly half-width (upper 95% bound over
    replications) is within `precision`, that meet `limits` (upper bounds) without a growing backlog
    or clearance, and whose selections stay at the capacity. Where firms do not respond to inspection
    the violations committed are the same at every share (the same draws), so that is the share that
    finds most; where they do (deterrence), a share that finds fewer may let fewer through."""
    from simulation import sweep as sweeps

    ratios = [round(s * capacity, 10) for s in shares]
    varied = {**raw, "policy": {**(raw.get("policy") or {}), "expected_rate": capacity}}
    held = [Axis(path, (value,)) for path, value in (fixed or {}).items()]  # one value each, as axes so
    # that a warm runner sees them as what-ifs (inspectors today) rather than as another office
    results = sweeps.sweep(
        varied, base_dir, [Axis("policy.random_ratio", tuple(ratios)), *held], replications, runner, progress
    )
    table = results.summary.rename(columns={"policy.random_ratio": "random_ratio"}).drop(columns="point")
    table.insert(0, "share", [shares[ratios.index(r)] for r in table["random_ratio"]])
    # the credit multipliers thin the random channel (certified firms' 0.15 and 0.4): the share of the
    # computer's selections that end up random is below the nominal share
    table.insert(2, "random_of_selections", table["pure_random_share"] / table["random_dispatch_share"])
    # the computer's selections per declaration: held at the capacity until the random channel and
    # the credit floor alone exceed it (the targeted channel can only shrink to nothing)
    table.insert(3, "computer_rate", table["inspection_rate"] * table["random_dispatch_share"])
    table = table.merge(
        changes(results.runs, "policy.random_ratio"), left_on="random_ratio", right_index=True
    )
    probe = {row["share"]: Probe(row["share"], row) for row in table.to_dict("records")}
    table["meets"] = [
        probe[s].meets(limits, "recommended")
        and probe[s].figures["monthly_half_width_high"] <= precision
        and probe[s].figures["computer_rate"] <= OVER_CAPACITY * capacity
        for s in table["share"]
    ]
    return Frontier(capacity, precision, table, recommend(table))


def recommend(table: pd.DataFrame) -> float:
    """Among the shares that meet everything, the one that lets fewest violations through (nan: none)."""
    ok = table[table["meets"]]
    return float(ok.loc[ok["violations_undetected_per_month"].idxmin(), "share"]) if len(ok) else math.nan


# What a random share changes against the first share tried (none random, as the shares start at 0):
# the office's aim is fewer violations getting through, so randomness pays where fewer go undetected
CHANGED = {
    "committed": "violations_per_month",
    "found": "violations_found_per_month",
    "undetected": "violations_undetected_per_month",
}


def changes(runs: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Per value of `axis` (the index), the change from its first value in violations committed,
    found and undetected a month (`committed_change`, ...), paired seed by seed, with a 95% t-interval
    over the seeds."""
    paired = runs.assign(
        **{f"{name}_change": paired_gain(runs, axis, column) for name, column in CHANGED.items()}
    )
    table = interval_table(paired, [axis], [f"{name}_change" for name in CHANGED])
    return table.drop(columns="replications").set_index(axis)


# The chosen-not-fitted assumptions the README lists, each at a low and a high value (deterrence at
# several): the recommendation is rerun under each (`tune --fixed-capacity ... --sensitivity NAME|all`).
# General deterrence's elasticities, none fitted: tax studies find compliance rises with audit rates,
# and no estimate for customs declarations is known to us, so the range is wide (README "Where
# randomness pays": the answer turns between 0.5 and 1)
ELASTICITIES = (0.5, 1.0, 2.0)


def assumptions(scenario) -> dict[str, dict[str, list[str]]]:
    """name -> {side ("low", "high", or deterrence's elasticities): overrides}, from the scenario's
    own values."""
    level = {c.value: p.mean for c, p in scenario.population.violation.items()}
    physical = scenario.inspection.detection.get("physical", 0.8)
    turnover = scenario.population.turnover
    return {
        "violation-level": {
            side: [f"population.violation.{c}.mean={min(0.99, m * k):g}" for c, m in level.items()]
            for side, k in (("low", 0.5), ("high", 1.5))
        },
        "goods-effects": {"low": ["goods.risk_strength=0.5"], "high": ["goods.risk_strength=1.5"]},
        "detection": {
            side: [f"inspection.detection.physical={max(0.05, min(1.0, physical + d)):g}"]
            for side, d in (("low", -0.2), ("high", +0.1))
        },
        "turnover": {
            "low": ["population.turnover=0"],
            "high": [f"population.turnover={min(1.0, 2 * turnover):g}"],
        },
        # general deterrence over a range, not a low and a high: where randomness pays turns on it
        "deterrence": {
            "none": ["population.perceived=null"],
            **{f"{e:g}": [f"population.perceived={{elasticity: {e:g}}}"] for e in ELASTICITIES},
        },
        "adaptation": {"low": ["population.adaptation=0"], "high": ["population.adaptation=0.5"]},
    }


def sensitivity(
    raw: dict,
    base_dir: str,
    runner: Runner,
    capacity: float,
    shares: list[float],
    precision: float,
    limits: Limits,
    replications: int,
    names: list[str],
    progress: Callable[[str], None] | None = None,
    base: Frontier | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fixed-capacity recommendation under each named assumption at each of its values: one
    row per (assumption, side) with the recommended share and what it finds and estimates; and every
    frontier whole (a row per assumption, side and share), to show how the trade-off itself moves.
    A side that leaves the scenario as it is reuses `base`, the scenario's own frontier, if given
    (its `settings` are then empty: the plot draws it once)."""
    from simulation import scenario as scenarios

    def validated(varied: dict):
        return scenarios.validate(copy.deepcopy(varied), "scenario", Path(base_dir))

    scenario = validated(raw)
    as_it_is, table = scenario.digest(), assumptions(scenario)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise InputError(f"--sensitivity: unknown {unknown}; known: {', '.join(table)} or all")
    rows, frontiers = [], []
    for name in names:
        for side, overrides in table[name].items():
            varied = copy.deepcopy(raw)
            for item in overrides:
                scenarios.apply_override(varied, item)
            same = validated(varied).digest() == as_it_is
            frontier = (
                base
                if same and base is not None
                else fixed_capacity(
                    varied, base_dir, runner, capacity, shares, precision, limits, replications
                )
            )
            settings = "" if same else "; ".join(overrides)
            frontiers.append(frontier.table.assign(assumption=name, side=side, settings=settings))
            chosen = (
                frontier.table.set_index("share").loc[frontier.recommended]
                if frontier.recommended == frontier.recommended
                else None
            )
            rows.append(
                {
                    "assumption": name,
                    "side": side,
                    "settings": settings or "(as the scenario)",
                    "recommended_share": frontier.recommended,
                    "violations_found_per_month": math.nan
                    if chosen is None
                    else chosen["violations_found_per_month"],
                    "monthly_half_width": math.nan if chosen is None else chosen["monthly_half_width"],
                }
            )
            if progress:
                share = "none" if math.isnan(frontier.recommended) else f"{frontier.recommended:.0%}"
                progress(f"{name} {side}: recommended share {share}")
    return pd.DataFrame(rows), pd.concat(frontiers, ignore_index=True)


def lines(base: Frontier, frontiers: pd.DataFrame | None = None) -> list[tuple[str, pd.DataFrame]]:
    """The frontiers to show: the scenario's own, then each assumption's side that changes it."""
    varied = [] if frontiers is None else frontiers.groupby(["assumption", "side", "settings"], sort=False)
    return [("as the scenario stands", base.table)] + [
        (f"under {a} {s}", t) for (a, s, settings), t in varied if settings
    ]


def randomness_sentence(base: Frontier, frontiers: pd.DataFrame | None = None) -> str:
    """Where randomness pays and where it costs, frontier by frontier. Against the first share tried
    (none random), it pays where some share lets fewer violations through undetected, beyond the
    paired 95% interval; it costs where every share lets more through; else no difference is shown."""
    pays, costs, unclear = [], [], []
    first = float(base.table["share"].min())
    for label, t in lines(base, frontiers):
        rest = t[t["share"] > first]
        if rest.empty:
            continue
        best = rest.loc[rest["undetected_change"].idxmin()]
        said = (
            f"{label} ({best['undetected_change']:+,.0f} [{best['undetected_change_low']:+,.0f}, "
            f"{best['undetected_change_high']:+,.0f}] a month at {best['share']:.0%})"
        )
        if best["undetected_change_high"] < 0:
            pays.append(said)
        elif (rest["undetected_change_low"] > 0).all():
            costs.append(said)
        else:
            unclear.append(label)
    parts = []
    if pays:
        parts.append(f"randomness pays (fewer violations go undetected) {', '.join(pays)}")
    if costs:
        parts.append(f"it costs (more go undetected at every share; the least shown) {', '.join(costs)}")
    if unclear:
        parts.append(f"no difference beyond chance is shown {', '.join(unclear)}")
    if not parts:
        return "Only one share was tried: nothing to compare it with."
    return f"Against {first:.0%} random, " + "; ".join(parts) + "."


def sensitivity_sentence(base: Frontier, table: pd.DataFrame) -> str:
    """The answer and how far it moves across the assumptions."""
    found = table["recommended_share"].dropna()
    none = table[table["recommended_share"].isna()]
    if base.recommended != base.recommended and found.empty:
        return "Under no assumption tried does any share meet the precision within the limits."
    shares = [base.recommended, *found] if base.recommended == base.recommended else list(found)
    text = (
        f"The recommended random share is {base.recommended:.0%} as the scenario stands"
        if base.recommended == base.recommended
        else "As the scenario stands no share meets the precision"
    )
    text += f"; across the assumptions tried it ranges from {min(shares):.0%} to {max(shares):.0%}"
    if len(none):
        text += (
            ", and under "
            + ", ".join(f"{r.assumption} {r.side}" for r in none.itertuples())
            + " no share meets it"
        )
    return text + "."
