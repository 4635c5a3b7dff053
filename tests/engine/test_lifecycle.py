"""The inspection lifecycle table: every status reachable, every unfinished one has a way out, and
the live office refuses a step its status does not allow, naming the status."""

from __future__ import annotations

import pytest

from engine.errors import Conflict
from engine.lifecycle import FINAL, MOVES, Status, Step, check


def test_every_status_is_reachable_and_only_final_ones_are_dead_ends():
    reached = {Status.selected}
    for _ in Status:
        reached |= {to for step, (froms, tos) in MOVES.items() if froms & reached for to in tos}
    assert reached == set(Status)
    leaving = {s for froms, _ in MOVES.values() for s in froms}
    assert set(Status) - leaving == FINAL


@pytest.mark.parametrize(
    "step,status",
    [
        (Step.release, "dispatched"),
        (Step.result, "released"),
        (Step.dispatch, "transferred"),
        (Step.reassign, "checked"),
    ],
)
def test_a_step_the_status_does_not_allow_is_a_conflict_naming_it(step, status):
    with pytest.raises(Conflict, match=f"X1 is {status}; this step needs it"):
        check(step, "X1", status)
