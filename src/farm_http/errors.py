"""The single error table: every error leaves as ``{"error": ...}`` with its status."""

from __future__ import annotations

import logging
from typing import Any

import falcon
import orjson

from farm_domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    MisconfiguredDefaults,
    NotFound,
    StorageFull,
    TooLarge,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    ValidationError,
)

log = logging.getLogger("farm.http")

STATUS_OF: list[tuple[type[DomainError], str]] = [
    (ValidationError, falcon.HTTP_400),
    (Unauthenticated, falcon.HTTP_401),
    (Forbidden, falcon.HTTP_403),
    (NotFound, falcon.HTTP_404),
    (Conflict, falcon.HTTP_409),
    (TooLarge, falcon.HTTP_413),
    (TooManyRequests, falcon.HTTP_429),
    (StorageFull, falcon.HTTP_507),
    (Unavailable, falcon.HTTP_503),
    # The operator's configuration is wrong, not the request: the contract answers 500.
    (MisconfiguredDefaults, falcon.HTTP_500),
]


def _status(error: DomainError) -> str:
    for cls, status in STATUS_OF:
        if isinstance(error, cls):
            return status
    return falcon.HTTP_500


def status_code(error: DomainError) -> int:
    """The HTTP status ``error`` is answered with, as a number (a bulk answer's items)."""
    return int(_status(error).split()[0])


def _domain_error(
    req: falcon.Request, resp: falcon.Response, error: DomainError, params: dict[str, Any]
) -> None:
    status = _status(error)
    body: dict[str, Any] = {"error": error.message}
    field = getattr(error, "field", None)
    if field:
        body["field"] = field
    if status == falcon.HTTP_500:
        log.error("configuration error", extra={"error": error.message, "path": req.path})
    elif status == falcon.HTTP_503:
        log.warning("database unavailable", extra={"error": error.message, "path": req.path})
        resp.set_header("Retry-After", "1")
    elif isinstance(error, TooManyRequests):
        resp.set_header("Retry-After", str(error.retry_after))
    elif status == falcon.HTTP_401:
        resp.set_header("WWW-Authenticate", 'Bearer realm="farm"')
    resp.status = status
    resp.data = orjson.dumps(body)
    resp.content_type = falcon.MEDIA_JSON


def _serialize_http_error(
    req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError
) -> None:
    resp.data = orjson.dumps({"error": error.description or error.title})
    resp.content_type = falcon.MEDIA_JSON


def install(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.set_error_serializer(_serialize_http_error)
    app.add_error_handler(DomainError, _domain_error)
