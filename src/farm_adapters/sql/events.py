"""The audit trail's repository: events appended, read newest first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from farm_adapters.sql import tables as t
from farm_adapters.sql.rows import inserted_id
from farm_domain.access import Role
from farm_domain.events import Event, EventQuery


def _event_row(event: Event) -> dict[str, Any]:
    return {
        "at": event.at,
        "actor": event.actor,
        "role": event.role.value,
        "address": event.address,
        "action": event.action,
        "target": event.target,
        "before": event.before,
        "after": event.after,
    }


class SqlEventRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, event: Event) -> Event:
        new_id = inserted_id(self._c.execute(insert(t.events).values(_event_row(event))))
        return Event(
            id=new_id,
            at=event.at,
            actor=event.actor,
            role=event.role,
            address=event.address,
            action=event.action,
            target=event.target,
            before=event.before,
            after=event.after,
        )

    def query(self, query: EventQuery) -> list[Event]:
        e = t.events.c
        statement = select(t.events).order_by(e.at.desc(), e.id.desc()).limit(query.limit)
        if query.target is not None:
            statement = statement.where(e.target == query.target)
        if query.actor is not None:
            statement = statement.where(e.actor == query.actor)
        if query.since is not None:
            statement = statement.where(e.at >= query.since)
        return [
            Event(
                id=m["id"],
                at=m["at"],
                actor=m["actor"],
                role=Role(m["role"]),
                address=m["address"],
                action=m["action"],
                target=m["target"],
                before=m["before"],
                after=m["after"],
            )
            for m in (row._mapping for row in self._c.execute(statement))
        ]
