"""How a customs administration's declaration log maps onto our declaration fields and outcomes.

A mapping file names, for each declaration field and each outcome, the log's column and the
conversions it needs: zero padding (HS codes whose leading zeros a spreadsheet dropped), a prefix
(office and importer codes), a code table (transport modes), a scale and a second column to multiply
by (prices in thousands of won to dollars; duty = value x tax rate), a date format, or a constant when
the log lacks the field. `scenarios/mappings/kcs.yaml` maps the Korean customs data set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from engine.files import read_model
from engine.imported import DECLARATION_FIELDS, NUMBERS

# outcomes kept beside the declarations: violation found (0/1), its category, revenue (duty) at stake,
# whether it was inspected, and its inclusion probability when the log recorded one
OUTCOMES = ("violation", "critical", "category", "revenue", "inspected", "inclusion_probability")


class Column(BaseModel):
    """One field: where it comes from and how it is converted."""

    model_config = ConfigDict(extra="forbid")

    column: str | None = None  # the log's column; None with `value`
    value: Any = None  # a constant, when the log lacks the field
    pad: int | None = None  # left-pad with zeros to this width
    prefix: str = ""
    codes: dict[str, str] = {}  # code -> our value
    default: str | None = None  # for a code missing from `codes` (else the row is refused)
    scale: float = 1.0
    times: str | None = None  # multiply by this column as well
    date_format: str | None = None  # strptime format; ISO when None
    floor: float | None = None  # raise smaller numbers to this (a mass of 0 kg declared as 0.1)

    @field_validator("codes", mode="before")
    @classmethod
    def _text_keys(cls, value: Any) -> Any:
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    fields: dict[str, Column | str]
    outcomes: dict[str, Column | str] = {}
    chunk_rows: int = 200_000  # rows read at a time: memory stays bounded whatever the log's size

    @field_validator("fields")
    @classmethod
    def _every_field(cls, value: dict) -> dict:
        missing = [f for f in DECLARATION_FIELDS if f not in value]
        unknown = [f for f in value if f not in DECLARATION_FIELDS]
        if missing or unknown:
            raise ValueError(
                f"fields must map exactly {', '.join(DECLARATION_FIELDS)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else "")
            )
        return value

    @field_validator("outcomes")
    @classmethod
    def _known_outcomes(cls, value: dict) -> dict:
        unknown = [f for f in value if f not in OUTCOMES]
        if unknown or "violation" not in value:
            raise ValueError(
                f"outcomes are {', '.join(OUTCOMES)} and must include violation"
                + (f"; unknown {', '.join(unknown)}" if unknown else "")
            )
        return value

    @classmethod
    def load(cls, path: str | Path) -> Mapping:
        return read_model(path, cls, "mapping")

    def spec(self, name: str) -> Column:
        spec = self.fields.get(name, self.outcomes.get(name))
        return Column(column=spec) if isinstance(spec, str) else spec

    def source_columns(self) -> set[str]:
        specs = [self.spec(n) for n in (*self.fields, *self.outcomes)]
        return {c for s in specs for c in (s.column, s.times) if c}


def convert(spec: Column, chunk: pd.DataFrame, name: str) -> tuple[pd.Series, pd.Series]:
    """The field's values for a chunk, and a reason (text) per row that cannot be converted ('' if fine)."""
    n = len(chunk)
    if spec.column is None:
        return pd.Series([spec.value] * n, index=chunk.index), pd.Series("", index=chunk.index)
    raw = chunk[spec.column]
    bad = pd.Series("", index=chunk.index)
    if name in NUMBERS or name in ("revenue", "inclusion_probability") or spec.times:
        values = pd.to_numeric(raw, errors="coerce") * spec.scale
        if spec.times:
            values = values * pd.to_numeric(chunk[spec.times], errors="coerce")
        if spec.floor is not None:
            values = values.clip(lower=spec.floor)
        bad[values.isna() & raw.notna()] = f"{name}: not a number"
        return values, bad
    if name == "declared_at":
        values = pd.to_datetime(raw, format=spec.date_format, errors="coerce")
        bad[values.isna()] = f"{name}: not a date" + (f" in {spec.date_format}" if spec.date_format else "")
        return values, bad
    if name in ("violation", "critical", "inspected"):
        values = (raw.astype("string").map(spec.codes) if spec.codes else raw).map(_flag)
        bad[values.isna() & raw.notna()] = f"{name}: not 0/1 or true/false"
        return values, bad
    text = raw.astype("string").str.strip()
    text = text.str.replace(r"\.0$", "", regex=True)  # codes a spreadsheet turned into floats
    if spec.codes:
        mapped = text.map(spec.codes)
        if spec.default is not None:
            mapped = mapped.fillna(spec.default)
        bad[mapped.isna() & text.notna()] = f"{name}: code not in the mapping's table"
        text = mapped.astype("string")
    if spec.pad:
        text = text.str.zfill(spec.pad)
    text = (
        (spec.prefix + text).where(text.notna() & (text != ""), pd.NA)
        if spec.prefix
        else text.replace("", pd.NA)
    )
    return text, bad


def _flag(value: Any) -> float:
    text = str(value).strip().lower()
    if text in ("1", "1.0", "true", "yes", "y"):
        return 1.0
    if text in ("0", "0.0", "false", "no", "n"):
        return 0.0
    return np.nan
