"""The migrations build exactly the schema the code maps, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from farm_adapters import schema_migrations
from farm_adapters.sql.engine import create_database_engine
from farm_adapters.sql.tables import metadata
from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from farm_domain.access import AccessPolicy
from farm_domain.enums import WorkState
from farm_domain.errors import Forbidden
from farm_domain.events import EventQuery
from farm_domain.jobs import JobChanges, JobService
from tests.support.databases import POSTGRES_URL, create_empty_postgres_database
from tests.support.fakes.collaborators import FixedClock, RecordingQueue
from tests.support.identities import ARTIST, WRANGLER


def test_migrated_database_matches_the_tables(database_url: str) -> None:
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
        assert diff == []
        assert schema_migrations.is_up_to_date(engine)
    finally:
        engine.dispose()


def test_upgrading_twice_is_harmless(tmp_path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert not schema_migrations.is_up_to_date(engine)
        schema_migrations.upgrade(engine)
        schema_migrations.upgrade(engine)
        assert schema_migrations.current_revision(engine) == schema_migrations.head_revision()
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    if not POSTGRES_URL:
        pytest.skip("FARM_TEST_POSTGRES_URL is not set (no PostgreSQL to test against)")
    return create_empty_postgres_database()


def test_0007_keeps_every_job_and_leaves_old_jobs_without_a_submitter(
    empty_database_url: str,
) -> None:
    engine = create_database_engine(empty_database_url)
    try:
        schema_migrations.upgrade(engine, "0005")
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO jobtypes (id, name) VALUES (1, 'render')"),
            )
            connection.execute(
                text(
                    "INSERT INTO jobtype_versions (id, jobtype_id, version, batch_contiguous) "
                    "VALUES (1, 1, 1, true)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO jobs (id, title, jobtype_version_id, state, priority, requeue, "
                    "time_submitted, weight, frame_start, frame_end, frame_by, batch, ram, cpus, "
                    "data, environ, \"user\") VALUES (7, 'shot', 1, 'paused', 5, 2, "
                    ":at, 20, 1, 10, 1, 2, 512, 4, '{\"k\": 1}', '{\"A\": \"b\"}', 'ana')"
                ),
                {"at": datetime(2026, 1, 2, 3, 4, 5)},
            )
            connection.execute(
                text(
                    "INSERT INTO tasks (id, job_id, frame, priority, attempts, failures, "
                    "sent_to_agent, hidden) VALUES (70, 7, 1, 5, 1, 0, false, false)"
                )
            )
        schema_migrations.upgrade(engine)
        assert schema_migrations.is_up_to_date(engine)
        uow = SqlUnitOfWorkFactory(engine)
        with uow(read_only=True) as u:
            job = u.jobs.get(7)
            tasks = u.tasks.of_job(7)
            events = u.events.query(EventQuery())
        assert job is not None
        assert (job.title, job.state, job.priority, job.requeue, job.weight) == (
            "shot",
            WorkState.PAUSED,
            5,
            2,
            20,
        )
        assert (job.batch, job.ram, job.cpus, job.data, job.environ, job.user) == (
            2,
            512,
            4,
            {"k": 1},
            {"A": "b"},
            "ana",
        )
        assert job.submitted_by is None
        assert [t.id for t in tasks] == [70]
        assert events == []
        # A job nobody is known to have submitted: an artist may not change it, a wrangler may.
        world_jobs = JobService(uow, RecordingQueue(), FixedClock(), 3, policy=AccessPolicy())
        with pytest.raises(Forbidden):
            world_jobs.update(ARTIST, 7, JobChanges(priority=1))
        assert world_jobs.update(WRANGLER, 7, JobChanges(priority=1)).job.priority == 1
    finally:
        engine.dispose()
