"""One structured log line per request."""

from __future__ import annotations

import logging
import time

import falcon

log = logging.getLogger("farm.http.access")


class RequestLog:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response,
                         resource: object, req_succeeded: bool) -> None:
        started = getattr(req.context, "started", None)
        elapsed = 0.0 if started is None else (time.perf_counter() - started) * 1000
        log.info(
            "%s %s %s", req.method, req.relative_uri, resp.status_code,
            extra={"method": req.method, "path": req.path, "status": resp.status_code,
                   "ms": round(elapsed, 2), "peer": req.remote_addr},
        )
