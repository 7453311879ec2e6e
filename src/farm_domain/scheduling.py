"""The scheduler's rules: which job an idle agent gets, and which of its tasks form the batch.

Pure functions over plain values, so that properties can be tested without storage.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs

from farm_domain.enums import AgentState, UseAddress
from farm_domain.work import Task


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

    @property
    def batch_size(self) -> int:
        return min(self.batch, self.max_batch) if self.max_batch else self.batch


def agent_fits(agent: AgentProfile, job: JobProfile, ram_check: RamCheck = RamCheck.FREE) -> bool:
    """Whether the agent has the RAM, CPUs, software and tags the job needs."""
    ram = agent.free_ram if ram_check is RamCheck.FREE else agent.ram * agent.ram_allocation
    if job.ram > ram or job.cpus > agent.cpus * agent.cpu_allocation:
        return False
    if any((tag in agent.tags) is negate for tag, negate in job.tag_requirements):
        return False
    return all(requirement.met_by(agent.software) for requirement in job.requirements)


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
    agent fits, that is not blocked for it, and that is below its ``maximum_agents``."""
    for job in order_jobs(jobs):
        if job.id in blocked:
            continue
        if job.maximum_agents is not None and job.busy_agents >= job.maximum_agents:
            continue
        if agent_fits(agent, job, ram_check):
            return job
    return None


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

    def blocks(self, fingerprint: str, max_failures: int) -> bool:
        return self.failures >= max_failures or self.rejected_fingerprint == fingerprint


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
