"""On a farm of 50,000 tasks, the database reads the dashboard's change marker and the
overview's hourly counts through indexes, never every task (the marker is read once a second by
every web worker while a page listens): each reads only the tasks it counts, through a partial
index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, text

from farm_adapters.sql import tables as t
from farm_adapters.sql.changes import SqlChangeMarker
from farm_adapters.sql.engine import create_database_engine
from farm_adapters.sql.statistics import SqlFarmStatistics

TASKS = 50_000
QUEUED, RUNNING = 2_000, 200
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    yield engine
    engine.dispose()


def _state(n: int) -> str | None:
    return None if n <= QUEUED else "running" if n <= QUEUED + RUNNING else "done"


def _farm(engine: Engine) -> None:
    """50,000 tasks: 2,000 queued, 200 running half done, the others done one every 3 minutes
    before NOW (over 100 days); a history row per task."""
    tasks = [
        {
            "id": n,
            "job_id": 1 + n % 50,
            "frame": float(n),
            "state": _state(n),
            "priority": 50,
            "attempts": 1,
            "failures": 0,
            "sent_to_agent": False,
            "hidden": False,
            "progress": None if n <= QUEUED else 0.5,
            "time_finished": (
                NOW - timedelta(minutes=3 * (n - QUEUED - RUNNING)) if _state(n) == "done" else None
            ),
        }
        for n in range(1, TASKS + 1)
    ]
    with engine.begin() as connection:
        connection.execute(insert(t.jobtypes), [{"id": 1, "name": "render"}])
        connection.execute(
            insert(t.jobtype_versions),
            [{"id": 1, "jobtype_id": 1, "version": 1, "batch_contiguous": True}],
        )
        connection.execute(
            insert(t.jobs),
            [
                {
                    "id": n,
                    "title": f"shot {n}",
                    "jobtype_version_id": 1,
                    "priority": 50,
                    "requeue": 3,
                    "time_submitted": NOW,
                }
                for n in range(1, 51)
            ],
        )
        connection.execute(insert(t.tasks), tasks)
        connection.execute(
            insert(t.task_history),
            [
                {
                    "task_id": task["id"],
                    "job_id": task["job_id"],
                    "at": NOW,
                    "before": "queued",
                    "after": "assigned",
                    "reason": "test",
                }
                for task in tasks
            ],
        )
        connection.execute(text("ANALYZE"))


def _sql(engine: Engine, statement: object) -> str:
    return str(statement.compile(engine, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]


def _reads_only(engine: Engine, statement: object, index: str, most: int) -> None:
    """The statement reads the tasks through ``index`` only, ``most`` of them at most.

    PostgreSQL: no Seq Scan on tasks, and the plan's nodes on tasks, run, return or discard
    ``most`` rows at most (``EXPLAIN ANALYZE``). SQLite: every step on tasks goes through
    ``index`` (a partial index: it holds the rows counted only)."""
    sql = _sql(engine, statement)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = [str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
            on_tasks = [step for step in plan if " tasks" in f" {step}"]
            assert on_tasks and all(f"INDEX {index}" in step for step in on_tasks), plan
            return
        (tree,) = connection.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
    nodes, read = [tree["Plan"]], 0
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node.get("Relation Name") == "tasks":
            assert node["Node Type"] != "Seq Scan", tree
            read += node["Actual Rows"] * node["Actual Loops"]
            read += node.get("Rows Removed by Filter", 0) + node.get(
                "Rows Removed by Index Recheck", 0
            )
    assert 0 < read <= most, tree
    assert index in str(tree), tree


def test_the_marker_and_the_hourly_counts_read_no_task_but_the_ones_they_count(
    engine: Engine,
) -> None:
    _farm(engine)
    marker = SqlChangeMarker(engine)
    _reads_only(engine, marker.statement, "ix_tasks_running", RUNNING)
    # newest history row, agent history, event, job; running tasks and their progress
    assert marker.marker() == f"{TASKS}|||50|{RUNNING}|{RUNNING * 0.5:.6f}"

    statistics = SqlFarmStatistics(engine)
    since = NOW - timedelta(hours=23)
    _reads_only(
        engine, statistics.done_per_hour_statement(since), "ix_tasks_done_time_finished", 23 * 20
    )
    # one every 3 minutes: 20 in each of the 23 hours
    assert list(statistics.done_per_hour(since).values()) == [20] * 23
