"""Capacity-aware targeting: the targeted channel inspects the highest risk scores, as many as the
office's expected rate allows.

Declarations arrive one at a time, so "the top 3% by score" has to be an online threshold. Each
office keeps a `Pacer`: the scores of its last `window` declarations (with their credit multipliers
and whether the targeted channel took them). Every `refresh` declarations it sets a cutoff from them:
a declaration scoring above the cutoff is taken, one scoring exactly at it is taken with the `tie`
probability (scores are sums of a few weights, so ties are common), one below is not; the credit
multiplier thins each of those chances, so the credit measures still bound certified firms' rates.
A declaration no rule flagged (score 0) is never taken by this channel.

The cutoff aims the next block at the expected rate plus GAIN times the window's shortfall (or
minus its excess). Without that feedback the count over a day is binomial around the target (about
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


def chance(score: np.ndarray, multiplier: np.ndarray, cutoff: np.ndarray, tie: np.ndarray) -> np.ndarray:
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
            raise ValueError(f"expected rate in [0, 1] and 1 <= refresh <= window; got {rate}, {refresh}, {window}")
        self.rate, self.window, self.refresh = rate, window, refresh
        self.score, self.weight = np.zeros(window), np.zeros(window)
        self.hit = np.zeros(window, bool)
        self.seen, self._refreshed_at, self._stale = 0, 0, False
        self.cutoff, self.tie = 0.0, 0.0  # before any history: every flagged declaration

    def run(self, score: np.ndarray, multiplier: np.ndarray, u: np.ndarray) -> Paced:
        """Decide n declarations in arrival order; `u` are the channel's uniform draws."""
        n = len(score)
        out = Paced(np.zeros(n, bool), np.zeros(n), np.zeros(n), np.zeros(n))
        i = 0
        while i < n:
            if self._stale or self.seen % self.refresh == 0 and self._refreshed_at != self.seen:
                self._set_cutoff()
                self._refreshed_at, self._stale = self.seen, False
            j = min(n, i + self.refresh - self.seen % self.refresh)
            p = chance(score[i:j], multiplier[i:j], np.full(j - i, self.cutoff), np.full(j - i, self.tie))
            out.chance[i:j], out.hit[i:j] = p, u[i:j] < p
            out.cutoff[i:j], out.tie[i:j] = self.cutoff, self.tie
            self._remember(score[i:j], multiplier[i:j], out.hit[i:j])
            i = j
        return out

    def restore(self, seen: int, score: np.ndarray, multiplier: np.ndarray, hit: np.ndarray,
                cutoff: float | None, tie: float) -> None:
        """Resume after a restart: the count of declarations decided, the last ones (in order, at most
        `window`), and the cutoff the last one used (None when it was decided without a pacer: a
        cutoff is then set from the window before the next declaration)."""
        self.seen, self._refreshed_at = seen - len(score), -1
        self._remember(np.asarray(score, float), np.asarray(multiplier, float), np.asarray(hit, bool))
        self.cutoff, self.tie, self._stale = cutoff or 0.0, tie, cutoff is None and seen > 0

    def _remember(self, score: np.ndarray, weight: np.ndarray, hit: np.ndarray) -> None:
        at = (self.seen + np.arange(len(score))) % self.window
        self.score[at], self.weight[at], self.hit[at] = score, weight, hit
        self.seen += len(score)

    def _set_cutoff(self) -> None:
        m = min(self.seen, self.window)
        score, weight, hits = self.score[:m], self.weight[:m], int(self.hit[:m].sum())
        goal = min(1.0, max(0.0, self.rate + GAIN * (self.rate * m - hits) / self.refresh)) * m
        self.cutoff, self.tie = cutoff_for(score, weight, goal)


def cutoff_for(score: np.ndarray, weight: np.ndarray, goal: float) -> tuple[float, float]:
    """(cutoff, tie) under which the flagged declarations' weights above the cutoff, plus tie x those
    at it, add up to `goal`; every flagged one (0, 0) when they add up to less."""
    flagged = score > 0
    levels, inverse = np.unique(score[flagged], return_inverse=True)
    if not len(levels):
        return 0.0, 0.0
    mass = np.bincount(inverse, weights=weight[flagged], minlength=len(levels))[::-1]  # highest first
    above = np.concatenate([[0.0], np.cumsum(mass)[:-1]])  # mass strictly above each level
    k = np.searchsorted(np.cumsum(mass), goal, side="left")
    if k >= len(levels):
        return 0.0, 0.0
    tie = (goal - above[k]) / mass[k] if mass[k] > 0 else 0.0
    return float(levels[::-1][k]), float(np.clip(tie, 0.0, 1.0))
