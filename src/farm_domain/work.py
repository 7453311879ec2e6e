"""Jobs and their tasks, as far as agents and their assignments need them."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from farm_domain.enums import FINISHED_STATES, WorkState


class TaskStatus(enum.Enum):
    """What a task is doing, for counting: storage keeps queued and assigned both as null."""

    QUEUED = "queued"
    ASSIGNED = "assigned"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"


MAX_TASK_OUTPUTS = 64
"""Files one task may record (a frame's image, its passes...)."""
MAX_OUTPUT_PATH = 4096


@attrs.frozen
class TaskOutput:
    """A file a task's frame wrote, as its agent reported it: where, and how many bytes."""

    path: str
    size: int


@attrs.frozen
class Task:
    """One frame of a job. ``attempts`` counts hand-outs to agents, ``failures`` failures.

    ``sent_at`` is when the master last handed the task to its agent; it bounds the grace period
    within which an agent's report may not mention the task yet.
    """

    id: int
    job_id: int
    frame: float
    state: WorkState | None = None
    priority: int = 0
    attempts: int = 0
    failures: int = 0
    agent_id: uuid.UUID | None = None
    sent_to_agent: bool = False
    sent_at: datetime | None = None
    last_error: str | None = None
    hidden: bool = False
    progress: float | None = None
    time_submitted: datetime | None = None
    time_started: datetime | None = None
    time_finished: datetime | None = None
    not_before: datetime | None = None
    """Not offered to agents before this: the retry back-off after a failure."""
    reason: str | None = None
    """Why its last attempt failed or was stopped: a short code (``timeout``, ``exit``...)."""
    failed_on: uuid.UUID | None = None
    """The agent of its last failed attempt, which the scheduler offers it to last."""
    skipped: bool = False
    """Done without running: a wrangler skipped it."""
    outputs: tuple[TaskOutput, ...] = ()
    """The files its last done attempt wrote (its agent's ``done`` report); none before."""

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def status(self) -> TaskStatus:
        if self.state is None:
            return TaskStatus.QUEUED if self.agent_id is None else TaskStatus.ASSIGNED
        return TaskStatus(self.state.value)

    @property
    def duration(self) -> timedelta | None:
        """How long its last attempt ran: to its end, or None while it has not ended."""
        if self.time_started is None or self.time_finished is None:
            return None
        return max(self.time_finished - self.time_started, timedelta(0))

    def requeued(self) -> Task:
        """Back in the queue, owned by no agent."""
        return attrs.evolve(self, state=None, agent_id=None, sent_to_agent=False, sent_at=None)

    def assigned_to(self, agent_id: uuid.UUID) -> Task:
        """Handed to ``agent_id``: a new attempt that has not been sent yet."""
        return attrs.evolve(
            self,
            agent_id=agent_id,
            state=None,
            attempts=self.attempts + 1,
            sent_to_agent=False,
            sent_at=None,
            time_finished=None,
            outputs=(),
        )


@attrs.frozen
class TagRequirement:
    """The job runs only on agents that have ``tag`` (or, with ``negate``, that lack it)."""

    tag: str
    negate: bool = False


@attrs.frozen(kw_only=True)
class JobOptions:
    """What a submitter chooses for a job that the job keeps as chosen, declared once for both
    ``JobSpec`` (the job as submitted) and ``Job`` (the job as stored), which extend it.

    Why this shape: a submission and a stored job differ in a few fields of the same meaning —
    frames as ``start``/``end``/``by`` (``end`` optional) against ``frame_start``/``frame_end``/
    ``frame_by``, software named (``RequirementSpec``) against resolved
    (``SoftwareRequirement``) — so neither can extend the other without renaming what the API
    and the tables use; a shared base keeps every field's name, type and default in one place.
    Keyword-only, since the subclasses' required fields follow the base's defaulted ones.
    ``jobtype`` and ``jobtype_version`` name the job type and its version number.
    """

    title: str
    jobtype: str | None = None
    jobtype_version: int | None = None
    batch: int = 1
    priority: int = 0
    weight: int = 10
    requeue: int = 3
    ram: int = 32
    ram_warning: int | None = None
    ram_max: int | None = None
    cpus: int = 1
    minimum_agents: int | None = None
    maximum_agents: int | None = None
    data: dict[str, Any] = attrs.Factory(dict)
    environ: dict[str, str] = attrs.Factory(dict)
    user: str | None = None
    tags: tuple[str, ...] = ()
    parents: tuple[int, ...] = ()
    tag_requirements: tuple[TagRequirement, ...] = ()
    max_run_seconds: int | None = None
    """A frame running longer is killed by its agent and fails (reason ``timeout``)."""
    stall_seconds: int | None = None
    """A frame writing no output for this long is killed and fails (reason ``stalled``)."""


@attrs.frozen(kw_only=True)
class Job(JobOptions):
    """A submitted piece of work: one task per frame of ``frame_start``…``frame_end`` by
    ``frame_by``. ``requeue`` −1 means a failed task is always requeued. ``jobtype`` and
    ``jobtype_version`` are filled in when read; ``jobtype_version_id`` is what is stored."""

    id: int
    jobtype_version_id: int
    state: WorkState | None = None
    frame_start: float = 1.0
    frame_end: float = 1.0
    frame_by: float = 1.0
    software_requirements: tuple[SoftwareRequirement, ...] = ()
    time_submitted: datetime | None = None
    time_started: datetime | None = None
    time_finished: datetime | None = None
    submitted_by: str | None = None
    """The name of the identity that submitted the job (None for jobs older than identities:
    only wranglers and admins may change those)."""
    reason: str | None = None
    """Why the master failed the job, or why it cannot run (flagged while it stays queued)."""

    def may_requeue(self, failures: int) -> bool:
        return self.requeue == -1 or failures <= self.requeue


class JobSort(enum.Enum):
    """What a list of jobs is sorted by (ties: newest first)."""

    ID = "id"
    """The order of submission."""
    TITLE = "title"
    PRIORITY = "priority"
    STATE = "state"
    """By label; a queued job (no state) as ``queued``."""
    OWNER = "owner"
    """By the submitting identity's name; jobs without one first."""


@attrs.frozen
class JobQuery:
    """Filters for listing jobs, AND-ed. ``queued`` selects jobs whose state is queued (null).

    ``text`` matches a part of the title, ignoring the case of ASCII letters; ``user`` is the
    submitting identity's name or the job's ``user``; ``jobtype`` a job type's name; ``tag`` keeps
    jobs with that tag. The default order is newest first.
    """

    state: WorkState | None = None
    queued: bool = False
    title: str | None = None
    text: str | None = None
    user: str | None = None
    jobtype: str | None = None
    tag: str | None = None
    sort: JobSort = JobSort.ID
    descending: bool = True
    limit: int | None = None
    offset: int = 0


def estimated_remaining(
    durations: Sequence[timedelta], remaining: int, parallel: int
) -> timedelta | None:
    """How long ``remaining`` frames will take at the mean duration of the frames done so far
    (``durations``), ``parallel`` at a time (at least one): the rounds of frames times the mean.
    None without a done frame to learn from; zero when nothing remains."""
    if remaining <= 0:
        return timedelta(0)
    if not durations:
        return None
    mean = sum(durations, timedelta(0)) / len(durations)
    rounds = -(-remaining // max(parallel, 1))
    return mean * rounds


def job_state(counts: Mapping[TaskStatus, int], current: WorkState | None) -> WorkState | None:
    """A job's state as a pure function of its tasks' statuses (and whether it is paused).

    All tasks done → done; none left active and some canceled → canceled; none left active and
    some failed → failed; a paused job stays paused until it is finished; any task running or
    assigned → running; otherwise queued (None).
    """
    total = sum(counts.values())
    if total == 0:
        return current
    done = counts.get(TaskStatus.DONE, 0)
    failed = counts.get(TaskStatus.FAILED, 0)
    canceled = counts.get(TaskStatus.CANCELED, 0)
    if done == total:
        return WorkState.DONE
    if done + failed + canceled == total:
        return WorkState.CANCELED if canceled else WorkState.FAILED
    if current is WorkState.PAUSED:
        return WorkState.PAUSED
    if counts.get(TaskStatus.RUNNING, 0) or counts.get(TaskStatus.ASSIGNED, 0):
        return WorkState.RUNNING
    return None


@attrs.frozen
class SoftwareRequirement:
    """Software a job type (or a job) needs, optionally bounded by version ranks."""

    software_id: int
    software: str
    min_version_id: int | None = None
    min_version: str | None = None
    max_version_id: int | None = None
    max_version: str | None = None


@attrs.frozen
class JobTypeVersion:
    """A version of a job type: the code an agent runs for a job's tasks.

    ``max_batch`` caps how many frames one assignment carries (None: no cap);
    ``batch_contiguous`` asks that a batch's frames follow each other.
    """

    id: int
    jobtype_id: int
    name: str
    version: int
    description: str | None = None
    classname: str | None = None
    code: str | None = None
    max_batch: int | None = None
    batch_contiguous: bool = True
    software_requirements: tuple[SoftwareRequirement, ...] = ()


@attrs.frozen
class JobSummary:
    """What an agent's task list says about each task's job."""

    id: int
    title: str
    jobtype: str
    jobtype_id: int
    jobtype_version: int


@attrs.frozen
class TaskFailure:
    """One failed attempt at a task: on which agent, when, why (a short code: ``exit``,
    ``timeout``, ``stalled``, ``ram``, ``stopped``...) and what the agent said."""

    id: int
    task_id: int
    attempt: int
    agent_id: uuid.UUID | None
    at: datetime
    reason: str
    message: str | None = None


@attrs.frozen
class TaskLog:
    """A log an agent registered for one attempt at a task; its text lives in the file store."""

    id: int
    task_id: int
    attempt: int
    identifier: str
    agent_id: uuid.UUID | None
    created_on: datetime
    size: int | None = None
    state: str | None = None
