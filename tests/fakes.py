"""Fakes for the ports: dict-backed repositories, a recording queue and a fixed clock.

The contract tests run the same assertions against these and the SQL repositories, so the fakes
cannot drift from the real adapters.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Self

import attrs

from farm_domain.agents import Agent, AgentOverview, AgentQuery, AgentSummary, SoftwareRef
from farm_domain.answers import (
    Accepted,
    AssignAnswer,
    Busy,
    Conflict,
    NotRunning,
    PollAnswer,
    Refused,
    Running,
    StopAnswer,
    Unreachable,
    UpdateAnswer,
)
from farm_domain.enums import WorkState
from farm_domain.scheduling import (
    AgentContact,
    AgentProfile,
    JobAgentBlock,
    JobProfile,
    RankRange,
)
from farm_domain.software import Software, SoftwareVersion
from farm_domain.work import (
    Job,
    JobQuery,
    JobSummary,
    JobTypeVersion,
    SoftwareRequirement,
    Task,
    TaskLog,
    TaskStatus,
)


@attrs.define
class _Data:
    agents: dict[uuid.UUID, Agent] = attrs.Factory(dict)
    agent_software: dict[uuid.UUID, set[int]] = attrs.Factory(dict)
    gpu_catalogue: set[str] = attrs.Factory(set)
    tasks: dict[int, Task] = attrs.Factory(dict)
    jobs: dict[int, Job] = attrs.Factory(dict)
    jobtypes: dict[str, int] = attrs.Factory(dict)
    jobtype_versions: dict[int, JobTypeVersion] = attrs.Factory(dict)
    software: dict[str, Software] = attrs.Factory(dict)
    logs: dict[int, TaskLog] = attrs.Factory(dict)
    blocks: dict[tuple[int, uuid.UUID], JobAgentBlock] = attrs.Factory(dict)
    agent_tags: dict[uuid.UUID, set[str]] = attrs.Factory(dict)


class FakeStore:
    """The 'database' the fake units of work share."""

    def __init__(self) -> None:
        self.data = _Data()
        self._ids = itertools.count(1)
        self.commits = 0

    def next_id(self) -> int:
        return next(self._ids)


class FakeAgentRepository:
    def __init__(self, data: _Data) -> None:
        self._d = data

    def _with_software(self, agent: Agent) -> Agent:
        versions = {v.id: (s.name, v) for s in self._d.software.values() for v in s.versions}
        refs = sorted(
            (versions[v] for v in self._d.agent_software.get(agent.id, ()) if v in versions),
            key=lambda item: (item[0], item[1].rank),
        )
        return attrs.evolve(agent, software=tuple(SoftwareRef(n, v.version) for n, v in refs))

    def get(self, agent_id: uuid.UUID, *, for_update: bool = False) -> Agent | None:
        agent = self._d.agents.get(agent_id)
        return None if agent is None else self._with_software(agent)

    def get_with_active(self, agent_id: uuid.UUID) -> tuple[Agent, dict[int, int]] | None:
        agent = self.get(agent_id, for_update=True)
        if agent is None:
            return None
        return agent, {
            t.id: t.attempts
            for t in self._d.tasks.values()
            if t.agent_id == agent_id and not t.is_finished
        }

    def add(self, agent: Agent) -> None:
        if agent.id in self._d.agents:
            raise KeyError(f"duplicate agent {agent.id}")
        self._d.agents[agent.id] = attrs.evolve(agent, software=())
        self._d.gpu_catalogue |= agent.gpus

    def save(self, agent: Agent, previous: Agent | None = None) -> None:
        old = self._d.agents[agent.id]
        self._d.agents[agent.id] = attrs.evolve(
            agent, mac_addresses=old.mac_addresses, gpus=old.gpus, software=()
        )

    def replace_mac_addresses(self, agent_id: uuid.UUID, macs: frozenset[str]) -> None:
        self._d.agents[agent_id] = attrs.evolve(self._d.agents[agent_id], mac_addresses=macs)

    def replace_gpus(self, agent_id: uuid.UUID, names: frozenset[str]) -> None:
        self._d.gpu_catalogue |= names
        self._d.agents[agent_id] = attrs.evolve(self._d.agents[agent_id], gpus=names)

    def attach_software(self, agent_id: uuid.UUID, version_ids: Iterable[int]) -> None:
        self._d.agent_software.setdefault(agent_id, set()).update(version_ids)

    def tags(self, agent_id: uuid.UUID) -> frozenset[str]:
        return frozenset(self._d.agent_tags.get(agent_id, ()))

    def replace_tags(self, agent_id: uuid.UUID, tags: frozenset[str]) -> None:
        self._d.agent_tags[agent_id] = set(tags)

    def detach_software(self, agent_id: uuid.UUID, version_id: int) -> None:
        self._d.agent_software.get(agent_id, set()).discard(version_id)

    def delete(self, agent_id: uuid.UUID) -> bool:
        if self._d.agents.pop(agent_id, None) is None:
            return False
        self._d.agent_software.pop(agent_id, None)
        self._d.agent_tags.pop(agent_id, None)
        for key in [k for k in self._d.blocks if k[1] == agent_id]:
            del self._d.blocks[key]
        for task_id, task in list(self._d.tasks.items()):
            if task.agent_id == agent_id:  # ON DELETE SET NULL
                self._d.tasks[task_id] = attrs.evolve(task, agent_id=None)
        return True

    def overview(self, query: AgentQuery) -> list[AgentOverview]:
        found = []
        for summary in self.query(query):
            agent = self.get(summary.id)
            assert agent is not None
            active = sum(
                1 for t in self._d.tasks.values() if t.agent_id == agent.id and not t.is_finished
            )
            found.append(
                AgentOverview(
                    agent.id,
                    agent.hostname,
                    agent.remote_ip,
                    agent.port,
                    agent.shown_state,
                    agent.ram,
                    agent.free_ram,
                    agent.cpus,
                    agent.last_heard_from,
                    active,
                    agent.software,
                )
            )
        return found

    def hostnames(self, agent_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        return {
            agent_id: self._d.agents[agent_id].hostname
            for agent_id in set(agent_ids)
            if agent_id in self._d.agents
        }

    def query(self, query: AgentQuery) -> list[AgentSummary]:
        def keep(a: Agent) -> bool:
            checks = [
                query.min_ram is None or a.ram >= query.min_ram,
                query.max_ram is None or a.ram <= query.max_ram,
                query.min_cpus is None or a.cpus >= query.min_cpus,
                query.max_cpus is None or a.cpus <= query.max_cpus,
                query.hostname is None or a.hostname == query.hostname,
                query.remote_ip is None or a.remote_ip == query.remote_ip,
                query.port is None or a.port == query.port,
                query.state is None or a.shown_state is query.state,
            ]
            return all(checks)

        found = sorted(
            (a for a in self._d.agents.values() if keep(a)), key=lambda a: (a.hostname, str(a.id))
        )
        found = found[query.offset :]
        if query.limit is not None:
            found = found[: query.limit]
        return [AgentSummary(a.id, a.hostname, a.port, a.remote_ip) for a in found]


class FakeTaskRepository:
    def __init__(self, data: _Data, store: FakeStore) -> None:
        self._d = data
        self._store = store

    def get(self, task_id: int, *, for_update: bool = False) -> Task | None:
        return self._d.tasks.get(task_id)

    def add(self, task: Task) -> Task:
        if task.job_id not in self._d.jobs:
            raise KeyError(f"no job {task.job_id}")
        task = attrs.evolve(task, id=self._store.next_id())
        self._d.tasks[task.id] = task
        return task

    def save(self, task: Task) -> None:
        if task.id not in self._d.tasks:
            raise KeyError(task.id)
        self._d.tasks[task.id] = task

    def active_of_agent(self, agent_id: uuid.UUID, *, for_update: bool = False) -> list[Task]:
        return sorted(
            (t for t in self._d.tasks.values() if t.agent_id == agent_id and not t.is_finished),
            key=lambda t: t.id,
        )

    def of_agent(self, agent_id: uuid.UUID) -> list[tuple[Task, JobSummary]]:
        result = []
        for task in sorted(self._d.tasks.values(), key=lambda t: t.id):
            if task.agent_id != agent_id:
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

    def add_many(self, tasks: Sequence[Task]) -> None:
        for task in tasks:
            self.add(task)

    def of_job(self, job_id: int) -> list[Task]:
        return sorted(
            (t for t in self._d.tasks.values() if t.job_id == job_id), key=lambda t: (t.frame, t.id)
        )


class FakeJobRepository:
    def __init__(self, data: _Data, store: FakeStore) -> None:
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
        return None if job is None else self._view(job)

    def add(self, job: Job) -> Job:
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
        return self._view(job)

    def save(self, job: Job) -> None:
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
        self._d.jobs[job_id] = attrs.evolve(self._d.jobs[job_id], state=state)

    def set_times(self, job_id: int, started: datetime | None, finished: datetime | None) -> None:
        self._d.jobs[job_id] = attrs.evolve(
            self._d.jobs[job_id], time_started=started, time_finished=finished
        )

    def query(self, query: JobQuery) -> list[Job]:
        found = [
            job
            for job in sorted(self._d.jobs.values(), key=lambda j: -j.id)
            if (not query.queued or job.state is None)
            and (query.queued or query.state is None or job.state is query.state)
            and (query.title is None or job.title == query.title)
        ][query.offset :]
        if query.limit is not None:
            found = found[: query.limit]
        return [self._view(job) for job in found]

    def find_by_title(self, title: str) -> Job | None:
        found = self.query(JobQuery(title=title, limit=1))
        return found[0] if found else None

    def existing_ids(self, job_ids: Iterable[int]) -> set[int]:
        return set(job_ids) & set(self._d.jobs)

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


class FakeJobTypeRepository:
    def __init__(self, data: _Data, store: FakeStore) -> None:
        self._d = data
        self._store = store

    def add(
        self, name: str, version: int = 1, spec: JobTypeVersion | None = None
    ) -> JobTypeVersion:
        jobtype_id = self._d.jobtypes.setdefault(name, self._store.next_id())
        if any(
            v.jobtype_id == jobtype_id and v.version == version
            for v in self._d.jobtype_versions.values()
        ):
            raise KeyError(f"duplicate job type version {name} {version}")
        fields = {} if spec is None else attrs.asdict(spec, recurse=False)
        fields.update(id=self._store.next_id(), jobtype_id=jobtype_id, name=name, version=version)
        created = JobTypeVersion(**fields)
        self._d.jobtype_versions[created.id] = created
        if spec is not None:  # the description belongs to the job type, shared by versions
            for other in list(self._d.jobtype_versions.values()):
                if other.jobtype_id == jobtype_id:
                    self._d.jobtype_versions[other.id] = attrs.evolve(
                        other, description=spec.description
                    )
        return self._d.jobtype_versions[created.id]

    def _live(self, version: JobTypeVersion) -> JobTypeVersion:
        return attrs.evolve(
            version, software_requirements=self.live_requirements(version.software_requirements)
        )

    def live_requirements(
        self, requirements: Iterable[SoftwareRequirement]
    ) -> tuple[SoftwareRequirement, ...]:
        """Requirements as the catalogue stands now (renames show, deleted bounds fall away)."""
        live = []
        for requirement in requirements:
            software = next(
                (s for s in self._d.software.values() if s.id == requirement.software_id), None
            )
            if software is None:
                continue
            ids = {v.id: v.version for v in software.versions}
            live.append(
                attrs.evolve(
                    requirement,
                    software=software.name,
                    min_version_id=requirement.min_version_id
                    if requirement.min_version_id in ids
                    else None,
                    min_version=ids.get(requirement.min_version_id),  # type: ignore[arg-type]
                    max_version_id=requirement.max_version_id
                    if requirement.max_version_id in ids
                    else None,
                    max_version=ids.get(requirement.max_version_id),  # type: ignore[arg-type]
                )
            )
        return tuple(sorted(live, key=lambda r: r.software))

    def versions(self, name: str) -> list[JobTypeVersion]:
        return sorted(
            (self._live(v) for v in self._d.jobtype_versions.values() if v.name == name),
            key=lambda v: v.version,
        )

    def latest(self, name: str) -> JobTypeVersion | None:
        found = self.versions(name)
        return found[-1] if found else None

    def get_version(self, name: str, version: int) -> JobTypeVersion | None:
        return next((v for v in self.versions(name) if v.version == version), None)

    def name_of(self, jobtype_id: int) -> str | None:
        return next((n for n, i in self._d.jobtypes.items() if i == jobtype_id), None)

    def list_latest(self) -> list[JobTypeVersion]:
        return [self.latest(name) for name in sorted(self._d.jobtypes)]  # type: ignore[misc]

    def in_use(self, name: str) -> bool:
        ids = {v.id for v in self._d.jobtype_versions.values() if v.name == name}
        return any(job.jobtype_version_id in ids for job in self._d.jobs.values())

    def delete(self, name: str) -> None:
        self._d.jobtypes.pop(name, None)
        for version_id, version in list(self._d.jobtype_versions.items()):
            if version.name == name:
                del self._d.jobtype_versions[version_id]


class FakeSoftwareRepository:
    def __init__(self, data: _Data, store: FakeStore) -> None:
        self._d = data
        self._store = store

    def get_by_name(self, name: str) -> Software | None:
        return self._d.software.get(name)

    def list_all(self) -> list[Software]:
        return [self._d.software[name] for name in sorted(self._d.software)]

    def _by_id(self, software_id: int) -> Software:
        return next(s for s in self._d.software.values() if s.id == software_id)

    def _put(self, software: Software) -> None:
        versions = tuple(sorted(software.versions, key=lambda v: (v.rank, v.id)))
        self._d.software[software.name] = attrs.evolve(software, versions=versions)

    def add(self, name: str, versions: Sequence[tuple[str, int]]) -> Software:
        if name in self._d.software:
            raise KeyError(f"duplicate software {name}")
        software_id = self._store.next_id()
        self._put(
            Software(
                software_id,
                name,
                tuple(
                    SoftwareVersion(self._store.next_id(), software_id, v, r) for v, r in versions
                ),
            )
        )
        return self._d.software[name]

    def rename(self, software_id: int, name: str) -> None:
        software = self._by_id(software_id)
        del self._d.software[software.name]
        self._put(attrs.evolve(software, name=name))

    def delete(self, software_id: int) -> None:
        software = self._by_id(software_id)
        for version in software.versions:
            self.delete_version(version.id)
        del self._d.software[software.name]

    def add_version(self, software_id: int, version: str, rank: int) -> SoftwareVersion:
        software = self._by_id(software_id)
        if any(v.version == version for v in software.versions):
            raise KeyError(f"duplicate version {version}")
        created = SoftwareVersion(self._store.next_id(), software_id, version, rank)
        self._put(attrs.evolve(software, versions=(*software.versions, created)))
        return created

    def set_rank(self, version_id: int, rank: int) -> None:
        for software in list(self._d.software.values()):
            if any(v.id == version_id for v in software.versions):
                self._put(
                    attrs.evolve(
                        software,
                        versions=tuple(
                            attrs.evolve(v, rank=rank) if v.id == version_id else v
                            for v in software.versions
                        ),
                    )
                )

    def delete_version(self, version_id: int) -> None:
        for software in list(self._d.software.values()):
            self._put(
                attrs.evolve(
                    software, versions=tuple(v for v in software.versions if v.id != version_id)
                )
            )
        for installed in self._d.agent_software.values():
            installed.discard(version_id)


class FakeTaskLogRepository:
    def __init__(self, data: _Data, store: FakeStore) -> None:
        self._d = data
        self._store = store

    def add(self, log: TaskLog) -> TaskLog:
        if log.task_id not in self._d.tasks or self.get(log.task_id, log.attempt, log.identifier):
            raise KeyError("no such task, or a duplicate log")
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


class FakeBlocklistRepository:
    def __init__(self, data: _Data) -> None:
        self._d = data

    def _get(self, job_id: int, agent_id: uuid.UUID, now: datetime) -> JobAgentBlock:
        if job_id not in self._d.jobs or agent_id not in self._d.agents:
            raise KeyError("no such job or agent")
        return self._d.blocks.get(
            (job_id, agent_id), JobAgentBlock(job_id, agent_id, updated_on=now)
        )

    def record_failure(self, job_id: int, agent_id: uuid.UUID, now: datetime) -> None:
        block = self._get(job_id, agent_id, now)
        self._d.blocks[(job_id, agent_id)] = attrs.evolve(
            block, failures=block.failures + 1, updated_on=now
        )

    def record_rejection(
        self, job_id: int, agent_id: uuid.UUID, fingerprint: str, now: datetime
    ) -> None:
        block = self._get(job_id, agent_id, now)
        self._d.blocks[(job_id, agent_id)] = attrs.evolve(
            block, rejected_fingerprint=fingerprint, updated_on=now
        )

    def of_agent(self, agent_id: uuid.UUID) -> list[JobAgentBlock]:
        return sorted(
            (b for b in self._d.blocks.values() if b.agent_id == agent_id),
            key=lambda b: (b.job_id, str(b.agent_id)),
        )

    def of_agents(self, agent_ids: Sequence[uuid.UUID]) -> list[JobAgentBlock]:
        wanted = set(agent_ids)
        return sorted(
            (b for b in self._d.blocks.values() if b.agent_id in wanted),
            key=lambda b: (b.job_id, str(b.agent_id)),
        )

    def of_job(self, job_id: int) -> list[JobAgentBlock]:
        return sorted(
            (b for b in self._d.blocks.values() if b.job_id == job_id),
            key=lambda b: str(b.agent_id),
        )

    def clear(self, job_id: int, agent_id: uuid.UUID) -> None:
        self._d.blocks.pop((job_id, agent_id), None)


class FakeSchedulingRepository:
    def __init__(self, data: _Data) -> None:
        self._d = data

    def _ranks(self, requirements: Iterable[SoftwareRequirement]) -> list[RankRange]:
        ranks = {v.id: v.rank for s in self._d.software.values() for v in s.versions}
        live = {s.id for s in self._d.software.values()}
        return [
            RankRange(
                r.software_id,
                ranks.get(r.min_version_id),  # type: ignore[arg-type]
                ranks.get(r.max_version_id),
            )  # type: ignore[arg-type]
            for r in requirements
            if r.software_id in live
        ]

    def candidate_jobs(self) -> list[JobProfile]:
        profiles = []
        for job in self._d.jobs.values():
            tasks = [t for t in self._d.tasks.values() if t.job_id == job.id]
            if job.state not in (None, WorkState.RUNNING):
                continue
            if not any(t.status is TaskStatus.QUEUED for t in tasks):
                continue
            if any(
                self._d.jobs[p].state is not WorkState.DONE
                for p in job.parents
                if p in self._d.jobs
            ):
                continue
            version = self._d.jobtype_versions[job.jobtype_version_id]
            busy = {t.agent_id for t in tasks if t.agent_id is not None and not t.is_finished}
            profiles.append(
                JobProfile(
                    id=job.id,
                    priority=job.priority,
                    weight=job.weight,
                    time_submitted=job.time_submitted,
                    ram=job.ram,
                    cpus=job.cpus,  # type: ignore[arg-type]
                    minimum_agents=job.minimum_agents,
                    maximum_agents=job.maximum_agents,
                    busy_agents=len(busy),
                    requirements=tuple(
                        self._ranks(version.software_requirements)
                        + self._ranks(job.software_requirements)
                    ),
                    tag_requirements=tuple(sorted((r.tag, r.negate) for r in job.tag_requirements)),
                    batch=job.batch,
                    max_batch=version.max_batch,
                    batch_contiguous=version.batch_contiguous,
                    frame_by=job.frame_by,
                )
            )
        return profiles

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

    def lock_job(self, job_id: int, *, wait: bool = True) -> int | None:
        return len(
            {
                t.agent_id
                for t in self._d.tasks.values()
                if t.job_id == job_id and t.agent_id is not None and not t.is_finished
            }
        )

    def queued_tasks(self, job_id: int, limit: int) -> list[Task]:
        return sorted(
            (
                t
                for t in self._d.tasks.values()
                if t.job_id == job_id and t.status is TaskStatus.QUEUED
            ),
            key=lambda t: (t.frame, t.id),
        )[:limit]

    def claim(self, task_ids: Sequence[int], agent_id: uuid.UUID) -> list[int]:
        claimed = []
        for task_id in task_ids:
            task = self._d.tasks.get(task_id)
            if task is not None and task.status is TaskStatus.QUEUED:
                self._d.tasks[task_id] = task.assigned_to(agent_id)
                claimed.append(task_id)
        return sorted(claimed)

    def mark_sent(self, task_id: int, agent_id: uuid.UUID, attempt: int, now: datetime) -> bool:
        task = self._d.tasks.get(task_id)
        if (
            task is None
            or task.agent_id != agent_id
            or task.attempts != attempt
            or task.is_finished
        ):
            return False
        self._d.tasks[task_id] = attrs.evolve(task, sent_to_agent=True, sent_at=now)
        return True


class FakeUnitOfWork:
    """Works on a copy of the store's data; commit publishes it, anything else discards it."""

    def __init__(self, store: FakeStore, read_only: bool = False) -> None:
        self._store = store
        self._read_only = read_only

    def __enter__(self) -> Self:
        self._data = copy.deepcopy(self._store.data)
        self.agents = FakeAgentRepository(self._data)
        self.tasks = FakeTaskRepository(self._data, self._store)
        self.jobs = FakeJobRepository(self._data, self._store)
        self.jobtypes = FakeJobTypeRepository(self._data, self._store)
        self.software = FakeSoftwareRepository(self._data, self._store)
        self.logs = FakeTaskLogRepository(self._data, self._store)
        self.blocks = FakeBlocklistRepository(self._data)
        self.scheduling = FakeSchedulingRepository(self._data)
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        self._store.data = self._data
        self._store.commits += 1


class FakeUnitOfWorkFactory:
    def __init__(self, store: FakeStore | None = None) -> None:
        self.store = store or FakeStore()

    def __call__(self, *, read_only: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.store, read_only)


class RecordingQueue:
    """Records what was enqueued, in order, as (job name, arguments)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def assign_tasks(self) -> None:
        self.calls.append(("assign_tasks", ()))

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self.calls.append(("assign_tasks_to_agent", (agent_id,)))

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self.calls.append(("send_tasks_to_agent", (agent_id,)))

    def update_agent(self, agent_id: uuid.UUID) -> None:
        self.calls.append(("update_agent", (agent_id,)))

    def stop_tasks(self, host: str, port: int, task_ids: Sequence[int]) -> None:
        self.calls.append(("stop_tasks", (host, port, tuple(task_ids))))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class FixedClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class RecordingDispatcher:
    """Stands in for the queue consumers' service and records what ran."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, tuple[object, ...]]] = []

    def assign_tasks(self) -> None:
        self.ran.append(("assign_tasks", ()))

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self.ran.append(("assign_tasks_to_agent", (agent_id,)))

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self.ran.append(("send_tasks_to_agent", (agent_id,)))

    def update_agent(self, agent_id: uuid.UUID) -> None:
        self.ran.append(("update_agent", (agent_id,)))

    def stop_tasks(self, host: str, port: int, task_ids: Sequence[int]) -> None:
        self.ran.append(("stop_tasks", (host, port, tuple(task_ids))))

    def watch_agents(self) -> None:
        self.ran.append(("watch_agents", ()))


class ScriptedAgentClient:
    """An AgentClient whose answers a test sets per call kind; records every call (an
    assignment as its job and tasks)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.assignments: list[tuple[str, Job, tuple[Task, ...]]] = []
        """Each assignment as (base URL, job, tasks), typed for tests to read."""
        self.answers: dict[str, list[AssignAnswer | PollAnswer | StopAnswer | UpdateAnswer]] = {}

    def answer(
        self, kind: str, *answers: AssignAnswer | PollAnswer | StopAnswer | UpdateAnswer
    ) -> None:
        self.answers[kind] = list(answers)

    def _next(
        self, kind: str, url: str, request: object
    ) -> AssignAnswer | PollAnswer | StopAnswer | UpdateAnswer:
        self.calls.append((kind, url, request))
        queued = self.answers.get(kind) or [Accepted() if kind != "tasks" else Running(frozenset())]
        return queued.pop(0) if len(queued) > 1 else queued[0]

    def assign(self, base_url: str, job: Job, tasks: Sequence[Task]) -> AssignAnswer:
        self.assignments.append((base_url, job, tuple(tasks)))
        answer = self._next("assign", base_url, (job, tuple(tasks)))
        assert isinstance(answer, Accepted | Refused | Conflict | Busy | Unreachable)
        return answer

    def tasks(self, base_url: str) -> PollAnswer:
        answer = self._next("tasks", base_url, None)
        assert isinstance(answer, Running | Refused | Busy | Unreachable)
        return answer

    def stop_task(self, base_url: str, task_id: int) -> StopAnswer:
        answer = self._next("stop_task", base_url, task_id)
        assert isinstance(answer, Accepted | NotRunning | Refused | Busy | Unreachable)
        return answer

    def update(self, base_url: str, version: str) -> UpdateAnswer:
        answer = self._next("update", base_url, version)
        assert isinstance(answer, Accepted | Refused | Busy | Unreachable)
        return answer

    def of(self, kind: str) -> list[tuple[str, object]]:
        return [(url, body) for k, url, body in self.calls if k == kind]
