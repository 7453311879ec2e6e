"""Builders: jobs and tasks straight through any unit of work, and a world of services on fakes."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime, timedelta
from typing import Any

import attrs

from farm_adapters import composition
from farm_adapters.settings import Settings
from farm_domain.access import AccessPolicy, Identity
from farm_domain.agents import Agent, AgentChanges
from farm_domain.assignments import AssignmentReconciler
from farm_domain.audit import AuditTrail
from farm_domain.catalogue import SoftwareCatalogue
from farm_domain.controls import Controls
from farm_domain.defaults import SoftwareDefaults
from farm_domain.dispatch import Dispatcher, DispatchPolicy
from farm_domain.enums import WorkState
from farm_domain.events import Event, EventQuery
from farm_domain.explain import Explainer
from farm_domain.identities import IdentityService
from farm_domain.jobs import JobService
from farm_domain.jobtypes import JobTypeCatalogue
from farm_domain.networks import AgentNetworks
from farm_domain.ports import UnitOfWorkFactory
from farm_domain.registry import AgentRegistry
from farm_domain.scheduling import NO_BACKOFF, RetryBackoff
from farm_domain.work import Job, Task
from tests.support.fakes.collaborators import (
    DigestKeys,
    FixedClock,
    MemoryFileStore,
    PendingSoftState,
    RecordingCounters,
    RecordingQueue,
    ScriptedAgentClient,
)
from tests.support.fakes.identities import CountingSecrets, PlainPasswordHasher
from tests.support.fakes.unit_of_work import FakeUnitOfWorkFactory
from tests.support.identities import ADMIN

FARM_DEFAULTS = Settings.load({})
"""The farm's default settings, from their declarations: the domain's services take them."""


def dispatch_policy(**changes: Any) -> DispatchPolicy:
    """The farm's default scheduler policy, with ``changes``."""
    return attrs.evolve(composition.dispatch_policy(FARM_DEFAULTS), **changes)


def add_job(
    uow_factory: UnitOfWorkFactory,
    now: datetime,
    *,
    requeue: int = 3,
    title: str = "job",
    state: WorkState | None = None,
) -> Job:
    with uow_factory() as uow:
        version = uow.jobtypes.add(f"type-{uuid.uuid4().hex[:8]}")
        job = uow.jobs.add(
            Job(
                id=0,
                title=title,
                jobtype_version_id=version.id,
                requeue=requeue,
                state=state,
                time_submitted=now,
            )
        )
        uow.commit()
    return job


def add_task(uow_factory: UnitOfWorkFactory, job: Job, now: datetime, **fields: Any) -> Task:
    with uow_factory() as uow:
        task = uow.tasks.add(
            Task(id=0, job_id=job.id, frame=fields.pop("frame", 1.0), time_submitted=now, **fields)
        )
        uow.commit()
    return task


def get_task(uow_factory: UnitOfWorkFactory, task_id: int) -> Task:
    with uow_factory() as uow:
        task = uow.tasks.get(task_id)
    assert task is not None
    return task


class World:
    """The domain's services on fakes, with their store, queue and clock at hand."""

    def __init__(
        self,
        *,
        defaults: SoftwareDefaults | None = None,
        farm_name: str | None = None,
        allow_loopback: bool = FARM_DEFAULTS.allow_loopback_agents,
        grace: float = FARM_DEFAULTS.reconcile_grace_seconds,
        policy: DispatchPolicy | None = None,
        soft_state: bool = False,
        backoff: RetryBackoff = NO_BACKOFF,
        block_expiry: float = 0,
    ) -> None:
        """``soft_state``: heartbeats' soft state waits in ``self.soft_state`` until flushed
        (otherwise every update is written in its own transaction). ``backoff`` and
        ``block_expiry``: the job service's (none by default: a failed task is offered again
        at once, and blocks never lift by themselves)."""
        self.uow = FakeUnitOfWorkFactory()
        self.soft_state = PendingSoftState(self.uow) if soft_state else None
        self.queue = RecordingQueue()
        self.clock = FixedClock()
        self.counters = RecordingCounters()
        self.reconciler = AssignmentReconciler(
            self.clock, grace=timedelta(seconds=grace), counters=self.counters
        )
        self.policy = AccessPolicy()
        self.files = MemoryFileStore()
        self.jobs = JobService(
            self.uow,
            self.queue,
            self.clock,
            FARM_DEFAULTS.max_failures_per_agent,
            policy=self.policy,
            files=self.files,
            backoff=backoff,
            block_expiry=block_expiry,
            counters=self.counters,
        )
        self.controls = Controls(
            self.uow, self.queue, self.clock, policy=self.policy, jobs=self.jobs
        )
        self.software = SoftwareCatalogue(self.uow, self.clock, policy=self.policy)
        self.jobtypes = JobTypeCatalogue(self.uow, self.clock, policy=self.policy)
        self.events = AuditTrail(self.uow, policy=self.policy)
        self.identities = IdentityService(
            self.uow, self.clock, CountingSecrets(), PlainPasswordHasher()
        )
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
            policy=self.policy,
            credentials=self.identities,
            keys=DigestKeys(),
            soft_state=self.soft_state,
            counters=self.counters,
        )
        self.client = ScriptedAgentClient()
        self.dispatcher = Dispatcher(
            self.uow,
            self.queue,
            self.clock,
            self.client,
            self.networks,
            self.reconciler,
            policy or dispatch_policy(),
            files=self.files,
            counters=self.counters,
        )
        self.explain = Explainer(
            self.uow, self.clock, self.networks, policy or dispatch_policy(), policy=self.policy
        )

    def announce(
        self, agent_id: uuid.UUID | None = None, peer: str | None = "127.0.0.1", **fields: object
    ) -> tuple[Agent, bool]:
        return self.announce_as(ADMIN, agent_id, peer, **fields)

    def announce_as(
        self,
        actor: Identity,
        agent_id: uuid.UUID | None = None,
        peer: str | None = "127.0.0.1",
        **fields: object,
    ) -> tuple[Agent, bool]:
        body: dict[str, object] = {
            "hostname": "node1",
            "ram": 4096,
            "free_ram": 2048,
            "cpus": 8,
            "port": 50000,
        }
        body.update(fields)
        body["id"] = str(agent_id or uuid.uuid4())
        return self.registry.announce(actor, AgentChanges(**body), peer)  # type: ignore[arg-type]  # any AgentChanges fields

    def job(self, requeue: int = 3, title: str = "job") -> Job:
        return add_job(self.uow, self.clock.now(), requeue=requeue, title=title)

    def task(self, job: Job, **fields: object) -> Task:
        return add_task(self.uow, job, self.clock.now(), **fields)

    def get_task(self, task_id: int) -> Task:
        return get_task(self.uow, task_id)

    def recorded(self, **filters: Any) -> list[Event]:
        """The audit trail, oldest first (``filters``: EventQuery's)."""
        return list(reversed(self.events.query(ADMIN, EventQuery(limit=1000, **filters))))

    def get_job(self, job_id: int) -> Job:
        with self.uow() as uow:
            job = uow.jobs.get(job_id)
        assert job is not None
        return job
