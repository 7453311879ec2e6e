"""Parsing and representations of jobs, their tasks (also listed per agent) and blocklists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import attrs

from farm_domain.enums import WorkState
from farm_domain.errors import ValidationError
from farm_domain.failures import valid_reason
from farm_domain.job_requests import JobSpec, task_outputs
from farm_domain.jobs import BlockView
from farm_domain.validation import INT32_MAX
from farm_domain.work import (
    MAX_OUTPUT_PATH,
    MAX_TASK_OUTPUTS,
    Job,
    JobQuery,
    JobSummary,
    Task,
    TaskFailure,
    TaskOutput,
    TaskStatus,
)
from farm_http.conversion import (
    IsoTime,
    UuidText,
    iso_time,
    structure,
    url_argument_error,
    values_of,
)
from farm_http.list_filters import (
    JobSortName,
    JobTypeText,
    OrderName,
    SearchText,
    TagText,
    TitleText,
    UserText,
    job_filters,
    one,
)
from farm_http.openapi import BodyOf, Json
from farm_http.schemas.jobtypes import RequirementJson, requirement_json

JobState = Annotated[str, Json(enum=["queued", *(state.value for state in WorkState)])]
TaskState = Annotated[str, values_of(TaskStatus)]
PageLimit = Annotated[int, Json(minimum=1, maximum=INT32_MAX)]
PageOffset = Annotated[int, Json(minimum=0, maximum=INT32_MAX)]

_READ_ONLY_JOB_KEYS = ("time_submitted", "time_started", "time_finished")
_FIXED_JOB_KEYS = (
    "start",
    "end",
    "by",
    "jobtype",
    "jobtype_version",
    "parents",
    "software_requirements",
    "tag_requirements",
    "id",
)


JOB_SPEC_BODY = BodyOf(JobSpec, "JobSpec", extra={"jobtype": str | int | None})
"""A submission: ``JobSpec`` as sent; ``jobtype`` may also be a job type's id (a number)."""


def job_spec(body: dict[str, Any]) -> JobSpec:
    body = dict(body)
    if "by" in body and type(body["by"]) not in (int, float):
        raise ValidationError("`by` needs to be of type decimal or int", field="by")
    if type(body.get("jobtype")) is int:
        body["jobtype"] = str(body["jobtype"])
    _refuse_times(body)
    return structure(body, JobSpec)


def _refuse_times(body: dict[str, Any]) -> None:
    for key in _READ_ONLY_JOB_KEYS:
        if key in body:
            raise ValidationError(f"`{key}` cannot be set manually", field=key)


def job_changes_body(body: dict[str, Any]) -> dict[str, Any]:
    """The checked body of a job update; returns it for structuring into JobChanges."""
    _refuse_times(body)
    for key in _FIXED_JOB_KEYS:
        if key in body:
            raise ValidationError(f"`{key}` cannot be changed after submission", field=key)
    return body


_TASK_FIXED = {
    "time_finished": "`time_finished` cannot be set manually",
    "job_id": "`job_id` cannot be changed",
    "frame": "`frame` cannot be changed",
}


class OutputJson(TypedDict):
    """A file a frame wrote: its path on the shared storage and its size in bytes."""

    path: Annotated[str, Json(minLength=1, maxLength=MAX_OUTPUT_PATH)]
    size: Annotated[int, Json(minimum=0)]


class TaskReportJson(TypedDict, total=False):
    """An agent's report on its task. ``time_started`` may only be ``"now"``; ``agent_id`` only
    null (the agent gives the task back); ``outputs`` come with a ``done`` report."""

    state: str
    last_error: str | None
    agent_id: None
    progress: float
    time_started: Literal["now"]
    reason: str | None
    outputs: Annotated[list[OutputJson], Json(maxItems=MAX_TASK_OUTPUTS)]


_TASK_REPORT_KEYS = frozenset(TaskReportJson.__annotations__)
_OUTPUTS_SHAPE = '`outputs` must be a list of {"path": "<file>", "size": <bytes>}'


def task_outputs_body(value: Any) -> tuple[TaskOutput, ...]:
    """A report's ``outputs`` as sent: a bounded list of {"path", "size"} objects."""
    if not isinstance(value, list):
        raise ValidationError(_OUTPUTS_SHAPE, field="outputs")
    if len(value) > MAX_TASK_OUTPUTS:
        raise ValidationError(
            f"`outputs` may list at most {MAX_TASK_OUTPUTS} files", field="outputs"
        )
    outputs = []
    for item in value:
        if (
            not isinstance(item, dict)
            or item.keys() != {"path", "size"}
            or not isinstance(item["path"], str)
            or type(item["size"]) is not int
        ):
            raise ValidationError(_OUTPUTS_SHAPE, field="outputs")
        outputs.append(TaskOutput(item["path"], item["size"]))
    return task_outputs(tuple(outputs))


@attrs.frozen
class TaskReportBody:
    state: str | None = None
    last_error: str | None = None
    progress: float | None = None
    reason: str | None = None


def task_report_parts(body: dict[str, Any]) -> tuple[dict[str, Any], bool, bool]:
    """Split an agent's task report into (typed fields, give back, started now), with
    PyFarm's messages for what a report may not set."""
    for key, message in _TASK_FIXED.items():
        if key in body:
            raise ValidationError(message, field=key)
    unknown = sorted(body.keys() - _TASK_REPORT_KEYS)
    if unknown:
        raise ValidationError(f"Unknown columns in request: {', '.join(unknown)}", field=unknown[0])
    started_now = False
    if "time_started" in body:
        if body["time_started"] != "now":
            raise ValidationError("`time_started` cannot be set manually", field="time_started")
        started_now = True
    give_back = False
    if "agent_id" in body:
        if body["agent_id"] is not None:
            raise ValidationError("`agent_id` can only be set to null", field="agent_id")
        give_back = True
    fields = {k: v for k, v in body.items() if k in ("state", "last_error", "progress", "reason")}
    typed = structure(fields, TaskReportBody)
    if "state" in fields and typed.state is None:
        raise ValidationError("`state` must be a string", field="state")
    if "progress" in fields and typed.progress is None:
        raise ValidationError("`progress` must be a number", field="progress")
    if typed.reason is not None and not valid_reason(typed.reason):
        raise ValidationError(
            "`reason` must be a short code of lowercase letters and underscores (1 to 32)",
            field="reason",
        )
    parsed: dict[str, Any] = {k: getattr(typed, k) for k in fields}
    if "outputs" in body:
        parsed["outputs"] = task_outputs_body(body["outputs"])
    return parsed, give_back, started_now


class TaskPage(TypedDict, total=False):
    limit: PageLimit
    offset: PageOffset


def task_page(params: Mapping[str, str | list[str]]) -> dict[str, int]:
    """``limit`` and ``offset`` of a job's tasks, where given; the service checks the range."""
    page = {}
    for name in TaskPage.__annotations__:
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, list) or not (value.isascii() and value.isdigit()) or len(value) > 10:
            raise url_argument_error(name, f"{value!r} is not a whole number")
        page[name] = int(value)
    return page


class JobFilters(TypedDict, total=False):
    """Filters of the job list (AND-ed), its order and paging; the dashboard's jobs page takes
    the same filters (``farm_http.list_filters``)."""

    state: JobState
    title: TitleText
    q: SearchText
    """A part of the title (ASCII letters in any case)."""
    user: UserText
    """The submitter's name or the job's ``user``."""
    jobtype: JobTypeText
    tag: TagText
    sort: JobSortName
    order: OrderName
    """Default ``desc`` (newest first)."""
    limit: PageLimit
    offset: PageOffset


def job_query(params: Mapping[str, str | list[str]]) -> JobQuery:
    """The job list's filters, order and paging from the query string. Raises
    ValidationError (a bad, repeated or too long argument)."""

    def number(name: str, low: int) -> int | None:
        value = one(params, name)
        if value is None:
            return None
        if (
            not (value.isascii() and value.isdigit() and len(value) <= 10)
            or not low <= int(value) <= INT32_MAX
        ):
            raise url_argument_error(name, f"{value!r} is not a whole number of at least {low}")
        return int(value)

    return attrs.evolve(
        job_filters(params), limit=number("limit", 1), offset=number("offset", 0) or 0
    )


class TagRequirementJson(TypedDict):
    tag: str
    negate: bool


class JobJson(TypedDict):
    """A job; ``tasks`` counts its tasks by state."""

    id: int
    title: str
    jobtype: str | None
    jobtype_version: int | None
    state: JobState
    priority: int
    weight: int
    requeue: int
    start: float
    end: float
    by: float
    batch: int
    ram: int
    ram_warning: int | None
    ram_max: int | None
    cpus: int
    max_run_seconds: int | None
    stall_seconds: int | None
    minimum_agents: int | None
    maximum_agents: int | None
    data: dict[str, Any]
    environ: dict[str, str]
    user: str | None
    submitted_by: str | None
    tags: list[str]
    parents: list[int]
    software_requirements: list[RequirementJson]
    tag_requirements: list[TagRequirementJson]
    time_submitted: IsoTime | None
    time_started: IsoTime | None
    time_finished: IsoTime | None
    reason: str | None
    tasks: NotRequired[dict[TaskState, int]]


def job_json(job: Job, counts: dict[TaskStatus, int] | None = None) -> JobJson:
    data: JobJson = {
        "id": job.id,
        "title": job.title,
        "jobtype": job.jobtype,
        "jobtype_version": job.jobtype_version,
        "state": job.state.value if job.state else "queued",
        "priority": job.priority,
        "weight": job.weight,
        "requeue": job.requeue,
        "start": job.frame_start,
        "end": job.frame_end,
        "by": job.frame_by,
        "batch": job.batch,
        "ram": job.ram,
        "ram_warning": job.ram_warning,
        "ram_max": job.ram_max,
        "cpus": job.cpus,
        "max_run_seconds": job.max_run_seconds,
        "stall_seconds": job.stall_seconds,
        "minimum_agents": job.minimum_agents,
        "maximum_agents": job.maximum_agents,
        "data": job.data,
        "environ": job.environ,
        "user": job.user,
        "submitted_by": job.submitted_by,
        "tags": list(job.tags),
        "parents": list(job.parents),
        "software_requirements": [requirement_json(r) for r in job.software_requirements],
        "tag_requirements": [{"tag": r.tag, "negate": r.negate} for r in job.tag_requirements],
        "time_submitted": iso_time(job.time_submitted),
        "time_started": iso_time(job.time_started),
        "time_finished": iso_time(job.time_finished),
        "reason": job.reason,
    }
    if counts is not None:
        data["tasks"] = {status.value: counts.get(status, 0) for status in TaskStatus}
    return data


class TaskJobJson(TypedDict):
    """The job a task belongs to (in an agent's list of tasks)."""

    id: int
    title: str
    jobtype: str
    jobtype_id: int
    jobtype_version: int


class TaskJson(TypedDict):
    """One frame of a job; ``job`` names the job in an agent's list of tasks."""

    id: int
    job_id: int
    frame: float
    state: TaskState
    priority: int
    attempts: int
    failures: int
    agent_id: UuidText | None
    sent_to_agent: bool
    last_error: str | None
    reason: str | None
    hidden: bool
    progress: float | None
    time_submitted: IsoTime | None
    time_started: IsoTime | None
    time_finished: IsoTime | None
    not_before: IsoTime | None
    failed_on: UuidText | None
    skipped: bool
    outputs: list[OutputJson]
    job: NotRequired[TaskJobJson]


def task_json(task: Task, job: JobSummary | None = None) -> TaskJson:
    """A task; ``job`` (given when listing an agent's tasks) names the job it belongs to."""
    data: TaskJson = {
        "id": task.id,
        "job_id": task.job_id,
        "frame": task.frame,
        "state": task.status.value,
        "priority": task.priority,
        "attempts": task.attempts,
        "failures": task.failures,
        "agent_id": None if task.agent_id is None else str(task.agent_id),
        "sent_to_agent": task.sent_to_agent,
        "last_error": task.last_error,
        "reason": task.reason,
        "hidden": task.hidden,
        "progress": task.progress,
        "time_submitted": iso_time(task.time_submitted),
        "time_started": iso_time(task.time_started),
        "time_finished": iso_time(task.time_finished),
        "not_before": iso_time(task.not_before),
        "failed_on": None if task.failed_on is None else str(task.failed_on),
        "skipped": task.skipped,
        "outputs": [{"path": o.path, "size": o.size} for o in task.outputs],
    }
    if job is not None:
        data["job"] = {
            "id": job.id,
            "title": job.title,
            "jobtype": job.jobtype,
            "jobtype_id": job.jobtype_id,
            "jobtype_version": job.jobtype_version,
        }
    return data


class FailureJson(TypedDict):
    """One failed attempt at a task: on which agent, when, why (a short code) and what the
    agent said."""

    attempt: int
    agent_id: UuidText | None
    at: IsoTime | None
    reason: str
    message: str | None


class BlockJson(TypedDict):
    """An agent's entry in a job's blocklist."""

    agent_id: UuidText
    failures: int
    refused: bool
    refusal: str | None
    blocked: bool
    updated_on: IsoTime | None


class UnblockedJson(TypedDict):
    unblocked: int


def failure_json(failure: TaskFailure) -> FailureJson:
    return {
        "attempt": failure.attempt,
        "agent_id": None if failure.agent_id is None else str(failure.agent_id),
        "at": iso_time(failure.at),
        "reason": failure.reason,
        "message": failure.message,
    }


def block_json(view: BlockView) -> BlockJson:
    return {
        "agent_id": str(view.block.agent_id),
        "failures": view.block.failures,
        "refused": view.refused,
        "refusal": view.block.refusal,
        "blocked": view.blocked,
        "updated_on": iso_time(view.block.updated_on),
    }
