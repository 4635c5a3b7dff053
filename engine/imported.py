"""An imported declaration log on disk: the folder `doublerandom import` writes (replay/log.py), read
back in time order by the replay's evaluation, the integrity store's `import-results` and the
simulation's trace-driven arrivals. Here, below all three, so none of them imports another.

Reading needs pandas and pyarrow (the `[sim]` extra); nothing imports this module at the engine's
start.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from engine.errors import InputError

DECLARATIONS = "declarations.parquet"  # the log's rows: declaration fields, outcomes, inclusion probability
# The declaration's fields a log keeps: codes (text), then amounts; with its id and time, what a
# mapping must name (replay/mapping.py) and the columns `doublerandom import` writes (replay/log.py).
CODES = (
    "enterprise_id",
    "hs_code",
    "origin_country",
    "departure_country",
    "trade_mode",
    "transport_mode",
    "customs_office",
)
NUMBERS = ("declared_value", "net_mass_kg", "quantity")
DECLARATION_FIELDS = ("id", "declared_at", *CODES, *NUMBERS)


def read(folder: str | Path) -> pd.DataFrame:
    """An imported log, in time order (ties by id); or a live office's database (a SQLite file or a
    database URL), read as one (`from_store`)."""
    if not Path(folder).is_dir() and (Path(folder).is_file() or "://" in str(folder)):
        from engine.store import open_store

        store = open_store(folder)
        try:
            return from_store(store)
        finally:
            store.close()
    path = Path(folder) / DECLARATIONS
    if not path.is_file():
        raise InputError(f"{folder}: no imported log here (run `doublerandom import` first)")
    return pd.read_parquet(path).sort_values(["declared_at", "id"], kind="stable").reset_index(drop=True)


def from_store(store) -> pd.DataFrame:
    """A live office's declarations as an imported log: the fields as lodged, `inspected` where the
    first inspection has a result, `violation` where it found a problem, and each decision's inclusion
    probability, so a score trained on it weighs each label by how likely it was to be inspected."""
    rows = []
    for id_, declared_at, lodged, decision, outcome, category in store.log_rows():
        fields = json.loads(lodged)
        rows.append(
            {
                **{name: fields.get(name) for name in CODES + NUMBERS},
                "id": id_,
                # the declared wall time, as an imported log keeps it
                "declared_at": dt.datetime.fromisoformat(declared_at).replace(tzinfo=None),
                "violation": None if outcome is None else outcome == "problem",
                "critical": False,
                "category": category if outcome == "problem" else None,
                "revenue": 0.0,
                "inspected": outcome is not None,
                "inclusion_probability": json.loads(decision).get("inclusion_probability", float("nan")),
            }
        )
    if not rows:
        raise InputError(f"{store.db.url}: no declarations decided yet")
    frame = pd.DataFrame(rows)
    frame["declared_at"] = pd.to_datetime(frame["declared_at"])
    return frame.sort_values(["declared_at", "id"], kind="stable").reset_index(drop=True)
