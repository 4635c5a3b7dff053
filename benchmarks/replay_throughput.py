"""Importing and evaluating a declaration log: rows per second and peak memory, beside a reference
measured in the same run, each step in its own process for a clean peak-memory figure:

  make      a synthetic log in the Korean file's format: the 3,000 shipped rows of
            tests/data/kcs_test_head.csv bootstrapped to N rows with new ids, spread over a year
  read      the reference: pandas reading the same CSV whole, as text (what any import must at least do)
  import    doublerandom's import (chunks of 200,000 rows, mapped, checked, written to Parquet)
  evaluate  doublerandom's evaluate: the derived rules, a 3% random ratio and an 8.4% budget
The issue's aims: the 54,000 Korean rows imported and evaluated in under 10 s together; 1,000,000
synthetic rows in under 60 s on one core with bounded memory.
Usage: python benchmarks/replay_throughput.py [ROWS]   (default 1,000,000)
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make(rows: int, path: Path) -> dict:
    import numpy as np
    import pandas as pd

    start = time.perf_counter()
    seed = pd.read_csv(ROOT / "tests/data/kcs_test_head.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(1)
    with open(path, "w") as out:
        for first in range(0, rows, 200_000):
            n = min(200_000, rows - first)
            chunk = seed.iloc[rng.integers(0, len(seed), n)].reset_index(drop=True)
            chunk["Declaration ID"] = [str(10**8 + first + i) for i in range(n)]
            day = (first + np.arange(n)) * 365 // rows  # in time order, as a log is
            chunk["Date"] = (pd.Timestamp("2022-01-01") + pd.to_timedelta(day, unit="D")).strftime("%Y-%m-%d")
            chunk.to_csv(out, index=False, header=first == 0)
    return {"seconds": time.perf_counter() - start}


def read(path: Path) -> dict:
    import pandas as pd

    start = time.perf_counter()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {"rows": len(frame), "seconds": time.perf_counter() - start}


def import_(path: Path, out: Path) -> dict:
    from replay.log import import_log
    from replay.mapping import Mapping

    start = time.perf_counter()
    report = import_log([path], Mapping.load(ROOT / "scenarios/mappings/kcs.yaml"), out)
    return {"rows": report.rows_kept, "seconds": time.perf_counter() - start}


def evaluate(out: Path) -> dict:
    from engine.rules import RuleSet
    from engine.selection import SelectionPolicy
    from replay import log as logs
    from replay.evaluate import evaluate as run

    start = time.perf_counter()
    result = run(
        logs.read(out),
        RuleSet.load(ROOT / "scenarios/rules/kcs_derived.yaml"),
        SelectionPolicy(random_ratio=0.03),
        budget=0.084,
    )
    return {"rows": result.rows, "seconds": time.perf_counter() - start}


def _child(step, args, queue) -> None:
    figures = step(*args)
    figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(figures)


def measured(step, *args) -> dict:
    queue = mp.get_context("spawn").Queue()
    process = mp.get_context("spawn").Process(target=_child, args=(step, args, queue))
    process.start()
    figures = queue.get()
    process.join()
    return figures


def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path, out = Path(folder) / "log.csv", Path(folder) / "imported"
        measured(make, rows, path)
        size = path.stat().st_size / 1e6
        reference = measured(read, path)
        imported = measured(import_, path, out)
        evaluated = measured(evaluate, out)
    print(f"{rows:,} rows ({size:.0f} MB of CSV), each step in its own process, one core:")
    for name, f in (
        ("pandas read_csv (reference)", reference),
        ("import", imported),
        ("evaluate", evaluated),
    ):
        print(
            f"  {name:28s} {f['seconds']:7.1f} s  {rows / f['seconds']:10,.0f} rows/s  peak "
            f"{f['peak_mb']:7.0f} MB"
        )
    total = imported["seconds"] + evaluated["seconds"]
    print(
        f"  import + evaluate: {total:.1f} s, {total / reference['seconds']:.1f}x the bare read "
        f"(aim for 1,000,000 rows: under 60 s)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
