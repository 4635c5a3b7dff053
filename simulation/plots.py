"""The plots people would rather look at than the tables: one PNG per question, from `Results`."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files, not windows: runs headless in CI and batch jobs
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

CHINA_H1_2015 = 0.55  # share of dispatches from random selection, China Customs, first half of 2015


def write_all(results, out: Path) -> list[Path]:
    monthly = results.monthly
    name = results.summary.get("scenario", "")
    written = []
    for draw, filename in ((random_dispatch_share, "random_dispatch_share.png"),
                           (hit_rates, "hit_rates.png"), (utilization, "utilization.png"),
                           (clearance, "clearance.png"), (compliance_estimate, "compliance_estimate.png")):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        draw(ax, monthly)
        ax.set_title(f"{ax.get_title()} ({name})" if name else ax.get_title())
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(out / filename, dpi=110)
        plt.close(fig)
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
