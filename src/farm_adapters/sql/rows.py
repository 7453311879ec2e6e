"""Row <-> entity mapping and the reads the repositories share (tasks, requirements, labels)."""

from __future__ import annotations

import functools
from typing import Any, TypeVar, cast

from sqlalchemy import Column, Connection, CursorResult, Table, Uuid, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping

from farm_adapters.sql import tables as t
from farm_domain.enums import CodedEnum, WorkState
from farm_domain.work import SoftwareRequirement, Task, TaskOutput

Labelled = TypeVar("Labelled", bound=CodedEnum)

# The statements on an agent's id (its row, its active tasks) share one typed parameter; they
# are built once (see farm_adapters.sql.agents).
AGENT_ID = bindparam("agent_id", type_=Uuid())


def by_label(cls: type[Labelled], label: str) -> Labelled:
    """The member of a coded enum stored as ``label``."""
    return cast(Labelled, _labels(cls)[label])


@functools.cache
def _labels(cls: type[CodedEnum]) -> dict[str, CodedEnum]:
    # Three per agent read (every heartbeat): a search through the members each time cost
    # more than the rest of turning the row into an Agent.
    return {member.label: member for member in cls}


def dialect_insert(connection: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can take the connection's dialect's ON CONFLICT clause."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignoring_duplicates(
    connection: Connection, table: Table
) -> postgresql.Insert | sqlite.Insert:
    return dialect_insert(connection, table).on_conflict_do_nothing()


def inserted_id(result: CursorResult[Any]) -> int:
    """The integer primary key of the row an INSERT just added."""
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row always has one
    new_id: int = key[0]
    return new_id


def task_row(task: Task) -> dict[str, Any]:
    return {
        "job_id": task.job_id,
        "frame": task.frame,
        "state": task.state.value if task.state else None,
        "priority": task.priority,
        "attempts": task.attempts,
        "failures": task.failures,
        "agent_id": task.agent_id,
        "sent_to_agent": task.sent_to_agent,
        "sent_at": task.sent_at,
        "last_error": task.last_error,
        "hidden": task.hidden,
        "progress": task.progress,
        "time_submitted": task.time_submitted,
        "time_started": task.time_started,
        "time_finished": task.time_finished,
        "not_before": task.not_before,
        "reason": task.reason,
        "failed_on": task.failed_on,
        "skipped": task.skipped,
        "outputs": [{"path": o.path, "size": o.size} for o in task.outputs] or None,
    }


def task_from(m: RowMapping) -> Task:
    return Task(
        id=m["id"],
        job_id=m["job_id"],
        frame=m["frame"],
        state=WorkState(m["state"]) if m["state"] else None,
        priority=m["priority"],
        attempts=m["attempts"],
        failures=m["failures"],
        agent_id=m["agent_id"],
        sent_to_agent=m["sent_to_agent"],
        sent_at=m["sent_at"],
        last_error=m["last_error"],
        hidden=m["hidden"],
        progress=m["progress"],
        time_submitted=m["time_submitted"],
        time_started=m["time_started"],
        time_finished=m["time_finished"],
        not_before=m["not_before"],
        reason=m["reason"],
        failed_on=m["failed_on"],
        skipped=m["skipped"],
        outputs=tuple(TaskOutput(o["path"], o["size"]) for o in m["outputs"] or ()),
    )


def requirements_of(
    connection: Connection, owner: Column[int], owner_ids: list[int]
) -> dict[int, list[SoftwareRequirement]]:
    """Software requirements by owner id, from the requirements table ``owner`` belongs to
    (a job's or a job type version's), with the catalogue's current names and bounds."""
    if not owner_ids:
        return {}
    r = owner.table.c
    low = t.software_versions.alias("low")
    high = t.software_versions.alias("high")
    rows = connection.execute(
        select(
            owner,
            r.software_id,
            t.software.c.software,
            r.min_version_id,
            low.c.version,
            r.max_version_id,
            high.c.version,
        )
        .join(t.software, t.software.c.id == r.software_id)
        .outerjoin(low, low.c.id == r.min_version_id)
        .outerjoin(high, high.c.id == r.max_version_id)
        .where(owner.in_(owner_ids))
        .order_by(t.software.c.software)
    )
    found: dict[int, list[SoftwareRequirement]] = {}
    for owner_id, *fields in rows:
        found.setdefault(owner_id, []).append(SoftwareRequirement(*fields))
    return found


def tag_requirements_of(
    connection: Connection, job_ids: list[int]
) -> dict[int, list[tuple[str, bool]]]:
    if not job_ids:
        return {}
    r = t.job_tag_requirements.c
    found: dict[int, list[tuple[str, bool]]] = {}
    for job_id, tag, negate in connection.execute(
        select(r.job_id, r.tag, r.negate).where(r.job_id.in_(job_ids)).order_by(r.tag)
    ):
        found.setdefault(job_id, []).append((tag, negate))
    return found
