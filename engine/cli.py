"""The engine's command line: validate rules files and decide declarations (JSON lines in and out).

`doublerandom` adds the simulation's commands to this same app; `python -m engine` is the engine alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator, Optional, TextIO

import typer
from rich.console import Console

from engine import __version__
from engine.declarations import Enterprise, parse_declaration, read_enterprises_csv
from engine.errors import InputError
from engine.randomness import Draws, KeyedDraws, SeededDraws, new_key_hex
from engine.rules import RuleSet
from engine.selection import SelectionPolicy, Selector

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="doublerandom: double-random customs inspection (selection engine and simulation).")
err = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> None:
    """Print a user error without a traceback and exit."""
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


@app.callback()
def _main(version: bool = typer.Option(False, "--version", help="print the package version")) -> None:
    if version:
        print(__version__)
        raise typer.Exit()


@app.command()
def validate(rules_file: Path = typer.Argument(..., help="a rules YAML file")) -> None:
    """Check a rules file; print its version and rules, or what is wrong."""
    try:
        rules = RuleSet.load(rules_file)
    except InputError as e:
        fail(str(e))
    print(f"OK {rules_file}: {len(rules.rules)} rules, version {rules.version}")


@app.command()
def keygen(out: Path = typer.Argument(..., help="where to write the new key (hex)")) -> None:
    """Write a new secret key for live, verifiable random draws."""
    if out.exists():
        fail(f"{out}: exists already; refusing to overwrite a draw key")
    out.write_text(new_key_hex() + "\n")
    out.chmod(0o600)
    print(f"wrote {out}")


def make_draws(seed: Optional[int], key_file: Optional[Path]) -> Draws:
    if (seed is None) == (key_file is None):
        fail("give exactly one of --seed N (reproducible draws) or --key-file F (live, verifiable draws)")
    return SeededDraws(seed) if key_file is None else KeyedDraws.from_file(key_file)


def read_lines(source: TextIO, name: str) -> Iterator[tuple[str, object]]:
    """(where, parsed JSON) per non-blank line; a line that is not JSON yields an InputError."""
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as e:
            yield where, InputError(f"{where}: not valid JSON: {e.msg} (column {e.colno})")


@app.command()
def select(
    rules: Path = typer.Option(..., "--rules", help="rules YAML file"),
    ratio: float = typer.Option(0.03, "--ratio", min=0, max=1, help="pure random ratio over all declarations"),
    seed: Optional[int] = typer.Option(None, "--seed", help="seeded draws (simulation, tests)"),
    key_file: Optional[Path] = typer.Option(None, "--key-file", help="keyed HMAC draws (live use)"),
    enterprises: Optional[Path] = typer.Option(None, "--enterprises", help="CSV of enterprise records"),
    input: Optional[Path] = typer.Option(None, "--input", help="declarations as JSON lines (default stdin)"),
) -> None:
    """Decide declarations: one JSON decision per input line on stdout; bad lines on stderr."""
    try:
        selector = Selector(RuleSet.load(rules), SelectionPolicy(random_ratio=ratio), make_draws(seed, key_file))
        known = read_enterprises_csv(str(enterprises)) if enterprises else {}
        source = open(input, encoding="utf-8") if input else sys.stdin
    except (InputError, OSError) as e:
        fail(str(e))
    bad = decided = 0
    with source:
        for where, raw in read_lines(source, str(input or "<stdin>")):
            try:
                if isinstance(raw, InputError):
                    raise raw
                declaration = parse_declaration(raw, where)
            except InputError as e:
                err.print(str(e), markup=False, highlight=False, soft_wrap=True)
                bad += 1
                continue
            enterprise = known.setdefault(declaration.enterprise_id, Enterprise(id=declaration.enterprise_id))
            decision = selector.decide(declaration, enterprise)
            enterprise.declarations += 1  # the next declaration of this firm is no longer its first
            print(json.dumps(decision.to_dict(), sort_keys=True))
            decided += 1
    err.print(f"decided {decided} declarations, {bad} bad lines", highlight=False)
    if bad:
        raise typer.Exit(1)


def main() -> None:
    app()
