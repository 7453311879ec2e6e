"""Test doubles for the other collaborators: a recording queue, a fixed clock, a recording
dispatcher and a scripted agent client."""

from __future__ import annotations

import collections
import hashlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

from farm_domain.agents import SoftReport
from farm_domain.answers import (
    Accepted,
    AssignAnswer,
    Busy,
    Conflict,
    NotRunning,
    PollAnswer,
    Refused,
    Running,
    StopAnswer,
    Unreachable,
    UpdateAnswer,
)
from farm_domain.errors import LogGap, TooLarge
from farm_domain.ports import REQUEUE_REASONS, UnitOfWorkFactory
from farm_domain.work import Job, Task


class RecordingQueue:
    """Records what was enqueued, in order, as (job name, arguments)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def assign_tasks(self) -> None:
        self.calls.append(("assign_tasks", ()))

    def assign_tasks_later(self, delay: float) -> None:
        self.calls.append(("assign_tasks_later", (delay,)))

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self.calls.append(("assign_tasks_to_agent", (agent_id,)))

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self.calls.append(("send_tasks_to_agent", (agent_id,)))

    def update_agent(self, agent_id: uuid.UUID) -> None:
        self.calls.append(("update_agent", (agent_id,)))

    def stop_tasks(
        self, agent_id: uuid.UUID, host: str, port: int, task_ids: Sequence[int]
    ) -> None:
        self.calls.append(("stop_tasks", (agent_id, host, port, tuple(task_ids))))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class PendingSoftState:
    """The SoftState port in memory: reports wait in ``pending`` (the latest per agent) until
    ``flush`` writes them through the unit of work."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow
        self.pending: dict[uuid.UUID, SoftReport] = {}

    def report(self, report: SoftReport) -> None:
        held = self.pending.get(report.agent_id)
        if held is None or report.newer_than(held):
            self.pending[report.agent_id] = report

    def flush(self) -> int:
        batch, self.pending = list(self.pending.values()), {}
        if batch:
            with self._uow() as uow:
                uow.agents.record_heard(batch)
                uow.commit()
        return len(batch)


class FixedClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class RecordingDispatcher:
    """Stands in for the queue consumers' service and records what ran."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, tuple[object, ...]]] = []

    def assign_tasks(self) -> None:
        self.ran.append(("assign_tasks", ()))

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self.ran.append(("assign_tasks_to_agent", (agent_id,)))

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self.ran.append(("send_tasks_to_agent", (agent_id,)))

    def update_agent(self, agent_id: uuid.UUID) -> None:
        self.ran.append(("update_agent", (agent_id,)))

    def stop_tasks(
        self, agent_id: uuid.UUID, host: str, port: int, task_ids: Sequence[int]
    ) -> None:
        self.ran.append(("stop_tasks", (agent_id, host, port, tuple(task_ids))))

    def watch_agents(self) -> None:
        self.ran.append(("watch_agents", ()))


class ScriptedAgentClient:
    """An AgentClient whose answers a test sets per call kind; records every call (an
    assignment as its job and tasks) and the agent each was for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.callees: list[tuple[str, uuid.UUID]] = []
        """Each call as (kind, the agent id it was signed for)."""
        self.assignments: list[tuple[str, Job, tuple[Task, ...]]] = []
        """Each assignment as (base URL, job, tasks), typed for tests to read."""
        self.answers: dict[str, list[AssignAnswer | PollAnswer | StopAnswer | UpdateAnswer]] = {}

    def answer(
        self, kind: str, *answers: AssignAnswer | PollAnswer | StopAnswer | UpdateAnswer
    ) -> None:
        self.answers[kind] = list(answers)

    def _next(
        self, kind: str, agent_id: uuid.UUID, url: str, request: object
    ) -> AssignAnswer | PollAnswer | StopAnswer | UpdateAnswer:
        self.calls.append((kind, url, request))
        self.callees.append((kind, agent_id))
        queued = self.answers.get(kind) or [Accepted() if kind != "tasks" else Running(frozenset())]
        return queued.pop(0) if len(queued) > 1 else queued[0]

    def assign(
        self, agent_id: uuid.UUID, base_url: str, job: Job, tasks: Sequence[Task]
    ) -> AssignAnswer:
        self.assignments.append((base_url, job, tuple(tasks)))
        answer = self._next("assign", agent_id, base_url, (job, tuple(tasks)))
        assert isinstance(answer, Accepted | Refused | Conflict | Busy | Unreachable)
        return answer

    def tasks(self, agent_id: uuid.UUID, base_url: str) -> PollAnswer:
        answer = self._next("tasks", agent_id, base_url, None)
        assert isinstance(answer, Running | Refused | Busy | Unreachable)
        return answer

    def stop_task(self, agent_id: uuid.UUID, base_url: str, task_id: int) -> StopAnswer:
        answer = self._next("stop_task", agent_id, base_url, task_id)
        assert isinstance(answer, Accepted | NotRunning | Refused | Busy | Unreachable)
        return answer

    def update(self, agent_id: uuid.UUID, base_url: str, version: str) -> UpdateAnswer:
        answer = self._next("update", agent_id, base_url, version)
        assert isinstance(answer, Accepted | Refused | Busy | Unreachable)
        return answer

    def of(self, kind: str) -> list[tuple[str, object]]:
        return [(url, body) for k, url, body in self.calls if k == kind]


class MemoryFileStore:
    """Files kept in a dict, with the real store's size limit."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def write(self, key: str, chunks: Iterable[bytes], limit: int) -> int:
        data = b"".join(chunks)
        if len(data) > limit:
            raise TooLarge(f"more than {limit} bytes")
        self.files[key] = data
        return len(data)

    def append(self, key: str, offset: int, data: bytes, limit: int) -> int:
        stored = self.files.get(key, b"")
        if offset > len(stored):
            raise LogGap(f"the log has {len(stored)} bytes", len(stored))
        new = data[len(stored) - offset :]
        if len(stored) + len(new) > limit:
            raise TooLarge(f"more than {limit} bytes")
        self.files[key] = stored + new
        return len(stored) + len(new)

    def read(self, key: str, offset: int = 0) -> Iterator[bytes] | None:
        data = self.files.get(key)
        return None if data is None else iter([data[offset:]])

    def delete(self, key: str) -> None:
        for name in [name for name in self.files if name == key or name.startswith(key + "/")]:
            del self.files[name]


class DigestKeys:
    """An AgentKeys that derives each agent's key from its id alone (tests only)."""

    def key_for(self, agent_id: uuid.UUID) -> str:
        return hashlib.sha256(b"test-key:" + agent_id.bytes).hexdigest()


class RecordingCounters:
    """The domain's ``Counters``, kept as (event, label) -> count for tests to read."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def assigned(self, tasks: int) -> None:
        self.counts["assigned", ""] += tasks

    def dispatched(self, outcome: str) -> None:
        self.counts["dispatched", outcome] += 1

    def requeued(self, reason: str, tasks: int = 1) -> None:
        assert reason in REQUEUE_REASONS, reason  # the documented set, no other
        if tasks:
            self.counts["requeued", reason] += tasks

    def failed(self, reason: str) -> None:
        self.counts["failed", reason] += 1

    def stale_report(self) -> None:
        self.counts["stale_report", ""] += 1

    def double_assignment(self, tasks: int) -> None:
        self.counts["double_assignment", ""] += tasks
