"""Failure policies and failure reasons: the rules, without storage or wire formats.

A job may limit how long each of its frames runs (``max_run_seconds``) and how long a frame may
go without output (``stall_seconds``); the farm agent kills a frame past either and reports it
failed with the reason. Jobs without their own limit take the master's defaults
(``FARM_MAX_RUN_SECONDS``, ``FARM_STALL_SECONDS``; 0 is none).

Every failed attempt is kept with a reason code. The farm agent sends one of ``exit`` (a
non-zero exit code), ``timeout``, ``stalled``, ``ram`` (over ``ram_max``), ``not_started`` (the
command could not be started) or ``agent_error``; agents that send none (PyFarm's) fail with
``exit``. A task the master finds missing from its agent's report fails with ``lost``. Any
short code is accepted (``[a-z_]{1,32}``), so that newer agents can say more.
"""

from __future__ import annotations

import re
from datetime import datetime

from farm_domain.work import Task, TaskFailure

MAX_POLICY_SECONDS = 30 * 24 * 3600
"""The longest ``max_run_seconds`` or ``stall_seconds`` a job may have (30 days)."""

REASON = re.compile(r"[a-z_]{1,32}")
DEFAULT_REASON = "exit"
"""The reason of a failure reported without one."""
LOST = "lost"
"""The master's reason: a task it sent was missing from its agent's report (the agent lost it,
e.g. it restarted)."""

MAX_FAILURE_MESSAGE = 2000
"""The most of a failure's message (the agent's ``last_error``) kept with each attempt."""

MAX_FAILURES_LISTED = 500
"""The most failures of a task listed at once (the first ones)."""


def valid_reason(value: object) -> bool:
    return isinstance(value, str) and REASON.fullmatch(value) is not None


def effective_limit(own: int | None, default: int) -> int | None:
    """A job's limit: its own, else the master's default (0: none)."""
    if own is not None:
        return own
    return default or None


def failure_message(last_error: str | None) -> str | None:
    """What is kept of a failure's message: its end (where an error is), bounded."""
    if last_error is None:
        return None
    return last_error.replace("\x00", "\ufffd")[-MAX_FAILURE_MESSAGE:]


def reason_or_default(reason: str | None) -> str:
    """The reason a failed report gives, or the default (``exit``)."""
    return DEFAULT_REASON if reason is None else reason


def failure_of(
    task: Task, reason: str | None, last_error: str | None, now: datetime
) -> TaskFailure:
    """The record of ``task``'s current attempt failing for ``reason`` with ``last_error`` (the
    agent's message), at ``now``; id 0 until stored."""
    return TaskFailure(
        id=0,
        task_id=task.id,
        attempt=task.attempts,
        agent_id=task.agent_id,
        at=now,
        reason=reason_or_default(reason),
        message=failure_message(last_error),
    )
