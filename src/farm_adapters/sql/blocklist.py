"""The blocklist's repository: which agents a job's work should not go to, and why."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, delete, select

from farm_adapters.sql import tables as t
from farm_adapters.sql.rows import dialect_insert
from farm_domain.scheduling import JobAgentBlock


def _upsert(
    connection: Connection,
    table: Table,
    keys: list[str],
    values: dict[str, Any],
    on_conflict: dict[str, Any],
) -> None:
    statement = dialect_insert(connection, table).values(values)
    connection.execute(statement.on_conflict_do_update(index_elements=keys, set_=on_conflict))


class SqlBlocklistRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def record_failure(self, job_id: int, agent_id: uuid.UUID, now: datetime) -> None:
        b = t.job_agent_blocks.c
        _upsert(
            self._c,
            t.job_agent_blocks,
            ["job_id", "agent_id"],
            {"job_id": job_id, "agent_id": agent_id, "failures": 1, "updated_on": now},
            {"failures": b.failures + 1, "updated_on": now},
        )

    def record_rejection(
        self,
        job_id: int,
        agent_id: uuid.UUID,
        fingerprint: str,
        now: datetime,
        refusal: str | None = None,
    ) -> None:
        _upsert(
            self._c,
            t.job_agent_blocks,
            ["job_id", "agent_id"],
            {
                "job_id": job_id,
                "agent_id": agent_id,
                "failures": 0,
                "rejected_fingerprint": fingerprint,
                "refusal": refusal,
                "updated_on": now,
            },
            {"rejected_fingerprint": fingerprint, "refusal": refusal, "updated_on": now},
        )

    def _select(self, condition: ColumnElement[bool]) -> list[JobAgentBlock]:
        b = t.job_agent_blocks.c
        rows = self._c.execute(
            select(t.job_agent_blocks).where(condition).order_by(b.job_id, b.agent_id)
        )
        return [
            JobAgentBlock(
                r.job_id, r.agent_id, r.failures, r.rejected_fingerprint, r.updated_on, r.refusal
            )
            for r in rows
        ]

    def of_agent(self, agent_id: uuid.UUID) -> list[JobAgentBlock]:
        return self._select(t.job_agent_blocks.c.agent_id == agent_id)

    def of_agents(self, agent_ids: Sequence[uuid.UUID]) -> list[JobAgentBlock]:
        if not agent_ids:
            return []
        return self._select(t.job_agent_blocks.c.agent_id.in_(agent_ids))

    def of_job(self, job_id: int) -> list[JobAgentBlock]:
        return self._select(t.job_agent_blocks.c.job_id == job_id)

    def clear(self, job_id: int, agent_id: uuid.UUID) -> None:
        self._c.execute(
            delete(t.job_agent_blocks).where(
                t.job_agent_blocks.c.job_id == job_id, t.job_agent_blocks.c.agent_id == agent_id
            )
        )

    def clear_job(self, job_id: int) -> int:
        result = self._c.execute(
            delete(t.job_agent_blocks).where(t.job_agent_blocks.c.job_id == job_id)
        )
        return result.rowcount
