"""The OpenAPI 3.1 document of the API, generated from the route table and the very types the
API parses requests into and builds its answers as.

Nothing here is written beside the schemas: each ``Route`` of ``farm_http.routes`` names, per
method, the type its body is structured into (an attrs class of the domain, such as ``JobSpec``,
or a TypedDict declared beside a hand-written parser), the type its answer is built as (the
TypedDict a ``*_json`` representation function returns, which mypy checks the function against),
and the TypedDict of its query string. ``json_schema`` turns those Python types into JSON Schema
by introspection:

- attrs classes: their fields; a field without a default is required; a field whose default is
  ``UNSET`` may be left out; extra keys are refused (the request converter forbids them);
- TypedDicts: their keys, required unless ``NotRequired`` (or the class is ``total=False``);
  extra keys are not part of the shape unless the class is declared ``open_shape``;
- ``list``/``tuple``/``frozenset``, ``dict[str, X]``, unions (``None`` → null), ``Literal``,
  enums (their values, or a coded enum's labels), ``UUID`` and ``datetime``;
- ``Annotated[X, Json(...)]``: the keywords are added to X's schema (bounds, formats), so that a
  bound is declared once, beside the parser that checks it.
"""

from __future__ import annotations

import datetime
import enum
import re
import types
import typing
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import attrs

from farm_domain.agents import Unset

if TYPE_CHECKING:
    from farm_http.routes import Route

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"

Schema = dict[str, Any]

_OPEN: set[type] = set()


class Json:
    """``Annotated`` metadata: JSON Schema keywords to add to the type's schema."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __hash__(self) -> int:  # typing hashes Annotated metadata (unions dedupe)
        return hash(repr(sorted(self.keywords.items())))

    def __repr__(self) -> str:
        return f"Json({self.keywords!r})"


def open_shape(cls: type[Any]) -> type[Any]:
    """Mark a TypedDict whose objects may carry keys beyond the ones it names (the parser
    ignores them)."""
    _OPEN.add(cls)
    return cls


@attrs.frozen
class Answer:
    """A method's successful answer: the type its body is built as (None: no body) and the
    statuses it may come with."""

    type: object
    statuses: tuple[int, ...] = (200,)
    media_type: str = JSON
    description: str = ""


@attrs.frozen
class MayOmit:
    """A JSON body that may be left out (nothing sent reads as ``{}``)."""

    type: object


@attrs.frozen
class Raw:
    """A body that is not JSON: an upload (or a download) of one of ``media_types``."""

    media_types: tuple[str, ...]
    description: str = ""


class ErrorJson(TypedDict):
    """Every refusal: the reason, and the field it concerns where there is one."""

    error: str
    field: NotRequired[str]


_PRIMITIVES: dict[object, Schema] = {
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    type(None): {"type": "null"},
    None: {"type": "null"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    datetime.datetime: {"type": "string", "format": "date-time"},
}


def _enum_values(cls: type[enum.Enum]) -> list[Any]:
    return [getattr(member, "label", member.value) for member in cls]


def _is_typeddict(tp: object) -> bool:
    return isinstance(tp, type) and typing.is_typeddict(tp)


class Components:
    """The named schemas (``#/components/schemas``) the document refers to."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}
        self._named: dict[str, object] = {}

    def _ref(self, cls: type[Any], build: typing.Callable[[], Schema]) -> Schema:
        name = cls.__name__
        if name in self._named:
            if self._named[name] is not cls:
                raise ValueError(f"two schemas are named {name}: {self._named[name]} and {cls}")
        else:
            self._named[name] = cls
            self.schemas[name] = {}  # taken before building: a type may refer to itself
            self.schemas[name] = build()
        return {"$ref": f"#/components/schemas/{name}"}

    def json_schema(self, tp: object) -> Schema:
        """The JSON Schema of values of the Python type ``tp``."""
        if tp is Any or tp is object:
            return {}
        if tp in _PRIMITIVES:
            return dict(_PRIMITIVES[tp])
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            schema = self.json_schema(args[0])
            for extra in args[1:]:
                if isinstance(extra, Json):
                    schema.update(extra.keywords)
            return schema
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin in (typing.Union, types.UnionType):
            return self._union([arg for arg in args if arg is not Unset])
        if origin in (list, frozenset, set, Sequence) or (
            origin is tuple and len(args) == 2 and args[1] is Ellipsis
        ):
            return {"type": "array", "items": self.json_schema(args[0])}
        if origin is tuple:
            return {
                "type": "array",
                "prefixItems": [self.json_schema(arg) for arg in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        if origin in (dict, Mapping):
            return {"type": "object", "additionalProperties": self.json_schema(args[1])}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return {"enum": _enum_values(tp)}
        if isinstance(tp, type) and attrs.has(tp):
            return self._ref(tp, lambda: self._attrs(tp))
        if _is_typeddict(tp):
            assert isinstance(tp, type)
            return self._ref(tp, lambda: self._typeddict(tp))
        raise TypeError(f"no JSON Schema for {tp!r}")

    def _union(self, args: list[object]) -> Schema:
        if len(args) == 1:
            return self.json_schema(args[0])
        schemas = [self.json_schema(arg) for arg in args]
        # Plain types merge into one list of types (["string", "null"]); others stay anyOf.
        if all(set(s) == {"type"} and isinstance(s["type"], str) for s in schemas):
            return {"type": [s["type"] for s in schemas]}
        return {"anyOf": schemas}

    def _attrs(self, cls: type[Any]) -> Schema:
        hints = typing.get_type_hints(cls, include_extras=True)
        properties = {}
        required = []
        for field in attrs.fields(cls):
            properties[field.name] = self.json_schema(hints[field.name])
            if field.default is attrs.NOTHING:
                required.append(field.name)
        return _object(cls, properties, required, closed=True)

    def _typeddict(self, cls: type[Any]) -> Schema:
        fields = typeddict_fields(cls)
        properties = {name: self.json_schema(tp) for name, tp, _ in fields}
        required = [name for name, _, needed in fields if needed]
        return _object(cls, properties, required, closed=cls not in _OPEN)


def typeddict_fields(cls: type[Any]) -> list[tuple[str, object, bool]]:
    """A TypedDict's keys: (name, type, required). Read from the annotations, not from
    ``__required_keys__``, which Python 3.11 gets wrong under ``from __future__ import
    annotations``."""
    fields = []
    total = getattr(cls, "__total__", True)
    for name, tp in typing.get_type_hints(cls, include_extras=True).items():
        required = total
        while typing.get_origin(tp) in (typing.NotRequired, typing.Required):
            required = typing.get_origin(tp) is typing.Required
            (tp,) = typing.get_args(tp)
        fields.append((name, tp, required))
    return fields


def _object(cls: type[Any], properties: Schema, required: list[str], *, closed: bool) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if closed:
        schema["additionalProperties"] = False
    doc = (cls.__doc__ or "").strip()
    if doc and not doc.startswith(f"{cls.__name__}("):  # not attrs' generated signature
        schema["description"] = " ".join(doc.split())
    return schema


@attrs.frozen
class BodyOf:
    """A request body parsed into the attrs class ``cls`` by a parser that takes some of its
    fields from elsewhere: ``omit`` are not sent, ``extra`` are sent and read by the parser."""

    cls: type[Any]
    name: str
    omit: frozenset[str] = frozenset()
    extra: Mapping[str, object] = attrs.field(factory=dict)
    description: str = ""

    def schema(self, components: Components) -> Schema:
        def build() -> Schema:
            full = components._attrs(self.cls)
            properties = {
                name: value for name, value in full["properties"].items() if name not in self.omit
            }
            properties.update({name: components.json_schema(tp) for name, tp in self.extra.items()})
            required = [name for name in full.get("required", ()) if name not in self.omit]
            schema = _object(self.cls, properties, required, closed=True)
            if self.description:
                schema["description"] = self.description
            return schema

        if self.name not in components.schemas:
            components.schemas[self.name] = build()
        return {"$ref": f"#/components/schemas/{self.name}"}


# A path template's fields: ``{name}`` or ``{name:converter(arguments)}`` (Falcon's syntax).
_FIELD = re.compile(r"{(\w+)(?::(\w+)(?:\((.*?)\))?)?}")


def path_of(template: str) -> str:
    """The OpenAPI path of a Falcon route template (converters dropped)."""
    return _FIELD.sub(lambda match: "{" + match.group(1) + "}", template)


def _converter_schema(converter: str | None, arguments: str | None) -> Schema:
    if converter is None:
        return {"type": "string", "minLength": 1}
    if converter == "uuid":
        return {"type": "string", "format": "uuid"}
    if converter == "int":
        schema: Schema = {"type": "integer"}
        for argument in (arguments or "").split(","):
            name, _, value = argument.strip().partition("=")
            if name == "min":
                schema["minimum"] = int(value)
            elif name == "max":
                schema["maximum"] = int(value)
        return schema
    raise ValueError(f"no schema for the path converter {converter}")


def path_parameters(template: str) -> list[Schema]:
    return [
        {
            "name": match.group(1),
            "in": "path",
            "required": True,
            "schema": _converter_schema(match.group(2), match.group(3)),
        }
        for match in _FIELD.finditer(template)
    ]


def query_parameters(components: Components, query: type[Any]) -> list[Schema]:
    """The query string a TypedDict (``total=False``) describes: one optional parameter a key."""
    return [
        {"name": name, "in": "query", "required": required, "schema": components.json_schema(tp)}
        for name, tp, required in typeddict_fields(query)
    ]


_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "The request is malformed or invalid (the reason says which field).",
    401: "No credential, or one that is unknown, revoked or expired.",
    403: "The credential does not allow this.",
    404: "Nothing at this path.",
    409: "The request conflicts with the stored state.",
    411: "An upload without a length: send Content-Length or a chunked body.",
    413: "The body is too large (FARM_MAX_JSON_BYTES; an upload's own limit).",
    415: "The body has the wrong type.",
    429: "Too many creates by this client: retry after Retry-After seconds.",
    503: "The database is unavailable: retry after Retry-After seconds.",
    507: "The master's file storage is full.",
}


def _error_statuses(route: Route, method: str) -> list[int]:
    statuses = {400, 401, 403, 503}
    if _FIELD.search(route.template) or method != "GET":
        statuses.add(404)
    if method != "GET":
        statuses.add(409)
    if method in route.json_bodies:
        statuses |= {413, 415}
    if method in route.raw_bodies:
        statuses |= {411, 413, 415, 507}
    if method in route.creates:
        statuses.add(429)
    return sorted(statuses)


def _operation_id(method: str, template: str) -> str:
    words = re.findall(r"\w+", _FIELD.sub(lambda m: "by_" + m.group(1), template))
    return "_".join([method.lower(), *(w for w in words if w not in ("api", "v1"))])


def _request_body(components: Components, body: object) -> Schema:
    if isinstance(body, MayOmit):
        return {**_request_body(components, body.type), "required": False}
    if isinstance(body, Raw):
        return {
            "required": True,
            "description": body.description,
            "content": {
                media: {"schema": {"type": "string", "contentMediaType": media}}
                for media in body.media_types
            },
        }
    schema = body.schema(components) if isinstance(body, BodyOf) else components.json_schema(body)
    return {"required": True, "content": {JSON: {"schema": schema}}}


def _answers(components: Components, answer: Answer) -> Schema:
    responses: Schema = {}
    for status in answer.statuses:
        response: Schema = {"description": answer.description or _STATUS_TEXT[status]}
        if answer.type is not None and status != 204:
            if answer.media_type == JSON:
                schema = components.json_schema(answer.type)
            else:
                schema = {"type": "string", "contentMediaType": answer.media_type}
            response["content"] = {answer.media_type: {"schema": schema}}
        responses[str(status)] = response
    return responses


def _operation(components: Components, route: Route, method: str) -> Schema:
    need = route.needs[method]
    operation: Schema = {
        "operationId": _operation_id(method, route.template),
        "tags": [_tag(route.template)],
        "summary": route.summaries.get(method, f"{method} {path_of(route.template)}"),
        "description": f"Needs: {need}.",
    }
    parameters = path_parameters(route.template)
    query = route.queries.get(method)
    if query is not None:
        parameters += query_parameters(components, query)
    if parameters:
        operation["parameters"] = parameters
    body = route.bodies.get(method)
    if body is not None:
        operation["requestBody"] = _request_body(components, body)
    elif method in route.json_bodies:
        raise ValueError(f"{method} {route.template} has no declared body")
    responses = _answers(components, route.answers[method])
    error = components.json_schema(ErrorJson)
    for status in _error_statuses(route, method):
        if str(status) in responses:
            continue  # the answer's own (a readiness check's 503 says why)
        responses[str(status)] = {
            "description": _STATUS_TEXT[status],
            "content": {JSON: {"schema": error}},
        }
    operation["responses"] = responses
    if not need.permissions and "schema" in route.template:
        operation["description"] += " The same for every caller."
    return operation


def _tag(template: str) -> str:
    parts = template.split("/")
    return parts[3].removesuffix(".json") if len(parts) > 3 else "api"


_DESCRIPTION = """\
The render farm master's JSON API. Every request carries a bearer token
(`Authorization: Bearer <token>`, made with `farm tokens create`), except from the networks the
master admits anonymously (`FARM_ANONYMOUS_NETWORKS`), whose requests act with
`FARM_ANONYMOUS_ROLE`. Every refusal is answered `{"error": "<reason>"}` (with `field` where one
field is at fault) and changes nothing. This document is generated from the types the API parses
requests into and builds its answers from."""


def document(routes: Iterable[Route], version: str) -> Schema:
    """The OpenAPI document of ``routes``."""
    components = Components()
    paths: dict[str, Schema] = {}
    for route in routes:
        item = paths.setdefault(path_of(route.template), {})
        for method in route.needs:
            item[method.lower()] = _operation(components, route, method)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Farm render farm API", "version": version, "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `farm tokens create` (or an agent's credential).",
                }
            },
        },
    }
