"""The learned score's costs, beside references measured in the same run:
  train         `replay.learn.train` on N labelled rows (one core), against building their features
  batch score   the probability for every row of the log, declarations per second
  live decide   `Office.admit` on SQLite: each decision's time with the model ranking (reading the
                importer's record, scoring, the reasons) against the same office ranking by the rules'
                score alone; p50 and p99 and what the model adds
Usage: python benchmarks/learned_score.py [N] [D]     (defaults 1000000 rows, 3000 live decisions)
Aims (issue 23): scoring at 100,000 declarations/s or more, a live decision with a model adding under
1 ms at p99, training on 1,000,000 rows in under 2 minutes on one core.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.declarations import parse_declaration  # noqa: E402
from engine.office import Office  # noqa: E402
from engine.randomness import KeyedDraws  # noqa: E402
from engine.rules import RuleSet  # noqa: E402
from engine.score import LearnedScore  # noqa: E402
from engine.selection import SelectionPolicy  # noqa: E402
from replay import learn  # noqa: E402
from tests.conftest import declaration_data  # noqa: E402
from tests.replay.test_learn import synthetic_log  # noqa: E402

RULES = RuleSet.load(ROOT / "scenarios/rules/baseline.yaml")
PACED = {"random_ratio": 0.03, "expected_rate": 0.05}
GOODS = ["610910", "847130", "940360", "851712", "030389"]


def timed(f, *args):
    start = time.perf_counter()
    out = f(*args)
    return out, time.perf_counter() - start


def decide_times(folder: Path, name: str, policy: dict, score: LearnedScore | None, d: int) -> np.ndarray:
    office = Office(
        folder / f"{name}.db",
        rules=RULES,
        policy=SelectionPolicy.model_validate(policy),
        draws=KeyedDraws.from_seed(1),
        score=score,
    )
    day, rng, out = dt.datetime(2026, 6, 1, 8), np.random.default_rng(2), np.empty(d)
    for k in range(d):
        at = day + dt.timedelta(minutes=3 * k)
        data = declaration_data(
            id=f"L{k:07d}",
            enterprise_id=f"F{rng.integers(0, 300):04d}",
            declared_at=at.isoformat(),
            hs_code=GOODS[k % len(GOODS)],
            declared_value=float(rng.lognormal(9, 1)),
        )
        declaration = parse_declaration(data)
        start = time.perf_counter()
        office.admit(declaration, at)
        out[k] = time.perf_counter() - start
    office.store.close()
    return out


def main(n: int, d: int = 3000) -> None:
    print(f"building a synthetic log of {n:,} rows (chapter 61 and bad importers violate more)", flush=True)
    log = synthetic_log(n)
    _, t_features = timed(learn.features, log)
    print(f"features of {n:,} rows: {t_features:.1f} s", flush=True)
    model, t_train = timed(learn.train, log, dt.date(2025, 8, 1), dt.date(2025, 10, 1))
    rows = model.meta["rows"]["train"] + model.meta["rows"]["validation"]
    print(
        f"train: {t_train:.1f} s on {rows:,} labelled rows ({model.meta['iterations']} trees), "
        f"{t_train / t_features:.1f}x building their features (aim: 1,000,000 rows in 120 s)",
        flush=True,
    )
    scores, t_score = timed(model.score, log)
    print(f"batch score: {n / t_score:,.0f} declarations/s, features included (aim 100,000/s)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model.save(folder / "model.json")
        score = LearnedScore.load(folder / "model.json")
        with_model = {**PACED, "model": {"combine": "added", "weight": 10}}
        rules_only = decide_times(folder, "rules", PACED, None, d)
        learned = decide_times(folder, "model", with_model, score, d)
    for label, times in (("rules' score alone", rules_only), ("with the model", learned)):
        p50, p99 = np.percentile(times * 1000, [50, 99])
        print(f"live decide, {label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms over {d:,} decisions")
    added = np.percentile(learned * 1000, [50, 99]) - np.percentile(rules_only * 1000, [50, 99])
    print(f"the model adds {added[0]:.2f} ms at p50 and {added[1]:.2f} ms at p99 (aim: under 1 ms at p99)")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*args) if args else main(1_000_000, 3000)
