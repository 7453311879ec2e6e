"""``FarmClient``: typed calls for the farm master's public API (``/api/v1``).

Each call is one HTTP request (two where a job is named by its title for a change), answered
with the values of ``farm_client.models`` or refused with a ``farm_client.errors.FarmError`` that
carries the master's message and status. ``request`` reaches any route, new ones included.

A new route is one method here, e.g. for ``POST /jobs/<job>/tasks/<task>/retry``::

    def retry_task(self, job: JobRef, task_id: int) -> Task:
        return Task.from_json(self._post(f"/jobs/{self._job_id(job)}/tasks/{int(task_id)}/retry"))

(``_post`` sends ``{}`` when there is no body; a new answer shape is a new ``models`` class
with a ``from_json`` that reads fields with ``.get`` and keeps the answer in ``raw``.)
"""

from __future__ import annotations

import json
import os
import ssl
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import IO, Any, Self
from urllib.parse import quote, urlsplit

import httpx

from farm_client import models
from farm_client.errors import (
    BadResponse,
    ConfigurationError,
    Conflict,
    FarmError,
    LogGap,
    NotFound,
    ResponseTooLarge,
    StillRunning,
    Unreachable,
    error_class,
)
from farm_client.models import (
    Agent,
    AgentExplanation,
    AgentSummary,
    Block,
    Event,
    Job,
    JobExplanation,
    JobType,
    LogChunk,
    Outcome,
    Requirement,
    Software,
    SoftwareRef,
    SoftwareVersion,
    Task,
    TaskFailure,
    TaskLog,
)

__all__ = ["AgentRef", "FarmClient", "JobRef"]

VERSION = "0.1.0"
API_PREFIX = "/api/v1"

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for each step of a request (connect, send, each read); 5 s to connect."""
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""The largest JSON answer read (a page of 10,000 tasks is about 5 MB)."""
MAX_DOWNLOAD_BYTES = 1024 * 1024 * 1024
"""The largest log or update archive read (the master's own upload limits are lower)."""
MAX_ERROR_BYTES = 64 * 1024
"""How much of an error answer is read for its message."""

JobRef = int | str | Job
"""A job by id, by title (the newest with that title), or as read."""
AgentRef = uuid.UUID | str | Agent | AgentSummary
"""An agent by id (a UUID or its text), or as read."""
RequirementLike = Requirement | Mapping[str, Any] | str
"""A software requirement: a ``Requirement``, its JSON form, or just the software's name."""


def _segment(value: object) -> str:
    """One path segment, quoted (names and titles may hold spaces, ``?``, ``#``, ...)."""
    return quote(str(value), safe="")


def _base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"the farm URL must be http(s)://host[:port], not {url!r}")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"the farm URL takes no query or fragment: {url!r}")
    return url.removesuffix(API_PREFIX)


def _token(token: str | None) -> str | None:
    token = (token or "").strip()
    if not token:
        return None
    if not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigurationError("the token holds characters no token has (spaces, controls)")
    return token


def _without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _query(params: Mapping[str, Any] | None) -> dict[str, str]:
    query: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            query[key] = "true" if value else "false"
        elif isinstance(value, datetime):
            query[key] = value.isoformat()
        else:
            query[key] = str(value)
    return query


def _requirement(requirement: RequirementLike) -> dict[str, Any]:
    if isinstance(requirement, str):
        return {"software": requirement}
    if isinstance(requirement, Requirement):
        return _without_none(
            {
                "software": requirement.software,
                "min_version": requirement.min_version,
                "max_version": requirement.max_version,
            }
        )
    return dict(requirement)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


class FarmClient:
    """A client of one farm master.

    ``url`` (else ``FARM_URL``) is the master's address, e.g. ``http://farm.studio.lan:8080``;
    ``token`` (else ``FARM_TOKEN``) is sent as ``Authorization: Bearer``: make one with ``farm
    tokens create --role artist --name NAME`` on the master. Requests time out after
    ``timeout`` seconds without progress, answers are read up to ``max_response_bytes``
    (downloads up to ``max_download_bytes``), and redirects are not followed. Use it as a
    context manager, or call ``close``.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_download_bytes: int = MAX_DOWNLOAD_BYTES,
        verify: bool | ssl.SSLContext = True,
        trust_env: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = url if url is not None else os.environ.get("FARM_URL")
        if not url:
            raise ConfigurationError("no farm URL: pass url= or set FARM_URL")
        self.url = _base_url(url)
        """The master's address, without ``/api/v1``."""
        self._token = _token(token if token is not None else os.environ.get("FARM_TOKEN"))
        self.max_response_bytes = max_response_bytes
        self.max_download_bytes = max_download_bytes
        headers = {"User-Agent": f"farm-client/{VERSION}", "Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._http = httpx.Client(
            base_url=self.url + API_PREFIX,
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            verify=verify,
            trust_env=trust_env,
            transport=transport,
        )

    @property
    def has_token(self) -> bool:
        """Whether requests carry a token (without one, only networks the master admits
        anonymously are served)."""
        return self._token is not None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FarmClient({self.url!r}, token={'set' if self._token else 'none'})"

    # -- the transport --------------------------------------------------------------------------

    @contextmanager
    def _open(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> Iterator[httpx.Response]:
        """The answer to one request, its body not yet read; a refusal raises its FarmError."""
        if path.startswith(API_PREFIX + "/"):
            path = path[len(API_PREFIX) :]
        if not path.startswith("/"):
            path = "/" + path
        headers = {}
        if content is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"
        elif body is not None:
            content = json.dumps(body, allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        try:
            request = self._http.build_request(
                method, path, params=_query(params), content=content, headers=headers
            )
        except httpx.InvalidURL as error:
            raise ConfigurationError(f"cannot build a request for {path!r}: {error}") from None
        url = str(request.url)
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as error:
            raise Unreachable(
                f"no answer from the master: {str(error) or type(error).__name__}",
                method=method,
                url=url,
            ) from error
        try:
            if response.status_code >= 400:
                raise self._error(method, url, response)
            if response.status_code >= 300:
                raise BadResponse(
                    f"redirected to {response.headers.get('Location')!r} (not followed)",
                    status=response.status_code,
                    method=method,
                    url=url,
                )
            yield response
        finally:
            response.close()

    def _read(self, method: str, response: httpx.Response, limit: int) -> bytes:
        """The answer's body, at most ``limit`` bytes (after decompression)."""
        url = str(response.request.url)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ResponseTooLarge(
                f"the answer is {declared} bytes, over the client's limit of {limit}",
                status=response.status_code,
                method=method,
                url=url,
            )
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLarge(
                        f"the answer is over the client's limit of {limit} bytes",
                        status=response.status_code,
                        method=method,
                        url=url,
                    )
                chunks.append(chunk)
        except httpx.TransportError as error:
            raise Unreachable(
                f"the answer was cut off: {str(error) or type(error).__name__}",
                method=method,
                url=url,
            ) from error
        return b"".join(chunks)

    def _error(self, method: str, url: str, response: httpx.Response) -> FarmError:
        status = response.status_code
        cls = error_class(status)
        try:
            raw = self._read(method, response, MAX_ERROR_BYTES)
        except ResponseTooLarge:
            raw = b""
        body: Any = raw.decode("utf-8", "replace")
        message = f"HTTP {status} {response.reason_phrase}".strip()
        field = None
        try:
            body = json.loads(raw)
        except ValueError:
            if body.strip():
                message = f"{message}: {body.strip()[:500]}"
        if isinstance(body, dict):
            if isinstance(body.get("error"), str):
                message = body["error"]
            if isinstance(body.get("field"), str):
                field = body["field"]
        return cls(
            message,
            status=status,
            method=method,
            url=url,
            field=field,
            body=body,
            retry_after=_retry_after(response),
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Any API call: ``path`` under ``/api/v1`` (``"/jobs/12/explain"``), ``json`` the body
        (None: none), ``params`` the query string (None values left out). Returns the decoded
        JSON answer (None for an empty one, as a 204's); refusals raise their FarmError."""
        method = method.upper()
        with self._open(method, path, params=params, body=json) as response:
            raw = self._read(method, response, self.max_response_bytes)
        if not raw.strip():
            return None
        try:
            return _decode(raw)
        except ValueError:
            raise BadResponse(
                "the answer is not JSON",
                status=response.status_code,
                method=method,
                url=str(response.request.url),
                body=raw[:500].decode("utf-8", "replace"),
            ) from None

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def _post(self, path: str, body: Any = None) -> Any:
        # A POST always carries a JSON body ({} for an action without options): the master
        # refuses a POST with neither body nor Content-Type.
        return self.request("POST", path, json={} if body is None else body)

    def _put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)

    def _delete(self, path: str) -> None:
        self.request("DELETE", path)

    def _download(self, path: str, max_bytes: int | None) -> bytes:
        limit = self.max_download_bytes if max_bytes is None else max_bytes
        with self._open("GET", path) as response:
            return self._read("GET", response, limit)

    def _save(self, path: str, into: IO[bytes], max_bytes: int | None) -> int:
        limit = self.max_download_bytes if max_bytes is None else max_bytes
        with self._open("GET", path) as response:
            url = str(response.request.url)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ResponseTooLarge(
                    f"the download is {declared} bytes, over the client's limit of {limit}",
                    status=response.status_code,
                    method="GET",
                    url=url,
                )
            written = 0
            try:
                for chunk in response.iter_bytes():
                    written += len(chunk)
                    if written > limit:
                        raise ResponseTooLarge(
                            f"the download is over the client's limit of {limit} bytes",
                            status=response.status_code,
                            method="GET",
                            url=url,
                        )
                    into.write(chunk)
            except httpx.TransportError as error:
                raise Unreachable(
                    f"the download was cut off: {str(error) or type(error).__name__}",
                    method="GET",
                    url=url,
                ) from error
            return written

    def _upload(
        self,
        path: str,
        data: bytes,
        content_type: str,
        *,
        method: str = "PUT",
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        with self._open(
            method, path, params=params, content=data, content_type=content_type
        ) as response:
            raw = self._read(method, response, self.max_response_bytes)
        return _decode(raw) if raw.strip() else None

    # -- jobs -----------------------------------------------------------------------------------

    def _job_path(self, job: JobRef) -> str:
        return f"/jobs/{_segment(job.id if isinstance(job, Job) else job)}"

    def _job_id(self, job: JobRef) -> int:
        """A job's id; a title is looked up (the newest job with it), as ``GET`` does."""
        if isinstance(job, Job):
            return job.id
        if isinstance(job, int):
            return job
        if job.isascii() and job.isdigit():
            return int(job)
        return self.job(job).id

    def submit_job(
        self,
        title: str,
        jobtype: str,
        start: float,
        end: float | None = None,
        *,
        by: float | None = None,
        batch: int | None = None,
        priority: int | None = None,
        weight: int | None = None,
        requeue: int | None = None,
        ram: int | None = None,
        ram_warning: int | None = None,
        ram_max: int | None = None,
        cpus: int | None = None,
        minimum_agents: int | None = None,
        maximum_agents: int | None = None,
        data: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        user: str | None = None,
        tags: Sequence[str] | None = None,
        parents: Sequence[JobRef] | None = None,
        software_requirements: Sequence[RequirementLike] | None = None,
        tag_requirements: Sequence[Mapping[str, Any] | str] | None = None,
        jobtype_version: int | None = None,
        max_run_seconds: int | None = None,
        stall_seconds: int | None = None,
        **fields: Any,
    ) -> Job:
        """Submit a job of one task per frame ``start, start+by, ... <= end`` (``end``:
        ``start``). Options left None take the master's defaults; ``fields`` passes options
        this client does not name yet."""
        body = _without_none(
            {
                "title": title,
                "jobtype": jobtype,
                "jobtype_version": jobtype_version,
                "start": start,
                "end": end,
                "by": by,
                "batch": batch,
                "priority": priority,
                "weight": weight,
                "requeue": requeue,
                "ram": ram,
                "ram_warning": ram_warning,
                "ram_max": ram_max,
                "cpus": cpus,
                "minimum_agents": minimum_agents,
                "maximum_agents": maximum_agents,
                "data": None if data is None else dict(data),
                "environ": None if environ is None else dict(environ),
                "user": user,
                "tags": None if tags is None else list(tags),
                "parents": None if parents is None else [self._job_id(p) for p in parents],
                "software_requirements": None
                if software_requirements is None
                else [_requirement(r) for r in software_requirements],
                "tag_requirements": None
                if tag_requirements is None
                else [{"tag": t} if isinstance(t, str) else dict(t) for t in tag_requirements],
                "max_run_seconds": max_run_seconds,
                "stall_seconds": stall_seconds,
            }
        )
        body.update(fields)
        return Job.from_json(self._post("/jobs", body))

    def jobs(
        self,
        *,
        state: str | None = None,
        title: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        search: str | None = None,
        user: str | None = None,
        jobtype: str | None = None,
        tag: str | None = None,
        sort: str | None = None,
        order: str | None = None,
    ) -> list[Job]:
        """Jobs with their task counts, newest first unless ``sort`` (``id``, ``title``,
        ``priority``, ``state``, ``owner``) and ``order`` (``asc``, ``desc``) say otherwise;
        filtered by ``state``, the exact ``title``, ``search`` (a part of the title), ``user``,
        ``jobtype`` and ``tag``."""
        params = {
            "state": state,
            "title": title,
            "limit": limit,
            "offset": offset,
            "q": search,
            "user": user,
            "jobtype": jobtype,
            "tag": tag,
            "sort": sort,
            "order": order,
        }
        return models.many(Job.from_json, self._get("/jobs", params), "jobs")

    def job(self, job: JobRef) -> Job:
        """One job by id or title (the newest job with that title)."""
        return Job.from_json(self._get(self._job_path(job)))

    def update_job(self, job: JobRef, **changes: Any) -> Job:
        """Change a job: ``priority``, ``weight``, ``requeue``, ``batch``, ``ram``, ``cpus``,
        ``title``, ``tags``, ``data``, ``environ``, ``state`` (``paused``/``queued``), ..."""
        return Job.from_json(self._post(f"/jobs/{self._job_id(job)}", changes))

    def set_priority(self, job: JobRef, priority: int) -> Job:
        return self.update_job(job, priority=priority)

    def delete_job(self, job: JobRef) -> None:
        """Delete a job and its tasks (agents are asked to stop them). Unknown: no error."""
        self._delete(f"/jobs/{self._job_id(job)}")

    def tasks(
        self, job: JobRef, *, limit: int | None = None, offset: int | None = None
    ) -> list[Task]:
        """One page of the job's tasks, by frame (the master's default page: 1,000 tasks)."""
        params = {"limit": limit, "offset": offset}
        answer = self._get(f"/jobs/{self._job_id(job)}/tasks", params)
        return models.many(Task.from_json, answer, "tasks")

    def all_tasks(self, job: JobRef, *, page: int = 1000) -> Iterator[Task]:
        """Every task of the job, by frame, fetched ``page`` at a time."""
        job_id = self._job_id(job)
        offset = 0
        while True:
            tasks = self.tasks(job_id, limit=page, offset=offset)
            yield from tasks
            if len(tasks) < page:
                return
            offset += len(tasks)

    def task(self, job: JobRef, task_id: int) -> Task:
        return Task.from_json(self._get(f"/jobs/{self._job_id(job)}/tasks/{int(task_id)}"))

    def blocklist(self, job: JobRef) -> list[Block]:
        """The agents the job's failures have blocked (or nearly) from it."""
        answer = self._get(f"/jobs/{self._job_id(job)}/blocklist")
        return models.many(Block.from_json, answer, "blocks")

    def unblock(self, job: JobRef, agent: AgentRef) -> None:
        """Lift an agent's block for a job."""
        self._delete(f"/jobs/{self._job_id(job)}/blocklist/{_agent_id(agent)}")

    def unblock_all(self, job: JobRef) -> int:
        """Lift every agent's block for a job; returns how many were lifted."""
        answer = self.request("DELETE", f"/jobs/{self._job_id(job)}/blocklist")
        count = answer.get("unblocked") if isinstance(answer, dict) else None
        if not isinstance(count, int):
            raise BadResponse('expected {"unblocked": N}')
        return count

    def task_failures(self, job: JobRef, task_id: int) -> list[TaskFailure]:
        """The task's failed attempts, oldest first: when, on which agent, why."""
        answer = self._get(f"/jobs/{self._job_id(job)}/tasks/{int(task_id)}/failures")
        return models.many(TaskFailure.from_json, answer, "failures")

    # -- a wrangler's controls ------------------------------------------------------------------
    # One task or job: the answer is it, as it is now; a refusal raises (409 when its state
    # does not allow the action). Several: one Outcome per distinct id, in the order given, each
    # done or refused on its own.

    def retry_task(self, job: JobRef, task_id: int) -> Task:
        """Put a done, failed or running task back in the queue."""
        return self._task_control("retry", job, task_id)

    def skip_task(self, job: JobRef, task_id: int) -> Task:
        """Count a task as done without running it."""
        return self._task_control("skip", job, task_id)

    def stop_task(self, job: JobRef, task_id: int) -> Task:
        """Stop a running task, leaving it failed."""
        return self._task_control("stop", job, task_id)

    def _task_control(self, action: str, job: JobRef, task_id: int) -> Task:
        return Task.from_json(
            self._post(f"/jobs/{self._job_id(job)}/tasks/{int(task_id)}/{action}")
        )

    def retry_tasks(self, job: JobRef, task_ids: Sequence[int]) -> list[Outcome]:
        return self._tasks_control("retry", job, task_ids)

    def skip_tasks(self, job: JobRef, task_ids: Sequence[int]) -> list[Outcome]:
        return self._tasks_control("skip", job, task_ids)

    def stop_tasks(self, job: JobRef, task_ids: Sequence[int]) -> list[Outcome]:
        return self._tasks_control("stop", job, task_ids)

    def _tasks_control(self, action: str, job: JobRef, task_ids: Sequence[int]) -> list[Outcome]:
        body = {"tasks": [int(t) for t in task_ids]}
        return models.outcomes(self._post(f"/jobs/{self._job_id(job)}/tasks/{action}", body))

    def cancel_job(self, job: JobRef) -> Job:
        """Stop the job's running tasks and end it canceled."""
        return Job.from_json(self._post(f"/jobs/{self._job_id(job)}/cancel"))

    def pause_job(self, job: JobRef, *, stop_running: bool = False) -> Job:
        """Stop handing out the job's tasks; running ones run on (``stop_running``: they are
        stopped and requeued)."""
        body = {"running": "stop" if stop_running else "finish"}
        return Job.from_json(self._post(f"/jobs/{self._job_id(job)}/pause", body))

    def resume_job(self, job: JobRef) -> Job:
        return Job.from_json(self._post(f"/jobs/{self._job_id(job)}/resume"))

    def requeue_job(self, job: JobRef) -> list[int]:
        """Put the job's failed and canceled tasks back in the queue; returns their ids."""
        return list(Job.from_json(self._post(f"/jobs/{self._job_id(job)}/requeue")).requeued)

    def cancel_jobs(self, jobs: Sequence[JobRef]) -> list[Outcome]:
        return self._jobs_control("cancel", jobs)

    def pause_jobs(self, jobs: Sequence[JobRef], *, stop_running: bool = False) -> list[Outcome]:
        return self._jobs_control("pause", jobs, "stop" if stop_running else "finish")

    def resume_jobs(self, jobs: Sequence[JobRef]) -> list[Outcome]:
        return self._jobs_control("resume", jobs)

    def requeue_jobs(self, jobs: Sequence[JobRef]) -> list[Outcome]:
        """Each outcome's ``job.requeued`` holds the ids of the tasks put back."""
        return self._jobs_control("requeue", jobs)

    def _jobs_control(
        self, action: str, jobs: Sequence[JobRef], running: str | None = None
    ) -> list[Outcome]:
        body = _without_none({"jobs": [self._job_id(j) for j in jobs], "running": running})
        return models.outcomes(self._post(f"/bulk/jobs/{action}", body))

    # -- explanations ---------------------------------------------------------------------------

    def explain_job(self, job: JobRef) -> JobExplanation:
        """Whether the job can run now and, per agent, why not."""
        return JobExplanation.from_json(self._get(f"/jobs/{self._job_id(job)}/explain"))

    def explain_agent(self, agent: AgentRef) -> AgentExplanation:
        """Why the agent is idle, or which job it would get."""
        return AgentExplanation.from_json(self._get(f"/agents/{_agent_id(agent)}/explain"))

    # -- task logs ------------------------------------------------------------------------------

    def _attempt_path(self, job: JobRef, task_id: int, attempt: int) -> str:
        return f"/jobs/{self._job_id(job)}/tasks/{int(task_id)}/attempts/{int(attempt)}/logs"

    def task_logs(self, job: JobRef, task_id: int, attempt: int) -> list[TaskLog]:
        """The logs of one attempt of a task (attempts count from 1)."""
        answer = self._get(self._attempt_path(job, task_id, attempt))
        return models.many(TaskLog.from_json, answer, "task logs")

    def _logfile_path(self, job: JobRef, task_id: int, attempt: int, identifier: str) -> str:
        return f"{self._attempt_path(job, task_id, attempt)}/{_segment(identifier)}/logfile"

    def download_log(
        self,
        job: JobRef,
        task_id: int,
        attempt: int,
        identifier: str,
        *,
        max_bytes: int | None = None,
    ) -> bytes:
        """A log's bytes, at most ``max_bytes`` (default ``max_download_bytes``)."""
        return self._download(self._logfile_path(job, task_id, attempt, identifier), max_bytes)

    def save_log(
        self,
        job: JobRef,
        task_id: int,
        attempt: int,
        identifier: str,
        into: IO[bytes],
        *,
        max_bytes: int | None = None,
    ) -> int:
        """Write a log into a binary file as it arrives; returns how many bytes were written.
        Past ``max_bytes`` (default ``max_download_bytes``) it stops with ResponseTooLarge."""
        path = self._logfile_path(job, task_id, attempt, identifier)
        return self._save(path, into, max_bytes)

    def log_text(self, job: JobRef, task_id: int, attempt: int, identifier: str) -> str:
        """A log's text, decoded (undecodable bytes replaced)."""
        return self.download_log(job, task_id, attempt, identifier).decode("utf-8", "replace")

    def read_log(
        self,
        job: JobRef,
        task_id: int,
        attempt: int,
        identifier: str,
        *,
        offset: int = 0,
        max_bytes: int | None = None,
    ) -> LogChunk:
        """A log's bytes from byte ``offset`` on, as far as they have arrived (a running
        frame's log grows while it runs): read on from the answer's ``next_offset``. At most
        ``max_bytes`` (default ``max_download_bytes``), else ResponseTooLarge. NotFound: no
        such log, or no text of it has arrived yet."""
        if offset < 0:
            raise ValueError("offset must be 0 or more")
        limit = self.max_download_bytes if max_bytes is None else max_bytes
        path = self._logfile_path(job, task_id, attempt, identifier)
        with self._open("GET", path, params={"offset": offset}) as response:
            data = self._read("GET", response, limit)
        return LogChunk(data, offset, offset + len(data))

    def append_log(
        self,
        job: JobRef,
        task_id: int,
        attempt: int,
        identifier: str,
        offset: int,
        data: bytes | str,
        *,
        content_type: str = "text/csv",
    ) -> int:
        """Send a chunk of a running frame's log (what the task's agent does): ``data`` is the
        log's bytes from ``offset`` on, at most 1 MiB. Bytes the master has already are not
        stored twice (a chunk sent again is safe). Returns how many bytes of the log the master
        has. LogGap (a Conflict) when ``offset`` is beyond what it has: its ``offset`` says
        where to send from."""
        body = data.encode() if isinstance(data, str) else data
        path = f"{self._attempt_path(job, task_id, attempt)}/{_segment(identifier)}/chunks"
        try:
            answer = self._upload(
                path, body, content_type, method="POST", params={"offset": int(offset)}
            )
        except Conflict as refused:
            has = refused.body.get("offset") if isinstance(refused.body, dict) else None
            if not isinstance(has, int) or isinstance(has, bool):
                raise
            raise LogGap(
                refused.message,
                offset=has,
                status=refused.status,
                method=refused.method,
                url=refused.url,
                body=refused.body,
            ) from None
        size = answer.get("offset") if isinstance(answer, dict) else None
        if not isinstance(size, int):
            raise BadResponse("the answer names no offset", method="POST", body=answer)
        return size

    def follow_log(
        self,
        job: JobRef,
        task_id: int,
        attempt: int,
        identifier: str,
        *,
        offset: int = 0,
        poll: float = 2.0,
        deadline: float | None = None,
    ) -> Iterator[LogChunk]:
        """A log's chunks as they arrive, from byte ``offset`` on, until its attempt has ended
        (the task runs another attempt, or none) and what its agent sent is read: the new bytes
        are asked for every ``poll`` seconds. ``deadline``: seconds to follow at most, then
        StillRunning (with the offset read so far). A log not registered or empty yet is
        waited for while the attempt runs."""
        if poll <= 0:
            raise ValueError("poll must be positive")
        job_id = self._job_id(job)
        ends = None if deadline is None else time.monotonic() + deadline
        while True:
            # Whether the attempt had ended before the read: then that read is the last one.
            task = self.task(job_id, task_id)
            ended = not _under_way(task, attempt)
            try:
                chunk = self.read_log(job_id, task_id, attempt, identifier, offset=offset)
            except NotFound:
                if ended:
                    raise
                chunk = LogChunk(b"", offset, offset)
            if chunk.data:
                offset = chunk.next_offset
                yield chunk
            if ended:
                return
            wait = poll
            if ends is not None:
                left = ends - time.monotonic()
                if left <= 0:
                    raise StillRunning(
                        f"task {task_id} was still running attempt {attempt} at the deadline",
                        offset=offset,
                    )
                wait = min(poll, left)
            time.sleep(wait)

    def register_log(
        self,
        job: JobRef,
        task_id: int,
        attempt: int,
        identifier: str,
        agent: AgentRef | None = None,
    ) -> TaskLog:
        """Register a log for an attempt (what the task's agent does before uploading it)."""
        body = _without_none(
            {"identifier": identifier, "agent_id": None if agent is None else _agent_id(agent)}
        )
        return TaskLog.from_json(self._post(self._attempt_path(job, task_id, attempt), body))

    def upload_log(
        self,
        job: JobRef,
        task_id: int,
        attempt: int,
        identifier: str,
        text: bytes | str,
        *,
        content_type: str = "text/plain",
    ) -> TaskLog:
        """Upload a registered log's text (``text/plain`` or ``text/csv``)."""
        data = text.encode() if isinstance(text, str) else text
        path = self._logfile_path(job, task_id, attempt, identifier)
        return TaskLog.from_json(self._upload(path, data, content_type))

    # -- agents ---------------------------------------------------------------------------------

    def agents(
        self,
        *,
        state: str | None = None,
        hostname: str | None = None,
        remote_ip: str | None = None,
        port: int | None = None,
        min_ram: int | None = None,
        max_ram: int | None = None,
        min_cpus: int | None = None,
        max_cpus: int | None = None,
        limit: int | None = None,
        offset: int | None = None,
        search: str | None = None,
        tag: str | None = None,
        sort: str | None = None,
        order: str | None = None,
    ) -> list[AgentSummary]:
        """Agents by hostname unless ``sort`` (``hostname``, ``state``, ``ram``, ``cpus``,
        ``last_heard``) and ``order`` (``asc``, ``desc``) say otherwise (id, hostname, port,
        address); filters are AND-ed, ``search`` a part of the host name or address."""
        params = {
            "q": search,
            "tag": tag,
            "sort": sort,
            "order": order,
            "state": state,
            "hostname": hostname,
            "remote_ip": remote_ip,
            "port": port,
            "min_ram": min_ram,
            "max_ram": max_ram,
            "min_cpus": min_cpus,
            "max_cpus": max_cpus,
            "limit": limit,
            "offset": offset,
        }
        return models.many(AgentSummary.from_json, self._get("/agents", params), "agents")

    def agent(self, agent: AgentRef) -> Agent:
        return Agent.from_json(self._get(f"/agents/{_agent_id(agent)}"))

    def update_agent(self, agent: AgentRef, **changes: Any) -> Agent:
        """Change an agent: ``state`` (``disabled``, ``online``), ``upgrade_to``,
        ``restart_requested``, ``ram_allocation``, ``cpu_allocation``, ..."""
        return Agent.from_json(self._post(f"/agents/{_agent_id(agent)}", changes))

    def disable_agent(self, agent: AgentRef) -> Agent:
        """No new work for the agent until it is enabled (its own reports never clear this)."""
        return self.update_agent(agent, state="disabled")

    def enable_agent(self, agent: AgentRef) -> Agent:
        return self.update_agent(agent, state="online")

    def delete_agent(self, agent: AgentRef) -> None:
        """Forget an agent (its unfinished tasks go back to the queue). Unknown: no error."""
        self._delete(f"/agents/{_agent_id(agent)}")

    def agent_tasks(self, agent: AgentRef) -> list[Task]:
        """The tasks an agent holds, each with its job's summary (``Task.job``)."""
        answer = self._get(f"/agents/{_agent_id(agent)}/tasks")
        return models.many(Task.from_json, answer, "tasks")

    def assign_task(self, agent: AgentRef, task_id: int) -> Task:
        """Give a task to an agent by hand."""
        answer = self._post(f"/agents/{_agent_id(agent)}/tasks", {"id": int(task_id)})
        return Task.from_json(answer)

    def agent_tags(self, agent: AgentRef) -> list[str]:
        return models.strings(self._get(f"/agents/{_agent_id(agent)}/tags"), "tags")

    def set_agent_tags(self, agent: AgentRef, tags: Sequence[str]) -> list[str]:
        """Replace an agent's tags (jobs' tag requirements match them); returns them sorted."""
        return models.strings(self._put(f"/agents/{_agent_id(agent)}/tags", list(tags)), "tags")

    def agent_software(self, agent: AgentRef) -> list[SoftwareRef]:
        """The software versions an agent has installed."""
        answer = self._get(f"/agents/{_agent_id(agent)}/software")
        return models.many(SoftwareRef.from_json, answer, "software")

    def add_agent_software(self, agent: AgentRef, software: str, version: str) -> list[SoftwareRef]:
        """Record that an agent has a catalogue version installed; returns all it has."""
        body = {"software": software, "version": version}
        answer = self._post(f"/agents/{_agent_id(agent)}/software", body)
        return models.many(SoftwareRef.from_json, answer, "software")

    def remove_agent_software(self, agent: AgentRef, software: str, version: str) -> None:
        self._delete(
            f"/agents/{_agent_id(agent)}/software/{_segment(software)}/versions/{_segment(version)}"
        )

    def agent_schema(self) -> dict[str, str]:
        """Each agent column with its storage type (PyFarm's ``/agents/schema``)."""
        answer = self._get("/agents/schema")
        if not isinstance(answer, dict):
            raise BadResponse("expected the agent schema as a JSON object")
        return {str(k): str(v) for k, v in answer.items()}

    # -- the software catalogue -----------------------------------------------------------------

    def software_list(self) -> list[Software]:
        return models.many(Software.from_json, self._get("/software"), "software")

    def software(self, name: str) -> Software:
        return Software.from_json(self._get(f"/software/{_segment(name)}"))

    def create_software(
        self, name: str, versions: Sequence[str | tuple[str, int]] = ()
    ) -> Software:
        """Add software with its versions, oldest first (``"4.2"``, or ``("4.2", rank)``);
        versions without a rank are ranked after the highest, in steps of 100."""
        body = {"software": name, "versions": [_version(v) for v in versions]}
        return Software.from_json(self._post("/software", body))

    def update_software(
        self,
        name: str,
        *,
        new_name: str | None = None,
        versions: Sequence[str | tuple[str, int]] | None = None,
    ) -> Software:
        """Rename software, or replace its versions."""
        body = _without_none(
            {
                "software": new_name,
                "versions": None if versions is None else [_version(v) for v in versions],
            }
        )
        return Software.from_json(self._put(f"/software/{_segment(name)}", body))

    def delete_software(self, name: str) -> None:
        self._delete(f"/software/{_segment(name)}")

    def software_versions(self, name: str) -> list[SoftwareVersion]:
        answer = self._get(f"/software/{_segment(name)}/versions")
        return models.many(SoftwareVersion.from_json, answer, "versions")

    def software_version(self, name: str, version: str) -> SoftwareVersion:
        answer = self._get(f"/software/{_segment(name)}/versions/{_segment(version)}")
        return SoftwareVersion.from_json(answer)

    def add_software_version(
        self, name: str, version: str, rank: int | None = None
    ) -> SoftwareVersion:
        """Add a version (without a rank: newer than every other)."""
        body = _without_none({"version": version, "rank": rank})
        return SoftwareVersion.from_json(self._post(f"/software/{_segment(name)}/versions", body))

    def delete_software_version(self, name: str, version: str) -> None:
        self._delete(f"/software/{_segment(name)}/versions/{_segment(version)}")

    # -- job types ------------------------------------------------------------------------------

    def jobtypes(self) -> list[JobType]:
        """Every job type, at its newest version."""
        return models.many(JobType.from_json, self._get("/jobtypes"), "job types")

    def jobtype(self, name: str) -> JobType:
        """A job type's newest version."""
        return JobType.from_json(self._get(f"/jobtypes/{_segment(name)}"))

    def create_jobtype(
        self,
        name: str,
        *,
        description: str | None = None,
        classname: str | None = None,
        code: str | None = None,
        max_batch: int | None = None,
        batch_contiguous: bool | None = None,
        software_requirements: Sequence[RequirementLike] | None = None,
    ) -> JobType:
        """A new job type, at version 1."""
        body = _jobtype_body(
            name, description, classname, code, max_batch, batch_contiguous, software_requirements
        )
        return JobType.from_json(self._post("/jobtypes", body))

    def update_jobtype(
        self,
        name: str,
        *,
        description: str | None = None,
        classname: str | None = None,
        code: str | None = None,
        max_batch: int | None = None,
        batch_contiguous: bool | None = None,
        software_requirements: Sequence[RequirementLike] | None = None,
    ) -> JobType:
        """The job type's next version, with these values (the same ones: no new version)."""
        body = _jobtype_body(
            name, description, classname, code, max_batch, batch_contiguous, software_requirements
        )
        return JobType.from_json(self._put(f"/jobtypes/{_segment(name)}", body))

    def delete_jobtype(self, name: str) -> None:
        """Delete a job type (a 409 Conflict while jobs use it)."""
        self._delete(f"/jobtypes/{_segment(name)}")

    def jobtype_versions(self, name: str) -> list[JobType]:
        answer = self._get(f"/jobtypes/{_segment(name)}/versions")
        return models.many(JobType.from_json, answer, "job type versions")

    def jobtype_version(self, name: str, version: int) -> JobType:
        return JobType.from_json(self._get(f"/jobtypes/{_segment(name)}/versions/{int(version)}"))

    # -- agent update archives ------------------------------------------------------------------

    def upload_agent_update(self, version: str, archive: bytes) -> dict[str, Any]:
        """Store a PyFarm agent update archive (a zip) as ``version``."""
        answer = self._upload(f"/agents/updates/{_segment(version)}", archive, "application/zip")
        return dict(answer) if isinstance(answer, dict) else {}

    def download_agent_update(self, version: str, *, max_bytes: int | None = None) -> bytes:
        return self._download(f"/agents/updates/{_segment(version)}", max_bytes)

    def save_agent_update(
        self, version: str, into: IO[bytes], *, max_bytes: int | None = None
    ) -> int:
        """Write an update archive into a binary file; returns how many bytes were written."""
        return self._save(f"/agents/updates/{_segment(version)}", into, max_bytes)

    # -- the audit trail ------------------------------------------------------------------------

    def events(
        self,
        *,
        target: str | None = None,
        actor: str | None = None,
        since: datetime | str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Who changed what, newest first: ``target`` like ``job:12`` or ``agent:<id>``,
        ``actor`` a token's or user's name, ``since`` a time (ISO text or an aware datetime),
        ``limit`` 1 to 1000 (default 100)."""
        params = {"target": target, "actor": actor, "since": since, "limit": limit}
        return models.many(Event.from_json, self._get("/events", params), "events")


def _decode(raw: bytes) -> Any:
    return json.loads(raw)


def _under_way(task: Task, attempt: int) -> bool:
    """Whether ``attempt`` of the task is its current one and runs (or waits, assigned to an
    agent, to start)."""
    if task.attempts != attempt:
        return False
    return task.state == "running" or (
        task.state in ("queued", "assigned") and task.agent_id is not None
    )


def _agent_id(agent: AgentRef) -> str:
    if isinstance(agent, Agent | AgentSummary):
        return str(agent.id)
    if isinstance(agent, uuid.UUID):
        return str(agent)
    return _segment(agent)


def _version(version: str | tuple[str, int]) -> dict[str, Any]:
    if isinstance(version, str):
        return {"version": version}
    return {"version": version[0], "rank": version[1]}


def _jobtype_body(
    name: str,
    description: str | None,
    classname: str | None,
    code: str | None,
    max_batch: int | None,
    batch_contiguous: bool | None,
    software_requirements: Sequence[RequirementLike] | None,
) -> dict[str, Any]:
    return _without_none(
        {
            "name": name,
            "description": description,
            "classname": classname,
            "code": code,
            "max_batch": max_batch,
            "batch_contiguous": batch_contiguous,
            "software_requirements": None
            if software_requirements is None
            else [_requirement(r) for r in software_requirements],
        }
    )
