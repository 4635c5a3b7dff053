"""What-ifs from today's office: the answers of the policy page (`make policy`, notebooks/policy.ipynb).

A policy officer moves three settings (inspectors on post, the computer's expected rate, the random
share of it) and asks what follows. Every run starts from the office as it stands today: the
scenario's own warm-up, simulated once per seed and kept (sweep.Runner's `warm`), so an answer takes
seconds and means "if we change it today, the next months look like this". Figures come with 95%
intervals over replications (bounded: sweep.mean_interval), every limit is judged on them, and every
sentence is made from the numbers here, never typed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from simulation import sweep as sweeps
from simulation import tuning

# the figures a policy officer weighs, in the order shown: name in the sweep -> (label, unit)
FIGURES = {
    "violations_found_per_month": ("violations found a month", "count"),
    "monthly_half_width": ("monthly compliance estimate, 95% half-width", "points"),
    "drawn_share": ("drawn share of inspections (China's 55% from random selection)", "share"),
    "random_dispatch_share": ("computer-selection share of inspections", "share"),
    "pure_random_share": ("pure random share of inspections", "share"),
    "credit_share": ("credit share of inspections", "share"),
    "inspection_rate": ("inspection rate", "share"),
    "worst_month_utilization": ("inspector utilization, busiest month", "share"),
    "worst_month_p95_clearance_h": ("p95 clearance of inspected, worst month", "hours"),
    "mean_wait_h": ("mean wait for dispatch", "hours"),
}


@dataclass(frozen=True)
class Settings:
    inspectors: int
    expected_rate: float  # the computer's selections, share of declarations
    random_share: float  # of the expected rate (random_ratio = random_share x expected_rate)

    def params(self) -> dict[str, float]:
        return {
            "inspectors.count": int(self.inspectors),
            "policy.expected_rate": float(self.expected_rate),
            "policy.random_ratio": round(self.random_share * self.expected_rate, 10),
        }

    def words(self) -> str:
        return (
            f"{self.inspectors} inspectors, the computer selecting {self.expected_rate:.1%} of declarations, "
            f"{self.random_share:.0%} of it at random"
        )


@dataclass
class Answer:
    settings: Settings
    table: pd.DataFrame  # one row per figure: label, value, low, high, unit, limit, verdict
    sentence: str
    breaches: list[str]  # one sentence per limit broken or possibly broken
    frontier: tuning.Frontier | None = None
    notes: list[str] = field(default_factory=list)

    def readable(self) -> pd.DataFrame:
        """The figures as a reader sees them: each in its unit, with its interval and limit."""
        rows = self.table.itertuples()
        return pd.DataFrame(
            [
                {
                    "figure": r.label,
                    "value": shown(r.value, r.unit),
                    "95% interval": f"[{shown(r.low, r.unit)}, {shown(r.high, r.unit)}]",
                    "limit": "" if r.limit != r.limit else shown(r.limit, r.unit),
                    "verdict": r.verdict,
                }
                for r in rows
            ]  # fmt: skip
        )


def limits_of(limits: tuning.Limits, precision: float) -> dict[str, float]:
    """figure -> the most it may be: the service limits and the required precision."""
    out = dict(limits.items())
    out["monthly_half_width"] = precision
    return out


def verdict(value: float, high: float, limit: float | None) -> str:
    if limit is None or math.isnan(value):
        return ""
    if value > limit:
        return "breaks the limit"
    return "may break the limit" if high > limit else "within the limit"


def shown(value: float, unit: str) -> str:
    if math.isnan(value):
        return "undefined"
    return {
        "share": f"{value:.1%}",
        "points": f"±{100 * value:.2f} points",
        "hours": f"{value:.1f} h",
        "count": f"{value:,.0f}",
    }[unit]


def consequences(
    raw: dict,
    base_dir: str | Path,
    settings: Settings,
    runner: sweeps.Runner,
    limits: tuning.Limits,
    precision: float,
    replications: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Answer:
    """The settings simulated `replications` times from today's office (the runner's warm folder)."""
    axes = [sweeps.Axis(path, (value,)) for path, value in settings.params().items()]
    results = sweeps.sweep(raw, base_dir, axes, replications, runner, progress)
    if results.failures:
        raise RuntimeError(f"{len(results.failures)} runs failed: {results.failures[0].error}")
    row = results.summary.iloc[0]
    bounds = limits_of(limits, precision)
    rows = []
    for name, (label, unit) in FIGURES.items():
        value, low, high = (float(row[f"{name}{s}"]) for s in ("", "_low", "_high"))
        limit = bounds.get(name)
        rows.append(
            {"figure": name, "label": label, "value": value, "low": low, "high": high, "unit": unit,
             "limit": limit if limit is not None else math.nan, "verdict": verdict(value, high, limit)}
        )  # fmt: skip
    table = pd.DataFrame(rows)
    return Answer(settings, table, sentence(settings, table, replications), breaches(table))


def _at(table: pd.DataFrame, name: str) -> pd.Series:
    return table.set_index("figure").loc[name]


def sentence(settings: Settings, table: pd.DataFrame, replications: int) -> str:
    found, half = _at(table, "violations_found_per_month"), _at(table, "monthly_half_width")
    names = {
        "drawn_share": "drawn",
        "random_dispatch_share": "computer-selection",
        "pure_random_share": "pure random",
        "credit_share": "credit",
    }
    shares = ", ".join(f"{word} {shown(_at(table, n)['value'], 'share')}" for n, word in names.items())
    estimate = (
        "no compliance estimate (no random sample)"
        if math.isnan(half["value"])
        else f"the monthly compliance estimate to {shown(half['value'], 'points')} "
        f"(up to {shown(half['high'], 'points')})"
    )
    return (
        f"With {settings.words()}, from today the office finds {found['value']:,.0f} violations a month "
        f"[{found['low']:,.0f}, {found['high']:,.0f}] and gets {estimate}; shares of inspections: "
        f"{shares} (95% intervals over {replications} replications)."
    )


def breaches(table: pd.DataFrame) -> list[str]:
    """Every limit broken, or reached by its interval, in words."""
    out = []
    for r in table.itertuples():
        if r.verdict in ("breaks the limit", "may break the limit"):
            out.append(
                f"{r.label}: {shown(r.value, r.unit)} [{shown(r.low, r.unit)}, {shown(r.high, r.unit)}] "
                f"against the limit {shown(r.limit, r.unit)}: {r.verdict}"
            )
    return out


def frontier(
    raw: dict,
    base_dir: str | Path,
    settings: Settings,
    runner: sweeps.Runner,
    limits: tuning.Limits,
    precision: float,
    shares: list[float],
    replications: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> tuning.Frontier:
    """At these inspectors and expected rate, every random share tried, from today's office."""
    return tuning.fixed_capacity(
        raw, str(base_dir), runner, settings.expected_rate, shares, precision, limits, replications,
        progress, fixed={"inspectors.count": int(settings.inspectors)},
    )  # fmt: skip
