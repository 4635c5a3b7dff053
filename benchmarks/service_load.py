"""Load on the HTTP service over loopback: decisions per second and latency at a few concurrency levels.

Starts `doublerandom serve` (one uvicorn process) on a temporary database with the baseline rules and
the demo roster, then posts fresh declarations over N concurrent connections (one asyncio client process),
bounded in count and
time per level. Every decision is durably committed (SQLite WAL, synchronous=FULL) before it is answered.
Decisions arriving together share one commit (group commit), so one fsync makes several durable.
The reference, measured in the same run on the same disk: single-row SQLite transactions with the
same settings, one fsync each, which is what one-commit-per-decision could reach at best.

With `--db postgresql://…` it compares instead, in one run, at `--clients` (8) concurrent connections:
one instance on SQLite (the reference for the aim) beside 1, 2 and 4 `serve` processes (`--instances`)
on one PostgreSQL database, each set on a new schema; the clients are spread over the instances
(as a load balancer would). The aim (issue 15): two PostgreSQL instances at 1.5x one SQLite instance's
decisions/s with p99 under 50 ms.

Usage: python benchmarks/service_load.py [--requests N] [--levels 1,4,8,16]
       python benchmarks/service_load.py --db postgresql://postgres@127.0.0.1/test [--instances 1,2,4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAX_SECONDS_PER_LEVEL = 60
EXTRA: list[str] = []  # more serve options, e.g. --expected-rate 0.05


def setup(folder: Path, db: str | None = None) -> tuple[list[str], str]:
    key = folder / "draw.key"
    key.write_text("cd" * 32)
    keys = folder / "keys.yaml"
    from engine.apikeys import key_digest

    keys.write_text(
        json.dumps({"keys": [{"name": "loader", "role": "selector", "key_sha256": key_digest("load-key")}]})
    )
    args = [
        "--rules",
        str(ROOT / "scenarios/rules/baseline.yaml"),
        "--db",
        db or str(folder / "load.db"),
        "--key-file",
        str(key),
        "--api-keys",
        str(keys),
        "--roster",
        str(ROOT / "scenarios/roster.yaml"),
        "--enterprises",
        str(ROOT / "scenarios/declarations/enterprises.csv"),
        *EXTRA,
    ]
    return args, "load-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def declarations() -> list[dict]:
    return [
        json.loads(line) for line in (ROOT / "scenarios/declarations/sample.jsonl").read_text().splitlines()
    ]


def level(
    url: str | list[str],
    key: str,
    pool: list[dict],
    clients: int,
    total: int,
    offset: int,
    health: bool = False,
) -> dict:
    """`clients` concurrent connections from one asyncio client process (cheaper than threads),
    spread over the instances at `url`; `health` posts nothing and asks GET /health instead: the
    HTTP stack's own ceiling here."""
    return asyncio.run(
        _level([url] if isinstance(url, str) else url, key, pool, clients, total, offset, health)
    )


async def _level(urls, key, pool, clients, total, offset, health) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + MAX_SECONDS_PER_LEVEL
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    errors_seen: set[str] = set()

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
                if not ok:
                    errors_seen.add(f"{answer.status_code} {answer.text[:120]}")
            except httpx.HTTPError as err:
                ok = False
                errors_seen.add(repr(err))
            latencies.append(time.perf_counter() - start)
            errors += not ok

    start = time.perf_counter()
    https = [
        httpx.AsyncClient(base_url=u, headers={"X-API-Key": key}, timeout=30, limits=limits) for u in urls
    ]
    try:
        await asyncio.gather(*(worker(https[k % len(https)], k) for k in range(clients)))
    finally:
        for http in https:
            await http.aclose()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    if errors_seen:
        print("  errors:", "; ".join(sorted(errors_seen)[:3]), file=sys.stderr)
    return {
        "clients": clients,
        "requests": len(ms),
        "per_s": len(ms) / wall,
        "p50": np.percentile(ms, 50),
        "p99": np.percentile(ms, 99),
        "errors": errors,
    }


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


def start(args: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "engine", "serve", *args, "--port", str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health").status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit(f"the server on {url} did not start")


def stop(servers: list[subprocess.Popen]) -> None:
    for server in servers:
        server.terminate()
    for server in servers:
        server.wait()


def main(total: int, levels: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        args, key = setup(Path(tmp))
        server, url = start(args)
        try:
            pool, offset = declarations(), 0
            reference = fsync_reference(Path(tmp))
            print(f"reference: {reference:,.0f} one-row commits/s (WAL, synchronous=FULL) on this disk")
            for clients in (1, 8):
                ceiling = level(url, key, pool, clients, total, 0, health=True)
                print(
                    f"reference: GET /health (no database, no rules) at {clients} clients: "
                    f"{ceiling['per_s']:,.0f} requests/s, p99 {ceiling['p99']:.1f} ms: the HTTP stack's "
                    f"ceiling"
                )
            print(f"POST /declarations on loopback, one server process, {total} requests per level")
            print(
                f"{'clients':>7} {'requests':>9} {'decisions/s':>12} {'x ref':>6} {'p50 ms':>8} "
                f"{'p99 ms':>8} "
                f"{'errors':>7}"
            )
            for clients in levels:
                r = level(url, key, pool, clients, total, offset)
                offset += total
                print(
                    f"{r['clients']:>7} {r['requests']:>9} {r['per_s']:>12,.0f} "
                    f"{r['per_s'] / reference:>6.2f} "
                    f"{r['p50']:>8.1f} {r['p99']:>8.1f} {r['errors']:>7}"
                )
        finally:
            stop([server])


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by these processes and by every PostgreSQL process
    (its backends serve the instances): what each decision costs the machine, beside its rate."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if int(entry.name) in pids or comm == "postgres":
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run_one(
    tmp: Path, backend: str, n: int, total: int, clients: int, postgres: str, pool: list[dict]
) -> dict:
    """One configuration on a new SQLite file or PostgreSQL schema: its rate, latencies and CPU."""
    import psycopg

    schema = f"load_{uuid.uuid4().hex[:8]}"
    url = None if backend == "sqlite" else f"{postgres}{'&' if '?' in postgres else '?'}schema={schema}"
    if url:
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    (tmp / schema).mkdir()
    args, key = setup(tmp / schema, url)
    servers = []
    try:
        first = start(args)  # the first makes the tables and registers the enterprises
        servers.append(first[0])
        rest = [start(args) for _ in range(n - 1)]
        servers += [s for s, _ in rest]
        urls = [first[1], *(u for _, u in rest)]
        level(urls, key, pool, clients, min(total, 400), 10**7)  # warm-up: connections, caches
        before = cpu_seconds([s.pid for s in servers])
        r = level(urls, key, pool, clients, total, 0)
        r["cpu"] = (cpu_seconds([s.pid for s in servers]) - before) / max(r["requests"], 1) * 1000
    finally:
        stop(servers)
        if url:
            with psycopg.connect(postgres, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return r


def compare(total: int, clients: int, postgres: str, instances: list[int], repeat: int) -> None:
    """One SQLite instance, then N PostgreSQL instances on a new schema each, at `clients`; `repeat`
    rounds of all of them interleaved (this machine's speed drifts), then the median of each, its
    range, and each round's ratio to that round's SQLite."""
    pool = declarations()
    configs = [("sqlite", 1), *(("postgresql", n) for n in instances)]
    print(
        f"POST /declarations on loopback, {clients} clients spread over the instances, {total} requests "
        f"each, "
        f"{repeat} interleaved rounds; {os.cpu_count()} cores shared by the clients, the servers and "
        f"PostgreSQL; "
        "CPU: the servers' and PostgreSQL's, per decision"
    )
    runs: dict[tuple, list[dict]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(repeat):
            for backend, n in configs:
                r = run_one(Path(tmp), backend, n, total, clients, postgres, pool)
                r["ratio"] = r["per_s"] / (
                    runs[("sqlite", 1)][-1]["per_s"] if backend != "sqlite" else r["per_s"]
                )
                runs[(backend, n)].append(r)
                print(
                    f"  round {round_ + 1}: {backend} x{n}: {r['per_s']:,.0f}/s, p99 {r['p99']:.1f} ms, "
                    f"{r['errors']} errors",
                    flush=True,
                )
    print(
        f"{'backend':>10} {'instances':>9} {'decisions/s':>16} {'x SQLite':>14} {'p50 ms':>7} {'p99 ms':>13} "
        f"{'errors':>6} {'CPU ms/dec':>10}"
    )
    for (backend, n), rs in runs.items():

        def mid(key):
            return float(np.median([r[key] for r in rs]))  # noqa: B023 - used within this pass

        def span(key, fmt):
            values = [r[key] for r in rs]  # noqa: B023 - used within this pass
            return f"{format(mid(key), fmt)} [{format(min(values), fmt)}-{format(max(values), fmt)}]"

        print(
            f"{backend:>10} {n:>9} {span('per_s', '.0f'):>16} {span('ratio', '.2f'):>14} {mid('p50'):>7.1f} "
            f"{span('p99', '.0f'):>13} {sum(r['errors'] for r in rs):>6} {mid('cpu'):>10.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per level")
    parser.add_argument("--levels", default="1,4,8,16", help="concurrent clients per level (SQLite only run)")
    parser.add_argument("--db", help="a PostgreSQL URL: compare instances on it with one SQLite instance")
    parser.add_argument("--instances", default="1,2,4", help="PostgreSQL instance counts to compare")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds of the comparison")
    parser.add_argument("--expected-rate", type=float, help="serve with a capacity-paced policy at this rate")
    options = parser.parse_args()
    if options.expected_rate is not None:
        EXTRA += ["--expected-rate", str(options.expected_rate)]
    if options.db:
        compare(
            options.requests,
            options.clients,
            options.db,
            [int(x) for x in options.instances.split(",")],
            options.repeat,
        )
    else:
        main(options.requests, [int(x) for x in options.levels.split(",")])
