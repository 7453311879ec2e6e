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

from typing import Annotated, Any, NotRequired, TypedDict, cast

import falcon

from farm_domain.controls import (
    MAX_BULK,
    Controls,
    JobAction,
    Outcome,
    Running,
    TaskAction,
    parse_ids,
    parse_running,
)
from farm_domain.errors import NotFound, ValidationError
from farm_domain.validation import INT32_MAX, parse_id
from farm_http.conversion import body_object
from farm_http.errors import status_code
from farm_http.identity import actor
from farm_http.openapi import Json
from farm_http.schemas.jobs import JobJson, TaskJson, job_json, task_json

Ids = Annotated[
    list[Annotated[int, Json(minimum=1, maximum=INT32_MAX)]],
    Json(minItems=1, maxItems=MAX_BULK),
]


class NoBodyJson(TypedDict):
    """Nothing to send (or an empty object)."""


class PauseJson(TypedDict, total=False):
    """What a pause does to the running frames: let them finish (the default) or stop them."""

    running: Running


class TasksJson(TypedDict):
    """The tasks to act on (1 to 1000 ids; each answered in the results)."""

    tasks: Ids


class JobsJson(TypedDict):
    """The jobs to act on (1 to 1000 ids; each answered in the results)."""

    jobs: Ids


class PauseJobsJson(JobsJson, total=False):
    running: Running


class JobControlJson(JobJson):
    """The job after the action; a requeue adds the ids of the tasks it requeued."""

    requeued: NotRequired[list[int]]


class OutcomeJson(TypedDict):
    """One id's outcome: ``ok`` with the task or job, or the status and error it would have
    been answered alone."""

    id: int
    ok: bool
    status: NotRequired[int]
    error: NotRequired[str]
    task: NotRequired[TaskJson]
    job: NotRequired[JobControlJson]


class ResultsJson(TypedDict):
    results: list[OutcomeJson]


def job_control_body(action: JobAction) -> type[Any]:
    """The body a job control takes: pause alone reads ``running``."""
    return PauseJson if action is JobAction.PAUSE else NoBodyJson


def jobs_control_body(action: JobAction) -> type[Any]:
    return PauseJobsJson if action is JobAction.PAUSE else JobsJson


def _job_id(value: str) -> int:
    job_id = parse_id(value)
    if job_id is None:
        raise NotFound(f"Job {value} not found")
    return job_id


def _body(req: falcon.Request, shape: type[Any]) -> dict[str, Any]:
    """The JSON object sent, or {} when nothing was; only the keys of ``shape`` (a TypedDict),
    which the OpenAPI document declares as the body."""
    allowed = frozenset(shape.__annotations__)
    body = {} if not req.content_length else body_object(req)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    return body


def _outcome_json(outcome: Outcome) -> OutcomeJson:
    if outcome.error is not None:
        return {
            "id": outcome.id,
            "ok": False,
            "status": status_code(outcome.error),
            "error": outcome.error.message,
        }
    data: OutcomeJson = {"id": outcome.id, "ok": True}
    if outcome.task is not None:
        data["task"] = task_json(outcome.task)
    if outcome.job is not None:
        data["job"] = _job_view_json(outcome)
    return data


def _job_view_json(outcome: Outcome) -> JobControlJson:
    assert outcome.job is not None
    # A JobJson is a JobControlJson without ``requeued`` (which mypy does not infer).
    data = cast(JobControlJson, job_json(outcome.job.job, outcome.job.counts))
    if outcome.requeued:
        data["requeued"] = list(outcome.requeued)
    return data


class TaskControlResource:
    def __init__(self, controls: Controls, action: TaskAction) -> None:
        self._controls = controls
        self._action = action

    def on_post(self, req: falcon.Request, resp: falcon.Response, job: str, task_id: int) -> None:
        _body(req, NoBodyJson)
        task = self._controls.task(actor(req), self._action, _job_id(job), task_id)
        resp.media = task_json(task)


class TasksControlResource:
    def __init__(self, controls: Controls, action: TaskAction) -> None:
        self._controls = controls
        self._action = action

    def on_post(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        ids = parse_ids(_body(req, TasksJson).get("tasks"), "tasks")
        outcomes = self._controls.tasks(actor(req), self._action, _job_id(job), ids)
        resp.media = {"results": [_outcome_json(o) for o in outcomes]}


class JobControlResource:
    def __init__(self, controls: Controls, action: JobAction) -> None:
        self._controls = controls
        self._action = action

    def on_post(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        running = parse_running(_body(req, job_control_body(self._action)).get("running"))
        outcome = self._controls.job(actor(req), self._action, _job_id(job), running)
        resp.media = _job_view_json(outcome)


class JobsControlResource:
    def __init__(self, controls: Controls, action: JobAction) -> None:
        self._controls = controls
        self._action = action

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _body(req, jobs_control_body(self._action))
        ids = parse_ids(body.get("jobs"), "jobs")
        running = parse_running(body.get("running"))
        outcomes = self._controls.jobs(actor(req), self._action, ids, running)
        resp.media = {"results": [_outcome_json(o) for o in outcomes]}
