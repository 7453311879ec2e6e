"""Parsing and representations of jobs, their tasks (also listed per agent) and blocklists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from farm_domain.enums import WorkState
from farm_domain.errors import ValidationError
from farm_domain.failures import valid_reason
from farm_domain.job_requests import JobSpec, task_outputs
from farm_domain.jobs import BlockView
from farm_domain.validation import INT32_MAX
from farm_domain.work import (
    MAX_TASK_OUTPUTS,
    Job,
    JobQuery,
    JobSummary,
    Task,
    TaskFailure,
    TaskOutput,
    TaskStatus,
)
from farm_http.conversion import iso_time, structure, url_argument_error
from farm_http.schemas.jobtypes import requirement_json

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
_TASK_REPORT_KEYS = {
    "state",
    "last_error",
    "agent_id",
    "progress",
    "time_started",
    "reason",
    "outputs",
}
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


def task_page(params: Mapping[str, str | list[str]]) -> dict[str, int]:
    """``limit`` and ``offset`` of a job's tasks, where given; the service checks the range."""
    page = {}
    for name in ("limit", "offset"):
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, list) or not (value.isascii() and value.isdigit()) or len(value) > 10:
            raise url_argument_error(name, f"{value!r} is not a whole number")
        page[name] = int(value)
    return page


def job_query(params: Mapping[str, str | list[str]]) -> JobQuery:
    state = params.get("state")
    title = params.get("title")
    if isinstance(state, list) or isinstance(title, list):
        raise url_argument_error(
            "state" if isinstance(state, list) else "title", "given more than once"
        )
    queued = state == "queued"
    parsed = None
    if state is not None and not queued:
        try:
            parsed = WorkState(state)
        except ValueError:
            raise url_argument_error("state", f"`{state}` is not a valid state") from None

    def number(name: str, low: int) -> int | None:
        value = params.get(name)
        if value is None:
            return None
        if (
            isinstance(value, list)
            or not (value.isascii() and value.isdigit() and len(value) <= 10)
            or not low <= int(value) <= INT32_MAX
        ):
            raise url_argument_error(name, f"{value!r} is not a whole number of at least {low}")
        return int(value)

    return JobQuery(
        state=parsed,
        queued=queued,
        title=title,
        limit=number("limit", 1),
        offset=number("offset", 0) or 0,
    )


def job_json(job: Job, counts: dict[TaskStatus, int] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
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


def task_json(task: Task, job: JobSummary | None = None) -> dict[str, Any]:
    """A task; ``job`` (given when listing an agent's tasks) names the job it belongs to."""
    data: dict[str, Any] = {
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


def failure_json(failure: TaskFailure) -> dict[str, Any]:
    return {
        "attempt": failure.attempt,
        "agent_id": None if failure.agent_id is None else str(failure.agent_id),
        "at": iso_time(failure.at),
        "reason": failure.reason,
        "message": failure.message,
    }


def block_json(view: BlockView) -> dict[str, Any]:
    return {
        "agent_id": str(view.block.agent_id),
        "failures": view.block.failures,
        "refused": view.refused,
        "refusal": view.block.refusal,
        "blocked": view.blocked,
        "updated_on": iso_time(view.block.updated_on),
    }
