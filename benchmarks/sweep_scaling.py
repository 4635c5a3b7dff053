"""Speed-up of replications on all local cores over serial: the process pool the sweeps use, and a
dask LocalCluster (what they used before, and what `--scheduler` still reaches) for reference.

  serial      R replications of the scenario one after the other in this process
  pool        the same R on the Runner's process pool, start-up and shut-down included
  cluster     the same R on a LocalCluster with one worker per core, start-up and shut-down included
Usage: python benchmarks/sweep_scaling.py [R] [DAYS]      (default 8 replications of 90 baseline days)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from simulation import scenario, sweep

ROOT = Path(__file__).resolve().parents[1]


def timed_pool(raw: dict, base: str, tasks: list) -> tuple[float, list]:
    start = time.perf_counter()
    with sweep.Runner() as runner:
        outcomes = runner.map(raw, base, tasks)
    return time.perf_counter() - start, outcomes


def timed_cluster(raw: dict, base: str, tasks: list) -> tuple[float, list]:
    from dask.distributed import Client, LocalCluster

    start = time.perf_counter()
    with LocalCluster(
        n_workers=os.cpu_count(), threads_per_worker=1, dashboard_address=None, silence_logs=40
    ) as c:
        with Client(c) as client:
            futures = [client.submit(sweep.run_one, raw, base, t.params, t.seed, pure=False) for t in tasks]
            outcomes = client.gather(futures)
    return time.perf_counter() - start, outcomes


def main(replications: int, days: int) -> None:
    raw = scenario.read_raw(ROOT / "scenarios/baseline.yaml")
    raw["horizon"] = {"start": "2026-01-01", "days": days}
    base = str(ROOT / "scenarios")
    tasks = sweep.tasks_for([{}], replications, base_seed=1)
    start = time.perf_counter()
    with sweep.Runner(workers=0) as runner:
        serial = runner.map(raw, base, tasks)
    serial_s = time.perf_counter() - start
    pool_s, pool = timed_pool(raw, base, tasks)
    cluster_s, cluster = timed_cluster(raw, base, tasks)
    same = all(a.value["whole"] == b.value["whole"] for a, b in zip(serial, pool))
    same_cluster = all(a.value["whole"] == b["whole"] for a, b in zip(serial, cluster))
    print(f"{replications} replications x {days} baseline days, {os.cpu_count()} cores")
    print(f"serial                         {serial_s:8.2f} s")
    print(f"process pool (start to stop)   {pool_s:8.2f} s   speed-up {serial_s / pool_s:.2f}x (aim 1.7x)")
    print(f"dask LocalCluster (same)       {cluster_s:8.2f} s   speed-up {serial_s / cluster_s:.2f}x")
    print(f"results equal serial: pool {same}, cluster {same_cluster}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8, int(sys.argv[2]) if len(sys.argv) > 2 else 90)
