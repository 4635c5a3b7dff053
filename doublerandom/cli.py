"""The `doublerandom` command: the engine's command group and the simulation's, side by side.

`python -m engine` is the engine alone; nothing here adds to it as an import side effect.
"""

from __future__ import annotations

import typer

from engine import cli as engine_cli
from replay import cli as replay_cli
from simulation import cli as simulation_cli


def build() -> typer.Typer:
    root = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        help="doublerandom: double-random customs inspection (selection engine and simulation).",
    )
    root.registered_callback = engine_cli.app.registered_callback  # --version
    for part in (engine_cli.app, simulation_cli.app, replay_cli.app):
        root.registered_commands.extend(part.registered_commands)
        root.registered_groups.extend(part.registered_groups)
    return root


app = build()


def main() -> None:
    app()
