"""A wrangler's controls over frames and jobs: retry, skip or stop a task; cancel, pause
(letting running frames finish, or stopping them), resume or requeue a job — one at a time or
several in one request.

Who may: the job's submitter (an artist) or a wrangler, as for any change of a job
(``AccessPolicy.require_job``). Each control applies to some states only; anything else is a
Conflict that changes nothing. Each change is an event of the audit trail, committed with it.
Running frames are stopped on their agents (``TaskQueue.stop_tasks``) after the commit.

What each does to a task:

- retry (done, failed, assigned or running; not in a canceled job): back in the queue,
  owned by no agent. Its failures (count and ``TaskFailure`` rows) stay; its next hand-out is a
  new attempt, so a late report of the old run is refused (409) by the attempt check. A retried
  running task is offered to its agent last (``failed_on``).
- skip (any but done; not in a canceled job): done without running (``skipped``); a running
  one is stopped first.
- stop (assigned or running): failed with reason ``stopped`` and a ``TaskFailure`` row; not a
  failure of the agent (its blocklist count and the task's ``failures`` do not move).

And to a job:

- cancel (queued, running or paused): its unfinished tasks become ``canceled`` (owned by no
  agent; running ones are stopped) and the job ``canceled`` (its ``reason`` says who), listed
  as before and never dispatched again. ``requeue`` brings its canceled and failed tasks back.
- pause (queued, running or paused): ``finish`` lets running frames run on (the job is
  finished once they are); ``stop`` stops them and puts them back in the queue without counting
  a failure. Pausing a paused job with ``finish`` is a Conflict.
- resume (paused): queued again, running if some of its tasks still are.
- requeue (any): ``JobService.requeue_failed``.

A bulk request names at most ``MAX_BULK`` tasks (of one job) or jobs. It is refused whole
(nothing changes) when it is malformed, when the caller may change no job, or (tasks) when the
job is not found or not the caller's; otherwise each item is answered on its own
(``Outcome``): done, or the error that left it unchanged.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import attrs

from farm_domain.access import AccessPolicy, Identity, Permission
from farm_domain.agents import agent_address
from farm_domain.assignments import recompute_job_states
from farm_domain.audit import job_target, record
from farm_domain.enums import FINISHED_STATES, WorkState
from farm_domain.errors import Conflict, DomainError, Forbidden, NotFound, ValidationError
from farm_domain.jobs import JobService, JobView
from farm_domain.ports import Clock, TaskQueue, UnitOfWork, UnitOfWorkFactory
from farm_domain.validation import INT32_MAX
from farm_domain.work import Job, Task, TaskFailure, TaskStatus

log = logging.getLogger("farm.controls")

MAX_BULK = 1000
"""The most tasks or jobs one bulk request may name."""

STOPPED = "stopped"
"""The reason of a task a wrangler stopped (``Task.reason``, ``TaskFailure.reason``)."""
CANCELED = "canceled"


_HELD = (TaskStatus.ASSIGNED, TaskStatus.RUNNING)


class TaskAction(enum.Enum):
    RETRY = "retry"
    SKIP = "skip"
    STOP = "stop"

    def __str__(self) -> str:
        return self.value


class JobAction(enum.Enum):
    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    REQUEUE = "requeue"

    def __str__(self) -> str:
        return self.value


class Running(enum.Enum):
    """What a pause does to the job's running frames."""

    FINISH = "finish"
    STOP = "stop"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Outcome:
    """One item of a bulk request: what became of it (``task`` or ``job``), or the error that
    left it as it was."""

    id: int
    task: Task | None = None
    job: JobView | None = None
    requeued: tuple[int, ...] = ()
    error: DomainError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_Stops = dict[tuple[uuid.UUID, str, int], list[int]]


def parse_ids(value: object, what: str) -> list[int]:
    """A bulk request's list of ids: 1 to ``MAX_BULK`` distinct ids, in the order given.
    Raises ValidationError (field ``what``)."""
    if not isinstance(value, list) or not value:
        raise ValidationError(f"`{what}` must be a non-empty list of ids", field=what)
    if len(value) > MAX_BULK:
        raise ValidationError(f"`{what}` may name at most {MAX_BULK} ids", field=what)
    ids: list[int] = []
    for item in value:
        if type(item) is not int or not 0 < item <= INT32_MAX:
            raise ValidationError(f"`{what}` must be a list of ids", field=what)
        if item not in ids:
            ids.append(item)
    return ids


def parse_running(value: object) -> Running:
    """``finish`` (the default, None) or ``stop``. Raises ValidationError."""
    if value is None:
        return Running.FINISH
    for member in Running:
        if value == member.value:
            return member
    raise ValidationError("`running` must be `finish` or `stop`", field="running")


def _state(task: Task) -> str:
    return task.status.value


class Controls:
    """The controls, for the API, the operator CLI and the dashboard."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        queue: TaskQueue,
        clock: Clock,
        *,
        policy: AccessPolicy,
        jobs: JobService,
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._clock = clock
        self._policy = policy
        self._jobs = jobs

    # -- tasks ----------------------------------------------------------------------------

    def task(self, actor: Identity, action: TaskAction, job_id: int, task_id: int) -> Task:
        """Retry, skip or stop one task of the job. Raises Forbidden, NotFound, Conflict."""
        (outcome,) = self._tasks(actor, action, job_id, [task_id], bulk=False)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.task is not None
        return outcome.task

    def tasks(
        self, actor: Identity, action: TaskAction, job_id: int, task_ids: Sequence[int]
    ) -> list[Outcome]:
        """Retry, skip or stop several tasks of the job, each answered on its own (a task not
        in the job: NotFound; one the action does not apply to: Conflict). Raises Forbidden,
        NotFound (the job), ValidationError (none or too many ids), refusing the whole."""
        if not 0 < len(task_ids) <= MAX_BULK:
            raise ValidationError(f"`tasks` must name 1 to {MAX_BULK} tasks", field="tasks")
        return self._tasks(actor, action, job_id, task_ids, bulk=True)

    def _tasks(
        self,
        actor: Identity,
        action: TaskAction,
        job_id: int,
        task_ids: Sequence[int],
        *,
        bulk: bool,
    ) -> list[Outcome]:
        self._policy.require(actor, Permission.CHANGE_JOBS)
        now = self._clock.now()
        stops: _Stops = {}
        outcomes: list[Outcome] = []
        with self._uow() as uow:
            if bulk:
                uow.tasks.lock_of_job(job_id)  # in id order, before the job
            else:
                # The task before its job, as an agent's report locks them.
                found = uow.tasks.get(task_ids[0], for_update=True)
                if found is None or found.job_id != job_id:
                    raise NotFound("Task not found")
            job = uow.jobs.get(job_id)
            if job is None:
                raise NotFound(f"Job {job_id} not found")
            self._policy.require_job(actor, Permission.CHANGE_JOBS, job.submitted_by)
            apply = {
                TaskAction.RETRY: self._retry,
                TaskAction.SKIP: self._skip,
                TaskAction.STOP: self._stop,
            }[action]
            changed: list[tuple[Task, Task]] = []
            for task_id in task_ids:
                task = uow.tasks.get(task_id, for_update=True)
                try:
                    if task is None or task.job_id != job_id:
                        raise NotFound(f"Task {task_id} not found in job {job_id}")
                    updated = apply(uow, actor, job, task, now)
                except (NotFound, Conflict) as error:
                    outcomes.append(Outcome(task_id, error=error))
                    continue
                # Checked, then changed: nothing above raises once a task is saved.
                done = _DONE[action]
                uow.tasks.save(updated, task, reason=f"{done} by {actor.name}", at=now)
                _stop_later(uow, task, stops)
                changed.append((task, updated))
                outcomes.append(Outcome(task_id, task=updated))
            for task, updated in changed:
                record(
                    uow,
                    actor,
                    now,
                    f"task.{action}",
                    job_target(job_id),
                    {"task": task.id, "state": _state(task), "attempt": task.attempts},
                    {"task": task.id, "state": _state(updated), "skipped": updated.skipped}
                    if action is TaskAction.SKIP
                    else {"task": task.id, "state": _state(updated)},
                )
            if changed:
                recompute_job_states(uow, [job_id], now, actor=actor)
            uow.commit()
        for task, updated in changed:
            log.info(
                f"task {action}",
                extra={
                    "task_id": task.id,
                    "job_id": job_id,
                    "agent_id": None if task.agent_id is None else str(task.agent_id),
                    "from": _state(task),
                    "to": _state(updated),
                    "actor": actor.name,
                },
            )
        self._after(stops, requeued=action is TaskAction.RETRY and bool(changed))
        return outcomes

    @staticmethod
    def _not_canceled(job: Job, task: Task, action: TaskAction) -> None:
        if job.state is WorkState.CANCELED:
            raise Conflict(
                f"Job {job.id} is canceled: requeue it before you {action} its task {task.id}"
            )

    def _retry(self, uow: UnitOfWork, actor: Identity, job: Job, task: Task, now: datetime) -> Task:
        self._not_canceled(job, task, TaskAction.RETRY)
        if task.status is TaskStatus.QUEUED:
            raise Conflict(f"Task {task.id} is queued already: there is nothing to retry")
        # A running frame is offered to its agent last (``failed_on``): that agent may still
        # be stopping the old run, and would refuse the same task meanwhile.
        held = task.agent_id if task.status in _HELD else task.failed_on
        return attrs.evolve(
            task.requeued(),
            failed_on=held,
            skipped=False,
            progress=None,
            time_started=None,
            time_finished=None,
            not_before=None,
        )

    def _skip(self, uow: UnitOfWork, actor: Identity, job: Job, task: Task, now: datetime) -> Task:
        self._not_canceled(job, task, TaskAction.SKIP)
        if task.state is WorkState.DONE:
            what = "skipped" if task.skipped else "done"
            raise Conflict(f"Task {task.id} is {what} already: there is nothing to skip")
        return attrs.evolve(
            task.requeued(),
            state=WorkState.DONE,
            skipped=True,
            not_before=None,
            time_finished=now,
        )

    def _stop(self, uow: UnitOfWork, actor: Identity, job: Job, task: Task, now: datetime) -> Task:
        if task.status not in _HELD:
            raise Conflict(
                f"Task {task.id} is {_state(task)}: only a running or assigned task can be stopped"
            )
        message = f"stopped by {actor.name}"
        uow.tasks.record_failure(
            TaskFailure(
                id=0,
                task_id=task.id,
                attempt=task.attempts,
                agent_id=task.agent_id,
                at=now,
                reason=STOPPED,
                message=message,
            )
        )
        return attrs.evolve(
            task.requeued(),
            state=WorkState.FAILED,
            reason=STOPPED,
            last_error=message,
            time_finished=now,
        )

    # -- jobs -----------------------------------------------------------------------------

    def job(
        self,
        actor: Identity,
        action: JobAction,
        job_id: int,
        running: Running = Running.FINISH,
    ) -> Outcome:
        """Cancel, pause, resume or requeue one job. Raises Forbidden, NotFound, Conflict."""
        self._policy.require(actor, Permission.CHANGE_JOBS)
        outcome = self._job(actor, action, job_id, running)
        if outcome.error is not None:
            raise outcome.error
        return outcome

    def jobs(
        self,
        actor: Identity,
        action: JobAction,
        job_ids: Sequence[int],
        running: Running = Running.FINISH,
    ) -> list[Outcome]:
        """The action on each job, in its own transaction, each answered on its own (NotFound,
        Forbidden: another's job for an artist, Conflict). Raises Forbidden (the caller may
        change no job) and ValidationError (none or too many ids), refusing the whole."""
        self._policy.require(actor, Permission.CHANGE_JOBS)
        if not 0 < len(job_ids) <= MAX_BULK:
            raise ValidationError(f"`jobs` must name 1 to {MAX_BULK} jobs", field="jobs")
        return [self._job(actor, action, job_id, running) for job_id in job_ids]

    def delete_jobs(self, actor: Identity, job_ids: Sequence[int]) -> list[Outcome]:
        """Delete each job (``JobService.delete``), each answered on its own: NotFound (gone),
        Forbidden (another's job for an artist). Raises Forbidden (the caller may change no
        job) and ValidationError (none or too many ids), refusing the whole."""
        self._policy.require(actor, Permission.CHANGE_JOBS)
        if not 0 < len(job_ids) <= MAX_BULK:
            raise ValidationError(f"`jobs` must name 1 to {MAX_BULK} jobs", field="jobs")
        outcomes = []
        for job_id in job_ids:
            try:
                if self._jobs.delete(actor, job_id):
                    outcomes.append(Outcome(job_id))
                else:
                    outcomes.append(Outcome(job_id, error=NotFound(f"Job {job_id} not found")))
            except Forbidden as error:
                outcomes.append(Outcome(job_id, error=error))
        return outcomes

    def _job(self, actor: Identity, action: JobAction, job_id: int, running: Running) -> Outcome:
        try:
            if action is JobAction.REQUEUE:
                requeued = self._jobs.requeue_failed(actor, job_id)
                return Outcome(job_id, job=self._jobs.get(actor, job_id), requeued=tuple(requeued))
            change = {
                JobAction.CANCEL: self._cancel,
                JobAction.PAUSE: lambda uow, actor, job, now, stops: self._pause(
                    uow, actor, job, now, stops, running
                ),
                JobAction.RESUME: self._resume,
            }[action]
            return self._change_job(actor, action, job_id, change)
        except (NotFound, Conflict, Forbidden) as error:
            return Outcome(job_id, error=error)

    def _change_job(
        self,
        actor: Identity,
        action: JobAction,
        job_id: int,
        change: Callable[[UnitOfWork, Identity, Job, datetime, _Stops], dict[str, Any]],
    ) -> Outcome:
        now = self._clock.now()
        stops: _Stops = {}
        with self._uow() as uow:
            uow.tasks.lock_of_job(job_id)  # before the job, as reports and heartbeats do
            job = uow.jobs.get(job_id, for_update=True)
            if job is None:
                raise NotFound(f"Job {job_id} not found")
            self._policy.require_job(actor, Permission.CHANGE_JOBS, job.submitted_by)
            after = change(uow, actor, job, now, stops)
            recompute_job_states(uow, [job_id], now, actor=None)  # in this change's event
            updated = uow.jobs.get(job_id)
            assert updated is not None
            view = JobView(updated, uow.tasks.status_counts(job_id))
            record(
                uow,
                actor,
                now,
                f"job.{action}",
                job_target(job_id),
                {"state": str(job.state or "queued")},
                {"state": str(updated.state or "queued"), **after},
            )
            uow.commit()
        log.info(
            f"job {action}",
            extra={
                "job_id": job_id,
                "from": str(job.state or "queued"),
                "to": str(view.job.state or "queued"),
                "actor": actor.name,
                **{k: v for k, v in after.items() if k != "state"},
            },
        )
        self._after(stops, requeued=action is JobAction.RESUME or bool(after.get("requeued")))
        return Outcome(job_id, job=view)

    @staticmethod
    def _unfinished(uow: UnitOfWork, job: Job) -> list[Task]:
        return [t for t in uow.tasks.of_job(job.id) if not t.is_finished]

    def _cancel(
        self, uow: UnitOfWork, actor: Identity, job: Job, now: datetime, stops: _Stops
    ) -> dict[str, Any]:
        if job.state in FINISHED_STATES:
            raise Conflict(f"Job {job.id} is {job.state}: it cannot be canceled")
        # Two statements and a read of the held tasks, whatever the job's size: a 100,000-frame
        # job is canceled without holding the write lock for a statement per task.
        stopped = []
        canceled_by = f"canceled by {actor.name}"
        # taken from their agents, no failure
        for task in uow.tasks.release_of_job(job.id, reason=canceled_by, at=now):
            stopped.append(task.id)
            _stop_later(uow, task, stops)
        canceled = uow.tasks.cancel_unfinished(job.id, CANCELED, now, why=canceled_by)
        uow.jobs.save(attrs.evolve(job, state=WorkState.CANCELED, reason=canceled_by))
        uow.jobs.set_times(job.id, job.time_started, now)
        return {"canceled": canceled, "stopped": stopped}

    def _pause(
        self,
        uow: UnitOfWork,
        actor: Identity,
        job: Job,
        now: datetime,
        stops: _Stops,
        running: Running,
    ) -> dict[str, Any]:
        if job.state in FINISHED_STATES:
            raise Conflict(f"Job {job.id} is {job.state}: it cannot be paused")
        held = [t for t in self._unfinished(uow, job) if t.agent_id is not None]
        if job.state is WorkState.PAUSED and (running is Running.FINISH or not held):
            raise Conflict(f"Job {job.id} is paused already")
        stopped = []
        if running is Running.STOP:
            for task in held:
                _stop_later(uow, task, stops)
                # not a failure: no count, no block
                uow.tasks.save(task.requeued(), task, reason=f"paused by {actor.name}", at=now)
                stopped.append(task.id)
        uow.jobs.save(attrs.evolve(job, state=WorkState.PAUSED))
        return {"running": str(running), "stopped": stopped}

    def _resume(
        self, uow: UnitOfWork, actor: Identity, job: Job, now: datetime, stops: _Stops
    ) -> dict[str, Any]:
        if job.state is not WorkState.PAUSED:
            raise Conflict(
                f"Job {job.id} is {job.state or 'queued'}, not paused: nothing to resume"
            )
        uow.jobs.save(attrs.evolve(job, state=None))
        return {}

    # -- after the commit -------------------------------------------------------------------

    def _after(self, stops: _Stops, *, requeued: bool) -> None:
        for (agent_id, host, port), task_ids in stops.items():
            self._queue.stop_tasks(agent_id, host, port, task_ids)
        if stops or requeued:
            self._queue.assign_tasks()


_DONE = {TaskAction.RETRY: "retried", TaskAction.SKIP: "skipped", TaskAction.STOP: "stopped"}
"""What a task action did, for the task's history."""


def _stop_later(uow: UnitOfWork, task: Task, stops: _Stops) -> None:
    """Note that ``task``'s agent, if it holds it unfinished, is to be asked to stop it."""
    if task.agent_id is None or task.is_finished:
        return
    agent = uow.agents.get(task.agent_id)
    address = None if agent is None else agent_address(agent)
    if agent is not None and address is not None:
        stops.setdefault((agent.id, address, agent.port), []).append(task.id)
