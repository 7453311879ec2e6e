"""Jobs no agent will run: failed when every eligible agent is blocked from them, flagged when
no agent could ever fit them, and brought back when an agent that may run them appears.

The liveness sweep calls ``check_stuck_jobs``; the verdict (``judge``) is a pure function of
the job's profile, the agents' profiles and states, and their blocks, using the scheduler's
own rules (``could_ever_fit``, ``JobAgentBlock.blocks``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import attrs

from farm_domain.access import Identity
from farm_domain.assignments import recompute_job_states
from farm_domain.audit import job_target, record
from farm_domain.enums import AgentState, WorkState
from farm_domain.ports import UnitOfWork, UnitOfWorkFactory
from farm_domain.scheduling import (
    AgentContact,
    AgentProfile,
    JobAgentBlock,
    JobProfile,
    Misfit,
    RamCheck,
    could_ever_fit,
)

log = logging.getLogger("farm.stuck_jobs")

MASTER = Identity.master()

STUCK_TASK = "stuck"
"""The reason of a task failed with its stuck job (``Task.reason``)."""
STUCK_PREFIX = "every eligible agent"
"""How the reason of a job failed as stuck begins."""
UNFIT_PREFIX = "no agent"
"""How the flag of a job no agent could ever run begins."""

REVIVE_LIMIT = 200
"""Jobs failed as stuck that one sweep considers bringing back (the newest)."""

_NAMES = {
    Misfit.RAM: "the RAM",
    Misfit.CPUS: "the CPUs",
    Misfit.SOFTWARE: "the software",
    Misfit.TAGS: "the tags",
}


@attrs.frozen
class StuckRules:
    """The settings the verdict depends on. Times in seconds (``stuck_after`` 0: never fail)."""

    ram_check: RamCheck
    max_failures: int
    block_expiry: float
    stuck_after: float


@attrs.frozen
class Verdict:
    """``fail`` with ``reason``; or ``flag`` (None: no flag) while the job stays queued."""

    fail: bool = False
    reason: str | None = None


def unfit_reason(job: JobProfile, agents: Sequence[AgentProfile], ram_check: RamCheck) -> str:
    """Why no agent could ever run the job, naming what every agent lacks."""
    if not agents:
        return f"{UNFIT_PREFIX} is registered to run it"
    lacking = [set(could_ever_fit(agent, job, ram_check)) for agent in agents]
    common = set.intersection(*lacking)
    if not common:
        return f"{UNFIT_PREFIX} has all of the RAM, CPUs, software and tags it needs at once"
    parts = []
    for misfit in Misfit:
        if misfit in common:
            needs = {Misfit.RAM: f" ({job.ram} MB)", Misfit.CPUS: f" ({job.cpus})"}
            parts.append(_NAMES[misfit] + needs.get(misfit, ""))
    return f"{UNFIT_PREFIX} has {', '.join(parts)} it needs"


def eligible(
    job: JobProfile, agents: Sequence[tuple[AgentContact, AgentProfile]], ram_check: RamCheck
) -> list[tuple[AgentContact, AgentProfile]]:
    """The online, enabled agents that could run the job's tasks (with all their RAM free)."""
    return [
        (contact, profile)
        for contact, profile in agents
        if contact.state in (AgentState.ONLINE, AgentState.RUNNING)
        and not contact.disabled
        and not could_ever_fit(profile, job, ram_check)
    ]


def judge(
    job: JobProfile,
    agents: Sequence[tuple[AgentContact, AgentProfile]],
    blocks: Mapping[uuid.UUID, JobAgentBlock],
    now: datetime,
    rules: StuckRules,
) -> Verdict:
    """The verdict on a job with queued tasks.

    Flagged (it stays queued) when no agent, online or not, could ever fit it. Failed when
    no agent holds its tasks, some online enabled agent could run them, every such agent is
    blocked from it (``blocks``: the job's, by agent), and the last of them was blocked
    ``stuck_after`` seconds ago or more.
    """
    if not any(not could_ever_fit(profile, job, rules.ram_check) for _, profile in agents):
        return Verdict(reason=unfit_reason(job, [p for _, p in agents], rules.ram_check))
    able = eligible(job, agents, rules.ram_check)
    if not able or job.busy_agents or rules.stuck_after <= 0:
        return Verdict()
    held = []
    for _, profile in able:
        block = blocks.get(profile.id)
        if block is None or not block.blocks(
            profile.fingerprint, rules.max_failures, now, rules.block_expiry
        ):
            return Verdict()
        held.append(block)
    since = max((b.updated_on for b in held if b.updated_on is not None), default=None)
    if since is None or now < since + timedelta(seconds=rules.stuck_after):
        return Verdict()
    refused = any(
        b.rejected_fingerprint == p.fingerprint for b, (_, p) in zip(held, able, strict=True)
    )
    what = (
        f"refused it or failed it {rules.max_failures} times"
        if refused
        else f"failed it {rules.max_failures} times"
    )
    return Verdict(fail=True, reason=f"{STUCK_PREFIX} {what}")


def may_revive(
    job: JobProfile,
    agents: Sequence[tuple[AgentContact, AgentProfile]],
    blocks: Mapping[uuid.UUID, JobAgentBlock],
    ram_check: RamCheck,
) -> bool:
    """Whether a job failed as stuck comes back: an online, enabled agent that could run it
    has no block for it at all (a new agent, or one unblocked by hand; a block that merely
    expired does not bring a failed job back)."""
    return any(contact.id not in blocks for contact, _ in eligible(job, agents, ram_check))


def check_stuck_jobs(uow_factory: UnitOfWorkFactory, now: datetime, rules: StuckRules) -> bool:
    """Judge every job with queued tasks, and the jobs failed as stuck; fail, flag, clear
    flags and bring jobs back as ``judge`` and ``may_revive`` say. Returns whether a job came
    back (the caller asks for an assignment pass)."""
    with uow_factory(read_only=True) as uow:
        jobs = uow.scheduling.candidate_jobs()
        failed = uow.scheduling.failed_jobs(STUCK_PREFIX, REVIVE_LIMIT)
        agents = uow.scheduling.profiles()
        blocks: dict[int, dict[uuid.UUID, JobAgentBlock]] = {}
        for block in uow.blocks.of_agents([contact.id for contact, _ in agents]):
            blocks.setdefault(block.job_id, {})[block.agent_id] = block
    for job in jobs:
        verdict = judge(job, agents, blocks.get(job.id, {}), now, rules)
        if verdict.fail:
            assert verdict.reason is not None
            _fail(uow_factory, job.id, verdict.reason, now)
        elif verdict.reason != job.reason and (
            verdict.reason is not None or (job.reason or "").startswith(UNFIT_PREFIX)
        ):
            _flag(uow_factory, job.id, verdict.reason, now)
    revived = False
    for job in failed:
        if may_revive(job, agents, blocks.get(job.id, {}), rules.ram_check):
            revived |= revive(uow_factory, job.id, now, "an agent that may run it appeared")
    return revived


def _fail(uow_factory: UnitOfWorkFactory, job_id: int, reason: str, now: datetime) -> None:
    """Fail the job's queued tasks and the job, if it still has no task held by an agent."""
    with uow_factory() as uow:
        uow.tasks.lock_of_job(job_id)  # before the job, as reports and heartbeats do
        job = uow.jobs.get(job_id, for_update=True)
        if job is None or job.state not in (None, WorkState.RUNNING):
            return
        tasks = uow.tasks.of_job(job_id)
        if any(t.agent_id is not None and not t.is_finished for t in tasks):
            return  # an agent got one meanwhile
        failed = [t for t in tasks if t.state is None and t.agent_id is None]
        for task in failed:
            uow.tasks.save(
                attrs.evolve(task, state=WorkState.FAILED, time_finished=now, reason=STUCK_TASK),
                task,
                reason=f"{STUCK_TASK}: {reason}",
                at=now,
            )
        uow.jobs.save(attrs.evolve(job, reason=reason))
        recompute_job_states(uow, [job_id], now, actor=None)
        record(
            uow,
            MASTER,
            now,
            "job.stuck",
            job_target(job_id),
            {"state": str(job.state or "queued")},
            {"state": "failed", "reason": reason, "tasks": [t.id for t in failed]},
        )
        uow.commit()
    log.warning(
        "job failed: no agent will run it",
        extra={"job_id": job_id, "reason": reason, "task_ids": [t.id for t in failed]},
    )


def _flag(uow_factory: UnitOfWorkFactory, job_id: int, reason: str | None, now: datetime) -> None:
    with uow_factory() as uow:
        job = uow.jobs.get(job_id, for_update=True)
        if job is None or job.state not in (None, WorkState.RUNNING) or job.reason == reason:
            return
        uow.jobs.save(attrs.evolve(job, reason=reason))
        record(
            uow,
            MASTER,
            now,
            "job.reason",
            job_target(job_id),
            {"reason": job.reason},
            {"reason": reason},
        )
        uow.commit()
    log.info(
        "job flagged" if reason else "job flag cleared",
        extra={"job_id": job_id, "reason": reason or job.reason},
    )


def revive(uow_factory: UnitOfWorkFactory, job_id: int, now: datetime, why: str) -> bool:
    """Bring a job failed as stuck back: its tasks failed with it are queued again and its
    reason cleared. Returns whether it came back."""
    with uow_factory() as uow:
        back = revive_in(uow, job_id, now, why)
        uow.commit()
    return back


def revive_in(uow: UnitOfWork, job_id: int, now: datetime, why: str) -> bool:
    """``revive`` within the caller's transaction."""
    uow.tasks.lock_of_job(job_id)
    job = uow.jobs.get(job_id, for_update=True)
    if job is None or job.state is not WorkState.FAILED or not is_stuck_reason(job.reason):
        return False
    tasks = [t for t in uow.tasks.of_job(job_id) if t.state is WorkState.FAILED]
    back = [t for t in tasks if t.reason == STUCK_TASK]
    for task in back:
        revived = attrs.evolve(task.requeued(), time_finished=None, reason=None)
        uow.tasks.save(revived, task, reason=why, at=now)
    uow.jobs.save(attrs.evolve(job, reason=None))
    recompute_job_states(uow, [job_id], now, actor=None)
    record(
        uow,
        MASTER,
        now,
        "job.revive",
        job_target(job_id),
        {"state": "failed", "reason": job.reason},
        {"state": "queued", "reason": why, "tasks": [t.id for t in back]},
    )
    log.info("stuck job back in the queue", extra={"job_id": job_id, "reason": why})
    return True


def is_stuck_reason(reason: str | None) -> bool:
    return reason is not None and reason.startswith(STUCK_PREFIX)
