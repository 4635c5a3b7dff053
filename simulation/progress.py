"""Progress for long work in a notebook or a script: a callback `(done, total)` drawing a tqdm bar
(tqdm.auto: a widget in Jupyter, text elsewhere), for `run(..., progress=)`, `Runner.map`, sweeps
and the fixed-capacity frontier; `say` for the tuner's one-line messages. The command line draws its
own bars with rich; this is for code that calls the simulation directly.
"""

from __future__ import annotations

from typing import Callable


def bar(description: str, unit: str = "") -> Callable[[int, int], None]:
    """A callback that draws one bar, made on its first call (when the total is known)."""
    from tqdm.auto import tqdm

    state: dict = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc=description, unit=unit or "it", leave=True)
        shown = state["bar"]
        shown.total = total
        shown.update(done - shown.n)
        if done >= total:
            shown.close()

    return update


def say(prefix: str = "") -> Callable[[str], None]:
    """The tuner's messages, one line each, as they come."""
    return lambda message: print(f"{prefix}{message}", flush=True)
