"""How long a command takes to start, beside a bare interpreter measured in the same run.

Each command runs ROUNDS times in a fresh process; the best (least disturbed) wall time is kept.
  bare       python -c pass: the floor every command pays
  import     python -c "import doublerandom.cli": the command line loaded, nothing run
  help       doublerandom --help (typer renders it with rich)
  validate   doublerandom validate scenarios/rules/baseline.yaml (loads pydantic, YAML, durable-rules)
  engine     python -m engine validate ... (the engine's commands alone)
Aim (issue 24): `validate` and `--help` under 0.4 s and within 5x a bare interpreter. What the
command line may load at start is held by tests/test_layering.py, not by these times.
Usage: python benchmarks/cli_start.py [ROUNDS]   (default 7)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RULES = "scenarios/rules/baseline.yaml"
COMMANDS = {
    "bare": [sys.executable, "-c", "pass"],
    "import": [sys.executable, "-c", "import doublerandom.cli"],
    "help": [str(BIN / "doublerandom"), "--help"],
    "validate": [str(BIN / "doublerandom"), "validate", RULES],
    "engine": [sys.executable, "-m", "engine", "validate", RULES],
}


def best(command: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main(rounds: int) -> None:
    seconds = {name: best(command, rounds) for name, command in COMMANDS.items()}
    print(f"best of {rounds} runs each, wall time")
    print(f"{'command':>9} {'seconds':>8} {'x bare':>7}")
    for name, s in seconds.items():
        print(f"{name:>9} {s:>8.3f} {s / seconds['bare']:>7.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
