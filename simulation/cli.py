"""The `doublerandom` command: the engine's commands plus the simulation's."""

from __future__ import annotations

from engine.cli import app


def main() -> None:
    app()
