"""The master's metrics in Prometheus' format (prometheus_client), right however many processes
serve and consume.

Two kinds of numbers, each kept where every process sees the same:

- **The farm's state** (agents, tasks and jobs by state, the oldest heartbeat, the queue's
  backlog) is read when ``/metrics`` is scraped, from the shared database and queue: one grouped
  COUNT per family (``FarmStateCollector``). Whichever web worker answers, it reads the same rows.
- **Events** (dispatch outcomes, requeues, failures, stale reports, HTTP requests, the database
  pool's use) are counted by the process they happen in, with prometheus_client's multiprocess
  mode: each process writes its counts to its own memory-mapped file under
  ``FARM_DATA_DIR/metrics/<host name>``, and a scrape adds up every file there. ``farm serve`` (its web
  workers and its embedded queue consumer) and ``farm worker`` processes on the same host share
  the directory; ``farm serve`` removes the files of processes no longer running as it starts
  (``remove_dead_processes``), so counters start again from zero when the master restarts (as
  Prometheus expects of a restart).
- A ``farm worker --metrics-port`` (for workers on hosts whose directory no master reads) counts
  in a directory of its own instead, ``<host name>/worker-<pid>``, and serves it on its port
  (``WorkerMetricsServer``). The master's scrape reads only the files of the host's directory,
  so each count is served by exactly one target, wherever the worker runs, and Prometheus'
  sums across targets are right.

prometheus_client chooses multiprocess mode per process, from ``PROMETHEUS_MULTIPROC_DIR``, as
its first metric is made. This module sets it to the first data directory a runtime of the
process is built with (``shared_directory``), before making its metrics, and reads that same
directory when scraped: a process holds one farm's metrics.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa
from huey import Huey
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
    values,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError

from farm_adapters import schema_migrations
from farm_adapters.sql.tables import JOB_IS_VISIBLE, agents, jobs, tasks
from farm_domain.enums import AgentState, WorkState
from farm_domain.ports import REQUEUE_REASONS, Clock, Exposition

log = logging.getLogger("farm.metrics")

DATABASE_ERRORS = (SQLAlchemyError, OSError)
QUEUE_ERRORS = (RedisError, sqlite3.Error, OSError)
"""What reaching the queue's store may raise (Redis, or the embedded SQLite file)."""

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

FAILURE_REASONS = frozenset(
    {"exit", "timeout", "stalled", "ram", "not_started", "agent_error", "lost"}
)
"""The failure reasons counted by name; an agent's own codes count as ``other`` (any agent may
send one: a label each would let it grow the metrics without bound)."""

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: a heartbeat takes about a millisecond, a large job's submission seconds."""


@attrs.define
class _Process:
    """What this process measures with: one set of metrics, one directory (see the module's
    docstring: prometheus_client's multiprocess mode is per process)."""

    directory: Path | None = None
    instruments: _Instruments | None = None
    lock: threading.Lock = attrs.Factory(threading.Lock)


_PROCESS = _Process()


def shared_directory(directory: Path) -> Path:
    """The directory this process counts in: ``directory`` if it is the first asked for (it is
    made and named in ``PROMETHEUS_MULTIPROC_DIR``), else the one chosen first."""
    with _PROCESS.lock:
        if _PROCESS.directory is None:
            directory.mkdir(parents=True, exist_ok=True)
            os.environ[MULTIPROCESS_ENV] = str(directory)
            # prometheus_client read the variable as it was imported (perhaps before it was
            # set here); no metric exists yet, so choosing again is safe.
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
            _PROCESS.directory = directory
        return _PROCESS.directory


def _instruments() -> _Instruments:
    with _PROCESS.lock:
        if _PROCESS.instruments is None:
            if _PROCESS.directory is None:
                raise RuntimeError("shared_directory() comes first")
            _PROCESS.instruments = _Instruments()
        return _PROCESS.instruments


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another account's process: running
    return True


def _pid_of(path: Path) -> int | None:
    """``counter_1234.db`` -> 1234 (prometheus_client's file names end in the pid)."""
    digits = path.stem.rpartition("_")[2]
    return int(digits) if digits.isdigit() else None


def remove_dead_processes(directory: Path) -> int:
    """Remove the metric files of processes that no longer run (``farm serve`` starting), and
    the directories of ``farm worker --metrics-port`` processes that no longer run; returns
    how many files. A ``farm worker`` running on the host keeps its own."""
    removed = 0
    if not directory.is_dir():
        return 0
    for path in directory.glob("*.db"):
        pid = _pid_of(path)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            path.unlink(missing_ok=True)
            removed += 1
    _remove_dead_workers(directory)
    return removed


WORKER_DIRECTORY_PREFIX = "worker-"


def worker_directory(host_directory: Path) -> Path:
    """Where a ``farm worker`` that serves its own ``/metrics`` counts: ``worker-<pid>`` in the
    host's directory, emptied (a process of the same id left it), after removing those of
    such workers no longer running.

    A master's scrape reads the files of the host's directory, not those of its
    subdirectories: each count is served once, by the master or by the worker's own port,
    whether or not the worker shares the master's host and data directory."""
    _remove_dead_workers(host_directory)
    directory = host_directory / f"{WORKER_DIRECTORY_PREFIX}{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    return directory


def _remove_dead_workers(host_directory: Path) -> None:
    for path in host_directory.glob(f"{WORKER_DIRECTORY_PREFIX}*"):
        digits = path.name.removeprefix(WORKER_DIRECTORY_PREFIX)
        if digits.isdigit() and int(digits) != os.getpid() and not _alive(int(digits)):
            shutil.rmtree(path, ignore_errors=True)


class _Instruments:
    """This process's metrics (never registered: a scrape reads every process's files)."""

    def __init__(self) -> None:
        self.assignments = Counter(
            "farm_assignments_total", "Tasks claimed for agents", registry=None
        )
        self.dispatch = Counter(
            "farm_dispatch_total",
            "Agents' answers to the batches sent to them",
            ["outcome"],
            registry=None,
        )
        self.requeues = Counter(
            "farm_task_requeues_total", "Tasks put back in the queue", ["reason"], registry=None
        )
        self.failures = Counter(
            "farm_task_failures_total", "Tasks' failed attempts", ["reason"], registry=None
        )
        self.stale_reports = Counter(
            "farm_stale_reports_total",
            "Task reports refused because another attempt or agent owns the task "
            "(stays at zero on a healthy farm)",
            registry=None,
        )
        self.double_assignments = Counter(
            "farm_double_assignments_total",
            "Tasks found running on an agent at the attempt another agent holds (must stay 0)",
            registry=None,
        )
        self.requests = Counter(
            "farm_http_requests_total",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=None,
        )
        self.durations = Histogram(
            "farm_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=None,
        )
        self.pool_size = Gauge(
            "farm_db_pool_connections",
            "Database connections the master's processes may hold (pool and overflow)",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.pool_in_use = Gauge(
            "farm_db_pool_connections_in_use",
            "Database connections checked out of the master's pools now",
            registry=None,
            multiprocess_mode="livesum",
        )
        # Each labelled child once: .labels() costs more than the count itself.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        for outcome in ("accepted", "refused", "conflict", "busy", "unreachable"):
            self.dispatch.labels(outcome)
        for reason in REQUEUE_REASONS:
            self.requeues.labels(reason)
        for reason in FAILURE_REASONS:
            self.failures.labels(reason)

    def request(self, route: str, method: str, status: int) -> tuple[Any, Any]:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.durations.labels(route, method),
            )
            self._request_children[key] = children
        return children


class PrometheusCounters:
    """The domain's ``Counters``, as this process's share of the multiprocess counters."""

    def __init__(self) -> None:
        self._metrics = _instruments()

    def assigned(self, tasks: int) -> None:
        self._metrics.assignments.inc(tasks)

    def dispatched(self, outcome: str) -> None:
        self._metrics.dispatch.labels(outcome).inc()

    def requeued(self, reason: str, tasks: int = 1) -> None:
        if tasks:
            self._metrics.requeues.labels(reason).inc(tasks)

    def failed(self, reason: str) -> None:
        self._metrics.failures.labels(reason if reason in FAILURE_REASONS else "other").inc()

    def stale_report(self) -> None:
        self._metrics.stale_reports.inc()

    def double_assignment(self, tasks: int) -> None:
        self._metrics.double_assignments.inc(tasks)


def watch_pool(engine: Engine, size: int) -> None:
    """Count the engine's connections in use (checked out) and its size in the metrics."""
    metrics = _instruments()
    metrics.pool_size.inc(size)
    in_use = metrics.pool_in_use

    @event.listens_for(engine, "checkout")
    def _checkout(*args: object) -> None:
        in_use.inc()

    @event.listens_for(engine, "checkin")
    def _checkin(*args: object) -> None:
        in_use.dec()


class FarmStateCollector(Collector):
    """The farm's state as stored, read at each scrape (one grouped COUNT per family)."""

    def __init__(self, engine: Engine, huey: Huey, clock: Clock) -> None:
        self._engine = engine
        self._huey = huey
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "farm_up", "Whether the master reached its database and its queue", labels=["store"]
        )
        try:
            yield from self._stored()
            up.add_metric(["database"], 1)
        except DATABASE_ERRORS as error:  # a scrape reports what it cannot read, and goes on
            log.warning("metrics: database unreadable", extra={"error": str(error)})
            up.add_metric(["database"], 0)
        backlog = GaugeMetricFamily(
            "farm_queue_backlog", "Jobs waiting in the queue for a consumer"
        )
        try:
            backlog.add_metric([], self._huey.pending_count())
            yield backlog
            up.add_metric(["queue"], 1)
        except QUEUE_ERRORS as error:
            log.warning("metrics: queue unreadable", extra={"error": str(error)})
            up.add_metric(["queue"], 0)
        yield up

    def _stored(self) -> Iterator[Metric]:
        now = self._clock.now()
        with self._engine.connect() as connection:
            agent_rows = connection.execute(
                sa.select(agents.c.state, agents.c.disabled, sa.func.count()).group_by(
                    agents.c.state, agents.c.disabled
                )
            ).all()
            oldest = connection.execute(
                sa.select(sa.func.min(agents.c.last_heard_from)).where(
                    agents.c.state != AgentState.OFFLINE.label
                )
            ).scalar()
            task_rows = connection.execute(
                sa.select(tasks.c.state, tasks.c.agent_id.is_(None), sa.func.count())
                .where(tasks.c.hidden.is_(False))
                .group_by(tasks.c.state, tasks.c.agent_id.is_(None))
            ).all()
            job_rows = connection.execute(
                sa.select(jobs.c.state, sa.func.count())
                .where(JOB_IS_VISIBLE)
                .group_by(jobs.c.state)
            ).all()
        yield _family(
            "farm_agents",
            "Agents by state (disabled ones as disabled, whatever else they are)",
            [state.label for state in AgentState],
            (
                (AgentState.DISABLED.label if disabled else state, count)
                for state, disabled, count in agent_rows
            ),
        )
        age = GaugeMetricFamily(
            "farm_agent_heartbeat_age_seconds_max",
            "Seconds since the agent not offline heard from longest ago (0: none)",
        )
        age.add_metric(
            [], 0.0 if oldest is None else max(0.0, (now - _utc(oldest)).total_seconds())
        )
        yield age
        yield _family(
            "farm_tasks",
            "Tasks by state (queued: waiting for an agent; assigned: given one, not running yet)",
            ["queued", "assigned", *(state.value for state in WorkState)],
            (
                (state or ("queued" if unassigned else "assigned"), count)
                for state, unassigned, count in task_rows
            ),
        )
        yield _family(
            "farm_jobs",
            "Jobs by state",
            ["queued", *(state.value for state in WorkState)],
            ((state or "queued", count) for state, count in job_rows),
        )


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _family(
    name: str, documentation: str, states: list[str], counts: Iterable[tuple[str, int]]
) -> GaugeMetricFamily:
    """A gauge per state: every known state, 0 when there is none in it."""
    totals = dict.fromkeys(states, 0)
    for state, count in counts:
        totals[state] = totals.get(state, 0) + count
    family = GaugeMetricFamily(name, documentation, labels=["state"])
    for state, count in totals.items():
        family.add_metric([state], count)
    return family


class _LiveFilesCollector(MultiProcessCollector):
    """Every process's counts, less the live gauges of processes that died without saying so
    (a web worker killed and respawned): their connections are not in use any more."""

    def collect(self) -> Iterable[Metric]:
        files = []
        for path in Path(self._path).glob("*.db"):
            if path.name.startswith("gauge_live"):
                pid = _pid_of(path)
                if pid is not None and not _alive(pid):
                    continue
            files.append(str(path))
        merged: Iterable[Metric] = self.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        return merged


class PrometheusMetrics:
    """The ``MetricsSource``: this process's counts go to the shared directory; a scrape reads
    every process's, and the farm's state from the database and the queue."""

    def __init__(self, engine: Engine, huey: Huey, clock: Clock) -> None:
        self._metrics = _instruments()
        directory = _PROCESS.directory
        assert directory is not None  # _instruments() needs it
        self._registry = CollectorRegistry(auto_describe=False)
        _LiveFilesCollector(self._registry, path=str(directory))  # type: ignore[no-untyped-call]
        self._registry.register(FarmStateCollector(engine, huey, clock))

    def exposition(self, accept: str | None) -> Exposition:
        encoder, content_type = choose_encoder(accept or "")
        return Exposition(encoder(self._registry), content_type)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        count, duration = self._metrics.request(route, method, status)
        count.inc()
        duration.observe(seconds)


class MetricsPortUnavailable(Exception):
    """The worker's metrics cannot be served at the address and port asked for."""


class WorkerMetricsServer:
    """``GET /metrics`` of a ``farm worker`` (prometheus_client's own server, on a thread):
    the counts in ``directory`` (this process's, see ``worker_directory``), never the farm's
    state (the master's ``/metrics`` serves that once for the whole farm)."""

    def __init__(self, directory: Path, address: str, port: int) -> None:
        self._directory = directory
        registry = CollectorRegistry(auto_describe=False)
        _LiveFilesCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
        try:
            self._server, self._thread = start_http_server(port, address, registry)
        except OSError as error:
            shutil.rmtree(directory, ignore_errors=True)
            raise MetricsPortUnavailable(
                f"cannot serve metrics on {_host_port(address, port)}: {error.strerror or error}"
            ) from None
        self.url = f"http://{_host_port(address, port)}/metrics"

    def close(self) -> None:
        """Stop serving, and remove the counts that nothing will serve again."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        shutil.rmtree(self._directory, ignore_errors=True)


def _host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class Readiness:
    """The ``ReadinessProbe``: the database answers at the newest schema, the queue answers."""

    def __init__(self, engine: Engine, huey: Huey) -> None:
        self._engine = engine
        self._huey = huey
        self._head: str | None = None

    def problems(self) -> list[str]:
        problems = []
        started = time.monotonic()
        try:
            current = schema_migrations.current_revision(self._engine)
        except DATABASE_ERRORS as error:
            problems.append(f"database unreachable: {_first_line(error)}")
        else:
            if self._head is None:
                self._head = schema_migrations.head_revision()
            if current != self._head:
                problems.append(
                    f"database schema at {current or 'none'}, not {self._head}: "
                    "run `farm db upgrade`"
                )
        try:
            self._huey.pending_count()
        except QUEUE_ERRORS as error:
            problems.append(f"queue unreachable: {_first_line(error)}")
        if problems:
            log.warning(
                "not ready",
                extra={"problems": problems, "seconds": round(time.monotonic() - started, 3)},
            )
        return problems


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
