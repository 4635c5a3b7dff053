"""The plots people would rather look at than the tables: one PNG per question, from `Results`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure  # not pyplot: files need no GUI backend, and notebooks keep theirs

CHINA_H1_2015 = 0.55  # share of dispatches from random selection, China Customs, first half of 2015


def write_all(results, out: Path) -> list[Path]:
    monthly = results.monthly
    name = results.summary.get("scenario", "")
    written = []
    for draw, filename in ((random_dispatch_share, "random_dispatch_share.png"),
                           (hit_rates, "hit_rates.png"), (utilization, "utilization.png"),
                           (clearance, "clearance.png"), (compliance_estimate, "compliance_estimate.png")):
        fig = Figure(figsize=(8, 4.5))
        ax = fig.subplots()
        draw(ax, monthly)
        ax.set_title(f"{ax.get_title()} ({name})" if name else ax.get_title())
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(out / filename, dpi=110)
        written.append(out / filename)
    return written


def random_dispatch_share(ax, monthly: pd.DataFrame) -> None:
    ax.plot(monthly["month"], monthly["random_dispatch_share"], marker="o",
            label="computer random selection (rules + pure random)")
    ax.plot(monthly["month"], monthly["pure_random_share"], marker="s", label="pure random channel")
    ax.axhline(CHINA_H1_2015, color="grey", ls="--", label="China Customs H1 2015: 55%")
    ax.set(title="Share of dispatched inspections by selection channel", xlabel="month",
           ylabel="share of all dispatches", ylim=(0, 1))
    ax.legend()


def hit_rates(ax, monthly: pd.DataFrame) -> None:
    for column, label in (("hit_rate_random", "random"), ("hit_rate_targeted", "targeted (rules)"),
                          ("hit_rate_instructed", "instruction")):
        ax.plot(monthly["month"], 100 * monthly[column], marker="o", label=label)
    ax.plot(monthly["month"], 100 * monthly["noncompliance_true"], color="black", ls=":", label="true non-compliance")
    ax.set(title="Hit rate by channel", xlabel="month", ylabel="violations found per inspection (%)")
    ax.legend()


def utilization(ax, monthly: pd.DataFrame) -> None:
    ax.plot(monthly["month"], 100 * monthly["inspector_utilization"], marker="o", label="inspectors (of on-post hours)")
    ax.plot(monthly["month"], 100 * monthly["facility_utilization"], marker="s", label="facilities")
    ax.set(title="Utilization", xlabel="month", ylabel="busy share of available hours (%)", ylim=(0, 105))
    ax.legend()


def clearance(ax, monthly: pd.DataFrame) -> None:
    ax.plot(monthly["month"], monthly["mean_wait_h"], marker="o", label="mean wait for dispatch")
    ax.plot(monthly["month"], monthly["mean_clearance_released_h"], marker="s", label="mean clearance, released")
    ax.plot(monthly["month"], monthly["p95_clearance_h"], marker="^", label="95th percentile clearance, inspected")
    ax.set(title="Waiting and clearance times of inspected declarations", xlabel="month", ylabel="hours")
    ax.legend()


def compliance_estimate(ax, monthly: pd.DataFrame) -> None:
    est = 100 * monthly["noncompliance_estimate"]
    low, high = 100 * monthly["noncompliance_ci_low"], 100 * monthly["noncompliance_ci_high"]
    ax.fill_between(monthly["month"], low, high, alpha=0.25, label="95% interval (random sample)")
    ax.plot(monthly["month"], est, marker="o", label="estimate from the random sample")
    ax.plot(monthly["month"], 100 * monthly["noncompliance_true"], color="black", ls=":", label="true rate (simulated)")
    ax.set(title="Non-compliance: random-sample estimate against the truth", xlabel="month",
           ylabel="violating declarations (%)", ylim=(0, None))
    ax.legend()


SWEEP_METRICS = [
    ("inspector_utilization", "inspector utilization", "share of on-post hours"),
    ("p95_clearance_h", "95th percentile clearance", "hours"),
    ("mean_wait_h", "mean wait for dispatch", "hours"),
    ("violations_found", "violations found", "declarations per run"),
    ("noncompliance_ci_width", "width of the compliance estimate's 95% interval", "share"),
    ("random_dispatch_share", "random-selection share of dispatches", "share"),
]


def _curves(summary: pd.DataFrame, axes) -> list[tuple[str, pd.DataFrame]]:
    """One curve per value of the second axis (e.g. capacity), or a single curve."""
    if len(axes) < 2:
        return [("", summary)]
    other = axes[1].path
    return [(f"{other} = {value}", part) for value, part in summary.groupby(other, sort=True)]


def write_sweep(results, out: Path) -> list[Path]:
    summary, axes = results.summary, results.axes
    x = axes[0].path
    fig = Figure(figsize=(15, 8.5))
    grid = fig.subplots(2, 3)
    for ax, (metric, title, unit) in zip(grid.ravel(), SWEEP_METRICS):
        for label, part in _curves(summary, axes):
            part = part.sort_values(x)
            ax.plot(part[x], part[metric], marker="o", label=label or None)
            ax.fill_between(part[x], part[f"{metric}_low"], part[f"{metric}_high"], alpha=0.2)
        ax.set(title=title, xlabel=x, ylabel=unit)
        ax.grid(alpha=0.3)
    if len(axes) > 1:
        grid[0, 0].legend()
    fig.suptitle(f"Sweep over {x}: mean and 95% interval over replications")
    fig.tight_layout()
    metrics_png = out / "metrics_vs_axis.png"
    fig.savefig(metrics_png, dpi=100)

    fig = Figure(figsize=(13, 5))
    left, right = fig.subplots(1, 2)
    for label, part in _curves(summary, axes):
        part = part.sort_values(x)
        left.errorbar(part["p95_clearance_h"], part["violations_found"], marker="o", capsize=3, label=label or None,
                      yerr=[part["violations_found"] - part["violations_found_low"],
                            part["violations_found_high"] - part["violations_found"]])
        right.plot(part["inspector_utilization"], part["noncompliance_ci_width"], marker="o", label=label or None)
        for _, row in part.iterrows():
            left.annotate(f"{row[x]:g}", (row["p95_clearance_h"], row["violations_found"]), fontsize=7,
                          textcoords="offset points", xytext=(4, 4))
    left.set(title=f"Detections against clearance time (points labelled by {x})",
             xlabel="95th percentile clearance of inspected declarations (hours)", ylabel="violations found per run")
    right.set(title="Compliance-estimate precision against utilization",
              xlabel="inspector utilization (share)", ylabel="95% interval width of non-compliance (share)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        if len(axes) > 1:
            ax.legend()
    fig.tight_layout()
    frontier_png = out / "frontier.png"
    fig.savefig(frontier_png, dpi=100)
    return [metrics_png, frontier_png]
