"""A job's failure policies as the agent enforces them on each frame, and the reason codes a
failed frame is reported with.

The master sends the policies in the assignment's ``job``: ``max_run_seconds`` (a frame running
longer is killed), ``stall_seconds`` (a frame writing nothing to stdout or stderr for that long
is killed) and PyFarm's ``ram_max`` (MB; a frame whose processes hold more resident memory is
killed). Absent or null: no limit.
"""

from __future__ import annotations

from typing import Any

import attrs

EXIT = "exit"
"""The frame's command ended with a non-zero exit code (or was ended by a signal)."""
TIMEOUT = "timeout"
"""Killed: it ran longer than ``max_run_seconds``."""
STALLED = "stalled"
"""Killed: it wrote nothing to stdout or stderr for ``stall_seconds``."""
RAM = "ram"
"""Killed: its processes held more than ``ram_max`` MB resident."""
NOT_STARTED = "not_started"
"""The command could not be started (no such program, a bad environment)."""
AGENT_ERROR = "agent_error"
"""The agent failed around the frame (its log could not be written, ...)."""

REASONS = frozenset({EXIT, TIMEOUT, STALLED, RAM, NOT_STARTED, AGENT_ERROR})

MAX_LIMIT = 2**31 - 1
"""The largest value a limit may have (seconds or MB): the master's bound for ``ram_max``."""

_KEYS = ("max_run_seconds", "stall_seconds", "ram_max")


def problem(job: dict[str, Any]) -> str | None:
    """Why the job's limits are unusable, or None."""
    for key in _KEYS:
        value = job.get(key)
        if value is not None and (type(value) is not int or not 1 <= value <= MAX_LIMIT):
            return f"`{key}` must be null or a whole number from 1 to {MAX_LIMIT}"
    return None


@attrs.frozen
class Limits:
    max_run_seconds: int | None = None
    stall_seconds: int | None = None
    ram_max: int | None = None
    """MB."""

    @classmethod
    def of(cls, job: dict[str, Any]) -> Limits:
        """The limits of a job that passed ``problem``."""
        return cls(job.get("max_run_seconds"), job.get("stall_seconds"), job.get("ram_max"))

    @property
    def any(self) -> bool:
        return any(value is not None for value in attrs.astuple(self))

    def breach(self, running: float, silent: float, rss_mb: float | None) -> str | None:
        """The reason to kill a frame that has run ``running`` seconds, the last ``silent`` of
        them without output, and holds ``rss_mb`` MB (None: unknown); None while within."""
        if self.ram_max is not None and rss_mb is not None and rss_mb > self.ram_max:
            return RAM
        if self.max_run_seconds is not None and running > self.max_run_seconds:
            return TIMEOUT
        if self.stall_seconds is not None and silent > self.stall_seconds:
            return STALLED
        return None

    def explained(self, reason: str, rss_mb: float | None = None) -> str:
        """The failure message of a frame killed for ``reason``."""
        if reason == RAM:
            held = f"{rss_mb:.0f} MB" if rss_mb is not None else "more"
            return f"killed: its processes held {held}, over ram_max {self.ram_max} MB"
        if reason == TIMEOUT:
            return f"killed: ran longer than max_run_seconds ({self.max_run_seconds} s)"
        if reason == STALLED:
            return f"killed: no output for stall_seconds ({self.stall_seconds} s)"
        return f"killed: {reason}"
