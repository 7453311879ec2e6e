"""The single error table: every error leaves as ``{"error": ...}`` with its status (or, for a
browser on a dashboard page, as the same message in a page: see ``install``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
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


ErrorPage = Callable[[falcon.Request, falcon.Response, str], bool]
"""Renders an error's message as a page into the response (status already set) and says
whether it did; otherwise the error leaves as JSON."""


def _domain_error(
    req: falcon.Request,
    resp: falcon.Response,
    error: DomainError,
    params: dict[str, Any],
    page: ErrorPage | None = None,
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
    if page is not None and page(req, resp, error.message):
        return
    resp.data = orjson.dumps(body)
    resp.content_type = falcon.MEDIA_JSON


def _serialize_http_error(
    req: falcon.Request,
    resp: falcon.Response,
    error: falcon.HTTPError,
    page: ErrorPage | None = None,
) -> None:
    message = error.description or error.title
    if page is not None and page(req, resp, message):
        return
    resp.data = orjson.dumps({"error": message})
    resp.content_type = falcon.MEDIA_JSON


def install(
    app: falcon.App[falcon.Request, falcon.Response], page: ErrorPage | None = None
) -> None:
    """The error table on ``app``; ``page`` may answer an error with a page instead of JSON
    (the dashboard, to a browser that asks for HTML)."""

    def serialize(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
        _serialize_http_error(req, resp, error, page)

    def domain_error(
        req: falcon.Request, resp: falcon.Response, error: DomainError, params: dict[str, Any]
    ) -> None:
        _domain_error(req, resp, error, params, page)

    app.set_error_serializer(serialize)
    app.add_error_handler(DomainError, domain_error)
