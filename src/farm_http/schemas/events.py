"""The audit trail's query string and events as the API shows them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypedDict

from farm_domain.access import Role
from farm_domain.errors import ValidationError
from farm_domain.events import MAX_EVENTS, Event, EventQuery, parse_time
from farm_http.conversion import IsoTime, iso_time, url_argument_error, values_of
from farm_http.openapi import Json


class EventFilters(TypedDict, total=False):
    """The audit trail's query string (any other argument is refused)."""

    target: str
    actor: str
    since: IsoTime
    limit: Annotated[int, Json(minimum=1, maximum=MAX_EVENTS)]


_ARGUMENTS = tuple(EventFilters.__annotations__)


def event_query(params: Mapping[str, str | list[str]]) -> EventQuery:
    """Filters from the query string, strictly: unknown or repeated arguments and bad values
    are 400s."""
    unknown = sorted(set(params) - set(_ARGUMENTS))
    if unknown:
        raise url_argument_error(unknown[0], f"unknown argument (use {', '.join(_ARGUMENTS)})")
    values: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, list):
            raise url_argument_error(name, "given more than once")
        values[name] = value
    limit = values.get("limit")
    if limit is not None and not (limit.isascii() and limit.isdigit() and len(limit) <= 4):
        raise url_argument_error("limit", f"{limit!r} is not a whole number from 1 to {MAX_EVENTS}")
    try:
        since = values.get("since")
        return EventQuery(
            target=values.get("target"),
            actor=values.get("actor"),
            since=None if since is None else parse_time(since),
            limit=100 if limit is None else int(limit),
        )
    except ValidationError as error:
        raise url_argument_error(error.field or "query", error.message) from None


class EventJson(TypedDict):
    """One change: who (``actor``, ``role``, ``address``) did ``action`` to ``target``;
    ``before`` and ``after`` hold the fields that changed."""

    id: int
    at: IsoTime | None
    actor: str
    role: Annotated[str, values_of(Role)]
    address: str | None
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def event_json(event: Event) -> EventJson:
    return {
        "id": event.id,
        "at": iso_time(event.at),
        "actor": event.actor,
        "role": event.role.value,
        "address": event.address,
        "action": event.action,
        "target": event.target,
        "before": event.before,
        "after": event.after,
    }
