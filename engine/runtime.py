"""The live service's runtime, below its routes: the office behind its write lock with hot reload of
the rules file (LiveOffice), signed checkpoints of the audit log (Checkpointing), and the group commit
that makes decisions arriving together durable in one transaction (GroupCommit).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from pathlib import Path
from typing import Callable

from engine import checkpoint
from engine.audit import AuditLog
from engine.declarations import Declaration
from engine.errors import InputError, public
from engine.files import read_text
from engine.office import Office
from engine.rules import RuleSet
from engine.store import open_store

log = logging.getLogger("doublerandom.service")


class LiveOffice:
    """The Office behind one write lock; reads go through their own connection and lock (SQLite WAL
    readers never wait for the writer). Keeps deciding with the last good rules when the file goes
    missing or turns invalid, and reports that in /health and the log."""

    def __init__(
        self,
        office: Office,
        rules_path: Path,
        allow_new_enterprises: bool,
        db: str | Path,
        checkpoints: Checkpointing | None = None,
        settle: float = 0.05,
    ):
        self.office, self.rules_path = office, rules_path
        self.allow_new = allow_new_enterprises
        self.lock = threading.Lock()
        self.read_lock = threading.Lock()
        self.reader = Office(open_store(db), policy=office.policy, roster=office.roster, score=office.score)
        self.checkpoints, self.settle = checkpoints, settle
        self.problem: str | None = None  # the rules file's
        self.checkpoint_problem: str | None = None
        self.unavailable: tuple[float, str] | None = (
            None  # when a write last found the database unavailable, why
        )
        self._seen: tuple[int, int] | None = None
        self.reload()

    def reload(self) -> None:
        """Deploy the rules file if it changed, parses, and reads the same twice `settle` seconds
        apart (a file still being written is not deployed half-way)."""
        try:
            try:
                stat = self.rules_path.stat()
            except OSError as err:
                raise InputError(f"{self.rules_path}: cannot read rules file: {err.strerror}") from None
            seen = (stat.st_mtime_ns, stat.st_size)
            if seen == self._seen:
                return
            text = read_text(self.rules_path, "rules file")
            if self.office.rules is not None and text == self.office.rules.text:
                self._seen, self.problem = seen, None
                return
            rules = RuleSet.from_text(text, str(self.rules_path))
            if self.office.rules is not None:
                time.sleep(self.settle)
                if read_text(self.rules_path, "rules file") != text:
                    raise InputError(f"{self.rules_path}: changed while it was read; will try again")
        except InputError as err:
            if self.office.rules is None:
                raise
            problem = f"{err}; still deciding with {self.office.rules.version}"
            if problem != self.problem:
                log.error("rules file not loaded: %s", problem)
            self.problem = problem
            return
        self._seen, self.problem = seen, None
        self.office.use_rules(rules, text)
        log.info("deciding with rules %s", rules.version)

    def close(self) -> None:
        self.office.store.close()
        self.reader.store.close()

    def wrote(self) -> None:
        """After each committed write: a signed checkpoint when enough records have been added. A
        checkpoint that cannot be written is logged and shown in /health, never turned into a refusal
        of the step already committed (the next write tries again)."""
        self.unavailable = None
        if self.checkpoints is None:
            return
        try:
            self.checkpoints.maybe(self.office.audit)
        except (InputError, OSError) as err:
            if self.checkpoint_problem is None:
                log.error("checkpoint not written: %s", err)
            self.checkpoint_problem = f"checkpoint not written: {err}"
        else:
            self.checkpoint_problem = None

    def health(self) -> dict[str, str | None]:
        """What is wrong now: the rules file, the database's write turn (in the last minute), checkpoints."""
        busy = self.unavailable if self.unavailable and time.monotonic() - self.unavailable[0] < 60 else None
        problems = {
            "rules_problem": self.problem,
            "database_problem": busy[1] if busy else None,
            "checkpoint_problem": self.checkpoint_problem,
        }
        return {k: public(v) if v else None for k, v in problems.items()}  # /health answers anyone


class Checkpointing:
    """Signs the audit log's head every `every` records into a folder outside the database."""

    def __init__(self, key_file: str | Path, folder: str | Path, every: int):
        self.key = checkpoint.load_signing_key(key_file)
        self.folder, self.every = Path(folder), every
        if not self.folder.is_dir():
            raise InputError(f"{folder}: no such folder for checkpoints")
        self.last = 0

    def maybe(self, log: AuditLog) -> None:
        head = log.head()
        if head is not None and head[0] - self.last >= self.every:
            checkpoint.write(checkpoint.sign(*head, self.key), self.folder)
            self.last = head[0]


class GroupCommit:
    """Decisions arriving together are written in one transaction, so one fsync makes several of them
    durable (SQLite WAL, synchronous=FULL). Each declaration gets a savepoint: a refused one rolls back
    alone. Every answer is sent only after the commit that holds it."""

    MAX_BATCH = 64

    def __init__(self, live: LiveOffice, clock: Callable[[], dt.datetime]):
        self.live, self.clock = live, clock
        self.off_loop = live.office.store.db.dialect == "postgresql"
        self.pending: list[tuple[Declaration, asyncio.Future]] = []
        self.running = False

    async def admit(self, declaration: Declaration) -> dict:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((declaration, future))
        if not self.running:
            self.running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                await asyncio.sleep(0)  # let requests already read from their sockets join this batch
                batch, self.pending = self.pending[: self.MAX_BATCH], self.pending[self.MAX_BATCH :]
                try:
                    declarations = [d for d, _ in batch]
                    # SQLite: on the loop, no thread hop (nothing else writes to the file). PostgreSQL:
                    # off it, so that while another instance has its turn this one goes on reading
                    # requests, which join the next batch.
                    outcomes = (
                        await asyncio.to_thread(self._commit, declarations)
                        if self.off_loop
                        else self._commit(declarations)
                    )
                except Exception as err:  # the commit itself failed: nobody's decision is durable
                    outcomes = [err] * len(batch)
                for (_, future), outcome in zip(batch, outcomes):
                    if not future.done():
                        (future.set_exception if isinstance(outcome, Exception) else future.set_result)(
                            outcome
                        )
        finally:
            self.running = False

    def _commit(self, declarations: list[Declaration]) -> list:
        live, office = self.live, self.live.office
        outcomes: list = []
        with live.lock:
            live.reload()
            try:
                with office.store.transaction():
                    for declaration in declarations:
                        try:
                            with office.store.transaction():  # a savepoint
                                decision = office.admit(
                                    declaration, self.clock(), registered_only=not live.allow_new
                                )
                            outcomes.append(
                                {
                                    "decision": decision.to_dict(),
                                    "inspection": office.inspection(declaration.id),
                                }
                            )
                        except Exception as err:
                            outcomes.append(err)
            except BaseException:
                office.reset_pacers()  # the batch's decisions are not in the store: neither in the pacers
                raise
            live.wrote()
        return outcomes
