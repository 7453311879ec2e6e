"""The databases tests run against: SQLite always, PostgreSQL and Redis when their URLs are set."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from farm_adapters import schema_migrations
from farm_adapters.sql.engine import create_database_engine
from farm_adapters.sql.tables import metadata

POSTGRES_URL = os.environ.get("FARM_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("FARM_TEST_REDIS_URL")

needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="FARM_TEST_POSTGRES_URL is not set (no PostgreSQL to test against)"
)
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="FARM_TEST_REDIS_URL is not set (no Redis to test against)"
)

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


def drop_created_databases() -> None:
    """Drop every database ``create_empty_postgres_database`` made (the session's end calls it)."""
    import psycopg

    if not _created_databases or not POSTGRES_URL:
        return
    admin = make_url(POSTGRES_URL)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        for name in _created_databases:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema."""
    engine = create_database_engine(url)
    schema_migrations.upgrade(engine)
    engine.dispose()


def empty_tables(engine: Engine) -> None:
    """Every row gone and every id counter back at its start. DELETE rather than TRUNCATE: on
    these small tables it takes a tenth of the time, which every PostgreSQL test pays."""
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
        sequences = connection.execute(
            text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
        ).scalars()
        for sequence in list(sequences):
            connection.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
