"""The farm overview's aggregates (farm_domain.overview), each one statement; the hourly ones
read an index range (``ix_tasks_done_time_finished``, ``ix_task_failures_at``), not every row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, case, distinct, func, select
from sqlalchemy.exc import DBAPIError

from farm_adapters.sql import tables as t
from farm_domain.errors import Unavailable


class SqlFarmStatistics:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _rows(self, statement: Any) -> list[Any]:
        try:
            with self._engine.connect() as connection:
                return list(connection.execute(statement).all())
        except DBAPIError as error:
            raise Unavailable("the database is unavailable; retry shortly") from error

    def agent_counts(self) -> tuple[dict[str, int], int]:
        a, tk = t.agents.c, t.tasks.c
        shown = case(
            (and_(a.disabled.is_(True), a.state != "offline"), "disabled"), else_=a.state
        ).label("shown")
        states = {
            row.shown: row.n
            for row in self._rows(select(shown, func.count().label("n")).group_by(shown))
        }
        busy = self._rows(
            select(func.count(distinct(tk.agent_id))).where(
                tk.agent_id.is_not(None), t.TASK_IS_ACTIVE
            )
        )[0][0]
        return states, busy

    def done_per_hour_statement(self, since: datetime) -> Any:
        """The frames done since ``since`` by hour (``hour``: "YYYY-MM-DD HH", UTC; ``n``)."""
        tk = t.tasks.c
        if self._engine.dialect.name == "postgresql":
            hour: Any = func.to_char(func.timezone("UTC", tk.time_finished), "YYYY-MM-DD HH24")
        else:  # SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff" in UTC
            hour = func.substr(tk.time_finished, 1, 13)
        hour = hour.label("hour")
        return (
            select(hour, func.count().label("n"))
            .where(t.TASK_IS_DONE, tk.time_finished >= since)
            .group_by(hour)
        )

    def done_per_hour(self, since: datetime) -> dict[datetime, int]:
        rows = self._rows(self.done_per_hour_statement(since))
        return {
            datetime.strptime(row.hour, "%Y-%m-%d %H").replace(tzinfo=UTC): row.n for row in rows
        }

    def failures_by_reason(self, since: datetime) -> dict[str, int]:
        f = t.task_failures.c
        rows = self._rows(
            select(f.reason, func.count().label("n")).where(f.at >= since).group_by(f.reason)
        )
        return {row.reason: row.n for row in rows}
