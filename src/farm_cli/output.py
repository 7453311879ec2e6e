"""How the CLI shows things: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import enum
import json
import sys
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs


def plain(value: Any) -> Any:
    """A JSON-ready copy of domain values (attrs entities, enums, ids, times)."""
    if attrs.has(type(value)):
        return {a.name: plain(getattr(value, a.name)) for a in attrs.fields(type(value))}
    if isinstance(value, dict):
        return {str(k.value if isinstance(k, enum.Enum) else k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, enum.Enum):
        return getattr(value, "label", None) or value.value
    if isinstance(value, (uuid.UUID, datetime)):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    return value


def emit_json(value: Any) -> None:
    print(json.dumps(plain(value), indent=2, sort_keys=True))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print("(none)")


def fields(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        print(f"{name.ljust(width)}  {_cell(value)}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, enum.Enum):
        return str(getattr(value, "label", None) or value.value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (set, frozenset, list, tuple)):
        return ", ".join(sorted(map(str, value))) or "-"
    return str(value)


def progress(done: int, total: int, what: str) -> None:
    """A progress line on stderr for operations on many things."""
    end = "\n" if done == total else ""
    print(f"\r{what}: {done}/{total}", end=end, file=sys.stderr, flush=True)
