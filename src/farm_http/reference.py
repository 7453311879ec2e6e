"""The API's own description: the OpenAPI document (``GET /api/v1/openapi.json``), built once
per process from the route table (``farm_http.openapi``), and the same document as the
dashboard's reference page shows it."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import attrs
import falcon
import orjson
from markupsafe import Markup

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


# The reference page: the document, read by people (``/reference`` on the dashboard).

_OPERATIONS = ("get", "post", "put", "patch", "delete")


def _ref_link(ref: str) -> Markup:
    name = ref.rsplit("/", 1)[-1]
    return Markup('<a href="#schema-{0}">{0}</a>').format(name)


def label(schema: dict[str, Any]) -> Markup:
    """A short, readable type of ``schema``: ``array of JobJson`` (linked), ``string | null``,
    ``integer 1…1000``, ``one of "a", "b"``."""
    if "$ref" in schema:
        return _ref_link(schema["$ref"])
    if "anyOf" in schema:
        return Markup(" | ").join(label(option) for option in schema["anyOf"])
    if "enum" in schema:
        return Markup("one of ") + Markup(", ").join(
            Markup("<code>{}</code>").format(orjson.dumps(value).decode())
            for value in schema["enum"]
        )
    kinds = schema.get("type")
    if kinds is None:
        return Markup("any")
    if isinstance(kinds, list):
        return Markup(" | ").join(label({**schema, "type": kind}) for kind in kinds)
    text: Markup
    if kinds == "array":
        text = Markup("array of ") + label(schema.get("items", {}))
    elif kinds == "object" and isinstance(schema.get("additionalProperties"), dict):
        text = Markup("object of ") + label(schema["additionalProperties"])
    elif "contentMediaType" in schema:
        text = Markup("bytes ({})").format(schema["contentMediaType"])
    else:
        text = Markup("{}").format(kinds)
        if "format" in schema:
            text += Markup(" ({})").format(schema["format"])
    bounds = [
        f"{word} {schema[key]}"
        for key, word in (
            ("minimum", "≥"),
            ("maximum", "≤"),
            ("minLength", "length ≥"),
            ("maxLength", "length ≤"),
            ("minItems", "items ≥"),
            ("maxItems", "items ≤"),
        )
        if key in schema
    ]
    if bounds:
        text += Markup(' <span class="dim">{}</span>').format(", ".join(bounds))
    return text


@attrs.frozen
class Row:
    name: str
    type: Markup
    required: bool = False
    description: str = ""


@attrs.frozen
class Operation:
    method: str
    path: str
    anchor: str
    summary: str
    description: str
    parameters: list[Row]
    bodies: list[Row]
    """One per media type; ``required`` whether it must be sent."""
    answers: list[Row]
    """One per status and media type."""


@attrs.frozen
class SchemaView:
    name: str
    description: str
    type: Markup
    properties: list[Row]
    closed: bool


def reference(built: dict[str, Any]) -> tuple[list[tuple[str, list[Operation]]], list[SchemaView]]:
    """The document as the page shows it: operations grouped by tag, then the schemas."""
    groups: dict[str, list[Operation]] = {}
    for path, item in built["paths"].items():
        for method in _OPERATIONS:
            operation = item.get(method)
            if operation is None:
                continue
            body = operation.get("requestBody")
            groups.setdefault(operation["tags"][0], []).append(
                Operation(
                    method=method.upper(),
                    path=path,
                    anchor=operation["operationId"],
                    summary=operation["summary"],
                    description=operation["description"],
                    parameters=[
                        Row(
                            f"{p['name']} ({p['in']})",
                            label(p["schema"]),
                            p["required"],
                        )
                        for p in operation.get("parameters", ())
                    ],
                    bodies=[
                        Row(media, label(content["schema"]), body.get("required", False))
                        for media, content in (body or {}).get("content", {}).items()
                    ],
                    answers=[
                        Row(
                            status,
                            label(schema) if schema is not None else Markup("no body"),
                            description=response["description"],
                        )
                        for status, response in operation["responses"].items()
                        for schema in (
                            [c["schema"] for c in response["content"].values()]
                            if "content" in response
                            else [None]
                        )
                    ],
                )
            )
    schemas = [
        SchemaView(
            name=name,
            description=schema.get("description", ""),
            type=label({k: v for k, v in schema.items() if k != "properties"}),
            properties=[
                Row(prop, label(sub), prop in schema.get("required", ()))
                for prop, sub in schema.get("properties", {}).items()
            ],
            closed=schema.get("additionalProperties") is False,
        )
        for name, schema in built["components"]["schemas"].items()
    ]
    return sorted(groups.items()), schemas
