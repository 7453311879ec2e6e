"""The ``blender`` job type's rules on the master: its ``data`` checked at submission, with the
same rules the agent applies to an assignment (``farm_agent.blender``), so that a malformed
job is refused with 400 before any agent sees it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from farm_domain.errors import ValidationError

NAME = "blender"
FORMATS = ("JPEG", "OPEN_EXR", "PNG")
# EEVEE is BLENDER_EEVEE_NEXT in Blender 4.2-4.4 and BLENDER_EEVEE before and since 5.0: either
# name is taken, and each agent passes the one its Blender knows.
ENGINES = ("BLENDER_EEVEE", "BLENDER_EEVEE_NEXT", "CYCLES", "WORKBENCH")
KEYS = frozenset(
    {"file", "output", "format", "engine", "samples", "resolution_percentage", "scene", "args"}
)
MAX_PATH = 4096
MAX_NAME = 256
MAX_ARGS = 256
MAX_ARG = 4096
MAX_SAMPLES = 1 << 24
MAX_PERCENTAGE = 1000


def _text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and "\x00" not in value


def _whole(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def check_data(data: dict[str, Any]) -> None:
    """Raise ValidationError (field ``data``) unless ``data`` is a blender job's:
    ``file`` and ``output`` (paths), optional ``format``, ``engine``, ``samples``,
    ``resolution_percentage``, ``scene`` and ``args`` (a list of strings)."""
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise ValidationError(
            f"unknown key(s) in the blender job's data: {', '.join(map(str, unknown))}",
            field="data",
        )
    for key in ("file", "output"):
        if not _text(data.get(key), MAX_PATH):
            raise ValidationError(
                f"`data.{key}` must be a path of 1 to {MAX_PATH} characters", field="data"
            )
    if data.get("format") is not None and data["format"] not in FORMATS:
        raise ValidationError(f"`data.format` must be one of {', '.join(FORMATS)}", field="data")
    if data.get("engine") is not None and data["engine"] not in ENGINES:
        raise ValidationError(f"`data.engine` must be one of {', '.join(ENGINES)}", field="data")
    if data.get("samples") is not None and not _whole(data["samples"], 1, MAX_SAMPLES):
        raise ValidationError(
            f"`data.samples` must be a whole number from 1 to {MAX_SAMPLES}", field="data"
        )
    percentage = data.get("resolution_percentage")
    if percentage is not None and not _whole(percentage, 1, MAX_PERCENTAGE):
        raise ValidationError(
            f"`data.resolution_percentage` must be a whole number from 1 to {MAX_PERCENTAGE}",
            field="data",
        )
    if data.get("scene") is not None and not _text(data["scene"], MAX_NAME):
        raise ValidationError(
            f"`data.scene` must be a scene name of 1 to {MAX_NAME} characters", field="data"
        )
    args = data.get("args")
    if args is not None and (
        not isinstance(args, list)
        or len(args) > MAX_ARGS
        or not all(_text(a, MAX_ARG) or a == "" for a in args)
    ):
        raise ValidationError(
            f"`data.args` must be a list of at most {MAX_ARGS} strings", field="data"
        )


def check_frames(frames: Sequence[float]) -> None:
    if not all(float(frame).is_integer() for frame in frames):
        raise ValidationError("the blender job type renders whole frames only", field="by")
