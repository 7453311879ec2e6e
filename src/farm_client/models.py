"""What the master answers, as typed values.

Every value keeps the answer it was read from in ``raw``: fields a newer master adds are there
for old clients, and a field this client reads but an older master lacks is ``None`` (or empty)
rather than an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs

from farm_client.errors import BadResponse

Raw = Mapping[str, Any]


def _object(data: Any, what: str) -> Raw:
    if not isinstance(data, Mapping):
        raise BadResponse(f"expected {what} as a JSON object, got {type(data).__name__}")
    return data


def _list(data: Any, what: str) -> Sequence[Any]:
    if not isinstance(data, list):
        raise BadResponse(f"expected a JSON list of {what}, got {type(data).__name__}")
    return data


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


@attrs.frozen(kw_only=True)
class Requirement:
    """A software requirement of a job or job type: a version range (bounds inclusive)."""

    software: str
    min_version: str | None = None
    max_version: str | None = None
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> Requirement:
        d = _object(data, "a software requirement")
        return cls(
            software=d.get("software", ""),
            min_version=d.get("min_version"),
            max_version=d.get("max_version"),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class TagRequirement:
    tag: str
    negate: bool = False
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> TagRequirement:
        d = _object(data, "a tag requirement")
        return cls(tag=d.get("tag", ""), negate=bool(d.get("negate", False)), raw=d)


@attrs.frozen(kw_only=True)
class Job:
    id: int
    title: str
    jobtype: str
    jobtype_version: int | None = None
    state: str = "queued"
    """``queued``, ``running``, ``paused``, ``done``, ``failed`` (and what newer masters add)."""
    priority: int = 0
    weight: int | None = None
    requeue: int | None = None
    start: float | None = None
    end: float | None = None
    by: float | None = None
    batch: int | None = None
    ram: int | None = None
    ram_warning: int | None = None
    ram_max: int | None = None
    cpus: int | None = None
    minimum_agents: int | None = None
    maximum_agents: int | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict)
    environ: Mapping[str, str] = attrs.field(factory=dict)
    user: str | None = None
    submitted_by: str | None = None
    tags: tuple[str, ...] = ()
    parents: tuple[int, ...] = ()
    software_requirements: tuple[Requirement, ...] = ()
    tag_requirements: tuple[TagRequirement, ...] = ()
    max_run_seconds: int | None = None
    stall_seconds: int | None = None
    tasks: Mapping[str, int] = attrs.field(factory=dict)
    """How many of its tasks are in each state (``queued``, ``running``, ``done``, ...)."""
    time_submitted: datetime | None = None
    time_started: datetime | None = None
    time_finished: datetime | None = None
    reason: str | None = None
    """Why the job ended as it did (failed, canceled), where the master says."""
    requeued: tuple[int, ...] = ()
    """The ids of the tasks a requeue put back in the queue (in a requeue's answer only)."""
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> Job:
        d = _object(data, "a job")
        return cls(
            id=d.get("id", 0),
            title=d.get("title", ""),
            jobtype=str(d.get("jobtype", "")),
            jobtype_version=d.get("jobtype_version"),
            state=d.get("state") or "queued",
            priority=d.get("priority", 0),
            weight=d.get("weight"),
            requeue=d.get("requeue"),
            start=d.get("start"),
            end=d.get("end"),
            by=d.get("by"),
            batch=d.get("batch"),
            ram=d.get("ram"),
            ram_warning=d.get("ram_warning"),
            ram_max=d.get("ram_max"),
            cpus=d.get("cpus"),
            minimum_agents=d.get("minimum_agents"),
            maximum_agents=d.get("maximum_agents"),
            data=d.get("data") or {},
            environ=d.get("environ") or {},
            user=d.get("user"),
            submitted_by=d.get("submitted_by"),
            tags=_strings(d.get("tags")),
            parents=tuple(p for p in d.get("parents") or () if isinstance(p, int)),
            software_requirements=tuple(
                Requirement.from_json(r) for r in d.get("software_requirements") or ()
            ),
            tag_requirements=tuple(
                TagRequirement.from_json(r) for r in d.get("tag_requirements") or ()
            ),
            max_run_seconds=d.get("max_run_seconds"),
            stall_seconds=d.get("stall_seconds"),
            tasks=dict(d.get("tasks") or {}),
            time_submitted=_time(d.get("time_submitted")),
            time_started=_time(d.get("time_started")),
            time_finished=_time(d.get("time_finished")),
            reason=d.get("reason"),
            requeued=tuple(i for i in d.get("requeued") or () if isinstance(i, int)),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class TaskJob:
    """The job a task belongs to, as listed with an agent's tasks."""

    id: int
    title: str
    jobtype: str
    jobtype_version: int | None = None
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> TaskJob:
        d = _object(data, "a task's job")
        return cls(
            id=d.get("id", 0),
            title=d.get("title", ""),
            jobtype=str(d.get("jobtype", "")),
            jobtype_version=d.get("jobtype_version"),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class Task:
    id: int
    job_id: int
    frame: float
    state: str = "queued"
    """``queued``, ``assigned``, ``running``, ``done``, ``failed``, ``paused`` (and what newer
    masters add)."""
    priority: int = 0
    attempts: int = 0
    failures: int = 0
    agent_id: uuid.UUID | None = None
    sent_to_agent: bool = False
    last_error: str | None = None
    hidden: bool = False
    progress: float | None = None
    time_submitted: datetime | None = None
    time_started: datetime | None = None
    time_finished: datetime | None = None
    reason: str | None = None
    skipped: bool = False
    """Counted as done without having run (``skip``)."""
    job: TaskJob | None = None
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> Task:
        d = _object(data, "a task")
        job = d.get("job")
        return cls(
            id=d.get("id", 0),
            job_id=d.get("job_id", 0),
            frame=d.get("frame", 0),
            state=d.get("state") or "queued",
            priority=d.get("priority", 0),
            attempts=d.get("attempts", 0),
            failures=d.get("failures", 0),
            agent_id=_uuid(d.get("agent_id")),
            sent_to_agent=bool(d.get("sent_to_agent", False)),
            last_error=d.get("last_error"),
            hidden=bool(d.get("hidden", False)),
            progress=d.get("progress"),
            time_submitted=_time(d.get("time_submitted")),
            time_started=_time(d.get("time_started")),
            time_finished=_time(d.get("time_finished")),
            reason=d.get("reason"),
            skipped=bool(d.get("skipped", False)),
            job=None if job is None else TaskJob.from_json(job),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class SoftwareRef:
    """A software version by name, as an agent has it installed."""

    software: str
    version: str
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> SoftwareRef:
        d = _object(data, "a software version")
        return cls(software=d.get("software", ""), version=d.get("version", ""), raw=d)


@attrs.frozen(kw_only=True)
class AgentSummary:
    """An agent as ``GET /agents`` lists it."""

    id: uuid.UUID
    hostname: str
    port: int | None = None
    remote_ip: str | None = None
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> AgentSummary:
        d = _object(data, "an agent")
        agent_id = _uuid(d.get("id"))
        if agent_id is None:
            raise BadResponse(f"an agent's id is not a UUID: {d.get('id')!r}")
        return cls(
            id=agent_id,
            hostname=d.get("hostname", ""),
            port=d.get("port"),
            remote_ip=d.get("remote_ip"),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class Agent:
    id: uuid.UUID
    hostname: str
    state: str
    """``online``, ``running``, ``offline`` or ``disabled``."""
    remote_ip: str | None = None
    port: int | None = None
    use_address: str | None = None
    os_class: str | None = None
    os_fullname: str | None = None
    cpu_name: str | None = None
    ram: int | None = None
    free_ram: int | None = None
    cpus: int | None = None
    time_offset: int | None = None
    version: str | None = None
    upgrade_to: str | None = None
    ram_allocation: float | None = None
    cpu_allocation: float | None = None
    restart_requested: bool = False
    last_heard_from: datetime | None = None
    last_polled: datetime | None = None
    mac_addresses: tuple[str, ...] = ()
    gpus: tuple[str, ...] = ()
    software: tuple[SoftwareRef, ...] = ()
    callable: bool | None = None
    """Whether the master will call the agent (``dispatch.callable``)."""
    not_callable_because: str | None = None
    """Why not, when it will not (``dispatch.reason``)."""
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> Agent:
        d = _object(data, "an agent")
        agent_id = _uuid(d.get("id"))
        if agent_id is None:
            raise BadResponse(f"an agent's id is not a UUID: {d.get('id')!r}")
        found = d.get("dispatch")
        dispatch: Raw = found if isinstance(found, Mapping) else {}
        return cls(
            id=agent_id,
            hostname=d.get("hostname", ""),
            state=d.get("state", ""),
            remote_ip=d.get("remote_ip"),
            port=d.get("port"),
            use_address=d.get("use_address"),
            os_class=d.get("os_class"),
            os_fullname=d.get("os_fullname"),
            cpu_name=d.get("cpu_name"),
            ram=d.get("ram"),
            free_ram=d.get("free_ram"),
            cpus=d.get("cpus"),
            time_offset=d.get("time_offset"),
            version=d.get("version"),
            upgrade_to=d.get("upgrade_to"),
            ram_allocation=d.get("ram_allocation"),
            cpu_allocation=d.get("cpu_allocation"),
            restart_requested=bool(d.get("restart_requested", False)),
            last_heard_from=_time(d.get("last_heard_from")),
            last_polled=_time(d.get("last_polled")),
            mac_addresses=_strings(d.get("mac_addresses")),
            gpus=_strings(d.get("gpus")),
            software=tuple(SoftwareRef.from_json(s) for s in d.get("software") or ()),
            callable=dispatch.get("callable"),
            not_callable_because=dispatch.get("reason"),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class SoftwareVersion:
    id: int
    version: str
    rank: int
    """Orders the versions of one software: newer is higher."""
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> SoftwareVersion:
        d = _object(data, "a software version")
        return cls(id=d.get("id", 0), version=d.get("version", ""), rank=d.get("rank", 0), raw=d)


@attrs.frozen(kw_only=True)
class Software:
    id: int
    name: str
    """The software's name (``"software"`` on the wire)."""
    versions: tuple[SoftwareVersion, ...] = ()
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> Software:
        d = _object(data, "a software")
        return cls(
            id=d.get("id", 0),
            name=d.get("software", ""),
            versions=tuple(SoftwareVersion.from_json(v) for v in d.get("versions") or ()),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class JobType:
    """One version of a job type."""

    id: int
    name: str
    version: int
    description: str | None = None
    classname: str | None = None
    code: str | None = None
    max_batch: int | None = None
    batch_contiguous: bool = True
    software_requirements: tuple[Requirement, ...] = ()
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> JobType:
        d = _object(data, "a job type")
        return cls(
            id=d.get("id", 0),
            name=d.get("name", ""),
            version=d.get("version", 0),
            description=d.get("description"),
            classname=d.get("classname"),
            code=d.get("code"),
            max_batch=d.get("max_batch"),
            batch_contiguous=bool(d.get("batch_contiguous", True)),
            software_requirements=tuple(
                Requirement.from_json(r) for r in d.get("software_requirements") or ()
            ),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class TaskLog:
    """A log of one attempt of a task (its text is downloaded separately)."""

    identifier: str
    task_id: int
    attempt: int
    agent_id: uuid.UUID | None = None
    created_on: datetime | None = None
    size: int | None = None
    state: str | None = None
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> TaskLog:
        d = _object(data, "a task log")
        return cls(
            identifier=d.get("identifier", ""),
            task_id=d.get("task_id", 0),
            attempt=d.get("attempt", 0),
            agent_id=_uuid(d.get("agent_id")),
            created_on=_time(d.get("created_on")),
            size=d.get("size"),
            state=d.get("state"),
            raw=d,
        )


@attrs.frozen
class LogChunk:
    """Bytes of a log as read: ``data`` starts at byte ``offset`` of the log; read on from
    ``next_offset``. A chunk may end inside a character: decode a log's chunks in order with an
    incremental decoder (``codecs.getincrementaldecoder("utf-8")("replace")``)."""

    data: bytes
    offset: int
    next_offset: int

    @property
    def text(self) -> str:
        """``data`` decoded (undecodable bytes replaced)."""
        return self.data.decode("utf-8", "replace")


@attrs.frozen(kw_only=True)
class Block:
    """An agent's standing on a job's blocklist."""

    agent_id: uuid.UUID | None
    failures: int = 0
    refused: bool = False
    blocked: bool = False
    updated_on: datetime | None = None
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> Block:
        d = _object(data, "a blocklist entry")
        return cls(
            agent_id=_uuid(d.get("agent_id")),
            failures=d.get("failures", 0),
            refused=bool(d.get("refused", False)),
            blocked=bool(d.get("blocked", False)),
            updated_on=_time(d.get("updated_on")),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class Event:
    """One change in the audit trail: who did what to which target."""

    id: int
    at: datetime | None
    actor: str
    role: str
    action: str
    target: str
    address: str | None = None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> Event:
        d = _object(data, "an event")
        return cls(
            id=d.get("id", 0),
            at=_time(d.get("at")),
            actor=d.get("actor", ""),
            role=d.get("role", ""),
            action=d.get("action", ""),
            target=d.get("target", ""),
            address=d.get("address"),
            before=d.get("before"),
            after=d.get("after"),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class TaskFailure:
    """One failed attempt at a task: on which agent, when, why (a short code: ``exit``,
    ``timeout``, ``stalled``, ``ram``, ``stopped``...) and what the agent said."""

    attempt: int
    agent_id: uuid.UUID | None = None
    at: datetime | None = None
    reason: str = ""
    message: str | None = None
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> TaskFailure:
        d = _object(data, "a task failure")
        return cls(
            attempt=d.get("attempt", 0),
            agent_id=_uuid(d.get("agent_id")),
            at=_time(d.get("at")),
            reason=d.get("reason", ""),
            message=d.get("message"),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class Outcome:
    """What a control did to one task or job of a bulk action: ``ok`` with the ``task`` or
    ``job`` as it is now, or refused with the ``status`` and ``error`` a single call would have
    answered."""

    id: int
    ok: bool
    status: int | None = None
    error: str | None = None
    task: Task | None = None
    job: Job | None = None
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> Outcome:
        d = _object(data, "an outcome")
        task, job = d.get("task"), d.get("job")
        return cls(
            id=d.get("id", 0),
            ok=bool(d.get("ok", False)),
            status=d.get("status"),
            error=d.get("error"),
            task=None if task is None else Task.from_json(task),
            job=None if job is None else Job.from_json(job),
            raw=d,
        )


def outcomes(data: Any) -> list[Outcome]:
    """The ``results`` of a bulk action's answer."""
    return many(Outcome.from_json, _object(data, "a bulk answer").get("results"), "results")


@attrs.frozen(kw_only=True)
class Finding:
    """One reason in an explanation: a short code (``ram``, ``paused``, ``blocked``...) and
    what it means here."""

    reason: str
    detail: str = ""
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> Finding:
        d = _object(data, "a finding")
        return cls(reason=d.get("reason", ""), detail=d.get("detail", ""), raw=d)


@attrs.frozen(kw_only=True)
class NamedAgent:
    """An agent as an explanation names it."""

    id: uuid.UUID | None
    hostname: str = ""
    port: int | None = None
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> NamedAgent:
        d = _object(data, "an agent")
        return cls(id=_uuid(d.get("id")), hostname=d.get("hostname", ""), port=d.get("port"), raw=d)


@attrs.frozen(kw_only=True)
class NamedJob:
    """A job as an explanation names it."""

    id: int
    title: str = ""
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> NamedJob:
        d = _object(data, "a job")
        return cls(id=d.get("id", 0), title=d.get("title", ""), raw=d)


@attrs.frozen(kw_only=True)
class AgentGroup:
    """Agents that cannot take a job for the same reason (``agents``: the first few of
    ``count``)."""

    reason: str
    detail: str = ""
    count: int = 0
    agents: tuple[NamedAgent, ...] = ()
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> AgentGroup:
        d = _object(data, "a group of agents")
        return cls(
            reason=d.get("reason", ""),
            detail=d.get("detail", ""),
            count=d.get("count", 0),
            agents=tuple(NamedAgent.from_json(a) for a in d.get("agents") or ()),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class JobGroup:
    """Jobs an agent cannot take for the same reason (``jobs``: the first few of ``count``)."""

    reason: str
    detail: str = ""
    count: int = 0
    jobs: tuple[NamedJob, ...] = ()
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> JobGroup:
        d = _object(data, "a group of jobs")
        return cls(
            reason=d.get("reason", ""),
            detail=d.get("detail", ""),
            count=d.get("count", 0),
            jobs=tuple(NamedJob.from_json(j) for j in d.get("jobs") or ()),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class JobExplanation:
    """Whether a job can run now; if not, why, and per agent why not."""

    job: NamedJob
    state: str = "queued"
    can_run_now: bool = False
    reasons: tuple[Finding, ...] = ()
    """Why the job itself cannot run (paused, waiting on parents...)."""
    agents: tuple[AgentGroup, ...] = ()
    """The agents that cannot take it, grouped by reason."""
    eligible: tuple[NamedAgent, ...] = ()
    eligible_count: int = 0
    note: str | None = None
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> JobExplanation:
        d = _object(data, "a job's explanation")
        return cls(
            job=NamedJob.from_json(d.get("job") or {}),
            state=d.get("state") or "queued",
            can_run_now=bool(d.get("can_run_now", False)),
            reasons=tuple(Finding.from_json(f) for f in d.get("reasons") or ()),
            agents=tuple(AgentGroup.from_json(g) for g in d.get("agents") or ()),
            eligible=tuple(NamedAgent.from_json(a) for a in d.get("eligible") or ()),
            eligible_count=d.get("eligible_count", 0),
            note=d.get("note"),
            raw=d,
        )


@attrs.frozen(kw_only=True)
class AgentExplanation:
    """Why an agent is idle, or which job it would get next."""

    agent: NamedAgent
    state: str = ""
    reasons: tuple[Finding, ...] = ()
    """Why the agent itself gets no work (disabled, offline, full...)."""
    would_get: NamedJob | None = None
    jobs: tuple[JobGroup, ...] = ()
    """The jobs it cannot take, grouped by reason."""
    eligible: tuple[NamedJob, ...] = ()
    eligible_count: int = 0
    raw: Raw = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, data: Any) -> AgentExplanation:
        d = _object(data, "an agent's explanation")
        would_get = d.get("would_get")
        return cls(
            agent=NamedAgent.from_json(d.get("agent") or {}),
            state=d.get("state", ""),
            reasons=tuple(Finding.from_json(f) for f in d.get("reasons") or ()),
            would_get=None if would_get is None else NamedJob.from_json(would_get),
            jobs=tuple(JobGroup.from_json(g) for g in d.get("jobs") or ()),
            eligible=tuple(NamedJob.from_json(j) for j in d.get("eligible") or ()),
            eligible_count=d.get("eligible_count", 0),
            raw=d,
        )


T = TypeVar("T")


def many(parse: Callable[[Any], T], data: Any, what: str) -> list[T]:
    """``parse`` applied to each item of a JSON list."""
    return [parse(item) for item in _list(data, what)]


def strings(data: Any, what: str) -> list[str]:
    return [str(item) for item in _list(data, what)]
