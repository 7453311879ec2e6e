"""Shared fixtures: databases (SQLite always, PostgreSQL when FARM_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine

from farm_adapters.sql.engine import create_database_engine
from tests.support.databases import (
    POSTGRES_URL,
    create_empty_postgres_database,
    drop_created_databases,
    empty_tables,
    migrate,
)

# Hypothesis' timing checks measure the machine, not the rule: on two cores shared by the test
# workers and real servers, generating an example can take longer than its default limits. The
# examples, their number and the shrinking stay as they are.
settings.register_profile("farm", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("farm")

# Tests never let the master call anything outside loopback.
os.environ["FARM_AGENT_NETWORKS"] = "127.0.0.0/8"


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to the newest schema."""
    if not POSTGRES_URL:
        pytest.skip("FARM_TEST_POSTGRES_URL is not set (no PostgreSQL to test against)")
    url = create_empty_postgres_database()
    migrate(url)
    yield url


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    drop_created_databases()


@pytest.fixture
def postgres_engine(postgres_database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(postgres_database_url)
    empty_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to the newest schema once a session, for tests to copy."""
    path = tmp_path_factory.mktemp("migrated") / "farm.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_sqlite_file: Path) -> str:
    """A fresh SQLite database at the newest schema: a copy of the session's migrated one."""
    path = tmp_path / "farm.db"
    shutil.copyfile(migrated_sqlite_file, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = create_database_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres])])
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: SQLite, then PostgreSQL when available."""
    if request.param == "sqlite":
        sqlite_url: str = request.getfixturevalue("sqlite_url")
        return sqlite_url
    url: str = request.getfixturevalue("postgres_database_url")
    engine = create_database_engine(url)
    empty_tables(engine)
    engine.dispose()
    return url
