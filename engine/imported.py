"""An imported declaration log on disk: the folder `doublerandom import` writes (replay/log.py), read
back in time order by the replay's evaluation, the integrity store's `import-results` and the
simulation's trace-driven arrivals. Here, below all three, so none of them imports another.

Reading needs pandas and pyarrow (the `[sim]` extra); nothing imports this module at the engine's
start.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.errors import InputError

DECLARATIONS = "declarations.parquet"  # the log's rows: declaration fields, outcomes, inclusion probability


def read(folder: str | Path) -> pd.DataFrame:
    """An imported log, in time order (ties by id)."""
    path = Path(folder) / DECLARATIONS
    if not path.is_file():
        raise InputError(f"{folder}: no imported log here (run `doublerandom import` first)")
    return pd.read_parquet(path).sort_values(["declared_at", "id"], kind="stable").reset_index(drop=True)
