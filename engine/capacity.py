"""Capacity-aware targeting: an office's computer selects its expected rate of declarations; the
random channel and the credit floor take theirs first, and the targeted channel tops them up with
the highest risk scores (ASYCUDA's expected rate per office; CBP's highest scores first).

Declarations arrive one at a time, so "the top 3% by score" has to be an online threshold. Each
office keeps a `Pacer`: the scores of its last `window` declarations, with their credit multipliers,
whether another channel took them and whether the targeted channel did. Every `refresh`
declarations it sets a cutoff from them: a declaration scoring above the cutoff is taken, one scoring
exactly at it is taken with the `tie` probability (scores are sums of a few weights, so ties are
common), one below is not; the credit multiplier thins each of those chances, so the credit measures
still bound certified firms' rates. A declaration no rule flagged (score 0), or one another channel
took, is never taken by this one. The random channel never looks at scores or at the pacer.

The cutoff aims the next block at the expected rate plus GAIN times the window's shortfall (or
minus its excess), less the share the other channels took in the window. Without that feedback the count over
a day is binomial around the target (about
±9% for 135 inspections a day, one standard deviation); with GAIN = 0.3 it stays within a few
percent, and a gain near 1 makes the blocks oscillate (a toy study of gains 0 to 0.8 chose 0.3).

Everything here is a function of the declarations' order, scores and draws: the same stream gives
the same cutoffs live (one declaration at a time) and in a simulated batch, and decisions record the
cutoff and tie they used, so an auditor can check each one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GAIN = 0.3


def chance(score: np.ndarray, multiplier: np.ndarray, cutoff, tie) -> np.ndarray:
    """The targeted channel's chance of taking each declaration: the one definition."""
    level = np.where(score > cutoff, 1.0, np.where(score == cutoff, tie, 0.0))
    return np.where(score > 0, multiplier * level, 0.0)


@dataclass
class Paced:
    """What the pacer decided for n declarations (arrays of length n)."""

    hit: np.ndarray
    chance: np.ndarray
    cutoff: np.ndarray
    tie: np.ndarray


class Pacer:
    """One office's online threshold (see the module docstring)."""

    def __init__(self, rate: float, window: int, refresh: int):
        if not 0 <= rate <= 1 or window < 1 or not 1 <= refresh <= window:
            raise ValueError(
                f"expected rate in [0, 1] and 1 <= refresh <= window; got {rate}, {refresh}, {window}"
            )
        self.rate, self.window, self.refresh = rate, window, refresh
        self.score, self.weight = np.zeros(window), np.zeros(window)
        self.hit, self.taken = np.zeros(window, bool), np.zeros(window, bool)
        self.seen, self._refreshed_at, self._stale = 0, 0, False
        self.cutoff, self.tie = 0.0, 0.0  # before any history: every flagged declaration

    def run(self, score: np.ndarray, multiplier: np.ndarray, u: np.ndarray, taken: np.ndarray) -> Paced:
        """Decide n declarations in arrival order; `u` are the channel's uniform draws, `taken` marks
        those another channel (random, credit floor) selected."""
        n = len(score)
        out = Paced(np.zeros(n, bool), np.zeros(n), np.zeros(n), np.zeros(n))
        i = 0
        while i < n:
            if self._stale or self.seen % self.refresh == 0 and self._refreshed_at != self.seen:
                self._set_cutoff()
                self._refreshed_at, self._stale = self.seen, False
            j = min(n, i + self.refresh - self.seen % self.refresh)
            p = np.where(taken[i:j], 0.0, chance(score[i:j], multiplier[i:j], self.cutoff, self.tie))
            out.chance[i:j], out.hit[i:j] = p, u[i:j] < p
            out.cutoff[i:j], out.tie[i:j] = self.cutoff, self.tie
            self._remember(score[i:j], multiplier[i:j], out.hit[i:j], taken[i:j])
            i = j
        return out

    def restore(
        self,
        seen: int,
        score: np.ndarray,
        multiplier: np.ndarray,
        hit: np.ndarray,
        taken: np.ndarray,
        cutoff: float | None,
        tie: float,
    ) -> None:
        """Resume after a restart: the count of declarations decided, the last ones (in order, at most
        `window`), and the cutoff the last one used (None when it was decided without a pacer: a
        cutoff is then set from the window before the next declaration)."""
        self.seen = seen - len(score)
        self.absorb(score, multiplier, hit, taken, cutoff, tie)

    def absorb(
        self,
        score: np.ndarray,
        multiplier: np.ndarray,
        hit: np.ndarray,
        taken: np.ndarray,
        cutoff: float | None,
        tie: float,
    ) -> None:
        """Declarations decided elsewhere (another instance on the same database), in order, after
        those this pacer has seen: the state is then the one `restore` would rebuild from them all."""
        self._refreshed_at = -1
        self._remember(
            np.asarray(score, float),
            np.asarray(multiplier, float),
            np.asarray(hit, bool),
            np.asarray(taken, bool),
        )
        self.cutoff, self.tie, self._stale = cutoff or 0.0, tie, cutoff is None and self.seen > 0

    def _remember(self, score: np.ndarray, weight: np.ndarray, hit: np.ndarray, taken: np.ndarray) -> None:
        at = (self.seen + np.arange(len(score))) % self.window
        self.score[at], self.weight[at], self.hit[at], self.taken[at] = score, weight, hit, taken
        self.seen += len(score)

    def _set_cutoff(self) -> None:
        m = min(self.seen, self.window)
        if m == 0:  # nothing seen yet: keep taking every flagged declaration
            return
        free = ~self.taken[:m]
        others, selected = m - int(free.sum()), int(self.hit[:m].sum()) + m - int(free.sum())
        share = self.rate + GAIN * (self.rate * m - selected) / self.refresh
        goal = min(1.0, max(0.0, share - others / m)) * m  # what is left for the targeted channel
        self.cutoff, self.tie = cutoff_for(self.score[:m][free], self.weight[:m][free], goal)


def cutoff_for(score: np.ndarray, weight: np.ndarray, goal: float) -> tuple[float, float]:
    """(cutoff, tie) under which the flagged declarations' weights above the cutoff, plus tie x those
    at it, add up to `goal`; every flagged one (0, 0) when they add up to less."""
    flagged = score > 0
    score, weight = score[flagged], weight[flagged]
    order = np.argsort(-score, kind="stable")
    reached = np.flatnonzero(np.cumsum(weight[order]) >= goal)
    if not len(reached):
        return 0.0, 0.0
    level = score[order[reached[0]]]
    above, at = weight[score > level].sum(), weight[score == level].sum()
    tie = (goal - above) / at if at > 0 else 0.0
    return float(level), float(min(1.0, max(0.0, tie)))
