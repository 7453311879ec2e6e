"""The history's repository and the statements the tasks' and agents' repositories record it
with, in the transaction that changes the state."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Select,
    Table,
    delete,
    func,
    insert,
    select,
)

from farm_adapters.sql import tables as t
from farm_domain.history import (
    AGENT_HISTORY_KEPT,
    TASK_HISTORY_KEPT,
    HistoryPage,
    StateChange,
)


def _task_row(change: StateChange) -> dict[str, Any]:
    return {
        "task_id": change.task_id,
        "job_id": change.job_id,
        "agent_id": change.agent_id,
        "at": change.at,
        "before": change.before,
        "after": change.after,
        "reason": change.reason,
    }


def record_task_changes(connection: Connection, changes: Sequence[StateChange]) -> None:
    """Append task changes; a task put back in the queue keeps its newest TASK_HISTORY_KEPT."""
    if not changes:
        return
    connection.execute(insert(t.task_history), [_task_row(change) for change in changes])
    looped = {c.task_id for c in changes if c.after == "queued" and c.task_id is not None}
    trim(connection, t.task_history, t.task_history.c.task_id, looped, TASK_HISTORY_KEPT)


def record_task_changes_selected(connection: Connection, changes: Select[Any]) -> None:
    """Append the task changes a SELECT of (task id, job id, agent id, time, before, after,
    reason) finds, in one statement however many rows (no task's rows are trimmed: for
    changes that do not put tasks back in the queue)."""
    columns = ["task_id", "job_id", "agent_id", "at", "before", "after", "reason"]
    connection.execute(insert(t.task_history).from_select(columns, changes))


def record_agent_change(connection: Connection, change: StateChange) -> None:
    """Append an agent's change and drop its rows beyond AGENT_HISTORY_KEPT."""
    connection.execute(
        insert(t.agent_history).values(
            agent_id=change.agent_id,
            at=change.at,
            before=change.before,
            after=change.after,
            reason=change.reason,
        )
    )
    trim(
        connection,
        t.agent_history,
        t.agent_history.c.agent_id,
        [change.agent_id],
        AGENT_HISTORY_KEPT,
    )


def trim(
    connection: Connection, table: Table, subject: Column[Any], keys: Iterable[Any], kept: int
) -> None:
    """Delete the rows of ``keys`` older than each one's newest ``kept``."""
    wanted = list(keys)
    if not wanted:
        return
    ranked = (
        select(
            table.c.id,
            func.row_number().over(partition_by=subject, order_by=table.c.id.desc()).label("n"),
        )
        .where(subject.in_(wanted))
        .subquery()
    )
    connection.execute(
        delete(table).where(table.c.id.in_(select(ranked.c.id).where(ranked.c.n > kept)))
    )


class SqlHistoryRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def of_task(self, task_id: int, page: HistoryPage) -> list[StateChange]:
        return self._page(t.task_history, t.task_history.c.task_id == task_id, page)

    def of_agent(self, agent_id: uuid.UUID, page: HistoryPage) -> list[StateChange]:
        return self._page(t.agent_history, t.agent_history.c.agent_id == agent_id, page)

    def _page(
        self, table: Table, whose: ColumnElement[bool], page: HistoryPage
    ) -> list[StateChange]:
        """One page of a history, newest first: the columns are the entity's fields."""
        statement = select(table).where(whose)
        if page.before is not None:
            statement = statement.where(table.c.id < page.before)
        rows = self._c.execute(statement.order_by(table.c.id.desc()).limit(page.limit))
        return [StateChange(**row._mapping) for row in rows]
