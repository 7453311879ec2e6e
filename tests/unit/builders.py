"""Small builders for domain tests."""

from __future__ import annotations

import uuid
from datetime import timedelta

from farm_domain.agents import AgentChanges
from farm_domain.assignments import AssignmentReconciler
from farm_domain.registry import AgentRegistry
from farm_domain.software import SoftwareDefaults
from farm_domain.work import Job, Task
from tests.fakes import FakeUnitOfWorkFactory, FixedClock, RecordingQueue


class World:
    """A registry on fakes, with its store, queue and clock at hand."""

    def __init__(self, *, defaults: SoftwareDefaults | None = None, farm_name: str | None = None,
                 allow_loopback: bool = True, grace: float = 30) -> None:
        self.uow = FakeUnitOfWorkFactory()
        self.queue = RecordingQueue()
        self.clock = FixedClock()
        self.reconciler = AssignmentReconciler(self.clock, grace=timedelta(seconds=grace))
        self.registry = AgentRegistry(
            self.uow, self.queue, self.clock, self.reconciler, defaults,
            farm_name=farm_name, allow_loopback=allow_loopback,
        )

    def announce(self, agent_id: uuid.UUID | None = None, peer: str | None = "127.0.0.1",
                 **fields: object):  # type: ignore[no-untyped-def]
        body: dict[str, object] = dict(hostname="node1", ram=4096, free_ram=2048, cpus=8,
                                       port=50000)
        body.update(fields)
        body["id"] = str(agent_id or uuid.uuid4())
        return self.registry.announce(AgentChanges(**body), peer)  # type: ignore[arg-type]

    def job(self, requeue: int = 3, title: str = "job") -> Job:
        with self.uow() as uow:
            version = uow.jobtypes.add(f"type-{title}")
            job = uow.jobs.add(Job(id=0, title=title, jobtype_version_id=version.id,
                                   requeue=requeue, time_submitted=self.clock.now()))
            uow.commit()
        return job

    def task(self, job: Job, **fields: object) -> Task:
        with self.uow() as uow:
            task = uow.tasks.add(Task(id=0, job_id=job.id, frame=fields.pop("frame", 1.0),  # type: ignore[arg-type]
                                      time_submitted=self.clock.now(), **fields))  # type: ignore[arg-type]
            uow.commit()
        return task

    def get_task(self, task_id: int) -> Task:
        with self.uow() as uow:
            task = uow.tasks.get(task_id)
        assert task is not None
        return task

    def get_job(self, job_id: int) -> Job:
        with self.uow() as uow:
            job = uow.jobs.get(job_id)
        assert job is not None
        return job
