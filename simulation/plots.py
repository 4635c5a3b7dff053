"""The plots people would rather look at than the tables: one PNG per question, from `Results`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # not pyplot: files need no GUI backend, and notebooks keep theirs

from simulation.calibration import TARGETS
from simulation.metrics import CREDIT_RULES, RUN, wilson
from simulation.tuning import lines

CHINA_H1_2015 = 0.55  # share of dispatches from random selection, China Customs, first half of 2015
BAND = {t.column: t for t in TARGETS}  # the calibration bands, drawn where their metric is plotted


def band(ax, column: str, scale: float = 1.0) -> None:
    """Shade a calibration target's band and say where it comes from."""
    t = BAND[column]
    ax.axhspan(
        scale * t.low,
        scale * t.high,
        color="green",
        alpha=0.08,
        label=f"target {scale * t.low:g}-{scale * t.high:g} ({t.source})",
    )


def write_all(results, out: Path) -> list[Path]:
    monthly = results.monthly
    name = results.summary.get("scenario", "")
    written = []
    for draw, filename in (
        (random_dispatch_share, "random_dispatch_share.png"),
        (hit_rates, "hit_rates.png"),
        (utilization, "utilization.png"),
        (clearance, "clearance.png"),
        (compliance_estimate, "compliance_estimate.png"),
        (inspection_rates, "inspection_rates.png"),
    ):
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
    ax.plot(
        monthly["month"],
        monthly["random_dispatch_share"],
        marker="o",
        label="computer-selection share (drawn + scored)",
    )
    ax.plot(
        monthly["month"],
        monthly["drawn_share"],
        marker="D",
        label="drawn share (pure random, credit floor, rules' sampling)",
    )
    ax.plot(monthly["month"], monthly["pure_random_share"], marker="s", label="pure random share")
    credit = monthly["credit_selected"] / monthly["inspections"].where(monthly["inspections"] > 0)
    ax.plot(monthly["month"], credit, marker="^", label="credit share (the floor for dishonest firms)")
    ax.axhline(CHINA_H1_2015, color="grey", ls="--", label="China Customs H1 2015: 55%")
    band(ax, "drawn_share")
    ax.set(
        title="Shares of inspections by who chose them",
        xlabel="month",
        ylabel="share of all dispatches",
        ylim=(0, 1),
    )
    ax.legend()


def hit_rates(ax, monthly: pd.DataFrame) -> None:
    """Each channel's monthly hit rate with its 95% Wilson interval (n = the channel's inspections)."""
    for hits, selected, label in (
        ("hits_random", "random_selected", "random"),
        ("hits_targeted", "targeted_selected", "targeted (rules)"),
        ("hits_instructed", "instructed_selected", "instruction"),
    ):
        n = monthly[selected].to_numpy(float)
        p = np.divide(monthly[hits].to_numpy(float), n, out=np.full(len(n), np.nan), where=n > 0)
        low, high = np.array([wilson(a, b) for a, b in zip(p, n)]).T
        (line,) = ax.plot(monthly["month"], 100 * p, marker="o", label=label)
        ax.fill_between(monthly["month"], 100 * low, 100 * high, color=line.get_color(), alpha=0.15)
    ax.plot(
        monthly["month"],
        100 * monthly["noncompliance_true"],
        color="black",
        ls=":",
        label="true non-compliance",
    )
    ax.set(
        title="Hit rate by channel, with 95% intervals",
        xlabel="month",
        ylabel="violations found per inspection (%)",
        ylim=(0, None),
    )
    ax.legend()


def utilization(ax, monthly: pd.DataFrame) -> None:
    ax.plot(
        monthly["month"],
        100 * monthly["inspector_utilization"],
        marker="o",
        label="inspectors (of on-post hours)",
    )
    ax.plot(monthly["month"], 100 * monthly["facility_utilization"], marker="s", label="facilities")
    band(ax, "inspector_utilization", 100)
    ax.set(title="Utilization", xlabel="month", ylabel="busy share of available hours (%)", ylim=(0, 105))
    ax.legend()


def clearance(ax, monthly: pd.DataFrame) -> None:
    ax.plot(monthly["month"], monthly["mean_wait_h"], marker="o", label="mean wait for dispatch")
    ax.plot(
        monthly["month"], monthly["mean_clearance_released_h"], marker="s", label="mean clearance, released"
    )
    ax.plot(
        monthly["month"], monthly["p95_clearance_h"], marker="^", label="95th percentile clearance, inspected"
    )
    limit = BAND["p95_clearance_h"]
    ax.axhline(limit.high, color="red", ls="--", label=f"p95 limit {limit.high:g} h ({limit.source})")
    ax.set(
        title="Waiting and clearance times of inspected declarations",
        xlabel="month",
        ylabel="hours",
        ylim=(0, None),
    )
    ax.legend()


def inspection_rates(ax, monthly: pd.DataFrame) -> None:
    """Each credit class's inspection rate against its rule: certified classes relative to the general
    class's rate of the same month (0.2x, 0.5x), dishonest absolute (0.8), all on a log scale."""
    general = monthly["inspection_rate_general"]
    ax.plot(
        monthly["month"],
        100 * monthly["inspection_rate"],
        marker="o",
        color="black",
        label="all declarations",
    )
    band(ax, "inspection_rate", 100)
    for credit, (kind, bound, _) in CREDIT_RULES.items():
        (line,) = ax.plot(
            monthly["month"], 100 * monthly[f"inspection_rate_{credit}"], marker="s", label=credit
        )
        limit = bound * general if kind == "relative" else pd.Series(bound, index=monthly.index)
        ax.plot(
            monthly["month"],
            100 * limit,
            ls="--",
            color=line.get_color(),
            label=f"rule: {'under' if kind == 'relative' else 'at least'} {bound:g}"
            + (" x general" if kind == "relative" else ""),
        )
    ax.plot(monthly["month"], 100 * general, marker=".", label="general")
    ax.set(
        title="Inspection rate by credit class against the credit rules",
        xlabel="month",
        ylabel="inspected (% of the class's declarations)",
        yscale="log",
    )
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(0, 0.9))  # below the dishonest line


def compliance_estimate(ax, monthly: pd.DataFrame) -> None:
    est = 100 * monthly["noncompliance_estimate"]
    low, high = 100 * monthly["noncompliance_ci_low"], 100 * monthly["noncompliance_ci_high"]
    ax.fill_between(monthly["month"], low, high, alpha=0.25, label="95% interval (random sample)")
    ax.plot(monthly["month"], est, marker="o", label="estimate from the random sample")
    ax.plot(
        monthly["month"],
        100 * monthly["noncompliance_true"],
        color="black",
        ls=":",
        label="true rate (simulated)",
    )
    ax.set(
        title="Non-compliance: random-sample estimate against the truth",
        xlabel="month",
        ylabel="violating declarations (%)",
        ylim=(0, None),
    )
    ax.legend()


SWEEP_METRICS = [
    (name, RUN[name].definition, RUN[name].unit)
    for name in (  # titles and units: the registry's
        "inspector_utilization",
        "p95_clearance_h",
        "mean_wait_h",
        "violations_found",
        "noncompliance_ci_width",
        "random_dispatch_share",
    )
]


def _curves(summary: pd.DataFrame, axes) -> list[tuple[str, pd.DataFrame]]:
    """One curve per value of the second axis (e.g. capacity), or a single curve."""
    if len(axes) < 2:
        return [("", summary)]
    other = axes[1].path
    return [(f"{other} = {value}", part) for value, part in summary.groupby(other, sort=True)]


def write_sweep(results, out: Path, since: str | None = None) -> list[Path]:
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
        left.errorbar(
            part["p95_clearance_h"],
            part["violations_found"],
            marker="o",
            capsize=3,
            label=label or None,
            yerr=[
                part["violations_found"] - part["violations_found_low"],
                part["violations_found_high"] - part["violations_found"],
            ],
        )
        right.plot(
            part["inspector_utilization"], part["noncompliance_ci_width"], marker="o", label=label or None
        )
        for _, row in part.iterrows():
            left.annotate(
                f"{row[x]:g}",
                (row["p95_clearance_h"], row["violations_found"]),
                fontsize=7,
                textcoords="offset points",
                xytext=(4, 4),
            )
    left.set(
        title=f"Detections against clearance time (points labelled by {x})",
        xlabel="95th percentile clearance of inspected declarations (hours)",
        ylabel="violations found per run",
    )
    right.set(
        title="Compliance-estimate precision against utilization",
        xlabel="inspector utilization (share)",
        ylabel="95% interval width of non-compliance (share)",
    )
    for ax in (left, right):
        ax.grid(alpha=0.3)
        if len(axes) > 1:
            ax.legend()
    fig.tight_layout()
    frontier_png = out / "frontier.png"
    fig.savefig(frontier_png, dpi=100)
    return [metrics_png, frontier_png, by_month(results, out / "by_month.png", since)]


def by_month(results, out: Path, since: str | None = None) -> Path:
    """Each point's detections and targeted hits month by month, with their intervals over the
    replications: what a change during the run (drift, a policy from today) does over time; `since`
    (YYYY-MM, the sweep's --compare-from) is marked."""
    keys = [axis.path for axis in results.axes]
    fig = Figure(figsize=(13, 5))
    panels = fig.subplots(1, 2, sharex=True)
    for ax, metric, title in zip(
        panels,
        ("violations_found", "hits_targeted"),
        ("Violations found, all channels", "Violations found by the targeted channel"),
    ):
        for values, part in results.monthly_summary.groupby(keys, sort=True):
            values = values if isinstance(values, tuple) else (values,)
            label = ", ".join(f"{k.split('.')[-1]} {v}" for k, v in zip(keys, values))
            months = pd.PeriodIndex(part["month"], freq="M").to_timestamp()
            ax.plot(months, part[metric], marker=".", label=label)
            ax.fill_between(months, part[f"{metric}_low"], part[f"{metric}_high"], alpha=0.15)
        if since:
            ax.axvline(
                pd.Period(since, freq="M").to_timestamp(), color="k", ls="--", lw=1, label=f"from {since}"
            )
        ax.set(title=title, xlabel="month", ylabel="violations a month (mean, 95% interval)")
        ax.grid(alpha=0.3)
    panels[0].legend(fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    return out


def frontier(result, out: Path) -> Path:
    """Detections against the monthly estimate's precision, one point per random share of a fixed
    capacity, with 95% intervals over replications; the required precision as a line."""
    fig = Figure(figsize=(8, 5))
    frontier_on(fig.subplots(), result)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out


def sensitivity(result, frontiers: pd.DataFrame, out: Path) -> Path:
    """Violations committed and found per month against the random share, as the scenario stands and
    under each assumption's other values (95% intervals over replications), and the change against
    no random share in the violations that go undetected (paired over seeds): where the committed
    line falls as the share rises, randomness deters; where the undetected change is below 0, it
    pays; above 0, it costs."""
    fig = Figure(figsize=(15, 5))
    committed, found, undetected = fig.subplots(1, 3)
    for label, t in lines(result, frontiers):
        t = t.sort_values("share")
        for ax, figure in (
            (committed, "violations_per_month"),
            (found, "violations_found_per_month"),
            (undetected, "undetected_change"),
        ):
            y = t[figure]
            ax.errorbar(
                100 * t["share"],
                y,
                yerr=[y - t[f"{figure}_low"], t[f"{figure}_high"] - y],
                marker="o",
                capsize=3,
                label=label,
            )
    undetected.axhline(0, color="k", lw=1, ls="--", label="no random share (below: randomness pays)")
    xlabel = "random share of the computer's capacity (%)"
    committed.set(title="Violations committed (deterrence lowers them)", xlabel=xlabel, ylabel="per month")
    found.set(title="Violations found", xlabel=xlabel, ylabel="per month")
    undetected.set(
        title="Violations undetected, change against none random",
        xlabel=xlabel,
        ylabel="per month (paired over seeds)",
    )
    undetected.legend(fontsize=7)
    fig.suptitle(
        f"Randomness under assumptions not fitted; capacity {result.capacity:.1%} of declarations; "
        "95% intervals over replications"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out


def frontier_on(ax, result) -> None:
    t = result.table.sort_values("share")
    x, y = 100 * t["monthly_half_width"], t["violations_found_per_month"]
    ax.errorbar(
        x,
        y,
        xerr=[
            100 * (t["monthly_half_width"] - t["monthly_half_width_low"]),
            100 * (t["monthly_half_width_high"] - t["monthly_half_width"]),
        ],
        yerr=[y - t["violations_found_per_month_low"], t["violations_found_per_month_high"] - y],
        marker="o",
        capsize=3,
        label="one random share of the capacity (95% intervals)",
    )
    for share, xi, yi in zip(t["share"], x, y):
        ax.annotate(f"{share:.0%}", (xi, yi), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.axvline(
        100 * result.precision,
        color="red",
        ls="--",
        label=f"required precision: ±{100 * result.precision:.2g} points a month",
    )
    if result.recommended == result.recommended:
        row = t.set_index("share").loc[result.recommended]
        ax.scatter(
            [100 * row["monthly_half_width"]],
            [row["violations_found_per_month"]],
            s=160,
            facecolors="none",
            edgecolors="green",
            linewidths=2,
            label=f"recommended: {result.recommended:.0%} random",
        )
    ax.set(
        title=f"Detection against estimate precision at a fixed capacity ({result.capacity:.1%} of "
        f"declarations)",
        xlabel="monthly compliance estimate: 95% interval half-width (percentage points)",
        ylabel="violations found per month",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def policy_report(answer, out: Path) -> Path:
    """The policy page's answer on one A4 page: the settings' sentence, every limit breach in red,
    the figures with their intervals and limits, and the frontier when one was run."""
    import textwrap

    fig = Figure(figsize=(8.27, 11.69))
    fig.text(0.06, 0.96, "doublerandom: what follows from these settings", fontsize=14, weight="bold")
    lines = [(line, "black") for line in textwrap.wrap(answer.sentence, 105)]
    lines += [(line, "red") for b in answer.breaches for line in textwrap.wrap("LIMIT: " + b, 105)]
    if answer.frontier is not None:
        lines += [(line, "darkgreen") for line in textwrap.wrap(answer.frontier.sentence(), 105)]
    lines += [(note, "grey") for note in answer.notes]
    for k, (line, colour) in enumerate(lines):
        fig.text(0.06, 0.93 - 0.017 * k, line, fontsize=8, color=colour)
    shown = answer.readable()
    table_ax = fig.add_axes((0.06, 0.47, 0.88, 0.26))
    table_ax.axis("off")
    drawn = table_ax.table(
        shown.values.tolist(),
        colLabels=list(shown.columns),
        colWidths=[0.37, 0.14, 0.23, 0.11, 0.15],
        cellLoc="left",
        bbox=(0, 0, 1, 1),
    )
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(7)
    for row, verdict in enumerate(shown["verdict"], start=1):
        if verdict in ("breaks the limit", "may break the limit"):
            drawn[row, 4].get_text().set_color("red")
    if answer.frontier is not None:
        frontier_on(fig.add_axes((0.1, 0.05, 0.84, 0.36)), answer.frontier)
    fig.savefig(out, dpi=100)
    return out
