"""``/healthz``, ``/readyz`` and ``/metrics``, and the middleware that measures every request."""

from __future__ import annotations

import time
from typing import NotRequired, TypedDict

import falcon

from farm_domain.monitoring import Monitoring
from farm_http.peers import PeerResolver

UNMATCHED = "unmatched"
"""The route of a request no route matched (one label for every such path)."""

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HealthJson(TypedDict):
    status: str
    """``ok``."""


class ReadinessJson(TypedDict):
    status: str
    """``ready`` or ``not ready``."""
    error: NotRequired[str]
    """Not ready: what is wrong, in one line."""
    problems: NotRequired[list[str]]
    """Not ready: each thing that is wrong."""


class HealthResource:
    """The process answers: nothing else is looked at (a liveness probe)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        answer: HealthJson = {"status": "ok"}
        resp.media = answer


class ReadinessResource:
    """The database and the queue answer and the schema is current: 200, else 503 with what
    is wrong."""

    def __init__(self, monitoring: Monitoring) -> None:
        self._monitoring = monitoring

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        problems = self._monitoring.problems()
        if problems:
            resp.status = falcon.HTTP_503
            answer: ReadinessJson = {
                "status": "not ready",
                "error": "; ".join(problems),
                "problems": problems,
            }
        else:
            answer = {"status": "ready"}
        resp.media = answer


class MetricsResource:
    """Prometheus' exposition, for scrapers in FARM_METRICS_NETWORKS or with a token that may
    read the farm."""

    def __init__(self, monitoring: Monitoring, peers: PeerResolver) -> None:
        self._monitoring = monitoring
        self._peers = peers

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        exposition = self._monitoring.metrics(
            req.context.identity, self._peers.client_address(req), req.get_header("Accept")
        )
        resp.data = exposition.body
        resp.content_type = exposition.content_type
        resp.cache_control = ["no-store"]


class RequestMetrics:
    """Counts every request by route template, method and status, with its duration. First
    of the middleware, so that the time includes theirs."""

    def __init__(self, monitoring: Monitoring) -> None:
        self._observe = monitoring.observe_request

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        started = req.context.get("started")
        if started is None:
            return
        method = req.method if req.method in _METHODS else "other"
        self._observe(
            req.uri_template or UNMATCHED,
            method,
            resp.status_code,
            time.perf_counter() - started,
        )
