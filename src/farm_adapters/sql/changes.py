"""The dashboard's change marker, read once a second per web worker whatever the number of open
pages: one statement of index lookups whose cost does not grow with the tasks the farm keeps."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError

from farm_adapters.sql import tables as t
from farm_domain.errors import Unavailable


def _newest(table: Any) -> Any:
    return select(func.max(table.c.id)).scalar_subquery()


class SqlChangeMarker:
    """What moves when a job, a task or an agent changes as the pages show them:

    - the newest task and agent history rows: every change of a task's state (assigned, sent,
      running, done, failed, back in the queue...) or an agent's (its state, disabled or
      enabled) writes one, in the same transaction;
    - the newest audit event: every change a person or the master makes to a job or an agent
      (priority, pause, delete, a job's state...) records one;
    - the newest job (a job is counted from the moment it is stored);
    - the running tasks: how many and the sum of their progress (a progress report changes no
      state, so it writes no history row), read through the partial index ``ix_tasks_running``:
      as many rows as frames run at once, however many tasks the farm keeps.

    Each max is one lookup at the end of a primary key. On PostgreSQL an id is taken before its
    transaction commits, so a change committed just after a newer one may leave the maximum as
    it was; the page that the newer change made fetch itself again reads it anyway, or the next
    change shows it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        tk = t.tasks.c
        running = (
            select(func.count(), func.coalesce(func.sum(tk.progress), 0.0))
            .where(t.TASK_IS_RUNNING)
            .subquery()
        )
        self._statement = select(
            _newest(t.task_history),
            _newest(t.agent_history),
            _newest(t.events),
            _newest(t.jobs),
            *running.c,
        )

    @property
    def statement(self) -> Any:
        """The statement the marker runs (for its plan)."""
        return self._statement

    def marker(self) -> str:
        try:
            with self._engine.connect() as connection:
                row = connection.execute(self._statement).one()
        except DBAPIError as error:
            raise Unavailable("the database is unavailable; retry shortly") from error
        *newest, running, progress = row
        # Rounded: a sum of floats read twice in another order must not look like a change.
        values = [*newest, running, f"{float(progress):.6f}"]
        return "|".join("" if value is None else str(value) for value in values)
