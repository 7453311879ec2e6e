"""What the web workers write late and together: heartbeats' soft state in batches, and idle
agents' requests for work coalesced, both flushed by one background thread per process."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence

from farm_domain.agents import SoftReport
from farm_domain.ports import TaskQueue, UnitOfWorkFactory

log = logging.getLogger("farm.batching")


class BatchedSoftState:
    """The SoftState port: the latest report of each agent, kept until ``flush`` writes them
    all in one unit of work (one statement for many agents).

    ``write_through``: each report is written at once (no background flusher runs: tests,
    ``FARM_HEARTBEAT_FLUSH_SECONDS=0``). A flush that fails keeps its reports for the next one,
    unless a later report of the same agent arrived meanwhile; at most one report per agent is
    ever held, so what waits is bounded by the number of agents.
    """

    def __init__(self, uow: UnitOfWorkFactory, *, write_through: bool = False) -> None:
        self._uow = uow
        self._write_through = write_through
        self._pending: dict[uuid.UUID, SoftReport] = {}
        self._lock = threading.Lock()
        self._flushing = threading.Lock()

    def report(self, report: SoftReport) -> None:
        with self._lock:
            self._keep(report)
        if self._write_through:
            self.flush()

    def _keep(self, report: SoftReport) -> None:
        held = self._pending.get(report.agent_id)
        if held is None or report.newer_than(held):
            self._pending[report.agent_id] = report

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> int:
        # One flush at a time: a batch is in storage before the next one is taken, so a later
        # batch never races an earlier one of the same process.
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, {}
            if not batch:
                return 0
            try:
                with self._uow() as uow:
                    uow.agents.record_heard(list(batch.values()))
                    uow.commit()
            except BaseException:
                with self._lock:
                    for report in batch.values():
                        self._keep(report)
                raise
            return len(batch)


AT_ONCE = 8
"""How many agents' requests for work a web worker sends at once in one flush interval."""


class CoalescedWorkRequests:
    """A TaskQueue that coalesces idle agents' requests for work (``assign_tasks_to_agent``).

    Every ``online`` heartbeat asks for work; at thousands per second, one queue job each (and
    its assignment transaction) was most of the master's work. Here the first ``at_once``
    agents asking in a flush interval are sent at once, so a small farm waits for nothing; the
    others (and an agent asking again) wait for the interval's end and then go as one request:
    the agent's own pass when one agent waited, a single global pass when several did. The
    queue keeps at most one of each pending (its pending marks), so however many heartbeats
    ask, at most ``at_once`` passes per interval and one global pass are pending. Everything
    else goes straight through.
    """

    def __init__(self, queue: TaskQueue, at_once: int = AT_ONCE) -> None:
        self._queue = queue
        self._at_once = at_once
        self._lock = threading.Lock()
        self._sent: set[uuid.UUID] = set()
        self._waiting: set[uuid.UUID] = set()

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        with self._lock:
            if agent_id in self._sent or len(self._sent) >= self._at_once:
                self._waiting.add(agent_id)
                return
            self._sent.add(agent_id)
        self._queue.assign_tasks_to_agent(agent_id)

    def flush(self) -> int:
        """End the interval: send what waited as one request; returns how many agents waited."""
        with self._lock:
            waiting, self._waiting = self._waiting, set()
            self._sent = set()
        if len(waiting) == 1:
            self._queue.assign_tasks_to_agent(next(iter(waiting)))
        elif waiting:
            self._queue.assign_tasks()
        return len(waiting)

    def assign_tasks(self) -> None:
        self._queue.assign_tasks()

    def assign_tasks_later(self, delay: float) -> None:
        self._queue.assign_tasks_later(delay)

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self._queue.send_tasks_to_agent(agent_id)

    def update_agent(self, agent_id: uuid.UUID) -> None:
        self._queue.update_agent(agent_id)

    def stop_tasks(
        self, agent_id: uuid.UUID, host: str, port: int, task_ids: Sequence[int]
    ) -> None:
        self._queue.stop_tasks(agent_id, host, port, task_ids)


class Flusher:
    """A daemon thread that calls each flush every ``interval`` seconds, and once more when
    stopped (a web worker shutting down leaves nothing behind). A failing flush is logged and
    tried again at the next tick (its soft reports are kept)."""

    def __init__(self, interval: float, flushes: Sequence[Callable[[], object]]) -> None:
        self._interval = interval
        self._flushes = tuple(flushes)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="farm-flusher", daemon=True)
        self._stopped = False
        self._stop_lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self.flush_now()

    def flush_now(self) -> None:
        for flush in self._flushes:
            try:
                flush()
            except Exception:  # the database may be down for a while: keep ticking
                log.exception(
                    "could not flush", extra={"flush": getattr(flush, "__qualname__", "")}
                )

    def stop(self) -> None:
        """Stop the thread and flush what is left (idempotent)."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(5.0, 2 * self._interval))
        self.flush_now()
