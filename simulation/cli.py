"""The `doublerandom` command: the engine's commands plus the simulation's."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.cli import app, fail
from engine.errors import InputError
from simulation import scenario as scenarios
from simulation.model import run as simulate

out = Console(highlight=False)


@app.command("run")
def run_cmd(
    scenario_file: Path = typer.Argument(..., metavar="SCENARIO", help="scenario YAML file"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default out/<scenario name>)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="override the scenario's seed"),
    months: Optional[int] = typer.Option(None, "--months", help="override the horizon in months"),
    overrides: List[str] = typer.Option([], "--set", help="override a field: path=value, e.g. policy.random_ratio=0.05"),
    rules_backend: str = typer.Option("vector", "--rules-backend", help="vector (fast) or durable (the live engine)"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="write PNG plots"),
) -> None:
    """Simulate a scenario; write events.parquet, monthly.csv, summary.json and plots."""
    if rules_backend not in ("vector", "durable"):
        fail(f"--rules-backend: {rules_backend!r} is not vector or durable")
    if months is not None:
        overrides = [*overrides, f"horizon.months={months}", "horizon.days=null"]
    try:
        scenario = scenarios.load(scenario_file, overrides)
    except InputError as e:
        fail(str(e))
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("day {task.completed:.0f}/{task.total:.0f}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(f"simulating {scenario.name}", total=scenario.horizon.n_days)
        results = simulate(scenario, rules_backend=rules_backend,
                           progress=lambda done, total: bar.update(task, completed=done, total=total))
    folder = out_dir or Path("out") / scenario.name
    written = results.write(folder, plots=plots)
    print_summary(results)
    out.print(f"wrote {len(written)} files to {folder}/: " + ", ".join(p.name for p in written))


def print_summary(results) -> None:
    s = results.summary
    table = Table(title=f"{s['scenario']}  seed {s['seed']}  rules {s['rules_version']}", show_header=False)
    low, high = s["noncompliance_ci"]
    rows = [
        ("declarations", f"{s['declarations']:,}"),
        ("inspections (rate)", f"{s['inspections']:,} ({100 * s['inspection_rate']:.2f}%)"),
        ("random-selection share of dispatches", f"{100 * s['random_dispatch_share']:.1f}%"),
        ("pure random share of dispatches", f"{100 * s['pure_random_share']:.1f}%"),
        ("violations found / true", f"{s['violations_found']:,} / {s['violations_true']:,}"),
        ("non-compliance true / estimate [95%]",
         f"{100 * s['noncompliance_true']:.2f}% / {100 * s['noncompliance_estimate']:.2f}% "
         f"[{100 * low:.2f}, {100 * high:.2f}]"),
        ("inspector utilization", f"{100 * s['inspector_utilization']:.1f}%"),
        ("mean wait / p95 clearance (h)", f"{s['mean_wait_h']:.2f} / {s['p95_clearance_h']:.1f}"),
        ("backlog at the end", f"{s['backlog_end']:,}"),
        ("wall time", f"{s['wall_seconds']:.1f} s"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    out.print(table)


def main() -> None:
    app()
