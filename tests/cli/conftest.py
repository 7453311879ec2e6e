"""The operator commands' fixtures: a farm's settings in the environment, for local mode, and the
same scenarios on both transports (``cli_farm``).

``cli_farm`` runs a test three ways: local mode on SQLite, local mode on PostgreSQL, and remote
mode against a real ``farm serve`` (one per module and xdist worker, on SQLite, with nothing
admitted without a token) reached with ``FARM_URL`` and its admin token. In every way the
test's own environment points at the farm's database, so a test may set up what the API cannot
(an agent's failures, a task assigned by hand) with the domain services directly.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from tests.support.databases import empty_tables
from tests.support.processes import Master, Process, base_env

_FARM_ENV = ("FARM_URL", "FARM_TOKEN")


@pytest.fixture
def farm_env(database_url: str, tmp_path, monkeypatch):
    """FARM_ settings for a command run in this process, on ``database_url`` (local mode)."""
    _local_env(monkeypatch, tmp_path, database_url)
    return database_url


def _local_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, database_url: str) -> None:
    for key in _FARM_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in {
        "FARM_DATA_DIR": str(data_dir),
        "FARM_DATABASE_URL": database_url,
        "FARM_QUEUE_URL": "immediate",
        "FARM_AGENT_NETWORKS": "127.0.0.0/8",
        "FARM_AGENT_RETRIES": "0",
    }.items():
        monkeypatch.setenv(key, value)


@attrs.frozen
class RemoteFarm:
    master: Master
    database_url: str
    token: str


@pytest.fixture(scope="module")
def remote_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteFarm]:
    """A real ``farm serve`` for the module's remote runs, with the immediate queue as local
    mode has: what a request triggers (an assignment) is done before its answer, and no sweep
    runs between two commands (the tests' agents answer nothing: a call would take one
    offline mid-test)."""
    tmp_path = tmp_path_factory.mktemp("remote-cli")
    processes: list[Process] = []
    try:
        env = base_env(
            tmp_path, FARM_ANONYMOUS_NETWORKS="", FARM_QUEUE_URL="immediate", FARM_AGENT_RETRIES="0"
        )
        master = Master(tmp_path, processes, env, ())
        token = (master.data_dir / "admin-token").read_text().strip()
        yield RemoteFarm(master, f"sqlite:///{master.data_dir / 'farm.db'}", token)
    finally:
        for process in reversed(processes):
            process.stop()


@attrs.frozen
class Transport:
    """How a scenario reaches the farm, and how the farm names the operator."""

    name: str
    """``local`` or ``remote``."""
    actor: str
    """Who the audit trail says made the operator's changes."""
    address: str


@pytest.fixture(
    params=[
        "local-sqlite",
        pytest.param("local-postgres", marks=[pytest.mark.postgres]),
        pytest.param("remote", marks=[pytest.mark.e2e]),
    ]
)
def cli_farm(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> Transport:
    """The farm a scenario's commands reach: local mode (SQLite, PostgreSQL) or remote."""
    if request.param == "remote":
        remote: RemoteFarm = request.getfixturevalue("remote_farm")
        _local_env(monkeypatch, tmp_path, remote.database_url)
        monkeypatch.setenv("FARM_URL", remote.master.url)
        monkeypatch.setenv("FARM_TOKEN", remote.token)
        return Transport("remote", "admin", "127.0.0.1")
    if request.param == "local-sqlite":
        url: str = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("postgres_database_url")
        from farm_adapters.sql.engine import create_database_engine

        engine = create_database_engine(url)
        empty_tables(engine)
        engine.dispose()
    _local_env(monkeypatch, tmp_path, url)
    return Transport("local", getpass.getuser(), "local")
