"""Parsing and representations of agents: announce/update bodies, list filters, tags."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any, NotRequired, TypedDict

import attrs

from farm_domain import validation
from farm_domain.agents import UNSET, Agent, AgentChanges, AgentQuery, AgentSummary
from farm_domain.enums import AgentState, OsClass, UseAddress
from farm_domain.errors import ValidationError
from farm_domain.validation import INT32_MAX
from farm_http.conversion import (
    IsoTime,
    UuidText,
    iso_time,
    structure,
    url_argument_error,
    values_of,
)
from farm_http.list_filters import (
    AgentSortName,
    OrderName,
    SearchText,
    TagText,
    agent_filters,
    one,
)
from farm_http.openapi import BodyOf, Json, open_shape
from farm_http.schemas.software import SoftwareRefJson, software_ref_json

_AGENT_KEYS = {field.name for field in attrs.fields(AgentChanges)} - {
    "reported_task_ids",
    "reported_attempts",
}
_READ_ONLY_KEYS = {"last_heard_from", "last_polled"}


@open_shape
class ReportedTaskJson(TypedDict):
    """A task an agent says it has; ``attempt`` names the attempt (PyFarm agents send none)."""

    id: int
    attempt: NotRequired[int | None]


@open_shape
class AssignmentJson(TypedDict):
    """One of an agent's current assignments: the tasks it holds."""

    tasks: list[ReportedTaskJson]


AGENT_BODY = BodyOf(
    AgentChanges,
    "AgentBody",
    omit=frozenset({"reported_task_ids", "reported_attempts"}),
    extra={"current_assignments": dict[str, AssignmentJson]},
    description="An announce (``id``, ``hostname``, ``ram``, ``free_ram``, ``cpus`` and ``port``"
    " required for a new agent) or an update: only the fields sent change. An agent reports"
    " the tasks it holds in ``current_assignments``, keyed by assignment id.",
)
"""An announce or an update: ``AgentChanges`` as sent, with ``current_assignments`` in place of
the task ids the parser reads from it."""


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


class TaskIdJson(TypedDict):
    """The task an agent takes: ``{"id": <task id>}``."""

    id: int


def task_id_body(body: dict[str, Any]) -> int:
    """``{"id": <task id>}`` with the contract's messages."""
    if "id" not in body:
        raise ValidationError("No id given for task", field="id")
    if len(body) > 1:
        raise ValidationError("Unknown keys in request")
    if type(body["id"]) is not int:
        raise ValidationError("`id` must be an integer", field="id")
    return body["id"]


def tag_list(media: Any) -> list[str]:
    if not isinstance(media, list) or not all(type(tag) is str for tag in media):
        raise ValidationError("send the agent's tags as a JSON list of strings", field="tags")
    return media


AgentInt = Annotated[int, Json(minimum=-INT32_MAX, maximum=INT32_MAX)]


class AgentFilters(TypedDict, total=False):
    """Filters of the agent list (AND-ed); other arguments are ignored."""

    min_ram: AgentInt
    max_ram: AgentInt
    min_cpus: AgentInt
    max_cpus: AgentInt
    hostname: str
    remote_ip: str
    port: Annotated[int, Json(minimum=1024, maximum=65535)]
    state: Annotated[str, values_of(AgentState)]
    limit: Annotated[int, Json(minimum=1, maximum=100_000)]
    offset: Annotated[int, Json(minimum=0, maximum=INT32_MAX)]
    q: SearchText
    """Extension (also the dashboard's): a part of the host name or the address."""
    tag: TagText
    """Extension: agents with this tag."""
    sort: AgentSortName
    """Extension: the order's column (default ``hostname``, ties by host name then id)."""
    order: OrderName
    """Extension: ``asc`` (the default) or ``desc``."""


def agent_query(params: Mapping[str, str | list[str]]) -> AgentQuery:
    """Filters from the query string; unknown arguments are ignored."""

    def integer(name: str, low: int = -INT32_MAX, high: int = INT32_MAX) -> int | None:
        value = one(params, name)
        if value is None:
            return None
        try:
            number = int(value, 10)
        except ValueError:
            raise url_argument_error(name, f"{value!r} is not an integer") from None
        if not low <= number <= high:
            raise url_argument_error(name, f"{number} is out of range")
        return number

    def checked(name: str, rule: Callable[[str], str]) -> str | None:
        value = one(params, name)
        if value is None:
            return None
        try:
            return rule(value)
        except ValidationError as error:
            raise url_argument_error(name, error.message) from None

    state = one(params, "state")
    if state is not None and not state.strip():  # PyFarm's contract: no state is not a state
        raise url_argument_error("state", "`` is not a valid state")
    return agent_filters(
        params,
        AgentQuery(
            min_ram=integer("min_ram"),
            max_ram=integer("max_ram"),
            min_cpus=integer("min_cpus"),
            max_cpus=integer("max_cpus"),
            hostname=checked("hostname", validation.hostname),
            remote_ip=checked("remote_ip", validation.ip_address),
            port=integer("port", 1024, 65535),
            limit=integer("limit", 1, 100_000),
            offset=integer("offset", 0) or 0,
        ),
    )


class DispatchJson(TypedDict):
    """Whether the master will call the agent, and if not, why."""

    callable: bool
    reason: str | None


class AgentJson(TypedDict):
    id: UuidText
    hostname: str
    remote_ip: str | None
    use_address: Annotated[str, values_of(UseAddress)]
    os_class: Annotated[str, values_of(OsClass)] | None
    os_fullname: str | None
    cpu_name: str | None
    ram: int
    free_ram: int
    cpus: int
    port: int
    time_offset: int
    version: str | None
    upgrade_to: str | None
    ram_allocation: float
    cpu_allocation: float
    restart_requested: bool
    state: Annotated[str, values_of(AgentState)]
    last_heard_from: IsoTime | None
    last_polled: IsoTime | None
    mac_addresses: list[str]
    gpus: list[str]
    software: list[SoftwareRefJson]
    dispatch: DispatchJson


class AnnouncedJson(AgentJson):
    """The agent as announced, with what only the announcer gets: the key it verifies the
    master's calls with and, once, the credential a join token enrolled it with."""

    signing_key: str
    credential: NotRequired[str]


class AgentSummaryJson(TypedDict):
    id: uuid.UUID
    hostname: str
    port: int
    remote_ip: str | None


def agent_json(agent: Agent, call_refusal: str | None = None) -> AgentJson:
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
        "last_heard_from": iso_time(agent.last_heard_from),
        "last_polled": iso_time(agent.last_polled),
        "mac_addresses": sorted(agent.mac_addresses),
        "gpus": sorted(agent.gpus),
        "software": [software_ref_json(s) for s in agent.software],
        "dispatch": {"callable": call_refusal is None, "reason": call_refusal},
    }


def agent_summary_json(agent: AgentSummary) -> AgentSummaryJson:
    # orjson writes a UUID as the lowercase hyphenated string itself (a list of 100k agents
    # is long enough for str() per row to show).
    return {
        "id": agent.id,
        "hostname": agent.hostname,
        "port": agent.port,
        "remote_ip": agent.remote_ip,
    }


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
