"""What a run records, in one place: the processes write here, `simulation.results` reads from here,
and nothing reaches back into the model (in the manner of Ciw's DataRecord and Mesa's DataCollector).

`Case` is one inspected declaration, a row of the event log. `Recorder` holds the cases and the
counts per month (and per site where a site has them), each counted once where it happens.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from engine.selection import CREDIT_CLASSES, LANES


@dataclass(slots=True)
class Case:
    """One inspected declaration: a row of the event log."""

    declaration: int
    arrival_h: float
    site: str
    enterprise: int
    credit_class: str
    channel: str  # random | targeted | both | credit | instruction
    rules: str
    inspection_type: str
    violating: bool
    random_threshold: float
    scored: bool = False  # targeted without a draw: ranked under an expected rate, or a rule at rate 1
    inspector: str = ""
    facility: str = ""
    dispatched_h: float = math.nan
    done_h: float = math.nan
    detected: bool = False
    outcome: str = ""
    department: str = ""
    released_by: str = ""
    cleared_h: float = math.nan


CASE_FIELDS = [f.name for f in fields(Case)]
_ROW = operator.attrgetter(*CASE_FIELDS)


def case_frame(cases: list[Case]) -> pd.DataFrame:
    """Cases as rows, one column per field."""
    if not cases:
        return pd.DataFrame(columns=CASE_FIELDS)
    return pd.DataFrame.from_records([_ROW(c) for c in cases], columns=CASE_FIELDS)


class Recorder:
    def __init__(self, month_of_hour: np.ndarray, sites: list[str], ratio: float, instruction_rate: float):
        self.month_of_hour, self.sites = month_of_hour, sites
        n_months, n_sites = int(month_of_hour[-1]) + 1, len(sites)
        self.n_months = n_months
        self.site_index = {name: k for k, name in enumerate(sites)}
        self.month_edges = np.concatenate([[0], np.cumsum(np.bincount(month_of_hour, minlength=n_months))])
        self.cases: list[Case] = []  # inspections not yet cleared (and all of them, until `settle`)
        self.settled: list[pd.DataFrame] = []  # cleared ones, a month's at a time, in compact columns
        # month x site
        self.declarations = np.zeros((n_months, n_sites), np.int64)
        self.violations = np.zeros((n_months, n_sites), np.int64)
        self.by_class = np.zeros((n_months, n_sites, len(CREDIT_CLASSES)), np.int64)  # declarations per class
        self.zero_chance = np.zeros(
            (n_months, n_sites), np.int64
        )  # declarations the random channel could not pick
        self.lanes = np.zeros((n_months, n_sites, len(LANES)), np.int64)  # declarations per lane
        self.on_post_hours = np.zeros((n_months, n_sites))
        self.backlog_end = np.zeros((n_months, n_sites), np.int64)
        # month
        self.dishonest_end = np.zeros(n_months, np.int64)  # enterprises in the dishonest class at month end
        self.high_risk_end = np.zeros(n_months, np.int64)  # ... flagged high-risk at month end
        self.entered = np.zeros(n_months, np.int64)  # new enterprises replacing leavers at the month's start
        self.channel_counts = np.zeros(
            (n_months, 3), np.int64
        )  # random, targeted, instructed (the controller's)
        self._busy = np.zeros((n_months, n_sites))  # inspection hours worked in the month (utilization)
        self._work: tuple[list[int], list[float], list[float]] = ([], [], [])  # not yet in _busy
        self.ratio_used = np.full(n_months, ratio)
        self.instruction_used = np.full(n_months, instruction_rate)
        self.hourly_waiting = np.zeros(len(month_of_hour), np.int64)

    def settle(self) -> None:
        """Move the cleared cases (nothing changes a case once it is cleared) into compact columns,
        so a long run holds a few bytes per inspection rather than an object each; fold the month's
        service times into the busy hours likewise."""
        self._fold_work()
        cleared = [c for c in self.cases if not math.isnan(c.cleared_h)]
        if not cleared:
            return
        self.cases = [c for c in self.cases if math.isnan(c.cleared_h)]
        frame = case_frame(cleared)
        for name in frame.select_dtypes(include=["object", "string"]).columns:
            frame[name] = frame[name].astype("category")
        self.settled.append(frame)

    def all_cases(self) -> pd.DataFrame:
        """Every case as a row, in the order the declarations arrived."""
        parts = [*self.settled, case_frame(self.cases)] if self.cases else self.settled
        if not parts:
            return case_frame([])
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].copy()
        for name in frame.select_dtypes(include="category").columns:
            frame[name] = frame[name].astype(object)
        return frame.sort_values("declaration", kind="stable").reset_index(drop=True)

    def work(self, site: str, start_h: float, hours: float) -> None:
        """An inspection's service time: noted here, split over months in a batch (`_fold_work`)."""
        site_k, start, length = self._work
        site_k.append(self.site_index[site])
        start.append(start_h)
        length.append(hours)

    @property
    def busy_hours(self) -> np.ndarray:
        """Months x sites: the inspection hours worked, each service time split over the months it
        spans (the part past the horizon's end is not counted): the one count of busy hours, for
        utilization and the controller alike."""
        self._fold_work()
        return self._busy

    def _fold_work(self) -> None:
        """The service times noted since the last fold, split over months in one batch rather than
        once per inspection, adding the same parts in the same order as one at a time would."""
        site_k, start_h, hours = (np.asarray(column) for column in self._work)
        if not len(site_k):
            return
        self._work = ([], [], [])
        edges, end_h = self.month_edges, start_h + hours
        first = np.searchsorted(edges, start_h, side="right") - 1
        spans = np.maximum(0, np.minimum(self.n_months, np.searchsorted(edges, end_h)) - first)
        entry = np.repeat(np.arange(len(spans)), spans)  # each inspection's months, in order
        month = first[entry] + np.arange(len(entry)) - np.repeat(np.cumsum(spans) - spans, spans)
        part = np.minimum(end_h[entry], edges[month + 1]) - np.maximum(start_h[entry], edges[month])
        np.add.at(self._busy, (month, site_k[entry]), part)

    def arrivals(
        self,
        month: int,
        site: np.ndarray,
        violating: np.ndarray,
        credit: np.ndarray,
        threshold: np.ndarray,
        channels: tuple[int, int, int],
        lane: np.ndarray,
    ) -> None:
        """One hour's declarations: counted by site and class, by channel for the controller."""
        n_sites, n_classes = len(self.sites), len(CREDIT_CLASSES)
        self.channel_counts[month] += channels
        self.declarations[month] += np.bincount(site, minlength=n_sites)
        self.violations[month] += np.bincount(site, weights=violating, minlength=n_sites).astype(np.int64)
        self.by_class[month] += np.bincount(site * n_classes + credit, minlength=n_sites * n_classes).reshape(
            n_sites, n_classes
        )
        self.zero_chance[month] += np.bincount(site, weights=threshold <= 0, minlength=n_sites).astype(
            np.int64
        )
        self.lanes[month] += np.bincount(site * len(LANES) + lane, minlength=n_sites * len(LANES)).reshape(
            n_sites, -1
        )
