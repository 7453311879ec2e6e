"""The farm's enumerations, with PyFarm's numeric codes so old agents keep working."""

from __future__ import annotations

import enum
from typing import Self

from farm_domain.errors import ValidationError


class CodedEnum(enum.Enum):
    """An enum whose members are sent as names but may also arrive as PyFarm's integer codes."""

    def __init__(self, label: str, code: int) -> None:
        self.label = label
        self.code = code

    @classmethod
    def parse(cls, value: object, what: str) -> Self:
        """The member named or numbered by ``value``.

        Raises ValidationError with the contract's message (`` `x` is not a valid state``).
        """
        for member in cls:
            if type(value) is int and value == member.code:
                return member
            if type(value) is str and value.lower() == member.label:
                return member
        raise ValidationError(f"`{value}` is not a valid {what}", field=what)

    def __str__(self) -> str:
        return self.label


class AgentState(CodedEnum):
    DISABLED = ("disabled", 200)
    OFFLINE = ("offline", 201)
    ONLINE = ("online", 202)
    RUNNING = ("running", 203)


class UseAddress(CodedEnum):
    LOCAL = ("local", 310)
    REMOTE = ("remote", 311)
    HOSTNAME = ("hostname", 312)
    PASSIVE = ("passive", 313)


class OsClass(CodedEnum):
    LINUX = ("linux", 300)
    WINDOWS = ("windows", 301)
    MAC = ("mac", 302)
    OTHER = ("other", 303)
    BSD = ("bsd", 304)


class WorkState(enum.Enum):
    """State of a task or a job. ``None`` in storage means queued (or assigned, for a task)."""

    PAUSED = "paused"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"
    """A job a wrangler canceled, and its tasks that were not finished then (see
    ``farm_domain.controls``): never dispatched again unless the job is requeued."""

    def __str__(self) -> str:
        return self.value


FINISHED_STATES = frozenset({WorkState.DONE, WorkState.FAILED, WorkState.CANCELED})
