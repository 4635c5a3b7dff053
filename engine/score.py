"""A learned risk score for one declaration: the model file `doublerandom model train` writes, read
and checked, and its inputs built from a live declaration and the importer's record.

The inputs (`FEATURES`) are defined here once, for the live office and for training alike
(`replay.learn` builds the same columns for a whole log): the HS chapter, heading and six-digit code,
the origin and departure country, the customs office, the transport and trade mode (categories: the
levels seen in training, an unseen one is missing); the declared value, net mass and value per kg (on
a log scale); and the importer's record over the `WINDOW_DAYS` days before the declaration's day:
declarations lodged, inspected (with a result), inspected with a violation, and that share with a
prior of one clean and one bad.

The probability is LightGBM's, recalibrated on the later validation period where the file carries a
calibration (`model train --calibrate`; `calibrated`: Platt's logistic map of the trees' log-odds,
weighed as the training was, so it keeps the ranking and its mean over that period is the period's
violation rate).

A live decision records every input, the probability and the inputs that pushed it most (LightGBM's
tree contributions on the trees' own log-odds scale), so an officer sees why, and `audit replay --model FILE`
recomputes the probability from the recorded inputs to the last bit. The importer's record is what
the office knew when it decided (results recorded by then), which is why it is recorded rather than
recomputed later.

LightGBM is imported only when a model is loaded: the rules-only engine never needs the `[model]`
extra. The file (JSON) carries the format, the library and its version, the features and category
levels, the training and validation periods and figures, and a SHA-256 fingerprint of all that;
`read` refuses a file whose fingerprint, format, features or library version do not match, with one
clear error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.declarations import Declaration
from engine.errors import InputError

FORMAT = "doublerandom-model/2"  # /2: the importer's record over a 180-day window
WINDOW_DAYS = 180
CATEGORIES = [
    "hs_chapter",
    "hs_heading",
    "hs_code",
    "origin_country",
    "departure_country",
    "customs_office",
    "transport_mode",
    "trade_mode",
]
NUMBERS = [
    "log_value",
    "log_mass",
    "log_value_per_kg",
    "firm_declarations",
    "firm_inspected",
    "firm_violations",
    "firm_violation_share",
]
FEATURES = CATEGORIES + NUMBERS
FIRM = NUMBERS[3:6]  # what the store counts: declarations, inspected, violations
REASONS = 3  # the inputs a decision names as pushing its probability most


def fingerprint(body: dict) -> str:
    payload = {k: v for k, v in body.items() if k != "fingerprint"}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def calibrated(p: float, calibration: dict | None) -> float:
    """The trees' probability through the file's calibration (none: as it is). Plain floats, one at a
    time, for the batch as for one live declaration: the same bits either way."""
    if not calibration or p <= 0.0 or p >= 1.0:
        return p
    z = calibration["slope"] * math.log(p / (1.0 - p)) + calibration["intercept"]
    return 1.0 / (1.0 + math.exp(-z))


def window(day: dt.date) -> tuple[str, str]:
    """The importer's record counts declarations from this day (inclusive) to that (exclusive)."""
    return (day - dt.timedelta(days=WINDOW_DAYS)).isoformat(), day.isoformat()


def inputs(declaration: Declaration, firm: dict[str, float]) -> dict[str, Any]:
    """The model's inputs for one declaration, given the importer's record (`FIRM` counts)."""
    hs = str(declaration.hs_code)
    value, mass = float(declaration.declared_value), float(declaration.net_mass_kg)
    counts = {name: float(firm[name]) for name in FIRM}
    return {
        "hs_chapter": hs[:2],
        "hs_heading": hs[:4],
        "hs_code": hs[:6],
        "origin_country": str(declaration.origin_country),
        "departure_country": str(declaration.departure_country),
        "customs_office": str(declaration.customs_office),
        "transport_mode": str(declaration.transport_mode),
        "trade_mode": str(declaration.trade_mode),
        # numpy's log1p, as the batch features use: the same bits live and in training
        "log_value": float(np.log1p(np.float64(value))),
        "log_mass": float(np.log1p(np.float64(mass))),
        "log_value_per_kg": float(np.log1p(np.float64(value) / max(mass, 0.1))),
        **counts,
        "firm_violation_share": (counts["firm_violations"] + 1) / (counts["firm_inspected"] + 2),
    }


def read(path: str | Path) -> tuple[Any, dict]:
    """(the LightGBM booster, the file's metadata), refused with one clear error unless everything
    the file says matches this version."""
    lgb = _lightgbm()
    try:
        body = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable model file ({err})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise InputError(f"{path}: not a {FORMAT} file")
    problems = []
    if body.get("fingerprint") != fingerprint(body):
        problems.append("its fingerprint does not match its content (changed after training)")
    if body.get("features") != FEATURES:
        problems.append(f"its features {body.get('features')} are not this version's {FEATURES}")
    if body.get("library_version") != lgb.__version__:
        problems.append(f"trained with LightGBM {body.get('library_version')}, this is {lgb.__version__}")
    if problems:
        raise InputError(f"{path}: refused: " + "; ".join(problems) + "; train it again")
    booster = lgb.Booster(model_str=body.pop("booster"))
    return booster, body


def _lightgbm():
    try:
        import lightgbm
    except ImportError:
        raise InputError("a learned score needs LightGBM: pip install 'doublerandom[model]'") from None
    return lightgbm


@dataclass
class LearnedScore:
    """A loaded model, scoring one declaration at a time."""

    booster: Any  # lightgbm.Booster
    meta: dict

    @classmethod
    def load(cls, path: str | Path) -> LearnedScore:
        return cls(*read(path))

    @property
    def version(self) -> str:
        """The model file's fingerprint: what a decision names and a replay must be given."""
        return self.meta["fingerprint"]

    def row(self, values: dict[str, Any]) -> np.ndarray:
        """One row as LightGBM reads a frame of categories: each level's position among the training
        levels, an unseen level missing."""
        levels = self._codes()
        out = np.empty((1, len(FEATURES)))
        for k, name in enumerate(FEATURES):
            out[0, k] = levels[name].get(values[name], np.nan) if name in levels else values[name]
        return out

    def _codes(self) -> dict[str, dict[str, float]]:
        if not hasattr(self, "_levels"):
            self._levels = {
                name: {level: float(k) for k, level in enumerate(self.meta["levels"][name])}
                for name in CATEGORIES
            }
        return self._levels

    def probability(self, values: dict[str, Any]) -> float:
        x = self.row(values)
        p = float(self.booster.predict(x, num_iteration=self.meta["iterations"], num_threads=1)[0])
        return calibrated(p, self.meta.get("calibration"))

    def reasons(self, values: dict[str, Any], top: int = REASONS) -> list[list]:
        """The inputs that pushed this probability most: [name, log-odds contribution], largest first."""
        contributions = self.booster.predict(
            self.row(values), num_iteration=self.meta["iterations"], pred_contrib=True, num_threads=1
        )[0, :-1]  # the last column is the bias
        order = np.argsort(-np.abs(contributions), kind="stable")[:top]
        return [[FEATURES[k], float(contributions[k])] for k in order]
