"""The simulation's commands (run, sweep, tune, check); `doublerandom.cli` mounts them beside the engine's."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from engine.commands import console, fail, need
from engine.errors import InputError

if TYPE_CHECKING:  # rich loads when a command prints (engine.commands)
    from rich.progress import Progress

# The model, sweeps and tuning (SimPy, pandas, SciPy, Dask) are imported by the commands that use them,
# so `doublerandom --help` and the engine's step commands start without them.
SIM_MODULES = ("simpy", "pandas", "scipy", "pyarrow")  # what the [sim] extra installs that a run needs

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate an office over months, sweep settings, tune the random ratio.",
)


@app.command("run")
def run_cmd(
    scenario_file: Path = typer.Argument(..., metavar="SCENARIO", help="scenario YAML file"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default out/<scenario name>)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="override the scenario's seed"),
    months: Optional[int] = typer.Option(
        None, "--months", help="measured months (after the scenario's warm-up)"
    ),
    overrides: List[str] = typer.Option(
        [], "--set", help="override a field: path=value, e.g. policy.random_ratio=0.05"
    ),
    rules_backend: str = typer.Option(
        "vector", "--rules-backend", help="vector (fast) or durable (the live engine)"
    ),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="write PNG plots"),
    save_warm: Optional[Path] = typer.Option(
        None, "--save-warm", help="also save the world at the end of the warm-up in this folder"
    ),
    from_warm: Optional[Path] = typer.Option(
        None,
        "--from-warm",
        help="start from a saved warm-up (same scenario, seed; policy, rules, capacity, months may differ)",
    ),
) -> None:
    """Simulate a scenario; write events.parquet, monthly.csv, summary.json and plots."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from simulation import scenario as scenarios  # loaded by the commands that read a scenario

    need("sim", *SIM_MODULES)
    from simulation.model import run as simulate

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
    _need_extras(scenario)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("day {task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(f"simulating {scenario.name}", total=scenario.horizon.n_days)
        try:
            results = simulate(
                scenario,
                rules_backend=rules_backend,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                save_warm=save_warm,
                from_warm=from_warm,
            )
        except InputError as e:
            fail(str(e))
    folder = out_dir or Path("out") / scenario.name
    written = results.write(folder, plots=plots)
    print_summary(results)
    console().print(f"wrote {len(written)} files to {folder}/: " + ", ".join(p.name for p in written))


def print_summary(results) -> None:
    from rich.markup import escape
    from rich.table import Table

    s = results.summary
    table = Table(title=f"{s['scenario']}  seed {s['seed']}  rules {s['rules_version']}", show_header=False)
    low, high = s["noncompliance_ci"]
    estimate = (
        f"{100 * s['noncompliance_estimate']:.2f}% [{100 * low:.2f}, {100 * high:.2f}]"
        if s.get("noncompliance_defined", True)
        else "undefined"
    )
    rows = [
        ("declarations", f"{s['declarations']:,}"),
        ("inspections (rate)", f"{s['inspections']:,} ({100 * s['inspection_rate']:.2f}%)"),
        ("computer-selection share of inspections", f"{100 * s['random_dispatch_share']:.1f}%"),
        ("drawn share of inspections (random draws)", _percent(s["drawn_share"])),
        ("scored share of inspections (highest risk scores)", _percent(s["scored_share"])),
        ("pure random share of inspections", f"{100 * s['pure_random_share']:.1f}%"),
        ("credit share of inspections", f"{100 * s['credit_share']:.1f}%"),
        ("violations found / true", f"{s['violations_found']:,} / {s['violations_true']:,}"),
        (
            "non-compliance true / estimate [95%]",
            (
                "withheld (trace)"
                if s["noncompliance_true"] is None
                else f"{100 * s['noncompliance_true']:.2f}%"
            )
            + f" / {estimate}",
        ),
        ("inspector utilization", f"{100 * s['inspector_utilization']:.1f}%"),
        ("mean wait / p95 clearance (h)", f"{s['mean_wait_h']:.2f} / {s['p95_clearance_h']:.1f}"),
        ("backlog at the end", f"{s['backlog_end']:,}"),
        ("wall time", f"{s['wall_seconds']:.1f} s"),
    ]
    for rule in s.get("credit_rules", []):
        verdict = "met" if rule["met"] else "NOT met" if rule["met"] is False else "not judged"
        rows.append(
            (
                f"inspection rate {rule['class']} ({rule['rule']})",
                f"{100 * rule['rate']:.2f}% [{100 * rule['low']:.2f}, {100 * rule['high']:.2f}] "
                f"vs {100 * rule['limit']:.2f}%: {verdict}",
            )
        )
    for k, v in rows:
        table.add_row(k, v)
    console().print(table)
    print_calibration(s)
    belief = s.get("estimate_detection", {"is_the_truth": True})
    if not belief["is_the_truth"]:
        assumed = ", ".join(f"{k} {v:g}" for k, v in belief["assumed"].items())
        console().print(
            f"[bold yellow]note:[/] the estimate divides by the detection the office assumes ({assumed}), "
            "not the simulated truth"
        )
    if "noncompliance_warning" in s:
        console().print(f"[bold yellow]warning:[/] {s['noncompliance_warning']}")
    for note in s.get("trace_warnings", []):
        console().print(f"[bold yellow]trace:[/] {escape(note)}")


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def print_calibration(s: dict) -> None:
    """The calibration targets and the steady state, each with its interval and verdict (the sources
    are in summary.json and the README)."""
    from rich.table import Table

    table = Table(
        title="calibration: monthly means [95% batch-means interval]; met = interval inside the band"
    )
    for column in ("target", "band", "value [95%]", "met"):
        table.add_column(column)
    for row in s.get("calibration", []):
        fmt = (lambda v: f"{100 * v:.1f}%") if row["high"] <= 1 else (lambda v: f"{v:.1f}")
        table.add_row(
            row["name"],
            f"{fmt(row['low'])} to {fmt(row['high'])}",
            f"{fmt(row['value'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]",
            _verdict(row["met"]),
        )
    for d in s.get("steady_state", []):  # the least-squares change, interval widened for autocorrelation
        table.add_row(f"change in {d['column']}", f"within +-{d['tolerance']:.3g}", _change(d), _trend(d))
    console().print(table)
    if any(d.get("verdict") == "inconclusive" for d in s.get("steady_state", [])):
        console().print(
            "[yellow]inconclusive[/]: the interval is wider than the tolerance (too few independent months "
            "to show a level, not a trend); `doublerandom check SCENARIO --seeds 5` pools several seeds"
        )


def _verdict(met) -> str:
    return "[green]met[/]" if met else "[bold red]NOT met[/]" if met is False else "not judged"


def _change(d: dict) -> str:
    if d.get("undefined"):
        return (
            "-" if d["change"] != d["change"] else f"{d['change']:+.3g}"
        ) + f" (no interval: {d['undefined']})"
    return f"{d['change']:+.3g} [{d['low']:+.3g}, {d['high']:+.3g}]"


def _trend(d: dict) -> str:
    verdict = d.get("verdict") or (
        "undetermined" if d.get("undefined") else "met" if d["stable"] else "inconclusive"
    )
    return {"met": "[green]met[/]", "drifting": "[bold red]drifting[/]"}.get(verdict, f"[yellow]{verdict}[/]")


def _need_extras(spec) -> None:
    if spec.model:  # the learned score trains with LightGBM, an extra
        need("model", "lightgbm")


def _sweep_inputs(
    scenario_file: Path, months: Optional[int], overrides: List[str], compare_from: Optional[str] = None
) -> dict:
    """The scenario as a raw mapping with the command line's overrides, checked once up front (and
    `--compare-from`, a month with measured months on both sides, before any run)."""
    from simulation import scenario as scenarios  # loaded by the commands that read a scenario

    try:
        raw = scenarios.read_raw(scenario_file)
        for item in [*overrides, *([f"horizon.months={months}", "horizon.days=null"] if months else [])]:
            scenarios.apply_override(raw, item, str(scenario_file))
        spec = scenarios.validate(copy.deepcopy(raw), str(scenario_file), scenario_file.parent)
        if compare_from is not None:
            from simulation import sweep as sweeps

            sweeps.check_compare(spec, compare_from)
    except InputError as e:
        fail(str(e))
    _need_extras(spec)
    return raw


WORKERS = typer.Option(
    None, "--workers", help="local worker processes (default: all cores); 0 runs serially here"
)
WARM = typer.Option(
    None,
    "--warm",
    help="start every run from today's office: the scenario's warm-up under its own policy and staff, "
    "simulated once per seed and kept in this folder; the runs then answer what follows a change, "
    "not the steady state under it",
)
SCHEDULER = typer.Option(None, "--scheduler", help="an existing dask scheduler, e.g. tcp://10.0.0.5:8786")


@app.command("sweep")
def sweep_cmd(
    scenario_file: Path = typer.Argument(..., metavar="SCENARIO"),
    grid: List[str] = typer.Option(..., "--grid", help="path=start:stop:step or path=v1,v2 (repeatable)"),
    replications: int = typer.Option(
        5, "--replications", "-r", min=1, help="runs per grid point (CRN seeds)"
    ),
    out_dir: Path = typer.Option(Path("out/sweep"), "--out"),
    months: Optional[int] = typer.Option(
        None, "--months", help="measured months (after the scenario's warm-up)"
    ),
    overrides: List[str] = typer.Option([], "--set", help="fixed override for every run: path=value"),
    workers: Optional[int] = WORKERS,
    scheduler: Optional[str] = SCHEDULER,
    warm: Optional[Path] = WARM,
    compare_from: Optional[str] = typer.Option(
        None,
        "--compare-from",
        help="YYYY-MM: also the violations found a month before and from then, and the paired "
        "difference from the first point (compare.csv)",
    ),
) -> None:
    """Run the scenario over a grid with replications; write runs, summaries with intervals, and plots."""
    need("sim", *SIM_MODULES, "dask")
    from simulation import sweep as sweeps

    raw = _sweep_inputs(scenario_file, months, overrides, compare_from)
    try:
        axes = [sweeps.parse_axis(g) for g in grid]
    except InputError as e:
        fail(str(e))
    total = len(sweeps.grid(axes)) * replications
    with sweeps.Runner(workers, scheduler, warm) as runner:
        results = _swept(raw, scenario_file, axes, replications, runner, f"sweeping {total} runs")
    written = sweeps.write(results, out_dir, compare_from)
    for failure in results.failures:
        console(stderr=True).print(
            f"run failed: point {failure.task.point} {failure.task.params} seed {failure.task.seed}: "
            f"{failure.error}",
            markup=False,
        )
    shown = [a.path for a in axes] + [
        "inspector_utilization",
        "inspector_utilization_high",
        "p95_clearance_h",
        "violations_found",
        "noncompliance_ci_width",
        "random_dispatch_share",
    ]
    if len(results.summary):
        print(results.summary[shown].round(4).to_string(index=False))
    if compare_from and len(results.monthly):
        try:
            compared = sweeps.compare(results, compare_from)
        except InputError as e:
            fail(str(e))
        written.append(out_dir / "compare.csv")
        compared.to_csv(written[-1], index=False, float_format="%.6g")
        figures = [c for c in compared.columns if c.startswith("violations_found")]
        print(compared.drop(columns="point").round({c: 1 for c in figures}).to_string(index=False))
    console().print(f"wrote {len(written)} files to {out_dir}/: " + ", ".join(p.name for p in written))
    if results.failures:
        raise typer.Exit(1)


@app.command("check")
def check_cmd(
    scenario_file: Path = typer.Argument(..., metavar="SCENARIO"),
    seeds: int = typer.Option(5, "--seeds", min=2, help="runs, seeds S..S+N-1 (S: the scenario's seed)"),
    out_dir: Path = typer.Option(Path("out/check"), "--out"),
    months: Optional[int] = typer.Option(None, "--months", help="measured months (after the warm-up)"),
    overrides: List[str] = typer.Option([], "--set", help="override for every run: path=value"),
    workers: Optional[int] = WORKERS,
    scheduler: Optional[str] = SCHEDULER,
) -> None:
    """The calibration targets and the steady state on several seeds: each seed's verdicts, and the
    targets' means and each series' change pooled over the seeds (one run's months are too few and
    too autocorrelated to show a slow series level; independent seeds are not)."""
    need("sim", *SIM_MODULES, "dask")
    from simulation import calibration
    from simulation import sweep as sweeps

    raw = _sweep_inputs(scenario_file, months, overrides)
    with sweeps.Runner(workers, scheduler) as runner:
        results = _swept(raw, scenario_file, [], seeds, runner, f"simulating {seeds} seeds")
    if results.failures or results.monthly.empty:
        for failure in results.failures:
            console(stderr=True).print(f"seed {failure.task.seed} failed: {failure.error}", markup=False)
        raise typer.Exit(1)
    by_seed = {int(seed): part.reset_index(drop=True) for seed, part in results.monthly.groupby("seed")}
    checked = calibration.across_seeds(list(by_seed.values()))
    _print_seeds(list(by_seed), checked)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "check.json").write_text(
        json.dumps(_seeds_json(list(by_seed), checked), indent=1, default=str)
    )
    console().print(f"wrote {out_dir / 'check.json'}")


def _print_seeds(seeds: list[int], checked: dict) -> None:
    from rich.table import Table

    table = Table(title=f"calibration and steady state over seeds {', '.join(map(str, seeds))}")
    for column in ("target", "band", *[f"seed {s}" for s in seeds], "pooled [95%]", "pooled"):
        table.add_column(column)
    for k, row in enumerate(checked["targets"]):
        fmt = (lambda v: f"{100 * v:.1f}%") if row["high"] <= 1 else (lambda v: f"{v:.1f}")
        marks = [_verdict(run["targets"][k]["met"]) for run in checked["per_seed"]]
        value = f"{fmt(row['value'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"
        table.add_row(
            row["name"], f"{fmt(row['low'])} to {fmt(row['high'])}", *marks, value, _verdict(row["met"])
        )
    for k, d in enumerate(checked["steady"]):
        marks = [_trend({"verdict": run["steady"][k].verdict}) for run in checked["per_seed"]]
        table.add_row(
            f"change in {d.column}",
            f"within +-{d.tolerance:.3g}",
            *marks,
            _change(asdict(d)),
            _trend({"verdict": d.verdict}),
        )
    console().print(table)


def _seeds_json(seeds: list[int], checked: dict) -> dict:
    return {
        "seeds": seeds,
        "targets": checked["targets"],
        "steady_state": [{**asdict(d), "verdict": d.verdict} for d in checked["steady"]],
        "per_seed": [
            {
                "seed": seed,
                "targets": run["targets"],
                "steady_state": [{**asdict(d), "verdict": d.verdict} for d in run["steady"]],
            }
            for seed, run in zip(seeds, checked["per_seed"])
        ],
    }


@app.command("tune")
def tune_cmd(
    scenario_file: Path = typer.Argument(..., metavar="SCENARIO"),
    max_utilization: Optional[float] = typer.Option(
        None, "--max-utilization", help="inspector utilization, share"
    ),
    max_p95_clearance_hours: Optional[float] = typer.Option(None, "--max-p95-clearance-hours"),
    max_mean_wait_hours: Optional[float] = typer.Option(None, "--max-mean-wait-hours"),
    vary: str = typer.Option("policy.random_ratio", "--vary", help="the ratio to tune"),
    ratio_range: str = typer.Option("0:0.2", "--range", help="low:high of the ratio searched"),
    capacity: Optional[str] = typer.Option(
        None,
        "--capacity",
        help="e.g. inspectors.count=20:60:5, or on any "
        "scenario (several sites too) inspectors.scale=0.8:1.2:0.1",
    ),
    ratio: Optional[float] = typer.Option(None, "--ratio", help="fix the ratio; find the smallest capacity"),
    replications: int = typer.Option(4, "--replications", "-r", min=2),
    tolerance: float = typer.Option(0.0025, "--tolerance", help="ratio precision of the search"),
    months: Optional[int] = typer.Option(
        None, "--months", help="measured months (after the scenario's warm-up)"
    ),
    overrides: List[str] = typer.Option([], "--set"),
    workers: Optional[int] = WORKERS,
    scheduler: Optional[str] = SCHEDULER,
    warm: Optional[Path] = WARM,
    fixed_capacity: Optional[float] = typer.Option(
        None,
        "--fixed-capacity",
        min=0.0001,
        max=1,
        help="hold the computer's selections at this share of "
        "declarations (policy.expected_rate) and vary the random share of it (--shares)",
    ),
    shares: str = typer.Option(
        "0:0.9:0.1", "--shares", help="random shares of the fixed capacity, start:stop:step"
    ),
    precision: float = typer.Option(
        0.005,
        "--precision",
        min=0,
        help="required 95%% half-width of the monthly compliance estimate (0.005 = ±0.5 percentage points)",
    ),
    out: Path = typer.Option(Path("out/frontier"), "--out", help="folder for frontier.csv and frontier.png"),
    sensitivity: List[str] = typer.Option(
        [],
        "--sensitivity",
        help="with --fixed-capacity: rerun the answer at the low and high value of an assumption "
        "(violation-level, goods-effects, detection, turnover, deterrence, or all); repeatable",
    ),
) -> None:
    """The largest random ratio each capacity can carry within the limits, or the smallest capacity for a
    ratio; or, with --fixed-capacity, which random share of a fixed capacity to choose."""
    from simulation import scenario as scenarios  # loaded by the commands that read a scenario

    need("sim", *SIM_MODULES, "dask")
    from simulation import sweep as sweeps
    from simulation import tuning

    limits = tuning.Limits(max_utilization, max_p95_clearance_hours, max_mean_wait_hours)
    if fixed_capacity is not None:
        return _fixed_capacity(
            scenario_file,
            months,
            overrides,
            limits,
            fixed_capacity,
            shares,
            precision,
            replications,
            out,
            workers,
            scheduler,
            sensitivity,
            warm,
        )
    if sensitivity:
        fail("--sensitivity goes with --fixed-capacity (the answer it reruns)")
    if not limits.items():
        fail("give at least one limit: --max-utilization, --max-p95-clearance-hours or --max-mean-wait-hours")
    raw = _sweep_inputs(scenario_file, months, overrides)
    horizon = raw.get("horizon") or {}
    default_months = scenarios.Horizon.model_fields["months"].default
    if (
        months is None
        and not horizon.get("days")
        and int(horizon.get("months", default_months)) < tuning.MIN_MONTHS
    ):
        scenarios.set_path(raw, "horizon.months", tuning.MIN_MONTHS)  # a steady state needs months to show
    try:
        axis = sweeps.parse_axis(capacity) if capacity else None
        low, high = (float(x) for x in ratio_range.split(":"))
    except InputError as e:
        fail(str(e))
    except ValueError:
        fail(f"--range {ratio_range!r}: expected low:high, e.g. 0:0.2")
    if ratio is not None and axis is None:
        fail("--ratio needs --capacity: which capacity values to search")
    base = str(scenario_file.parent.resolve())
    with sweeps.Runner(workers, scheduler, warm) as runner:
        say = lambda line: console(stderr=True).print(  # noqa: E731
            f"  probe {line}", markup=False, highlight=False, soft_wrap=True
        )
        if ratio is None:
            table = tuning.tune_ratio(
                raw, base, runner, limits, vary, low, high, axis, replications, tolerance, say
            )
        else:
            table = tuning.tune_capacity(raw, base, runner, limits, vary, ratio, axis, replications, say)
    print(table.round(4).to_string(index=False))
    print(_decision(table, limits, vary, ratio, axis, replications))


def _fixed_capacity(
    scenario_file,
    months,
    overrides,
    limits,
    capacity,
    shares_text,
    precision,
    replications,
    out,
    workers,
    scheduler,
    sensitivity=(),
    warm=None,
) -> None:
    from simulation import plots, tuning
    from simulation import sweep as sweeps

    raw = _sweep_inputs(scenario_file, months, overrides)
    names = _assumption_names(raw, scenario_file, list(sensitivity))  # checked before any run
    try:
        start, stop, step = (float(x) for x in shares_text.split(":"))
        shares = (
            [round(start + k * step, 6) for k in range(int(round((stop - start) / step)) + 1)]
            if step > 0
            else []
        )
    except ValueError:
        fail(f"--shares {shares_text!r}: expected start:stop:step, e.g. 0:0.9:0.1")
    if not shares or min(shares) < 0 or max(shares) > 1:
        fail(f"--shares {shares_text!r}: shares lie in [0, 1], with a positive step")
    base = str(scenario_file.parent.resolve())
    with sweeps.Runner(workers, scheduler, warm) as runner, _bar() as bar:
        task = bar.add_task(
            f"{len(shares)} shares x {replications} replications", total=len(shares) * replications
        )
        result = tuning.fixed_capacity(
            raw,
            base,
            runner,
            capacity,
            shares,
            precision,
            limits,
            replications,
            lambda done, total: bar.update(task, completed=done),
        )
    out.mkdir(parents=True, exist_ok=True)
    columns = [
        "share",
        "random_ratio",
        "random_of_selections",
        "computer_rate",
        "violations_found_per_month",
        "violations_found_per_month_low",
        "violations_found_per_month_high",
        "undetected_change",
        "monthly_half_width",
        "monthly_half_width_high",
        "inspections",
        "pure_random_share",
        "p95_clearance_h",
        "inspector_utilization",
        "meets",
    ]
    result.table.to_csv(out / "frontier.csv", index=False, float_format="%.6g")
    plots.frontier(result, out / "frontier.png")
    print(result.table[columns].round(4).to_string(index=False))
    print(result.sentence())
    print(tuning.randomness_sentence(result))
    console(stderr=True).print(f"wrote {out / 'frontier.csv'} and {out / 'frontier.png'}", highlight=False)
    if names:
        say = lambda line: console(stderr=True).print(f"  {line}", markup=False, highlight=False)  # noqa: E731
        try:
            with sweeps.Runner(workers, scheduler, warm) as runner:
                table, frontiers = tuning.sensitivity(
                    raw, base, runner, capacity, shares, precision, limits, replications, names, say, result
                )
        except InputError as e:
            fail(str(e))
        table.to_csv(out / "sensitivity.csv", index=False, float_format="%.6g")
        frontiers.to_csv(out / "sensitivity_frontiers.csv", index=False, float_format="%.6g")
        plots.sensitivity(result, frontiers, out / "sensitivity.png")
        print(table.round(4).to_string(index=False))
        print(tuning.sensitivity_sentence(result, table))
        print(tuning.randomness_sentence(result, frontiers))
        console(stderr=True).print(
            f"wrote {out / 'sensitivity.csv'}, {out / 'sensitivity_frontiers.csv'} and "
            f"{out / 'sensitivity.png'}",
            highlight=False,
        )


def _assumption_names(raw: dict, scenario_file: Path, asked: list[str]) -> list[str]:
    from simulation import scenario as scenarios
    from simulation import tuning

    known = list(
        tuning.assumptions(scenarios.validate(copy.deepcopy(raw), str(scenario_file), scenario_file.parent))
    )
    names = known if "all" in asked else asked
    unknown = [n for n in names if n not in known]
    if unknown:
        fail(f"--sensitivity: unknown {', '.join(unknown)}; known: {', '.join(known)} or all")
    return names


def _decision(table, limits, vary, ratio, axis, replications) -> str:
    limit_text = ", ".join(f"{m} <= {v:g}" for m, v in limits.items())
    if ratio is not None:
        safe = table.iloc[0][f"{axis.path} (recommended)"]
        return (
            f"decision: with {vary} = {ratio:g}, the smallest {axis.path} whose 95% intervals keep "
            f"{limit_text} is {safe:g}"
            if safe == safe
            else f"decision: no {axis.path} tried is enough"
        )
    lines = []
    for _, row in table.iterrows():
        where = f"with {axis.path} = {row[axis.path]:g}: " if axis else ""
        if row["recommended"] != row["recommended"]:
            lines.append(f"decision: {where}even the lowest {vary} breaks {limit_text}")
        else:
            lines.append(
                f"decision: {where}{vary} up to {row['recommended']:.4g} keeps {limit_text} at 95% "
                f"({replications} replications); the boundary lies in [{row['recommended']:.4g}, "
                f"{row['optimistic']:.4g}], best estimate {row['estimate']:.4g}"
            )
    return "\n".join(lines)


def _swept(raw, scenario_file: Path, axes, replications: int, runner, label: str):
    """A sweep of the scenario file's settings, with a bar of runs done."""
    from simulation import sweep as sweeps

    with _bar() as bar:
        task = bar.add_task(label, total=len(sweeps.grid(axes)) * replications)
        return sweeps.sweep(
            raw,
            scenario_file.parent.resolve(),
            axes,
            replications,
            runner,
            lambda done, n: bar.update(task, completed=done),
        )


def _bar() -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        console=console(stderr=True),
    )


def main() -> None:
    app()
