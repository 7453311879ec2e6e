"""The audit trail's fake repository."""

from __future__ import annotations

import attrs

from farm_domain.events import Event, EventQuery
from tests.support.fakes.store import FakeData, FakeStore


class FakeEventRepository:
    def __init__(self, data: FakeData, store: FakeStore) -> None:
        self._d = data
        self._store = store

    def add(self, event: Event) -> Event:
        event = attrs.evolve(event, id=self._store.next_id())
        self._d.events.append(event)
        return event

    def query(self, query: EventQuery) -> list[Event]:
        found = [
            event
            for event in self._d.events
            if (query.target is None or event.target == query.target)
            and (query.actor is None or event.actor == query.actor)
            and (query.since is None or event.at >= query.since)
        ]
        found.sort(key=lambda event: (event.at, event.id), reverse=True)
        return found[: query.limit]
