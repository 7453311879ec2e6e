"""Rules for the values clients send, with the contract's error messages."""

from __future__ import annotations

import ipaddress
import math
import re

from farm_domain.errors import ValidationError

_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$")
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
    if not body or len(value) > 255 or not all(_LABEL.match(label) for label in body.split(".")):
        raise ValidationError(f"{value} is not valid for hostname", field="hostname")
    return value


def ip_address(value: str, *, field: str = "remote_ip", allow_loopback: bool = True) -> str:
    """A unicast IPv4 or IPv6 address in its canonical spelling."""
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


def mac_addresses(values: list[str]) -> frozenset[str]:
    """MAC addresses ``aa:bb:cc:dd:ee:ff`` in any case, stored lowercase and deduplicated."""
    for value in values:
        if not _MAC.match(value):
            raise ValidationError(f"{value} is not a valid MAC address", field="mac_addresses")
    return frozenset(value.lower() for value in values)


def gpu_names(values: list[str]) -> frozenset[str]:
    for value in values:
        if not value.strip() or len(value) > 128 or not value.isprintable():
            raise ValidationError(
                f"{value!r} is not a valid GPU name (1 to 128 characters)", field="gpus"
            )
    return frozenset(values)


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
