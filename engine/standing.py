"""Enterprises' integrity standing over a batch of declarations (a simulated run, a replayed log),
kept in arrays so the rules can read a whole batch at once, and updated by the engine's own
FeedbackPolicy after every inspection result: the batch speed of `engine.integrity`.

Dates are day numbers since the start (floats); a high-risk flag without expiry is +inf.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from engine.declarations import CreditClass
from engine.integrity import FeedbackPolicy
from engine.selection import CREDIT_CLASSES

CREDIT_NAMES = np.array([c.value for c in CREDIT_CLASSES], dtype=object)
DISHONEST = CREDIT_CLASSES.index(CreditClass.dishonest)
NO_FLAG = -np.inf


class Standing:
    def __init__(self, credit: np.ndarray, history: np.ndarray, policy: FeedbackPolicy, start: dt.date):
        """`credit`: each firm's class code (into CREDIT_CLASSES); `history`: declarations lodged before."""
        n = len(credit)
        self.policy, self.start = policy, start
        self.credit = np.asarray(credit).copy()
        self.flag_until = np.full(n, NO_FLAG)  # day number the high-risk flag lasts to (inclusive)
        self.declarations = np.asarray(history).astype(np.int64)
        self.inspections = np.zeros(n, np.int64)
        self.problems = np.zeros(n, np.int64)
        self.clean_streak = np.zeros(n, np.int64)
        self.problem_days: dict[int, list[float]] = {}

    def fields(
        self, firms: np.ndarray, day: np.ndarray, names: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """The `enterprise.*` rule fields (all, or those named) for these declarations: the engine's
        ENTERPRISE_FIELDS read from the run's arrays (a test holds the two lists equal)."""
        build = {
            "enterprise.credit_class": lambda: CREDIT_NAMES[self.credit[firms]],
            "enterprise.high_risk": lambda: self.flag_until[firms] >= np.floor(day),
            "enterprise.declarations": lambda: self.declarations[firms],
            "enterprise.inspections": lambda: self.inspections[firms],
            "enterprise.problems": lambda: self.problems[firms],
        }
        return {name: build[name]() for name in (build if names is None else names)}

    def replace(self, firms: np.ndarray, credit: np.ndarray) -> None:
        """New enterprises take over these slots: no history, no flag, the given credit class."""
        self.credit[firms] = credit
        self.flag_until[firms] = NO_FLAG
        for array in (self.declarations, self.inspections, self.problems, self.clean_streak):
            array[firms] = 0
        for firm in firms:
            self.problem_days.pop(int(firm), None)

    def count(self, day: float) -> tuple[int, int]:
        """Enterprises in the dishonest class and enterprises flagged high-risk on this day."""
        return int((self.credit == DISHONEST).sum()), int((self.flag_until >= np.floor(day)).sum())

    def count_declarations(self, firms: np.ndarray) -> None:
        np.add.at(self.declarations, firms, 1)

    def record(self, firm: int, problem: bool, day: float) -> None:
        """Apply one inspection result with the engine's feedback policy (`FeedbackPolicy.step`, the
        rule the live integrity store applies through `FeedbackPolicy.apply`)."""
        today = int(day)
        past = self.problem_days.get(firm, [])
        recent = sum(1 for d in past if d > today - self.policy.downgrade_window_days) if problem else 0
        until = self.flag_until[firm]
        credit, high_risk, expiry, self.clean_streak[firm] = self.policy.step(
            CREDIT_CLASSES[self.credit[firm]],
            bool(until > NO_FLAG),
            self._date(until),
            int(self.clean_streak[firm]),
            problem,
            self.start + dt.timedelta(days=today),
            recent,
        )
        if problem:
            past.append(today)
            self.problem_days[firm] = past
            self.problems[firm] += 1
        self.inspections[firm] += 1
        self.credit[firm] = CREDIT_CLASSES.index(credit)
        self.flag_until[firm] = self._day(high_risk, expiry)

    def _date(self, until: float) -> dt.date | None:
        return self.start + dt.timedelta(days=int(until)) if np.isfinite(until) else None

    def _day(self, high_risk: bool, expiry: dt.date | None) -> float:
        if not high_risk:
            return NO_FLAG
        return np.inf if expiry is None else float((expiry - self.start).days)
