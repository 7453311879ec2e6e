"""Events of the audit trail: who changed what on the farm, when, from where, and how."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from farm_domain.access import Role
from farm_domain.errors import ValidationError

MAX_EVENTS = 1000
"""The most events one query answers."""

MAX_TARGET = 200
MAX_ACTOR = 255

JsonObject = dict[str, Any]


@attrs.frozen
class Event:
    """One change: ``actor`` (an identity's name, with its ``role`` and ``address``) did
    ``action`` (``job.submit``, ``agent.state``…) to ``target`` (``job:12``, ``agent:<id>``…);
    ``before`` and ``after`` hold the fields that changed (None where there is nothing)."""

    id: int
    at: datetime
    actor: str
    role: Role
    address: str | None
    action: str
    target: str
    before: JsonObject | None = None
    after: JsonObject | None = None


@attrs.frozen
class EventQuery:
    """Filters for reading the trail, AND-ed; newest first, at most ``limit`` events."""

    target: str | None = None
    actor: str | None = None
    since: datetime | None = None
    limit: int = 100

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_EVENTS:
            raise ValidationError(f"`limit` must be between 1 and {MAX_EVENTS}", field="limit")
        if self.target is not None and not 1 <= len(self.target) <= MAX_TARGET:
            raise ValidationError(f"`target` must be 1 to {MAX_TARGET} characters", field="target")
        if self.actor is not None and not 1 <= len(self.actor) <= MAX_ACTOR:
            raise ValidationError(f"`actor` must be 1 to {MAX_ACTOR} characters", field="actor")
        if self.since is not None and self.since.tzinfo is None:
            raise ValidationError("`since` needs a time zone", field="since")


def parse_time(text: str, field: str = "since") -> datetime:
    """An ISO-8601 time (``2026-01-02T03:04:05Z``, ``2026-01-02``); without a zone it is UTC.
    Raises ValidationError."""
    try:
        value = datetime.fromisoformat(text) if len(text) <= 64 else None
    except ValueError:
        value = None
    if value is None:
        raise ValidationError(f"{text!r} is not an ISO-8601 time", field=field)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
