"""A database connection lost under the master (a restart, a failover) is a 503 with
Retry-After for the one request that meets it, never a 500, and the next request works."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.support.databases import create_empty_postgres_database, needs_postgres
from tests.support.http_harness import Harness, make_harness
from tests.support.identities import ADMIN


@pytest.fixture
def pg_farm(tmp_path: Path) -> Iterator[Harness]:
    from farm_adapters import schema_migrations
    from farm_adapters.sql.engine import create_database_engine

    url = create_empty_postgres_database()
    engine = create_database_engine(url)
    schema_migrations.upgrade(engine)
    engine.dispose()
    yield from make_harness(url, tmp_path)


def drop_connections_of(harness: Harness) -> int:
    url = harness.runtime.engine.url
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


@needs_postgres
def test_a_dropped_connection_is_a_503_then_the_master_recovers(pg_farm: Harness) -> None:
    agent_id = uuid.uuid4()
    assert pg_farm.announce(agent_id).status_code == 201
    assert drop_connections_of(pg_farm) >= 1

    failed = pg_farm.client.simulate_post(f"/api/v1/agents/{agent_id}", json={"free_ram": 7})
    assert failed.status_code == 503
    assert "database" in failed.json["error"]
    assert failed.headers["retry-after"] == "1"

    again = pg_farm.client.simulate_post(f"/api/v1/agents/{agent_id}", json={"free_ram": 9})
    assert again.status_code == 200
    assert pg_farm.client.simulate_get(f"/api/v1/agents/{agent_id}").json["free_ram"] == 9


def test_an_unreachable_database_is_a_503(tmp_path: Path) -> None:
    # Nothing listens on port 1 of loopback: connecting is refused at once.
    url = make_url("postgresql://postgres@127.0.0.1:1/farm").render_as_string()
    harness = next(make_harness(url, tmp_path))
    try:
        answer = harness.client.simulate_get(f"/api/v1/agents/{uuid.uuid4()}")
    finally:
        harness.runtime.close()
    assert answer.status_code == 503
    assert answer.json == {"error": "the database is unavailable; retry shortly"}


def test_a_missing_table_is_a_bug_not_an_outage(tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    from farm_adapters.sql.engine import create_database_engine
    from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory

    # Raised as itself (a 500 and a logged bug), not as Unavailable (a 503 to retry).
    engine = create_database_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # never migrated
    try:
        with pytest.raises(OperationalError) as raised, SqlUnitOfWorkFactory(engine)() as uow:
            uow.agents.get(uuid.uuid4())
        assert "no such table" in str(raised.value)
    finally:
        engine.dispose()


@needs_postgres
def test_queue_consumers_ping_and_never_see_the_dropped_connection(
    pg_farm: Harness, tmp_path: Path
) -> None:
    from farm_adapters.composition import build_runtime
    from farm_adapters.settings import Settings

    agent_id = uuid.uuid4()
    assert pg_farm.announce(agent_id).status_code == 201
    consumer = build_runtime(
        Settings.load(
            {
                "FARM_DATA_DIR": str(tmp_path),
                "FARM_DATABASE_URL": str(
                    pg_farm.runtime.engine.url.render_as_string(hide_password=False)
                ),
                "FARM_QUEUE_URL": "immediate",
            }
        )
    )  # as `farm worker` builds it: pinging
    try:
        assert consumer.farm.agents.get(ADMIN, agent_id).id == agent_id
        assert drop_connections_of(pg_farm) >= 1
        assert (
            consumer.farm.agents.get(ADMIN, agent_id).id == agent_id
        )  # no error: pinged, reconnected
    finally:
        consumer.close()
