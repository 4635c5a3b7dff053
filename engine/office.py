"""A live customs office: decide, dispatch, record results and release, durably and traceably.

Each step is one transaction of its Store (SQLite by default, or PostgreSQL; engine/store.py) that
writes its state change, the integrity-store update and its audit record together; a step's answer
is returned only after the commit. Several offices (service instances) may share one PostgreSQL
database: a transaction is one writer's turn, and each reads what the others committed before it.
Steps refuse what the
double-random rules forbid: dispatching to an ineligible inspector, a result from someone other than
the assigned inspector, a release by the officer who inspected (separation of duties).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from engine import lifecycle
from engine.audit import canonical
from engine.declarations import Declaration, Enterprise, InspectionType, says_something, unstorable
from engine.dispatch import (
    FACILITY_FOR,
    Assignment,
    Request,
    Roster,
    Waiting,
    Workload,
    dispatch,
    eligible,
    workload_points,
)
from engine.errors import Conflict, InputError, NotFound
from engine.files import first_repeat
from engine.integrity import AgencyRow, FeedbackPolicy
from engine.lifecycle import Status, Step, after_result
from engine.randomness import Draws
from engine.rules import RuleSet
from engine.score import LearnedScore, window
from engine.selection import Decision, Pacers, SelectionPolicy, Selector, live
from engine.store import Store, open_store

DEPARTMENTS = ("anti_smuggling", "duties", "health_quarantine", "intellectual_property", "other")

RECHECK = "~recheck"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_text(**texts: str) -> None:
    """Free text (reasons, categories, who) must be storable alike on both databases (a NUL is not)."""
    for name, text in texts.items():
        problem = unstorable(text)
        if problem:
            raise InputError(f"field '{name}': {problem}")


def _same_declaration(declaration_id: str, lodged: dict[str, Any], text: str, row: dict[str, Any]) -> None:
    """A re-post must be the declaration decided before, byte for byte once canonical (`text`)."""
    if row["fingerprint"] is None or row["fingerprint"] == fingerprint(text):
        return  # decided before fingerprints were kept: the first decision stands, as it always did
    before = json.loads(row["input"])
    differ = sorted(k for k in set(before) | set(lodged) if before.get(k) != lodged.get(k))
    raise Conflict(
        f"declaration {declaration_id!r} was decided before with different content "
        f"({', '.join(differ)} differ); an amended declaration needs a new id"
    )


class Office:
    def __init__(
        self,
        db: str | Path | Store,
        *,
        rules: RuleSet | None = None,
        policy: SelectionPolicy | None = None,
        draws: Draws | None = None,
        roster: Roster | None = None,
        feedback: FeedbackPolicy | None = None,
        seal_key: Any = None,
        score: LearnedScore | None = None,
    ):
        """`seal_key`: the office's Ed25519 signing key; each step then seals the audit records it
        appends (engine/audit.py), so records appended without the key show in `audit verify`.
        `score`: a learned score the policy ranks by (engine.score), with the importer's record read
        from this office's store as the declaration is decided."""
        self.store: Store = open_store(db, feedback) if isinstance(db, (str, Path)) else db
        if seal_key is not None:
            self.store.sealer = seal_key
        self.integrity, self.audit = self.store.integrity, self.store.audit
        self.rules, self.policy, self.draws, self.roster = rules, policy or SelectionPolicy(), draws, roster
        self.score = live(self.policy, score)  # refused at the start, not at the first declaration
        self._pacers, self._paced_by = Pacers(), self.policy
        self._last_decided: int | None = None  # the store's newest declaration when the pacers were in step
        self._made_selector: Selector | None = None
        self._suspensions_seen = 0  # the audit record up to which chiefs' suspensions are applied

    # ------------------------------------------------------------ selection

    def admit(
        self, declaration: Declaration, at: dt.datetime | None = None, registered_only: bool = False
    ) -> Decision:
        """Decide one declaration and, when it is selected and a roster is loaded, dispatch it (or
        record why it waits): one transaction, so a crash leaves neither a decision without its
        dispatch nor half of either. Idempotent on the id: the same declaration again gets its first
        decision; the same id with other content is a Conflict naming the fields that differ (an
        amendment needs its own screening, under a new id). `registered_only` refuses enterprises
        the integrity store does not know."""
        if self.rules is None or self.draws is None:
            raise InputError("deciding needs a rules file and a source of draws")
        lodged = declaration.as_input()
        text = canonical(lodged)
        with self.store.transaction():
            row = self.store.lodged(declaration.id)
            if row is not None:
                _same_declaration(declaration.id, lodged, text, row)
                return Decision(**json.loads(row["decision"]))
            if registered_only and not self.integrity.registered(declaration.enterprise_id):
                raise NotFound(
                    f"unknown enterprise {declaration.enterprise_id!r}: register it in the "
                    "integrity store first"
                )
            try:
                decision = self._record_decision(declaration, lodged, text)
                if decision.selected and self.roster is not None:
                    self.dispatch(declaration.id, at)
            except BaseException:
                self.reset_pacers()
                raise
        return decision

    def _record_decision(self, declaration: Declaration, lodged: dict[str, Any], text: str) -> Decision:
        firm = self.integrity.get(declaration.enterprise_id)
        record = None
        if self.score is not None:  # what the office knows of the importer as it decides
            day = declaration.declared_at.date()
            record = self.store.firm_record(declaration.enterprise_id, *window(day))
        selector = self._selector(self._pacers_at(declaration.customs_office))
        decision = selector.decide(declaration, firm, record)
        decided = decision.to_dict()
        self.audit.append(
            "selection",
            {
                "declaration": lodged,
                "enterprise": firm.model_dump(mode="json"),
                "policy": self.policy.model_dump(mode="json"),
                "verifiable_draws": self.draws.verifiable,
                "decision": decided,
            },
        )
        self.store.add_declaration(
            declaration.id,
            declaration.enterprise_id,
            declaration.customs_office,
            declaration.declared_at.isoformat(),
            json.dumps(decided),
            decision.selected,
            fingerprint(text),
            text,
        )
        if self.policy.paced:
            self._last_decided = self.store.last_decided()
        self.integrity.count_declaration(declaration.enterprise_id)
        if decision.selected:
            self.store.add_inspection(
                declaration.id,
                "first",
                declaration.id,
                declaration.enterprise_id,
                declaration.customs_office,
                decision.inspection_type,
                declaration.items,
                Status.selected.value,
            )
        return decision

    def _selector(self, pacers: Pacers) -> Selector:
        """The Selector for the rules, policy and draws in force, made once for them (its policy table
        is worked out against the rules: not a thing to redo for every declaration)."""
        made = self._made_selector
        if made is None or not (
            made.rules is self.rules
            and made.policy is self.policy
            and made.draws is self.draws
            and made.score is self.score
        ):
            made = self._made_selector = Selector(self.rules, self.policy, self.draws, pacers, self.score)
        made.pacers = pacers
        return made

    def reset_pacers(self) -> None:
        """After a rollback: the pacers are rebuilt from what the store kept."""
        self._pacers, self._last_decided = Pacers(), None

    def instruct(
        self,
        declaration_id: str,
        by: str,
        reason: str,
        inspection_type: str = "physical",
        at: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """A risk officer's order to inspect a declaration the computer did not select (the
        instruction channel: intelligence, a tip-off), with a reason; dispatched like any other
        inspection when a roster is loaded, and audited, so the computer-selection share can be told."""
        at = at or _now()
        _check_text(by=by, reason=reason)
        if not says_something(reason):
            raise InputError("an instruction needs a reason")
        try:
            kind = InspectionType(inspection_type)
        except ValueError:
            raise InputError(
                f"inspection type must be one of {', '.join(t.value for t in InspectionType)}, "
                f"got {inspection_type!r}"
            ) from None
        with self.store.transaction():
            row = self.store.lodged(declaration_id)
            if row is None:
                raise NotFound(f"no declaration {declaration_id!r} has been decided")
            if self.store.inspection(declaration_id) is not None:
                raise Conflict(f"{declaration_id} is already selected for inspection")
            if row["input"] is None:
                raise Conflict(
                    f"{declaration_id} was decided before declarations were kept whole; order it by hand"
                )
            lodged = json.loads(row["input"])
            self.store.add_inspection(
                declaration_id,
                "first",
                declaration_id,
                lodged["enterprise_id"],
                lodged["customs_office"],
                kind.value,
                lodged.get("items", 1),
                Status.selected.value,
            )
            self.audit.append(
                "instruction",
                {"declaration": declaration_id, "by": by, "reason": reason, "inspection_type": kind.value},
                at,
            )
            if self.roster is not None:
                self.dispatch(declaration_id, at)
        return {"instructed": declaration_id, "by": by, "inspection": self.store.inspection(declaration_id)}

    def _pacers_at(self, office: str) -> Pacers:
        """The pacers, with this office's rebuilt from the store the first time it is needed under the
        policy in force (engine.capacity: a restart or new policy carries on from the stored decisions),
        and again whenever another instance has decided since (the pacers follow the store's order)."""
        if self._paced_by is not self.policy:
            self._pacers, self._paced_by = Pacers(), self.policy
        if self.policy.paced:
            self._catch_up()
            if office not in self._pacers.by_office:
                count, decisions = self.store.office_decisions(office, self.policy.rate_window)
                self._pacers.restore(self.policy, office, count, decisions)
        return self._pacers

    def _catch_up(self) -> None:
        """Another instance on the same database decided since this one last did: its decisions go
        into the pacers in the store's order (many of them: the pacers are rebuilt instead)."""
        latest = self.store.last_decided()
        if latest == self._last_decided:
            return
        if self._last_decided is not None:
            since = self.store.decided_since(self._last_decided, self.policy.rate_window + 1)
            if len(since) > self.policy.rate_window:
                self._pacers = Pacers()
            for office in dict.fromkeys(o for o, _ in since):
                self._pacers.absorb(self.policy, office, [d for o, d in since if o == office])
        self._last_decided = latest

    def decision(self, declaration_id: str) -> Decision | None:
        row = self.store.lodged(declaration_id)
        return Decision(**json.loads(row["decision"])) if row else None

    # ------------------------------------------------------------ dispatch

    def dispatch(self, inspection_id: str, at: dt.datetime | None = None) -> Assignment | Waiting:
        """Pick an inspector at random among the eligible; or record why the inspection waits."""
        at = at or _now()
        roster, draws = self._current_roster(), self._need_draws()
        with self.store.transaction():
            task = self._inspection(inspection_id, Step.dispatch)
            attempt = task["attempts"] + 1
            u = draws.uniform(f"{inspection_id}#{attempt}", "dispatch")
            outcome = dispatch(roster, self._request(task), at, self._workload(at), u)
            if isinstance(outcome, Waiting):
                self.store.update_inspection(
                    inspection_id, status=Status.waiting.value, attempts=attempt, wait_reason=outcome.reason
                )
                self.audit.append(
                    "dispatch_wait", {"inspection": inspection_id, "reason": outcome.reason}, at
                )
                return outcome
            self._assign(inspection_id, outcome, at, attempt)
            self.audit.append("dispatch", {"inspection": inspection_id, **vars(outcome)}, at)
        return outcome

    def reassign(
        self, inspection_id: str, to: str, by: str, reason: str, at: dt.datetime | None = None
    ) -> Assignment:
        """A chief's manual reassignment: needs a reason, must still go to an eligible inspector."""
        at = at or _now()
        _check_text(to=to, by=by, reason=reason)
        if not says_something(reason):
            raise InputError("a manual reassignment needs a reason")
        roster = self._current_roster()
        with self.store.transaction():
            task = self._inspection(inspection_id, Step.reassign)
            load = self._workload(at)
            people, why = eligible(roster, self._request(task), at, load)
            if to not in {p.id for p in people}:
                raise Conflict(
                    f"{to} may not take {inspection_id}: "
                    + (why or "not eligible (site, shift, qualification, suspension or rotation)")
                )
            facility = FACILITY_FOR[InspectionType(task["inspection_type"])].value
            moved = Assignment(inspection_id, to, facility, 0.0, [to], [1.0], manual=True, reason=reason)
            self._assign(inspection_id, moved, at, task["attempts"])
            self.audit.append(
                "manual_reassignment",
                {
                    "inspection": inspection_id,
                    "from": task["inspector_id"],
                    "to": to,
                    "by": by,
                    "reason": reason,
                },
                at,
            )
        return moved

    def _assign(self, inspection_id: str, a: Assignment, at: dt.datetime, attempt: int) -> None:
        self.store.update_inspection(
            inspection_id,
            status=Status.dispatched.value,
            inspector_id=a.inspector_id,
            facility=a.facility,
            dispatched_at=at.isoformat(),
            attempts=attempt,
            wait_reason=None,
        )

    def _request(self, task: dict[str, Any]) -> Request:
        exclude = frozenset(x for x in task["exclude"].split(",") if x)
        return Request(
            task["id"],
            task["enterprise_id"],
            task["site"],
            InspectionType(task["inspection_type"]),
            task["items"],
            exclude,
        )

    def _workload(self, at: dt.datetime) -> Workload:
        roster, load = self._need_roster(), Workload()
        for inspector, site, facility, items in self.store.open_work(Status.dispatched.value):
            load.points[inspector] = load.points.get(inspector, 0.0) + workload_points(roster, items)
            load.open[inspector] = load.open.get(inspector, 0) + 1
            load.facilities_busy[(site, facility)] = load.facilities_busy.get((site, facility), 0) + 1
        load.recent = self.store.visits_since((at - dt.timedelta(days=roster.rotation_days)).isoformat())
        return load

    # ------------------------------------------------------------ results and release

    def record_result(
        self,
        inspection_id: str,
        inspector_id: str,
        outcome: Literal["normal", "problem"],
        category: str = "",
        department: str = "",
        at: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """The assigned inspector's finding: a problem is transferred and flags the enterprise."""
        at = at or _now()
        _check_text(inspector=inspector_id, category=category, department=department)
        if outcome not in ("normal", "problem"):
            raise InputError(f"outcome must be normal or problem, got {outcome!r}")
        if outcome == "problem" and department not in DEPARTMENTS:
            raise InputError(
                f"a problem is transferred to one of {', '.join(DEPARTMENTS)}; got {department!r}"
            )
        with self.store.transaction():
            task = self._inspection(inspection_id, Step.result)
            if task["inspector_id"] != inspector_id:
                raise Conflict(f"{inspection_id} is assigned to {task['inspector_id']}, not {inspector_id}")
            recheck = task["kind"] == "recheck"
            status = after_result(recheck, outcome == "problem").value
            self.store.update_inspection(
                inspection_id,
                status=status,
                outcome=outcome,
                category=category,
                department=department or None,
            )
            self.audit.append(
                "result",
                {
                    "inspection": inspection_id,
                    "inspector": inspector_id,
                    "outcome": outcome,
                    "category": category,
                },
                at,
            )
            if outcome == "problem":
                self.audit.append("transfer", {"inspection": inspection_id, "department": department}, at)
            changes = self.integrity.record_result(
                task["enterprise_id"], outcome == "problem", at.date(), detail=inspection_id
            )
            for change in changes:
                self.audit.append("integrity_change", vars(change), at)
            ordered = not recheck and self._order_recheck(task, inspector_id, at)
        return {"status": status, "changes": [vars(c) for c in changes], "recheck": ordered}

    def _order_recheck(self, task: dict[str, Any], inspector_id: str, at: dt.datetime) -> bool:
        """Quality control of inspectors: a share of finished inspections is done again by someone else."""
        if self.roster is None or self.roster.recheck_share == 0 or self.draws is None:
            return False
        if self.draws.uniform(task["id"], "recheck") >= self.roster.recheck_share:
            return False
        self.store.add_inspection(
            task["id"] + RECHECK,
            "recheck",
            task["declaration_id"],
            task["enterprise_id"],
            task["site"],
            task["inspection_type"],
            task["items"],
            Status.selected.value,
            exclude=inspector_id,
        )
        self.audit.append("recheck", {"inspection": task["id"], "excluded": inspector_id}, at)
        return True

    def release(self, declaration_id: str, officer_id: str, at: dt.datetime | None = None) -> None:
        """Release after a normal result, by an officer who did not inspect it."""
        at = at or _now()
        _check_text(officer=officer_id)
        with self.store.transaction():
            if (
                self.store.inspection(declaration_id) is None
                and self.store.lodged(declaration_id) is not None
            ):
                # the declaration exists: a 404 would say it does not; it cleared without inspection
                raise Conflict(
                    f"declaration {declaration_id} was not selected for inspection: nothing to release"
                )
            task = self._inspection(declaration_id, Step.release)
            if task["inspector_id"] == officer_id:
                raise Conflict(
                    f"{officer_id} inspected {declaration_id} and may not also release it "
                    "(separation of duties)"
                )
            self.store.update_inspection(declaration_id, status=Status.released.value, released_by=officer_id)
            self.audit.append(
                "release",
                {"declaration": declaration_id, "officer": officer_id, "inspector": task["inspector_id"]},
                at,
            )

    def import_agency_list(self, path: str | Path, at: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Joint discipline: another agency's list, applied whole or not at all, and audited."""
        at = at or _now()
        with self.store.transaction():
            changes = self.integrity.import_agency_list(path)
            for change in changes:
                self.audit.append("integrity_change", vars(change), at)
        return [vars(c) for c in changes]

    def apply_agency_batch(
        self, agency: str, batch_id: str, rows: list[AgencyRow], at: dt.datetime | None = None
    ) -> dict[str, Any]:
        """An agency's listings sent over the API: applied whole in one transaction, every change
        audited; the same batch id again with the same rows changes nothing (a retry), with other rows
        is refused (a new batch needs a new id)."""
        at = at or _now()
        twice = first_repeat(enumerate(rows, 1), lambda numbered: numbered[1].enterprise_id)
        if twice is not None:  # a conflict within the batch, refused whole (409)
            k, firm = twice[0], twice[1].enterprise_id
            first = next(j for j, row in enumerate(rows, 1) if row.enterprise_id == firm)
            raise Conflict(
                f"row {k}: enterprise {firm!r} is listed twice in batch {batch_id!r} (first at row "
                f"{first}); one row per enterprise"
            )
        digest = hashlib.sha256(
            json.dumps([r.model_dump(mode="json") for r in rows], sort_keys=True).encode()
        ).hexdigest()[:16]
        with self.store.transaction():
            applied = self.integrity.batch_digest(agency, batch_id)
            if applied is not None and applied != digest:
                raise Conflict(
                    f"batch {batch_id!r} of {agency} was applied with other rows; "
                    "send new rows as a new batch"
                )
            if applied is not None:
                return {"batch_id": batch_id, "applied": False, "changes": []}
            changes = self.integrity.apply_agency_rows(
                [(f"batch {batch_id} {digest} row {k + 1}", row) for k, row in enumerate(rows)]
            )
            for change in changes:
                self.audit.append("integrity_change", vars(change), at)
        return {"batch_id": batch_id, "applied": True, "changes": [vars(c) for c in changes]}

    def import_results(self, results, source: str, at: dt.datetime | None = None) -> dict[str, int]:
        """Past inspection results (enterprise id, date, problem, declaration id), applied in time
        order through the engine's FeedbackPolicy, as the standing would have evolved; one
        transaction, every change audited. Enterprises the store does not know are registered first."""
        results = sorted(results, key=lambda r: (r[1], r[3]))
        with self.store.transaction():
            firms = {r[0] for r in results if not self.integrity.registered(r[0])}
            for firm in self.integrity.register(Enterprise(id=f) for f in sorted(firms)):
                self.audit.append("enterprise_registered", {"enterprise": firm.model_dump(mode="json")}, at)
            changed = 0
            for enterprise_id, on, problem, declaration_id in results:
                for change in self.integrity.record_result(
                    enterprise_id, problem, on, f"{source}: {declaration_id}"
                ):
                    self.audit.append("integrity_change", vars(change), at)
                    changed += 1
        return {"results": len(results), "registered": len(firms), "changes": changed}

    def register(self, firms, at: dt.datetime | None = None) -> int:
        """Enter enterprises the store does not know yet (known ones keep their standing), each with
        an audit record, so the log accounts for every standing a decision reads."""
        with self.store.transaction():
            added = self.integrity.register(firms)
            for firm in added:
                self.audit.append("enterprise_registered", {"enterprise": firm.model_dump(mode="json")}, at)
        return len(added)

    def use_rules(self, rules: RuleSet, content: str, at: dt.datetime | None = None) -> None:
        """Decide with these rules from now on; the file's text goes into the audit log (once per
        version), so every version ever used stays replayable."""
        with self.store.transaction():
            if not self.store.rules_logged(rules.version):
                self.audit.append(
                    "rules_loaded", {"version": rules.version, "source": rules.source, "content": content}, at
                )
        self.rules = rules

    def history(self, declaration_id: str) -> list[dict[str, Any]]:
        """Every audit record about a declaration and its inspections, in order."""
        return self.store.history(declaration_id, RECHECK)

    # ------------------------------------------------------------ helpers

    def _inspection(self, inspection_id: str, step: Step) -> dict[str, Any]:
        task = self.store.inspection(inspection_id)
        if task is None:
            raise NotFound(f"no inspection {inspection_id!r} (was the declaration selected?)")
        lifecycle.check(step, inspection_id, task["status"])
        return task

    def suspend(
        self, inspector_id: str, suspended: bool, by: str, reason: str, at: dt.datetime | None = None
    ) -> dict[str, Any]:
        """A chief takes an inspector off dispatch (or puts them back) with a reason, as ASYCUDA's
        selectivity module lets a chief examiner. Audited, so a restart and every other instance on
        the database apply it too (`_current_roster`); over the roster file's own `suspended`.
        Inspections already dispatched to them stay theirs until a chief reassigns them."""
        at = at or _now()
        _check_text(inspector=inspector_id, by=by, reason=reason)
        if not says_something(reason):
            raise InputError("a suspension needs a reason")
        roster = self._current_roster()
        if all(person.id != inspector_id for person in roster.inspectors):
            raise NotFound(f"no inspector {inspector_id!r} on the roster")
        with self.store.transaction():
            self.audit.append(
                "suspension",
                {"inspector": inspector_id, "suspended": suspended, "by": by, "reason": reason},
                at,
            )
        self._current_roster()
        return {"inspector": inspector_id, "suspended": suspended, "by": by}

    def _current_roster(self) -> Roster:
        """The roster with every suspension chiefs have recorded since, in order (a few records)."""
        roster = self._need_roster()
        while records := self.audit.records_after("suspension", self._suspensions_seen, 1000):
            for record in records:
                for person in roster.inspectors:
                    if person.id == record["inspector"]:
                        person.suspended = record["suspended"]
                self._suspensions_seen = record["seq"]
        return roster

    def _need_roster(self) -> Roster:
        if self.roster is None:
            raise InputError("this step needs a roster file (--roster)")
        return self.roster

    def _need_draws(self) -> Draws:
        if self.draws is None:
            raise InputError("this step needs a source of draws (--seed or --key-file)")
        return self.draws

    def inspection(self, inspection_id: str) -> dict[str, Any] | None:
        return self.store.inspection(inspection_id)
