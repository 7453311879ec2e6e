"""Who runs what: reconciling an agent's report with the tasks the master gave it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import attrs

from farm_domain.access import Identity
from farm_domain.agents import Agent
from farm_domain.audit import job_target, record
from farm_domain.enums import FINISHED_STATES, AgentState, WorkState
from farm_domain.failures import LOST, failure_of
from farm_domain.ports import Clock, Counters, NoCounters, UnitOfWork
from farm_domain.work import Task, job_state

log = logging.getLogger("farm.assignments")


def recompute_job_states(
    uow: UnitOfWork, job_ids: Iterable[int], now: datetime, *, actor: Identity | None
) -> None:
    """Apply the job-state rule to each job after its tasks changed, and keep its times:
    ``time_started`` when it first runs, ``time_finished`` while it is done or failed.

    Each change of state is a ``job.state`` event by ``actor`` (None: the caller records the
    change in an event of its own)."""
    for job_id in sorted(set(job_ids)):
        job = uow.jobs.get(job_id)
        if job is None:
            continue
        state = job_state(uow.tasks.status_counts(job_id), job.state)
        if state is job.state:
            continue
        uow.jobs.set_state(job_id, state)
        started = job.time_started or (now if state is WorkState.RUNNING else None)
        finished = now if state in FINISHED_STATES else None
        if (started, finished) != (job.time_started, job.time_finished):
            uow.jobs.set_times(job_id, started, finished)
        if actor is not None:
            record(
                uow,
                actor,
                now,
                "job.state",
                job_target(job_id),
                {"state": str(job.state or "queued")},
                {"state": str(state or "queued")},
            )
        log.info(
            "job state changed",
            extra={
                "job_id": job_id,
                "from": str(job.state or "queued"),
                "to": str(state or "queued"),
            },
        )


def release_agent_tasks(
    uow: UnitOfWork, agent_id: uuid.UUID, reason: str, now: datetime, *, actor: Identity
) -> list[Task]:
    """Put the agent's unfinished tasks back in the queue without counting a failure (the
    jobs' changes of state are ``actor``'s events)."""
    released = []
    for task in uow.tasks.active_of_agent(agent_id, for_update=True):
        uow.tasks.save(task.requeued(), task, reason=reason, at=now)
        released.append(task)
        log.info(
            "task requeued",
            extra={
                "task_id": task.id,
                "job_id": task.job_id,
                "agent_id": str(agent_id),
                "reason": reason,
            },
        )
    recompute_job_states(uow, (task.job_id for task in released), now, actor=actor)
    return released


@attrs.frozen
class Reconciliation:
    """What reconciling one report did."""

    failed: tuple[int, ...] = ()
    requeued: tuple[int, ...] = ()
    unsent: tuple[int, ...] = ()
    still_held: int = 0
    """How many unfinished tasks the agent holds afterwards."""
    strays: tuple[int, ...] = ()
    """Tasks the agent says it runs that are no longer its own (stopped, retried, canceled,
    deleted, or another agent's): it is asked again to stop them, in case an earlier stop
    never reached it."""

    @property
    def freed_work(self) -> bool:
        return bool(self.requeued)


class AssignmentReconciler:
    """Compares the tasks an agent reports running with those the master assigned it.

    A task the master sent that the agent does not report has failed on that agent: its failures
    count up and it is requeued while the job's requeue policy allows, else it stays failed. A task
    sent less than ``grace`` ago is left alone (the report may predate the send). A task not sent yet
    is reported in ``unsent`` so that the caller asks the queue to send it. A task the agent reports
    that is not its own any more is reported in ``strays``, for the caller to stop.
    Never touches other agents' tasks; never runs for an offline agent.
    """

    def __init__(self, clock: Clock, grace: timedelta, counters: Counters | None = None) -> None:
        self._clock = clock
        self._grace = grace
        self._counters = counters or NoCounters()

    @staticmethod
    def settled(
        agent: Agent,
        reported: frozenset[int],
        attempts: Mapping[int, int] | None,
        active: Mapping[int, int],
    ) -> bool:
        """Whether reconciling this report would change nothing, decided from the agent's
        unfinished tasks and their attempts (``active``) as read with it: the usual heartbeat
        reports exactly what it holds. An offline agent is never reconciled."""
        if agent.state is AgentState.OFFLINE:
            return True
        attempts = attempts or {}
        return reported <= active.keys() and all(
            task_id in reported and attempts.get(task_id, attempt) == attempt
            for task_id, attempt in active.items()
        )

    def reconcile(
        self,
        uow: UnitOfWork,
        agent: Agent,
        reported: frozenset[int],
        attempts: Mapping[int, int] | None = None,
        active: Mapping[int, int] | None = None,
    ) -> Reconciliation:
        """``attempts`` maps a reported task to the attempt the agent runs; a report of an
        earlier attempt than the task's current one does not count (the agent runs a stale
        hand-out). ``active``, the agent's unfinished tasks and their attempts as just read
        with the agent, lets the usual heartbeat (it reports exactly what it holds) end
        without reading or locking the tasks. (Read with the agent's lock, it can miss only a
        batch whose assigner held that lock a moment before: that assigner sends the batch
        itself, and the agent's next report is checked in full if it lacks them.)"""
        if agent.state is AgentState.OFFLINE:
            return Reconciliation()
        attempts = attempts or {}
        if active is not None and self.settled(agent, reported, attempts, active):
            return Reconciliation(still_held=len(active))
        now = self._clock.now()
        failed, requeued, unsent, jobs = [], [], [], set()
        held = uow.tasks.active_of_agent(agent.id, for_update=True)
        for task in held:
            if task.id in reported and attempts.get(task.id, task.attempts) == task.attempts:
                continue
            if not task.sent_to_agent:
                unsent.append(task.id)
                continue
            if task.sent_at is not None and now - task.sent_at < self._grace:
                continue
            job = uow.jobs.get(task.job_id)
            failures = task.failures + 1
            missing = "missing from the agent's report"
            uow.tasks.record_failure(failure_of(task, LOST, missing, now))
            read, task = task, attrs.evolve(task, reason=LOST, failed_on=agent.id)
            why = f"{LOST}: {missing}"
            if job is None or job.may_requeue(failures):
                saved = attrs.evolve(task.requeued(), failures=failures)
                uow.tasks.save(saved, read, reason=why, at=now)
                requeued.append(task.id)
                outcome = "requeued"
            else:
                uow.tasks.save(
                    attrs.evolve(
                        task, state=WorkState.FAILED, failures=failures, time_finished=now
                    ),
                    read,
                    reason=why,
                    at=now,
                )
                failed.append(task.id)
                outcome = "failed"
            jobs.add(task.job_id)
            uow.blocks.record_failure(task.job_id, agent.id, now)
            self._counters.failed(LOST)
            if outcome == "requeued":
                self._counters.requeued("lost")
            log.warning(
                "task missing from agent's report",
                extra={
                    "task_id": task.id,
                    "job_id": task.job_id,
                    "agent_id": str(agent.id),
                    "failures": failures,
                    "outcome": outcome,
                },
            )
        # Failing a task the agent lost is the master's judgement, whoever's report showed it.
        recompute_job_states(uow, jobs, now, actor=Identity.master())
        held_ids = {task.id for task in held}
        strays, doubled = [], 0
        for task_id in sorted(reported - held_ids):
            reported_task = uow.tasks.get(task_id)
            # Its own finished task is one whose final report is still on its way: not a stray.
            if reported_task is None or reported_task.agent_id != agent.id:
                strays.append(task_id)
                doubled += _held_by_another(reported_task, agent.id, attempts.get(task_id))
        if doubled:
            log.error(
                "tasks run by two agents at the same attempt",
                extra={"agent_id": str(agent.id), "tasks": doubled},
            )
            self._counters.double_assignment(doubled)
        return Reconciliation(
            tuple(failed),
            tuple(requeued),
            tuple(unsent),
            len(held) - len(failed) - len(requeued),
            tuple(strays),
        )


def _held_by_another(task: Task | None, agent_id: uuid.UUID, attempt: int | None) -> bool:
    """Whether the agent runs the very attempt of ``task`` that another agent holds: an
    earlier attempt (the task was requeued since) is only a stray; an agent that does not say
    which attempt it runs (PyFarm's) cannot tell."""
    return (
        task is not None
        and attempt is not None
        and task.agent_id is not None
        and task.agent_id != agent_id
        and not task.is_finished
        and task.attempts == attempt
    )
