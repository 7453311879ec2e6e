"""The Huey adapter: the TaskQueue port, its consumer-side jobs, and the embedded consumer."""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, Protocol

import attrs
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer

log = logging.getLogger("farm.queue")

Params = ParamSpec("Params")


class QueueJob(Protocol[Params]):
    """A function registered on Huey: calling it enqueues the call."""

    def __call__(self, *args: Params.args, **kwargs: Params.kwargs) -> object: ...

    def schedule(self, args: tuple[object, ...] | None = None, *, delay: float) -> object: ...


class DispatchService(Protocol):
    """What the queue's jobs call: the Dispatcher, whose results they ignore."""

    def assign_tasks(self) -> object: ...

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> object: ...

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> object: ...

    def update_agent(self, agent_id: uuid.UUID) -> object: ...

    def stop_tasks(
        self, agent_id: uuid.UUID, host: str, port: int, task_ids: Sequence[int]
    ) -> object: ...

    def watch_agents(self) -> object: ...


def _registered(
    decorator: Any,
) -> Callable[[Callable[Params, None]], QueueJob[Params]]:
    """One of Huey's task decorators with its type: huey ships no stubs, so its decorators are
    Any and would leave the jobs untyped."""
    typed: Callable[[Callable[Params, None]], QueueJob[Params]] = decorator
    return typed


def create_huey(url: str, name: str = "farm", *, create_tables: bool = True) -> Huey:
    """A Huey for ``url``: ``sqlite:///path``, ``redis://host:port/db`` or ``immediate``.

    ``immediate`` runs each job synchronously when it is enqueued (tests, debugging).
    """
    if url == "immediate":
        return MemoryHuey(name, immediate=True, results=False)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # The web workers only enqueue: they leave the queue's tables to `farm serve`, which
        # creates them before starting them.
        return SqliteHuey(name, filename=str(path), results=False, create_tables=create_tables)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(name, url=url, results=False)
    raise ValueError(f"unsupported queue URL {url!r}: use sqlite:///, redis:// or immediate")


@attrs.frozen
class QueueJobs:
    """The Huey task wrappers, registered on one Huey instance under stable names."""

    huey: Huey
    assign_tasks: QueueJob[[]]
    assign_tasks_at: QueueJob[[int]]
    assign_tasks_to_agent: QueueJob[[str]]
    send_tasks_to_agent: QueueJob[[str]]
    update_agent: QueueJob[[str]]
    stop_tasks: QueueJob[[str, str, int, list[int]]]
    watch_agents_tick: QueueJob[[]]


def _pending(job: str, *ids: object) -> str:
    return ":".join(["farm", "pending", job, *map(str, ids)])


def register_jobs(
    huey: Huey,
    dispatcher: Callable[[], DispatchService],
    *,
    assign_every_minutes: int,
    watch_every_seconds: float,
) -> QueueJobs:
    """Register the farm's jobs on ``huey``. Each receives ids only and calls one service.

    A job that is already waiting in the queue is not enqueued again (``HueyTaskQueue``): each
    job clears its pending mark as it starts, so a request made while it runs is not lost.
    """

    @_registered(huey.task(name="farm.assign_tasks"))
    def assign_tasks() -> None:
        huey.delete(_pending("assign_tasks"))
        dispatcher().assign_tasks()

    @_registered(huey.task(name="farm.assign_tasks_at"))
    def assign_tasks_at(at: int) -> None:
        huey.delete(_pending("assign_tasks_at", at))
        dispatcher().assign_tasks()

    @_registered(huey.task(name="farm.assign_tasks_to_agent"))
    def assign_tasks_to_agent(agent_id: str) -> None:
        huey.delete(_pending("assign_tasks_to_agent", agent_id))
        dispatcher().assign_tasks_to_agent(uuid.UUID(agent_id))

    @_registered(huey.task(name="farm.send_tasks_to_agent"))
    def send_tasks_to_agent(agent_id: str) -> None:
        huey.delete(_pending("send_tasks_to_agent", agent_id))
        dispatcher().send_tasks_to_agent(uuid.UUID(agent_id))

    @_registered(huey.task(name="farm.update_agent"))
    def update_agent(agent_id: str) -> None:
        dispatcher().update_agent(uuid.UUID(agent_id))

    @_registered(huey.task(name="farm.stop_tasks"))
    def stop_tasks(agent_id: str, host: str, port: int, task_ids: list[int]) -> None:
        dispatcher().stop_tasks(uuid.UUID(agent_id), host, port, task_ids)

    # The liveness sweep runs every `watch_every_seconds`: each run schedules the next. Huey's
    # periodic tasks tick only once a minute, so the minutely task merely restarts the chain if
    # it broke (a consumer died); the pending mark keeps a single chain however many consumers
    # run. Only one consumer should run periodic tasks (`farm worker --no-periodic` for others).
    @_registered(huey.task(name="farm.watch_agents_tick"))
    def watch_agents_tick() -> None:
        huey.delete(_pending("watch_agents"))
        try:
            dispatcher().watch_agents()
        finally:
            _continue_watching(huey, watch_agents_tick, watch_every_seconds)

    @_registered(huey.periodic_task(crontab(minute="*"), name="farm.watch_agents"))
    def watch_agents() -> None:
        _continue_watching(huey, watch_agents_tick, 0)

    @_registered(
        huey.periodic_task(crontab(minute=f"*/{assign_every_minutes}"), name="farm.assign_sweep")
    )
    def assign_sweep() -> None:
        huey.delete(_pending("assign_tasks"))
        dispatcher().assign_tasks()

    return QueueJobs(
        huey,
        assign_tasks,
        assign_tasks_at,
        assign_tasks_to_agent,
        send_tasks_to_agent,
        update_agent,
        stop_tasks,
        watch_agents_tick,
    )


def _continue_watching(huey: Huey, tick: QueueJob[[]], delay: float) -> None:
    if not huey.put_if_empty(_pending("watch_agents"), "1"):
        return
    if delay:
        tick.schedule(delay=delay)
    else:
        tick()


def start_watching(jobs: QueueJobs) -> None:
    """Start the liveness chain now (consumers call this as they start)."""
    _continue_watching(jobs.huey, jobs.watch_agents_tick, 0)


class HueyTaskQueue:
    """The TaskQueue port over Huey. Called after the commit; a failure to enqueue is logged,
    not raised: the request's change is already committed, and periodic sweeps catch up.
    Identical requests are coalesced while one is waiting in the queue."""

    def __init__(self, jobs: QueueJobs) -> None:
        self._jobs = jobs

    def _enqueue(
        self, job: Callable[..., object], *args: object, pending: str | None = None
    ) -> None:
        try:
            if pending is not None and not self._jobs.huey.put_if_empty(pending, "1"):
                return
            job(*args)
        except Exception:  # the queue backend being down must not fail a committed request
            log.exception("could not enqueue", extra={"job": getattr(job, "name", str(job))})
            if pending is not None:
                self._forget(pending)

    def _forget(self, pending: str) -> None:
        try:
            self._jobs.huey.delete(pending)
        except Exception:
            log.exception("could not clear a pending mark", extra={"key": pending})

    def assign_tasks(self) -> None:
        self._enqueue(self._jobs.assign_tasks, pending=_pending("assign_tasks"))

    def assign_tasks_later(self, delay: float) -> None:
        """A pass scheduled with Huey's ``schedule`` (the consumer's scheduler runs it once its
        time has come), at the next whole second: the passes asked for within a second are
        one."""
        at = math.ceil(time.time() + max(0.0, delay))
        pending = _pending("assign_tasks_at", at)
        try:
            if not self._jobs.huey.put_if_empty(pending, "1"):
                return
            self._jobs.assign_tasks_at.schedule((at,), delay=max(0.0, at - time.time()))
        except Exception:  # as _enqueue: the periodic sweep catches up
            log.exception("could not schedule", extra={"job": "farm.assign_tasks_at", "at": at})
            self._forget(pending)

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self._enqueue(
            self._jobs.assign_tasks_to_agent,
            str(agent_id),
            pending=_pending("assign_tasks_to_agent", agent_id),
        )

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        self._enqueue(
            self._jobs.send_tasks_to_agent,
            str(agent_id),
            pending=_pending("send_tasks_to_agent", agent_id),
        )

    def update_agent(self, agent_id: uuid.UUID) -> None:
        self._enqueue(self._jobs.update_agent, str(agent_id))

    def stop_tasks(
        self, agent_id: uuid.UUID, host: str, port: int, task_ids: Sequence[int]
    ) -> None:
        self._enqueue(self._jobs.stop_tasks, str(agent_id), host, port, list(task_ids))


# How long an idle consumer of a polled queue (SQLite) may sleep between looks: Huey's default
# backs off to 10 s, so a job submitted to an idle embedded farm waited up to 10 s for its
# assignment pass. A look is one indexed SELECT. Redis queues block on the read instead.
IDLE_POLL_SECONDS = 1.0


class EmbeddedConsumer(Consumer):  # type: ignore[misc]  # huey ships no stubs: Consumer is Any
    """A Huey consumer that runs in threads of another program (``farm serve``).

    The stock consumer installs signal handlers, which only the main thread may do; the host
    program owns the signals and calls ``stop`` itself.
    """

    def _set_signal_handlers(self) -> None:
        pass


def start_embedded_consumer(
    huey: Huey, workers: int = 2, periodic: bool = True
) -> EmbeddedConsumer:
    consumer = EmbeddedConsumer(
        huey,
        workers=workers,
        worker_type="thread",
        periodic=periodic,
        max_delay=IDLE_POLL_SECONDS,
    )
    consumer.start()
    return consumer


def run_consumer(huey: Huey, workers: int, periodic: bool = True) -> None:
    """Consume the queue in this process's main thread until SIGINT/SIGTERM (``farm worker``)."""
    Consumer(
        huey,
        workers=workers,
        worker_type="thread",
        periodic=periodic,
        max_delay=IDLE_POLL_SECONDS,
    ).run()
