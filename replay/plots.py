"""The replay's plot: precision and recall against inspection rate, one point per policy and channel."""

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
