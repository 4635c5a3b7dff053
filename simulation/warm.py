"""Warm starts: the world at the end of a run's warm-up, saved once and taken up by what-ifs.

A warm-up (24 months in the baseline) is what makes a what-if slow: the enterprises' standing, the
dishonest stock and the pacers' score windows take that long to settle, while the queue settles in
days. A warm state holds the slow part exactly as the run left it at the first measured hour: the
standing (classes, flags, counts, problem days), the propensities after turnover, the firms'
perception of inspection, each office's pacer, the random streams of service, detection, release and
dispatch, and the warm-up months' counts (which only the adaptive controller reads). A run from it
draws the same declarations as a cold run (they are drawn for the whole horizon from the seed), skips
the warm-up hours and applies its own policy and capacity from the first measured hour.

What it does not hold: the inspections in progress at the cut (the what-if starts with an empty
queue: a few hours of work, against months of standing) and the rotation rule's recent visits, so a
run from a warm state equals the cold run in distribution, not bit for bit (a test compares the two
over replications). A warm state is refused unless everything that shapes the warm-up is the same:
the scenario with its policy, rules, capacity (inspectors, facilities, sites' staff), instruction rate,
adaptive controller and measured length left out, and the seed.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import InputError
from simulation.scenario import Scenario

FILE = "warm.pickle"
VERSION = 1
# what a what-if may change: read from the first measured hour on, never during the warm-up's use
WHAT_IF = ("policy", "rules", "instruction", "adaptive", "name")


def key(scenario: Scenario) -> str:
    """The scenario as the warm-up saw it: without the what-if settings, capacity and measured length."""
    body = scenario.canonical()
    for name in WHAT_IF:
        body.pop(name, None)
    body["horizon"] = {k: v for k, v in body["horizon"].items() if k not in ("months", "days")}
    body["sites"] = [
        {k: v for k, v in site.items() if k not in ("inspectors", "facilities")} for site in body["sites"]
    ]
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def save(folder: str | Path, scenario: Scenario, hour: int, state: dict[str, Any]) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    body = {"version": VERSION, "package": __version__, "key": key(scenario), "hour": hour, "state": state}
    path = folder / FILE
    path.write_bytes(pickle.dumps(body, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def load(folder: str | Path, scenario: Scenario) -> tuple[int, dict[str, Any]]:
    """The warm state's first measured hour and its state, or one clear error.

    The file is a pickle: load only warm states this installation wrote (as for any pickle)."""
    path = Path(folder) / FILE
    try:
        body = pickle.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"{folder}: no warm state here (make one with `run --save-warm {folder}`)") from None
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as err:
        raise InputError(f"{path}: not a readable warm state ({err})") from None
    if not isinstance(body, dict) or body.get("version") != VERSION or body.get("package") != __version__:
        raise InputError(f"{path}: written by another doublerandom version; save the warm state again")
    if body["key"] != key(scenario):
        raise InputError(
            f"{path}: saved for another warm-up (a setting other than the policy, rules, instruction, "
            "adaptive controller, capacity or measured months differs, or the seed); save it again"
        )
    return int(body["hour"]), body["state"]
