"""The scheduler's fake repository."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs

from farm_domain.enums import WorkState
from farm_domain.history import task_change
from farm_domain.scheduling import AgentContact, AgentProfile, JobProfile, JobQueue, RankRange
from farm_domain.work import Job, SoftwareRequirement, Task, TaskStatus
from tests.support.fakes.history import record_task_changes
from tests.support.fakes.store import FakeData, FakeStore


def _ready(task: Task, now: datetime | None) -> bool:
    return now is None or task.not_before is None or task.not_before <= now


class FakeSchedulingRepository:
    def __init__(self, data: FakeData, store: FakeStore) -> None:
        self._d = data
        self._store = store

    def _ranks(self, requirements: Iterable[SoftwareRequirement]) -> list[RankRange]:
        # Keyed by int | None so an unbounded requirement (None) looks up None.
        ranks: dict[int | None, int] = {
            v.id: v.rank for s in self._d.software.values() for v in s.versions
        }
        live = {s.id for s in self._d.software.values()}
        return [
            RankRange(r.software_id, ranks.get(r.min_version_id), ranks.get(r.max_version_id))
            for r in requirements
            if r.software_id in live
        ]

    def candidate_jobs(self, now: datetime | None = None) -> list[JobProfile]:
        profiles = []
        for job in self._d.jobs.values():
            tasks = [t for t in self._d.tasks.values() if t.job_id == job.id]
            hidden = job.id in self._d.unready_jobs or job.id in self._d.deleting_jobs
            if job.state not in (None, WorkState.RUNNING) or hidden:
                continue
            if not any(t.status is TaskStatus.QUEUED and _ready(t, now) for t in tasks):
                continue
            if any(
                self._d.jobs[p].state is not WorkState.DONE
                for p in job.parents
                if p in self._d.jobs and p not in self._d.deleting_jobs
            ):
                continue
            profiles.append(self._profile(job, tasks))
        return profiles

    def job_profile(self, job_id: int) -> JobProfile | None:
        job = self._d.jobs.get(job_id)
        if job is None or job_id in self._d.unready_jobs or job_id in self._d.deleting_jobs:
            return None
        return self._profile(job, [t for t in self._d.tasks.values() if t.job_id == job_id])

    def failed_jobs(self, reason_prefix: str, limit: int) -> list[JobProfile]:
        found = [
            job
            for job in self._d.jobs.values()
            if job.state is WorkState.FAILED
            and (job.reason or "").startswith(reason_prefix)
            and job.id not in self._d.deleting_jobs
            and job.id not in self._d.unready_jobs
        ]
        return [
            self._profile(job, [t for t in self._d.tasks.values() if t.job_id == job.id])
            for job in sorted(found, key=lambda job: -job.id)[:limit]
        ]

    def _profile(self, job: Job, tasks: list[Task]) -> JobProfile:
        version = self._d.jobtype_versions[job.jobtype_version_id]
        assert job.time_submitted is not None  # a stored job has one (NOT NULL in SQL)
        busy = {t.agent_id for t in tasks if t.agent_id is not None and not t.is_finished}
        return JobProfile(
            id=job.id,
            priority=job.priority,
            weight=job.weight,
            time_submitted=job.time_submitted,
            ram=job.ram,
            cpus=job.cpus,
            minimum_agents=job.minimum_agents,
            maximum_agents=job.maximum_agents,
            busy_agents=len(busy),
            requirements=tuple(
                self._ranks(version.software_requirements) + self._ranks(job.software_requirements)
            ),
            tag_requirements=tuple(sorted((r.tag, r.negate) for r in job.tag_requirements)),
            batch=job.batch,
            max_batch=version.max_batch,
            batch_contiguous=version.batch_contiguous,
            frame_by=job.frame_by,
            reason=job.reason,
        )

    def job_queue(self, job_id: int, now: datetime, first: int = 0) -> JobQueue:
        queued = sorted(
            (
                t
                for t in self._d.tasks.values()
                if t.job_id == job_id and t.status is TaskStatus.QUEUED
            ),
            key=lambda t: (t.frame, t.id),
        )
        waiting = [t.not_before for t in queued if t.not_before is not None and t.not_before > now]
        ready = [t for t in queued if _ready(t, now)]
        return JobQueue(
            len(queued), len(ready), min(waiting, default=None), tuple(ready[: max(first, 0)])
        )

    def retried_on(self, agent_id: uuid.UUID, now: datetime) -> set[int]:
        return {
            t.job_id
            for t in self._d.tasks.values()
            if t.failed_on == agent_id and t.status is TaskStatus.QUEUED and _ready(t, now)
        }

    def agent_profile(self, agent_id: uuid.UUID) -> AgentProfile | None:
        agent = self._d.agents.get(agent_id)
        if agent is None:
            return None
        ranks = {v.id: (s.id, v.rank) for s in self._d.software.values() for v in s.versions}
        software = frozenset(
            ranks[v] for v in self._d.agent_software.get(agent_id, ()) if v in ranks
        )
        return AgentProfile(
            agent_id,
            agent.ram,
            agent.free_ram,
            agent.cpus,
            agent.ram_allocation,
            agent.cpu_allocation,
            software,
            frozenset(self._d.agent_tags.get(agent_id, ())),
        )

    def lock_idle_agents(
        self, agent_ids: Sequence[uuid.UUID]
    ) -> list[tuple[AgentContact, AgentProfile]]:
        busy = {t.agent_id for t in self._d.tasks.values() if not t.is_finished}
        found = []
        for agent_id in agent_ids:
            agent = self._d.agents.get(agent_id)
            if agent is None or not agent.is_available or agent_id in busy:
                continue
            profile = self.agent_profile(agent_id)
            assert profile is not None
            found.append(
                (
                    AgentContact(
                        agent.id,
                        agent.hostname,
                        agent.remote_ip,
                        agent.port,
                        agent.use_address,
                        agent.state,
                        agent.disabled,
                        agent.last_heard_from,
                        agent.last_polled,
                        False,
                    ),
                    profile,
                )
            )
        return found

    def idle_agents(self) -> list[uuid.UUID]:
        busy = {t.agent_id for t in self._d.tasks.values() if not t.is_finished}
        return [
            a.id
            for a in sorted(self._d.agents.values(), key=lambda a: (a.hostname, str(a.id)))
            if a.is_available and a.id not in busy
        ]

    def contacts(self) -> list[AgentContact]:
        busy = {t.agent_id for t in self._d.tasks.values() if not t.is_finished}
        return [
            AgentContact(
                a.id,
                a.hostname,
                a.remote_ip,
                a.port,
                a.use_address,
                a.state,
                a.disabled,
                a.last_heard_from,
                a.last_polled,
                a.id in busy,
            )
            for a in sorted(self._d.agents.values(), key=lambda a: (a.hostname, str(a.id)))
        ]

    def profiles(self) -> list[tuple[AgentContact, AgentProfile]]:
        found = []
        for contact in self.contacts():
            profile = self.agent_profile(contact.id)
            assert profile is not None
            found.append((contact, profile))
        return found

    def lock_job(self, job_id: int, *, wait: bool = True) -> int | None:
        if job_id not in self._d.jobs or job_id in self._d.deleting_jobs:
            return None
        return len(
            {
                t.agent_id
                for t in self._d.tasks.values()
                if t.job_id == job_id and t.agent_id is not None and not t.is_finished
            }
        )

    def queued_tasks(self, job_id: int, limit: int, now: datetime | None = None) -> list[Task]:
        return sorted(
            (
                t
                for t in self._d.tasks.values()
                if t.job_id == job_id and t.status is TaskStatus.QUEUED and _ready(t, now)
            ),
            key=lambda t: (t.frame, t.id),
        )[:limit]

    def claim(
        self, task_ids: Sequence[int], agent_id: uuid.UUID, *, reason: str, at: datetime
    ) -> list[int]:
        claimed = []
        for task_id in sorted(task_ids):
            task = self._d.tasks.get(task_id)
            if task is not None and task.status is TaskStatus.QUEUED:
                self._d.tasks[task_id] = assigned = task.assigned_to(agent_id)
                claimed.append(task_id)
                change = task_change(task, assigned, reason, at)
                record_task_changes(self._d, self._store, [change])
        return sorted(claimed)

    def mark_sent(
        self, task_id: int, agent_id: uuid.UUID, attempt: int, now: datetime, *, reason: str
    ) -> bool:
        task = self._d.tasks.get(task_id)
        if (
            task is None
            or task.agent_id != agent_id
            or task.attempts != attempt
            or task.is_finished
        ):
            return False
        self._d.tasks[task_id] = sent = attrs.evolve(task, sent_to_agent=True, sent_at=now)
        record_task_changes(self._d, self._store, [task_change(task, sent, reason, now)])
        return True
