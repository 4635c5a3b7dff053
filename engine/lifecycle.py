"""The life of an inspection: its statuses and the steps that move it, as one table.

selected -> (dispatch) -> dispatched | waiting; waiting -> (dispatch) -> dispatched | waiting;
dispatched -> (result) -> awaiting_release | transferred (a problem) | checked (a re-check);
awaiting_release -> (release) -> released. A manual reassignment moves a selected, waiting or
dispatched inspection to dispatched. The live office refuses any other move (a Conflict that names
the status), and the audit reconciliation replays the log through the same table.
"""

from __future__ import annotations

from enum import Enum

from engine.errors import Conflict


class Status(str, Enum):
    selected = "selected"
    waiting = "waiting"
    dispatched = "dispatched"
    awaiting_release = "awaiting_release"
    transferred = "transferred"
    released = "released"
    checked = "checked"


class Step(str, Enum):
    dispatch = "dispatch"
    reassign = "reassign"
    result = "result"
    release = "release"


S = Status
MOVES: dict[Step, tuple[frozenset[Status], frozenset[Status]]] = {  # step -> (from, to)
    Step.dispatch: (frozenset({S.selected, S.waiting}), frozenset({S.dispatched, S.waiting})),
    Step.reassign: (frozenset({S.selected, S.waiting, S.dispatched}), frozenset({S.dispatched})),
    Step.result: (frozenset({S.dispatched}), frozenset({S.awaiting_release, S.transferred, S.checked})),
    Step.release: (frozenset({S.awaiting_release}), frozenset({S.released})),
}
FINAL = frozenset({S.transferred, S.released, S.checked})


def check(step: Step, inspection_id: str, status: str) -> None:
    """Refuse the step unless the inspection's status allows it."""
    allowed = MOVES[step][0]
    if Status(status) not in allowed:
        needed = " or ".join(sorted(s.value for s in allowed))
        raise Conflict(f"{inspection_id} is {status}; this step needs it {needed}")


def after_result(recheck: bool, problem: bool) -> Status:
    """Where a result takes an inspection: a re-check is only checked; a problem is transferred."""
    return S.checked if recheck else S.transferred if problem else S.awaiting_release
