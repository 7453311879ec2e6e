"""On a farm of 50,000 tasks, PostgreSQL reads the dashboard's change marker and the overview's
hourly counts through indexes, never every task (the marker is read once a second by every web
worker while a page listens)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from farm_adapters.sql.changes import SqlChangeMarker
from farm_adapters.sql.statistics import SqlFarmStatistics

pytestmark = pytest.mark.postgres

TASKS = 50_000
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _farm(engine: Engine) -> None:
    """50,000 tasks: 2,000 queued, 200 running, the others done one every 3 minutes before
    NOW (over 100 days); a history row per task."""
    with engine.begin() as connection:
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
                " time_submitted) SELECT n, 'shot ' || n, 1, 50, 3, :now"
                " FROM generate_series(1, 50) AS n"
            ),
            {"now": NOW},
        )
        connection.execute(
            text(
                "INSERT INTO tasks (id, job_id, frame, state, priority, attempts, failures,"
                " sent_to_agent, hidden, progress, time_finished)"
                " SELECT n, 1 + n % 50, n, CASE WHEN n <= 2000 THEN NULL"
                "  WHEN n <= 2200 THEN 'running' ELSE 'done' END,"
                " 50, 1, 0, false, false, CASE WHEN n <= 2000 THEN NULL ELSE 0.5 END,"
                " CASE WHEN n > 2200 THEN :now - (n - 2200) * interval '3 minutes' END"
                " FROM generate_series(1, :tasks) AS n"
            ),
            {"now": NOW, "tasks": TASKS},
        )
        connection.execute(
            text(
                "INSERT INTO task_history (task_id, job_id, at, before, after, reason)"
                " SELECT id, job_id, :now, 'queued', 'assigned', 'test' FROM tasks"
            ),
            {"now": NOW},
        )
        connection.execute(text("ANALYZE"))


def _plan(engine: Engine, statement: object) -> str:
    sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    with engine.connect() as connection:
        return "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {sql}")))


def test_the_marker_and_the_hourly_counts_read_no_task_but_the_ones_they_count(
    postgres_engine: Engine,
) -> None:
    _farm(postgres_engine)
    marker = SqlChangeMarker(postgres_engine)
    plan = _plan(postgres_engine, marker.statement)
    assert "Seq Scan on tasks" not in plan, plan
    assert "Seq Scan on task_history" not in plan, plan
    assert "ix_tasks_running" in plan, plan
    assert marker.marker() == f"{TASKS}|||50|200|100.000000"

    statistics = SqlFarmStatistics(postgres_engine)
    since = NOW - timedelta(hours=23)
    done = statistics.done_per_hour_statement(since)
    plan = _plan(postgres_engine, done)
    assert "Seq Scan on tasks" not in plan, plan
    assert "ix_tasks_done_time_finished" in plan, plan
    # one every 3 minutes: 20 in each of the 23 hours
    assert list(statistics.done_per_hour(since).values()) == [20] * 23
