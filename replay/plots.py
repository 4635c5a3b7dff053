"""The replay's plots: precision and recall against inspection rate, one point per policy and channel;
a learned score's report (its calibration curve, and month by month its precision and drift)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure


def precision_recall(table: pd.DataFrame, base_rate: float, out: Path) -> Path:
    fig = Figure(figsize=(11, 4.5))
    left, right = fig.subplots(1, 2)
    rows = table[table["channel"].isin(["overall", "budget", "random at budget"]) & (table["selected"] > 0)]
    for (policy, channel), row in rows.groupby(["policy", "channel"], sort=False):
        r = row.iloc[0]
        label = f"{policy}: {channel}"
        left.errorbar(
            [100 * r["selection_rate"]],
            [100 * r["precision"]],
            yerr=[
                [100 * max(0.0, r["precision"] - r["precision_low"])],
                [100 * max(0.0, r["precision_high"] - r["precision"])],
            ],
            marker="o",
            capsize=3,
            label=label,
        )
        right.errorbar(
            [100 * r["selection_rate"]],
            [100 * r["recall"]],
            yerr=[
                [100 * max(0.0, r["recall"] - r["recall_low"])],
                [100 * max(0.0, r["recall_high"] - r["recall"])],
            ],
            marker="o",
            capsize=3,
            label=label,
        )
    left.axhline(100 * base_rate, color="grey", ls="--", label=f"the log's rate {base_rate:.1%} (random)")
    left.set(
        title="precision (hit rate) against inspection rate",
        xlabel="declarations selected (%)",
        ylabel="violations among selected (%)",
    )
    right.set(
        title="recall against inspection rate",
        xlabel="declarations selected (%)",
        ylabel="share of the log's violations found (%)",
    )
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out


def model_report(curve: pd.DataFrame, months: pd.DataFrame, floor: float, budget: float, out: Path) -> Path:
    """Left: the calibration curve (mean score against the observed rate, 95% intervals; a
    calibrated score lies on the diagonal). Right: month by month the precision at the budget with
    its interval against the validation's lower bound, and the score's PSI against its 0.25 line."""
    fig = Figure(figsize=(11, 4.5))
    left, right = fig.subplots(1, 2)
    x, y = 100 * curve["mean_score"], 100 * curve["violation_rate"]
    left.errorbar(
        x,
        y,
        yerr=[y - 100 * curve["rate_low"], 100 * curve["rate_high"] - y],
        marker="o",
        capsize=3,
        label="bins of equal count",
    )
    top = max(float(x.max()), float(y.max()), 1.0)
    left.plot([0, top], [0, top], color="grey", ls="--", label="calibrated")
    left.set(
        title="Calibration: predicted against observed",
        xlabel="mean score in the bin (%)",
        ylabel="violations observed in the bin (%)",
    )
    left.legend()
    p = 100 * months["precision"]
    right.errorbar(
        months["month"],
        p,
        yerr=[p - 100 * months["precision_low"], 100 * months["precision_high"] - p],
        marker="o",
        capsize=3,
        label=f"precision at {budget:.0%}",
    )
    right.axhline(100 * floor, color="red", ls="--", label="validation's 95% lower bound")
    right.set(title="Month by month", xlabel="month", ylabel=f"precision at {budget:.0%} (%)")
    drift = right.twinx()
    drift.plot(months["month"], months["score_psi"], color="grey", marker="s", label="score PSI")
    drift.axhline(0.25, color="grey", ls=":", label="PSI 0.25: inputs shifted")
    drift.set(ylabel="population stability index")
    lines, labels = right.get_legend_handles_labels()
    more, more_labels = drift.get_legend_handles_labels()
    right.legend(lines + more, labels + more_labels, fontsize=8)
    right.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out
