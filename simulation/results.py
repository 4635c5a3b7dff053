"""What one run produces, as tidy tables built once at the end, and how it is written to a folder.

events: one row per inspected declaration (selected by the computer or instructed); the declarations
that were released without inspection are counted in `monthly`, not listed.
monthly: see simulation.metrics. hourly: inspections waiting for dispatch at each hour's start.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine import report
from engine.dispatch import FACILITY_FOR
from engine.selection import LANES
from simulation import adaptive, calibration, metrics
from simulation.population import CREDIT_CLASSES
from simulation.recorder import Recorder
from simulation.scenario import Scenario

EVENT_COLUMNS = {
    "declaration": "row number of the declaration in the run's arrival order",
    "arrival_h": "arrival, hours since the horizon start",
    "site": "the site (customs office) it was lodged at and inspected by",
    "month": "calendar month of arrival, YYYY-MM",
    "enterprise": "enterprise number",
    "credit_class": "the enterprise's credit class when decided",
    "channel": "random | targeted | both | credit (the class's floor alone) | instructed (a risk officer's "
    "order)",
    "rules": "rules that matched, ';'-separated",
    "inspection_type": "document | scan | physical",
    "violating": "ground truth: the declaration violates",
    "random_threshold": "probability the random channel picks it (ratio x credit multiplier)",
    "scored": "targeted without a draw: the highest risk scores under an expected rate, or a rule that "
    "inspects every hit (sampling rate 1); not by a rule's sampling draw",
    "detection": "probability this inspection type finds a violation (the simulated truth)",
    "assumed_detection": "the probability the office believes (inspection.assumed_detection, else the "
    "truth): what the compliance estimate divides by",
    "inspector": "who inspected it ('' if still waiting at the end)",
    "facility": "facility type used",
    "dispatched_h": "dispatch time, hours",
    "done_h": "inspection finished, hours",
    "detected": "a violation was found",
    "outcome": "problem (transferred) | normal (released) | '' (unfinished)",
    "department": "where a problem was transferred",
    "released_by": "the officer who released it (never the inspector)",
    "cleared_h": "released or transferred, hours",
    "wait_h": "dispatched_h - arrival_h; for one never dispatched, the horizon's end - arrival_h (censored)",
    "clearance_h": "cleared_h - arrival_h; for one unfinished, the horizon's end - arrival_h (censored)",
    "censored": "unfinished at the horizon's end: its wait or clearance is a lower bound, counted as such",
}


@dataclass
class Results:
    events: pd.DataFrame
    monthly: pd.DataFrame
    hourly: pd.DataFrame
    summary: dict[str, Any]
    scenario: Scenario = field(repr=False)
    monthly_by_site: pd.DataFrame = field(default_factory=pd.DataFrame)  # monthly, one block per site

    def write(self, out_dir: str | Path, plots: bool = True) -> list[Path]:
        """events.parquet, monthly.csv, monthly_by_site.csv, hourly.csv, summary.json, monthly_long.csv
        (+ PNG plots) in out_dir."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [
            out / "events.parquet",
            out / "monthly.csv",
            out / "hourly.csv",
            out / "summary.json",
            out / "monthly_by_site.csv",
            out / "monthly_long.csv",
        ]
        self.events.to_parquet(written[0], index=False)
        self.monthly.to_csv(written[1], index=False, float_format="%.6g")
        self.monthly_by_site.to_csv(written[4], index=False, float_format="%.6g")
        # the figures a live office reports too, month x channel x figure, as `report --table long`
        long = pd.DataFrame(report.long_rows(self.monthly.to_dict("records")), columns=report.LONG_COLUMNS)
        long.to_csv(written[5], index=False, float_format="%.6g")
        self.hourly.to_csv(written[2], index=False)
        written[3].write_text(json.dumps(self.summary, indent=2, sort_keys=True, default=str) + "\n")
        if plots:
            from simulation import plots as plotting  # matplotlib only when plots are wanted

            written += plotting.write_all(self, out)
        return written


def build_results(record: Recorder, scenario: Scenario, meta: dict[str, Any]) -> Results:
    events = _events(record, scenario)
    months = month_labels(scenario, record.n_months)
    warm = scenario.horizon.warmup_months  # simulated so the standing settles, then left out of everything
    warm_hours = int(record.month_edges[warm])

    def measured_tables(site: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        totals, capacity = _tables(record, scenario, months, site)
        return totals.iloc[warm:], capacity.iloc[warm:]

    measured = events[events["arrival_h"] >= warm_hours].reset_index(drop=True)
    totals, capacity = measured_tables(None)
    monthly = metrics.monthly(measured, totals, capacity)
    by_site = [
        metrics.monthly(measured[measured["site"] == site], *measured_tables(k)).assign(site=site)
        for k, site in enumerate(record.sites)
    ]
    monthly_by_site = pd.concat(by_site, ignore_index=True)[["site", *metrics.COLUMNS]]
    hourly = pd.DataFrame(
        {"hour": np.arange(len(record.hourly_waiting)), "waiting": record.hourly_waiting}
    ).iloc[warm_hours:]
    summary = {
        **meta,
        **_totals(measured, monthly, capacity, totals),
        "scenario_settings": scenario.canonical(),
    }
    believed = scenario.inspection.assumed_detection
    summary["estimate_detection"] = {  # what the compliance estimate assumes, said beside it
        "assumed": {t.value: p for t, p in (believed or scenario.inspection.detection).items()},
        "is_the_truth": believed is None or believed == scenario.inspection.detection,
    }
    if "trace" in meta:
        _trace_caveats(summary, meta["trace"])
    return Results(measured, monthly, hourly, summary, scenario, monthly_by_site)


def _trace_caveats(summary: dict[str, Any], trace: dict[str, int]) -> None:
    """A trace-driven run replays a real stream through a simulated office: some figures it cannot
    support are withheld (None, with the reason), the rest carry what the trace cannot represent."""
    notes = [
        "a trace-driven run: the log's declarations arrive at their logged times through this scenario's "
        "inspectors and facilities; capacity figures (utilization, waits, clearance) say how these "
        "inspectors would cope with the log's volume, not how the office that kept the log did",
        "the log carries no credit classes: the population model assigns them, so the credit-rule checks "
        "and the calibration targets are not evidence about the log's firms (withheld)",
    ]
    summary["credit_rules"] = [{**r, "met": None} for r in summary.get("credit_rules", [])]
    summary["calibration"] = [{**r, "met": None} for r in summary.get("calibration", [])]
    if trace["with_outcome"] == trace["declarations"]:  # every row was inspected, as in the Korean log
        notes.append(
            "every declaration of the log carries an outcome, so someone chose each one for inspection: "
            "the log's violation rate is a hit rate among them, not the population's non-compliance "
            "(noncompliance_true withheld)"
        )
        summary["noncompliance_true"] = None
    summary["trace_warnings"] = notes


def _tables(
    record: Recorder, scenario: Scenario, months: list[str], site: int | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per month, the declaration totals and the capacity figures of one site, or of all (None).
    Busy hours count every inspection, warm-up arrivals included, in the month the work was done."""
    pick = (lambda a: a.sum(axis=1)) if site is None else (lambda a: a[:, site])
    sites = scenario.sites if site is None else [scenario.sites[site]]
    totals = pd.DataFrame(
        {
            "declarations": pick(record.declarations),
            "violations_true": pick(record.violations),
            "zero_chance": pick(record.zero_chance),
            **{f"lane_{name}": pick(record.lanes[:, :, k]) for k, name in enumerate(LANES)},
            **{
                metrics.CREDIT_COLUMNS[c.value]: pick(record.by_class[:, :, k])
                for k, c in enumerate(CREDIT_CLASSES)
            },
        },
        index=months,
    )
    facility_count = sum(s.facilities.get(f, 0) for s in sites for f in FACILITY_FOR.values())
    hours_in_month = np.diff(record.month_edges)
    capacity = pd.DataFrame(
        {
            "busy_hours": pick(record.busy_hours),
            "on_post_hours": pick(record.on_post_hours),
            "facility_hours": facility_count * hours_in_month,
            "backlog_end": pick(record.backlog_end),
            "random_ratio": record.ratio_used,
            "dishonest_enterprises": record.dishonest_end,
            "high_risk_enterprises": record.high_risk_end,
            "enterprises_entered": record.entered,
            "instruction_rate": record.instruction_used,
            "target_share": [
                adaptive.target_share(scenario.adaptive, m, len(months)) if scenario.adaptive else np.nan
                for m in range(len(months))
            ],
        },
        index=months,
    )
    return totals, capacity


def month_labels(scenario: Scenario, n: int) -> list[str]:
    start = pd.Period(scenario.horizon.start, freq="M")
    return [str(start + k) for k in range(n)]


def _events(record: Recorder, scenario: Scenario) -> pd.DataFrame:
    derived = ("month", "detection", "assumed_detection", "wait_h", "clearance_h", "censored")
    frame = record.all_cases()[[f for f in EVENT_COLUMNS if f not in derived]]
    labels = np.array(month_labels(scenario, record.n_months))
    frame["month"] = labels[record.month_of_hour[frame["arrival_h"].to_numpy(int)]] if len(frame) else []
    detection = {t.value: p for t, p in scenario.inspection.detection.items()}
    frame["detection"] = frame["inspection_type"].map(detection).astype(float)
    believed = scenario.inspection.assumed_detection
    frame["assumed_detection"] = (
        frame["inspection_type"].map({t.value: p for t, p in believed.items()}).astype(float)
        if believed
        else frame["detection"]
    )
    # An inspection still waiting or under way at the end has waited at least until then: leaving it
    # out made an overloaded office look fast (its slowest cases are the ones that never clear).
    end_h = float(len(record.month_of_hour))
    frame["wait_h"] = frame["dispatched_h"].fillna(end_h) - frame["arrival_h"]
    frame["clearance_h"] = frame["cleared_h"].fillna(end_h) - frame["arrival_h"]
    frame["censored"] = frame["cleared_h"].isna()
    return frame[list(EVENT_COLUMNS)]


def _totals(
    events: pd.DataFrame, monthly: pd.DataFrame, capacity: pd.DataFrame, totals: pd.DataFrame
) -> dict[str, Any]:
    whole = totals.sum()
    estimate = metrics.random_sample_estimate(events, whole)
    declarations, inspections = int(monthly["declarations"].sum()), len(events)
    computer_share, random_share, credit_share = metrics.dispatch_shares(events["channel"])
    scored = int(monthly["scored_selected"].sum())  # counted once, per month (metrics._counts)
    busy = float(capacity["busy_hours"].sum())
    clearance = events["clearance_h"]
    return {
        "declarations": declarations,
        "inspections": inspections,
        "inspection_rate": inspections / declarations if declarations else None,
        "random_dispatch_share": computer_share if inspections else None,
        "pure_random_share": random_share if inspections else None,
        "credit_share": credit_share if inspections else None,
        "drawn_share": computer_share - scored / inspections if inspections else None,
        "scored_share": scored / inspections if inspections else None,
        "violations_true": int(monthly["violations_true"].sum()),
        "violations_found": int(events["detected"].sum()),
        "noncompliance_true": float(monthly["violations_true"].sum() / declarations)
        if declarations
        else None,
        "noncompliance_estimate": estimate.value if estimate.defined else None,
        "noncompliance_ci": [estimate.low, estimate.high] if estimate.defined else [None, None],
        "noncompliance_defined": estimate.defined,
        **(
            {}
            if estimate.defined
            else {"noncompliance_warning": f"the compliance estimate is undefined: {estimate.why}"}
        ),
        "inspector_utilization": busy / float(capacity["on_post_hours"].sum()),
        "mean_wait_h": float(events["wait_h"].mean()) if inspections else None,
        "p95_clearance_h": metrics.censored_percentile(clearance, events["censored"])
        if len(clearance)
        else None,
        "unfinished": int(events["censored"].sum()),
        "backlog_end": int(capacity["backlog_end"].iloc[-1]),
        "credit_rules": metrics.credit_rules(events, metrics.population(whole)),
        "calibration": calibration.table(monthly),
        "steady_state": [
            {**asdict(d), "stable": d.stable, "verdict": d.verdict} for d in calibration.steady_state(monthly)
        ],
    }
