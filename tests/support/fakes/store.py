"""The fake database: the data the fake units of work copy, and the store that keeps it."""

from __future__ import annotations

import itertools
import uuid

import attrs

from farm_domain.agents import Agent
from farm_domain.credentials import Session, Token, User
from farm_domain.events import Event
from farm_domain.history import StateChange
from farm_domain.scheduling import JobAgentBlock
from farm_domain.software import Software
from farm_domain.work import Job, JobTypeVersion, Task, TaskFailure, TaskLog


@attrs.define
class FakeData:
    """The fake's tables: the entities by key, as the SQL tables hold their rows."""

    agents: dict[uuid.UUID, Agent] = attrs.Factory(dict)
    agent_software: dict[uuid.UUID, set[int]] = attrs.Factory(dict)
    gpu_catalogue: set[str] = attrs.Factory(set)
    tasks: dict[int, Task] = attrs.Factory(dict)
    jobs: dict[int, Job] = attrs.Factory(dict)
    unready_jobs: set[int] = attrs.Factory(set)
    """Jobs whose tasks are still being stored: in ``jobs``, but seen by no query."""
    deleting_jobs: set[int] = attrs.Factory(set)
    """Jobs hidden for their deletion: in ``jobs``, but seen by no query."""
    jobtypes: dict[str, int] = attrs.Factory(dict)
    jobtype_versions: dict[int, JobTypeVersion] = attrs.Factory(dict)
    software: dict[str, Software] = attrs.Factory(dict)
    logs: dict[int, TaskLog] = attrs.Factory(dict)
    task_failures: list[TaskFailure] = attrs.Factory(list)
    blocks: dict[tuple[int, uuid.UUID], JobAgentBlock] = attrs.Factory(dict)
    agent_tags: dict[uuid.UUID, set[str]] = attrs.Factory(dict)
    tokens: dict[str, tuple[Token, str]] = attrs.Factory(dict)
    """By name: the token and its secret's digest."""
    users: dict[str, tuple[User, str]] = attrs.Factory(dict)
    """By name: the user and their password's hash."""
    sessions: dict[str, Session] = attrs.Factory(dict)
    """By the secret's digest."""
    events: list[Event] = attrs.Factory(list)
    task_history: list[StateChange] = attrs.Factory(list)
    agent_history: list[StateChange] = attrs.Factory(list)


class FakeStore:
    """The 'database' the fake units of work share."""

    def __init__(self) -> None:
        self.data = FakeData()
        self._ids = itertools.count(1)
        self.commits = 0

    def next_id(self) -> int:
        return next(self._ids)
