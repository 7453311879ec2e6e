"""The scheduler's rules: which job an idle agent gets, and which of its tasks form the batch.

Pure functions over plain values, so that properties can be tested without storage.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import attrs

from farm_domain.enums import AgentState, UseAddress, WorkState
from farm_domain.work import Task


class Reason(enum.Enum):
    """Why a job does not run now, or not on an agent: the codes explanations show (stable: the
    API names them)."""

    # The job's own: no agent gets it.
    PAUSED = "paused"
    FINISHED = "finished"
    PARENTS_NOT_DONE = "parents_not_done"
    NO_QUEUED_TASKS = "no_queued_tasks"
    RETRY_DELAY = "retry_delay"
    MAXIMUM_AGENTS = "maximum_agents"
    # The agent's own: it gets no job.
    AGENT_OFFLINE = "agent_offline"
    AGENT_DISABLED = "agent_disabled"
    AGENT_BUSY = "agent_busy"
    AGENT_UNCALLABLE = "agent_uncallable"
    # The pair's: this agent does not get this job.
    BLOCKLISTED = "blocklisted"
    REFUSED = "refused"
    RAM = "ram"
    CPUS = "cpus"
    TAGS = "tags"
    SOFTWARE = "software"

    def __str__(self) -> str:
        return self.value


class RamCheck(enum.Enum):
    """What a job's ``ram`` is compared with: the agent's reported free RAM (PyFarm's way) or
    its total RAM times its ``ram_allocation``."""

    FREE = "free"
    ALLOCATION = "allocation"


@attrs.frozen
class RankRange:
    """A software requirement as ranks: the agent needs a version of ``software_id`` ranked
    within [low, high] (None: unbounded)."""

    software_id: int
    low: int | None = None
    high: int | None = None

    def met_by(self, installed: Iterable[tuple[int, int]]) -> bool:
        return any(
            software_id == self.software_id
            and (self.low is None or rank >= self.low)
            and (self.high is None or rank <= self.high)
            for software_id, rank in installed
        )


@attrs.frozen
class AgentProfile:
    """What the scheduler needs to know of an agent. ``software`` holds (software id, rank)."""

    id: uuid.UUID
    ram: int
    free_ram: int
    cpus: int
    ram_allocation: float = 0.8
    cpu_allocation: float = 1.0
    software: frozenset[tuple[int, int]] = frozenset()
    tags: frozenset[str] = frozenset()

    @property
    def fingerprint(self) -> str:
        """The resources a refusal depends on; a refused job is offered again once they change."""
        return f"{self.ram}:{self.cpus}:{sorted(self.software)}"


@attrs.frozen
class JobProfile:
    """What the scheduler needs to know of a job with queued tasks.

    ``busy_agents`` counts agents holding unfinished tasks of the job; ``requirements`` joins the
    job type's and the job's own.
    """

    id: int
    priority: int
    weight: int
    time_submitted: datetime
    ram: int = 32
    cpus: int = 1
    minimum_agents: int | None = None
    maximum_agents: int | None = None
    busy_agents: int = 0
    requirements: tuple[RankRange, ...] = ()
    tag_requirements: tuple[tuple[str, bool], ...] = ()
    batch: int = 1
    max_batch: int | None = None
    batch_contiguous: bool = True
    frame_by: float = 1.0
    reason: str | None = None
    """Why the job cannot run (flagged by the stuck-job sweep), or why it failed."""

    @property
    def batch_size(self) -> int:
        return min(self.batch, self.max_batch) if self.max_batch else self.batch


@attrs.frozen
class JobQueue:
    """A job's queued tasks: how many, how many may be offered now (the others wait for their
    retry back-off, ``Task.not_before``), when the first of those may be, and the first ready
    ones by frame (as many as asked)."""

    queued: int
    ready: int
    next_ready: datetime | None = None
    first: tuple[Task, ...] = ()


def held(state: WorkState | None, parents_waiting: int, queue: JobQueue) -> list[Reason]:
    """Why no agent gets the job now whatever its resources (empty: it is a candidate), as
    ``SchedulingRepository.candidate_jobs`` selects: a job neither paused nor finished, whose
    parents are all done, with queued tasks that may be offered now."""
    reasons = []
    if state is WorkState.PAUSED:
        reasons.append(Reason.PAUSED)
    elif state not in (None, WorkState.RUNNING):
        reasons.append(Reason.FINISHED)
    if parents_waiting:
        reasons.append(Reason.PARENTS_NOT_DONE)
    if not queue.queued:
        reasons.append(Reason.NO_QUEUED_TASKS)
    elif not queue.ready:
        reasons.append(Reason.RETRY_DELAY)
    return reasons


def unavailable(agent: AgentContact, call_refusal: str | None) -> Reason | None:
    """Why the agent gets no work now whatever the jobs (None: it is idle and may be called),
    as the scheduler takes only agents ``Agent.is_available`` (online or running, not
    disabled), holding no unfinished task, that the master may call (``call_refusal`` is
    ``AgentNetworks.refusal``'s answer)."""
    if agent.state is AgentState.OFFLINE:
        return Reason.AGENT_OFFLINE
    if agent.disabled or agent.state not in (AgentState.ONLINE, AgentState.RUNNING):
        return Reason.AGENT_DISABLED
    if agent.busy:
        return Reason.AGENT_BUSY
    if call_refusal is not None:
        return Reason.AGENT_UNCALLABLE
    return None


class Misfit(enum.Enum):
    """What an agent lacks for a job."""

    RAM = "ram"
    CPUS = "cpus"
    SOFTWARE = "software"
    TAGS = "tags"


def misfits(
    agent: AgentProfile, job: JobProfile, ram_check: RamCheck = RamCheck.FREE
) -> list[Misfit]:
    """What the agent lacks of the RAM, CPUs, software and tags the job needs (empty: it fits)."""
    ram = agent.free_ram if ram_check is RamCheck.FREE else agent.ram * agent.ram_allocation
    lacking = []
    if job.ram > ram:
        lacking.append(Misfit.RAM)
    if job.cpus > agent.cpus * agent.cpu_allocation:
        lacking.append(Misfit.CPUS)
    if not all(requirement.met_by(agent.software) for requirement in job.requirements):
        lacking.append(Misfit.SOFTWARE)
    if any((tag in agent.tags) is negate for tag, negate in job.tag_requirements):
        lacking.append(Misfit.TAGS)
    return lacking


def agent_fits(agent: AgentProfile, job: JobProfile, ram_check: RamCheck = RamCheck.FREE) -> bool:
    """Whether the agent has the RAM, CPUs, software and tags the job needs."""
    return not misfits(agent, job, ram_check)


def why_not(
    agent: AgentProfile,
    job: JobProfile,
    ram_check: RamCheck = RamCheck.FREE,
    block: Reason | None = None,
) -> list[Reason]:
    """Why ``choose_job`` passes over the job for this (idle) agent; empty when it may take
    it. ``block``: the agent's block for the job, if one applies (``block_reason``). The
    agent's own reasons come first, the job's cap (``maximum_agents``) last."""
    reasons = [block] if block is not None else []
    reasons += [Reason(misfit.value) for misfit in misfits(agent, job, ram_check)]
    if at_capacity(job):
        reasons.append(Reason.MAXIMUM_AGENTS)
    return reasons


def at_capacity(job: JobProfile) -> bool:
    """Whether the job has as many busy agents as its ``maximum_agents`` allows."""
    return job.maximum_agents is not None and job.busy_agents >= job.maximum_agents


def could_ever_fit(
    agent: AgentProfile, job: JobProfile, ram_check: RamCheck = RamCheck.FREE
) -> list[Misfit]:
    """What the agent lacks for the job even with all its RAM free (empty: it could run it
    once its other work is done)."""
    return misfits(attrs.evolve(agent, free_ram=agent.ram), job, ram_check)


def order_jobs(jobs: Sequence[JobProfile]) -> list[JobProfile]:
    """PyFarm's order: jobs below their ``minimum_agents`` first, then by priority (highest
    first), then by weight deficit (share of weight minus share of busy agents, largest first),
    then oldest first."""
    total_weight = sum(job.weight for job in jobs) or 1
    total_busy = sum(job.busy_agents for job in jobs) or 1

    def key(job: JobProfile) -> tuple[bool, int, float, datetime, int]:
        starving = job.minimum_agents is not None and job.busy_agents < job.minimum_agents
        deficit = job.weight / total_weight - job.busy_agents / total_busy
        return (not starving, -job.priority, -deficit, job.time_submitted, job.id)

    return sorted(jobs, key=key)


def choose_job(
    agent: AgentProfile,
    jobs: Sequence[JobProfile],
    blocked: frozenset[int] = frozenset(),
    ram_check: RamCheck = RamCheck.FREE,
) -> JobProfile | None:
    """The job an idle agent should work on next, or None: the first in ``order_jobs`` that the
    agent fits, that is not blocked for it, and that is below its ``maximum_agents``
    (``why_not`` has nothing against it)."""
    for job in order_jobs(jobs):
        block = Reason.BLOCKLISTED if job.id in blocked else None
        if not why_not(agent, job, ram_check, block):
            return job
    return None


@attrs.frozen
class RetryBackoff:
    """How long a task requeued after a failure waits before it is offered again:
    ``base`` × 2^(failures−1) seconds, at most ``cap`` (``base`` 0: no wait)."""

    base: float
    cap: float

    def delay(self, failures: int) -> timedelta:
        if self.base <= 0 or failures <= 0:
            return timedelta(0)
        seconds = self.base * 2 ** min(failures - 1, 62)
        return timedelta(seconds=min(seconds, self.cap) if self.cap > 0 else seconds)


NO_BACKOFF = RetryBackoff(0, 0)


def offerable(
    queued: Sequence[Task],
    agent_id: uuid.UUID,
    now: datetime,
    backoff: RetryBackoff = NO_BACKOFF,
) -> list[Task]:
    """The queued tasks an agent may be given now, the agent that last failed a task last.

    A task is offered to every agent once its back-off (``not_before``) has passed, except
    to the agent that last failed it (``failed_on``): that one waits a second back-off, and
    gets it only when none of the others is offerable to it. So a failed frame goes to
    another agent when one is free, and the agent that failed it renders other frames.
    """
    ready, retried_here = [], []
    for task in queued:
        if task.not_before is not None and task.not_before > now:
            continue
        if task.failed_on == agent_id:
            waited = (
                task.not_before is None or task.not_before + backoff.delay(task.failures) <= now
            )
            if waited:
                retried_here.append(task)
            continue
        ready.append(task)
    return ready or retried_here


def batch_of(job: JobProfile, queued: Sequence[Task]) -> list[Task]:
    """The tasks to hand out together: up to ``batch_size`` queued tasks by frame; with
    ``batch_contiguous`` they must follow each other (each ``frame_by`` after the previous)."""
    ordered = sorted(queued, key=lambda task: (task.frame, task.id))
    if not ordered:
        return []
    batch = [ordered[0]]
    for task in ordered[1:]:
        if len(batch) >= job.batch_size:
            break
        if job.batch_contiguous and abs(task.frame - batch[-1].frame - job.frame_by) > 1e-9:
            break
        batch.append(task)
    return batch


@attrs.frozen
class JobAgentBlock:
    """How an agent fared with a job: failures counted, and the resources it had when it
    refused the job's work (None when it never did)."""

    job_id: int
    agent_id: uuid.UUID
    failures: int = 0
    rejected_fingerprint: str | None = None
    updated_on: datetime | None = None
    refusal: str | None = None
    """What the agent answered when it refused the job's work."""

    def blocks(
        self,
        fingerprint: str,
        max_failures: int,
        now: datetime | None = None,
        expiry: float = 0,
    ) -> bool:
        """Whether the agent is kept away from the job: it refused the job's work with the
        resources it has now, or it failed ``max_failures`` of its tasks less than ``expiry``
        seconds ago (counted from the block's last change; 0 or no ``now``: never expires)."""
        if self.rejected_fingerprint == fingerprint:
            return True
        return self.failures >= max_failures and not self.expired(now, expiry)

    def expired(self, now: datetime | None, expiry: float) -> bool:
        """Whether a block for failures has lifted by ``now``."""
        return (
            expiry > 0
            and now is not None
            and self.updated_on is not None
            and now >= self.updated_on + timedelta(seconds=expiry)
        )


def block_reason(
    block: JobAgentBlock,
    fingerprint: str,
    max_failures: int,
    now: datetime | None = None,
    expiry: float = 0,
) -> Reason | None:
    """Whether the block keeps the agent (whose resources are ``fingerprint``) from the job at
    ``now`` (``JobAgentBlock.blocks``), and why: it refused the job's work as it is now, or it
    failed the job too often lately."""
    if not block.blocks(fingerprint, max_failures, now, expiry):
        return None
    return Reason.REFUSED if block.rejected_fingerprint == fingerprint else Reason.BLOCKLISTED


READ_AHEAD = 4
"""Batches of a job's queued tasks the assignment sweep reads (and locks) at a time."""

RETRY_LOOKAHEAD = 64
"""Ready tasks past a batch the scheduler looks through for an agent that failed every one
it read first, so that it renders later frames rather than waiting for its own back-off."""


def ready_window(batch_size: int) -> int:
    """How many of a job's first ready tasks (by frame) the scheduler considers for an agent
    at most: any first read is within it, and when the tasks read first were all failed by
    that agent (``offerable`` gives it none), it reads this many."""
    return max(batch_size * READ_AHEAD, batch_size + RETRY_LOOKAHEAD)


def retry_wait(
    first: Sequence[Task], agent_id: uuid.UUID, now: datetime, backoff: RetryBackoff
) -> bool:
    """Whether the agent gets none of a job's first ready tasks (``first``: the
    ``ready_window`` of them by frame) because it failed each of them last and their second
    back-off has not passed (``offerable``)."""
    return bool(first) and not offerable(first, agent_id, now, backoff)


@attrs.frozen
class AgentContact:
    """What the liveness sweeps need of an agent: how to reach it, when it was last heard
    from or polled, and whether it holds unfinished tasks."""

    id: uuid.UUID
    hostname: str
    remote_ip: str | None
    port: int
    use_address: UseAddress
    state: AgentState
    disabled: bool
    last_heard_from: datetime | None
    last_polled: datetime | None
    busy: bool

    @property
    def last_contact(self) -> datetime | None:
        times = [t for t in (self.last_heard_from, self.last_polled) if t is not None]
        return max(times) if times else None
