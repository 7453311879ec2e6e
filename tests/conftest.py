"""Shared fixtures: databases (SQLite always, PostgreSQL when FARM_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from farm_adapters import schema_migrations
from farm_adapters.sql.engine import create_database_engine
from farm_adapters.sql.tables import metadata

# Tests never let the master call anything outside loopback.
os.environ["FARM_AGENT_NETWORKS"] = "127.0.0.0/8"

POSTGRES_URL = os.environ.get("FARM_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("FARM_TEST_REDIS_URL")

needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="FARM_TEST_POSTGRES_URL is not set (no PostgreSQL to test against)"
)
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="FARM_TEST_REDIS_URL is not set (no Redis to test against)"
)


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to the newest schema."""
    if not POSTGRES_URL:
        pytest.skip("FARM_TEST_POSTGRES_URL is not set (no PostgreSQL to test against)")
    url = create_empty_postgres_database()
    engine = create_database_engine(url)
    schema_migrations.upgrade(engine)
    engine.dispose()
    yield url


_created_databases: list[str] = []


def create_empty_postgres_database() -> str:
    """A new, empty (unmigrated) PostgreSQL database, dropped at the end of the session."""
    import psycopg

    assert POSTGRES_URL
    name = f"farm_test_{uuid.uuid4().hex[:12]}"
    admin = make_url(POSTGRES_URL)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    _created_databases.append(name)
    return admin.set(database=name).render_as_string(hide_password=False)


def _drop_databases(names: list[str]) -> None:
    import psycopg

    if not names or not POSTGRES_URL:
        return
    admin = make_url(POSTGRES_URL)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        for name in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _drop_databases(_created_databases)


def empty_tables(engine: Engine) -> None:
    names = ", ".join(table.name for table in metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def postgres_engine(postgres_database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(postgres_database_url)
    empty_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'farm.db'}"
    engine = create_database_engine(url)
    schema_migrations.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = create_database_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres])])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A migrated, empty database: SQLite, then PostgreSQL when available."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    url = request.getfixturevalue("postgres_database_url")
    engine = create_database_engine(url)
    empty_tables(engine)
    engine.dispose()
    return url
