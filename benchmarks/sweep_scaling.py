"""Speed-up of replications on all local cores (dask LocalCluster) over serial, and the cluster's
per-run overhead.

  serial      R replications of the scenario one after the other in this process
  cluster     the same R on a LocalCluster with one worker per core (start-up and shut-down timed apart)
  overhead    per-task round trip of a no-op on the running cluster
Usage: python benchmarks/sweep_scaling.py [R] [DAYS]      (default 8 replications of 90 baseline days)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from simulation import scenario, sweep

ROOT = Path(__file__).resolve().parents[1]


def noop(x: int) -> int:
    return x


def main(replications: int, days: int) -> None:
    raw = scenario.read_raw(ROOT / "scenarios/baseline.yaml")
    raw["horizon"] = {"start": "2026-01-01", "days": days}
    base = str(ROOT / "scenarios")
    tasks = sweep.tasks_for([{}], replications, base_seed=1)
    start = time.perf_counter()
    with sweep.Runner(workers=0) as runner:
        serial = runner.map(raw, base, tasks)
    serial_s = time.perf_counter() - start

    start = time.perf_counter()
    runner = sweep.Runner().__enter__()
    up_s = time.perf_counter() - start
    start = time.perf_counter()
    parallel = runner.map(raw, base, tasks)
    parallel_s = time.perf_counter() - start
    client = runner._client
    start = time.perf_counter()
    client.gather(client.map(noop, range(200)))
    overhead_ms = (time.perf_counter() - start) / 200 * 1000
    start = time.perf_counter()
    runner.__exit__(None, None, None)
    down_s = time.perf_counter() - start

    same = all(a.value["whole"] == b.value["whole"] for a, b in zip(serial, parallel))
    print(f"{replications} replications x {days} baseline days, {os.cpu_count()} cores")
    print(f"serial                 {serial_s:8.2f} s")
    print(f"LocalCluster start     {up_s:8.2f} s")
    print(
        f"LocalCluster runs      {parallel_s:8.2f} s   speed-up {serial_s / parallel_s:.2f}x "
        f"({serial_s / (parallel_s + up_s + down_s):.2f}x with start and stop)"
    )
    print(f"LocalCluster stop      {down_s:8.2f} s")
    print(f"per-task overhead      {overhead_ms:8.2f} ms (no-op round trip)")
    print(f"parallel results equal serial: {same}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8, int(sys.argv[2]) if len(sys.argv) > 2 else 90)
