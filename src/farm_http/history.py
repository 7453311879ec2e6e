"""A task's and an agent's history (``/history``): changes of state, newest first."""

from __future__ import annotations

import uuid

import falcon

from farm_domain.errors import NotFound
from farm_domain.state_history import StateHistory
from farm_domain.validation import parse_id
from farm_http.identity import actor
from farm_http.schemas.history import agent_change_json, history_page, task_change_json


class TaskHistoryResource:
    def __init__(self, history: StateHistory) -> None:
        self._history = history

    def on_get(self, req: falcon.Request, resp: falcon.Response, job: str, task_id: int) -> None:
        page = history_page(req.params)
        job_id = parse_id(job)
        if job_id is None:
            raise NotFound(f"Job {job} not found")
        changes = self._history.of_task(actor(req), job_id, task_id, page)
        resp.media = [task_change_json(change) for change in changes]


class AgentHistoryResource:
    def __init__(self, history: StateHistory) -> None:
        self._history = history

    def on_get(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        page = history_page(req.params)
        changes = self._history.of_agent(actor(req), agent_id, page)
        resp.media = [agent_change_json(change) for change in changes]
