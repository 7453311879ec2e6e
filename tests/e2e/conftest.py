"""Real processes on loopback: ``farm serve``, ``farm worker``, ``farm agent``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import Process


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """The processes a test starts, stopped in reverse order at its end."""
    started: list[Process] = []
    yield started
    for process in reversed(started):
        process.stop()
