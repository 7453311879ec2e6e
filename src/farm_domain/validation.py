"""Rules for the values clients send, with the contract's error messages."""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
from collections.abc import Sized

from farm_domain.errors import ValidationError

# Matched with fullmatch: `$` would also match before a trailing newline.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
MAX_MAC_ADDRESSES = 64
MAX_GPUS = 64
MAX_TAGS = 256
"""Tags of a job or an agent, and tag or software requirements of a job."""
INT32_MAX = 2**31 - 1


def parse_id(text: str) -> int | None:
    """A stored id spelled in decimal digits, or None (ids are 32-bit integers in storage)."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if value <= INT32_MAX else None


def hostname(value: str) -> str:
    """An RFC 1123 host name, case kept; an optional trailing dot is allowed."""
    body = value.removesuffix(".")
    if (
        not body
        or len(value) > 255
        or not all(_LABEL.fullmatch(label) for label in body.split("."))
    ):
        raise ValidationError(f"{value} is not valid for hostname", field="hostname")
    return value


def ip_address(value: str, *, field: str = "remote_ip", allow_loopback: bool = True) -> str:
    """A unicast IPv4 or IPv6 address in its canonical spelling."""
    if type(value) is str:
        return _cached_ip_address(value, field, allow_loopback)
    return _ip_address(value, field, allow_loopback)


def _ip_address(value: str, field: str, allow_loopback: bool) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValidationError(f"{value} is not valid for {field}", field=field) from None
    if address.is_multicast or address.is_unspecified:
        raise ValidationError(
            f"{value} is not valid for {field}: multicast and unspecified addresses are refused",
            field=field,
        )
    if address.is_loopback and not allow_loopback:
        raise ValidationError(
            f"{value} is not valid for {field}: this master refuses loopback addresses", field=field
        )
    return str(address)


# Every heartbeat of a PyFarm agent sends its address: parsing it was a tenth of the domain's
# time per heartbeat. A farm has a few thousand addresses; refusals are not cached (they raise).
_cached_ip_address = functools.lru_cache(maxsize=16384)(_ip_address)


def mac_addresses(values: list[str]) -> frozenset[str]:
    """MAC addresses ``aa:bb:cc:dd:ee:ff`` in any case, stored lowercase and deduplicated."""
    at_most("mac_addresses", values, MAX_MAC_ADDRESSES)
    for value in values:
        if not _MAC.fullmatch(value):
            raise ValidationError(f"{value} is not a valid MAC address", field="mac_addresses")
    return frozenset(value.lower() for value in values)


def gpu_names(values: list[str]) -> frozenset[str]:
    at_most("gpus", values, MAX_GPUS)
    for value in values:
        if not value.strip() or len(value) > 128 or not value.isprintable():
            raise ValidationError(
                f"{value!r} is not a valid GPU name (1 to 128 characters)", field="gpus"
            )
    return frozenset(values)


def at_most(field: str, values: Sized, limit: int) -> None:
    if len(values) > limit:
        raise ValidationError(f"`{field}` may list at most {limit} items", field=field)


def integer(field: str, value: int, low: int = -INT32_MAX, high: int = INT32_MAX) -> int:
    if not low <= value <= high:
        raise ValidationError(
            f"`{field}` must be between {low} and {high}, not {value}", field=field
        )
    return value


def ratio(field: str, value: float, high: float = 16.0) -> float:
    if math.isnan(value) or not 0 < value <= high:
        raise ValidationError(f"`{field}` must be above 0 and at most {high:g}", field=field)
    return float(value)


def text(field: str, value: str | None, max_length: int) -> str | None:
    if value is None:
        return None
    if len(value) > max_length:
        raise ValidationError(
            f"`{field}` must be at most {max_length} characters long", field=field
        )
    if not value.isprintable():
        raise ValidationError(f"`{field}` must not contain control characters", field=field)
    return value


def without_nul(field: str, value: str | None) -> str | None:
    """Free text (code, descriptions) may hold any character but NUL, which storage refuses."""
    if value is not None and "\x00" in value:
        raise ValidationError(f"`{field}` must not contain NUL characters", field=field)
    return value


MAX_JSON_DEPTH = 32
"""How deeply free JSON (a job's ``data``) may nest: far beyond any real use, far below what
the JSON encoders accept (orjson refuses more than 254 levels when it renders a response)."""
MAX_JSON_ITEMS = 10_000
"""Keys and list items in one free JSON value, counted at every level."""
MAX_DATA_BYTES = 256 * 1024
"""A job's ``data`` encoded as JSON; every jobs list carries it."""
MAX_ENVIRON_VARIABLES = 1_000
MAX_ENVIRON_BYTES = 64 * 1024


def json_shape(field: str, value: object, max_bytes: int) -> None:
    """Free JSON kept as sent, within a depth, a number of items and an encoded size."""
    items, depth = 0, 0
    containers = [value] if isinstance(value, dict | list) else []
    while containers:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise ValidationError(
                f"`{field}` nests more than {MAX_JSON_DEPTH} levels deep", field=field
            )
        children: list[object] = []
        for node in containers:
            children.extend(node.values() if isinstance(node, dict) else node)
        items += len(children)
        if items > MAX_JSON_ITEMS:
            raise ValidationError(
                f"`{field}` holds more than {MAX_JSON_ITEMS} keys and items", field=field
            )
        containers = [child for child in children if isinstance(child, dict | list)]
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ValidationError(
            f"`{field}` is {size} bytes as JSON; at most {max_bytes}", field=field
        )


def environment(field: str, variables: dict[str, str]) -> None:
    """Environment variables a process can be started with: names without ``=`` or control
    characters, values without NUL (which no process environment can hold)."""
    if len(variables) > MAX_ENVIRON_VARIABLES:
        raise ValidationError(
            f"`{field}` has more than {MAX_ENVIRON_VARIABLES} variables", field=field
        )
    for name, value in variables.items():
        if not name or "=" in name or not name.isprintable():
            raise ValidationError(
                f"`{field}`: {name!r} is not a variable name (no '=', no control characters)",
                field=field,
            )
        if "\x00" in value:
            raise ValidationError(
                f"`{field}`: the value of {name} must not contain NUL characters", field=field
            )
    json_shape(field, variables, MAX_ENVIRON_BYTES)
