"""The Huey adapter: the TaskQueue port, its consumer-side jobs, and the embedded consumer."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from farm_domain.dispatch import Dispatcher

log = logging.getLogger("farm.queue")


def create_huey(url: str, name: str = "farm") -> Huey:
    """A Huey for ``url``: ``sqlite:///path``, ``redis://host:port/db`` or ``immediate``.

    ``immediate`` runs each job synchronously when it is enqueued (tests, debugging).
    """
    if url == "immediate":
        return MemoryHuey(name, immediate=True, results=False)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path), results=False)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(name, url=url, results=False)
    raise ValueError(f"unsupported queue URL {url!r}: use sqlite:///, redis:// or immediate")


@attrs.frozen
class QueueJobs:
    """The Huey task wrappers, registered on one Huey instance under stable names."""

    assign_tasks: Callable[..., object]
    assign_tasks_to_agent: Callable[..., object]
    send_tasks_to_agent: Callable[..., object]
    update_agent: Callable[..., object]
    stop_tasks: Callable[..., object]


def register_jobs(huey: Huey, dispatcher: Callable[[], Dispatcher]) -> QueueJobs:
    """Register the farm's jobs on ``huey``. Each receives ids only and calls one service."""

    @huey.task(name="farm.assign_tasks")
    def assign_tasks() -> None:
        dispatcher().assign_tasks()

    @huey.task(name="farm.assign_tasks_to_agent")
    def assign_tasks_to_agent(agent_id: str) -> None:
        dispatcher().assign_tasks_to_agent(uuid.UUID(agent_id))

    @huey.task(name="farm.send_tasks_to_agent")
    def send_tasks_to_agent(agent_id: str) -> None:
        dispatcher().send_tasks_to_agent(uuid.UUID(agent_id))

    @huey.task(name="farm.update_agent")
    def update_agent(agent_id: str) -> None:
        dispatcher().update_agent(uuid.UUID(agent_id))

    @huey.task(name="farm.stop_tasks")
    def stop_tasks(host: str, port: int, task_ids: list[int]) -> None:
        dispatcher().stop_tasks(host, port, task_ids)

    return QueueJobs(assign_tasks, assign_tasks_to_agent, send_tasks_to_agent, update_agent,
                     stop_tasks)


class HueyTaskQueue:
    """The TaskQueue port over Huey. Called after the commit; a failure to enqueue is logged,
    not raised: the request's change is already committed, and periodic sweeps catch up."""

    def __init__(self, jobs: QueueJobs) -> None:
        self._jobs = jobs

    def _enqueue(self, job: Callable[..., object], *args: object) -> None:
        try:
            job(*args)
        except Exception:  # the queue backend being down must not fail a committed request
            log.exception("could not enqueue", extra={"job": getattr(job, "name", str(job))})

    def assign_tasks(self) -> None:
        self._enqueue(self._jobs.assign_tasks)

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self._enqueue(self._jobs.assign_tasks_to_agent, str(agent_id))

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self._enqueue(self._jobs.send_tasks_to_agent, str(agent_id))

    def update_agent(self, agent_id: uuid.UUID) -> None:
        self._enqueue(self._jobs.update_agent, str(agent_id))

    def stop_tasks(self, host: str, port: int, task_ids: Sequence[int]) -> None:
        self._enqueue(self._jobs.stop_tasks, host, port, list(task_ids))


class EmbeddedConsumer(Consumer):
    """A Huey consumer that runs in threads of another program (``farm serve``).

    The stock consumer installs signal handlers, which only the main thread may do; the host
    program owns the signals and calls ``stop`` itself.
    """

    def _set_signal_handlers(self) -> None:
        pass


def start_embedded_consumer(huey: Huey, workers: int = 2) -> EmbeddedConsumer:
    consumer = EmbeddedConsumer(huey, workers=workers, worker_type="thread", periodic=True)
    consumer.start()
    return consumer


def run_consumer(huey: Huey, workers: int) -> None:
    """Consume the queue in this process's main thread until SIGINT/SIGTERM (``farm worker``)."""
    Consumer(huey, workers=workers, worker_type="thread").run()
