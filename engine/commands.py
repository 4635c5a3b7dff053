"""What every command line of the project shares (the engine's, the replay's, the simulation's):
one clear error without a traceback, the install command for a missing extra, the selection policy
from a file and options, the draws from a seed or a key file, and opening an existing office.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from engine.errors import InputError, describe, redact

# Loaded where a command needs them, not when the command line starts: pydantic's models, rich and
# the live office (which pulls numpy) cost most of a command's start-up (tests/test_layering.py).
if TYPE_CHECKING:
    from rich.console import Console

    from engine.office import Office
    from engine.randomness import Draws
    from engine.selection import SelectionPolicy


@functools.cache
def console(stderr: bool = False) -> Console:
    """rich's console for a command's output (`stderr`: its errors and progress), made when first
    printed to."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def fail(message: str, code: int = 2) -> None:
    """Print a user error without a traceback and exit."""
    from rich.markup import escape

    console(stderr=True).print(
        f"[bold red]error:[/] {escape(redact(message))}", markup=True, soft_wrap=True
    )  # '[sim]' is text
    raise typer.Exit(code)


def need(extra: str, *modules: str) -> None:
    """Fail with the install command when an optional part (an extra) is not installed."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        fail(
            f"this command needs the '{extra}' extra ({', '.join(missing)} not installed): "
            f"pip install 'doublerandom[{extra}]'"
        )


def make_draws(seed: Optional[int], key_file: Optional[Path]) -> Draws:
    """--seed: draws keyed by the seed (reproducible, predictable); --key-file: secret-keyed (live)."""
    from engine.randomness import KeyedDraws

    if (seed is None) == (key_file is None):
        fail("give exactly one of --seed N (reproducible draws) or --key-file F (live, verifiable draws)")
    return KeyedDraws.from_seed(seed) if key_file is None else KeyedDraws.from_file(key_file)


def selection_policy(
    path: Path | None, ratio: float | None, expected_rate: float | None, score=None
) -> SelectionPolicy:
    """The policy file (or the defaults), with the options given on the command line on top, if a
    live office can decide by it (with the learned score `score`, where it names one)."""
    from pydantic import ValidationError

    from engine.files import read_model
    from engine.selection import SelectionPolicy, live

    base = read_model(path, SelectionPolicy, "selection policy") if path else SelectionPolicy()
    changes = {k: v for k, v in (("random_ratio", ratio), ("expected_rate", expected_rate)) if v is not None}
    try:
        policy = SelectionPolicy.model_validate({**base.model_dump(), **changes})
    except ValidationError as err:
        raise describe("the command line's policy options", err) from None
    live(policy, score)
    return policy


def learned_score(path: Path | None):
    """The model file `--model` names, loaded and checked (engine.score), or None."""
    if path is None:
        return None
    from engine.score import LearnedScore

    return LearnedScore.load(path)


SEAL_KEY = "DOUBLERANDOM_SEAL_KEY"  # the office's signing key file, for commands that write to its log


def seal_key():
    """The office's signing key named by DOUBLERANDOM_SEAL_KEY, or None (the steps then seal nothing)."""
    from engine import checkpoint

    path = os.environ.get(SEAL_KEY)
    return checkpoint.load_signing_key(path) if path else None


def open_office(
    db: str, roster: Optional[Path] = None, seed: Optional[int] = None, key_file: Optional[Path] = None
) -> Office:
    """The office in a database that exists (a command never creates one by accident)."""
    from engine import database
    from engine.dispatch import Roster
    from engine.office import Office

    if not database.is_postgres(db) and not database.sqlite_path(db).exists():
        fail(f"{db}: no such database (create one with `doublerandom select --db {db}`)")
    try:
        draws = make_draws(seed, key_file) if (seed is not None or key_file is not None) else None
        return Office(db, roster=Roster.load(roster) if roster else None, draws=draws, seal_key=seal_key())
    except InputError as e:
        fail(str(e))
