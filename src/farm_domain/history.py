"""A task's and an agent's history: every change of state, when, and why.

The repositories that write a task's or an agent's state record the change themselves, in the
same statement's transaction, from the previous state the service read and the reason it gives
(``TaskRepository.save``, ``AgentRepository.save`` and the bulk statements take both as required
arguments): a new code path cannot change a state without a row, and a write that changes no
state (a heartbeat, a progress report) records nothing.

A history starts where its task or agent does: storing a task records its creation (from no
state, ``submitted``, at its ``time_submitted``), and storing a new agent its registration (from
no state, ``registered``, when it was first heard from). A known agent announcing itself again
is a change like any other.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import attrs

from farm_domain.agents import Agent
from farm_domain.errors import ValidationError
from farm_domain.validation import INT32_MAX
from farm_domain.work import Task, TaskStatus

TASK_HISTORY_KEPT = 100
"""The most rows one task keeps: its oldest go when a change puts it back in the queue (the
only way a task's history loops), so a task retried without end stays bounded."""
AGENT_HISTORY_KEPT = 200
"""The most rows one agent keeps: its oldest go with each new one (a flapping agent)."""
MAX_HISTORY = 500
"""The most rows one read answers."""
DEFAULT_HISTORY = 50
MAX_REASON = 255

SUBMITTED = "submitted"
"""The reason of a task's first row: its job was submitted."""
REGISTERED = "registered"
"""The reason of an agent's first row: it announced itself for the first time."""
DISPATCHED = "assigned by the scheduler"
ACCEPTED = "accepted by its agent"

SENT = "sent"
"""A task's state between ``assigned`` and ``running``: its agent accepted it."""


@attrs.frozen
class StateChange:
    """A task (``task_id``, of ``job_id``) or an agent (``agent_id`` alone) went from
    ``before`` (None: no state known before) to ``after`` at ``at`` because of ``reason``. A
    task's change names the agent it involved: its agent, or the one it was taken from."""

    id: int
    at: datetime
    before: str | None
    after: str
    reason: str
    task_id: int | None = None
    job_id: int | None = None
    agent_id: uuid.UUID | None = None


def _limit(instance: object, attribute: object, value: int) -> None:
    if not 1 <= value <= MAX_HISTORY:
        raise ValidationError(f"limit must be between 1 and {MAX_HISTORY}", field="limit")


def _cursor(instance: object, attribute: object, value: int | None) -> None:
    if value is not None and not 1 <= value <= INT32_MAX:
        raise ValidationError(f"before must be a change's id (1 to {INT32_MAX})", field="before")


@attrs.frozen
class HistoryPage:
    """The newest ``limit`` changes older than ``before`` (a change's id; None: the newest).
    Raises ValidationError for a limit outside 1..MAX_HISTORY or a cursor outside
    1..INT32_MAX (ids are 32-bit)."""

    limit: int = attrs.field(default=DEFAULT_HISTORY, validator=_limit)
    before: int | None = attrs.field(default=None, validator=_cursor)


def task_state(task: Task) -> str:
    """What a task's history calls its state: its status, with ``sent`` for an assigned task its
    agent accepted."""
    status = task.status
    if status is TaskStatus.ASSIGNED and task.sent_to_agent:
        return SENT
    return status.value


def agent_state(agent: Agent) -> str:
    """What an agent's history calls its state: the one its pages show (``disabled`` while a
    wrangler disabled it, unless it is offline)."""
    return agent.shown_state.label


def reason_of(reason: str) -> str:
    """A reason cut to what storage keeps."""
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def task_change(previous: Task, task: Task, reason: str, at: datetime) -> StateChange | None:
    """The row that saving ``task`` over ``previous`` records; None when its state is the same."""
    before, after = task_state(previous), task_state(task)
    if before == after:
        return None
    return StateChange(
        id=0,
        at=at,
        before=before,
        after=after,
        reason=reason_of(reason),
        task_id=task.id,
        job_id=task.job_id,
        agent_id=task.agent_id or previous.agent_id,
    )


def task_created(task: Task) -> StateChange | None:
    """The row that storing a new task records: from no state to its state, when it was
    submitted (None for a task without a submission time, which only tests build)."""
    if task.time_submitted is None:
        return None
    return StateChange(
        id=0,
        at=task.time_submitted,
        before=None,
        after=task_state(task),
        reason=SUBMITTED,
        task_id=task.id,
        job_id=task.job_id,
        agent_id=task.agent_id,
    )


def agent_created(agent: Agent) -> StateChange | None:
    """The row that storing a new agent records: from no state to its state, when it was first
    heard from (None for an agent never heard from, which only tests build)."""
    if agent.last_heard_from is None:
        return None
    return StateChange(
        id=0,
        at=agent.last_heard_from,
        before=None,
        after=agent_state(agent),
        reason=REGISTERED,
        agent_id=agent.id,
    )


def agent_change(previous: Agent, agent: Agent, reason: str, at: datetime) -> StateChange | None:
    """The row that saving ``agent`` over ``previous`` records; None when its state is the
    same."""
    before, after = agent_state(previous), agent_state(agent)
    if before == after:
        return None
    return StateChange(
        id=0, at=at, before=before, after=after, reason=reason_of(reason), agent_id=agent.id
    )
