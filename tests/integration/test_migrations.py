"""The migrations build exactly the schema the code maps, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, Integer, MetaData, Table, insert, inspect, select, text

from farm_adapters import schema_migrations
from farm_adapters.clock import SystemClock
from farm_adapters.files import FilesystemStore
from farm_adapters.passwords import SystemSecrets
from farm_adapters.sql import tables as t
from farm_adapters.sql.changes import SqlChangeMarker
from farm_adapters.sql.engine import create_database_engine
from farm_adapters.sql.statistics import SqlFarmStatistics
from farm_adapters.sql.tables import metadata
from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from farm_domain.access import AccessPolicy, Identity, Role
from farm_domain.enums import AgentState, WorkState
from farm_domain.errors import Forbidden, NotFound
from farm_domain.events import EventQuery
from farm_domain.files import TaskLogs
from farm_domain.history import HistoryPage
from farm_domain.identities import IdentityService
from farm_domain.job_requests import JobChanges, JobSpec
from farm_domain.jobs import JobService
from farm_domain.work import TaskFailure, TaskOutput
from tests.support.databases import POSTGRES_URL, create_empty_postgres_database
from tests.support.fakes.collaborators import FixedClock, MemoryFileStore, RecordingQueue
from tests.support.fakes.identities import PlainPasswordHasher
from tests.support.identities import ARTIST, WRANGLER, agent


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
        world_jobs = JobService(
            uow, RecordingQueue(), FixedClock(), 3, policy=AccessPolicy(), files=MemoryFileStore()
        )
        with pytest.raises(Forbidden):
            world_jobs.update(ARTIST, 7, JobChanges(priority=1))
        assert world_jobs.update(WRANGLER, 7, JobChanges(priority=1)).job.priority == 1
    finally:
        engine.dispose()


TABLES_AFTER_0007 = {"task_failures", "task_history", "agent_history"}
"""Tables later migrations add: a farm at 0007 has no rows in them."""


def _farm_at_0007(connection: Connection, agent_id: uuid.UUID, at: datetime) -> None:
    """A farm with a row in every table: two jobs, the newest holding the highest task ids."""
    rows: list[tuple[Table, list[dict[str, Any]]]] = [
        (
            t.agents,
            [
                {
                    "id": agent_id,
                    "hostname": "node1",
                    "use_address": "remote",
                    "ram": 4096,
                    "free_ram": 2048,
                    "cpus": 8,
                    "port": 50000,
                    "time_offset": 0,
                    "ram_allocation": 0.8,
                    "cpu_allocation": 1.0,
                    "restart_requested": False,
                    "state": "online",
                    "disabled": False,
                }
            ],
        ),
        (t.agent_mac_addresses, [{"agent_id": agent_id, "mac_address": "aa:bb:cc:dd:ee:ff"}]),
        (t.agent_tags, [{"agent_id": agent_id, "tag": "gpu"}]),
        (t.gpus, [{"id": 3, "fullname": "GeForce"}]),
        (t.agent_gpus, [{"agent_id": agent_id, "gpu_id": 3}]),
        (t.software, [{"id": 2, "software": "blender"}]),
        (t.software_versions, [{"id": 4, "software_id": 2, "version": "2.79", "rank": 100}]),
        (t.agent_software_versions, [{"agent_id": agent_id, "software_version_id": 4}]),
        (t.jobtypes, [{"id": 1, "name": "render"}]),
        (
            t.jobtype_versions,
            [{"id": 1, "jobtype_id": 1, "version": 1, "batch_contiguous": True}],
        ),
        (
            t.jobtype_software_requirements,
            [{"jobtype_version_id": 1, "software_id": 2, "min_version_id": 4}],
        ),
        (
            t.jobs,
            [
                {
                    "id": job_id,
                    "title": f"shot {job_id}",
                    "jobtype_version_id": 1,
                    "priority": 0,
                    "requeue": 3,
                    "time_submitted": at,
                    "submitted_by": "wendy",
                }
                for job_id in (1, 5)
            ],
        ),
        (t.job_tags, [{"job_id": 5, "tag": "lighting"}]),
        (t.job_tag_requirements, [{"job_id": 5, "tag": "gpu", "negate": False}]),
        (t.job_parents, [{"child_id": 5, "parent_id": 1}]),
        (t.job_software_requirements, [{"job_id": 5, "software_id": 2, "max_version_id": 4}]),
        (
            t.tasks,
            [
                {
                    "id": task_id,
                    "job_id": job_id,
                    "frame": 1.0,
                    "priority": 0,
                    "attempts": 1,
                    "failures": 0,
                    "agent_id": agent_id if task_id == 10 else None,
                    "sent_to_agent": False,
                    "hidden": False,
                }
                for task_id, job_id in ((10, 1), (50, 5), (51, 5))
            ],
        ),
        (
            t.job_agent_blocks,
            [{"job_id": 5, "agent_id": agent_id, "failures": 1, "updated_on": at}],
        ),
        (
            t.task_logs,
            [
                {
                    "id": 3,
                    "task_id": 51,
                    "attempt": 1,
                    "identifier": "render",
                    "agent_id": None,
                    "created_on": at,
                }
            ],
        ),
        (t.tokens, [{"name": "ci", "digest": "d" * 64, "role": "artist", "created": at}]),
        (t.users, [{"name": "ana", "role": "artist", "password_hash": "x", "created": at}]),
        (
            t.sessions,
            [
                {
                    "digest": "s" * 64,
                    "user_name": "ana",
                    "csrf_token": "c",
                    "created": at,
                    "expires": at,
                }
            ],
        ),
        (
            t.events,
            [
                {
                    "id": 4,
                    "at": at,
                    "actor": "wendy",
                    "role": "wrangler",
                    "action": "job.submit",
                    "target": "job:5",
                    "after": {"tasks": 2},
                }
            ],
        ),
    ]
    assert {table.name for table, _ in rows} == set(metadata.tables) - TABLES_AFTER_0007
    for table, values in rows:
        connection.execute(insert(table), values)


def _every_row(engine: Engine, like: dict[str, list[Any]] | None = None) -> dict[str, list[Any]]:
    """Every row of every table the database has, as {column: value}, in key order; ``like``:
    only the tables and columns it holds (an earlier revision's), to compare across upgrades."""
    found: dict[str, list[Any]] = {}
    with engine.connect() as connection:
        tables = MetaData()
        tables.reflect(connection)
        for table in tables.sorted_tables:
            if table.name == "alembic_version" or (like is not None and table.name not in like):
                continue
            keys = [table.c[c.name] for c in metadata.tables[table.name].primary_key.columns]
            rows = [dict(row._mapping) for row in connection.execute(select(table).order_by(*keys))]
            if like is not None and like[table.name]:
                columns = like[table.name][0].keys()
                rows = [{name: row[name] for name in columns} for row in rows]
            found[table.name] = rows
    return found


def test_0008_keeps_every_row_and_ids_are_never_given_again(
    empty_database_url: str, tmp_path: Path
) -> None:
    engine = create_database_engine(empty_database_url)
    try:
        schema_migrations.upgrade(engine, "0007")
        agent_id = uuid.uuid4()
        with engine.begin() as connection:
            _farm_at_0007(connection, agent_id, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
        before = _every_row(engine)

        schema_migrations.upgrade(engine)

        assert _every_row(engine, like=before) == before
        with engine.connect() as connection:  # the pool's connections enforce them again
            if engine.dialect.name == "sqlite":
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        uow = SqlUnitOfWorkFactory(engine)
        files = FilesystemStore(tmp_path / "files", 10**6)
        jobs = JobService(
            uow, RecordingQueue(), FixedClock(), 3, policy=AccessPolicy(), files=files
        )
        logs = TaskLogs(uow, files, FixedClock(), 1000, policy=AccessPolicy())
        node = agent(agent_id)
        logs.upload(node, 5, 51, 1, "render", [b"old text"])
        assert (tmp_path / "files" / "logs" / "51").is_dir()

        assert jobs.delete(WRANGLER, 5)
        assert not (tmp_path / "files" / "logs" / "51").exists()
        new = jobs.submit(WRANGLER, JobSpec(title="next", jobtype="render", start=1, end=2))
        new_tasks = jobs.tasks(WRANGLER, new.job.id)
        assert new.job.id > 5 and min(task.id for task in new_tasks) > 51
        for task in new_tasks:
            logs.register(node, new.job.id, task.id, 0, "render", None)
            with pytest.raises(NotFound):
                list(logs.download(WRANGLER, new.job.id, task.id, 0, "render"))
        with uow(read_only=True) as u:
            assert u.jobs.get(1) is not None and u.agents.get(agent_id) is not None
            assert [task.id for task in u.tasks.of_job(1)] == [10]
    finally:
        engine.dispose()


def test_0009_keeps_every_row_and_reads_old_jobs_and_tasks_without_policies(
    empty_database_url: str,
) -> None:
    engine = create_database_engine(empty_database_url)
    try:
        schema_migrations.upgrade(engine, "0008")
        agent_id = uuid.uuid4()
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        with engine.begin() as connection:
            _farm_at_0007(connection, agent_id, at)
        before = _every_row(engine)

        schema_migrations.upgrade(engine)

        assert _every_row(engine, like=before) == before
        uow = SqlUnitOfWorkFactory(engine)
        with uow() as u:
            job = u.jobs.get(5)
            tasks = u.tasks.of_job(5)
            (block,) = u.blocks.of_job(5)
            assert job is not None
            assert (job.max_run_seconds, job.stall_seconds, job.reason) == (None, None, None)
            assert [(t.not_before, t.reason, t.failed_on, t.skipped) for t in tasks] == [
                (None, None, None, False)
            ] * 2
            assert (block.failures, block.refusal) == (1, None)
            # The new table takes an old task's failures; they go with the task.
            failure = u.tasks.record_failure(
                TaskFailure(0, 51, 1, agent_id, at, "timeout", "killed after 60 s")
            )
            assert u.tasks.failures_of(51) == [failure]
            u.commit()
        jobs = JobService(
            uow, RecordingQueue(), FixedClock(), 3, policy=AccessPolicy(), files=MemoryFileStore()
        )
        assert jobs.delete(WRANGLER, 5)
        with uow(read_only=True) as u:
            assert u.tasks.failures_of(51) == []
    finally:
        engine.dispose()


def test_0010_keeps_every_row_and_reads_old_tasks_without_outputs(
    empty_database_url: str,
) -> None:
    engine = create_database_engine(empty_database_url)
    try:
        schema_migrations.upgrade(engine, "0009")
        agent_id = uuid.uuid4()
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        with engine.begin() as connection:
            _farm_at_0007(connection, agent_id, at)
        before = _every_row(engine)

        schema_migrations.upgrade(engine)

        assert _every_row(engine, like=before) == before
        with engine.connect() as connection:
            # SQL NULL, not JSON null, in every old row
            counts = connection.execute(
                text("SELECT count(*), count(outputs) FROM tasks WHERE outputs IS NULL")
            ).one()
            assert tuple(counts) == (len(before["tasks"]), 0)
        uow = SqlUnitOfWorkFactory(engine)
        with uow() as u:
            old = u.tasks.of_job(5)
            assert [task.outputs for task in old] == [(), ()]
            # An old task takes the files of its next done report, and keeps them.
            u.tasks.save(
                attrs.evolve(old[0], outputs=(TaskOutput("/renders/shot_0001.png", 2048),)),
                old[0],
                reason="test",
                at=datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
            )
            u.commit()
        with uow(read_only=True) as u:
            again = u.tasks.of_job(5)
            assert again[0].outputs == (TaskOutput("/renders/shot_0001.png", 2048),)
            assert again[1].outputs == ()
    finally:
        engine.dispose()


def test_0011_keeps_every_row_and_records_the_changes_of_old_tasks_and_agents(
    empty_database_url: str,
) -> None:
    engine = create_database_engine(empty_database_url)
    try:
        schema_migrations.upgrade(engine, "0010")
        agent_id = uuid.uuid4()
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        with engine.begin() as connection:
            _farm_at_0007(connection, agent_id, at)
        before = _every_row(engine)

        schema_migrations.upgrade(engine)

        assert _every_row(engine, like=before) == before
        after = _every_row(engine)
        assert after["task_history"] == [] and after["agent_history"] == []
        uow = SqlUnitOfWorkFactory(engine)
        later = at + timedelta(minutes=1)
        with uow() as u:
            held = u.tasks.get(10)
            agent = u.agents.get(agent_id)
            assert held is not None and agent is not None
            u.tasks.save(attrs.evolve(held, state=WorkState.RUNNING), held, reason="r", at=later)
            u.agents.save(
                attrs.evolve(agent, state=AgentState.RUNNING), agent, reason="a", at=later
            )
            u.tasks.cancel_unfinished(5, "canceled", later, why="canceled by wendy")
            u.commit()
        with uow(read_only=True) as u:
            page = HistoryPage()
            ran = u.history.of_task(10, page)
            assert [(c.before, c.after, c.reason, c.at) for c in ran] == [
                ("assigned", "running", "r", later)
            ]
            assert [c.agent_id for c in ran] == [agent_id]
            assert [(c.before, c.after) for c in u.history.of_task(51, page)] == [
                ("queued", "canceled")
            ]
            assert [(c.before, c.after, c.reason) for c in u.history.of_agent(agent_id, page)] == [
                ("online", "running", "a")
            ]
        # Gone with their task and agent.
        with uow() as u:
            u.jobs.delete(1)
            u.agents.delete(agent_id)
            u.commit()
        remaining = _every_row(engine)
        assert [row["task_id"] for row in remaining["task_history"]] == [50, 51]
        assert remaining["agent_history"] == []
    finally:
        engine.dispose()


def test_every_integer_id_is_autoincrement_on_sqlite(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        migrated = {
            name
            for name, sql in connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            )
            if "AUTOINCREMENT" in sql
        }
    integer_ids = {
        table.name
        for table in metadata.sorted_tables
        if [(c.name, type(c.type)) for c in table.primary_key.columns] == [("id", Integer)]
    }
    declared = {
        table.name
        for table in metadata.sorted_tables
        if table.dialect_options["sqlite"]["autoincrement"]
    }
    assert migrated == declared == integer_ids


def test_0012_keeps_every_row_and_indexes_the_running_and_finished_tasks(
    empty_database_url: str,
) -> None:
    engine = create_database_engine(empty_database_url)
    try:
        schema_migrations.upgrade(engine, "0011")
        agent_id = uuid.uuid4()
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        with engine.begin() as connection:
            _farm_at_0007(connection, agent_id, at)
            tk = t.tasks.c
            connection.execute(
                t.tasks.update().where(tk.id == 10).values(state="running", progress=0.5)
            )
            connection.execute(
                t.tasks.update().where(tk.id == 50).values(state="done", time_finished=at)
            )
            connection.execute(
                t.tasks.update().where(tk.id == 51).values(state="failed", time_finished=at)
            )
            connection.execute(
                insert(t.task_failures),
                [
                    {
                        "task_id": 51,
                        "attempt": 1,
                        "agent_id": agent_id,
                        "at": at,
                        "reason": "crashed",
                    }
                ],
            )
            connection.execute(
                insert(t.task_history),
                [
                    {
                        "task_id": 10,
                        "job_id": 1,
                        "agent_id": agent_id,
                        "at": at,
                        "before": "sent",
                        "after": "running",
                        "reason": "reported by its agent",
                    }
                ],
            )
        before = _every_row(engine)

        schema_migrations.upgrade(engine)

        assert _every_row(engine, like=before) == before
        with engine.connect() as connection:
            indexes = {
                index["name"]
                for table in ("tasks", "task_failures")
                for index in inspect(connection).get_indexes(table)
            }
        assert {"ix_tasks_running", "ix_tasks_done_time_finished", "ix_task_failures_at"} <= (
            indexes
        )
        # The old rows are what the marker and the overview read.
        marker = SqlChangeMarker(engine)
        read = marker.marker()
        assert read.endswith("|1|0.500000")  # one running task, half done
        statistics = SqlFarmStatistics(engine)
        hour = at.replace(minute=0, second=0)
        assert statistics.done_per_hour(hour - timedelta(hours=1)) == {hour: 1}
        assert statistics.done_per_hour(hour + timedelta(hours=1)) == {}
        assert statistics.failures_by_reason(hour) == {"crashed": 1}
        with SqlUnitOfWorkFactory(engine)() as u:
            running = u.tasks.get(10)
            assert running is not None
            u.tasks.save(attrs.evolve(running, progress=0.75), running, reason="r", at=at)
            u.commit()
        assert marker.marker() == read.replace("|0.500000", "|0.750000")
    finally:
        engine.dispose()
