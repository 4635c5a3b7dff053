"""Sentences made from numbers say what the numbers say, and the checker catches one that does not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulation import sentences

FINITE = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(a=FINITE, b=FINITE, tolerance=st.floats(0, 100), percent=st.booleans(), digits=st.integers(0, 3))
def test_every_comparison_agrees_with_its_printed_numbers(a, b, tolerance, percent, digits):
    text = sentences.compare("violations found", a, b, "with random", "without", tolerance, percent, digits)
    assert sentences.COMPARISON.fullmatch(text), text
    assert sentences.check(text) == []


def test_the_verdicts():
    assert sentences.compare("firms caught", 2064, 2051, "1.2% random", "no random").endswith(": higher")
    assert sentences.compare("firms caught", 2051, 2064, "a", "b").endswith(": lower")
    same = sentences.compare("firms caught", 2064, 2051, "a", "b", tolerance=20)
    assert same.endswith("about the same (within 20.0)")
    share = sentences.compare(
        "computer-selection share", 0.71, 0.55, "adaptive", "China H1 2015", percent=True
    )
    assert share == "computer-selection share: 71% (adaptive) against 55% (China H1 2015): higher"


def test_a_limit_holds_only_when_no_month_breaks_it():
    util = [0.80, 0.86, 0.84, float("nan")]
    text = sentences.months_above("inspector utilization", util, 0.85, percent=True, digits=0)
    assert text == "inspector utilization: 1 of 3 months above 85%: breaks the limit"
    assert sentences.check(text) == []
    assert sentences.months_above("utilization", [0.5], 0.85).endswith("within the limit")


def test_the_checker_catches_words_against_numbers():
    wrong = [
        "firms caught: 2,051 (no random) against 2,064 (1.2% random): higher",
        "ratio: 7.46 (x1.5) against 4.85 (baseline): about the same (within 0.5)",
        "utilization: 11 of 12 months above 85%: within the limit",
    ]
    assert sentences.check("\n".join(wrong)) == wrong


def test_moves_gives_figures_not_adjectives():
    text = sentences.moves(
        "violation level x1.5",
        {"targeted / random hit": 0.54, "violations found": 0.48, "estimate width": 0.1},
    )
    assert text == (
        "violation level x1.5: targeted / random hit +54%, violations found +48%, estimate width +10%"
    )
