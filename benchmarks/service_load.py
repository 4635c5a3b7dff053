"""Load on the HTTP service over loopback: decisions per second and latency at a few concurrency levels.

Starts `doublerandom serve` (one uvicorn process) on a temporary database with the baseline rules and
the demo roster, then posts fresh declarations over N concurrent connections (one asyncio client process), bounded in count and
time per level. Every decision is durably committed (SQLite WAL, synchronous=FULL) before it is answered.
Decisions arriving together share one commit (group commit), so one fsync makes several durable.
The reference, measured in the same run on the same disk: single-row SQLite transactions with the
same settings, one fsync each, which is what one-commit-per-decision could reach at best.
Usage: python benchmarks/service_load.py [REQUESTS_PER_LEVEL] [LEVELS, e.g. 1,4,8,16]
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAX_SECONDS_PER_LEVEL = 60


def setup(folder: Path) -> tuple[list[str], str]:
    key = folder / "draw.key"
    key.write_text("cd" * 32)
    keys = folder / "keys.yaml"
    from engine.service import key_digest
    keys.write_text(json.dumps({"keys": [{"name": "loader", "role": "selector", "key_sha256": key_digest("load-key")}]}))
    args = ["--rules", str(ROOT / "scenarios/rules/baseline.yaml"), "--db", str(folder / "load.db"),
            "--key-file", str(key), "--api-keys", str(keys), "--roster", str(ROOT / "scenarios/roster.yaml"),
            "--enterprises", str(ROOT / "scenarios/declarations/enterprises.csv")]
    return args, "load-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def declarations() -> list[dict]:
    return [json.loads(line) for line in (ROOT / "scenarios/declarations/sample.jsonl").read_text().splitlines()]


def level(url: str, key: str, pool: list[dict], clients: int, total: int, offset: int, health: bool = False) -> dict:
    """`clients` concurrent connections from one asyncio client process (cheaper than threads);
    `health` posts nothing and asks GET /health instead: the HTTP stack's own ceiling here."""
    return asyncio.run(_level(url, key, pool, clients, total, offset, health))


async def _level(url, key, pool, clients, total, offset, health) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + MAX_SECONDS_PER_LEVEL
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(http: httpx.AsyncClient, k: int) -> None:
        nonlocal errors
        for i in range(k, total, clients):
            if time.perf_counter() > deadline:
                return
            body = dict(pool[i % len(pool)], id=f"L{offset + i:08d}")
            start = time.perf_counter()
            try:
                answer = await (http.get("/health") if health else http.post("/declarations", json=body))
                ok = answer.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - start)
            errors += not ok

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=30, limits=limits) as http:
        await asyncio.gather(*(worker(http, k) for k in range(clients)))
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(ms), "per_s": len(ms) / wall, "p50": np.percentile(ms, 50),
            "p99": np.percentile(ms, 99), "errors": errors}


def fsync_reference(folder: Path, seconds: float = 3.0) -> float:
    """Commits per second of one-row transactions (WAL, synchronous=FULL) on this disk."""
    from engine import database
    db = database.open_database(folder / "reference.db")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        with db.transaction():
            db.execute("INSERT INTO t (v) VALUES (?)", ("x" * 500,))
        n += 1
    return n / (time.perf_counter() - start)


def main(total: int, levels: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        args, key = setup(Path(tmp))
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "engine", "serve", *args, "--port", str(port)], cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(url + "/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            pool, offset = declarations(), 0
            reference = fsync_reference(Path(tmp))
            print(f"reference: {reference:,.0f} one-row commits/s (WAL, synchronous=FULL) on this disk")
            for clients in (1, 8):
                ceiling = level(url, key, pool, clients, total, 0, health=True)
                print(f"reference: GET /health (no database, no rules) at {clients} clients: "
                      f"{ceiling['per_s']:,.0f} requests/s, p99 {ceiling['p99']:.1f} ms: the HTTP stack's ceiling")
            print(f"POST /declarations on loopback, one server process, {total} requests per level")
            print(f"{'clients':>7} {'requests':>9} {'decisions/s':>12} {'x ref':>6} {'p50 ms':>8} {'p99 ms':>8} "
                  f"{'errors':>7}")
            for clients in levels:
                r = level(url, key, pool, clients, total, offset)
                offset += total
                print(f"{r['clients']:>7} {r['requests']:>9} {r['per_s']:>12,.0f} {r['per_s'] / reference:>6.2f} "
                      f"{r['p50']:>8.1f} {r['p99']:>8.1f} {r['errors']:>7}")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000,
         [int(x) for x in sys.argv[2].split(",")] if len(sys.argv) > 2 else [1, 4, 8, 16])
