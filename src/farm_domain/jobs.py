"""Jobs: submission (one task per frame), queries, changes, and the agents' task reports."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from farm_domain import blender_jobs
from farm_domain.access import AccessPolicy, Identity, Permission
from farm_domain.agents import UNSET, Unset, agent_address
from farm_domain.assignments import recompute_job_states
from farm_domain.audit import changes, job_target, record
from farm_domain.enums import FINISHED_STATES, WorkState
from farm_domain.errors import Conflict, NotFound, Unavailable, ValidationError
from farm_domain.failures import (
    MAX_FAILURES_LISTED,
    failure_of,
    reason_or_default,
    valid_reason,
)
from farm_domain.identities import refuse_unbound_for_enrolled
from farm_domain.job_cleanup import TASK_CHUNK, discard_unready, purge_deleted
from farm_domain.job_requests import (
    JobChanges,
    JobSpec,
    TaskReport,
    check_free_json,
    check_scalars,
    frames,
    task_outputs,
)
from farm_domain.jobtypes import resolve_requirements
from farm_domain.ports import (
    Clock,
    Counters,
    FileStore,
    NoCounters,
    TaskQueue,
    UnitOfWork,
    UnitOfWorkFactory,
)
from farm_domain.scheduling import NO_BACKOFF, JobAgentBlock, RetryBackoff
from farm_domain.stuck_jobs import STUCK_TASK, revive_in
from farm_domain.validation import (
    INT32_MAX,
    parse_id,
)
from farm_domain.work import (
    Job,
    JobQuery,
    Task,
    TaskFailure,
    TaskStatus,
    estimated_remaining,
    job_state,
)

log = logging.getLogger("farm.jobs")

_REQUEUED_STATES = (WorkState.FAILED, WorkState.CANCELED)
TASK_PAGE = 1000  # a job's tasks are listed this many at a time unless asked otherwise
MAX_TASK_PAGE = 10_000
ETA_SAMPLE = 1000  # done frames whose durations estimate a job's time left
_FINISHED_STATUSES = frozenset({TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELED})


@attrs.frozen
class BlockView:
    """An entry of a job's blocklist: ``refused`` while the agent still has the resources it
    had when it refused the job's work; ``blocked`` when the scheduler keeps it away."""

    block: JobAgentBlock
    refused: bool
    blocked: bool


@attrs.frozen
class JobView:
    """A job with its tasks counted by status."""

    job: Job
    counts: dict[TaskStatus, int]
    busy_agents: int = 0


def _tasks(job: Job, frames_: Sequence[float], now: datetime) -> list[Task]:
    return [
        Task(id=0, job_id=job.id, frame=frame, priority=job.priority, time_submitted=now)
        for frame in frames_
    ]


def _record_submission(
    uow: UnitOfWork, actor: Identity, now: datetime, job: Job, tasks: int
) -> None:
    record(
        uow,
        actor,
        now,
        "job.submit",
        job_target(job.id),
        after={
            "title": job.title,
            "jobtype": job.jobtype,
            "jobtype_version": job.jobtype_version,
            "user": job.user,
            "priority": job.priority,
            "frames": [job.frame_start, job.frame_end, job.frame_by],
            "tasks": tasks,
        },
    )


class JobService:
    """Jobs and their tasks, for submitters, operators and agents."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        queue: TaskQueue,
        clock: Clock,
        max_failures: int,
        *,
        policy: AccessPolicy,
        files: FileStore,
        task_chunk: int = TASK_CHUNK,
        backoff: RetryBackoff = NO_BACKOFF,
        block_expiry: float = 0,
        counters: Counters | None = None,
    ) -> None:
        """``backoff``: how long a task requeued after a failure waits; ``block_expiry``:
        seconds after which an agent's block for a job's failures lifts (0: never)."""
        self._counters = counters or NoCounters()
        self._backoff = backoff
        self._block_expiry = block_expiry
        self._uow = uow
        self._queue = queue
        self._clock = clock
        self._max_failures = max_failures
        self._policy = policy
        self._files = files
        self._task_chunk = task_chunk

    # -- submitters and operators ---------------------------------------------------------

    def submit(self, actor: Identity, spec: JobSpec) -> JobView:
        """Create the job and one task per frame; the queue is asked to assign work. The job
        records ``actor`` as its submitter, and as its ``user`` unless the spec names one.

        A job of more than one chunk of tasks is stored in steps, each a short transaction:
        the job, not ready (seen by no query nor the scheduler), then its tasks a chunk at a
        time, then the job made ready. A submission that fails midway discards what it stored
        (and ``discard_abandoned`` discards what a master that stopped midway left).

        Raises Forbidden, ValidationError (including ``No jobtype specified``), NotFound (job
        type, software, version) and Unavailable.
        """
        self._policy.require(actor, Permission.SUBMIT_JOBS)
        if spec.jobtype is None:
            raise ValidationError("No jobtype specified", field="jobtype")
        end = spec.start if spec.end is None else spec.end
        frame_list = frames(spec.start, end, spec.by)
        check_scalars(attrs.asdict(spec, recurse=False))
        check_free_json(attrs.asdict(spec, recurse=False))
        if any(not 0 < parent <= INT32_MAX for parent in spec.parents):
            raise ValidationError("`parents` must be job ids", field="parents")
        if spec.jobtype_version is not None and not 0 < spec.jobtype_version <= INT32_MAX:
            raise ValidationError(
                "`jobtype_version` must be a version number", field="jobtype_version"
            )
        now = self._clock.now()
        size = self._task_chunk
        chunks = [frame_list[at : at + size] for at in range(0, len(frame_list), size)]
        in_one = len(chunks) == 1
        with self._uow() as uow:
            version = self._jobtype(uow, spec.jobtype, spec.jobtype_version)
            if self._jobtype_name(uow, spec.jobtype) == blender_jobs.NAME:
                blender_jobs.check_data(spec.data)
                blender_jobs.check_frames(frame_list)
            requirements = resolve_requirements(uow, spec.software_requirements)
            missing = sorted(set(spec.parents) - uow.jobs.existing_ids(spec.parents))
            if missing:
                raise ValidationError(
                    f"parent job(s) not found: {', '.join(map(str, missing))}", field="parents"
                )
            job = uow.jobs.add(
                Job(
                    id=0,
                    title=spec.title,
                    jobtype_version_id=version,
                    priority=spec.priority,
                    weight=spec.weight,
                    requeue=spec.requeue,
                    frame_start=float(spec.start),
                    frame_end=float(end),
                    frame_by=float(spec.by),
                    batch=spec.batch,
                    ram=spec.ram,
                    ram_warning=spec.ram_warning,
                    ram_max=spec.ram_max,
                    cpus=spec.cpus,
                    max_run_seconds=spec.max_run_seconds,
                    stall_seconds=spec.stall_seconds,
                    minimum_agents=spec.minimum_agents,
                    maximum_agents=spec.maximum_agents,
                    data=spec.data,
                    environ=spec.environ,
                    user=actor.name if spec.user is None else spec.user,
                    submitted_by=actor.name,
                    tags=tuple(spec.tags),
                    parents=tuple(sorted(set(spec.parents))),
                    software_requirements=requirements,
                    tag_requirements=tuple(spec.tag_requirements),
                    time_submitted=now,
                ),
                ready=in_one,
            )
            if in_one:
                uow.tasks.add_many(_tasks(job, chunks[0], now))
                _record_submission(uow, actor, now, job, len(frame_list))
            uow.commit()
        if not in_one:
            try:
                self._store_tasks(actor, job, chunks, now)
            except BaseException:
                discard_unready(self._uow, job.id, self._task_chunk)
                raise
        log.info(
            "job submitted", extra={"job_id": job.id, "title": job.title, "tasks": len(frame_list)}
        )
        self._queue.assign_tasks()
        return JobView(job, {TaskStatus.QUEUED: len(frame_list)})

    def _store_tasks(
        self, actor: Identity, job: Job, chunks: list[list[float]], now: datetime
    ) -> None:
        """Store a job's tasks a chunk per transaction, then make the job ready. Raises
        Unavailable when the job was discarded meanwhile (the submission took too long)."""
        gone = Unavailable(
            f"Job {job.id} was discarded before all its tasks were stored: submit it again"
        )
        for chunk in chunks:
            tasks = _tasks(job, chunk, now)  # built before the transaction, not while it locks
            with self._uow() as uow:
                if not uow.jobs.lock_unready(job.id):
                    raise gone
                uow.tasks.add_many(tasks)
                uow.commit()
        with self._uow() as uow:
            if not uow.jobs.make_ready(job.id):
                raise gone
            _record_submission(uow, actor, now, job, sum(map(len, chunks)))
            uow.commit()

    def query(self, actor: Identity, query: JobQuery = JobQuery()) -> list[JobView]:
        """Jobs matching the query, newest first, with their task counts. Raises Forbidden."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            jobs = uow.jobs.query(query)
            counts = uow.tasks.status_counts_of(job.id for job in jobs)
            busy = uow.tasks.busy_agents_of(job.id for job in jobs)
        return [JobView(job, counts.get(job.id, {}), busy.get(job.id, 0)) for job in jobs]

    def get(self, actor: Identity, id_or_title: str | int) -> JobView:
        """A job by id, or the newest job with that title. Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            job = self._job(uow, id_or_title)
            return JobView(job, uow.tasks.status_counts(job.id))

    def update(self, actor: Identity, job_id: int, wanted: JobChanges) -> JobView:
        """Change a job's settings, pause it or resume it: the submitter (an artist) or a
        wrangler. Raises Forbidden, NotFound, ValidationError, Conflict (pausing or resuming a
        finished job; changing ``data`` or ``environ`` once a task was handed out)."""
        self._policy.require(actor, Permission.CHANGE_JOBS)
        values = {
            a.name: v
            for a in attrs.fields(JobChanges)
            if (v := getattr(wanted, a.name)) is not UNSET
        }
        wanted_state = values.pop("state", None)
        if wanted_state not in (None, "paused", "queued"):
            raise ValidationError(
                f"`{wanted_state}` is not a state a job can be set to (paused or queued)",
                field="state",
            )
        if "tags" in values:
            values["tags"] = tuple(values["tags"])
        check_scalars(values)
        check_free_json(values)
        now = self._clock.now()
        with self._uow() as uow:
            job = self._job(uow, job_id, for_update=True)
            self._policy.require_job(actor, Permission.CHANGE_JOBS, job.submitted_by)
            if job.time_started is not None and values.keys() & {"data", "environ"}:
                raise Conflict(
                    f"Job {job_id} has started: its `data` and `environ` can no longer change "
                    "(its tasks would run with different values)"
                )
            if "data" in values and job.jobtype == blender_jobs.NAME:
                blender_jobs.check_data(values["data"])
            updated = attrs.evolve(job, **values)
            check_scalars(attrs.asdict(updated, recurse=False))
            if wanted_state is not None:
                if job.state in FINISHED_STATES:
                    raise Conflict(f"Job {job_id} is {job.state}; it cannot be {wanted_state}")
                paused = wanted_state == "paused"
                current = WorkState.PAUSED if paused else None
                updated = attrs.evolve(
                    updated,
                    state=current if paused else job_state(uow.tasks.status_counts(job_id), None),
                )
            uow.jobs.save(updated)
            if wanted_state == "queued":
                recompute_job_states(uow, [job_id], now, actor=None)  # in this change's event
            view = JobView(self._job(uow, job_id), uow.tasks.status_counts(job_id))
            before, after = changes(job, view.job, [*values, "state"])
            for fields in (before, after):
                if "state" in fields:  # as the API names it: no state is "queued"
                    fields["state"] = fields["state"] or "queued"
            if after:
                record(uow, actor, now, "job.update", job_target(job_id), before, after)
            uow.commit()
        if job.state is not view.job.state:
            log.info(
                "job state changed",
                extra={
                    "job_id": job_id,
                    "to": str(view.job.state or "queued"),
                    "reason": "set by request",
                },
            )
        if (
            wanted_state == "queued"
            or {"priority", "weight", "minimum_agents", "maximum_agents"} & values.keys()
        ):
            self._queue.assign_tasks()
        return view

    def delete(self, actor: Identity, job_id: int) -> bool:
        """Delete the job, its tasks and their files (the submitter or a wrangler); agents
        running them are asked to stop. Returns whether it existed. Raises Forbidden.

        In steps, each a short transaction (a 100,000-task job in one held the write lock every
        heartbeat waits for): the job is hidden (no query, page, scheduler or report sees it
        from then on) and its tasks taken from their agents, then its tasks are deleted a chunk
        at a time, each chunk's files after its commit, then the job. A deletion that stops
        midway leaves the job hidden, and ``discard_abandoned`` finishes it."""
        self._policy.require(actor, Permission.CHANGE_JOBS)
        stops: dict[tuple[uuid.UUID, str, int], list[int]] = {}
        with self._uow() as uow:
            job = uow.jobs.get(job_id)
            if job is None:
                return False
            self._policy.require_job(actor, Permission.CHANGE_JOBS, job.submitted_by)
            # The held tasks are locked before the job is: the order a task's report takes.
            deleted_by = f"job deleted by {actor.name}"
            for task in uow.tasks.release_of_job(job_id, reason=deleted_by, at=self._clock.now()):
                assert task.agent_id is not None
                agent = uow.agents.get(task.agent_id)
                address = None if agent is None else agent_address(agent)
                if agent is not None and address is not None:
                    stops.setdefault((agent.id, address, agent.port), []).append(task.id)
            if not uow.jobs.hide(job_id):  # deleted meanwhile
                return False
            record(
                uow,
                actor,
                self._clock.now(),
                "job.delete",
                job_target(job_id),
                before={
                    "title": job.title,
                    "state": str(job.state or "queued"),
                    "submitted_by": job.submitted_by,
                },
            )
            uow.commit()
        for (agent_id, host, port), task_ids in stops.items():
            self._queue.stop_tasks(agent_id, host, port, task_ids)
        if stops:
            self._queue.assign_tasks()
        if purge_deleted(self._uow, self._files, job_id, self._task_chunk):
            log.info("job deleted", extra={"job_id": job_id, "title": job.title})
        return True

    def requeue_failed(self, actor: Identity, job_id: int) -> list[int]:
        """Put the job's failed and canceled tasks back in the queue (their failure counts stay,
        their back-off does not), lift every agent's block for the job and clear its reason (a
        canceled job's says who canceled it); returns the tasks' ids. A canceled job is queued
        again. The submitter or a wrangler. Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.CHANGE_JOBS)
        now = self._clock.now()
        with self._uow() as uow:
            uow.tasks.lock_of_job(job_id)  # before the job, as reports and heartbeats do
            job = self._job(uow, job_id, for_update=True)
            self._policy.require_job(actor, Permission.CHANGE_JOBS, job.submitted_by)
            failed = [t for t in uow.tasks.of_job(job.id) if t.state in _REQUEUED_STATES]
            for task in failed:
                uow.tasks.save(
                    attrs.evolve(
                        task.requeued(),
                        time_finished=None,
                        not_before=None,
                        reason=None if task.reason == STUCK_TASK else task.reason,
                    ),
                    task,
                    reason=f"requeued by {actor.name}",
                    at=now,
                )
            unblocked = uow.blocks.clear_job(job.id)
            if job.reason is not None:
                uow.jobs.save(attrs.evolve(job, reason=None))
            if failed or unblocked or job.reason is not None:
                record(
                    uow,
                    actor,
                    now,
                    "job.requeue",
                    job_target(job.id),
                    before={"reason": job.reason} if job.reason is not None else None,
                    after={"tasks": [t.id for t in failed], "unblocked_agents": unblocked},
                )
            recompute_job_states(uow, [job.id], now, actor=actor)
            uow.commit()
        if failed or unblocked:
            log.info(
                "failed tasks requeued",
                extra={
                    "job_id": job_id,
                    "task_ids": [t.id for t in failed],
                    "unblocked_agents": unblocked,
                    "reason": "operator",
                },
            )
            self._queue.assign_tasks()
        return [t.id for t in failed]

    def blocklist(self, actor: Identity, job_id: int) -> list[BlockView]:
        """How each agent fared with the job, and whether the scheduler keeps it away.
        Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            self._job(uow, job_id)
            views = []
            now = self._clock.now()
            for block in uow.blocks.of_job(job_id):
                profile = uow.scheduling.agent_profile(block.agent_id)
                fingerprint = "" if profile is None else profile.fingerprint
                blocked = block.blocks(fingerprint, self._max_failures, now, self._block_expiry)
                refused = block.rejected_fingerprint == fingerprint
                views.append(BlockView(block, refused, blocked))
        return views

    def unblock(self, actor: Identity, job_id: int, agent_id: uuid.UUID | None) -> int:
        """Forget an agent's failures and refusal of the job (``agent_id`` None: every
        agent's); a job failed because every agent was blocked comes back to the queue. The
        queue is asked to assign. Returns how many agents were unblocked. Raises Forbidden,
        NotFound."""
        self._policy.require(actor, Permission.MANAGE_BLOCKLISTS)
        now = self._clock.now()
        with self._uow() as uow:
            self._job(uow, job_id)
            blocks = [
                b for b in uow.blocks.of_job(job_id) if agent_id is None or b.agent_id == agent_id
            ]
            if agent_id is None:
                uow.blocks.clear_job(job_id)
            else:
                uow.blocks.clear(job_id, agent_id)
            for block in blocks:
                record(
                    uow,
                    actor,
                    now,
                    "blocklist.clear",
                    f"blocklist:{job_id}/{block.agent_id}",
                    before={
                        "failures": block.failures,
                        "refused": block.rejected_fingerprint is not None,
                    },
                )
            back = bool(blocks) and revive_in(uow, job_id, now, "an agent was unblocked")
            uow.commit()
        log.info(
            "agent unblocked",
            extra={
                "job_id": job_id,
                "agent_id": "all" if agent_id is None else str(agent_id),
                "unblocked_agents": len(blocks),
                "job_back": back,
            },
        )
        if agent_id is None or back:
            self._queue.assign_tasks()
        else:
            self._queue.assign_tasks_to_agent(agent_id)
        return len(blocks)

    def tasks(
        self,
        actor: Identity,
        job_id: int,
        *,
        limit: int = TASK_PAGE,
        offset: int = 0,
        status: TaskStatus | None = None,
    ) -> list[Task]:
        """``limit`` of the job's tasks by frame from ``offset``, only those of ``status`` when
        given.

        Raises Forbidden, NotFound, ValidationError (``limit`` or ``offset`` out of range).
        """
        self._policy.require(actor, Permission.READ)
        if not 1 <= limit <= MAX_TASK_PAGE:
            raise ValidationError(f"`limit` must be between 1 and {MAX_TASK_PAGE}", field="limit")
        if not 0 <= offset <= INT32_MAX:
            raise ValidationError(f"`offset` must be between 0 and {INT32_MAX}", field="offset")
        with self._uow(read_only=True) as uow:
            self._job(uow, job_id)
            return uow.tasks.of_job(job_id, limit=limit, offset=offset, status=status)

    def relatives(self, actor: Identity, job_id: int) -> tuple[dict[int, str], dict[int, str]]:
        """The job's parents (the jobs it waits for) and children (those waiting for it), each
        by id with its title; a deleted one is left out. Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            job = self._job(uow, job_id)
            parents = uow.jobs.titles(job.parents)
            children = uow.jobs.titles(uow.jobs.children(job.id))
        return dict(sorted(parents.items())), dict(sorted(children.items()))

    def remaining_time(self, actor: Identity, job_id: int) -> timedelta | None:
        """The job's estimated time to finish (``estimated_remaining``): from a sample of up
        to ETA_SAMPLE of its done frames' durations, its unfinished frames and, as how many run
        at a time, those assigned or running now. Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            self._job(uow, job_id)
            counts = uow.tasks.status_counts(job_id)
            done = uow.tasks.of_job(job_id, limit=ETA_SAMPLE, status=TaskStatus.DONE)
        durations = [d for t in done if not t.skipped and (d := t.duration) is not None]
        unfinished = sum(n for status, n in counts.items() if status not in _FINISHED_STATUSES)
        parallel = counts.get(TaskStatus.RUNNING, 0) + counts.get(TaskStatus.ASSIGNED, 0)
        return estimated_remaining(durations, unfinished, parallel)

    def task(self, actor: Identity, job_id: int, task_id: int) -> Task:
        """Raises Forbidden, NotFound (``Task not found``) when the task is not in that job."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            task = uow.tasks.get(task_id)
        if task is None or task.job_id != job_id:
            raise NotFound("Task not found")
        return task

    def failures(self, actor: Identity, job_id: int, task_id: int) -> list[TaskFailure]:
        """The task's latest MAX_FAILURES_LISTED failed attempts, oldest first: when, on
        which agent, why. Raises Forbidden, NotFound (``Task not found``)."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            task = uow.tasks.get(task_id)
            if task is None or task.job_id != job_id:
                raise NotFound("Task not found")
            return uow.tasks.failures_of(task_id, limit=MAX_FAILURES_LISTED)

    # -- agents --------------------------------------------------------------------------

    def report(
        self,
        actor: Identity,
        job_id: int,
        task_id: int,
        report: TaskReport,
        reporter: uuid.UUID | None = None,
        attempt: int | None = None,
    ) -> Task:
        """Apply an agent's report on a task.

        The reporter is the task's current owner: a report naming another agent
        (``reporter``, from the ``X-Farm-Agent-Id`` header), or about a task that no agent owns
        any more, or about an earlier attempt than the current one (``attempt``, from the
        ``X-Farm-Attempt`` header), is refused with Conflict and changes nothing. A report never
        moves a finished task backwards: it is answered with the task as it is. ``actor`` must
        act as the task's agent (Forbidden otherwise, before anything changes). Raises
        Forbidden, NotFound, ValidationError, Conflict.
        """
        self._policy.require(actor, Permission.ACT_AS_AGENT)
        state = report.state
        if state is not UNSET and state not in ("running", "done", "failed", "queued"):
            raise ValidationError(f"`{state}` is not a valid state", field="state")
        if report.progress is not UNSET and not 0 <= report.progress <= 1:
            raise ValidationError("`progress` must be between 0 and 1", field="progress")
        if report.reason not in (UNSET, None) and not valid_reason(report.reason):
            raise ValidationError("`reason` must be a short code ([a-z_]{1,32})", field="reason")
        if report.outputs is not UNSET:
            task_outputs(report.outputs)
            if state != "done":
                raise ValidationError("`outputs` come with a `done` report", field="outputs")
        now = self._clock.now()
        with self._uow() as uow:
            task = uow.tasks.get(task_id, for_update=True)
            if task is None or task.job_id != job_id:
                raise NotFound("Task not found")
            if task.agent_id is not None:
                self._policy.require_agent(actor, task.agent_id)
                refuse_unbound_for_enrolled(uow, actor, task.agent_id, now)
            if reporter is not None and task.agent_id != reporter:
                self._counters.stale_report()
                raise Conflict(f"Task {task_id} is not assigned to agent {reporter}")
            if task.agent_id is None and not (state == "queued" and task.state is None):
                raise Conflict(f"Task {task_id} is not assigned to any agent")
            if attempt is not None and attempt != task.attempts:
                self._counters.stale_report()
                raise Conflict(f"Task {task_id} is at attempt {task.attempts}, not {attempt}")
            if task.is_finished:
                return task
            job = uow.jobs.get(job_id)
            if job is None:  # its tasks are still being stored: no agent has one
                raise NotFound("Task not found")
            updated = self._apply_report(task, job, report, now, self._backoff)
            said = "" if report.reason in (UNSET, None) else f": {report.reason}"
            uow.tasks.save(updated, task, reason=f"reported by its agent{said}", at=now)
            blocked = False
            if report.state == "failed":
                uow.tasks.record_failure(
                    failure_of(task, _given(report.reason), _given(report.last_error), now)
                )
                if task.agent_id is not None:
                    uow.blocks.record_failure(job_id, task.agent_id, now)
                    blocked = any(
                        b.agent_id == task.agent_id and b.failures >= self._max_failures
                        for b in uow.blocks.of_job(job_id)
                    )
            recompute_job_states(uow, [job_id], now, actor=actor)
            owner = task.agent_id
            idle = owner is not None and not uow.tasks.active_of_agent(owner)
            uow.commit()
        self._count_report(report, task, updated)
        if updated != task:
            log.info(
                "task reported",
                extra={
                    "task_id": task_id,
                    "job_id": job_id,
                    "agent_id": str(owner),
                    "from": task.status.value,
                    "to": updated.status.value,
                    "reason": f"agent reported {state if state is not UNSET else 'progress'}",
                },
            )
        if updated.agent_id is None and task.agent_id is not None:
            self._queue.assign_tasks()
        elif idle and owner is not None:
            self._queue.assign_tasks_to_agent(owner)
        if updated.not_before is not None and updated.not_before > now:
            # An assignment pass when the back-off ends for other agents, and when it ends for
            # the agent that failed it (``offerable``); the periodic sweep catches a lost one.
            delay = (updated.not_before - now).total_seconds()
            self._queue.assign_tasks_later(delay)
            self._queue.assign_tasks_later(2 * delay)
        if blocked and self._block_expiry > 0:
            self._queue.assign_tasks_later(self._block_expiry)
        return updated

    def _count_report(self, report: TaskReport, before: Task, after: Task) -> None:
        if report.state == "failed":
            self._counters.failed(reason_or_default(_given(report.reason)))
        if after.agent_id is None and before.agent_id is not None and not after.is_finished:
            self._counters.requeued("retry" if report.state == "failed" else "given_back")

    @staticmethod
    def _apply_report(
        task: Task, job: Job, report: TaskReport, now: Any, backoff: RetryBackoff = NO_BACKOFF
    ) -> Task:
        changes: dict[str, Any] = {}
        if report.last_error is not UNSET:
            # An agent's stderr may hold anything; keep it, minus what storage cannot hold.
            changes["last_error"] = (
                None if report.last_error is None else (report.last_error.replace("\x00", "\ufffd"))
            )
        if report.progress is not UNSET:
            changes["progress"] = float(report.progress)
        if report.started_now:
            changes["time_started"] = now
        if report.state == "running":
            changes.update(state=WorkState.RUNNING, sent_to_agent=True)
            if task.state is not WorkState.RUNNING and not report.started_now:
                changes["time_started"] = now
        elif report.state == "done":
            changes.update(state=WorkState.DONE, time_finished=now, last_error=None, progress=1.0)
            if report.outputs is not UNSET:
                changes["outputs"] = task_outputs(report.outputs)
        elif report.state == "failed":
            failures = task.failures + 1
            changes.update(reason=reason_or_default(_given(report.reason)), failed_on=task.agent_id)
            if job.may_requeue(failures):
                delay = backoff.delay(failures)
                return attrs.evolve(
                    task.requeued(),
                    failures=failures,
                    not_before=now + delay if delay else None,
                    **changes,
                )
            changes.update(state=WorkState.FAILED, failures=failures, time_finished=now)
        elif report.state == "queued":
            if report.give_back:
                return attrs.evolve(task.requeued(), **changes)
            changes["state"] = None
        return attrs.evolve(task, **changes)

    # -- lookups -----------------------------------------------------------------------------

    @staticmethod
    def _job(uow: UnitOfWork, id_or_title: str | int, *, for_update: bool = False) -> Job:
        if isinstance(id_or_title, int):
            job = uow.jobs.get(id_or_title, for_update=for_update)
        elif id_or_title.isdigit():
            job_id = parse_id(id_or_title)
            job = None if job_id is None else uow.jobs.get(job_id, for_update=for_update)
        else:
            job = uow.jobs.find_by_title(id_or_title)
        if job is None:
            raise NotFound(f"Job {id_or_title} not found")
        return job

    @staticmethod
    def _jobtype_name(uow: UnitOfWork, name: str) -> str:
        """The name of the job type ``name`` names (its name, or its id)."""
        if (jobtype_id := parse_id(name)) is not None:
            return uow.jobtypes.name_of(jobtype_id) or name
        return name

    @staticmethod
    def _jobtype(uow: UnitOfWork, name: str, version: int | None) -> int:
        if (jobtype_id := parse_id(name)) is not None:
            name = uow.jobtypes.name_of(jobtype_id) or name
        found = (
            uow.jobtypes.latest(name)
            if version is None
            else uow.jobtypes.get_version(name, version)
        )
        if found is None:
            suffix = "" if version is None else f" version {version}"
            raise NotFound(f"JobType {name}{suffix} not found")
        return found.id


def _given(value: str | None | Unset) -> str | None:
    return None if value is UNSET else value
