"""The scheduler's repository: candidate jobs and idle agents as profiles, locks and claims."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    and_,
    case,
    distinct,
    exists,
    func,
    or_,
    select,
    update,
)

from farm_adapters.sql import tables as t
from farm_adapters.sql.history import record_task_changes
from farm_adapters.sql.rows import by_label, tag_requirements_of, task_from
from farm_domain.enums import AgentState, UseAddress
from farm_domain.history import SENT, StateChange, reason_of
from farm_domain.scheduling import AgentContact, AgentProfile, JobProfile, JobQueue, RankRange
from farm_domain.work import Task, TaskStatus


def _rank_ranges(
    connection: Connection, owner: Column[int], owner_ids: list[int]
) -> dict[int, list[RankRange]]:
    """Software requirements by owner id, as rank ranges (see ``_requirements_of``)."""
    if not owner_ids:
        return {}
    r = owner.table.c
    low = t.software_versions.alias("low")
    high = t.software_versions.alias("high")
    rows = connection.execute(
        select(owner, r.software_id, low.c.rank, high.c.rank)
        .outerjoin(low, low.c.id == r.min_version_id)
        .outerjoin(high, high.c.id == r.max_version_id)
        .where(owner.in_(owner_ids))
    )
    found: dict[int, list[RankRange]] = {}
    for owner_id, software_id, low_rank, high_rank in rows:
        found.setdefault(owner_id, []).append(RankRange(software_id, low_rank, high_rank))
    return found


def _contact(r: Any, *, busy: bool) -> AgentContact:
    """An agent row (with its contact columns) as the liveness sweeps see it."""
    return AgentContact(
        r.id,
        r.hostname,
        r.remote_ip,
        r.port,
        by_label(UseAddress, r.use_address),
        by_label(AgentState, r.state),
        r.disabled,
        r.last_heard_from,
        r.last_polled,
        busy,
    )


def _ready(now: datetime | None) -> list[ColumnElement[bool]]:
    """A queued task's back-off has passed by ``now`` (no condition without ``now``)."""
    if now is None:
        return []
    not_before = t.tasks.c.not_before
    return [or_(not_before.is_(None), not_before <= now)]


class SqlSchedulingRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def candidate_jobs(self, now: datetime | None = None) -> list[JobProfile]:
        j, tk = t.jobs.c, t.tasks.c
        parent = t.jobs.alias("parent")
        queued = exists().where(
            tk.job_id == j.id, tk.agent_id.is_(None), tk.state.is_(None), *_ready(now)
        )
        waiting_for_parent = (
            exists()
            .select_from(t.job_parents.join(parent, parent.c.id == t.job_parents.c.parent_id))
            .where(
                t.job_parents.c.child_id == j.id,
                # A parent being deleted is gone already.
                or_(parent.c.state.is_(None), parent.c.state.notin_(["done", t.JOB_DELETING])),
            )
        )
        return self._job_profiles(
            or_(j.state.is_(None), j.state == "running"), queued, ~waiting_for_parent
        )

    def job_profile(self, job_id: int) -> JobProfile | None:
        found = self._job_profiles(t.jobs.c.id == job_id, t.JOB_IS_VISIBLE)
        return found[0] if found else None

    def failed_jobs(self, reason_prefix: str, limit: int) -> list[JobProfile]:
        j = t.jobs.c
        escaped = reason_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return self._job_profiles(
            j.state == "failed",
            j.reason.like(escaped + "%", escape="\\"),
            newest=limit,
        )

    def _job_profiles(
        self, *conditions: ColumnElement[bool], newest: int | None = None
    ) -> list[JobProfile]:
        j, tk, v = t.jobs.c, t.tasks.c, t.jobtype_versions.c
        query = (
            select(
                j.id,
                j.priority,
                j.weight,
                j.time_submitted,
                j.ram,
                j.cpus,
                j.minimum_agents,
                j.maximum_agents,
                j.batch,
                j.frame_by,
                j.jobtype_version_id,
                j.reason,
                v.max_batch,
                v.batch_contiguous,
            )
            .join(t.jobtype_versions, v.id == j.jobtype_version_id)
            .where(*conditions)
        )
        if newest is not None:
            query = query.order_by(j.id.desc()).limit(newest)
        rows = self._c.execute(query).all()
        ids = [row.id for row in rows]
        busy: dict[int, int] = (
            dict(
                self._c.execute(
                    select(tk.job_id, func.count(distinct(tk.agent_id)))
                    .where(tk.job_id.in_(ids), tk.agent_id.is_not(None), t.TASK_IS_ACTIVE)
                    .group_by(tk.job_id)
                ).all()
            )
            if ids
            else {}
        )
        job_ranges = _rank_ranges(self._c, t.job_software_requirements.c.job_id, ids)
        tag_requirements = tag_requirements_of(self._c, ids)
        type_ranges = _rank_ranges(
            self._c,
            t.jobtype_software_requirements.c.jobtype_version_id,
            sorted({row.jobtype_version_id for row in rows}),
        )
        return [
            JobProfile(
                id=row.id,
                priority=row.priority,
                weight=row.weight,
                time_submitted=row.time_submitted,
                ram=row.ram,
                cpus=row.cpus,
                minimum_agents=row.minimum_agents,
                maximum_agents=row.maximum_agents,
                busy_agents=busy.get(row.id, 0),
                requirements=tuple(
                    type_ranges.get(row.jobtype_version_id, []) + job_ranges.get(row.id, [])
                ),
                tag_requirements=tuple(tag_requirements.get(row.id, ())),
                batch=row.batch,
                max_batch=row.max_batch,
                batch_contiguous=row.batch_contiguous,
                frame_by=row.frame_by,
                reason=row.reason,
            )
            for row in rows
        ]

    def agent_profile(self, agent_id: uuid.UUID) -> AgentProfile | None:
        a = t.agents.c
        row = self._c.execute(
            select(a.ram, a.free_ram, a.cpus, a.ram_allocation, a.cpu_allocation).where(
                a.id == agent_id
            )
        ).first()
        if row is None:
            return None
        software, tags = self._software_and_tags([agent_id])
        return AgentProfile(
            agent_id,
            row.ram,
            row.free_ram,
            row.cpus,
            row.ram_allocation,
            row.cpu_allocation,
            frozenset(software.get(agent_id, ())),
            frozenset(tags.get(agent_id, ())),
        )

    def job_queue(self, job_id: int, now: datetime, first: int = 0) -> JobQueue:
        tk = t.tasks.c
        queued = (tk.job_id == job_id, tk.agent_id.is_(None), tk.state.is_(None))
        waiting = and_(tk.not_before.is_not(None), tk.not_before > now)
        count, ready, next_ready = self._c.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((waiting, 0), else_=1)), 0),
                func.min(case((waiting, tk.not_before), else_=None)),
            ).where(*queued)
        ).one()
        rows = (
            self._c.execute(
                select(t.tasks).where(*queued, *_ready(now)).order_by(tk.frame, tk.id).limit(first)
            )
            if first > 0
            else ()
        )
        return JobQueue(count, ready, next_ready, tuple(task_from(row._mapping) for row in rows))

    def retried_on(self, agent_id: uuid.UUID, now: datetime) -> set[int]:
        tk = t.tasks.c
        return set(
            self._c.execute(
                select(tk.job_id)
                .where(
                    tk.failed_on == agent_id,
                    tk.agent_id.is_(None),
                    tk.state.is_(None),
                    *_ready(now),
                )
                .distinct()
            ).scalars()
        )

    def _software_and_tags(
        self, ids: Sequence[uuid.UUID]
    ) -> tuple[dict[uuid.UUID, set[tuple[int, int]]], dict[uuid.UUID, set[str]]]:
        """Each agent's (software id, rank) pairs and tags."""
        software: dict[uuid.UUID, set[tuple[int, int]]] = {}
        for agent_id, software_id, rank in self._c.execute(
            select(
                t.agent_software_versions.c.agent_id,
                t.software_versions.c.software_id,
                t.software_versions.c.rank,
            )
            .join(
                t.software_versions,
                t.agent_software_versions.c.software_version_id == t.software_versions.c.id,
            )
            .where(t.agent_software_versions.c.agent_id.in_(ids))
        ):
            software.setdefault(agent_id, set()).add((software_id, rank))
        tags: dict[uuid.UUID, set[str]] = {}
        for agent_id, tag in self._c.execute(
            select(t.agent_tags.c.agent_id, t.agent_tags.c.tag).where(
                t.agent_tags.c.agent_id.in_(ids)
            )
        ):
            tags.setdefault(agent_id, set()).add(tag)
        return software, tags

    def lock_idle_agents(
        self, agent_ids: Sequence[uuid.UUID]
    ) -> list[tuple[AgentContact, AgentProfile]]:
        if not agent_ids:
            return []
        a, tk = t.agents.c, t.tasks.c
        rows = self._c.execute(
            select(
                a.id,
                a.hostname,
                a.remote_ip,
                a.port,
                a.use_address,
                a.state,
                a.disabled,
                a.last_heard_from,
                a.last_polled,
                a.ram,
                a.free_ram,
                a.cpus,
                a.ram_allocation,
                a.cpu_allocation,
            )
            .where(a.id.in_(agent_ids), a.state.in_(["online", "running"]), a.disabled.is_(False))
            .order_by(a.id)
            .with_for_update(skip_locked=True, key_share=True)  # as agents' heartbeats lock them
        ).all()
        ids = [row.id for row in rows]
        if not ids:
            return []
        # Read after the locks are held, so a batch committed a moment ago counts.
        busy = set(
            self._c.execute(
                select(tk.agent_id).where(tk.agent_id.in_(ids), t.TASK_IS_ACTIVE).distinct()
            ).scalars()
        )
        software, tags = self._software_and_tags(ids)
        found = {}
        for r in rows:
            if r.id in busy:
                continue
            found[r.id] = (
                _contact(r, busy=False),
                AgentProfile(
                    r.id,
                    r.ram,
                    r.free_ram,
                    r.cpus,
                    r.ram_allocation,
                    r.cpu_allocation,
                    frozenset(software.get(r.id, ())),
                    frozenset(tags.get(r.id, ())),
                ),
            )
        return [found[agent_id] for agent_id in agent_ids if agent_id in found]

    def idle_agents(self) -> list[uuid.UUID]:
        a, tk = t.agents.c, t.tasks.c
        busy = exists().where(tk.agent_id == a.id, t.TASK_IS_ACTIVE)
        return list(
            self._c.execute(
                select(a.id)
                .where(a.state.in_(["online", "running"]), a.disabled.is_(False), ~busy)
                .order_by(a.hostname, a.id)
            ).scalars()
        )

    def contacts(self) -> list[AgentContact]:
        return [contact for contact, _ in self._agents(profiles=False)]

    def profiles(self) -> list[tuple[AgentContact, AgentProfile]]:
        return self._agents(profiles=True)

    def _agents(self, *, profiles: bool) -> list[tuple[AgentContact, AgentProfile]]:
        a, tk = t.agents.c, t.tasks.c
        busy = exists().where(tk.agent_id == a.id, t.TASK_IS_ACTIVE)
        rows = self._c.execute(
            select(
                a.id,
                a.hostname,
                a.remote_ip,
                a.port,
                a.use_address,
                a.state,
                a.disabled,
                a.last_heard_from,
                a.last_polled,
                busy.label("busy"),
                a.ram,
                a.free_ram,
                a.cpus,
                a.ram_allocation,
                a.cpu_allocation,
            ).order_by(a.hostname, a.id)
        ).all()
        software, tags = (
            self._software_and_tags([r.id for r in rows]) if profiles and rows else ({}, {})
        )
        return [
            (
                _contact(r, busy=bool(r.busy)),
                AgentProfile(
                    r.id,
                    r.ram,
                    r.free_ram,
                    r.cpus,
                    r.ram_allocation,
                    r.cpu_allocation,
                    frozenset(software.get(r.id, ())),
                    frozenset(tags.get(r.id, ())),
                ),
            )
            for r in rows
        ]

    def lock_job(self, job_id: int, *, wait: bool = True) -> int | None:
        tk = t.tasks.c
        locked = self._c.execute(
            # Read as a candidate before it was locked: it may have been hidden meanwhile.
            select(t.jobs.c.id)
            .where(t.jobs.c.id == job_id, t.JOB_IS_VISIBLE)
            .with_for_update(skip_locked=not wait)
        ).first()
        if locked is None:
            return None
        return self._c.execute(
            select(func.count(distinct(tk.agent_id))).where(
                tk.job_id == job_id, tk.agent_id.is_not(None), t.TASK_IS_ACTIVE
            )
        ).scalar_one()

    def queued_tasks(self, job_id: int, limit: int, now: datetime | None = None) -> list[Task]:
        tk = t.tasks.c
        rows = self._c.execute(
            select(t.tasks)
            .where(tk.job_id == job_id, tk.agent_id.is_(None), tk.state.is_(None), *_ready(now))
            .order_by(tk.frame, tk.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [task_from(row._mapping) for row in rows]

    def claim(
        self, task_ids: Sequence[int], agent_id: uuid.UUID, *, reason: str, at: datetime
    ) -> list[int]:
        if not task_ids:
            return []
        tk = t.tasks.c
        claimed = self._c.execute(
            update(t.tasks)
            .where(tk.id.in_(list(task_ids)), tk.agent_id.is_(None), tk.state.is_(None))
            .values(
                agent_id=agent_id,
                attempts=tk.attempts + 1,
                sent_to_agent=False,
                sent_at=None,
                time_finished=None,
            )
            .returning(tk.id, tk.job_id)
        ).all()
        record_task_changes(
            self._c,
            [
                StateChange(
                    id=0,
                    at=at,
                    before=TaskStatus.QUEUED.value,
                    after=TaskStatus.ASSIGNED.value,
                    reason=reason_of(reason),
                    task_id=task_id,
                    job_id=job_id,
                    agent_id=agent_id,
                )
                for task_id, job_id in sorted(claimed)
            ],
        )
        return sorted(task_id for task_id, _ in claimed)

    def mark_sent(
        self, task_id: int, agent_id: uuid.UUID, attempt: int, now: datetime, *, reason: str
    ) -> bool:
        tk = t.tasks.c
        sent = self._c.execute(
            update(t.tasks)
            .where(
                tk.id == task_id,
                tk.agent_id == agent_id,
                tk.attempts == attempt,
                t.TASK_IS_ACTIVE,
                tk.sent_to_agent.is_(False),
                tk.state.is_(None),
            )
            .values(sent_to_agent=True, sent_at=now)
            .returning(tk.job_id)
        ).first()
        if sent is not None:
            change = StateChange(
                id=0,
                at=now,
                before=TaskStatus.ASSIGNED.value,
                after=SENT,
                reason=reason_of(reason),
                task_id=task_id,
                job_id=sent.job_id,
                agent_id=agent_id,
            )
            record_task_changes(self._c, [change])
            return True
        # Sent already, or running before its /assign answer came back: nothing changes state.
        return bool(
            self._c.execute(
                update(t.tasks)
                .where(
                    tk.id == task_id,
                    tk.agent_id == agent_id,
                    tk.attempts == attempt,
                    t.TASK_IS_ACTIVE,
                )
                .values(sent_to_agent=True, sent_at=now)
            ).rowcount
            == 1
        )
