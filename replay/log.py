"""Importing a declaration log: read CSV or Parquet in chunks, map it (replay.mapping), check every
row as the live engine checks a declaration, keep the outcomes beside, and write Parquet plus an
import report. A bad row is reported with its line and reason and skipped, never fatal.

The checks are the live Declaration model's (ids, 6-10 digit HS codes, two-letter countries, the
trade and transport modes, positive finite numbers), applied column-wise so a million rows take
seconds; a test holds them to the model on the Korean files.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.declarations import COUNTRY_PATTERN, HS_PATTERN, ID_PATTERN
from engine.errors import InputError
from engine.imported import (  # noqa: F401 - read: the replay's callers use logs.read
    CODES,
    DECLARATION_FIELDS,
    DECLARATIONS,
    NUMBERS,
    read,
)
from replay.mapping import OUTCOMES, Mapping, convert

REPORT = "import_report.json"
REFUSED = "refused.csv"
TRADE_MODES = {"general", "processing", "bonded", "ecommerce", "other"}
TRANSPORT_MODES = {"sea", "air", "road", "rail", "post", "other"}
PATTERNS = {
    "id": ID_PATTERN,
    "enterprise_id": ID_PATTERN,
    "customs_office": ID_PATTERN,
    "hs_code": HS_PATTERN,
    "origin_country": COUNTRY_PATTERN,
    "departure_country": COUNTRY_PATTERN,
}


@dataclass
class ImportReport:
    source: str
    mapping: str
    rows_read: int = 0
    rows_kept: int = 0
    rows_refused: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    first_refused: list[dict] = field(default_factory=list)  # line and reason, the first 100
    only_inspected: bool = True  # every row carries an inspection outcome (the Korean log does)
    fields: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0


def import_log(paths: list[str | Path], mapping: Mapping, out: str | Path) -> ImportReport:
    """Import one log, or several files of one log (splits, months) into one."""
    paths, out = [Path(p) for p in paths], Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = ImportReport(", ".join(map(str, paths)), mapping.name)
    started, writer, refused = time.perf_counter(), None, []
    try:
        for path, first_line, chunk in ((p, line, c) for p in paths for line, c in _chunks(p, mapping)):
            report.rows_read += len(chunk)
            frame, reasons = _map(chunk, mapping)
            bad = reasons != ""
            for line, reason in zip(first_line + chunk.index[bad.to_numpy()], reasons[bad]):
                report.reasons[reason] = report.reasons.get(reason, 0) + 1
                refused.append((path.name, int(line), reason))
            kept = frame[~bad.to_numpy()]
            report.rows_kept += len(kept)
            table = pa.Table.from_pandas(kept, preserve_index=False, schema=SCHEMA)
            writer = writer or pq.ParquetWriter(out / DECLARATIONS, SCHEMA)
            writer.write_table(table)
            report.only_inspected &= bool(kept["inspected"].fillna(False).all())
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise InputError(f"{report.source}: no rows to import")
    report.rows_refused = len(refused)
    report.first_refused = [{"file": f, "line": line, "reason": reason} for f, line, reason in refused[:100]]
    pd.DataFrame(refused, columns=["file", "line", "reason"]).to_csv(out / REFUSED, index=False)
    report.fields = summaries(out / DECLARATIONS)
    report.seconds = round(time.perf_counter() - started, 2)
    (out / REPORT).write_text(json.dumps(asdict(report), indent=1, default=str))
    return report


SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("declared_at", pa.timestamp("us")),
        *[(f, pa.string()) for f in CODES],
        *[(f, pa.float64()) for f in NUMBERS],
        ("violation", pa.bool_()),
        ("critical", pa.bool_()),
        ("category", pa.string()),
        ("revenue", pa.float64()),
        ("inspected", pa.bool_()),
        ("inclusion_probability", pa.float64()),
    ]
)


def _chunks(path: Path, mapping: Mapping) -> Iterator[tuple[int, pd.DataFrame]]:
    """(the first row's line number in the file, the rows), a chunk at a time; text columns as text."""
    needed = mapping.source_columns()
    if path.suffix.lower() == ".parquet":
        parquet = pq.ParquetFile(path)
        _have(needed, parquet.schema_arrow.names, path)
        start = 1
        for batch in parquet.iter_batches(batch_size=mapping.chunk_rows, columns=sorted(needed)):
            chunk = batch.to_pandas().reset_index(drop=True)
            yield start, chunk
            start += len(chunk)
        return
    try:
        reader = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], chunksize=mapping.chunk_rows
        )
        start = 2  # line 1 is the header
        for chunk in reader:
            if start == 2:
                _have(needed, chunk.columns, path)
            chunk = chunk.reset_index(drop=True)
            yield start, chunk
            start += len(chunk)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CSV file ({err})") from None


def _have(needed: set[str], columns, path: Path) -> None:
    missing = sorted(needed - set(columns))
    if missing:
        raise InputError(f"{path}: the mapping reads columns the log lacks: {', '.join(missing)}")


def _map(chunk: pd.DataFrame, mapping: Mapping) -> tuple[pd.DataFrame, pd.Series]:
    """The mapped rows and, per row, the first reason it is refused ('' when kept)."""
    frame, reasons = {}, pd.Series("", index=chunk.index)
    for name in (*DECLARATION_FIELDS, *OUTCOMES):
        if name not in mapping.fields and name not in mapping.outcomes:
            frame[name] = pd.Series([None] * len(chunk), index=chunk.index)
            continue
        values, bad = convert(mapping.spec(name), chunk, name)
        frame[name] = values
        reasons = reasons.where(reasons != "", bad)
    frame = pd.DataFrame(frame)
    for why in _checks(frame).values():
        reasons = reasons.where(reasons != "", why)
    frame["inspected"] = frame["inspected"].fillna(frame["violation"].notna()).astype(bool)
    for flag in ("violation", "critical"):
        frame[flag] = frame[flag].map(lambda v: None if pd.isna(v) else bool(v))
    return frame, reasons


def _checks(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Per field, the reason each row breaks the Declaration model's rule for it ('' if fine)."""
    out = {}
    for name in DECLARATION_FIELDS:
        values, why = frame[name], pd.Series("", index=frame.index)
        missing = values.isna()
        why[missing] = f"{name}: missing"
        if name in PATTERNS:
            why[~missing & ~values.astype("string").str.fullmatch(PATTERNS[name][1:-1]).fillna(False)] = (
                f"{name}: does not match {PATTERNS[name]}"
            )
        elif name in NUMBERS:
            why[~missing & ~((values > 0) & (values < float("inf")))] = (
                f"{name}: must be a positive finite number"
            )
        elif name in ("trade_mode", "transport_mode"):
            allowed = TRADE_MODES if name == "trade_mode" else TRANSPORT_MODES
            why[~missing & ~values.isin(allowed)] = f"{name}: one of {', '.join(sorted(allowed))}"
        out[name] = why
    return out


def summaries(path: Path) -> dict[str, dict]:
    """Per column of the written file: nulls, distinct values, and min/max for numbers and dates;
    read a column at a time, so memory stays bounded by one column, not the log."""
    out = {}
    for name in SCHEMA.names:
        values = pq.read_table(path, columns=[name]).column(0).to_pandas()
        entry = {"nulls": int(values.isna().sum()), "distinct": int(values.nunique())}
        if name in (*NUMBERS, "revenue", "declared_at", "inclusion_probability") and values.notna().any():
            entry |= {"min": str(values.min()), "max": str(values.max())}
        if name in ("violation", "critical", "inspected") and values.notna().any():
            entry["share_true"] = float(values.dropna().astype(bool).mean())
        out[name] = entry
    return out
