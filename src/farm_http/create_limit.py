"""The create budgets at the HTTP edge (``farm_domain.budgets``).

A route method that may create (``Route.creates``) is checked before its responder runs: a client
without a create left is answered 429 with Retry-After, and nothing is read or changed. Only an
answer ``201 Created`` spends the budget, so the same method's updates (an agent announcing again,
a log registered again) are never counted; they are refused only while their client has spent
its whole budget on creates.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import falcon

from farm_domain.budgets import CreateBudgets
from farm_http.identity import actor


class CreateLimit:
    def __init__(self, budgets: CreateBudgets, creates: Mapping[str, Collection[str]]) -> None:
        """``creates``: route template -> the methods that may create."""
        self._budgets = budgets
        self._creates = creates

    def _creating(self, req: falcon.Request) -> bool:
        return req.method in self._creates.get(req.uri_template or "", ())

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: object
    ) -> None:
        if self._creating(req):
            self._budgets.check(actor(req))

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        identity = getattr(req.context, "identity", None)
        if req_succeeded and resp.status_code == 201 and self._creating(req) and identity:
            self._budgets.spend(identity)
