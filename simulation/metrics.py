"""The monthly table analysts plot: selection by channel, hit rates, the compliance estimate, load.

Column definitions are a public contract (README, "Monthly metrics"). Rows are calendar months of
the horizon; a declaration belongs to the month it arrived in.

The non-compliance estimate uses the random channel only: each declaration was drawn with a known
probability (its random threshold), so the weighted (Hajek) share of detected violations in the
random sample estimates the share in the whole population; it is divided by the sample's weighted
detection probability, since an inspection can miss a violation. The 95% interval is Wilson's, with
Kish's effective sample size for the unequal weights.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

COLUMNS = [
    "month", "declarations", "selected", "random_selected", "targeted_selected", "instructed_selected",
    "inspections", "random_dispatch_share", "pure_random_share", "inspection_rate", "hits_random",
    "hits_targeted", "hits_instructed", "hit_rate_random", "hit_rate_targeted", "violations_true",
    "violations_found", "violations_missed", "noncompliance_true", "noncompliance_estimate",
    "noncompliance_ci_low", "noncompliance_ci_high", "inspector_utilization", "facility_utilization",
    "mean_wait_h", "p95_clearance_h", "mean_clearance_released_h", "backlog_end",
    "random_ratio", "hit_rate_instructed", "instruction_rate", "target_share",
]
Z95 = 1.959963984540054


def wilson(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion p observed on (effective) sample size n."""
    if n <= 0:
        return (math.nan, math.nan)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def random_sample_estimate(sample: pd.DataFrame) -> tuple[float, float, float]:
    """(estimate, low, high) of the population violation share from finished random-channel inspections.
    Needs columns: random_threshold (inclusion probability), detected, detection (probability)."""
    if sample.empty:
        return (math.nan, math.nan, math.nan)
    w = 1.0 / sample["random_threshold"].to_numpy()
    found = np.sum(w * sample["detected"].to_numpy()) / w.sum()
    detection = np.sum(w * sample["detection"].to_numpy()) / w.sum()
    n_eff = w.sum() ** 2 / np.sum(w * w)
    low, high = wilson(found, n_eff)
    return found / detection, low / detection, min(1.0, high / detection)


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
    channel = ev["channel"]
    random_mask = channel.isin(["random", "both"])
    targeted_mask, instructed_mask = channel == "targeted", channel == "instruction"
    finished = ev["done_h"].notna()
    found = ev["detected"]
    n_random, n_targeted, n_instructed = int(random_mask.sum()), int(targeted_mask.sum()), int(instructed_mask.sum())
    inspections = len(ev)
    declarations, violations = int(total["declarations"]), int(total["violations_true"])
    estimate, low, high = random_sample_estimate(ev[random_mask & finished])
    hits = {name: int((mask & found).sum()) for name, mask in
            (("random", random_mask), ("targeted", targeted_mask), ("instructed", instructed_mask))}
    clearance = (ev["cleared_h"] - ev["arrival_h"]).dropna()
    released = ev[ev["outcome"] == "normal"]
    return {
        "month": month, "declarations": declarations, "selected": n_random + n_targeted,
        "random_selected": n_random, "targeted_selected": n_targeted, "instructed_selected": n_instructed,
        "inspections": inspections,
        "random_dispatch_share": _ratio(n_random + n_targeted, inspections),
        "pure_random_share": _ratio(n_random, inspections),
        "inspection_rate": _ratio(inspections, declarations),
        "hits_random": hits["random"], "hits_targeted": hits["targeted"], "hits_instructed": hits["instructed"],
        "hit_rate_random": _ratio(hits["random"], int((random_mask & finished).sum())),
        "hit_rate_targeted": _ratio(hits["targeted"], int((targeted_mask & finished).sum())),
        "violations_true": violations, "violations_found": int(found.sum()),
        "violations_missed": violations - int(found.sum()),
        "noncompliance_true": _ratio(violations, declarations),
        "noncompliance_estimate": estimate, "noncompliance_ci_low": low, "noncompliance_ci_high": high,
        "inspector_utilization": _ratio(cap["busy_hours"], cap["on_post_hours"]),
        "facility_utilization": _ratio(cap["busy_hours"], cap["facility_hours"]),
        "mean_wait_h": float((ev["dispatched_h"] - ev["arrival_h"]).mean()) if inspections else math.nan,
        "p95_clearance_h": float(np.percentile(clearance, 95)) if len(clearance) else math.nan,
        "mean_clearance_released_h": float((released["cleared_h"] - released["arrival_h"]).mean())
        if len(released) else math.nan,
        "backlog_end": int(cap["backlog_end"]),
        "random_ratio": float(cap["random_ratio"]),
        "hit_rate_instructed": _ratio(hits["instructed"], int((instructed_mask & finished).sum())),
        "instruction_rate": float(cap["instruction_rate"]),
        "target_share": float(cap.get("target_share", math.nan)),
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan
