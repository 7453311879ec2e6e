"""The audit trail: recording each change with the unit of work that makes it, and reading it.

Every service records an ``Event`` for each change it makes through ``uow.events``, in the same
unit of work as the change, so that an event exists exactly when its change was committed.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from farm_domain.access import AccessPolicy, Identity, Permission
from farm_domain.events import Event, EventQuery, JsonObject
from farm_domain.ports import UnitOfWork, UnitOfWorkFactory


def job_target(job_id: int) -> str:
    return f"job:{job_id}"


def agent_target(agent_id: uuid.UUID) -> str:
    return f"agent:{agent_id}"


def record(
    uow: UnitOfWork,
    actor: Identity,
    at: datetime,
    action: str,
    target: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> Event:
    """Add an event for a change made in ``uow`` (committed with it, or not at all)."""
    return uow.events.add(
        Event(
            id=0,
            at=at,
            actor=actor.name,
            role=actor.role,
            address=actor.address,
            action=action,
            target=target,
            before=None if before is None else {k: jsonable(v) for k, v in before.items()},
            after=None if after is None else {k: jsonable(v) for k, v in after.items()},
        )
    )


def changes(before: object, after: object, names: Iterable[str]) -> tuple[JsonObject, JsonObject]:
    """The fields among ``names`` whose values differ between two versions of an entity, as
    (before, after); both empty when nothing changed."""
    old: JsonObject = {}
    new: JsonObject = {}
    for name in names:
        was, now = getattr(before, name), getattr(after, name)
        if was != now:
            old[name], new[name] = jsonable(was), jsonable(now)
    return old, new


def jsonable(value: Any) -> Any:
    """A JSON-ready copy of a domain value (attrs entities, enums, ids, times, sets)."""
    if attrs.has(type(value)):
        return {a.name: jsonable(getattr(value, a.name)) for a in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=str)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return str(value) if hasattr(value, "label") else value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class AuditTrail:
    """The trail as people read it."""

    def __init__(self, uow: UnitOfWorkFactory, *, policy: AccessPolicy) -> None:
        self._uow = uow
        self._policy = policy

    def query(self, actor: Identity, query: EventQuery = EventQuery()) -> list[Event]:
        """Events matching the query, newest first. Raises Forbidden."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            return uow.events.query(query)
