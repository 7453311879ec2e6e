"""The jobs' fake repositories: jobs, their tasks, and the tasks' logs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from farm_domain.enums import WorkState
from farm_domain.errors import AlreadyExists
from farm_domain.history import task_change, task_created
from farm_domain.work import (
    Job,
    JobQuery,
    JobSort,
    JobSummary,
    Task,
    TaskFailure,
    TaskLog,
    TaskStatus,
)
from tests.support.fakes.catalogue import FakeJobTypeRepository
from tests.support.fakes.history import record_task_changes
from tests.support.fakes.store import FakeData, FakeStore


class FakeTaskRepository:
    def __init__(self, data: FakeData, store: FakeStore) -> None:
        self._d = data
        self._store = store

    def _hidden(self, task: Task) -> bool:
        return task.job_id in self._d.unready_jobs or task.job_id in self._d.deleting_jobs

    def get(self, task_id: int, *, for_update: bool = False) -> Task | None:
        task = self._d.tasks.get(task_id)
        return None if task is None or self._hidden(task) else task

    def add(self, task: Task) -> Task:
        if task.job_id not in self._d.jobs:
            raise KeyError(f"no job {task.job_id}")
        task = attrs.evolve(task, id=self._store.next_id())
        self._d.tasks[task.id] = task
        record_task_changes(self._d, self._store, [task_created(task)])
        return task

    def save(self, task: Task, previous: Task, *, reason: str, at: datetime) -> None:
        if task.id not in self._d.tasks:
            raise KeyError(task.id)
        self._d.tasks[task.id] = task
        record_task_changes(self._d, self._store, [task_change(previous, task, reason, at)])

    def record_failure(self, failure: TaskFailure) -> TaskFailure:
        if failure.task_id not in self._d.tasks:
            raise KeyError(failure.task_id)
        failure = attrs.evolve(failure, id=self._store.next_id())
        self._d.task_failures.append(failure)
        return failure

    def failures_of(self, task_id: int, *, limit: int = 100) -> list[TaskFailure]:
        mine = [f for f in self._d.task_failures if f.task_id == task_id]
        return mine[-limit:] if limit > 0 else []

    def active_of_agent(self, agent_id: uuid.UUID, *, for_update: bool = False) -> list[Task]:
        return sorted(
            (t for t in self._d.tasks.values() if t.agent_id == agent_id and not t.is_finished),
            key=lambda t: t.id,
        )

    def of_agent(self, agent_id: uuid.UUID) -> list[tuple[Task, JobSummary]]:
        result = []
        for task in sorted(self._d.tasks.values(), key=lambda t: t.id):
            if task.agent_id != agent_id or self._hidden(task):
                continue
            job = self._d.jobs[task.job_id]
            version = self._d.jobtype_versions[job.jobtype_version_id]
            result.append(
                (
                    task,
                    JobSummary(
                        job.id, job.title, version.name, version.jobtype_id, version.version
                    ),
                )
            )
        return result

    def status_counts(self, job_id: int) -> dict[TaskStatus, int]:
        counts: dict[TaskStatus, int] = {}
        for task in self._d.tasks.values():
            if task.job_id == job_id:
                counts[task.status] = counts.get(task.status, 0) + 1
        return counts

    def status_counts_of(self, job_ids: Iterable[int]) -> dict[int, dict[TaskStatus, int]]:
        found = {}
        for job_id in job_ids:
            counts = self.status_counts(job_id)
            if counts:
                found[job_id] = counts
        return found

    def busy_agents_of(self, job_ids: Iterable[int]) -> dict[int, int]:
        found = {}
        for job_id in job_ids:
            agents = {
                t.agent_id
                for t in self._d.tasks.values()
                if t.job_id == job_id and t.agent_id is not None and not t.is_finished
            }
            if agents:
                found[job_id] = len(agents)
        return found

    def release_of_job(self, job_id: int, *, reason: str, at: datetime) -> list[Task]:
        held = sorted(
            (
                t
                for t in self._d.tasks.values()
                if t.job_id == job_id and t.agent_id is not None and not t.is_finished
            ),
            key=lambda t: t.id,
        )
        for task in held:
            released = attrs.evolve(task, agent_id=None, sent_to_agent=False, sent_at=None)
            self._d.tasks[task.id] = released
            record_task_changes(self._d, self._store, [task_change(task, released, reason, at)])
        return held

    def cancel_unfinished(self, job_id: int, reason: str, now: datetime, *, why: str) -> int:
        canceled = [
            t
            for t in self._d.tasks.values()
            if t.job_id == job_id and t.agent_id is None and not t.is_finished
        ]
        for task in canceled:
            self._d.tasks[task.id] = updated = attrs.evolve(
                task,
                state=WorkState.CANCELED,
                reason=reason,
                sent_to_agent=False,
                sent_at=None,
                not_before=None,
                time_finished=now,
            )
            record_task_changes(self._d, self._store, [task_change(task, updated, why, now)])
        return len(canceled)

    def add_many(self, tasks: Sequence[Task]) -> None:
        for task in tasks:
            self.add(task)

    def of_job(
        self,
        job_id: int,
        *,
        limit: int | None = None,
        offset: int = 0,
        status: TaskStatus | None = None,
    ) -> list[Task]:
        ordered = sorted(
            (
                t
                for t in self._d.tasks.values()
                if t.job_id == job_id and (status is None or t.status is status)
            ),
            key=lambda t: (t.frame, t.id),
        )
        return ordered[offset:] if limit is None else ordered[offset : offset + limit]

    def lock_of_job(self, job_id: int) -> None:
        """Nothing to lock: the fakes serve one thread."""


class FakeJobRepository:
    def __init__(self, data: FakeData, store: FakeStore) -> None:
        self._d = data
        self._store = store

    def _view(self, job: Job) -> Job:
        version = self._d.jobtype_versions[job.jobtype_version_id]
        live = FakeJobTypeRepository(self._d, self._store).live_requirements(
            job.software_requirements
        )
        return attrs.evolve(
            job, jobtype=version.name, jobtype_version=version.version, software_requirements=live
        )

    def get(self, job_id: int, *, for_update: bool = False) -> Job | None:
        job = self._d.jobs.get(job_id)
        return None if job is None or self._hidden(job_id) else self._view(job)

    def _hidden(self, job_id: int) -> bool:
        return job_id in self._d.unready_jobs or job_id in self._d.deleting_jobs

    def _ready(self) -> list[Job]:
        return [job for job in self._d.jobs.values() if not self._hidden(job.id)]

    def hide(self, job_id: int) -> bool:
        if job_id not in self._d.jobs or self._hidden(job_id):
            return False
        self._d.deleting_jobs.add(job_id)
        return True

    def purge(self, job_id: int, tasks: int) -> tuple[list[int], bool]:
        if job_id not in self._d.deleting_jobs:
            return [], True
        some = sorted(t.id for t in self._d.tasks.values() if t.job_id == job_id)[:tasks]
        for task_id in some:
            del self._d.tasks[task_id]
            for log_id, log in list(self._d.logs.items()):
                if log.task_id == task_id:
                    del self._d.logs[log_id]
            self._d.task_failures = [f for f in self._d.task_failures if f.task_id != task_id]
        if len(some) == tasks:
            return some, False
        self._d.deleting_jobs.discard(job_id)
        self.delete(job_id)
        return some, True

    def deleting(self) -> list[int]:
        return sorted(self._d.deleting_jobs)

    def lock_unready(self, job_id: int) -> bool:
        return job_id in self._d.unready_jobs

    def make_ready(self, job_id: int) -> bool:
        if job_id not in self._d.unready_jobs:
            return False
        self._d.unready_jobs.discard(job_id)
        return True

    def discard_unready(self, job_id: int, tasks: int) -> bool:
        if job_id not in self._d.unready_jobs:
            return True
        some = [t.id for t in self._d.tasks.values() if t.job_id == job_id][:tasks]
        for task_id in some:
            del self._d.tasks[task_id]
        if len(some) == tasks:
            return False
        self._d.unready_jobs.discard(job_id)
        self.delete(job_id)
        return True

    def unready_since(self, before: datetime) -> list[int]:
        return sorted(
            job_id
            for job_id in self._d.unready_jobs
            if (submitted := self._d.jobs[job_id].time_submitted) is not None and submitted < before
        )

    def add(self, job: Job, *, ready: bool = True) -> Job:
        if job.jobtype_version_id not in self._d.jobtype_versions:
            raise KeyError(f"no job type version {job.jobtype_version_id}")
        if not set(job.parents) <= set(self._d.jobs):
            raise KeyError("unknown parent job")
        job = attrs.evolve(
            job,
            id=self._store.next_id(),
            tags=tuple(sorted(set(job.tags))),
            tag_requirements=tuple(sorted(job.tag_requirements, key=lambda r: r.tag)),
            parents=tuple(sorted(job.parents)),
            jobtype=None,
            jobtype_version=None,
        )
        self._d.jobs[job.id] = job
        if not ready:
            self._d.unready_jobs.add(job.id)
        return self._view(job)

    def save(self, job: Job) -> None:
        if self._hidden(job.id):
            return
        old = self._d.jobs[job.id]
        self._d.jobs[job.id] = attrs.evolve(
            job,
            tags=tuple(sorted(set(job.tags))),
            parents=old.parents,
            tag_requirements=old.tag_requirements,
            software_requirements=old.software_requirements,
            jobtype=None,
            jobtype_version=None,
        )

    def set_state(self, job_id: int, state: WorkState | None) -> None:
        if self._hidden(job_id):
            return
        self._d.jobs[job_id] = attrs.evolve(self._d.jobs[job_id], state=state)

    def set_times(self, job_id: int, started: datetime | None, finished: datetime | None) -> None:
        if self._hidden(job_id):
            return
        self._d.jobs[job_id] = attrs.evolve(
            self._d.jobs[job_id], time_started=started, time_finished=finished
        )

    def query(self, query: JobQuery) -> list[Job]:
        def keep(job: Job) -> bool:
            return (
                (not query.queued or job.state is None)
                and (query.queued or query.state is None or job.state is query.state)
                and (query.title is None or job.title == query.title)
                and (query.text is None or query.text.lower() in job.title.lower())
                and (query.user is None or query.user in (job.submitted_by, job.user))
                and (query.jobtype is None or job.jobtype == query.jobtype)
                and (query.tag is None or query.tag in job.tags)
            )

        def key(job: Job) -> tuple[Any, ...]:
            match query.sort:
                case JobSort.ID:
                    return (job.id,)
                case JobSort.TITLE:
                    return (job.title, job.id)
                case JobSort.PRIORITY:
                    return (job.priority, job.id)
                case JobSort.STATE:
                    return (job.state.value if job.state else "queued", job.id)
                case JobSort.OWNER:
                    return (job.submitted_by is not None, job.submitted_by or "", job.id)

        ready = [view for view in map(self._view, self._ready()) if keep(view)]
        found = sorted(ready, key=key, reverse=query.descending)[query.offset :]
        if query.limit is not None:
            found = found[: query.limit]
        return found

    def find_by_title(self, title: str) -> Job | None:
        found = self.query(JobQuery(title=title, limit=1))
        return found[0] if found else None

    def existing_ids(self, job_ids: Iterable[int]) -> set[int]:
        return set(job_ids) & {job.id for job in self._ready()}

    def titles(self, job_ids: Iterable[int]) -> dict[int, str]:
        wanted = set(job_ids)
        return {job.id: job.title for job in self._ready() if job.id in wanted}

    def children(self, job_id: int) -> list[int]:
        return sorted(job.id for job in self._ready() if job_id in job.parents)

    def delete(self, job_id: int) -> None:
        self._d.jobs.pop(job_id, None)
        for key in [k for k in self._d.blocks if k[0] == job_id]:
            del self._d.blocks[key]
        for task_id, task in list(self._d.tasks.items()):
            if task.job_id == job_id:
                del self._d.tasks[task_id]
                for log_id, log in list(self._d.logs.items()):
                    if log.task_id == task_id:
                        del self._d.logs[log_id]
        for other_id, other in list(self._d.jobs.items()):
            if job_id in other.parents:
                self._d.jobs[other_id] = attrs.evolve(
                    other, parents=tuple(p for p in other.parents if p != job_id)
                )


class FakeTaskLogRepository:
    def __init__(self, data: FakeData, store: FakeStore) -> None:
        self._d = data
        self._store = store

    def add(self, log: TaskLog) -> TaskLog:
        if log.task_id not in self._d.tasks:
            raise KeyError("no such task")
        if self.get(log.task_id, log.attempt, log.identifier):
            raise AlreadyExists(f"Log {log.identifier} already exists")
        log = attrs.evolve(log, id=self._store.next_id())
        self._d.logs[log.id] = log
        return log

    def get(self, task_id: int, attempt: int, identifier: str) -> TaskLog | None:
        return next(
            (
                log
                for log in self._d.logs.values()
                if (log.task_id, log.attempt, log.identifier) == (task_id, attempt, identifier)
            ),
            None,
        )

    def of_attempt(self, task_id: int, attempt: int) -> list[TaskLog]:
        return sorted(
            (
                log
                for log in self._d.logs.values()
                if (log.task_id, log.attempt) == (task_id, attempt)
            ),
            key=lambda l: l.id,
        )

    def save(self, log: TaskLog) -> None:
        old = self._d.logs[log.id]
        self._d.logs[log.id] = attrs.evolve(old, size=log.size, state=log.state)
