"""The integrity change feed an agency polls (`GET /integrity/changes?since=&limit=1000`), paged
through over loopback from a real `serve` process, beside the same records read by the store's own
query in this process (the floor), in the same run.

The store holds N `integrity_change` audit records (a problem, a class change, as customs' results
write them), appended in transactions of 1,000, amid as many decisions' worth of other records.
Usage: python benchmarks/change_feed.py [N]   (default 100,000; SQLite)
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.apikeys import key_digest  # noqa: E402
from engine.office import Office  # noqa: E402

KEY = "feed-key-0123456789"


def fill(db: Path, n: int) -> None:
    office = Office(db)
    for start in range(0, n, 1000):
        with office.store.transaction():
            for k in range(start, min(n, start + 1000)):
                firm = f"E{k % 5000:05d}"
                office.audit.append(
                    "recheck", {"inspection": f"D{k:08d}", "excluded": "I1"}
                )  # the feed skips it
                office.audit.append(
                    "integrity_change",
                    {"enterprise_id": firm, "field": "problems", "old": k // 5000, "new": k // 5000 + 1,
                     "reason": f"problem found in D{k:08d}"},
                )  # fmt: skip
    office.store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "office.db"
        fill(db, n)
        shutil.copy(ROOT / "scenarios/rules/baseline.yaml", folder / "rules.yaml")
        (folder / "draw.key").write_text("ab" * 32)
        entry = {"name": "POLICE-FEED", "role": "agency", "agency": "POLICE", "key_sha256": key_digest(KEY)}
        (folder / "keys.yaml").write_text(json.dumps({"keys": [entry]}))

        office = Office(db)  # the floor: the store's own query, page by page, no HTTP
        start, since, read = time.perf_counter(), 0, 0
        while page := office.audit.records_after("integrity_change", since, 1000):
            since, read = page[-1]["seq"], read + len(page)
        floor = read / (time.perf_counter() - start)
        office.store.close()

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "engine", "serve", "--rules", str(folder / "rules.yaml"), "--db", str(db),
             "--key-file", str(folder / "draw.key"), "--api-keys", str(folder / "keys.yaml"),
             "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}) as http:
                for _ in range(200):
                    try:
                        if http.get("/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.1)
                start, since, seen = time.perf_counter(), 0, set()
                while True:
                    body = http.get("/integrity/changes", params={"since": since, "limit": 1000}).json()
                    if not body["changes"]:
                        break
                    seen.update(change["seq"] for change in body["changes"])
                    since = body["next"]
                seconds = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(timeout=20)
        assert len(seen) == n, (len(seen), n)  # every change once, none missed
        print(f"{n:,} changes amid {n:,} other records, pages of 1,000")
        print(f"  the store's own query, in process: {floor:10,.0f} changes/s")
        rate = n / seconds
        print(f"  GET /integrity/changes over HTTP:  {rate:10,.0f} changes/s ({rate / floor:.2f}x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
