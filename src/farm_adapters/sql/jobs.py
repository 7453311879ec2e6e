"""The jobs' repositories: jobs with their tags, parents and requirements, their tasks, and the
tasks' logs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    String,
    case,
    delete,
    distinct,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row

from farm_adapters.sql import tables as t
from farm_adapters.sql.history import record_task_changes, record_task_changes_selected
from farm_adapters.sql.rows import (
    AGENT_ID,
    insert_ignoring_duplicates,
    inserted_id,
    requirements_of,
    tag_requirements_of,
    task_from,
    task_row,
)
from farm_domain.enums import FINISHED_STATES, WorkState
from farm_domain.errors import AlreadyExists
from farm_domain.history import SENT, SUBMITTED, reason_of, task_change, task_created
from farm_domain.work import (
    Job,
    JobQuery,
    JobSort,
    JobSummary,
    TagRequirement,
    Task,
    TaskFailure,
    TaskLog,
    TaskStatus,
)

_ACTIVE_OF_AGENT = (
    select(t.tasks).where(t.tasks.c.agent_id == AGENT_ID, t.TASK_IS_ACTIVE).order_by(t.tasks.c.id)
)
_ACTIVE_OF_AGENT_FOR_UPDATE = _ACTIVE_OF_AGENT.with_for_update()
_FINISHED_TASK_STATES = sorted(state.value for state in FINISHED_STATES)
# ``history.task_state`` of a stored row.
_TASK_STATE = case(
    (t.tasks.c.state.is_not(None), t.tasks.c.state),
    (t.tasks.c.agent_id.is_(None), TaskStatus.QUEUED.value),
    (t.tasks.c.sent_to_agent.is_(True), SENT),
    else_=TaskStatus.ASSIGNED.value,
)


class SqlTaskRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def get(self, task_id: int, *, for_update: bool = False) -> Task | None:
        statement = (
            select(t.tasks)
            .join(t.jobs, t.jobs.c.id == t.tasks.c.job_id)
            .where(t.tasks.c.id == task_id, t.JOB_IS_VISIBLE)
        )
        if for_update:
            statement = statement.with_for_update(of=t.tasks)
        row = self._c.execute(statement).first()
        return None if row is None else task_from(row._mapping)

    def add(self, task: Task) -> Task:
        new_id = inserted_id(self._c.execute(insert(t.tasks).values(task_row(task))))
        added = attrs.evolve(task, id=new_id)
        created = task_created(added)
        if created is not None:
            record_task_changes(self._c, [created])
        return added

    def save(self, task: Task, previous: Task, *, reason: str, at: datetime) -> None:
        self._c.execute(update(t.tasks).where(t.tasks.c.id == task.id).values(task_row(task)))
        change = task_change(previous, task, reason, at)
        if change is not None:
            record_task_changes(self._c, [change])

    def active_of_agent(self, agent_id: uuid.UUID, *, for_update: bool = False) -> list[Task]:
        statement = _ACTIVE_OF_AGENT_FOR_UPDATE if for_update else _ACTIVE_OF_AGENT
        return [
            task_from(row._mapping) for row in self._c.execute(statement, {"agent_id": agent_id})
        ]

    def of_agent(self, agent_id: uuid.UUID) -> list[tuple[Task, JobSummary]]:
        statement = (
            select(
                t.tasks,
                t.jobs.c.title.label("job_title"),
                t.jobtypes.c.name.label("jobtype_name"),
                t.jobtypes.c.id.label("jobtype_id"),
                t.jobtype_versions.c.version.label("jobtype_version"),
            )
            .join(t.jobs, t.jobs.c.id == t.tasks.c.job_id)
            .join(t.jobtype_versions, t.jobtype_versions.c.id == t.jobs.c.jobtype_version_id)
            .join(t.jobtypes, t.jobtypes.c.id == t.jobtype_versions.c.jobtype_id)
            .where(t.tasks.c.agent_id == agent_id, t.JOB_IS_VISIBLE)
            .order_by(t.tasks.c.id)
        )
        result = []
        for row in self._c.execute(statement):
            m = row._mapping
            summary = JobSummary(
                id=m["job_id"],
                title=m["job_title"],
                jobtype=m["jobtype_name"],
                jobtype_id=m["jobtype_id"],
                jobtype_version=m["jobtype_version"],
            )
            result.append((task_from(m), summary))
        return result

    def release_of_job(self, job_id: int, *, reason: str, at: datetime) -> list[Task]:
        tk = t.tasks.c
        held = [
            task_from(row._mapping)
            for row in self._c.execute(
                select(t.tasks)
                .where(tk.job_id == job_id, tk.agent_id.is_not(None), t.TASK_IS_ACTIVE)
                .order_by(tk.id)
                .with_for_update()
            )
        ]
        if held:
            self._c.execute(
                update(t.tasks)
                .where(tk.id.in_([task.id for task in held]))
                .values(agent_id=None, sent_to_agent=False, sent_at=None)
            )
            changes = (
                task_change(
                    task, attrs.evolve(task, agent_id=None, sent_to_agent=False), reason, at
                )
                for task in held
            )
            record_task_changes(self._c, [change for change in changes if change is not None])
        return held

    def cancel_unfinished(self, job_id: int, reason: str, now: datetime, *, why: str) -> int:
        tk = t.tasks.c
        unfinished = or_(tk.state.is_(None), tk.state.notin_(_FINISHED_TASK_STATES))
        canceled = WorkState.CANCELED.value
        # Recorded from the rows as they are before the update, in one statement however many.
        record_task_changes_selected(
            self._c,
            select(
                tk.id,
                tk.job_id,
                tk.agent_id,
                literal(now, t.UtcDateTime()),
                func.coalesce(tk.state, TaskStatus.QUEUED.value),
                literal(canceled),
                literal(reason_of(why)),
            ).where(tk.job_id == job_id, tk.agent_id.is_(None), unfinished),
        )
        done = self._c.execute(
            update(t.tasks)
            .where(tk.job_id == job_id, tk.agent_id.is_(None), unfinished)
            .values(
                state=canceled,
                reason=reason,
                sent_to_agent=False,
                sent_at=None,
                not_before=None,
                time_finished=now,
            )
        )
        return done.rowcount

    def add_many(self, tasks: Sequence[Task]) -> None:
        if not tasks:
            return
        tk = t.tasks.c
        # Ids only grow: the new rows are those of their job above the highest id before.
        floor = self._c.execute(select(func.coalesce(func.max(tk.id), 0))).scalar_one()
        self._c.execute(insert(t.tasks), [task_row(task) for task in tasks])
        # Their creation, from the rows just stored, in one statement per job however many.
        for job_id in sorted({task.job_id for task in tasks}):
            record_task_changes_selected(
                self._c,
                select(
                    tk.id,
                    tk.job_id,
                    tk.agent_id,
                    tk.time_submitted,
                    literal(None, String()),
                    _TASK_STATE,
                    literal(SUBMITTED),
                ).where(tk.id > floor, tk.job_id == job_id, tk.time_submitted.is_not(None)),
            )

    def of_job(
        self,
        job_id: int,
        *,
        limit: int | None = None,
        offset: int = 0,
        status: TaskStatus | None = None,
    ) -> list[Task]:
        tk = t.tasks.c
        conditions = [tk.job_id == job_id]
        if status is TaskStatus.QUEUED:
            conditions += [tk.state.is_(None), tk.agent_id.is_(None)]
        elif status is TaskStatus.ASSIGNED:
            conditions += [tk.state.is_(None), tk.agent_id.is_not(None)]
        elif status is not None:
            conditions.append(tk.state == status.value)
        rows = self._c.execute(
            select(t.tasks)
            .where(*conditions)
            .order_by(t.tasks.c.frame, t.tasks.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [task_from(row._mapping) for row in rows]

    def record_failure(self, failure: TaskFailure) -> TaskFailure:
        values = attrs.asdict(failure)
        del values["id"]
        new_id = inserted_id(self._c.execute(insert(t.task_failures).values(values)))
        return attrs.evolve(failure, id=new_id)

    def failures_of(self, task_id: int, *, limit: int = 100) -> list[TaskFailure]:
        f = t.task_failures.c
        latest = (
            select(t.task_failures)
            .where(f.task_id == task_id)
            .order_by(f.id.desc())
            .limit(limit)
            .subquery()
        )
        rows = self._c.execute(select(latest).order_by(latest.c.id))
        return [TaskFailure(**row._mapping) for row in rows]

    def lock_of_job(self, job_id: int) -> None:
        # In id order, as an agent's report or heartbeat locks the tasks it holds.
        self._c.execute(
            select(t.tasks.c.id)
            .where(t.tasks.c.job_id == job_id)
            .order_by(t.tasks.c.id)
            .with_for_update()
        ).all()

    def status_counts_of(self, job_ids: Iterable[int]) -> dict[int, dict[TaskStatus, int]]:
        wanted = list(job_ids)
        found: dict[int, dict[TaskStatus, int]] = {}
        if not wanted:
            return found
        rows = self._c.execute(
            select(t.tasks.c.job_id, t.tasks.c.state, t.tasks.c.agent_id.is_(None), func.count())
            .where(t.tasks.c.job_id.in_(wanted))
            .group_by(t.tasks.c.job_id, t.tasks.c.state, t.tasks.c.agent_id.is_(None))
        )
        for job_id, state, unowned, count in rows:
            status = _status_of(state, unowned)
            counts = found.setdefault(job_id, {})
            counts[status] = counts.get(status, 0) + count
        return found

    def busy_agents_of(self, job_ids: Iterable[int]) -> dict[int, int]:
        wanted = list(job_ids)
        if not wanted:
            return {}
        tk = t.tasks.c
        return dict(
            self._c.execute(
                select(tk.job_id, func.count(distinct(tk.agent_id)))
                .where(tk.job_id.in_(wanted), tk.agent_id.is_not(None), t.TASK_IS_ACTIVE)
                .group_by(tk.job_id)
            ).all()
        )

    def status_counts(self, job_id: int) -> dict[TaskStatus, int]:
        rows = self._c.execute(
            select(t.tasks.c.state, t.tasks.c.agent_id.is_(None), func.count())
            .where(t.tasks.c.job_id == job_id)
            .group_by(t.tasks.c.state, t.tasks.c.agent_id.is_(None))
        )
        counts: dict[TaskStatus, int] = {}
        for state, unowned, count in rows:
            status = _status_of(state, unowned)
            counts[status] = counts.get(status, 0) + count
        return counts


def _status_of(state: str | None, unowned: bool) -> TaskStatus:
    if state is None:
        return TaskStatus.QUEUED if unowned else TaskStatus.ASSIGNED
    return TaskStatus(state)


_JOB_SCALARS = (
    "title",
    "jobtype_version_id",
    "priority",
    "weight",
    "requeue",
    "frame_start",
    "frame_end",
    "frame_by",
    "batch",
    "ram",
    "ram_warning",
    "ram_max",
    "cpus",
    "minimum_agents",
    "maximum_agents",
    "data",
    "environ",
    "user",
    "submitted_by",
    "time_submitted",
    "time_started",
    "time_finished",
    "max_run_seconds",
    "stall_seconds",
    "reason",
)


_UNREADY = t.JOB_CREATING
_IS_READY = t.JOB_IS_VISIBLE


def _job_row(job: Job) -> dict[str, Any]:
    row = {name: getattr(job, name) for name in _JOB_SCALARS}
    row["state"] = job.state.value if job.state else None
    return row


class SqlJobRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def _select(
        self,
        *conditions: ColumnElement[bool],
        for_update: bool = False,
        order: Sequence[ColumnElement[Any]] | None = None,
        limit: int | None = None,
        offset: int = 0,
        unready: bool = False,
    ) -> list[Job]:
        j = t.jobs.c
        if not unready:
            conditions = (*conditions, _IS_READY)
        statement = (
            select(
                t.jobs,
                t.jobtypes.c.name.label("jobtype_name"),
                t.jobtype_versions.c.version.label("jobtype_number"),
            )
            .join(t.jobtype_versions, t.jobtype_versions.c.id == j.jobtype_version_id)
            .join(t.jobtypes, t.jobtypes.c.id == t.jobtype_versions.c.jobtype_id)
            .where(*conditions)
            .order_by(*(order if order is not None else [j.id.desc()]))
        )
        if for_update:
            statement = statement.with_for_update(of=t.jobs)
        if limit is not None:
            statement = statement.limit(limit)
        if offset:
            statement = statement.offset(offset)
        rows = self._c.execute(statement).all()
        ids = [row.id for row in rows]
        tags = self._grouped(
            select(t.job_tags.c.job_id, t.job_tags.c.tag)
            .where(t.job_tags.c.job_id.in_(ids))
            .order_by(t.job_tags.c.tag),
            ids,
        )
        parents = self._grouped(
            select(t.job_parents.c.child_id, t.job_parents.c.parent_id)
            .where(t.job_parents.c.child_id.in_(ids))
            .order_by(t.job_parents.c.parent_id),
            ids,
        )
        requirements = requirements_of(self._c, t.job_software_requirements.c.job_id, ids)
        tag_requirements = tag_requirements_of(self._c, ids)
        jobs = []
        for row in rows:
            m = row._mapping
            jobs.append(
                Job(
                    id=m["id"],
                    state=WorkState(m["state"])
                    if m["state"] not in (None, t.JOB_CREATING, t.JOB_DELETING)
                    else None,
                    **{name: m[name] for name in _JOB_SCALARS},
                    tags=tuple(tags.get(m["id"], ())),
                    parents=tuple(parents.get(m["id"], ())),
                    software_requirements=tuple(requirements.get(m["id"], ())),
                    tag_requirements=tuple(
                        TagRequirement(tag, negate)
                        for tag, negate in tag_requirements.get(m["id"], ())
                    ),
                    jobtype=m["jobtype_name"],
                    jobtype_version=m["jobtype_number"],
                )
            )
        return jobs

    def _grouped(self, statement: Executable, ids: list[int]) -> dict[int, list[Any]]:
        found: dict[int, list[Any]] = {}
        if ids:
            for key, value in self._c.execute(statement):
                found.setdefault(key, []).append(value)
        return found

    def get(self, job_id: int, *, for_update: bool = False) -> Job | None:
        found = self._select(t.jobs.c.id == job_id, for_update=for_update)
        return found[0] if found else None

    def add(self, job: Job, *, ready: bool = True) -> Job:
        row = _job_row(job)
        if not ready:
            row["state"] = _UNREADY
        new_id = inserted_id(self._c.execute(insert(t.jobs).values(row)))
        self._replace_tags(new_id, job.tags)
        if job.parents:
            self._c.execute(
                insert(t.job_parents), [{"child_id": new_id, "parent_id": p} for p in job.parents]
            )
        if job.tag_requirements:
            self._c.execute(
                insert(t.job_tag_requirements),
                [
                    {"job_id": new_id, "tag": r.tag, "negate": r.negate}
                    for r in job.tag_requirements
                ],
            )
        if job.software_requirements:
            self._c.execute(
                insert(t.job_software_requirements),
                [
                    {
                        "job_id": new_id,
                        "software_id": r.software_id,
                        "min_version_id": r.min_version_id,
                        "max_version_id": r.max_version_id,
                    }
                    for r in job.software_requirements
                ],
            )
        found = self._select(t.jobs.c.id == new_id, unready=True)
        assert found
        return found[0]

    def _unready(self, job_id: int) -> ColumnElement[bool]:
        return (t.jobs.c.id == job_id) & (t.jobs.c.state == _UNREADY)

    def lock_unready(self, job_id: int) -> bool:
        statement = select(t.jobs.c.id).where(self._unready(job_id)).with_for_update()
        return self._c.execute(statement).first() is not None

    def make_ready(self, job_id: int) -> bool:
        done = self._c.execute(update(t.jobs).where(self._unready(job_id)).values(state=None))
        return done.rowcount == 1

    def discard_unready(self, job_id: int, tasks: int) -> bool:
        if not self.lock_unready(job_id):
            return True
        some = select(t.tasks.c.id).where(t.tasks.c.job_id == job_id).limit(tasks)
        deleted = self._c.execute(delete(t.tasks).where(t.tasks.c.id.in_(some))).rowcount
        if deleted == tasks:
            return False
        self._c.execute(delete(t.jobs).where(self._unready(job_id)))
        return True

    def hide(self, job_id: int) -> bool:
        done = self._c.execute(
            update(t.jobs).where(t.jobs.c.id == job_id, _IS_READY).values(state=t.JOB_DELETING)
        )
        return done.rowcount == 1

    def purge(self, job_id: int, tasks: int) -> tuple[list[int], bool]:
        j, tk = t.jobs.c, t.tasks.c
        state = self._c.execute(select(j.state).where(j.id == job_id)).first()
        if state is None or state.state != t.JOB_DELETING:
            return [], True
        # The tasks first, the job last, each row locked as it is deleted: the order in which a
        # task's report locks them (its task, then its job), and the job row is never held
        # while tasks are deleted.
        ids = list(
            self._c.execute(
                select(tk.id).where(tk.job_id == job_id).order_by(tk.id).limit(tasks)
            ).scalars()
        )
        if ids:
            self._c.execute(delete(t.tasks).where(tk.id.in_(ids)))
        if len(ids) == tasks:
            return ids, False
        gone = self._c.execute(
            delete(t.jobs).where(
                j.id == job_id,
                j.state == t.JOB_DELETING,
                ~exists().where(tk.job_id == job_id),
            )
        )
        return ids, gone.rowcount == 1

    def deleting(self) -> list[int]:
        return list(
            self._c.execute(
                select(t.jobs.c.id).where(t.jobs.c.state == t.JOB_DELETING).order_by(t.jobs.c.id)
            ).scalars()
        )

    def unready_since(self, before: datetime) -> list[int]:
        return list(
            self._c.execute(
                select(t.jobs.c.id).where(
                    t.jobs.c.state == _UNREADY, t.jobs.c.time_submitted < before
                )
            ).scalars()
        )

    def _replace_tags(self, job_id: int, tags: tuple[str, ...]) -> None:
        self._c.execute(delete(t.job_tags).where(t.job_tags.c.job_id == job_id))
        if tags:
            self._c.execute(
                insert(t.job_tags), [{"job_id": job_id, "tag": tag} for tag in sorted(set(tags))]
            )

    def save(self, job: Job) -> None:
        saved = self._c.execute(
            update(t.jobs).where(t.jobs.c.id == job.id, _IS_READY).values(_job_row(job))
        )
        if saved.rowcount == 1:
            self._replace_tags(job.id, job.tags)

    # A hidden job's state and times are never changed: a task report that read the job before
    # it was hidden must not make it seen again.
    def set_state(self, job_id: int, state: WorkState | None) -> None:
        self._c.execute(
            update(t.jobs)
            .where(t.jobs.c.id == job_id, _IS_READY)
            .values(state=state.value if state else None)
        )

    def set_times(self, job_id: int, started: datetime | None, finished: datetime | None) -> None:
        self._c.execute(
            update(t.jobs)
            .where(t.jobs.c.id == job_id, _IS_READY)
            .values(time_started=started, time_finished=finished)
        )

    def query(self, query: JobQuery) -> list[Job]:
        conditions: list[ColumnElement[bool]] = []
        if query.queued:
            conditions.append(t.jobs.c.state.is_(None))
        elif query.state is not None:
            conditions.append(t.jobs.c.state == query.state.value)
        j = t.jobs.c
        if query.title is not None:
            conditions.append(j.title == query.title)
        if query.text is not None:
            # Both sides lowered by the database (SQLite's lower() folds ASCII letters only):
            # a part of the title as written always finds it.
            conditions.append(j.title.icontains(query.text, autoescape=True))
        if query.user is not None:
            conditions.append(or_(j.submitted_by == query.user, j.user == query.user))
        if query.jobtype is not None:
            conditions.append(t.jobtypes.c.name == query.jobtype)
        if query.tag is not None:
            conditions.append(
                exists().where(t.job_tags.c.job_id == j.id, t.job_tags.c.tag == query.tag)
            )
        keys: list[ColumnElement[Any]]
        match query.sort:
            case JobSort.ID:
                keys = []
            case JobSort.TITLE:
                keys = [j.title]
            case JobSort.PRIORITY:
                keys = [j.priority]
            case JobSort.STATE:
                keys = [func.coalesce(j.state, "queued")]
            case JobSort.OWNER:
                keys = [case((j.submitted_by.is_(None), 0), else_=1), j.submitted_by]
        keys.append(j.id)
        order = [key.desc() for key in keys] if query.descending else keys
        return self._select(*conditions, order=order, limit=query.limit, offset=query.offset)

    def find_by_title(self, title: str) -> Job | None:
        found = self._select(t.jobs.c.title == title, limit=1)
        return found[0] if found else None

    def existing_ids(self, job_ids: Iterable[int]) -> set[int]:
        wanted = list(job_ids)
        if not wanted:
            return set()
        return set(
            self._c.execute(select(t.jobs.c.id).where(t.jobs.c.id.in_(wanted), _IS_READY)).scalars()
        )

    def titles(self, job_ids: Iterable[int]) -> dict[int, str]:
        wanted = sorted(set(job_ids))
        found: dict[int, str] = {}
        for start in range(0, len(wanted), 500):  # SQLite bounds a statement's parameters
            rows = self._c.execute(
                select(t.jobs.c.id, t.jobs.c.title).where(
                    t.jobs.c.id.in_(wanted[start : start + 500]), _IS_READY
                )
            )
            found.update({row.id: row.title for row in rows})
        return found

    def children(self, job_id: int) -> list[int]:
        return list(
            self._c.execute(
                select(t.job_parents.c.child_id)
                .join(t.jobs, t.jobs.c.id == t.job_parents.c.child_id)
                .where(t.job_parents.c.parent_id == job_id, _IS_READY)
                .order_by(t.job_parents.c.child_id)
            ).scalars()
        )

    def delete(self, job_id: int) -> None:
        self._c.execute(delete(t.jobs).where(t.jobs.c.id == job_id))


class SqlTaskLogRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    @staticmethod
    def _from(row: Row[Any]) -> TaskLog:
        m = row._mapping
        return TaskLog(
            m["id"],
            m["task_id"],
            m["attempt"],
            m["identifier"],
            m["agent_id"],
            m["created_on"],
            m["size"],
            m["state"],
        )

    def add(self, log: TaskLog) -> TaskLog:
        new_id = self._c.execute(
            insert_ignoring_duplicates(self._c, t.task_logs)
            .values(
                task_id=log.task_id,
                attempt=log.attempt,
                identifier=log.identifier,
                agent_id=log.agent_id,
                created_on=log.created_on,
                size=log.size,
                state=log.state,
            )
            .returning(t.task_logs.c.id)
        ).scalar()
        if new_id is None:  # perhaps registered by a concurrent request
            raise AlreadyExists(f"Log {log.identifier} already exists")
        return attrs.evolve(log, id=new_id)

    def get(self, task_id: int, attempt: int, identifier: str) -> TaskLog | None:
        row = self._c.execute(
            select(t.task_logs).where(
                t.task_logs.c.task_id == task_id,
                t.task_logs.c.attempt == attempt,
                t.task_logs.c.identifier == identifier,
            )
        ).first()
        return None if row is None else self._from(row)

    def of_attempt(self, task_id: int, attempt: int) -> list[TaskLog]:
        rows = self._c.execute(
            select(t.task_logs)
            .where(
                t.task_logs.c.task_id == task_id,
                t.task_logs.c.attempt == attempt,
            )
            .order_by(t.task_logs.c.id)
        )
        return [self._from(row) for row in rows]

    def save(self, log: TaskLog) -> None:
        self._c.execute(
            update(t.task_logs)
            .where(t.task_logs.c.id == log.id)
            .values(size=log.size, state=log.state)
        )
