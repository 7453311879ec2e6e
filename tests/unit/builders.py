"""Small builders for domain tests."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import timedelta

from farm_domain.agents import AgentChanges
from farm_domain.assignments import AssignmentReconciler
from farm_domain.defaults import SoftwareDefaults
from farm_domain.dispatch import Dispatcher, DispatchPolicy
from farm_domain.jobs import JobService
from farm_domain.networks import AgentNetworks
from farm_domain.registry import AgentRegistry
from farm_domain.work import Job, Task
from tests.builders import add_job, add_task, get_task
from tests.fakes import (
    FakeUnitOfWorkFactory,
    FixedClock,
    RecordingQueue,
    ScriptedAgentClient,
)


class World:
    """A registry on fakes, with its store, queue and clock at hand."""

    def __init__(
        self,
        *,
        defaults: SoftwareDefaults | None = None,
        farm_name: str | None = None,
        allow_loopback: bool = True,
        grace: float = 30,
        policy: DispatchPolicy = DispatchPolicy(),
    ) -> None:
        self.uow = FakeUnitOfWorkFactory()
        self.queue = RecordingQueue()
        self.clock = FixedClock()
        self.reconciler = AssignmentReconciler(self.clock, grace=timedelta(seconds=grace))
        self.jobs = JobService(self.uow, self.queue, self.clock)
        self.networks = AgentNetworks(
            [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.0.0.0/8")]
        )
        self.registry = AgentRegistry(
            self.uow,
            self.queue,
            self.clock,
            self.reconciler,
            defaults,
            farm_name=farm_name,
            allow_loopback=allow_loopback,
            networks=self.networks,
        )
        self.client = ScriptedAgentClient()
        self.dispatcher = Dispatcher(
            self.uow, self.queue, self.clock, self.client, self.networks, self.reconciler, policy
        )

    def announce(
        self, agent_id: uuid.UUID | None = None, peer: str | None = "127.0.0.1", **fields: object
    ):  # type: ignore[no-untyped-def]
        body: dict[str, object] = {
            "hostname": "node1",
            "ram": 4096,
            "free_ram": 2048,
            "cpus": 8,
            "port": 50000,
        }
        body.update(fields)
        body["id"] = str(agent_id or uuid.uuid4())
        return self.registry.announce(AgentChanges(**body), peer)  # type: ignore[arg-type]

    def job(self, requeue: int = 3, title: str = "job") -> Job:
        return add_job(self.uow, self.clock.now(), requeue=requeue, title=title)

    def task(self, job: Job, **fields: object) -> Task:
        return add_task(self.uow, job, self.clock.now(), **fields)

    def get_task(self, task_id: int) -> Task:
        return get_task(self.uow, task_id)

    def get_job(self, job_id: int) -> Job:
        with self.uow() as uow:
            job = uow.jobs.get(job_id)
        assert job is not None
        return job
