"""The queue consumers' side: choosing work for idle agents, sending it, and watching agents.

Every method is idempotent and works from ids: the queue delivers at most once, and periodic
sweeps (``assign_tasks``, ``watch_agents``) catch whatever a dropped job missed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import assert_never

import attrs

from farm_domain.access import Identity
from farm_domain.agents import Agent, agent_address
from farm_domain.answers import (
    Accepted,
    AssignAnswer,
    Busy,
    Conflict,
    Refused,
    Running,
    Unreachable,
    describe,
)
from farm_domain.assignments import (
    AssignmentReconciler,
    recompute_job_states,
    release_agent_tasks,
)
from farm_domain.audit import agent_target, record
from farm_domain.enums import AgentState, UseAddress
from farm_domain.history import ACCEPTED, DISPATCHED
from farm_domain.job_cleanup import discard_abandoned
from farm_domain.networks import AgentNetworks, base_url
from farm_domain.ports import (
    AgentClient,
    Clock,
    Counters,
    FileStore,
    NoCounters,
    TaskQueue,
    UnitOfWork,
    UnitOfWorkFactory,
)
from farm_domain.scheduling import (
    READ_AHEAD,
    AgentContact,
    AgentProfile,
    JobAgentBlock,
    JobProfile,
    RamCheck,
    RetryBackoff,
    batch_of,
    choose_job,
    offerable,
    ready_window,
)
from farm_domain.stuck_jobs import StuckRules, check_stuck_jobs
from farm_domain.work import Job, Task

log = logging.getLogger("farm.dispatch")

MASTER = Identity.master()
"""Who the audit trail names for the dispatcher's own changes."""

SWEEP_CHUNK = 25
"""Idle agents the assignment sweep handles in one transaction: fewer round trips per agent
(PostgreSQL: ~2 a batch instead of ~10), at the cost of holding their rows that much longer."""


@attrs.frozen
class DispatchPolicy:
    """The scheduler's settings. Times in seconds.

    No defaults here: the settings' declarations hold them, and the composition root builds the
    policy from the loaded settings (``dispatch_policy``).
    """

    ram_check: RamCheck
    max_failures: int
    heartbeat_timeout: float
    agent_silence: float
    poll_busy_after: float
    poll_idle_after: float
    poll_offline_after: float
    retry: RetryBackoff
    """How long a task requeued after a failure waits before it is offered again."""
    block_expiry: float
    """An agent's block for a job's failures lifts after this long (0: never)."""
    stuck_job: float
    """A job every eligible agent is blocked from fails after this long (0: never)."""


def poll_due(agent: AgentContact, now: datetime, policy: DispatchPolicy) -> bool:
    """Whether the liveness sweep polls this agent now.

    An agent not offline (busy, idle or disabled alike) silent for ``agent_silence`` is
    polled at once: it answers, or the failed poll takes it offline and requeues its tasks.
    ``poll_busy_after`` and ``poll_idle_after`` (PyFarm's) can only make an enabled agent's
    poll come sooner. Offline agents are polled every ``poll_offline_after`` to bring them
    back.
    """
    contact = agent.last_contact
    if contact is None:
        return True
    silent = (now - contact).total_seconds()
    if agent.state is AgentState.OFFLINE:
        # Counted from the last contact: an agent that just reported itself offline
        # (shutting down) is not polled back online while its server still answers.
        return silent >= policy.poll_offline_after
    limit = policy.agent_silence
    if not agent.disabled:
        limit = min(limit, policy.poll_busy_after if agent.busy else policy.poll_idle_after)
    return silent >= limit


class _QueuedTasks:
    """A job's queued tasks, read (and locked, skipping rows others hold) once for all the
    agents of a sweep's chunk rather than once for each of them."""

    READ_AHEAD = READ_AHEAD
    """Batches read (and locked) at a time: enough to serve several agents of a chunk, few
    enough that an assigner outside the chunk still finds the job's other tasks."""

    def __init__(self, uow: UnitOfWork, agents: int, now: datetime) -> None:
        self._uow = uow
        self._now = now
        self._batches = max(1, min(agents, self.READ_AHEAD))
        self._tasks: dict[int, list[Task]] = {}
        self._all_read: set[int] = set()

    def of(self, job: JobProfile) -> list[Task]:
        tasks = self._tasks.get(job.id)
        if tasks is None or (len(tasks) < job.batch_size and job.id not in self._all_read):
            limit = job.batch_size * self._batches
            tasks = self._uow.scheduling.queued_tasks(job.id, limit, self._now)
            if len(tasks) < limit:
                self._all_read.add(job.id)
            self._tasks[job.id] = tasks
        return tasks

    def offered(self, job: JobProfile, agent_id: uuid.UUID, backoff: RetryBackoff) -> list[Task]:
        """The job's tasks the agent may be given now (``offerable``), looking as far as the
        ``ready_window`` when every task read first was one it failed."""
        tasks = self.of(job)
        offer = offerable(tasks, agent_id, self._now, backoff)
        if offer or not tasks or job.id in self._all_read:
            return offer
        limit = ready_window(job.batch_size)
        wider = self._uow.scheduling.queued_tasks(job.id, limit, self._now)
        if len(wider) < limit:
            self._all_read.add(job.id)
        self._tasks[job.id] = wider
        return offerable(wider, agent_id, self._now, backoff)

    def drop(self, job_id: int, batch: Sequence[Task]) -> None:
        gone = {task.id for task in batch}
        self._tasks[job_id] = [task for task in self._tasks.get(job_id, ()) if task.id not in gone]


class Dispatcher:
    """Runs the queue's jobs: assign, send, update, stop, and the liveness sweeps."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        queue: TaskQueue,
        clock: Clock,
        client: AgentClient,
        networks: AgentNetworks,
        reconciler: AssignmentReconciler,
        policy: DispatchPolicy,
        *,
        files: FileStore | None = None,
        counters: Counters | None = None,
    ) -> None:
        self._files = files
        self._counters = counters or NoCounters()
        self._uow = uow
        self._queue = queue
        self._clock = clock
        self._client = client
        self._networks = networks
        self._reconciler = reconciler
        self._policy = policy

    # -- choosing work ---------------------------------------------------------------------

    def assign_tasks(self) -> int:
        """Give a batch to every idle agent that fits some job; returns how many got one.

        The sweep reads the candidate jobs once and keeps their busy counts as it goes. Idle
        agents are taken SWEEP_CHUNK at a time: one transaction locks them (skipping any another
        transaction holds), reads their profiles and blocks in a few statements, and claims a
        batch for each. Claims stay compare-and-set, so another assigner working at the same
        time can only make a claim fail, never double it.
        """
        with self._uow(read_only=True) as uow:
            jobs = uow.scheduling.candidate_jobs(self._clock.now())
            # Idle agents asking for work start this pass too, most often with no work to
            # give: then the (many) idle agents need not be read.
            idle = uow.scheduling.idle_agents() if jobs else []
        given, touched = 0, set()
        for start in range(0, len(idle), SWEEP_CHUNK):
            if not jobs:
                break
            assigned, jobs = self._assign_chunk(idle[start : start + SWEEP_CHUNK], jobs)
            for agent_id, job, claimed in assigned:
                log.info(
                    "tasks assigned",
                    extra={
                        "agent_id": str(agent_id),
                        "job_id": job.id,
                        "task_ids": claimed,
                        "reason": "sweep",
                    },
                )
                self._counters.assigned(len(claimed))
                self._queue.send_tasks_to_agent(agent_id)
                touched.add(job.id)
            given += len(assigned)
        if touched:
            with self._uow() as uow:
                recompute_job_states(uow, touched, self._clock.now(), actor=MASTER)
                uow.commit()
        if idle:
            log.info("assignment sweep", extra={"idle_agents": len(idle), "assigned": given})
        return given

    def _assign_chunk(
        self, agent_ids: Sequence[uuid.UUID], jobs: list[JobProfile]
    ) -> tuple[list[tuple[uuid.UUID, JobProfile, list[int]]], list[JobProfile]]:
        """Claim a batch for each of these agents in one transaction; returns what each got
        and the jobs as they stand after it (busy counts up, jobs that ran dry gone)."""
        assigned = []
        with self._uow() as uow:
            candidates = uow.scheduling.lock_idle_agents(agent_ids)
            blocks: dict[uuid.UUID, list[JobAgentBlock]] = {}
            for block in uow.blocks.of_agents([contact.id for contact, _ in candidates]):
                blocks.setdefault(block.agent_id, []).append(block)
            locked_jobs: set[int] = set()
            now = self._clock.now()
            queued = _QueuedTasks(uow, agents=len(candidates), now=now)
            for contact, profile in candidates:
                if not jobs:
                    break
                if self._networks.refusal(contact):
                    continue
                claimed, job = self._claim_batch(
                    uow,
                    contact.id,
                    profile,
                    jobs,
                    self._blocked(blocks.get(contact.id, ()), profile, now),
                    locked_jobs,
                    queued,
                    now,
                )
                if not claimed or job is None:
                    continue
                assigned.append((contact.id, job, claimed))
                jobs = [
                    attrs.evolve(j, busy_agents=j.busy_agents + 1) if j.id == job.id else j
                    for j in jobs
                    if j.id != job.id or len(claimed) == job.batch_size
                ]
            uow.commit()
        return assigned, jobs

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> list[int]:
        """One batch of one job for an agent that is online, enabled, callable and idle.

        The agent's row is locked, so one agent never gets two batches at once; tasks are
        claimed with compare-and-set, so one task never goes to two agents.
        """
        with self._uow(read_only=True) as uow:  # most calls end here: no write lock taken
            agent = uow.agents.get(agent_id)
            if (
                agent is None
                or not agent.is_available
                or self._networks.refusal(agent)
                or uow.tasks.active_of_agent(agent_id)
            ):
                return []
        now = self._clock.now()
        with self._uow() as uow:
            agent = uow.agents.get(agent_id, for_update=True)
            if agent is None or not agent.is_available or self._networks.refusal(agent):
                return []
            if uow.tasks.active_of_agent(agent_id):
                return []
            profile = uow.scheduling.agent_profile(agent_id)
            assert profile is not None
            claimed, job = self._claim_batch(
                uow,
                agent_id,
                profile,
                uow.scheduling.candidate_jobs(now),
                self._blocked(uow.blocks.of_agent(agent_id), profile, now),
                set(),
                _QueuedTasks(uow, agents=1, now=now),
                now,
            )
            if not claimed or job is None:
                return []
            recompute_job_states(uow, [job.id], now, actor=MASTER)
            uow.commit()
        self._counters.assigned(len(claimed))
        log.info(
            "tasks assigned",
            extra={
                "agent_id": str(agent_id),
                "job_id": job.id,
                "task_ids": claimed,
                "reason": "agent idle",
            },
        )
        self._queue.send_tasks_to_agent(agent_id)
        return claimed

    def _blocked(
        self, blocks: Iterable[JobAgentBlock], profile: AgentProfile, now: datetime
    ) -> frozenset[int]:
        """The jobs the agent is not offered: too many failures lately, or refused as it is
        now."""
        return frozenset(
            block.job_id
            for block in blocks
            if block.blocks(
                profile.fingerprint, self._policy.max_failures, now, self._policy.block_expiry
            )
        )

    def _claim_batch(
        self,
        uow: UnitOfWork,
        agent_id: uuid.UUID,
        profile: AgentProfile,
        jobs: list[JobProfile],
        blocked: frozenset[int],
        locked_jobs: set[int],
        queued: _QueuedTasks,
        now: datetime,
    ) -> tuple[list[int], JobProfile | None]:
        """Claim a batch of the best job for the agent. ``locked_jobs`` collects the capped
        jobs whose rows this transaction has locked; ``queued`` serves queued tasks read ahead
        for several agents. A task the agent failed last time goes to it only as ``offerable``
        says."""
        remaining = list(jobs)
        while remaining:
            job = choose_job(profile, remaining, blocked, self._policy.ram_check)
            if job is None:
                return [], None
            if job.maximum_agents is not None:
                # Another worker may be filling the job's last place: decide under its lock.
                # A transaction waits only for its first such lock, so that no two assigners
                # wait on each other; a lock it holds already is taken again at once.
                busy = uow.scheduling.lock_job(
                    job.id, wait=not locked_jobs or job.id in locked_jobs
                )
                if busy is not None:
                    locked_jobs.add(job.id)
                if busy is None or busy >= job.maximum_agents:
                    remaining = [other for other in remaining if other.id != job.id]
                    continue
            batch = batch_of(job, queued.offered(job, agent_id, self._policy.retry))
            claimed = uow.scheduling.claim(
                [task.id for task in batch], agent_id, reason=DISPATCHED, at=now
            )
            queued.drop(job.id, batch)  # claimed now, or taken by someone else
            if claimed:
                return claimed, job
            remaining = [other for other in remaining if other.id != job.id]
        return [], None

    # -- sending work ----------------------------------------------------------------------

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        """POST the agent's unsent tasks to its ``/assign``, one job's batch at a time, and act
        on the answer as agent-protocol.md says."""
        with self._uow(read_only=True) as uow:
            agent = uow.agents.get(agent_id)
            if agent is None:
                return
            unsent = [t for t in uow.tasks.active_of_agent(agent_id) if not t.sent_to_agent]
            batches: list[tuple[Job, list[Task]]] = []
            for job_id in sorted({t.job_id for t in unsent}):
                job = uow.jobs.get(job_id)
                if job is None:  # hidden for its deletion since its tasks were read: not sent
                    continue
                batches.append((job, [t for t in unsent if t.job_id == job_id]))
        unsent = [task for _, batch in batches for task in batch]
        if not unsent:
            return
        if agent.use_address is UseAddress.PASSIVE:
            # PyFarm's master returns at once for a passive agent: it keeps what was assigned to
            # it (by hand) and reports on it itself.
            return
        refusal = self._networks.refusal(agent)
        if refusal is not None:
            self._release(agent_id, unsent, f"agent cannot be called: {refusal}", "uncallable")
            return
        url = self._url(agent)
        for job, batch in batches:
            answer = self._client.assign(agent.id, url, job, batch)
            if not self._after_assign(agent, job.id, batch, answer):
                break

    def _after_assign(
        self, agent: Agent, job_id: int, batch: list[Task], answer: AssignAnswer
    ) -> bool:
        """Act on an agent's answer to /assign; returns whether to go on sending."""
        now = self._clock.now()
        ids = [task.id for task in batch]
        self._counters.dispatched(_OUTCOMES[type(answer)])
        if isinstance(answer, Accepted):
            with self._uow() as uow:
                sent = [
                    t.id
                    for t in batch
                    if uow.scheduling.mark_sent(t.id, agent.id, t.attempts, now, reason=ACCEPTED)
                ]
                uow.commit()
            log.info(
                "tasks sent",
                extra={
                    "agent_id": str(agent.id),
                    "job_id": job_id,
                    "task_ids": sent,
                    "status": answer.name,
                },
            )
            return True
        if isinstance(answer, Refused | Conflict):
            # A conflict is a refusal too: the batch goes back to the queue and the job is not
            # offered to this agent again until its resources change.
            with self._uow() as uow:
                profile = uow.scheduling.agent_profile(agent.id)
                if profile is not None and uow.jobs.get(job_id) is not None:
                    uow.blocks.record_rejection(
                        job_id, agent.id, profile.fingerprint, now, refusal=_short(answer.reason)
                    )
                released = self._release_in(
                    uow, agent.id, batch, now, f"refused by the agent: {_short(answer.reason)}"
                )
                uow.commit()
            self._counters.requeued("refused", released)
            log.warning(
                "agent refused tasks",
                extra={
                    "agent_id": str(agent.id),
                    "job_id": job_id,
                    "task_ids": ids,
                    "status": answer.name,
                    "answer": _short(answer.reason),
                    "reason": "not offered this job again until the agent's resources change",
                },
            )
            self._queue.assign_tasks()
            return True
        if isinstance(answer, Busy):
            said = f": {answer.reason}" if answer.reason else ""
            self._go_offline(
                agent.id, f"agent shutting down or busy{said}", batch, undo_attempt=True
            )
            return False
        if isinstance(answer, Unreachable):
            self._go_offline(agent.id, f"agent unreachable: {answer.reason}", None)
            return False
        assert_never(answer)

    def _release(
        self, agent_id: uuid.UUID, tasks: Sequence[Task], reason: str, counted: str
    ) -> None:
        with self._uow() as uow:
            released = self._release_in(uow, agent_id, tasks, self._clock.now(), reason)
            uow.commit()
        self._counters.requeued(counted, released)
        log.warning(
            "tasks released",
            extra={"agent_id": str(agent_id), "task_ids": [t.id for t in tasks], "reason": reason},
        )
        self._queue.assign_tasks()

    @staticmethod
    def _release_in(
        uow: UnitOfWork,
        agent_id: uuid.UUID,
        tasks: Sequence[Task],
        now: datetime,
        reason: str,
        undo_attempt: bool = False,
    ) -> int:
        """Requeue these tasks if the agent still holds the same attempt of each; returns how
        many it requeued."""
        jobs = set()
        released_count = 0
        for task in tasks:
            current = uow.tasks.get(task.id, for_update=True)
            if (
                current is None
                or current.agent_id != agent_id
                or current.is_finished
                or current.attempts != task.attempts
            ):
                continue
            released = current.requeued()
            if undo_attempt:
                released = attrs.evolve(released, attempts=max(0, released.attempts - 1))
            uow.tasks.save(released, current, reason=reason, at=now)
            released_count += 1
            jobs.add(task.job_id)
        recompute_job_states(uow, jobs, now, actor=MASTER)
        return released_count

    def _go_offline(
        self, agent_id: uuid.UUID, reason: str, batch: list[Task] | None, undo_attempt: bool = False
    ) -> None:
        """Mark the agent offline and release its tasks (``batch`` alone, with its attempt
        undone, when the agent merely declined it)."""
        now = self._clock.now()
        with self._uow() as uow:
            agent = uow.agents.get(agent_id, for_update=True)
            if agent is None:
                return
            uow.agents.save(
                attrs.evolve(agent, state=AgentState.OFFLINE), agent, reason=reason, at=now
            )
            if agent.state is not AgentState.OFFLINE:
                record(
                    uow,
                    MASTER,
                    now,
                    "agent.state",
                    agent_target(agent_id),
                    {"state": str(agent.state)},
                    {"state": str(AgentState.OFFLINE), "reason": reason},
                )
            declined = 0
            if batch is not None:
                declined = self._release_in(
                    uow, agent_id, batch, now, reason, undo_attempt=undo_attempt
                )
            offline = release_agent_tasks(uow, agent_id, reason, now, actor=MASTER)
            uow.commit()
        self._counters.requeued("declined", declined)
        self._counters.requeued("agent_offline", len(offline))
        log.warning(
            "agent state changed",
            extra={
                "agent_id": str(agent_id),
                "from": str(agent.shown_state),
                "to": "offline",
                "reason": reason,
            },
        )
        self._queue.assign_tasks()

    def _url(self, agent: Agent) -> str:
        address = agent_address(agent)
        assert address is not None
        return base_url(address, agent.port)

    # -- other calls to agents -----------------------------------------------------------

    def update_agent(self, agent_id: uuid.UUID) -> None:
        """Ask the agent to update itself to its ``upgrade_to`` version."""
        with self._uow(read_only=True) as uow:
            agent = uow.agents.get(agent_id)
        if agent is None or agent.upgrade_to is None:
            return
        refusal = self._networks.refusal(agent)
        if refusal is not None:
            log.warning("agent not updated", extra={"agent_id": str(agent_id), "reason": refusal})
            return
        answer = self._client.update(agent_id, self._url(agent), agent.upgrade_to)
        log.info(
            "agent asked to update",
            extra={"agent_id": str(agent_id), "version": agent.upgrade_to, "status": answer.name},
        )

    def stop_tasks(
        self, agent_id: uuid.UUID, host: str, port: int, task_ids: Sequence[int]
    ) -> None:
        """Ask the agent ``agent_id`` at host:port to stop these tasks (it may be gone: nothing
        to undo)."""
        refusal = self._networks.refusal_for_host(host)
        if refusal is not None:
            log.warning("tasks not stopped", extra={"host": host, "reason": refusal})
            return
        url = base_url(host, port)
        for task_id in task_ids:
            answer = self._client.stop_task(agent_id, url, task_id)
            log.info(
                "agent asked to stop a task",
                extra={
                    "agent_id": str(agent_id),
                    "host": host,
                    "port": port,
                    "task_id": task_id,
                    "status": answer.name,
                },
            )

    # -- liveness --------------------------------------------------------------------------

    def watch_agents(self) -> None:
        """The periodic liveness sweep: silent agents go offline, agents are polled, jobs
        a stopped master left half stored are discarded, deletions left midway finished
        (their tasks' files too, given ``files``), and jobs no agent will run failed or
        flagged (``check_stuck_jobs``)."""
        self.expire_silent_agents()
        self.poll_agents()
        discard_abandoned(self._uow, self._clock, self._files)
        if check_stuck_jobs(self._uow, self._clock.now(), self._policy_rules()):
            self._queue.assign_tasks()

    def _policy_rules(self) -> StuckRules:
        policy = self._policy
        return StuckRules(
            policy.ram_check, policy.max_failures, policy.block_expiry, policy.stuck_job
        )

    def expire_silent_agents(self) -> list[uuid.UUID]:
        """Agents not heard from (nor polled) for longer than the heartbeat timeout go offline;
        their unfinished tasks are requeued without counting a failure. A reachable agent is
        polled long before (``poll_due``): this catches those the master may not call."""
        limit = self._clock.now() - timedelta(seconds=self._policy.heartbeat_timeout)
        with self._uow(read_only=True) as uow:
            contacts = uow.scheduling.contacts()
        expired = []
        for agent in contacts:
            contact = agent.last_contact
            if agent.state is not AgentState.OFFLINE and contact is not None and contact < limit:
                expired.append(agent.id)
                self._go_offline(agent.id, "heartbeat timeout", None)
        return expired

    def poll_agents(self) -> int:
        """Poll the agents ``poll_due`` names with GET /tasks/. Returns how many were polled."""
        now = self._clock.now()
        with self._uow(read_only=True) as uow:
            contacts = uow.scheduling.contacts()
        polled = 0
        for agent in contacts:
            if self._networks.refusal(agent) is None and poll_due(agent, now, self._policy):
                self.poll_agent(agent.id)
                polled += 1
        return polled

    def poll_agent(self, agent_id: uuid.UUID) -> bool:
        """GET the agent's /tasks/: an answer marks it polled (and brings an offline agent back
        online) and reconciles its tasks; silence after retries takes it offline."""
        with self._uow(read_only=True) as uow:
            agent = uow.agents.get(agent_id)
        if agent is None or self._networks.refusal(agent) is not None:
            return False
        answer = self._client.tasks(agent_id, self._url(agent))
        if not isinstance(answer, Running):
            if agent.state is not AgentState.OFFLINE:
                self._go_offline(agent_id, f"poll failed: {describe(answer)}", None)
            else:
                with self._uow() as uow:
                    current = uow.agents.get(agent_id, for_update=True)
                    if current is not None:
                        polled_at = self._clock.now()
                        polled = attrs.evolve(current, last_polled=polled_at)
                        uow.agents.save(polled, current, reason="polled", at=polled_at)
                        uow.commit()
            return False
        reported = answer.task_ids
        now = self._clock.now()
        with self._uow() as uow:
            current = uow.agents.get(agent_id, for_update=True)
            if current is None:
                return False
            back = current.state is AgentState.OFFLINE
            updated = attrs.evolve(
                current, last_polled=now, state=AgentState.ONLINE if back else current.state
            )
            uow.agents.save(updated, current, reason="answered a poll", at=now)
            if back:
                record(
                    uow,
                    MASTER,
                    now,
                    "agent.state",
                    agent_target(agent_id),
                    {"state": str(AgentState.OFFLINE)},
                    {"state": str(AgentState.ONLINE), "reason": "answered a poll"},
                )
            outcome = self._reconciler.reconcile(uow, updated, reported)
            uow.commit()
        if back:
            log.info(
                "agent state changed",
                extra={
                    "agent_id": str(agent_id),
                    "from": "offline",
                    "to": "online",
                    "reason": "answered a poll",
                },
            )
        address = agent_address(updated)
        if outcome.strays and address is not None:
            log.warning(
                "agent runs tasks it does not hold",
                extra={"agent_id": str(agent_id), "task_ids": list(outcome.strays)},
            )
            self.stop_tasks(agent_id, address, updated.port, outcome.strays)
        if outcome.unsent:
            self._queue.send_tasks_to_agent(agent_id)
        if outcome.freed_work:
            self._queue.assign_tasks()
        if updated.is_available:
            self._queue.assign_tasks_to_agent(agent_id)
        return True


_OUTCOMES = {
    Accepted: "accepted",
    Refused: "refused",
    Conflict: "conflict",
    Busy: "busy",
    Unreachable: "unreachable",
}
"""How ``Counters.dispatched`` names each answer to /assign."""


def _short(text: str) -> str:
    return text if len(text) <= 200 else text[:200] + "…"
