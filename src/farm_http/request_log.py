"""The access log: one structured line per request, or only for the requests worth reading.

``all`` logs every request. ``errors`` (the default) logs answers of 400 and above and requests
slower than a threshold: a farm of 4,000 agents reporting every 5 s makes 800 heartbeats a
second, and a line for each would bury what matters (agent state changes, dispatch outcomes and
failures are logged by the services themselves). ``off`` logs none.
"""

from __future__ import annotations

import logging
import time

import falcon

log = logging.getLogger("farm.http.access")

ACCESS_LOG_MODES = ("all", "errors", "off")


class RequestLog:
    def __init__(self, mode: str, slow_ms: float) -> None:
        if mode not in ACCESS_LOG_MODES:
            raise ValueError(f"access log mode must be one of {ACCESS_LOG_MODES}, not {mode!r}")
        self._all = mode == "all"
        self._slow_ms = slow_ms

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        started = getattr(req.context, "started", None)
        elapsed = 0.0 if started is None else (time.perf_counter() - started) * 1000
        status = resp.status_code
        if not (self._all or status >= 400 or elapsed >= self._slow_ms):
            return
        log.log(
            logging.WARNING if elapsed >= self._slow_ms else logging.INFO,
            "%s %s %s",
            req.method,
            req.relative_uri,
            status,
            extra={
                "method": req.method,
                "path": req.path,
                "status": status,
                "ms": round(elapsed, 2),
                "peer": req.remote_addr,
            },
        )
