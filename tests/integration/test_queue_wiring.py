"""Enqueue after commit → a real consumer → the service: on SQLite-Huey, Redis-Huey, immediate."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest
from huey import Huey

from farm_adapters.batching import AT_ONCE
from farm_adapters.composition import Runtime, build_runtime
from farm_adapters.queue import (
    DispatchService,
    HueyTaskQueue,
    QueueJobs,
    create_huey,
    register_jobs,
    start_embedded_consumer,
)
from farm_adapters.settings import Settings
from farm_domain.agents import AgentChanges
from tests.support.databases import REDIS_URL, needs_redis
from tests.support.fakes.collaborators import RecordingDispatcher
from tests.support.identities import ADMIN

DEFAULTS = Settings.load({})


def jobs_on(
    huey: Huey, dispatcher: DispatchService, *, watch_every_seconds: float | None = None
) -> QueueJobs:
    """The farm's jobs on ``huey`` with the default intervals (or a faster liveness tick)."""
    return register_jobs(
        huey,
        lambda: dispatcher,
        assign_every_minutes=DEFAULTS.assign_interval_minutes,
        watch_every_seconds=watch_every_seconds or DEFAULTS.watch_interval_seconds,
    )


class WaitingDispatcher(RecordingDispatcher):
    """Records what ran and lets a test wait until a number of jobs have run."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()

    def _record(self, entry: tuple[str, tuple[object, ...]]) -> None:
        with self._changed:
            self.ran.append(entry)
            self._changed.notify_all()

    def assign_tasks(self) -> None:
        self._record(("assign_tasks", ()))

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self._record(("assign_tasks_to_agent", (agent_id,)))

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self._record(("send_tasks_to_agent", (agent_id,)))

    def update_agent(self, agent_id: uuid.UUID) -> None:
        self._record(("update_agent", (agent_id,)))

    def stop_tasks(
        self, agent_id: uuid.UUID, host: str, port: int, task_ids: Sequence[int]
    ) -> None:
        self._record(("stop_tasks", (agent_id, host, port, tuple(task_ids))))

    def watch_agents(self) -> None:
        self._record(("watch_agents", ()))

    def wait_for(self, count: int, timeout: float = 15) -> list[tuple[str, tuple[object, ...]]]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.ran) >= count, timeout), self.ran
            return list(self.ran)


def queue_urls() -> list[object]:
    return [
        "sqlite",
        pytest.param("redis", marks=[needs_redis, pytest.mark.redis]),
    ]


@pytest.fixture(params=queue_urls())
def queue_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    assert REDIS_URL
    return REDIS_URL


def test_every_job_reaches_the_service_through_a_real_consumer(queue_url: str) -> None:
    huey = create_huey(queue_url, name=f"farm-test-{uuid.uuid4().hex}")
    dispatcher = WaitingDispatcher()
    queue = HueyTaskQueue(jobs_on(huey, dispatcher))
    consumer = start_embedded_consumer(huey, workers=1, periodic=False)
    try:
        agent_id = uuid.uuid4()
        queue.update_agent(agent_id)
        queue.send_tasks_to_agent(agent_id)
        queue.stop_tasks(agent_id, "127.0.0.1", 50000, [1, 2])
        queue.assign_tasks_to_agent(agent_id)
        queue.assign_tasks()
        ran = dispatcher.wait_for(5)
    finally:
        consumer.stop(graceful=True)
        huey.storage.flush_queue()
    assert sorted(ran, key=str) == sorted(
        [
            ("update_agent", (agent_id,)),
            ("send_tasks_to_agent", (agent_id,)),
            ("stop_tasks", (agent_id, "127.0.0.1", 50000, (1, 2))),
            ("assign_tasks_to_agent", (agent_id,)),
            ("assign_tasks", ()),
        ],
        key=str,
    )


@pytest.fixture
def embedded_runtime(sqlite_url: str, tmp_path) -> Iterator[tuple[object, WaitingDispatcher]]:
    settings = Settings.load(
        {
            "FARM_DATA_DIR": str(tmp_path),
            "FARM_DATABASE_URL": sqlite_url,
            "FARM_QUEUE_URL": f"sqlite:///{tmp_path / 'queue.db'}",
        }
    )
    dispatcher = WaitingDispatcher()
    # A stand-in for the Dispatcher: the test uses it, never runtime.dispatcher.
    runtime = build_runtime(settings, dispatcher=dispatcher)  # type: ignore[arg-type]  # a stand-in dispatcher
    consumer = start_embedded_consumer(runtime.huey, workers=1, periodic=False)
    yield runtime, dispatcher
    consumer.stop(graceful=True)
    runtime.close()


def test_an_announce_is_followed_by_the_consumer_calling_the_service(embedded_runtime) -> None:
    runtime, dispatcher = embedded_runtime
    agent_id = uuid.uuid4()
    runtime.farm.agents.announce(
        ADMIN,
        AgentChanges(id=str(agent_id), hostname="n", ram=64, free_ram=1, cpus=1, port=2000),
        "127.0.0.1",
    )
    assert dispatcher.wait_for(1) == [("assign_tasks_to_agent", (agent_id,))]


def test_in_immediate_mode_the_job_runs_after_the_commit(sqlite_url: str, tmp_path) -> None:
    seen: list[object] = []

    class Checking(RecordingDispatcher):
        def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
            # Runs synchronously inside announce(): the agent must already be committed.
            seen.append(runtime.farm.agents.get(ADMIN, agent_id).hostname)

    settings = Settings.load(
        {
            "FARM_DATA_DIR": str(tmp_path),
            "FARM_DATABASE_URL": sqlite_url,
            "FARM_QUEUE_URL": "immediate",
        }
    )
    # A stand-in for the Dispatcher: the test never uses runtime.dispatcher.
    runtime = build_runtime(settings, dispatcher=Checking())  # type: ignore[arg-type]  # a stand-in dispatcher
    try:
        runtime.farm.agents.announce(
            ADMIN,
            AgentChanges(
                id=str(uuid.uuid4()), hostname="seen", ram=64, free_ram=1, cpus=1, port=2000
            ),
            None,
        )
    finally:
        runtime.close()
    assert seen == ["seen"]


def test_a_queue_that_is_down_does_not_fail_a_committed_request(sqlite_url: str, tmp_path) -> None:
    settings = Settings.load(
        {
            "FARM_DATA_DIR": str(tmp_path),
            "FARM_DATABASE_URL": sqlite_url,
            "FARM_QUEUE_URL": "redis://127.0.0.1:1/0",
        }
    )
    runtime = build_runtime(settings)
    try:
        agent_id = uuid.uuid4()
        runtime.farm.agents.announce(
            ADMIN,
            AgentChanges(id=str(agent_id), hostname="n", ram=64, free_ram=1, cpus=1, port=2000),
            None,
        )
        assert runtime.farm.agents.get(ADMIN, agent_id).hostname == "n"
    finally:
        runtime.close()


def test_periodic_sweeps_are_registered_and_call_the_service() -> None:
    huey = create_huey("immediate", name=f"farm-test-{uuid.uuid4().hex}")
    dispatcher = RecordingDispatcher()
    register_jobs(huey, lambda: dispatcher, assign_every_minutes=4, watch_every_seconds=30)
    minute_zero = datetime(2026, 1, 1, 12, 0)

    def due(at: datetime) -> dict[str, object]:
        return {task.name: task for task in huey.read_periodic(at)}

    assert set(due(minute_zero)) == {"farm.watch_agents", "farm.assign_sweep"}
    assert set(due(minute_zero.replace(minute=1))) == {"farm.watch_agents"}
    huey.execute(due(minute_zero)["farm.assign_sweep"])
    assert dispatcher.ran == [("assign_tasks", ())]


def test_identical_pending_jobs_are_coalesced(tmp_path) -> None:
    huey = create_huey(f"sqlite:///{tmp_path / 'queue.db'}", name="coalesce")
    dispatcher = WaitingDispatcher()
    queue = HueyTaskQueue(jobs_on(huey, dispatcher))
    agent_id = uuid.uuid4()
    for _ in range(5):
        queue.assign_tasks()
        queue.assign_tasks_to_agent(agent_id)
        queue.send_tasks_to_agent(agent_id)
    assert huey.pending_count() == 3
    consumer = start_embedded_consumer(huey, workers=1, periodic=False)
    try:
        dispatcher.wait_for(3)
        queue.assign_tasks()  # a request after the job started is not lost
        assert len(dispatcher.wait_for(4)) == 4
    finally:
        consumer.stop(graceful=True)


def test_the_liveness_sweep_chains_itself_once_however_often_started(tmp_path) -> None:
    from farm_adapters.queue import start_watching

    huey = create_huey(f"sqlite:///{tmp_path / 'queue.db'}", name="watch")
    dispatcher = WaitingDispatcher()
    jobs = jobs_on(huey, dispatcher, watch_every_seconds=0.2)
    start_watching(jobs)
    start_watching(jobs)
    assert huey.pending_count() == 1
    consumer = start_embedded_consumer(huey, workers=2, periodic=False)
    try:
        ran = dispatcher.wait_for(3)
    finally:
        consumer.stop(graceful=True)
    assert set(ran) == {("watch_agents", ())}
    assert huey.pending_count() + huey.scheduled_count() <= 1  # still one chain


def web_worker_runtime(sqlite_url: str, tmp_path: Path) -> Runtime:
    """As a web worker has it, with no consumer running: what waits in the queue stays there."""
    settings = Settings.load(
        {
            "FARM_DATA_DIR": str(tmp_path),
            "FARM_DATABASE_URL": sqlite_url,
            "FARM_QUEUE_URL": f"sqlite:///{tmp_path / 'queue.db'}",
        }
    )
    return build_runtime(settings, dispatcher=WaitingDispatcher(), batching=True)  # type: ignore[arg-type]  # a stand-in dispatcher


def test_online_heartbeats_of_many_idle_agents_leave_few_passes_pending(
    sqlite_url: str, tmp_path
) -> None:
    runtime = web_worker_runtime(sqlite_url, tmp_path)
    assert runtime.flusher is not None
    try:
        agents = [uuid.uuid4() for _ in range(4 * AT_ONCE)]
        for agent_id in agents:
            runtime.farm.agents.announce(
                ADMIN,
                AgentChanges(id=str(agent_id), hostname="n", ram=64, free_ram=1, cpus=1, port=2000),
                "127.0.0.1",
            )
        for free_ram in range(2, 7):
            for agent_id in agents:
                runtime.farm.agents.update(
                    ADMIN, agent_id, AgentChanges(state="online", free_ram=free_ram)
                )
            # An interval's first AT_ONCE agents went at once; the others wait for its end,
            # and then go as one global pass, which the queue keeps once however often asked.
            assert runtime.huey.pending_count() <= AT_ONCE + 1
            runtime.flusher.flush_now()
        # 4 * AT_ONCE announces and 5 heartbeats each: before, one job per agent.
        pending = [task.name for task in runtime.huey.pending()]
        assert pending.count("farm.assign_tasks_to_agent") == AT_ONCE
        assert pending.count("farm.assign_tasks") == 1
    finally:
        runtime.close()


def test_many_online_heartbeats_of_one_idle_agent_leave_one_pass_pending(
    sqlite_url: str, tmp_path
) -> None:
    runtime = web_worker_runtime(sqlite_url, tmp_path)
    assert runtime.flusher is not None
    try:
        agent_id = uuid.uuid4()
        runtime.farm.agents.announce(
            ADMIN,
            AgentChanges(id=str(agent_id), hostname="n", ram=64, free_ram=1, cpus=1, port=2000),
            "127.0.0.1",
        )
        for free_ram in range(2, 50):
            runtime.farm.agents.update(
                ADMIN, agent_id, AgentChanges(state="online", free_ram=free_ram)
            )
            if free_ram % 10 == 0:
                runtime.flusher.flush_now()
        runtime.flusher.flush_now()
        assert [task.name for task in runtime.huey.pending()] == ["farm.assign_tasks_to_agent"]
        assert runtime.farm.agents.get(ADMIN, agent_id).free_ram == 49
    finally:
        runtime.close()


def test_a_later_assignment_pass_runs_when_its_time_comes_and_requests_coalesce(
    queue_url: str,
) -> None:
    """A retry back-off's pass: scheduled on the queue (one per second however many ask),
    run by the consumer's scheduler once due, not before."""
    huey = create_huey(queue_url, name=f"farm-test-{uuid.uuid4().hex}")
    dispatcher = WaitingDispatcher()
    queue = HueyTaskQueue(jobs_on(huey, dispatcher))
    try:
        for _ in range(5):
            queue.assign_tasks_later(1.5)
        # Huey queues it with its time; the consumer moves it to its schedule.
        assert huey.pending_count() + huey.scheduled_count() == 1
        consumer = start_embedded_consumer(huey, workers=1, periodic=False)
        try:
            assert dispatcher.ran == []
            assert dispatcher.wait_for(1) == [("assign_tasks", ())]
        finally:
            consumer.stop(graceful=True)
        queue.assign_tasks_later(60)  # its mark was cleared as it ran: a new pass is taken
        assert huey.pending_count() + huey.scheduled_count() == 1
    finally:
        huey.storage.flush_all()
