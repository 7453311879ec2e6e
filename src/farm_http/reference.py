"""The API's own description: the OpenAPI document (``GET /api/v1/openapi.json``), built once
per process from the route table (``farm_http.openapi``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import falcon
import orjson

from farm_http.openapi import document

if TYPE_CHECKING:
    from farm_http.routes import Route


def farm_version() -> str:
    try:
        return version("farm")
    except PackageNotFoundError:
        return "0"


@functools.cache
def _document(routes: tuple[Route, ...]) -> tuple[dict[str, Any], bytes]:
    built = document(routes, farm_version())
    return built, orjson.dumps(built)


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    """The document of ``routes`` (built once)."""
    return _document(tuple(routes))[0]


class OpenApiResource:
    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = tuple(routes)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = _document(self._routes)[1]
        resp.content_type = falcon.MEDIA_JSON
