"""A wrangler's controls (``farm_domain.controls``) over HTTP.

One task: ``POST /api/v1/jobs/<job>/tasks/<task>/retry|skip|stop`` answers the task.
One job: ``POST /api/v1/jobs/<job>/cancel|pause|resume|requeue`` answers the job (``pause``
takes ``{"running": "finish"|"stop"}``, default finish; ``requeue`` adds ``requeued``, the ids).
Several: ``POST /api/v1/jobs/<job>/tasks/retry|skip|stop`` with ``{"tasks": [ids]}`` and
``POST /api/v1/bulk/jobs/cancel|pause|resume|requeue`` with ``{"jobs": [ids]}`` (and
``running`` for pause) answer 200 with ``{"results": [...]}``, one entry per distinct id in the
order given: ``{"id", "ok": true, "task"|"job"}`` or ``{"id", "ok": false, "status", "error"}``.
"""

from __future__ import annotations

from typing import Any

import falcon

from farm_domain.controls import (
    Controls,
    JobAction,
    Outcome,
    TaskAction,
    parse_ids,
    parse_running,
)
from farm_domain.errors import NotFound, ValidationError
from farm_domain.validation import parse_id
from farm_http.conversion import body_object
from farm_http.errors import status_code
from farm_http.identity import actor
from farm_http.schemas.jobs import job_json, task_json


def _job_id(value: str) -> int:
    job_id = parse_id(value)
    if job_id is None:
        raise NotFound(f"Job {value} not found")
    return job_id


def _body(req: falcon.Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The JSON object sent, or {} when nothing was; only ``allowed`` keys."""
    body = {} if not req.content_length else body_object(req)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    return body


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    if outcome.error is not None:
        return {
            "id": outcome.id,
            "ok": False,
            "status": status_code(outcome.error),
            "error": outcome.error.message,
        }
    data: dict[str, Any] = {"id": outcome.id, "ok": True}
    if outcome.task is not None:
        data["task"] = task_json(outcome.task)
    if outcome.job is not None:
        data["job"] = _job_view_json(outcome)
    return data


def _job_view_json(outcome: Outcome) -> dict[str, Any]:
    assert outcome.job is not None
    data = job_json(outcome.job.job, outcome.job.counts)
    if outcome.requeued:
        data["requeued"] = list(outcome.requeued)
    return data


class TaskControlResource:
    def __init__(self, controls: Controls, action: TaskAction) -> None:
        self._controls = controls
        self._action = action

    def on_post(self, req: falcon.Request, resp: falcon.Response, job: str, task_id: int) -> None:
        _body(req, frozenset())
        task = self._controls.task(actor(req), self._action, _job_id(job), task_id)
        resp.media = task_json(task)


class TasksControlResource:
    def __init__(self, controls: Controls, action: TaskAction) -> None:
        self._controls = controls
        self._action = action

    def on_post(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        ids = parse_ids(_body(req, frozenset({"tasks"})).get("tasks"), "tasks")
        outcomes = self._controls.tasks(actor(req), self._action, _job_id(job), ids)
        resp.media = {"results": [_outcome_json(o) for o in outcomes]}


class JobControlResource:
    def __init__(self, controls: Controls, action: JobAction) -> None:
        self._controls = controls
        self._action = action

    def on_post(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        allowed = {"running"} if self._action is JobAction.PAUSE else set()
        running = parse_running(_body(req, frozenset(allowed)).get("running"))
        outcome = self._controls.job(actor(req), self._action, _job_id(job), running)
        resp.media = _job_view_json(outcome)


class JobsControlResource:
    def __init__(self, controls: Controls, action: JobAction) -> None:
        self._controls = controls
        self._action = action

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        allowed = {"jobs", "running"} if self._action is JobAction.PAUSE else {"jobs"}
        body = _body(req, frozenset(allowed))
        ids = parse_ids(body.get("jobs"), "jobs")
        running = parse_running(body.get("running"))
        outcomes = self._controls.jobs(actor(req), self._action, ids, running)
        resp.media = {"results": [_outcome_json(o) for o in outcomes]}
