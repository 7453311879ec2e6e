"""Seeding a database fast (bulk inserts through the adapter's tables), for the benchmarks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, Engine, insert

from farm_adapters.sql import tables as t

CHUNK = 5000


def _agent_row(agent_id: uuid.UUID, number: int, now: datetime) -> dict[str, object]:
    return {
        "id": agent_id,
        "hostname": f"node{number:06d}",
        "remote_ip": "127.0.0.1",
        "use_address": "remote",
        "os_class": "linux",
        "os_fullname": "Debian 12",
        "cpu_name": "bench",
        "ram": 1024 * (1 + number % 64),
        "free_ram": 4096,
        "cpus": 1 + number % 32,
        "port": 50000,
        "time_offset": 0,
        "version": "0.8.6",
        "upgrade_to": None,
        "ram_allocation": 0.8,
        "cpu_allocation": 1.0,
        "restart_requested": False,
        "state": "online",
        "disabled": False,
        "last_heard_from": now,
        "last_polled": None,
    }


def agents(engine: Engine, count: int, start: int = 0) -> list[uuid.UUID]:
    now = datetime.now(UTC)
    ids = [uuid.UUID(int=start + n + 1) for n in range(count)]
    with engine.begin() as connection:
        for offset in range(0, count, CHUNK):
            rows = [
                _agent_row(agent_id, start + offset + n, now)
                for n, agent_id in enumerate(ids[offset : offset + CHUNK])
            ]
            connection.execute(insert(t.agents), rows)
    return ids


def _new_id(result: CursorResult[Any]) -> int:
    """The primary key of the one row an insert added."""
    key = result.inserted_primary_key
    assert key is not None
    new_id: int = key[0]
    return new_id


def job(engine: Engine, title: str = "bench") -> int:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        jobtype = _new_id(connection.execute(insert(t.jobtypes).values(name=f"bench-{title}")))
        version = _new_id(
            connection.execute(
                insert(t.jobtype_versions).values(
                    jobtype_id=jobtype, version=1, batch_contiguous=True
                )
            )
        )
        return _new_id(
            connection.execute(
                insert(t.jobs).values(
                    title=title,
                    jobtype_version_id=version,
                    priority=0,
                    requeue=3,
                    time_submitted=now,
                    batch=5,
                )
            )
        )


def tasks(
    engine: Engine,
    job_id: int,
    count: int,
    owners: list[uuid.UUID] | None = None,
    per_owner: int = 4,
    done: bool = False,
) -> None:
    """``count`` tasks of the job; the first ``len(owners) * per_owner`` are sent to owners."""
    now = datetime.now(UTC)
    owners = owners or []
    with engine.begin() as connection:
        for offset in range(0, count, CHUNK):
            rows = []
            for n in range(offset, min(count, offset + CHUNK)):
                owner = owners[n // per_owner] if n < len(owners) * per_owner else None
                rows.append(
                    {
                        "job_id": job_id,
                        "frame": float(n + 1),
                        "state": "done" if done and owner is None else None,
                        "priority": 0,
                        "attempts": 1 if owner else 0,
                        "failures": 0,
                        "agent_id": owner,
                        "sent_to_agent": owner is not None,
                        "sent_at": now if owner else None,
                        "last_error": None,
                        "hidden": False,
                        "progress": None,
                        "time_submitted": now,
                        "time_started": None,
                        "time_finished": None,
                    }
                )
            connection.execute(insert(t.tasks), rows)


def task_ids_of(engine: Engine, owners: list[uuid.UUID]) -> dict[uuid.UUID, list[int]]:
    from sqlalchemy import select

    found: dict[uuid.UUID, list[int]] = {owner: [] for owner in owners}
    with engine.connect() as connection:
        for offset in range(0, len(owners), CHUNK):
            chunk = owners[offset : offset + CHUNK]
            rows = connection.execute(
                select(t.tasks.c.agent_id, t.tasks.c.id).where(t.tasks.c.agent_id.in_(chunk))
            )
            for owner, task_id in rows:
                found[owner].append(task_id)
    return found


def set_state(engine: Engine, agents: list[uuid.UUID], state: str) -> None:
    from sqlalchemy import update

    with engine.begin() as connection:
        for offset in range(0, len(agents), CHUNK):
            chunk = agents[offset : offset + CHUNK]
            connection.execute(update(t.agents).where(t.agents.c.id.in_(chunk)).values(state=state))
