"""The enterprise integrity (credit) store and the feedback policy that updates it.

Inspection results feed back here: a problem makes the enterprise a high-risk target for a while,
repeated problems downgrade it to dishonest, a clean streak restores it. Lists from other agencies
(joint discipline) mark enterprises too. The rules read this state through `enterprise.*` fields,
so a problem found today changes whom the rules target tomorrow.

`FeedbackPolicy.apply` is pure, so the simulation can use the same policy on its own in-memory state.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.database import Database
from engine.declarations import CreditClass, Enterprise, Id
from engine.errors import InputError, describe
from engine.files import read_csv


class FeedbackPolicy(BaseModel):
    """How inspection results change an enterprise's standing."""

    model_config = ConfigDict(extra="forbid")

    high_risk_days: int = Field(default=180, ge=0, description="a problem flags the firm this long")
    downgrade_after_problems: int = Field(default=2, ge=1, description="k problems ...")
    downgrade_window_days: int = Field(default=365, ge=1, description="... within this window -> dishonest")
    restore_after_clean: int = Field(
        default=10, ge=0, description="clean inspections in a row to restore; 0 never"
    )
    restore_to: CreditClass = CreditClass.general

    def apply(
        self, firm: Enterprise, clean_streak: int, problem: bool, on: dt.date, recent_problems: int
    ) -> tuple[Enterprise, int]:
        """The firm's standing after one inspection result; `recent_problems` counts earlier
        problems inside the window. Returns (new standing, new clean streak)."""
        new = firm.model_copy()
        new.inspections += 1
        new.problems += problem
        new.credit_class, new.high_risk, new.high_risk_until, clean_streak = self.step(
            firm.credit_class,
            firm.high_risk,
            firm.high_risk_until,
            clean_streak,
            problem,
            on,
            recent_problems,
        )
        return new, clean_streak

    def step(
        self,
        credit: CreditClass,
        high_risk: bool,
        until: dt.date | None,
        clean_streak: int,
        problem: bool,
        on: dt.date,
        recent_problems: int,
    ) -> tuple[CreditClass, bool, dt.date | None, int]:
        """The rule itself on plain values, for the live store (through `apply`) and the simulation's
        arrays alike: (credit class, high-risk, flag expiry or None for no expiry, clean streak) after
        one result."""
        if problem:
            new_until = on + dt.timedelta(days=self.high_risk_days)
            flagged_now = high_risk and (until is None or on <= until)
            if flagged_now and (until is None or until > new_until):
                new_until = until  # a problem extends a flag, never shortens it
            if recent_problems + 1 >= self.downgrade_after_problems:
                credit = CreditClass.dishonest
            return credit, True, new_until, 0
        clean_streak += 1
        if (
            self.restore_after_clean
            and clean_streak >= self.restore_after_clean
            and credit == CreditClass.dishonest
        ):
            return self.restore_to, False, None, 0
        return credit, high_risk, until, clean_streak


@dataclass(frozen=True)
class Change:
    """One field of one enterprise changed; what the audit log records."""

    enterprise_id: str
    field: str
    old: object
    new: object
    reason: str


class AgencyRow(BaseModel):
    model_config = ConfigDict(extra="ignore")

    enterprise_id: str = Id("the enterprise")
    status: str = Field(pattern="^(dishonest|high_risk|cleared)$")
    source: str = Id("the agency that lists it")
    date: dt.date


class IntegrityStore:
    """Enterprises' standing in the office's database (engine.schema); callers wrap writes in the
    store's transaction."""

    def __init__(self, db: Database, policy: FeedbackPolicy | None = None):
        self.db = db
        self.policy = policy or FeedbackPolicy()

    def get(self, enterprise_id: str) -> Enterprise:
        """The stored standing, or a new general-credit enterprise with no history."""
        row = self.db.execute("SELECT * FROM enterprises WHERE id = ?", (enterprise_id,)).fetchone()
        if row is None:
            return Enterprise(id=enterprise_id)
        return Enterprise(
            id=row["id"],
            credit_class=row["credit_class"],
            high_risk=bool(row["high_risk"]),
            high_risk_until=row["high_risk_until"],
            declarations=row["declarations"],
            inspections=row["inspections"],
            problems=row["problems"],
        )

    def registered(self, enterprise_id: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM enterprises WHERE id = ?", (enterprise_id,)).fetchone() is not None
        )

    def put(self, firm: Enterprise, clean_streak: int | None = None) -> None:
        self.db.execute(
            f"""{_INSERT} ON CONFLICT (id) DO UPDATE SET credit_class = excluded.credit_class,
                 high_risk = excluded.high_risk, high_risk_until = excluded.high_risk_until,
                 declarations = excluded.declarations, inspections = excluded.inspections,
                 problems = excluded.problems,
                 clean_streak = COALESCE(?, enterprises.clean_streak)""",
            (*_row(firm), clean_streak, clean_streak),
        )

    def register(self, firms) -> list[Enterprise]:
        """Add enterprises not yet in the store (a starting list); known ones keep their history.
        Returns those added, for the audit log."""
        added = []
        for firm in firms:
            if self.db.execute(f"{_INSERT} ON CONFLICT (id) DO NOTHING", (*_row(firm), None)).rowcount:
                added.append(firm)
        return added

    def count_declaration(self, enterprise_id: str) -> None:
        """One more declaration; a firm not in the store yet enters it with this one (one statement:
        it runs for every declaration, and on a database server each statement is a round trip)."""
        self.db.execute(
            f"{_INSERT} ON CONFLICT (id) DO UPDATE SET declarations = enterprises.declarations + 1",
            (*_row(Enterprise(id=enterprise_id, declarations=1)), None),
        )

    def record_result(self, enterprise_id: str, problem: bool, on: dt.date, detail: str = "") -> list[Change]:
        """Apply the feedback policy to one inspection result; returns what changed."""
        before = self.get(enterprise_id)
        window_start = on - dt.timedelta(days=self.policy.downgrade_window_days)
        recent = self.db.execute(
            "SELECT COUNT(*) FROM enterprise_events WHERE enterprise_id = ? AND kind = 'problem' AND "
            "on_date > ?",
            (enterprise_id, window_start.isoformat()),
        ).fetchone()[0]
        streak = self._clean_streak(enterprise_id)
        after, streak = self.policy.apply(before, streak, problem, on, recent)
        self.db.execute(
            "INSERT INTO enterprise_events (enterprise_id, on_date, kind, source, detail) VALUES (?, ?, ?, "
            "'customs', ?)",
            (enterprise_id, on.isoformat(), "problem" if problem else "clean", detail),
        )
        self.put(after, streak)
        return _changes(before, after, "inspection problem" if problem else "clean inspection")

    def _clean_streak(self, enterprise_id: str) -> int:
        row = self.db.execute(
            "SELECT clean_streak FROM enterprises WHERE id = ?", (enterprise_id,)
        ).fetchone()
        return row[0] if row else 0

    def import_agency_list(self, path: str | Path, on: dt.date | None = None) -> list[Change]:
        """Joint discipline: apply another agency's CSV (enterprise_id, status, source, date)."""
        return self.apply_agency_rows(_read_agency_rows(path))

    def batch_digest(self, source: str, batch_id: str) -> str | None:
        """The content digest of an agency's batch already applied under this id, if any."""
        prefix = f"batch {batch_id} "
        row = self.db.execute(
            "SELECT detail FROM enterprise_events WHERE source = ? AND substr(detail, 1, ?) = ? LIMIT 1",
            (source, len(prefix), prefix),
        ).fetchone()
        return row[0].split(" ")[2] if row else None

    def apply_agency_rows(self, rows: list[tuple[str, AgencyRow]]) -> list[Change]:
        """Listings already checked, each with where it came from (a file's line, a batch's row)."""
        changes: list[Change] = []
        for where, row in rows:
            before = self.get(row.enterprise_id)
            after = before.model_copy()
            if row.status == "dishonest":
                after.credit_class = CreditClass.dishonest
            elif row.status == "high_risk":
                after.high_risk = True
                after.high_risk_until = row.date + dt.timedelta(days=self.policy.high_risk_days)
            elif before.credit_class == CreditClass.dishonest and self._listed_only_by(
                row.enterprise_id, row.source
            ):
                # cleared by the agency that listed it, and nobody else holds it dishonest
                after.credit_class, after.high_risk, after.high_risk_until = (
                    self.policy.restore_to,
                    False,
                    None,
                )
            self.db.execute(
                "INSERT INTO enterprise_events (enterprise_id, on_date, kind, source, detail) VALUES (?, ?, "
                "?, ?, ?)",
                (row.enterprise_id, row.date.isoformat(), f"agency:{row.status}", row.source, where),
            )
            self.put(after)
            changes += _changes(before, after, f"{row.source} list: {row.status}")
        return changes

    def _listed_only_by(self, enterprise_id: str, source: str) -> bool:
        """Whether `source` is the one agency whose dishonest listing of the firm still stands (a
        listing stands until the same agency clears it); a firm customs itself downgraded, or that
        another agency also lists, stays dishonest."""
        standing: set[str] = set()
        for kind, who in self.db.execute(
            "SELECT kind, source FROM enterprise_events WHERE enterprise_id = ? AND kind IN "
            "('agency:dishonest', 'agency:cleared') ORDER BY id",
            (enterprise_id,),
        ):
            (standing.add if kind == "agency:dishonest" else standing.discard)(who)
        return standing == {source}

    def export_discipline_list(self, path: str | Path, on: dt.date) -> int:
        """Enterprises customs holds dishonest or high-risk on a date, for other agencies."""
        rows = self.db.execute(
            "SELECT id, credit_class, high_risk, high_risk_until FROM enterprises "
            "WHERE credit_class = 'dishonest' OR (high_risk = 1 AND (high_risk_until IS NULL OR "
            "high_risk_until >= ?)) "
            "ORDER BY id",
            (on.isoformat(),),
        ).fetchall()
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["enterprise_id", "status", "source", "date"])
            for r in rows:
                writer.writerow(
                    [
                        r["id"],
                        "dishonest" if r["credit_class"] == "dishonest" else "high_risk",
                        "customs",
                        on.isoformat(),
                    ]
                )
        return len(rows)


_INSERT = """INSERT INTO enterprises (id, credit_class, high_risk, high_risk_until, declarations,
                                      inspections, problems, clean_streak)
             VALUES (?, ?, ?, ?, ?, ?, ?, COALESCE(?, 0))"""


def _row(firm: Enterprise) -> tuple:
    return (
        firm.id,
        firm.credit_class.value,
        int(firm.high_risk),
        firm.high_risk_until.isoformat() if firm.high_risk_until else None,
        firm.declarations,
        firm.inspections,
        firm.problems,
    )


def _read_agency_rows(path: str | Path):
    parsed, seen = [], {}
    for line, raw in read_csv(path, "agency list"):
        try:
            row = AgencyRow.model_validate(raw)
        except ValidationError as err:
            raise describe(f"{path}:{line}", err) from None
        key = (row.enterprise_id, row.source)
        if key in seen:
            raise InputError(
                f"{path}:{line}: enterprise {row.enterprise_id!r} is listed twice by {row.source} "
                f"(first at line {seen[key]}); one row per enterprise and agency"
            )
        seen[key] = line
        parsed.append((f"{Path(path).name}:{line}", row))
    return parsed  # all rows checked before any is applied: a bad list changes nothing


def _changes(before: Enterprise, after: Enterprise, reason: str) -> list[Change]:
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    return [Change(before.id, k, old[k], new[k], reason) for k in new if old[k] != new[k]]
