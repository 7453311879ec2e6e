"""Explanations: whether a job can run now and, agent by agent, why not; why an agent is idle.

Computed by the scheduler's own rules (``farm_domain.scheduling``: ``held``, ``unavailable``,
``block_reason``, ``why_not``, ``retry_wait``, ``choose_job``) over what the scheduler reads
(the scheduling repository, the blocklist) with the dispatcher's policy, so that an explanation says what the
scheduler does: an agent is eligible for a job exactly when the scheduler could give it the job.

Answers stay small on a large farm: agents (or jobs) sharing a reason are grouped, each group
lists at most ``LISTED`` of them and counts them all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

import attrs

from farm_domain.access import AccessPolicy, Identity, Permission
from farm_domain.agents import Agent
from farm_domain.dispatch import DispatchPolicy
from farm_domain.enums import AgentState, WorkState
from farm_domain.errors import NotFound
from farm_domain.networks import AgentNetworks
from farm_domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from farm_domain.scheduling import (
    AgentContact,
    AgentProfile,
    JobAgentBlock,
    JobProfile,
    JobQueue,
    RamCheck,
    Reason,
    at_capacity,
    block_reason,
    choose_job,
    held,
    order_jobs,
    ready_window,
    retry_wait,
    unavailable,
    why_not,
)
from farm_domain.work import Job, Task

LISTED = 20
"""Agents (or jobs) an explanation lists per group; its count says how many there are."""


@attrs.frozen
class AgentRef:
    id: uuid.UUID
    hostname: str
    port: int


@attrs.frozen
class JobRef:
    id: int
    title: str


@attrs.frozen
class Finding:
    """A reason with what it means here, in words."""

    reason: Reason
    detail: str


@attrs.frozen
class AgentGroup:
    """Agents that do not get the job for the same reason: ``count`` of them, the first
    ``LISTED`` (by hostname) in ``agents``."""

    reason: Reason
    detail: str
    agents: tuple[AgentRef, ...]
    count: int


@attrs.frozen
class JobGroup:
    """Candidate jobs the agent does not get for the same reason: ``count`` of them, the first
    ``LISTED`` in the scheduler's order in ``jobs``."""

    reason: Reason
    detail: str
    jobs: tuple[JobRef, ...]
    count: int


@attrs.frozen
class JobExplanation:
    """Whether the job can run now: ``reasons`` hold what keeps it from every agent, ``agents``
    why each other agent does not get it, ``eligible`` the agents that could take it now
    (``eligible_count`` in all, the first ``LISTED`` listed)."""

    job: JobRef
    state: WorkState | None
    can_run_now: bool
    reasons: tuple[Finding, ...]
    agents: tuple[AgentGroup, ...]
    eligible: tuple[AgentRef, ...]
    eligible_count: int
    note: str | None = None
    """The job's ``reason``: why the master failed it, or why no agent could ever run it."""


@attrs.frozen
class AgentExplanation:
    """Why the agent is idle, or what it would get: ``reasons`` hold what keeps it from every
    job, ``would_get`` the job the scheduler would give it now, ``jobs`` why it does not get
    each other candidate job, ``eligible`` the candidate jobs it could take (in the scheduler's
    order: ``would_get`` first)."""

    agent: AgentRef
    state: AgentState
    reasons: tuple[Finding, ...]
    would_get: JobRef | None
    jobs: tuple[JobGroup, ...]
    eligible: tuple[JobRef, ...]
    eligible_count: int


def _contact(agent: Agent, busy: bool) -> AgentContact:
    return AgentContact(
        agent.id,
        agent.hostname,
        agent.remote_ip,
        agent.port,
        agent.use_address,
        agent.state,
        agent.disabled,
        agent.last_heard_from,
        agent.last_polled,
        busy,
    )


class Explainer:
    """Explains the scheduler's choices to readers (viewers and up)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        networks: AgentNetworks,
        dispatch: DispatchPolicy,
        *,
        policy: AccessPolicy,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._networks = networks
        self._dispatch = dispatch
        self._policy = policy

    def job(self, actor: Identity, job_id: int) -> JobExplanation:
        """Whether the job can run now and, agent by agent, why not.
        Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        now = self._clock.now()
        with self._uow(read_only=True) as uow:
            job = uow.jobs.get(job_id)
            profile = uow.scheduling.job_profile(job_id) if job is not None else None
            if job is None or profile is None:
                raise NotFound(f"Job {job_id} not found")
            waiting = self._waiting_parents(uow, job.parents)
            # The tasks the scheduler reads for one agent: whether it may have one of them.
            queue = uow.scheduling.job_queue(job_id, now, first=ready_window(profile.batch_size))
            agents = uow.scheduling.profiles()
            blocks = {b.agent_id: b for b in uow.blocks.of_job(job_id)}
        findings = self._job_findings(profile, job, waiting, queue)
        describe = _PairDetails(profile, self._dispatch, now)
        groups: dict[tuple[Reason, str], list[AgentRef]] = {}
        eligible: list[AgentRef] = []
        for contact, agent in agents:
            ref = AgentRef(contact.id, contact.hostname, contact.port)
            refusal = self._networks.refusal(contact)
            reason = unavailable(contact, refusal)
            if reason is not None:
                key = (reason, _agent_detail(reason, refusal))
            else:
                block = blocks.get(contact.id)
                against = [
                    r
                    for r in self._why_not(agent, profile, block, queue.first, now)
                    if r is not Reason.MAXIMUM_AGENTS  # the job's own: in its findings
                ]
                if against:
                    key = (against[0], describe(against[0], block))
                elif findings:
                    key = (findings[0].reason, findings[0].detail)
                else:
                    eligible.append(ref)
                    continue
            groups.setdefault(key, []).append(ref)
        return JobExplanation(
            job=JobRef(job.id, job.title),
            state=job.state,
            can_run_now=bool(eligible),
            reasons=tuple(findings),
            agents=tuple(
                AgentGroup(reason, detail, tuple(refs[:LISTED]), len(refs))
                for (reason, detail), refs in _ordered(groups)
            ),
            eligible=tuple(eligible[:LISTED]),
            eligible_count=len(eligible),
            note=job.reason,
        )

    def agent(self, actor: Identity, agent_id: uuid.UUID) -> AgentExplanation:
        """Why the agent is idle (each candidate job, why not), or which job it would get.
        Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        now = self._clock.now()
        with self._uow(read_only=True) as uow:
            agent = uow.agents.get(agent_id)
            profile = uow.scheduling.agent_profile(agent_id) if agent is not None else None
            if agent is None or profile is None:
                raise NotFound(f"Agent {agent_id} not found")
            busy = bool(uow.tasks.active_of_agent(agent_id))
            jobs = order_jobs(uow.scheduling.candidate_jobs(now))
            blocks = {b.job_id: b for b in uow.blocks.of_agent(agent_id)}
            # Only a job with a ready task this agent failed last may keep it waiting.
            retried = uow.scheduling.retried_on(agent_id, now)
            first = {
                job.id: uow.scheduling.job_queue(
                    job.id, now, first=ready_window(job.batch_size)
                ).first
                for job in jobs
                if job.id in retried
            }
            found = self._sort_jobs(agent, profile, jobs, blocks, busy, first, now)
            titles = self._titles(uow, found.listed())
        refusal = self._networks.refusal(agent)
        unable = unavailable(_contact(agent, busy), refusal)
        return AgentExplanation(
            agent=AgentRef(agent.id, agent.hostname, agent.port),
            state=agent.shown_state,
            reasons=() if unable is None else (Finding(unable, _agent_detail(unable, refusal)),),
            would_get=None if found.chosen is None else titles(found.chosen),
            jobs=tuple(
                JobGroup(reason, detail, tuple(titles(j) for j in ids[:LISTED]), len(ids))
                for (reason, detail), ids in _ordered(found.groups)
            ),
            eligible=tuple(titles(j) for j in found.eligible[:LISTED]),
            eligible_count=len(found.eligible),
        )

    # -- the rules, applied ------------------------------------------------------------------

    def _block(
        self, block: JobAgentBlock | None, agent: AgentProfile, now: datetime
    ) -> Reason | None:
        if block is None:
            return None
        policy = self._dispatch
        return block_reason(block, agent.fingerprint, policy.max_failures, now, policy.block_expiry)

    def _why_not(
        self,
        agent: AgentProfile,
        job: JobProfile,
        block: JobAgentBlock | None,
        first: Sequence[Task],
        now: datetime,
    ) -> list[Reason]:
        """Why the dispatcher does not give the job to this idle agent: ``choose_job`` passes
        over it (``why_not``), or none of its first ready tasks is ``offerable`` to it."""
        against = why_not(agent, job, self._dispatch.ram_check, self._block(block, agent, now))
        if retry_wait(first, agent.id, now, self._dispatch.retry):
            against.append(Reason.RETRY_DELAY)
        return against

    def _sort_jobs(
        self,
        agent: Agent,
        profile: AgentProfile,
        jobs: Sequence[JobProfile],
        blocks: dict[int, JobAgentBlock],
        busy: bool,
        first: dict[int, tuple[Task, ...]],
        now: datetime,
    ) -> _JobsSorted:
        """The candidate jobs (in the scheduler's order) by why the agent does not get them;
        ``first``: the first ready tasks of the jobs it failed a ready task of last."""
        unable = unavailable(_contact(agent, busy), self._networks.refusal(agent))
        # As the dispatcher: the best job choose_job names among those it may get tasks of.
        passed_over = frozenset(
            job.id
            for job in jobs
            if self._block(blocks.get(job.id), profile, now) is not None
            or retry_wait(first.get(job.id, ()), agent.id, now, self._dispatch.retry)
        )
        chosen = choose_job(profile, jobs, passed_over, self._dispatch.ram_check)
        found = _JobsSorted(chosen=None if unable is not None or chosen is None else chosen.id)
        for job in jobs:
            against = self._why_not(profile, job, blocks.get(job.id), first.get(job.id, ()), now)
            if against:
                reason = against[0]
                found.add(reason, _agent_side_detail(reason, profile, self._dispatch), job.id)
            elif unable is not None:
                found.add(unable, _agent_detail(unable, self._networks.refusal(agent)), job.id)
            else:
                found.eligible.append(job.id)
        return found

    @staticmethod
    def _waiting_parents(uow: UnitOfWork, parents: Iterable[int]) -> list[int]:
        """The parents not done yet (one being deleted is gone: not waited for)."""
        waiting = []
        for parent_id in parents:
            parent = uow.jobs.get(parent_id)
            if parent is not None and parent.state is not WorkState.DONE:
                waiting.append(parent_id)
        return waiting

    def _job_findings(
        self, profile: JobProfile, job: Job, waiting: list[int], queue: JobQueue
    ) -> list[Finding]:
        state = job.state
        reasons = held(state, len(waiting), queue)
        if at_capacity(profile):
            reasons.append(Reason.MAXIMUM_AGENTS)
        details = {
            Reason.PAUSED: "the job is paused",
            Reason.FINISHED: f"the job is {state.value if state else 'queued'}"
            + (f": {job.reason}" if job.reason else ""),
            Reason.PARENTS_NOT_DONE: "waiting for parent job(s) "
            + ", ".join(str(p) for p in waiting),
            Reason.NO_QUEUED_TASKS: "no task of the job is queued",
            Reason.RETRY_DELAY: f"its {queue.queued} queued task(s) wait for their retry "
            f"back-off, the first until {_time(queue.next_ready)}",
            Reason.MAXIMUM_AGENTS: f"{profile.busy_agents} agent(s) work on it: its "
            f"maximum_agents ({profile.maximum_agents})",
        }
        return [Finding(reason, details[reason]) for reason in reasons]

    @staticmethod
    def _titles(uow: UnitOfWork, job_ids: Iterable[int]) -> Callable[[int], JobRef]:
        titles = uow.jobs.titles(job_ids)
        return lambda job_id: JobRef(job_id, titles.get(job_id, ""))


@attrs.define
class _JobsSorted:
    chosen: int | None
    groups: dict[tuple[Reason, str], list[int]] = attrs.Factory(dict)
    eligible: list[int] = attrs.Factory(list)

    def add(self, reason: Reason, detail: str, job_id: int) -> None:
        self.groups.setdefault((reason, detail), []).append(job_id)

    def listed(self) -> list[int]:
        """The jobs an explanation names."""
        return [
            *(j for ids in self.groups.values() for j in ids[:LISTED]),
            *self.eligible[:LISTED],
        ]


_REASONS = list(Reason)
_T = TypeVar("_T")


def _ordered(
    groups: dict[tuple[Reason, str], list[_T]],
) -> list[tuple[tuple[Reason, str], list[_T]]]:
    """Groups in the order of the reasons' codes (the job's, the agents', the pairs'), the
    larger first among one reason's."""
    return sorted(groups.items(), key=lambda item: (_REASONS.index(item[0][0]), -len(item[1])))


def _time(when: datetime | None) -> str:
    return "-" if when is None else when.isoformat(timespec="seconds")


def _agent_detail(reason: Reason, call_refusal: str | None) -> str:
    """What an agent's own reason means."""
    return {
        Reason.AGENT_OFFLINE: "the agent is offline",
        Reason.AGENT_DISABLED: "the agent is disabled",
        Reason.AGENT_BUSY: "the agent holds unfinished tasks",
        Reason.AGENT_UNCALLABLE: f"the master does not call the agent: {call_refusal}",
    }[reason]


def _blocklisted(policy: DispatchPolicy) -> str:
    lifts = (
        f"; the block lifts {policy.block_expiry:g} s after its last failure"
        if policy.block_expiry > 0
        else ""
    )
    return f"the agent failed the job's tasks {policy.max_failures} time(s) or more{lifts}"


_RETRIED_HERE = (
    "the agent failed the job's next ready tasks last: it gets them after a second back-off, "
    "if no other agent takes them first"
)


class _PairDetails:
    """What a reason between an agent and this job means, told from the job's side (the
    same for every agent, so that agents group)."""

    def __init__(self, job: JobProfile, policy: DispatchPolicy, now: datetime) -> None:
        self._job = job
        self._policy = policy
        self._now = now

    def __call__(self, reason: Reason, block: JobAgentBlock | None) -> str:
        job = self._job
        if reason is Reason.REFUSED:
            answer = (block.refusal if block is not None else None) or "no answer recorded"
            return f"the agent refused the job's work as it is now: {answer}"
        if reason is Reason.BLOCKLISTED:
            return _blocklisted(self._policy)
        if reason is Reason.RETRY_DELAY:
            return _RETRIED_HERE
        if reason is Reason.RAM:
            where = (
                "free"
                if self._policy.ram_check is RamCheck.FREE
                else "within the agent's ram_allocation"
            )
            return f"the job needs {job.ram} MB of RAM {where}"
        if reason is Reason.CPUS:
            return f"the job needs {job.cpus} CPU(s) within the agent's cpu_allocation"
        if reason is Reason.TAGS:
            return "the job needs tags: " + ", ".join(
                f"not {tag}" if negate else tag for tag, negate in job.tag_requirements
            )
        assert reason is Reason.SOFTWARE
        return "the agent lacks software (or a version) the job needs"


def _agent_side_detail(reason: Reason, agent: AgentProfile, policy: DispatchPolicy) -> str:
    """What a reason between this agent and a job means, told from the agent's side (the
    same for every job, so that jobs group)."""
    if reason is Reason.RAM:
        if policy.ram_check is RamCheck.FREE:
            return f"the job needs more RAM than the agent's {agent.free_ram} MB free"
        return (
            "the job needs more RAM than the agent's "
            f"{agent.ram * agent.ram_allocation:g} MB within its ram_allocation"
        )
    if reason is Reason.CPUS:
        return f"the job needs more than the agent's {agent.cpus * agent.cpu_allocation:g} CPU(s)"
    return {
        Reason.TAGS: "the agent's tags ("
        + (", ".join(sorted(agent.tags)) or "none")
        + ") do not match the job's",
        Reason.SOFTWARE: "the agent lacks software (or a version) the job needs",
        Reason.BLOCKLISTED: _blocklisted(policy),
        Reason.RETRY_DELAY: _RETRIED_HERE,
        Reason.REFUSED: "the agent refused the job's work as it is now",
        Reason.MAXIMUM_AGENTS: "the job has its maximum_agents working on it",
    }[reason]
