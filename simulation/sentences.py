"""Sentences that state a result, made from the result. A notebook (or a report) never types a
comparison or a verdict: it calls one of these, so the words cannot contradict the numbers.

Comparisons share one grammar, which the notebooks' test reads back out of every executed notebook
and checks against the numbers in it (tests/notebooks/test_notebooks.py):

    <what>: <a> (<label a>) against <b> (<label b>): higher | lower | about the same (within <t>)

Limits share another:

    <what>: <n> of <m> months above <limit>: within the limit | breaks the limit
"""

from __future__ import annotations

import math
import re
from typing import Iterable

import numpy as np

COMPARISON = re.compile(
    r"^(?P<what>[^:\n]+): (?P<a>[-+\d.,]+%?) \((?P<la>[^)]*)\) against (?P<b>[-+\d.,]+%?) \((?P<lb>[^)]*)\): "
    r"(?P<verdict>higher|lower|about the same \(within (?P<tol>[\d.,]+%?)\))$",
    re.MULTILINE,
)
LIMIT = re.compile(
    r"^(?P<what>[^:\n]+): (?P<n>\d+) of (?P<m>\d+) months above (?P<limit>[-+\d.,]+%?): "
    r"(?P<verdict>within the limit|breaks the limit)$",
    re.MULTILINE,
)


def number(text: str) -> float:
    """A number as these sentences print it: commas for thousands, a percent sign for shares."""
    value = float(text.replace(",", "").rstrip("%"))
    return value / 100 if text.endswith("%") else value


def _shown(value: float, percent: bool, digits: int) -> str:
    return f"{100 * value:,.{digits}f}%" if percent else f"{value:,.{digits}f}"


def compare(
    what: str,
    a: float,
    b: float,
    label_a: str,
    label_b: str,
    tolerance: float = 0.0,
    percent: bool = False,
    digits: int = 0,
) -> str:
    """`a` against `b`, with the verdict the printed numbers support: 'about the same' when they
    differ by no more than `tolerance` (an interval's half-width, say), else higher or lower.
    The verdict is taken on the numbers as printed, so a reader can check it."""
    shown_a, shown_b = _shown(a, percent, digits), _shown(b, percent, digits)
    pa, pb = number(shown_a), number(shown_b)
    if abs(pa - pb) <= tolerance:
        verdict = f"about the same (within {_shown(tolerance, percent, max(digits, 1))})"
    else:
        verdict = "higher" if pa > pb else "lower"
    return f"{what}: {shown_a} ({label_a}) against {shown_b} ({label_b}): {verdict}"


def months_above(
    what: str, values: Iterable[float], limit: float, percent: bool = False, digits: int = 2
) -> str:
    """How many months exceed a limit, and whether the limit holds (every month within it)."""
    months = [v for v in values if v == v]  # months with a value
    over = sum(1 for v in months if v > limit)
    verdict = "within the limit" if over == 0 else "breaks the limit"
    return f"{what}: {over} of {len(months)} months above {_shown(limit, percent, digits)}: {verdict}"


def moves(name: str, changes: dict[str, float]) -> str:
    """An assumption's effect on each headline figure, as relative changes from the baseline, the
    largest first: figures, not adjectives ('barely', 'a lot')."""
    parts = [
        f"{figure} {100 * change:+.0f}%"
        for figure, change in sorted(changes.items(), key=lambda kv: -abs(kv[1]) if kv[1] == kv[1] else 0)
        if not (isinstance(change, float) and math.isnan(change))
    ]
    return f"{name}: " + ", ".join(parts) if parts else f"{name}: no change measured"


def relative(value: float, base: float) -> float:
    return float(value / base - 1) if base and np.isfinite(base) and np.isfinite(value) else math.nan


def check(text: str) -> list[str]:
    """Every comparison and limit sentence in `text` whose verdict its own numbers do not support."""
    wrong = []
    for m in COMPARISON.finditer(text):
        a, b = number(m["a"]), number(m["b"])
        if m["tol"] is not None:
            ok = abs(a - b) <= number(m["tol"]) + 1e-12
        else:
            ok = (a > b) if m["verdict"] == "higher" else (a < b)
        if not ok:
            wrong.append(m.group(0))
    for m in LIMIT.finditer(text):
        ok = (int(m["n"]) == 0) == (m["verdict"] == "within the limit") and int(m["n"]) <= int(m["m"])
        if not ok:
            wrong.append(m.group(0))
    return wrong
