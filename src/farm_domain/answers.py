"""What agents answer the master's calls, as the domain acts on them (agent-protocol.md).

The AgentClient adapter turns the wire (statuses, JSON bodies, connection errors) into these.
``name`` is how logs show each answer.
"""

from __future__ import annotations

from typing import ClassVar

import attrs


@attrs.frozen
class Accepted:
    """The agent took the call: it runs the batch, stops the task, or fetches the update."""

    name: ClassVar[str] = "accepted"


@attrs.frozen
class Refused:
    """The agent declined, e.g. it lacks the RAM or CPUs a job asks for; ``reason`` is its
    own words."""

    reason: str
    name: ClassVar[str] = "refused"


@attrs.frozen
class Conflict:
    """The agent holds some of the batch's tasks already (a double or partial assignment);
    ``task_ids`` are the ones it named."""

    task_ids: frozenset[int]
    reason: str
    name: ClassVar[str] = "conflict"


@attrs.frozen
class Busy:
    """The agent is shutting down or busy: it takes nothing now."""

    reason: str
    name: ClassVar[str] = "busy"


@attrs.frozen
class Unreachable:
    """No answer the protocol has, after the client's retries: no connection, a timeout, an
    address outside the agent networks, or an answer the call does not expect."""

    reason: str
    name: ClassVar[str] = "unreachable"


@attrs.frozen
class Running:
    """The tasks the agent says it runs (its answer to a poll)."""

    task_ids: frozenset[int]
    name: ClassVar[str] = "running"


@attrs.frozen
class NotRunning:
    """The agent was asked to stop a task it does not run."""

    name: ClassVar[str] = "not running"


AssignAnswer = Accepted | Refused | Conflict | Busy | Unreachable
PollAnswer = Running | Refused | Busy | Unreachable
StopAnswer = Accepted | NotRunning | Refused | Busy | Unreachable
UpdateAnswer = Accepted | Refused | Busy | Unreachable


def describe(answer: Refused | Busy | Unreachable) -> str:
    """The answer's name with the reason it came with, for logs."""
    return f"{answer.name}: {answer.reason}" if answer.reason else answer.name
