"""The master's app in-process on a real queue with a real consumer, on either backend.

``embedded`` is what ``farm serve`` runs by default: SQLite, and a SQLite Huey queue consumed by
threads of the master. ``scale-out`` is PostgreSQL and a Redis Huey queue consumed elsewhere (by
``farm worker``), each test on its own queue name. Either way the consumer is a second runtime,
as ``farm serve`` and ``farm worker`` build it, with the real agent client; agents are fake
render nodes on loopback.

Every request waits, before it answers the test, until the jobs it caused (and the jobs those
caused) have run: the consumer acts between any two requests, as a ``farm worker`` that picks a
job up within milliseconds does. The recording-queue harness (``http_harness``) is the other
extreme, a consumer that never comes; behaviour that holds at both extremes does not depend on
how fast the queue is. The consumer shares the test's clock, so a test that moves time moves it
for the consumer too.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import falcon.testing
import pytest
from huey import signals
from huey.api import Huey

from farm_adapters.composition import Runtime, build_runtime
from farm_adapters.queue import EmbeddedConsumer, HueyTaskQueue
from farm_adapters.settings import Settings
from farm_adapters.sql.engine import create_database_engine
from farm_domain.ports import TaskQueue
from farm_http import HttpOptions, create_app
from tests.support.databases import REDIS_URL, empty_tables, needs_redis
from tests.support.fake_agent import FakeAgent
from tests.support.fakes.collaborators import FixedClock, RecordingQueue, ScriptedAgentClient
from tests.support.http_harness import TEST_HOST, Harness

SETTLE_SECONDS = 30
"""How long a request may keep the consumer busy before the test fails."""


@attrs.frozen
class Backend:
    """Where a master keeps its rows and its queue."""

    name: str
    database_url: str
    queue_url: str
    queue_name: str


def backend_params() -> list[Any]:
    """The two backends as fixture parameters: PostgreSQL + Redis is marked as the other
    PostgreSQL and Redis tests are, and skipped without them."""
    return [
        "embedded",
        pytest.param("scale-out", marks=[pytest.mark.postgres, pytest.mark.redis, needs_redis]),
    ]


def backend_for(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Backend:
    """The backend ``name`` on fresh storage (``request`` reaches the database fixtures)."""
    queue_name = f"farm-test-{uuid.uuid4().hex[:12]}"
    if name == "embedded":
        database: str = request.getfixturevalue("sqlite_url")
        return Backend(name, database, f"sqlite:///{tmp_path / 'queue.db'}", queue_name)
    database = request.getfixturevalue("postgres_database_url")
    engine = create_database_engine(database)
    empty_tables(engine)
    engine.dispose()
    assert REDIS_URL
    return Backend(name, database, REDIS_URL, queue_name)


class Outstanding:
    """The queue's jobs enqueued to run now and not yet run, by Huey task id, across the
    producers' and the consumer's Huey instances (the consumer enqueues too)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._changed = threading.Condition()
        self.errors: list[str] = []
        """The jobs that raised, as ``name: error``: a job that fails is a failure of the test."""

    def watch_producer(self, huey: Huey) -> None:
        huey.signal(signals.SIGNAL_ENQUEUED)(self._enqueued)

    def watch_consumer(self, huey: Huey) -> None:
        self.watch_producer(huey)
        huey.post_execute()(self._ran)
        huey.signal(signals.SIGNAL_ERROR)(self._failed)
        huey.signal(
            signals.SIGNAL_REVOKED,
            signals.SIGNAL_EXPIRED,
            signals.SIGNAL_CANCELED,
            signals.SIGNAL_INTERRUPTED,
        )(self._dropped)

    def _enqueued(self, signal: str, task: Any, *args: object) -> None:
        if task.eta is not None:
            return  # a job for later (a delay, a retry): not what the request is waiting for
        with self._changed:
            self._ids.add(task.id)

    def _ran(self, task: Any, value: object, error: object) -> None:
        with self._changed:
            self._ids.discard(task.id)
            self._changed.notify_all()

    def _failed(self, signal: str, task: Any, error: BaseException) -> None:
        self.errors.append(f"{task.name}: {error!r}")

    def _dropped(self, signal: str, task: Any, *args: object) -> None:
        self._ran(task, None, None)

    def wait(self, timeout: float = SETTLE_SECONDS) -> None:
        with self._changed:
            settled = self._changed.wait_for(lambda: not self._ids, timeout)
            assert settled, f"the queue did not settle within {timeout}s: {self._ids}"


class ForwardingQueue(RecordingQueue):
    """Records each job as ``RecordingQueue`` does, then enqueues it for real."""

    def __init__(self) -> None:
        super().__init__()
        self.real: TaskQueue | None = None

    def _real(self) -> TaskQueue:
        assert self.real is not None
        return self.real

    def assign_tasks(self) -> None:
        super().assign_tasks()
        self._real().assign_tasks()

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        super().assign_tasks_to_agent(agent_id)
        self._real().assign_tasks_to_agent(agent_id)

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        super().send_tasks_to_agent(agent_id)
        self._real().send_tasks_to_agent(agent_id)

    def update_agent(self, agent_id: uuid.UUID) -> None:
        super().update_agent(agent_id)
        self._real().update_agent(agent_id)

    def stop_tasks(
        self, agent_id: uuid.UUID, host: str, port: int, task_ids: Sequence[int]
    ) -> None:
        super().stop_tasks(agent_id, host, port, task_ids)
        self._real().stop_tasks(agent_id, host, port, task_ids)


class SettlingClient(falcon.testing.TestClient):
    """A test client whose every request returns once the queue has settled."""

    def __init__(self, app: Any, outstanding: Outstanding) -> None:
        super().__init__(app)
        self._outstanding = outstanding

    def simulate_request(self, *args: Any, **kwargs: Any) -> falcon.testing.Result:
        result = super().simulate_request(*args, **kwargs)
        self._outstanding.wait()
        return result


class LiveHarness(Harness):
    """A ``Harness`` on a real queue and consumer; announced agents are a fake render node."""

    def __init__(
        self,
        backend: Backend,
        runtime: Runtime,
        queue: ForwardingQueue,
        clock: FixedClock,
        client: SettlingClient,
        agent: FakeAgent,
        outstanding: Outstanding,
    ) -> None:
        super().__init__(runtime, queue, clock, client)
        self.backend = backend
        self.agent = agent
        self.agent_port = agent.port
        self.outstanding = outstanding


def make_live_harness(backend: Backend, tmp_path: Path, **env: str) -> Iterator[LiveHarness]:
    """Yields a harness on ``backend`` (its database migrated) with its consumer running, and
    stops both after."""
    settings = Settings.load(
        {
            "FARM_DATA_DIR": str(tmp_path),
            "FARM_DATABASE_URL": backend.database_url,
            "FARM_QUEUE_URL": backend.queue_url,
            "FARM_QUEUE_NAME": backend.queue_name,
            "FARM_PERIODIC": "false",
            "FARM_AGENT_RETRY_DELAY": "0.05",
            "FARM_ANONYMOUS_NETWORKS": "127.0.0.0/8",
            "FARM_ANONYMOUS_ROLE": "admin",
            "FARM_ALLOWED_HOSTS": f"{TEST_HOST},localhost",
            **env,
        }
    )
    clock, outstanding, agent = FixedClock(), Outstanding(), FakeAgent()
    with contextlib.ExitStack() as stack:
        stack.callback(agent.close)
        # The consumer's runtime, as `farm serve` (embedded) or `farm worker` builds it.
        consumer_runtime = build_runtime(settings, clock=clock)
        stack.callback(consumer_runtime.close)
        outstanding.watch_consumer(consumer_runtime.huey)
        consumer = EmbeddedConsumer(
            consumer_runtime.huey,
            workers=settings.queue_workers,
            worker_type="thread",
            periodic=False,
            # Polling the SQLite queue often keeps each request's wait short; Redis blocks.
            initial_delay=0.01,
            max_delay=0.02,
        )
        stack.callback(consumer_runtime.huey.storage.flush_all)
        consumer.start()
        stack.callback(consumer.stop)
        # A web worker's runtime: it only enqueues, and calls no agent (checked after the
        # test; a stand-in client spares building a second real one, TLS context and all).
        queue, no_calls = ForwardingQueue(), ScriptedAgentClient()
        runtime = build_runtime(settings, queue=queue, clock=clock, client=no_calls, pre_ping=False)
        stack.callback(runtime.close)
        queue.real = HueyTaskQueue(runtime.jobs)
        outstanding.watch_producer(runtime.huey)
        app = create_app(runtime.farm, HttpOptions.of(settings))
        yield LiveHarness(
            backend, runtime, queue, clock, SettlingClient(app, outstanding), agent, outstanding
        )
        outstanding.wait()
        assert no_calls.calls == [], "a web worker called an agent itself"
        assert outstanding.errors == [], "the queue's consumer failed"
