"""The audit trail (``/api/v1/events``): who changed what, newest first."""

from __future__ import annotations

import falcon

from farm_domain.audit import AuditTrail
from farm_http.identity import actor
from farm_http.schemas.events import event_json, event_query


class EventCollectionResource:
    def __init__(self, events: AuditTrail) -> None:
        self._events = events

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = event_query(req.params)
        resp.media = [event_json(event) for event in self._events.query(actor(req), query)]
