"""Strict conversion of request bodies (cattrs) and the small pieces every schema shares."""

from __future__ import annotations

import enum
import types
import typing
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import cattrs
import falcon

from farm_domain.agents import Unset
from farm_domain.errors import ValidationError
from farm_http.openapi import Json

T = TypeVar("T")

_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "a boolean",
    type(None): "null",
}
_PLURALS = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}


def _describe(allowed: tuple[type, ...]) -> str:
    names = [_TYPE_NAMES.get(tp, tp.__name__) for tp in allowed]
    return " or ".join(names)


def _strict(tp: Any) -> Callable[[Any, Any], Any]:
    """A structure hook accepting exactly ``tp`` (an int is a number; a bool is not an int)."""
    args = typing.get_args(tp) if _is_union(tp) else (tp,)
    primitives = tuple(arg for arg in args if arg in _TYPE_NAMES)
    lists = [arg for arg in args if typing.get_origin(arg) is list]

    def hook(value: Any, _: Any) -> Any:
        kind = type(value)
        if kind in primitives:
            return value
        if kind is int and float in primitives:
            return float(value)
        if lists and kind is list:
            (item_type,) = typing.get_args(lists[0])
            for item in value:
                if type(item) is not item_type:
                    raise TypeError(f"must be a list of {_PLURALS[item_type]}")
            return value
        expected = [_describe(primitives)] if primitives else []
        if lists:
            expected.append(f"a list of {_PLURALS[typing.get_args(lists[0])[0]]}")
        raise TypeError(f"must be {' or '.join(expected)}")

    return hook


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _is_unset_union(tp: Any) -> bool:
    return _is_union(tp) and Unset in typing.get_args(tp)


def _without_unset(tp: Any) -> Any:
    args = tuple(arg for arg in typing.get_args(tp) if arg is not Unset)
    return args[0] if len(args) == 1 else typing.Union[args]  # noqa: UP007


def _strict_list(tp: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """A JSON array, structured into a list (or a homogeneous ``tuple[X, ...]``)."""
    item_type = typing.get_args(tp)[0]
    make = tuple if typing.get_origin(tp) is tuple else list

    def hook(value: Any, _: Any) -> Any:
        if type(value) is not list:
            raise TypeError("must be a list")
        return make(converter.structure(item, item_type) for item in value)

    return hook


def _is_sequence(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is list or (
        typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis
    )


def _is_dict(tp: Any) -> bool:
    return typing.get_origin(tp) is dict


def _strict_dict(tp: Any) -> Callable[[Any, Any], Any]:
    _, value_type = typing.get_args(tp)

    def hook(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise TypeError("must be an object")
        if value_type is str and not all(type(v) is str for v in value.values()):
            raise TypeError("must map names to strings")
        return value

    return hook


def _strict_unset_union(tp: Any) -> Callable[[Any, Any], Any]:
    """A field a change may leave out (UNSET): the rules of the type it has when sent."""
    sent = _without_unset(tp)
    return _strict_dict(sent) if _is_dict(sent) else _strict(sent)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook_factory(_is_dict, _strict_dict)
    for primitive in (int, float, str, bool):
        converter.register_structure_hook(primitive, _strict(primitive))
    converter.register_structure_hook_factory(
        _is_sequence,
        lambda tp: _strict_list(tp, converter),
    )
    converter.register_structure_hook_factory(_is_unset_union, _strict_unset_union)
    return converter


REQUEST = _make_converter()


def _format_exception(error: BaseException, _type: Any) -> str:
    if isinstance(error, KeyError):
        return "is required"
    if isinstance(error, cattrs.ForbiddenExtraKeysError):
        return (
            f"request contains field(s) that do not exist: {', '.join(sorted(error.extra_fields))}"
        )
    return str(error)


def _errors_of(error: Exception) -> str:
    messages = []
    for message in cattrs.transform_error(error, format_exception=_format_exception):
        text, _, path = message.partition(" @ $.")
        messages.append(f"`{path}` {text}" if path else text)
    return "; ".join(messages)


def structure(body: dict[str, Any], cls: type[T]) -> T:
    """``body`` as a ``cls``, types checked exactly. Raises ValidationError listing each problem."""
    try:
        return REQUEST.structure(body, cls)
    except (cattrs.BaseValidationError, TypeError) as error:
        raise ValidationError(_errors_of(error)) from None


def body_object(req: falcon.Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    media = req.get_media()
    if not isinstance(media, dict):
        raise ValidationError("request body must be a JSON object")
    return media


def url_argument_error(name: str, reason: str) -> ValidationError:
    """The error for a query-string argument that does not parse."""
    return ValidationError(f"Failed to convert the url argument `{name}`: {reason}", field=name)


def optional_uuid(value: str | None, field: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationError(f"{value} is not a valid {field} (a UUID)", field=field) from None


IsoTime = Annotated[str, Json(format="date-time")]
"""A time as the API writes it (ISO 8601 with its offset), for the OpenAPI document."""
UuidText = Annotated[str, Json(format="uuid")]
"""A UUID written as text."""


def values_of(cls: type[enum.Enum]) -> Json:
    """For ``Annotated[str, values_of(E)]``: a string that is one of ``E``'s values (or a coded
    enum's labels)."""
    return Json(enum=[getattr(member, "label", member.value) for member in cls])


def iso_time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
