"""What a request may look like before a responder sees it.

The size limit on JSON request bodies (``FARM_MAX_JSON_BYTES``) is checked before a responder
reads the body: a declared Content-Length over the limit is refused without reading anything,
and a chunked body is read only up to the limit + 1 byte. Uploads keep their own limits.

No NUL in the path or the query string: no name or value holds one, and PostgreSQL refuses it in
a query (a 500 if it got that far)."""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from urllib.parse import unquote

import falcon

from farm_domain.errors import TooLarge, ValidationError
from farm_http.authentication import is_api


class RequestShape:
    def __init__(self, max_bytes: int, json_bodies: Mapping[str, Collection[str]]) -> None:
        """``json_bodies``: route template -> the methods whose bodies are JSON."""
        self._max = max_bytes
        self._json_bodies = json_bodies

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if "\x00" in req.path or "\x00" in unquote(req.query_string):
            raise ValidationError("the URL must not contain NUL characters")

    def _refuse(self) -> TooLarge:
        return TooLarge(f"the JSON body is larger than {self._max} bytes (FARM_MAX_JSON_BYTES)")

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: object
    ) -> None:
        if not is_api(req) or req.method not in self._json_bodies.get(req.uri_template or "", ()):
            return
        length = req.content_length
        if length is not None:
            if length > self._max:
                raise self._refuse()
            return
        if "chunked" not in (req.get_header("Transfer-Encoding") or "").lower():
            return
        body = req.stream.read(self._max + 1)
        if len(body) > self._max:
            raise self._refuse()
        # The body is in memory now: hand it on as if it had come with its length.
        req.env["wsgi.input"] = req.stream = io.BytesIO(body)
        req.env["CONTENT_LENGTH"] = str(len(body))
