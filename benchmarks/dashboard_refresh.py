"""The dashboard's monthly figures on a store holding a year of decisions: a refresh of the kept tally
(`engine.report.Tally`, what `/dashboard/data` and `GET /reports/monthly` serve) beside the whole
recomputation it replaced (`report.monthly` over every decision), measured in the same run.

The store: 5,000 decisions of the shipped sample through a live office (rules, draws, roster,
results for most inspections), then copied under new ids up to N declarations (their inspections
with them), spread over twelve months. A refresh follows 100 new decisions and 50 results.
Usage: python benchmarks/dashboard_refresh.py [N]   (default 1,000,000; SQLite)
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import report  # noqa: E402
from engine.declarations import parse_declaration  # noqa: E402
from engine.dispatch import Roster  # noqa: E402
from engine.files import read_yaml  # noqa: E402
from engine.office import Office  # noqa: E402
from engine.randomness import KeyedDraws  # noqa: E402
from engine.rules import RuleSet  # noqa: E402
from engine.selection import SelectionPolicy  # noqa: E402

START = dt.datetime(2026, 1, 1, 9, 0)


def lodge(office: Office, rows: list[dict], first: int, n: int) -> None:
    for k in range(first, first + n):
        at = START + dt.timedelta(minutes=k)
        row = dict(rows[k % len(rows)], id=f"B{k:08d}", declared_at=at.isoformat())
        office.admit(parse_declaration(row), at)
        task = office.inspection(row["id"])
        if task and task["status"] == "dispatched" and k % 4:
            office.record_result(
                row["id"], task["inspector_id"], "problem" if k % 9 == 0 else "normal", at=at
            )


def copies(office: Office, total: int) -> None:
    """Copies of the decided rows under new ids (suffix -k), declared k*seed days later (within a
    year), with their first inspections: the report reads only these columns."""
    db = office.store.db
    seed = db.execute("SELECT count(*) FROM declarations").fetchone()[0]
    rounds = total // seed - 1
    with office.store.transaction():
        db.execute(
            "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?) "
            "INSERT INTO declarations (id, enterprise_id, declared_at, decision, selected, customs_office) "
            "SELECT d.id || '-' || k.n, d.enterprise_id, "
            "strftime('%Y-%m-%dT%H:%M:%S', d.declared_at, '+' || (k.n * 360 / (? + 1)) || ' days'), "
            "d.decision, d.selected, d.customs_office FROM declarations d, k ORDER BY k.n, d.rowid",
            (rounds, rounds),
        )
        db.execute(
            "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?) "
            "INSERT INTO inspections (id, kind, declaration_id, enterprise_id, site, inspection_type, items, "
            "status, outcome) SELECT i.id || '-' || k.n, 'first', i.declaration_id || '-' || k.n, "
            "i.enterprise_id, i.site, i.inspection_type, i.items, i.status, i.outcome "
            "FROM inspections i, k WHERE i.kind = 'first'",
            (rounds,),
        )


def timed(call):
    start = time.perf_counter()
    out = call()
    return out, time.perf_counter() - start


def main(n: int) -> None:
    rows = [json.loads(x) for x in (ROOT / "scenarios/declarations/sample.jsonl").read_text().splitlines()]
    roster = read_yaml(ROOT / "scenarios/roster.yaml", "roster")
    roster["inspectors"] = [dict(i, shifts=["00:00-23:59"]) for i in roster["inspectors"]]
    for office_rows in rows:  # every office of the sample inspects at the roster's one site
        office_rows["customs_office"] = roster["inspectors"][0]["site"]
    with tempfile.TemporaryDirectory() as tmp:
        office = Office(
            Path(tmp) / "office.db",
            rules=RuleSet.load(ROOT / "scenarios/rules/baseline.yaml"),
            policy=SelectionPolicy(random_ratio=0.03),
            draws=KeyedDraws.from_seed(1),
            roster=Roster.model_validate(roster),
        )
        _, seconds = timed(lambda: lodge(office, rows, 0, 5000))
        print(f"5,000 decisions through the office in {seconds:.1f} s")
        _, seconds = timed(lambda: copies(office, n))
        total = office.store.db.execute("SELECT count(*) FROM declarations").fetchone()[0]
        inspected = office.store.db.execute("SELECT count(*) FROM inspections").fetchone()[0]
        print(f"copied to {total:,} declarations ({inspected:,} inspections) in {seconds:.1f} s")
        tally = report.Tally()
        whole, recompute = timed(lambda: report.monthly(office.store.report_rows()))
        first, cold = timed(lambda: tally.update(office.store))
        assert report.jsonable(first) == report.jsonable(whole)
        lodge(office, rows, 10_000_000, 100)  # 100 new decisions and the results of most of them
        again, refresh = timed(lambda: tally.update(office.store))
        assert report.jsonable(again) == report.jsonable(report.monthly(office.store.report_rows()))
        print(f"{total:,} declarations, {len(whole)} months; server time per request:")
        print(f"  whole recomputation (before): {1000 * recompute:8.0f} ms")
        print(f"  kept tally, first request:    {1000 * cold:8.0f} ms")
        print(
            f"  kept tally, a refresh:        {1000 * refresh:8.0f} ms   ({recompute / refresh:.0f}x faster)"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
