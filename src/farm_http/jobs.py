"""Resources of jobs and their tasks (``/api/v1/jobs``), including the agents' report channel."""

from __future__ import annotations

import uuid

import falcon

from farm_domain.errors import NotFound, ValidationError
from farm_domain.job_requests import JobChanges, TaskReport
from farm_domain.jobs import JobService
from farm_domain.validation import parse_id
from farm_http.conversion import body_object, structure
from farm_http.identity import actor
from farm_http.schemas.jobs import (
    block_json,
    failure_json,
    job_changes_body,
    job_json,
    job_query,
    job_spec,
    task_json,
    task_page,
    task_report_parts,
)


def _job_id(value: str) -> int:
    job_id = parse_id(value)
    if job_id is None:
        raise NotFound(f"Job {value} not found")
    return job_id


def _reporter(req: falcon.Request) -> uuid.UUID | None:
    header = req.get_header("X-Farm-Agent-Id")
    if header is None:
        return None
    try:
        return uuid.UUID(header)
    except ValueError:
        raise ValidationError(f"X-Farm-Agent-Id {header!r} is not a UUID") from None


def _attempt(req: falcon.Request) -> int | None:
    header = req.get_header("X-Farm-Attempt")
    if header is None:
        return None
    attempt = parse_id(header)
    if attempt is None:
        raise ValidationError(f"X-Farm-Attempt {header!r} is not an attempt number")
    return attempt


class JobCollectionResource:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        views = self._jobs.query(actor(req), job_query(req.params))
        resp.media = [job_json(v.job, v.counts) for v in views]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        view = self._jobs.submit(actor(req), job_spec(body_object(req)))
        resp.status = falcon.HTTP_201
        resp.media = job_json(view.job, view.counts)


class JobResource:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        view = self._jobs.get(actor(req), job)
        resp.media = job_json(view.job, view.counts)

    def on_post(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        body = job_changes_body(body_object(req))
        view = self._jobs.update(actor(req), _job_id(job), structure(body, JobChanges))
        resp.media = job_json(view.job, view.counts)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        self._jobs.delete(actor(req), _job_id(job))
        resp.status = falcon.HTTP_204


class JobTasksResource:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        page = task_page(req.params)
        tasks = self._jobs.tasks(
            actor(req),
            _job_id(job),
            **{name: page[name] for name in ("limit", "offset") if name in page},  # type: ignore[arg-type]  # ints only
        )
        resp.media = [task_json(task) for task in tasks]


class JobTaskResource:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response, job: str, task_id: int) -> None:
        resp.media = task_json(self._jobs.task(actor(req), _job_id(job), task_id))

    def on_post(self, req: falcon.Request, resp: falcon.Response, job: str, task_id: int) -> None:
        fields, give_back, started_now = task_report_parts(body_object(req))
        report = TaskReport(give_back=give_back, started_now=started_now, **fields)
        task = self._jobs.report(
            actor(req), _job_id(job), task_id, report, _reporter(req), _attempt(req)
        )
        resp.media = task_json(task)


class JobTaskFailuresResource:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response, job: str, task_id: int) -> None:
        failures = self._jobs.failures(actor(req), _job_id(job), task_id)
        resp.media = [failure_json(failure) for failure in failures]


class JobBlocklistResource:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        resp.media = [block_json(view) for view in self._jobs.blocklist(actor(req), _job_id(job))]

    def on_delete(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        """Lift every agent's block for the job."""
        resp.media = {"unblocked": self._jobs.unblock(actor(req), _job_id(job), None)}


class JobBlockResource:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, job: str, agent_id: uuid.UUID
    ) -> None:
        self._jobs.unblock(actor(req), _job_id(job), agent_id)
        resp.status = falcon.HTTP_204
