"""The composition root: builds every adapter and service from Settings. Nothing else wires."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import attrs
from huey import Huey
from sqlalchemy import Engine

from farm_adapters import schema_migrations
from farm_adapters.agent_client import FrameLimits, HttpAgentClient
from farm_adapters.batching import BatchedSoftState, CoalescedWorkRequests, Flusher
from farm_adapters.clock import SystemClock
from farm_adapters.create_counter import LimitsCreateCounter
from farm_adapters.files import FilesystemStore
from farm_adapters.metrics import (
    PrometheusCounters,
    PrometheusMetrics,
    Readiness,
    remove_dead_processes,
    shared_directory,
    watch_pool,
)
from farm_adapters.passwords import Argon2PasswordHasher, SystemSecrets
from farm_adapters.queue import HueyTaskQueue, QueueJobs, create_huey, register_jobs
from farm_adapters.settings import Settings
from farm_adapters.signing import AgentSigningKeys
from farm_adapters.sql.changes import SqlChangeMarker
from farm_adapters.sql.engine import create_database_engine
from farm_adapters.sql.statistics import SqlFarmStatistics
from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from farm_domain.access import AccessPolicy
from farm_domain.assignments import AssignmentReconciler
from farm_domain.audit import AuditTrail
from farm_domain.budgets import CreateBudgets
from farm_domain.catalogue import SoftwareCatalogue
from farm_domain.controls import Controls
from farm_domain.dispatch import Dispatcher, DispatchPolicy
from farm_domain.explain import Explainer
from farm_domain.farm import Farm
from farm_domain.files import AgentUpdates, TaskLogs
from farm_domain.identities import IdentityService
from farm_domain.jobs import JobService
from farm_domain.jobtypes import JobTypeCatalogue
from farm_domain.live import LiveUpdates
from farm_domain.monitoring import Monitoring
from farm_domain.networks import AgentNetworks
from farm_domain.overview import FarmOverview
from farm_domain.ports import AgentClient, Clock, CreateCounter, TaskQueue, UnitOfWorkFactory
from farm_domain.registry import AgentRegistry
from farm_domain.scheduling import RamCheck, RetryBackoff
from farm_domain.state_history import StateHistory


class SchemaOutOfDate(Exception):
    """The database is not at the newest schema: run ``farm db upgrade``."""


@attrs.define
class Runtime:
    """What one process of the master holds: the engine, the queue and the services."""

    settings: Settings
    engine: Engine
    huey: Huey
    farm: Farm
    dispatcher: Dispatcher
    jobs: QueueJobs
    flusher: Flusher | None = None
    """Writes the web worker's batches (``build_runtime(batching=True)``); started by
    ``start_batching``."""

    def start_batching(self) -> None:
        if self.flusher is not None:
            self.flusher.start()

    def close(self) -> None:
        """Flush what waits, then let the connections go."""
        if self.flusher is not None:
            self.flusher.stop()
        self.engine.dispose()


def dispatch_policy(settings: Settings) -> DispatchPolicy:
    """The scheduler's policy, from the settings that declare its defaults."""
    return DispatchPolicy(
        ram_check=RamCheck(settings.ram_check),
        max_failures=settings.max_failures_per_agent,
        heartbeat_timeout=settings.agent_timeout_seconds,
        agent_silence=settings.agent_silence_seconds,
        poll_busy_after=settings.poll_busy_seconds,
        poll_idle_after=settings.poll_idle_seconds,
        poll_offline_after=settings.poll_offline_seconds,
        retry=retry_backoff(settings),
        block_expiry=settings.block_expiry_seconds,
        stuck_job=settings.stuck_job_seconds,
    )


def retry_backoff(settings: Settings) -> RetryBackoff:
    return RetryBackoff(settings.retry_delay_seconds, settings.retry_delay_max_seconds)


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    queue: TaskQueue | None = None,
    dispatcher: Dispatcher | None = None,
    client: AgentClient | None = None,
    create_queue_tables: bool = True,
    pre_ping: bool = True,
    batching: bool = False,
) -> Runtime:
    """Wire the master. ``queue``, ``dispatcher`` and ``client`` replace the real ones (tests);
    ``pre_ping=False`` for web workers (see create_database_engine). ``batching`` (web workers):
    heartbeats' soft state and idle agents' requests for work are flushed every
    ``heartbeat_flush_seconds`` by a thread that ``Runtime.start_batching`` starts; otherwise
    each is written or sent at once."""
    clock = clock or SystemClock()
    engine = create_database_engine(
        settings.database_url, pool_size=settings.threads, pre_ping=pre_ping
    )
    shared_directory(metrics_directory(settings))
    counters = PrometheusCounters()
    watch_pool(engine, 2 * settings.threads)  # the pool and as many again of overflow
    uow = SqlUnitOfWorkFactory(engine)
    huey = create_huey(settings.queue_url, settings.queue_name, create_tables=create_queue_tables)
    networks = AgentNetworks(settings.agent_networks)
    reconciler = AssignmentReconciler(
        clock, grace=timedelta(seconds=settings.reconcile_grace_seconds), counters=counters
    )
    holder: list[Dispatcher] = []
    jobs = register_jobs(
        huey,
        lambda: holder[0],
        assign_every_minutes=settings.assign_interval_minutes,
        watch_every_seconds=settings.watch_interval_seconds,
    )
    queue = queue or HueyTaskQueue(jobs)
    keys = AgentSigningKeys.of(settings.secret_key, settings.data_dir)
    client = client or HttpAgentClient(
        networks,
        keys,
        timeout=settings.agent_request_timeout,
        connect_timeout=settings.agent_connect_timeout,
        retries=settings.agent_retries,
        retry_delay=settings.agent_retry_delay,
        default_limits=FrameLimits(
            settings.max_run_seconds or None, settings.stall_seconds or None
        ),
    )
    files = FilesystemStore(settings.data_dir / "files", settings.max_files_bytes)
    dispatcher = dispatcher or Dispatcher(
        uow,
        queue,
        clock,
        client,
        networks,
        reconciler,
        dispatch_policy(settings),
        files=files,
        counters=counters,
    )
    holder.append(dispatcher)
    policy = AccessPolicy()
    identities = identity_service(uow, clock, failed_logins(settings))
    flusher = None
    agents_queue: TaskQueue = queue
    if batching and settings.heartbeat_flush_seconds > 0:
        soft_state = BatchedSoftState(uow)
        work_requests = CoalescedWorkRequests(queue)
        agents_queue = work_requests
        flusher = Flusher(settings.heartbeat_flush_seconds, [soft_state.flush, work_requests.flush])
    else:
        soft_state = BatchedSoftState(uow, write_through=True)
    registry = AgentRegistry(
        uow,
        agents_queue,
        clock,
        reconciler,
        settings.default_agent_software,
        farm_name=settings.farm_name,
        allow_loopback=settings.allow_loopback_agents,
        networks=networks,
        policy=policy,
        credentials=identities,
        keys=keys,
        soft_state=soft_state,
        counters=counters,
    )
    job_service = JobService(
        uow,
        queue,
        clock,
        settings.max_failures_per_agent,
        policy=policy,
        files=files,
        backoff=retry_backoff(settings),
        block_expiry=settings.block_expiry_seconds,
        counters=counters,
    )
    farm = Farm(
        agents=registry,
        software=SoftwareCatalogue(uow, clock, policy=policy),
        jobtypes=JobTypeCatalogue(uow, clock, policy=policy),
        jobs=job_service,
        logs=TaskLogs(uow, files, clock, settings.max_log_bytes, policy=policy),
        updates=AgentUpdates(uow, files, clock, settings.max_update_bytes, policy=policy),
        events=AuditTrail(uow, policy=policy),
        identities=identities,
        creates=create_budgets(settings),
        explain=Explainer(uow, clock, networks, dispatch_policy(settings), policy=policy),
        controls=Controls(uow, queue, clock, policy=policy, jobs=job_service),
        monitoring=Monitoring(
            PrometheusMetrics(engine, huey, clock),
            Readiness(engine, huey),
            settings.metrics_networks,
            policy,
        ),
        history=StateHistory(uow, policy=policy),
        live=LiveUpdates(SqlChangeMarker(engine)),
        overview=FarmOverview(SqlFarmStatistics(engine), clock, policy),
    )
    return Runtime(settings, engine, huey, farm, dispatcher, jobs, flusher)


def metrics_directory(settings: Settings) -> Path:
    """Where the master's processes on this host keep their counts (see farm_adapters.metrics):
    a directory per host name, since process ids are only unique on one host (a data directory
    shared between hosts)."""
    return settings.data_dir / "metrics" / socket.gethostname()


def forget_dead_processes_metrics(settings: Settings) -> None:
    """``farm serve`` starting: the counts of processes gone start again from zero."""
    remove_dead_processes(metrics_directory(settings))


def create_budgets(settings: Settings) -> CreateBudgets:
    rate = settings.create_rate
    if not rate.limited:
        return CreateBudgets(None)
    return CreateBudgets(LimitsCreateCounter.of(rate, settings.queue_url, settings.queue_name))


def failed_logins(settings: Settings) -> LimitsCreateCounter | None:
    """The count of failed dashboard logins (None: FARM_LOGIN_FAILURES=0, no limit)."""
    rate = settings.login_rate
    if not rate.limited:
        return None
    return LimitsCreateCounter.of(
        rate, settings.queue_url, settings.queue_name, counted="failed-logins"
    )


def identity_service(
    uow: UnitOfWorkFactory, clock: Clock, failed_logins: CreateCounter | None = None
) -> IdentityService:
    return IdentityService(uow, clock, SystemSecrets(), Argon2PasswordHasher(), failed_logins)


def bootstrap_admin(settings: Settings) -> str | None:
    """The secret of a new admin token when the farm has no admin yet (see
    IdentityService.bootstrap_admin); needs no queue, so ``farm serve`` calls it first."""
    engine = create_database_engine(settings.database_url)
    try:
        return identity_service(SqlUnitOfWorkFactory(engine), SystemClock()).bootstrap_admin()
    finally:
        engine.dispose()


def migrate(settings: Settings) -> None:
    """Apply the schema migrations to the configured database."""
    if settings.database_is_embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_database_engine(settings.database_url)
    try:
        schema_migrations.upgrade(engine)
    finally:
        engine.dispose()


def check_schema(settings: Settings) -> None:
    """Raises SchemaOutOfDate when the database needs ``farm db upgrade``."""
    engine = create_database_engine(settings.database_url)
    try:
        if not schema_migrations.is_up_to_date(engine):
            raise SchemaOutOfDate(
                f"the database {engine.url.render_as_string(hide_password=True)} is not at the "
                f"newest schema ({schema_migrations.head_revision()}): run `farm db upgrade`"
            )
    finally:
        engine.dispose()
