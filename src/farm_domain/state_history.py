"""Reading a task's and an agent's history (``farm_domain.history``)."""

from __future__ import annotations

import uuid

from farm_domain.access import AccessPolicy, Identity, Permission
from farm_domain.errors import NotFound
from farm_domain.history import HistoryPage, StateChange
from farm_domain.ports import UnitOfWorkFactory

NEWEST = HistoryPage()


class StateHistory:
    """The changes of state as people read them: newest first, a page at a time."""

    def __init__(self, uow: UnitOfWorkFactory, *, policy: AccessPolicy) -> None:
        self._uow = uow
        self._policy = policy

    def of_task(
        self, actor: Identity, job_id: int, task_id: int, page: HistoryPage = NEWEST
    ) -> list[StateChange]:
        """The task's changes, newest first. Raises Forbidden, NotFound (``Task not found``:
        no such task in that job)."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            task = uow.tasks.get(task_id)
            if task is None or task.job_id != job_id:
                raise NotFound("Task not found")
            return uow.history.of_task(task_id, page)

    def of_agent(
        self, actor: Identity, agent_id: uuid.UUID, page: HistoryPage = NEWEST
    ) -> list[StateChange]:
        """The agent's changes, newest first. Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            if uow.agents.get(agent_id) is None:
                raise NotFound(f"Agent {agent_id} not found")
            return uow.history.of_agent(agent_id, page)
