"""Sweeps: the scenario over a grid of settings, R replications per point, on dask.distributed.

Replication k of every grid point runs with the same seed (scenario seed + k), so every point sees
the same declarations and the same draws (common random numbers): the random sample at a 1% ratio is
a subset of the one at 2%, and differences between points are the policy's, not noise.

Runs go to a process pool on this machine's cores when no scheduler is given (workers forked from a
server that imported the model once; a dask LocalCluster cost 13-17 s to start and ran slower than
serial on a busy 2-core machine), or to an existing dask.distributed scheduler (`tcp://HOST:PORT`), so the
same command scales to a cluster. `workers=0` runs in this process, one after the other (what tests
compare the pool against).
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import itertools
import math
import os
import re
import traceback
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
from scipy import stats

from engine.errors import InputError
from engine.files import parse_yaml
from simulation import calibration, metrics
from simulation import scenario as scenarios
from simulation import warm as warms

WHOLE_RUN = list(metrics.RUN)  # the registry's whole-run figures


@dataclass(frozen=True)
class Axis:
    path: str
    values: tuple


def parse_axis(text: str) -> Axis:
    """'policy.random_ratio=0.01:0.05:0.01' (start:stop:step, stop included) or
    'inspectors.count=20,30,40'."""
    if "=" not in text:
        raise InputError(f"--grid {text!r}: expected path=values, e.g. policy.random_ratio=0.01:0.10:0.01")
    path, spec = (part.strip() for part in text.split("=", 1))
    if not path or not spec:
        raise InputError(f"--grid {text!r}: both a field path and values are needed")
    if ":" in spec:
        return Axis(path, _range(text, spec))
    values = tuple(parse_yaml(v, f"--grid {spec}") for v in spec.split(",") if v.strip())
    if not values:
        raise InputError(f"--grid {text!r}: no values")
    return Axis(path, values)


def _range(text: str, spec: str) -> tuple:
    parts = spec.split(":")
    try:
        start, stop, step = (Decimal(p) for p in parts)
    except (ValueError, InvalidOperation):
        raise InputError(f"--grid {text!r}: a range is start:stop:step with three numbers") from None
    if step <= 0 or stop < start:
        raise InputError(f"--grid {text!r}: a range needs step > 0 and stop >= start")
    count = int((stop - start) / step) + 1
    if count > 1000:
        raise InputError(f"--grid {text!r}: {count} values; at most 1000")
    integral = all(p == p.to_integral_value() for p in (start, stop, step))
    return tuple(int(start + k * step) if integral else float(start + k * step) for k in range(count))


def grid(axes: list[Axis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, as {path: value}."""
    return [
        dict(zip([a.path for a in axes], combo)) for combo in itertools.product(*(a.values for a in axes))
    ]


# ------------------------------------------------------------------ one run, anywhere


def varied_spec(raw: dict, base_dir: str, params: dict[str, Any]):
    varied = copy.deepcopy(raw)
    for path, value in params.items():
        scenarios.set_path(varied, path, value)
    return scenarios.validate(varied, "scenario", Path(base_dir))


def run_one(
    raw: dict, base_dir: str, params: dict[str, Any], seed: int, warm: str | None = None
) -> dict[str, Any]:
    """Validate the scenario with these settings and simulate it; plain data back (picklable).
    With `warm` (a folder of warm states, see `warm_up`), start from the one of its warm-up."""
    from simulation.model import run  # imported on the worker

    spec = varied_spec(raw, base_dir, params).model_copy(update={"seed": seed})
    start = Path(warm) / warms.key(spec)[:16] if warm is not None else None
    result = run(spec, from_warm=start)
    provenance = {k: result.summary[k] for k in ("scenario_hash", "rules_version", "package_version")}
    return {
        "whole": whole_run(result.summary, result.monthly),
        "monthly": result.monthly.to_dict("records"),
        "provenance": provenance,
    }


# what a warm-up keeps of the base scenario whatever a point varies: the policy in force and the
# staff today, so every point of a sweep starts from the same office ("from today on")
TODAY = (*warms.WHAT_IF, "inspectors", "facilities")


def shaping(params: dict[str, Any]) -> dict[str, Any]:
    """The settings of a point that shape its warm-up: all but the what-ifs and the staff."""
    return {path: value for path, value in params.items() if path.split(".")[0] not in TODAY}


def warm_up(raw: dict, base_dir: str, params: dict[str, Any], seed: int, warm: str) -> str:
    """Simulate the warm-up the point (`params`, `seed`) starts from, under the base scenario's
    policy and staff, and save it in `warm` under its key (kept when it is there already). It is
    simulated with one measured day, so it equals `run --save-warm` with `horizon.days=1` (the
    declarations drawn depend on the horizon's length)."""
    from simulation.model import run  # imported on the worker

    spec = varied_spec(raw, base_dir, {**shaping(params), "horizon.days": 1}).model_copy(
        update={"seed": seed}
    )
    folder = Path(warm) / warms.key(spec)[:16]
    if not (folder / warms.FILE).exists():
        # written aside and moved in whole: two workers warming the same point never mix files
        scratch = Path(warm) / f".{folder.name}-{os.getpid()}"
        run(spec, save_warm=scratch)
        folder.mkdir(parents=True, exist_ok=True)
        (scratch / warms.FILE).replace(folder / warms.FILE)
        scratch.rmdir()
    return str(folder)


def whole_run(summary: dict, monthly: pd.DataFrame) -> dict[str, float]:
    low, high = summary["noncompliance_ci"]
    out = {k: summary[k] for k in WHOLE_RUN if k in summary}
    out["noncompliance_ci_width"] = high - low if summary.get("noncompliance_defined", True) else math.nan
    out["monthly_half_width"] = float(
        ((monthly["noncompliance_ci_high"] - monthly["noncompliance_ci_low"]) / 2).mean()
    )
    out["violations_found_per_month"] = summary["violations_found"] / max(len(monthly), 1)
    out["violations_per_month"] = summary["violations_true"] / max(len(monthly), 1)
    out["violations_undetected_per_month"] = out["violations_per_month"] - out["violations_found_per_month"]
    per_month = summary["inspections"] / max(len(monthly), 1)
    out["backlog_growth"] = backlog_slope(monthly["backlog_end"].to_numpy(float)) / max(per_month, 1.0)
    # the change over the run relative to its level where it rises significantly, else 0 (a month's
    # noise, or February's dip, is not a trend; too few months to fit a line judge nothing)
    clearance = calibration.drift(monthly["p95_clearance_h"])
    out["p95_clearance_trend"] = (
        clearance.change / clearance.level if clearance.rising and clearance.level else 0.0
    )
    # the limits hold in every month, not on average: a quiet February hid eleven busy months
    out["worst_month_utilization"] = float(monthly["inspector_utilization"].max())
    out["worst_month_p95_clearance_h"] = float(monthly["p95_clearance_h"].max())
    return {k: (math.nan if v is None else float(v)) for k, v in out.items()}


def backlog_slope(backlog: np.ndarray) -> float:
    """Least-squares growth of the month-end backlog, per month (the first month is warm-up).
    `backlog_growth` divides it by a month's inspections: 0.02 = the queue grows by 2% of a month's work a
    month."""
    later = backlog[1:]
    if len(later) < 2:
        return 0.0
    return float(np.polyfit(np.arange(len(later)), later, 1)[0])


# ------------------------------------------------------------------ where runs execute


@dataclass
class Task:
    point: int
    params: dict[str, Any]
    replication: int
    seed: int


@dataclass
class Outcome:
    task: Task
    value: dict[str, Any] | None = None
    error: str = ""


class Runner:
    """Runs tasks serially (workers=0), on a local process pool, or on an existing dask scheduler.

    With `warm` (a folder), every run starts from a saved warm-up instead of simulating its own: the
    base scenario's policy and staff for the warm-up months, one per seed (and per varied setting
    that shapes the warm-up), made on first use and kept. Its answers are then what-ifs "from today
    on": the first measured months after a change, not the steady state under the new settings."""

    def __init__(
        self, workers: int | None = None, scheduler: str | None = None, warm: str | Path | None = None
    ):
        self.workers, self.scheduler = workers, scheduler
        self.warm = str(warm) if warm is not None else None
        self._client = self._pool = None

    def __enter__(self) -> Runner:
        if self.scheduler:
            from dask.distributed import Client

            self._client = Client(self.scheduler)
        elif self.workers != 0:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            n = self.workers or os.cpu_count() or 1
            # a fork server, not a fork of this process: the caller may hold threads (a progress
            # bar's), which fork would copy half-way; the server imports the model once and each
            # worker is forked from it ready to run
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["simulation.model", "simulation.sweep"])
            self._pool = ProcessPoolExecutor(max_workers=n, mp_context=context)
        return self

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            self._client.close()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def map(
        self, raw: dict, base_dir: str, tasks: list[Task], progress: Callable[[int, int], None] | None = None
    ) -> list[Outcome]:
        """All outcomes in task order; a failing run becomes an Outcome with its error."""
        outcomes: list[Outcome | None] = [None] * len(tasks)
        job: Callable[..., Any] = run_one
        if self.warm is not None:
            job = functools.partial(run_one, warm=self.warm)
            for index, outcome in self._warm_ups(raw, base_dir, tasks):
                outcomes[index] = outcome  # a failed warm-up fails the runs that start from it
        waiting = [i for i, o in enumerate(outcomes) if o is None]
        done = len(tasks) - len(waiting)
        for index, outcome in self._completed(job, raw, base_dir, [tasks[i] for i in waiting]):
            outcomes[waiting[index]] = outcome
            done += 1
            if progress:
                progress(done, len(tasks))
        return outcomes  # type: ignore[return-value]

    def _warm_ups(self, raw, base_dir, tasks) -> Iterable[tuple[int, Outcome]]:
        """One warm-up per distinct start, run before the runs that need it (in parallel with each
        other); the failed ones as outcomes of every task that needed them."""
        starts: dict[tuple, list[int]] = {}
        for index, t in enumerate(tasks):
            start = tuple(sorted((k, repr(v)) for k, v in shaping(t.params).items()))
            starts.setdefault((start, t.seed), []).append(index)
        groups = list(starts.values())
        job = functools.partial(warm_up, warm=self.warm)
        for at, outcome in self._completed(job, raw, base_dir, [tasks[group[0]] for group in groups]):
            if outcome.error:
                for index in groups[at]:
                    yield index, Outcome(tasks[index], error=f"warm-up: {outcome.error}")

    def _completed(self, job, raw, base_dir, tasks) -> Iterable[tuple[int, Outcome]]:
        if self._pool is not None:
            from concurrent.futures import as_completed as pool_completed

            pending = {
                self._pool.submit(job, raw, base_dir, t.params, t.seed): i for i, t in enumerate(tasks)
            }
            for future in pool_completed(pending):
                index, task = pending[future], tasks[pending[future]]
                try:
                    yield index, Outcome(task, future.result())
                except Exception as err:  # raised in the worker, or the worker died
                    yield index, Outcome(task, error=_describe(err))
            return
        if self._client is None:
            for index, task in enumerate(tasks):
                try:
                    yield index, Outcome(task, job(raw, base_dir, task.params, task.seed))
                except Exception as err:  # one failing point must not lose the others
                    yield index, Outcome(task, error=_describe(err))
            return
        from dask.distributed import as_completed

        futures = {
            self._client.submit(job, raw, base_dir, t.params, t.seed, pure=False): i
            for i, t in enumerate(tasks)
        }  # the scenario is a small mapping: sent with each task
        for future in as_completed(futures):
            index, task = futures[future], tasks[futures[future]]
            try:
                yield index, Outcome(task, future.result())
            except Exception as err:  # raised on the worker, or the task was lost
                yield index, Outcome(task, error=_describe(err))


def _describe(err: BaseException) -> str:
    if isinstance(err, InputError):
        return str(err)
    return "".join(traceback.format_exception_only(type(err), err)).strip()


# ------------------------------------------------------------------ a sweep and its tables


@dataclass
class SweepResults:
    runs: pd.DataFrame  # one row per (point, replication): settings, seed, whole-run figures
    monthly: pd.DataFrame  # one row per (point, replication, month)
    summary: pd.DataFrame  # one row per point: mean and 95% interval of every whole-run figure
    monthly_summary: pd.DataFrame  # one row per (point, month): mean and 95% interval of every monthly metric
    failures: list[Outcome] = field(default_factory=list)
    axes: list[Axis] = field(default_factory=list)


def tasks_for(points: list[dict], replications: int, base_seed: int) -> list[Task]:
    return [Task(p, params, k, base_seed + k) for p, params in enumerate(points) for k in range(replications)]


def sweep(
    raw: dict,
    base_dir: str | Path,
    axes: list[Axis],
    replications: int,
    runner: Runner,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResults:
    base_seed = int(raw.get("seed", 1))
    tasks = tasks_for(grid(axes), replications, base_seed)
    outcomes = runner.map(raw, str(base_dir), tasks, progress)
    return tabulate(outcomes, axes)


def tabulate(outcomes: list[Outcome], axes: list[Axis]) -> SweepResults:
    good = [o for o in outcomes if o.value is not None]
    runs = pd.DataFrame(
        [
            {
                "point": o.task.point,
                **o.task.params,
                "replication": o.task.replication,
                "seed": o.task.seed,
                **o.value["whole"],
                **o.value["provenance"],
            }
            for o in good
        ]
    )
    monthly = pd.DataFrame(
        [
            {
                "point": o.task.point,
                **o.task.params,
                "replication": o.task.replication,
                "seed": o.task.seed,
                **row,
            }
            for o in good
            for row in o.value["monthly"]
        ]
    )
    keys = ["point", *[a.path for a in axes]]
    summary = interval_table(runs, keys, WHOLE_RUN) if len(runs) else pd.DataFrame()
    metric_columns = [c for c in monthly.columns if c not in (*keys, "replication", "seed", "month")]
    monthly_summary = (
        interval_table(monthly, [*keys, "month"], metric_columns) if len(monthly) else pd.DataFrame()
    )
    return SweepResults(
        runs, monthly, summary, monthly_summary, [o for o in outcomes if o.value is None], axes
    )


def check_compare(spec: scenarios.Scenario, since: str) -> None:
    """Before any run: `since` (YYYY-MM) must leave measured months on both of its sides."""
    horizon = spec.horizon
    first = horizon.measured_start.strftime("%Y-%m")
    last = (horizon.end - dt.timedelta(days=1)).strftime("%Y-%m")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", since):
        raise InputError(f"--compare-from {since!r}: a month, YYYY-MM")
    if not first < since <= last:
        raise InputError(
            f"--compare-from {since}: the measured months ({first} to {last}) must lie on both sides of it"
        )


def compare(results: SweepResults, since: str, metric: str = "violations_found") -> pd.DataFrame:
    """Per point, `metric` a month before and from month `since` (YYYY-MM), and from `since` the
    paired difference from the first point, seed by seed (common random numbers make the pairs),
    each with its 95% interval over the replications: what a change during the run (a drift, a
    policy from today) does to each setting."""
    keys = [axis.path for axis in results.axes]
    monthly = results.monthly.assign(after=results.monthly["month"].astype(str) >= since)
    per_run = monthly.groupby(["point", *keys, "seed", "after"], sort=True)[metric].mean().unstack("after")
    per_run = per_run.rename(columns={False: "before", True: "after"}).reset_index()
    if "after" not in per_run or "before" not in per_run:
        raise InputError(f"--compare-from {since}: the measured months must lie on both sides of it")
    per_run["gain"] = paired_gain(per_run, "point", "after")
    rows = []
    for group, part in per_run.groupby(["point", *keys], sort=True):
        row = dict(zip(["point", *keys], group))
        for name in ("before", "after", "gain"):
            row.update(mean_interval(part[name].to_numpy(float), f"{metric}_{name}"))
        rows.append(row)
    return pd.DataFrame(rows)


def paired_gain(frame: pd.DataFrame, by: str, column: str) -> pd.Series:
    """Each row's `column` less that of the row with the same seed at the first value of `by`: common
    random numbers make the pairs (the same declarations and draws), so a difference is known far
    more tightly than either value. A seed missing at the first value gives NaN, which
    `mean_interval` leaves out."""
    first = frame[frame[by] == frame[by].min()].set_index("seed")[column]
    return frame[column] - frame["seed"].map(first)


def interval_table(frame: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Per group: replications, and each metric's mean with a 95% t-interval over replications."""
    rows = []
    for group, part in frame.groupby(keys, sort=True, dropna=False):
        row = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        row["replications"] = len(part)
        for metric in metrics:
            row.update(mean_interval(part[metric].to_numpy(float), metric))
        rows.append(row)
    return pd.DataFrame(rows)


def mean_interval(values: np.ndarray, name: str) -> dict[str, float]:
    """The mean over replications with a 95% interval that stays in the figure's physical range: a
    t-interval on the logit scale for a share (0..1), on the log scale for a figure that cannot be
    negative (times, counts), on the figure's own scale otherwise (a trend, a growth). The standard
    error is carried to the new scale by the delta method, so far from a bound the interval is the
    plain t-interval, and near one it is squeezed on that side instead of crossing it."""
    values = values[~np.isnan(values)]
    mean = float(values.mean()) if len(values) else math.nan
    if len(values) < 2 or np.all(values == values[0]):
        half = 0.0 if len(values) >= 2 else math.nan
        return {name: mean, f"{name}_low": mean - half, f"{name}_high": mean + half}
    se = float(values.std(ddof=1) / math.sqrt(len(values)))
    t = float(stats.t.ppf(0.975, len(values) - 1))
    scale = range_of(name)
    if scale == "share" and 0 < mean < 1:
        centre, half = math.log(mean / (1 - mean)), t * se / (mean * (1 - mean))
        low, high = (1 / (1 + math.exp(-(centre + s * half))) for s in (-1, 1))
    elif scale in ("share", "positive") and mean > 0:
        low, high = (mean * math.exp(s * t * se / mean) for s in (-1, 1))
    else:
        low, high = mean - t * se, mean + t * se
    return {name: mean, f"{name}_low": low, f"{name}_high": high}


# What cannot be negative, by unit in the registries; a share may also exceed 1 where the unit says
# "share of" something (utilization over on-post hours counts overtime): those are only non-negative.
_POSITIVE_UNITS = (
    "count",
    "hours",
    "declarations per run",
    "declarations per month",
    "share of on-post hours",
)


def range_of(name: str) -> str | None:
    """'share' (0..1), 'positive' (0..inf) or None (any sign) for a figure of the registries."""
    unit = _UNITS.get(name)
    return "share" if unit == "share" else "positive" if unit in _POSITIVE_UNITS else None


_UNITS = {name: m.unit for m in (*metrics.METRICS, *metrics.RUN_METRICS) for name in m.names}


def write(results: SweepResults, out: Path, since: str | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [
        out / "runs.parquet",
        out / "monthly.parquet",
        out / "summary.csv",
        out / "monthly_summary.csv",
    ]
    results.runs.to_parquet(written[0], index=False)
    results.monthly.to_parquet(written[1], index=False)
    results.summary.to_csv(written[2], index=False, float_format="%.6g")
    results.monthly_summary.to_csv(written[3], index=False, float_format="%.6g")
    if results.failures:
        failures = out / "failures.csv"
        pd.DataFrame(
            [
                {"point": f.task.point, **f.task.params, "seed": f.task.seed, "error": f.error}
                for f in results.failures
            ]
        ).to_csv(failures, index=False)
        written.append(failures)
    if len(results.summary):
        from simulation import plots

        written += plots.write_sweep(results, out, since)
    return written
