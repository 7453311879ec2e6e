"""The dashboard's change marker: a few aggregates of jobs, tasks, agents and events read in one
statement, once a second per web worker whatever the number of open pages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.exc import DBAPIError

from farm_adapters.sql import tables as t
from farm_domain.errors import Unavailable


def _count(table: Any, *conditions: Any) -> Any:
    return select(func.count()).select_from(table).where(*conditions).scalar_subquery()


class SqlChangeMarker:
    """What changes when a job, a task or an agent does, as the pages show them: the newest
    event (wranglers' actions, submissions), the jobs (how many, the newest), the tasks queued,
    assigned and running and the latest start and end, and the agents in each state."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        a, j, tk, e = t.agents.c, t.jobs.c, t.tasks.c, t.events.c
        self._statement = select(
            select(func.max(e.id)).scalar_subquery(),
            _count(t.jobs),
            select(func.max(j.id)).scalar_subquery(),
            _count(t.tasks, tk.state.is_(None), tk.agent_id.is_(None)),
            _count(t.tasks, tk.state.is_(None), tk.agent_id.is_not(None)),
            _count(t.tasks, tk.state == "running"),
            _count(t.tasks, tk.state == "done"),
            select(func.max(tk.time_started)).scalar_subquery(),
            select(func.max(tk.time_finished)).scalar_subquery(),
            _count(t.agents, and_(a.state == "online", a.disabled.is_(False))),
            _count(t.agents, and_(a.state == "running", a.disabled.is_(False))),
            _count(t.agents, a.state == "offline"),
            _count(t.agents, a.disabled.is_(True)),
        )

    def marker(self) -> str:
        try:
            with self._engine.connect() as connection:
                row = connection.execute(self._statement).one()
        except DBAPIError as error:
            raise Unavailable("the database is unavailable; retry shortly") from error
        return "|".join("" if value is None else str(value) for value in row)
