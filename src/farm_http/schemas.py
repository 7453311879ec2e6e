"""Request parsing (strict, with cattrs) and response rendering for the HTTP API."""

from __future__ import annotations

import types
import typing
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import attrs
import cattrs
import falcon

from farm_domain import validation
from farm_domain.agents import (
    UNSET,
    Agent,
    AgentChanges,
    AgentQuery,
    AgentSummary,
    SoftwareRef,
    Unset,
)
from farm_domain.catalogue import VersionSpec
from farm_domain.enums import AgentState, WorkState
from farm_domain.errors import ValidationError
from farm_domain.jobs import BlockView, JobSpec
from farm_domain.software import Software, SoftwareVersion
from farm_domain.validation import INT32_MAX
from farm_domain.work import (
    Job,
    JobQuery,
    JobSummary,
    JobTypeVersion,
    SoftwareRequirement,
    Task,
    TaskLog,
    TaskStatus,
)

T = TypeVar("T")

# -- strict conversion -------------------------------------------------------------------------

_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "a boolean",
    type(None): "null",
}
_PLURALS = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}


def _describe(allowed: tuple[type, ...]) -> str:
    names = [_TYPE_NAMES.get(tp, tp.__name__) for tp in allowed]
    return " or ".join(names)


def _strict(tp: Any) -> Callable[[Any, Any], Any]:
    """A structure hook accepting exactly ``tp`` (an int is a number; a bool is not an int)."""
    args = typing.get_args(tp) if _is_union(tp) else (tp,)
    primitives = tuple(arg for arg in args if arg in _TYPE_NAMES)
    lists = [arg for arg in args if typing.get_origin(arg) is list]

    def hook(value: Any, _: Any) -> Any:
        kind = type(value)
        if kind in primitives:
            return value
        if kind is int and float in primitives:
            return float(value)
        if lists and kind is list:
            (item_type,) = typing.get_args(lists[0])
            for item in value:
                if type(item) is not item_type:
                    raise TypeError(f"must be a list of {_PLURALS[item_type]}")
            return value
        expected = [_describe(primitives)] if primitives else []
        if lists:
            expected.append(f"a list of {_PLURALS[typing.get_args(lists[0])[0]]}")
        raise TypeError(f"must be {' or '.join(expected)}")

    return hook


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _without_unset(tp: Any) -> Any:
    args = tuple(arg for arg in typing.get_args(tp) if arg is not Unset)
    return args[0] if len(args) == 1 else typing.Union[args]  # noqa: UP007


def _strict_list(tp: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """A JSON array, structured into a list (or a homogeneous ``tuple[X, ...]``)."""
    item_type = typing.get_args(tp)[0]
    make = tuple if typing.get_origin(tp) is tuple else list

    def hook(value: Any, _: Any) -> Any:
        if type(value) is not list:
            raise TypeError("must be a list")
        return make(converter.structure(item, item_type) for item in value)

    return hook


def _is_sequence(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is list or (
        typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis
    )


def _strict_dict(tp: Any) -> Callable[[Any, Any], Any]:
    _, value_type = typing.get_args(tp)

    def hook(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise TypeError("must be an object")
        if value_type is str and not all(type(v) is str for v in value.values()):
            raise TypeError("must map names to strings")
        return value

    return hook


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook_factory(
        lambda tp: typing.get_origin(tp) is dict, _strict_dict
    )
    for primitive in (int, float, str, bool):
        converter.register_structure_hook(primitive, _strict(primitive))
    converter.register_structure_hook_factory(
        _is_sequence,
        lambda tp: _strict_list(tp, converter),
    )
    converter.register_structure_hook_factory(
        lambda tp: _is_union(tp) and Unset in typing.get_args(tp),
        lambda tp: _strict(_without_unset(tp)),
    )
    return converter


REQUEST = _make_converter()


def _format_exception(error: BaseException, _type: Any) -> str:
    if isinstance(error, KeyError):
        return "is required"
    if isinstance(error, cattrs.ForbiddenExtraKeysError):
        return (
            f"request contains field(s) that do not exist: {', '.join(sorted(error.extra_fields))}"
        )
    return str(error)


def _errors_of(error: Exception) -> str:
    messages = []
    for message in cattrs.transform_error(error, format_exception=_format_exception):
        text, _, path = message.partition(" @ $.")
        messages.append(f"`{path}` {text}" if path else text)
    return "; ".join(messages)


def structure(body: dict[str, Any], cls: type[T]) -> T:
    """``body`` as a ``cls``, types checked exactly. Raises ValidationError listing each problem."""
    try:
        return REQUEST.structure(body, cls)
    except (cattrs.BaseValidationError, TypeError) as error:
        raise ValidationError(_errors_of(error)) from None


def body_object(req: falcon.Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    media = req.get_media()
    if not isinstance(media, dict):
        raise ValidationError("request body must be a JSON object")
    return media


# -- agents -----------------------------------------------------------------------------------

_AGENT_KEYS = {field.name for field in attrs.fields(AgentChanges)} - {
    "reported_task_ids",
    "reported_attempts",
}
_READ_ONLY_KEYS = {"last_heard_from", "last_polled"}


def agent_changes(body: dict[str, Any]) -> AgentChanges:
    """Parse an announce or update body. Raises ValidationError with the contract's messages."""
    body = dict(body)
    read_only = sorted(_READ_ONLY_KEYS & body.keys())
    if read_only:
        raise ValidationError(
            f"{', '.join(f'`{key}`' for key in read_only)} cannot be set: read-only",
            field=read_only[0],
        )
    assignments = body.pop("current_assignments", UNSET)
    unknown = sorted(body.keys() - _AGENT_KEYS)
    if unknown:
        raise ValidationError(
            f"request contains field(s) that do not exist: {', '.join(unknown)}",
            field=unknown[0],
        )
    changes = structure(body, AgentChanges)
    if assignments is not UNSET:
        attempts = reported_attempts(assignments)
        changes = attrs.evolve(
            changes,
            reported_task_ids=frozenset(attempts),
            reported_attempts={k: v for k, v in attempts.items() if v is not None},
        )
    return changes


_ASSIGNMENTS_SHAPE = (
    '`current_assignments` must be an object {"<assignment id>": {"tasks": [{"id": <integer>, '
    "...}, ...], ...}, ...}"
)


def reported_attempts(assignments: Any) -> dict[int, int | None]:
    """The task ids in an agent's ``current_assignments``, each with the ``attempt`` the agent
    names (None when it names none, as PyFarm agents may); any other shape is a 400."""
    if not isinstance(assignments, dict):
        raise ValidationError(_ASSIGNMENTS_SHAPE, field="current_assignments")
    found: dict[int, int | None] = {}
    for assignment in assignments.values():
        if not isinstance(assignment, dict) or not isinstance(assignment.get("tasks"), list):
            raise ValidationError(_ASSIGNMENTS_SHAPE, field="current_assignments")
        for task in assignment["tasks"]:
            if not isinstance(task, dict) or type(task.get("id")) is not int:
                raise ValidationError(_ASSIGNMENTS_SHAPE, field="current_assignments")
            attempt = task.get("attempt")
            found[task["id"]] = attempt if type(attempt) is int else None
    return found


def task_id_body(body: dict[str, Any]) -> int:
    """``{"id": <task id>}`` with the contract's messages."""
    if "id" not in body:
        raise ValidationError("No id given for task", field="id")
    if len(body) > 1:
        raise ValidationError("Unknown keys in request")
    if type(body["id"]) is not int:
        raise ValidationError("`id` must be an integer", field="id")
    return body["id"]


def _url_error(name: str, reason: str) -> ValidationError:
    return ValidationError(f"Failed to convert the url argument `{name}`: {reason}", field=name)


def agent_query(params: dict[str, Any]) -> AgentQuery:
    """Filters from the query string; unknown arguments are ignored."""

    def text(name: str) -> str | None:
        value = params.get(name)
        if isinstance(value, list):
            raise _url_error(name, "given more than once")
        return value

    def integer(name: str, low: int = -INT32_MAX, high: int = INT32_MAX) -> int | None:
        value = text(name)
        if value is None:
            return None
        try:
            number = int(value, 10)
        except ValueError:
            raise _url_error(name, f"{value!r} is not an integer") from None
        if not low <= number <= high:
            raise _url_error(name, f"{number} is out of range")
        return number

    def checked(name: str, rule: Callable[[str], str]) -> str | None:
        value = text(name)
        if value is None:
            return None
        try:
            return rule(value)
        except ValidationError as error:
            raise _url_error(name, error.message) from None

    state = text("state")
    try:
        parsed_state = None if state is None else AgentState.parse(state, "state")
    except ValidationError as error:
        raise _url_error("state", error.message) from None
    return AgentQuery(
        min_ram=integer("min_ram"),
        max_ram=integer("max_ram"),
        min_cpus=integer("min_cpus"),
        max_cpus=integer("max_cpus"),
        hostname=checked("hostname", validation.hostname),
        remote_ip=checked("remote_ip", validation.ip_address),
        port=integer("port", 1024, 65535),
        state=parsed_state,  # type: ignore[arg-type]
        limit=integer("limit", 1, 100_000),
        offset=integer("offset", 0) or 0,
    )


# -- rendering --------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def agent_json(agent: Agent, call_refusal: str | None = None) -> dict[str, Any]:
    """An agent; ``dispatch`` tells whether the master will call it, and if not, why."""
    return {
        "id": str(agent.id),
        "hostname": agent.hostname,
        "remote_ip": agent.remote_ip,
        "use_address": agent.use_address.label,
        "os_class": agent.os_class.label if agent.os_class else None,
        "os_fullname": agent.os_fullname,
        "cpu_name": agent.cpu_name,
        "ram": agent.ram,
        "free_ram": agent.free_ram,
        "cpus": agent.cpus,
        "port": agent.port,
        "time_offset": agent.time_offset,
        "version": agent.version,
        "upgrade_to": agent.upgrade_to,
        "ram_allocation": agent.ram_allocation,
        "cpu_allocation": agent.cpu_allocation,
        "restart_requested": agent.restart_requested,
        "state": agent.shown_state.label,
        "last_heard_from": _time(agent.last_heard_from),
        "last_polled": _time(agent.last_polled),
        "mac_addresses": sorted(agent.mac_addresses),
        "gpus": sorted(agent.gpus),
        "software": [software_ref_json(s) for s in agent.software],
        "dispatch": {"callable": call_refusal is None, "reason": call_refusal},
    }


def agent_summary_json(agent: AgentSummary) -> dict[str, Any]:
    # orjson writes a UUID as the lowercase hyphenated string itself (a list of 100k agents
    # is long enough for str() per row to show).
    return {
        "id": agent.id,
        "hostname": agent.hostname,
        "port": agent.port,
        "remote_ip": agent.remote_ip,
    }


def task_json(task: Task, job: JobSummary | None = None) -> dict[str, Any]:
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
        "hidden": task.hidden,
        "progress": task.progress,
        "time_submitted": _time(task.time_submitted),
        "time_started": _time(task.time_started),
        "time_finished": _time(task.time_finished),
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


# PyFarm's storage type names for the agent columns, kept for clients that read them.
AGENT_SCHEMA = {
    "id": "UUIDType",
    "hostname": "VARCHAR(255)",
    "remote_ip": "IPv4Address",
    "use_address": "UseAgentAddressEnum",
    "os_class": "OperatingSystemEnum",
    "os_fullname": "VARCHAR(128)",
    "cpu_name": "VARCHAR(128)",
    "ram": "INTEGER",
    "free_ram": "INTEGER",
    "cpus": "INTEGER",
    "port": "INTEGER",
    "time_offset": "INTEGER",
    "version": "VARCHAR(16)",
    "upgrade_to": "VARCHAR(16)",
    "ram_allocation": "FLOAT",
    "cpu_allocation": "FLOAT",
    "restart_requested": "BOOLEAN",
    "state": "AgentStateEnum",
    "last_heard_from": "DATETIME",
    "last_polled": "DATETIME",
}


# -- software ---------------------------------------------------------------------------------


@attrs.frozen
class SoftwareBody:
    software: str
    versions: tuple[VersionSpec, ...] = ()


@attrs.frozen
class SoftwareUpdateBody:
    software: str | None = None
    versions: tuple[VersionSpec, ...] | None = None


@attrs.frozen
class AgentSoftwareBody:
    software: str
    version: str


def version_json(version: SoftwareVersion) -> dict[str, Any]:
    return {"id": version.id, "version": version.version, "rank": version.rank}


def software_json(software: Software) -> dict[str, Any]:
    return {
        "id": software.id,
        "software": software.name,
        "versions": [version_json(v) for v in software.versions],
    }


def software_ref_json(ref: SoftwareRef) -> dict[str, Any]:
    return {"software": ref.software, "version": ref.version}


# -- job types --------------------------------------------------------------------------------


def requirement_json(requirement: SoftwareRequirement) -> dict[str, Any]:
    return {
        "software": requirement.software,
        "min_version": requirement.min_version,
        "max_version": requirement.max_version,
    }


def jobtype_json(jobtype: JobTypeVersion) -> dict[str, Any]:
    """What a PyFarm agent downloads: GET /jobtypes/<name>/versions/<n>."""
    return {
        "id": jobtype.jobtype_id,
        "name": jobtype.name,
        "version": jobtype.version,
        "description": jobtype.description,
        "classname": jobtype.classname,
        "code": jobtype.code,
        "max_batch": jobtype.max_batch,
        "batch_contiguous": jobtype.batch_contiguous,
        "software_requirements": [requirement_json(r) for r in jobtype.software_requirements],
    }


# -- jobs and tasks ---------------------------------------------------------------------------


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
_TASK_REPORT_KEYS = {"state", "last_error", "agent_id", "progress", "time_started"}


@attrs.frozen
class TaskReportBody:
    state: str | None = None
    last_error: str | None = None
    progress: float | None = None


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
    fields = {k: v for k, v in body.items() if k in ("state", "last_error", "progress")}
    typed = structure(fields, TaskReportBody)
    if "state" in fields and typed.state is None:
        raise ValidationError("`state` must be a string", field="state")
    if "progress" in fields and typed.progress is None:
        raise ValidationError("`progress` must be a number", field="progress")
    return {k: getattr(typed, k) for k in fields}, give_back, started_now


def _task_state_name(task: Task) -> str:
    return task.status.value


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
        "minimum_agents": job.minimum_agents,
        "maximum_agents": job.maximum_agents,
        "data": job.data,
        "environ": job.environ,
        "user": job.user,
        "tags": list(job.tags),
        "parents": list(job.parents),
        "software_requirements": [requirement_json(r) for r in job.software_requirements],
        "tag_requirements": [{"tag": r.tag, "negate": r.negate} for r in job.tag_requirements],
        "time_submitted": _time(job.time_submitted),
        "time_started": _time(job.time_started),
        "time_finished": _time(job.time_finished),
    }
    if counts is not None:
        data["tasks"] = {status.value: counts.get(status, 0) for status in TaskStatus}
    return data


def job_query(params: dict[str, Any]) -> JobQuery:
    state = params.get("state")
    if isinstance(state, list) or isinstance(params.get("title"), list):
        raise _url_error("state" if isinstance(state, list) else "title", "given more than once")
    queued = state == "queued"
    parsed = None
    if state is not None and not queued:
        try:
            parsed = WorkState(state)
        except ValueError:
            raise _url_error("state", f"`{state}` is not a valid state") from None

    def number(name: str, low: int) -> int | None:
        value = params.get(name)
        if value is None:
            return None
        if isinstance(value, list) or not value.isdigit() or not low <= int(value) <= INT32_MAX:
            raise _url_error(name, f"{value!r} is not a whole number of at least {low}")
        return int(value)

    return JobQuery(
        state=parsed,
        queued=queued,
        title=params.get("title"),
        limit=number("limit", 1),
        offset=number("offset", 0) or 0,
    )


# -- logs -------------------------------------------------------------------------------------


@attrs.frozen
class LogBody:
    identifier: str
    agent_id: str | None = None
    created_on: str | None = None  # sent by some PyFarm agents; the master keeps its own time


@attrs.frozen
class LogStateBody:
    state: str


def optional_uuid(value: str | None, field: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationError(f"{value} is not a valid {field} (a UUID)", field=field) from None


def log_json(log: TaskLog) -> dict[str, Any]:
    return {
        "identifier": log.identifier,
        "task_id": log.task_id,
        "attempt": log.attempt,
        "agent_id": None if log.agent_id is None else str(log.agent_id),
        "created_on": _time(log.created_on),
        "size": log.size,
        "state": log.state,
    }


def block_json(view: BlockView) -> dict[str, Any]:
    return {
        "agent_id": str(view.block.agent_id),
        "failures": view.block.failures,
        "refused": view.refused,
        "blocked": view.blocked,
        "updated_on": _time(view.block.updated_on),
    }


def tag_list(media: Any) -> list[str]:
    if not isinstance(media, list) or not all(type(tag) is str for tag in media):
        raise ValidationError("send the agent's tags as a JSON list of strings", field="tags")
    return media
