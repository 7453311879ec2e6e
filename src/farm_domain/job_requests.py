"""What clients ask of jobs: a submission (``JobSpec``) and its frames, a change
(``JobChanges``), an agent's report on a task (``TaskReport``), and the rules their fields follow."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from farm_domain.agents import UNSET, Unset
from farm_domain.errors import ValidationError
from farm_domain.failures import MAX_POLICY_SECONDS
from farm_domain.jobtypes import RequirementSpec
from farm_domain.validation import MAX_DATA_BYTES, MAX_TAGS, at_most, environment, json_shape
from farm_domain.work import MAX_OUTPUT_PATH, MAX_TASK_OUTPUTS, JobOptions, TaskOutput

MAX_FRAMES = 100_000


def frames(start: float, end: float, by: float) -> list[float]:
    """``start, start+by, …`` up to and including ``end``, computed in decimal so that steps
    such as 0.1 neither lose nor duplicate a frame. Raises ValidationError."""
    try:
        first, last, step = (Decimal(repr(value)) for value in (start, end, by))
    except InvalidOperation:
        raise ValidationError("`by` needs to be of type decimal or int", field="by") from None
    if not (first.is_finite() and last.is_finite() and step.is_finite()):
        raise ValidationError("frames must be finite numbers", field="start")
    if last < first:
        raise ValidationError("`end` must be larger than or equal to start", field="end")
    if step <= 0:
        raise ValidationError("`by` must be above 0", field="by")
    # Checked before dividing: a quotient beyond the decimal precision cannot be floored.
    if last - first >= step * MAX_FRAMES:
        raise ValidationError(
            f"the frame range has more than {MAX_FRAMES} frames; at most {MAX_FRAMES} per job",
            field="end",
        )
    count = int((last - first) // step) + 1
    if count > MAX_FRAMES:
        raise ValidationError(
            f"the frame range has {count} frames; at most {MAX_FRAMES} per job", field="end"
        )
    return [float(first + step * index) for index in range(count)]


def _as_submitted(cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
    """Each of JobSpec's own fields right after the one it has always followed, so that a body's
    problems are still listed in the order they were before JobOptions was shared."""
    follows = {
        "start": "title",
        "end": "jobtype_version",
        "by": "end",
        "software_requirements": "user",
    }
    ordered = [field for field in fields if field.name not in follows]
    for field in fields:
        if field.name in follows:
            at = next(i for i, f in enumerate(ordered) if f.name == follows[field.name])
            ordered.insert(at + 1, field)
    return ordered


@attrs.frozen(kw_only=True, field_transformer=_as_submitted)
class JobSpec(JobOptions):
    """A job as submitted: the options the job keeps (``JobOptions``), its frames, and the
    software it needs by name. ``end`` defaults to ``start``; ``jobtype`` names the job type (or
    its id), ``jobtype_version`` a version of it (default: the newest)."""

    start: float
    end: float | None = None
    by: float = 1
    software_requirements: tuple[RequirementSpec, ...] = ()


@attrs.frozen
class JobChanges:
    """What a client asks to change in a job; UNSET fields are left alone.

    ``state`` may be ``paused`` (stop handing out its tasks) or ``queued`` (resume).
    """

    title: str | Unset = UNSET
    priority: int | Unset = UNSET
    weight: int | Unset = UNSET
    requeue: int | Unset = UNSET
    batch: int | Unset = UNSET
    ram: int | Unset = UNSET
    ram_warning: int | None | Unset = UNSET
    ram_max: int | None | Unset = UNSET
    cpus: int | Unset = UNSET
    minimum_agents: int | None | Unset = UNSET
    maximum_agents: int | None | Unset = UNSET
    data: dict[str, Any] | Unset = UNSET
    environ: dict[str, str] | Unset = UNSET
    user: str | None | Unset = UNSET
    tags: list[str] | Unset = UNSET
    max_run_seconds: int | None | Unset = UNSET
    stall_seconds: int | None | Unset = UNSET
    state: str | Unset = UNSET


@attrs.frozen
class TaskReport:
    """An agent's report on a task (``POST /jobs/<job>/tasks/<task>``)."""

    state: str | Unset = UNSET
    last_error: str | None | Unset = UNSET
    progress: float | Unset = UNSET
    reason: str | None | Unset = UNSET
    """Why a ``failed`` report failed: a short code (``farm_domain.failures``)."""
    give_back: bool = False
    started_now: bool = False
    outputs: tuple[TaskOutput, ...] | Unset = UNSET
    """The files the frame wrote, with a ``done`` report."""


MAX_PARENTS = 1_000
_LIST_LIMITS = {
    "tags": MAX_TAGS,
    "tag_requirements": MAX_TAGS,
    "software_requirements": MAX_TAGS,
    "parents": MAX_PARENTS,
}


def check_free_json(values: dict[str, Any]) -> None:
    """``data`` and ``environ`` as sent (never the stored ones, which may predate the limits)."""
    if "data" in values:
        json_shape("data", values["data"], MAX_DATA_BYTES)
    if "environ" in values:
        environment("environ", values["environ"])


def check_scalars(values: dict[str, Any]) -> None:
    """The rules every job field follows, at submission and on change."""
    rules: dict[str, tuple[int | None, int | None]] = {
        "priority": (-1000, 1000),
        "weight": (0, 1000),
        "requeue": (-1, 1000),
        "batch": (1, 10000),
        "ram": (1, 2**31 - 1),
        "ram_warning": (1, 2**31 - 1),
        "ram_max": (1, 2**31 - 1),
        "cpus": (1, 1024),
        "minimum_agents": (0, 100000),
        "maximum_agents": (1, 100000),
        "max_run_seconds": (1, MAX_POLICY_SECONDS),
        "stall_seconds": (1, MAX_POLICY_SECONDS),
    }
    for name, (low, high) in rules.items():
        value = values.get(name)
        if value is not None and not (low <= value <= high):
            raise ValidationError(f"`{name}` must be between {low} and {high}", field=name)
    user = values.get("user")
    if user is not None and not (len(user) <= 255 and user.isprintable()):
        raise ValidationError("`user` must be at most 255 printable characters", field="user")
    title = values.get("title")
    if title is not None and not (1 <= len(title) <= 255 and title.isprintable()):
        raise ValidationError("`title` must be 1 to 255 printable characters", field="title")
    for name, limit in _LIST_LIMITS.items():
        if values.get(name) is not None:
            at_most(name, values[name], limit)
    required = [r.tag for r in values.get("tag_requirements") or ()]
    if len(required) != len(set(required)):
        raise ValidationError("a tag is required twice", field="tag_requirements")
    for tag in [*(values.get("tags") or ()), *required]:
        if not 1 <= len(tag) <= 64 or not tag.isprintable():
            raise ValidationError(f"tag {tag!r} must be 1 to 64 printable characters", field="tags")
    low, high = values.get("minimum_agents"), values.get("maximum_agents")
    if low is not None and high is not None and low > high:
        raise ValidationError(
            "`minimum_agents` must not exceed `maximum_agents`", field="minimum_agents"
        )


def task_outputs(outputs: tuple[TaskOutput, ...]) -> tuple[TaskOutput, ...]:
    """A report's files, checked: at most ``MAX_TASK_OUTPUTS``, each a non-empty path of at most
    ``MAX_OUTPUT_PATH`` characters without NUL and a size from 0 to 2**63-1. Raises
    ValidationError."""
    if len(outputs) > MAX_TASK_OUTPUTS:
        raise ValidationError(
            f"`outputs` may list at most {MAX_TASK_OUTPUTS} files", field="outputs"
        )
    for output in outputs:
        if not 0 < len(output.path) <= MAX_OUTPUT_PATH or "\x00" in output.path:
            raise ValidationError(
                f"an output's `path` must be 1 to {MAX_OUTPUT_PATH} characters, without NUL",
                field="outputs",
            )
        if not 0 <= output.size < 2**63:
            raise ValidationError(
                "an output's `size` must be a whole number of bytes from 0", field="outputs"
            )
    return outputs
