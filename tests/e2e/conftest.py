"""Real processes on loopback: ``farm serve``, ``farm worker``, ``farm agent``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm_adapters.queue import create_huey
from tests.support.databases import REDIS_URL, create_empty_postgres_database, migrate
from tests.support.live_farm import backend_params
from tests.support.processes import Master, Process, StartMaster, base_env, farm_command


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """The processes a test starts, stopped in reverse order at its end."""
    started: list[Process] = []
    yield started
    for process in reversed(started):
        process.stop()


@pytest.fixture
def start_master(tmp_path: Path, processes: list[Process]) -> StartMaster:
    """Starts ``farm serve`` with extra command-line ``args`` and FARM_ settings ``env`` on a
    free loopback port, waits until it answers, and returns it; it is stopped with the test."""

    def start(*args: str, **env: str) -> Master:
        return Master(tmp_path, processes, base_env(tmp_path, **env), args)

    return start


@pytest.fixture(params=backend_params())
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """A master's FARM_ settings for a backend: the embedded default (none), or a fresh
    PostgreSQL database and a Redis queue of its own name (emptied after the test)."""
    if request.param == "embedded":
        yield {}
        return
    request.getfixturevalue("postgres_database_url")  # skips without PostgreSQL
    database = create_empty_postgres_database()
    migrate(database)
    assert REDIS_URL
    name = f"farm-e2e-{uuid.uuid4().hex[:12]}"
    yield {"FARM_DATABASE_URL": database, "FARM_QUEUE_URL": REDIS_URL, "FARM_QUEUE_NAME": name}
    create_huey(REDIS_URL, name).storage.flush_all()


@pytest.fixture
def start_master_on_backend(
    tmp_path: Path, processes: list[Process], backend: dict[str, str]
) -> StartMaster:
    """``start_master`` on ``backend``: on PostgreSQL + Redis a ``farm worker`` with the same
    settings consumes the queue (``farm serve`` runs no consumer there), as in a scale-out
    deployment; it starts first and stops last."""

    def start(*args: str, **env: str) -> Master:
        settings = base_env(tmp_path, **backend, **env)
        if backend:
            worker = Process(
                farm_command("worker"), settings, tmp_path / f"worker-{len(processes)}.log"
            )
            processes.append(worker)
        return Master(tmp_path, processes, settings, args)

    return start
