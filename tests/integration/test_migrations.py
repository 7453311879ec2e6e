"""The migrations build exactly the schema the code maps, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from farm_adapters import schema_migrations
from farm_adapters.clock import SystemClock
from farm_adapters.passwords import SystemSecrets
from farm_adapters.sql.engine import create_database_engine
from farm_adapters.sql.tables import metadata
from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from farm_domain.access import AccessPolicy, Identity, Role
from farm_domain.enums import WorkState
from farm_domain.errors import Forbidden
from farm_domain.events import EventQuery
from farm_domain.identities import IdentityService
from farm_domain.jobs import JobChanges, JobService
from tests.support.databases import POSTGRES_URL, create_empty_postgres_database
from tests.support.fakes.collaborators import FixedClock, RecordingQueue
from tests.support.fakes.identities import PlainPasswordHasher
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


def _upgrade_to(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(schema_migrations.__file__).with_name("alembic"))
    )
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres])])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    if not POSTGRES_URL:
        pytest.skip("FARM_TEST_POSTGRES_URL is not set (no PostgreSQL to test against)")
    return create_empty_postgres_database()


def test_0006_adds_credentials_to_a_farm_with_agents_and_jobs(empty_database_url: str) -> None:
    engine = create_database_engine(empty_database_url)
    try:
        _upgrade_to(engine, "0005")
        agent_id = uuid.uuid4()
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO agents (id, hostname, use_address, ram, free_ram, cpus, port,"
                    " time_offset, ram_allocation, cpu_allocation, restart_requested, state,"
                    " disabled) VALUES (:id, 'node1', 'remote', 4096, 2048, 8, 50000, 0, 0.8,"
                    " 1.0, false, 'online', false)"
                ),
                {"id": agent_id.hex if engine.dialect.name == "sqlite" else agent_id},
            )
            connection.execute(text("INSERT INTO jobtypes (id, name) VALUES (1, 'render')"))
            connection.execute(
                text(
                    "INSERT INTO jobtype_versions (id, jobtype_id, version, batch_contiguous)"
                    " VALUES (1, 1, 1, true)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO jobs (id, title, jobtype_version_id, priority, requeue,"
                    " time_submitted) VALUES (1, 'shot 1', 1, 50, 3, :now)"
                ),
                {"now": datetime(2026, 1, 1, tzinfo=UTC)},
            )
            connection.execute(
                text("INSERT INTO agent_tags (agent_id, tag) SELECT id, 'gpu' FROM agents")
            )

        schema_migrations.upgrade(engine)

        uow = SqlUnitOfWorkFactory(engine)
        with uow() as u:
            agent = u.agents.get(agent_id)
            assert agent is not None and agent.hostname == "node1"
            assert u.agents.tags(agent_id) == {"gpu"}
            job = u.jobs.get(1)
            assert job is not None and job.title == "shot 1"
            assert u.tokens.query() == [] and u.users.query() == []
        identities = IdentityService(uow, SystemClock(), SystemSecrets(), PlainPasswordHasher())
        secret = identities.bootstrap_admin()
        assert secret is not None
        assert identities.authenticate(secret).role is Role.ADMIN
        with uow() as u:
            agent_secret = identities.issue_agent_credential(u, agent_id, SystemClock().now())
            u.commit()
        assert identities.authenticate(agent_secret).agent_id == agent_id
        admin = Identity.local_operator("root")
        identities.add_user(admin, "alice", Role.ARTIST, "correct horse")
        _, session = identities.login("alice", "correct horse")
        assert identities.session_identity(session)[0].name == "alice"
    finally:
        engine.dispose()


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
