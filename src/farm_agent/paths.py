"""Where the agent may write: only inside its data directory, whatever a name it was sent
says."""

from __future__ import annotations

import re
from pathlib import Path

VERSION = re.compile(r"\d+(\.\d+(\.\d+)?)?(-(pre|dev|rc|alpha|beta)\d*)?")
"""The master's rule for agent versions (farm_domain.files), matched whole."""

MAX_VERSION_LENGTH = 16


class OutsideDataDir(ValueError):
    """A path that would resolve outside the directory it was meant for."""


def version_problem(version: object) -> str | None:
    """Why ``version`` is not one the agent downloads, or None."""
    if not isinstance(version, str):
        return "the version must be a string"
    if (
        len(version) > MAX_VERSION_LENGTH
        or not VERSION.fullmatch(version)
        or any(part in version for part in ("/", "\\", "..", "?"))
        or any(ord(char) < 32 or ord(char) == 127 for char in version)
    ):
        return f"{version[:40]!r} is not a valid agent version"
    return None


def inside(root: Path, *parts: str) -> Path:
    """``root`` joined with ``parts``, resolved; raises OutsideDataDir unless the result is
    inside ``root`` (links followed)."""
    base = root.resolve()
    path = base.joinpath(*parts).resolve()
    if path == base or not path.is_relative_to(base):
        raise OutsideDataDir(f"{'/'.join(parts)!r} is outside {base}")
    return path
