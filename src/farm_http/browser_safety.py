"""What keeps a browser from being turned against the master.

- ``Host`` must name the master (``FARM_ALLOWED_HOSTS``), else 400 on every route: a page on
  ``evil.example`` that rebinds its name to the master's address (DNS rebinding) sends its own
  name as the Host.
- JSON endpoints take bodies only as ``application/json`` (else 415): a cross-site page can
  send ``text/plain`` or type-less bodies without a CORS preflight, never ``application/json``.
  The raw uploads (log files, agent update archives) keep their own types, which their
  resources check.
- Every response forbids sniffing, framing and referrers; ``/api/`` answers also carry a
  Content-Security-Policy that allows nothing (the dashboard sets its own on its pages).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import falcon

from farm_http.authentication import is_api

ANY_HOST = "*"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"


class BrowserSafety:
    def __init__(
        self, allowed_hosts: Collection[str], json_bodies: Mapping[str, Collection[str]]
    ) -> None:
        """``json_bodies``: route template -> the methods whose bodies are JSON (a method the
        route does not answer is left to its 405)."""
        self._any_host = ANY_HOST in allowed_hosts
        self._hosts = frozenset(allowed_hosts)
        self._json_bodies = json_bodies

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._any_host:
            return
        host = req.host.lower().rstrip(".").strip("[]")
        if host not in self._hosts:
            raise falcon.HTTPBadRequest(
                description="this master does not answer to that Host (see FARM_ALLOWED_HOSTS)"
            )

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: object
    ) -> None:
        if not is_api(req) or req.method not in self._json_bodies.get(req.uri_template or "", ()):
            return
        media_type = (req.content_type or "").split(";")[0].strip().lower()
        if media_type != falcon.MEDIA_JSON:
            raise falcon.HTTPUnsupportedMediaType(description="send the body as application/json")

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        for name, value in HEADERS.items():
            resp.set_header(name, value)
        if is_api(req) and resp.get_header("Content-Security-Policy") is None:
            resp.set_header("Content-Security-Policy", API_CSP)
