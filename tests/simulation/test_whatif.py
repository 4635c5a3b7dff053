"""The policy page's words: a limit is broken when the figure passes it, possibly broken when only its
interval does, and every broken limit is said; the sentence states the table's numbers."""

from __future__ import annotations

import math

import pandas as pd

from simulation import whatif


def table(**values) -> pd.DataFrame:
    rows = []
    for name, (label, unit) in whatif.FIGURES.items():
        value, low, high = values.get(name, (0.5, 0.4, 0.6))
        limit = {"worst_month_utilization": 0.85, "monthly_half_width": 0.005}.get(name)
        rows.append({"figure": name, "label": label, "value": value, "low": low, "high": high, "unit": unit,
                     "limit": math.nan if limit is None else limit,
                     "verdict": whatif.verdict(value, high, limit)})  # fmt: skip
    return pd.DataFrame(rows)


def test_limits_are_judged_on_the_figure_and_its_interval():
    assert whatif.verdict(0.9, 0.95, 0.85) == "breaks the limit"
    assert whatif.verdict(0.8, 0.9, 0.85) == "may break the limit"
    assert whatif.verdict(0.8, 0.84, 0.85) == "within the limit"
    assert whatif.verdict(0.8, 0.9, None) == ""
    t = table(worst_month_utilization=(0.8, 0.7, 0.9), monthly_half_width=(0.004, 0.003, 0.0045))
    said = whatif.breaches(t)
    assert said == [
        "inspector utilization, busiest month: 80.0% [70.0%, 90.0%] against the limit 85.0%: "
        "may break the limit"
    ]


def test_the_sentence_states_the_tables_numbers():
    t = table(violations_found_per_month=(672.0, 635.2, 711.4), monthly_half_width=(0.009, 0.005, 0.0159),
              drawn_share=(0.441, 0.43, 0.45), random_dispatch_share=(0.556, 0.55, 0.56),
              pure_random_share=(0.138, 0.13, 0.14),
              credit_share=(0.303, 0.3, 0.31))  # fmt: skip
    words = whatif.sentence(whatif.Settings(75, 0.032, 0.4), t, 3)
    assert words == (
        "With 75 inspectors, the computer selecting 3.2% of declarations, 40% of it at random, from today "
        "the office finds 672 violations a month [635, 711] and gets the monthly compliance estimate to "
        "±0.90 points (up to ±1.59 points); shares of inspections: drawn 44.1%, computer-selection "
        "55.6%, pure random 13.8%, credit 30.3% (95% intervals over 3 replications)."
    )
    assert "no compliance estimate" in whatif.sentence(
        whatif.Settings(75, 0.032, 0.0), table(monthly_half_width=(math.nan, math.nan, math.nan)), 3
    )
