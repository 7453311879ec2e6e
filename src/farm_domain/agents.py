"""Agents: the render nodes that announce themselves and take work."""

import enum
import uuid
from datetime import datetime
from typing import Any, Self

import attrs

from farm_domain import validation
from farm_domain.enums import AgentState, OsClass, UseAddress
from farm_domain.errors import ValidationError


class Unset(enum.Enum):
    """Marks a field a client did not send (distinct from an explicit null)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset.UNSET

REQUIRED_ON_CREATE = ("hostname", "ram", "free_ram", "cpus", "port")


@attrs.frozen
class SoftwareRef:
    """A software version as an agent has it installed."""

    software: str
    version: str


@attrs.frozen
class Agent:
    """A render node. ``state`` is what the agent reports; ``disabled`` is the operator's flag.

    The state shown to clients (``shown_state``) is ``disabled`` while the operator's flag is set
    and the agent is not offline, so that an operator's decision outlives agent restarts.
    """

    id: uuid.UUID
    hostname: str
    remote_ip: str | None
    ram: int
    free_ram: int
    cpus: int
    port: int
    state: AgentState = AgentState.ONLINE
    disabled: bool = False
    use_address: UseAddress = UseAddress.REMOTE
    os_class: OsClass | None = None
    os_fullname: str | None = None
    cpu_name: str | None = None
    time_offset: int = 0
    version: str | None = None
    upgrade_to: str | None = None
    ram_allocation: float = 0.8
    cpu_allocation: float = 1.0
    restart_requested: bool = False
    last_heard_from: datetime | None = None
    last_polled: datetime | None = None
    mac_addresses: frozenset[str] = frozenset()
    gpus: frozenset[str] = frozenset()
    software: tuple[SoftwareRef, ...] = ()

    @property
    def shown_state(self) -> AgentState:
        if self.disabled and self.state is not AgentState.OFFLINE:
            return AgentState.DISABLED
        return self.state

    @property
    def is_available(self) -> bool:
        """Online, enabled and so a candidate for work."""
        return not self.disabled and self.state in (AgentState.ONLINE, AgentState.RUNNING)


@attrs.frozen
class SoftReport:
    """How an agent was last heard of: the part of a heartbeat that is soft state.

    Liveness and resources move with every heartbeat and nothing else hangs on them, so they
    may be written late (within the batch interval) and coalesced: of two reports of one agent
    the later ``heard`` wins, and a report never creates an agent.
    """

    agent_id: uuid.UUID
    heard: datetime
    free_ram: int
    time_offset: int

    def newer_than(self, other: Self) -> bool:
        return self.heard >= other.heard


@attrs.frozen
class AgentChanges:
    """What a client sent about an agent, each field type-checked but not yet validated.

    Fields left UNSET were absent from the request. ``reported_task_ids`` holds the task ids of
    ``current_assignments`` and ``reported_attempts`` the attempt the agent names for each, when
    it names one; ``from_agent`` tells whether the agent itself is speaking (an announce,
    or an update carrying ``current_assignments``), which decides how a disabled agent's state moves.
    """

    id: str | Unset = UNSET
    hostname: str | Unset = UNSET
    remote_ip: str | Unset = UNSET
    use_address: str | int | Unset = UNSET
    os_class: str | int | None | Unset = UNSET
    os_fullname: str | None | Unset = UNSET
    cpu_name: str | None | Unset = UNSET
    ram: int | Unset = UNSET
    free_ram: int | Unset = UNSET
    cpus: int | Unset = UNSET
    port: int | Unset = UNSET
    time_offset: int | Unset = UNSET
    version: str | None | Unset = UNSET
    upgrade_to: str | None | Unset = UNSET
    ram_allocation: float | Unset = UNSET
    cpu_allocation: float | Unset = UNSET
    restart_requested: bool | Unset = UNSET
    state: str | int | Unset = UNSET
    mac_addresses: list[str] | Unset = UNSET
    gpus: list[str] | Unset = UNSET
    farm_name: str | None | Unset = UNSET
    reported_task_ids: frozenset[int] | Unset = UNSET
    reported_attempts: dict[int, int] = attrs.Factory(dict)

    def sent(self) -> dict[str, Any]:
        return {
            field.name: value
            for field in attrs.fields(type(self))
            if (value := getattr(self, field.name)) is not UNSET
        }


def parse_agent_id(value: str) -> uuid.UUID:
    """A UUID in any accepted spelling (hyphenated, 32 hex digits, any case)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationError(f"{value} is not a valid agent id (a UUID)", field="id") from None


def validated_values(changes: AgentChanges, *, allow_loopback: bool) -> dict[str, Any]:
    """The agent's scalar fields that ``changes`` sets, validated and converted."""
    sent = changes.sent()
    values: dict[str, Any] = {}
    for name, value in sent.items():
        if name in (
            "id",
            "mac_addresses",
            "gpus",
            "farm_name",
            "reported_task_ids",
            "reported_attempts",
        ):
            continue
        values[name] = _validate_field(name, value, allow_loopback)
    return values


def _validate_field(name: str, value: Any, allow_loopback: bool) -> Any:
    match name:
        case "hostname":
            return validation.hostname(value)
        case "remote_ip":
            return validation.ip_address(value, allow_loopback=allow_loopback)
        case "use_address":
            return UseAddress.parse(value, "use_address")
        case "os_class":
            return None if value is None else OsClass.parse(value, "os_class")
        case "state":
            return AgentState.parse(value, "state")
        case "os_fullname" | "cpu_name":
            return validation.text(name, value, 128)
        case "version" | "upgrade_to":
            return validation.text(name, value, 16)
        case "ram":
            return validation.integer(name, value, 16, 262144)
        case "free_ram":
            return validation.integer(name, value, 0)
        case "cpus":
            return validation.integer(name, value, 1, 256)
        case "port":
            return validation.integer(name, value, 1024, 65535)
        case "time_offset":
            return validation.integer(name, value)
        case "ram_allocation" | "cpu_allocation":
            return validation.ratio(name, value)
        case "restart_requested":
            return value
    raise AssertionError(f"unhandled agent field {name}")  # pragma: no cover


def state_changes(agent: Agent, state: AgentState, *, from_agent: bool) -> dict[str, Any]:
    """The fields that change when a request asks for ``state`` (for ``attrs.evolve``).

    An operator's ``disabled`` sets the flag and an operator's ``online``/``running`` clears it; an
    agent's own ``online``/``running`` never clears it. ``offline`` is a fact either may report.
    """
    if state is AgentState.DISABLED:
        return {"disabled": True}
    if state is AgentState.OFFLINE:
        return {"state": state}
    return {"state": state, "disabled": agent.disabled and from_agent}


class AgentSort(enum.Enum):
    """What a list of agents is sorted by (ties: hostname, then id)."""

    HOSTNAME = "hostname"
    STATE = "state"
    RAM = "ram"
    CPUS = "cpus"
    LAST_HEARD = "last_heard"
    """Never heard from sorts as the oldest."""


MAX_SEARCH = 128
"""The longest search text a list takes."""


@attrs.frozen
class AgentQuery:
    """Filters for listing agents, AND-ed; None means no filter.

    ``text`` matches a part of the hostname or the address, ignoring the case of ASCII letters;
    ``tag`` keeps agents that have that tag; the shown state (``disabled`` included) sorts by its
    label.
    """

    min_ram: int | None = None
    max_ram: int | None = None
    min_cpus: int | None = None
    max_cpus: int | None = None
    hostname: str | None = None
    remote_ip: str | None = None
    port: int | None = None
    state: AgentState | None = None
    text: str | None = None
    tag: str | None = None
    sort: AgentSort = AgentSort.HOSTNAME
    descending: bool = False
    limit: int | None = None
    offset: int = 0


@attrs.frozen
class AgentSummary:
    id: uuid.UUID
    hostname: str
    port: int
    remote_ip: str | None


def agent_address(agent: Agent) -> str | None:
    """Where the master calls this agent, or None when it must not be called (passive)."""
    if agent.use_address is UseAddress.PASSIVE:
        return None
    if agent.use_address is UseAddress.HOSTNAME:
        return agent.hostname.rstrip(".")
    return agent.remote_ip


@attrs.frozen
class AgentOverview:
    """An agent as a monitor lists it: resources, state, last word and its unfinished tasks."""

    id: uuid.UUID
    hostname: str
    remote_ip: str | None
    port: int
    state: AgentState
    ram: int
    free_ram: int
    cpus: int
    last_heard_from: datetime | None
    active_tasks: int
    software: tuple[SoftwareRef, ...] = ()
