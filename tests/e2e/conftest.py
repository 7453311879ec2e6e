"""Real processes on loopback: ``farm serve``, ``farm worker``, ``farm agent``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Master, Process, StartMaster, base_env


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """The processes a test starts, stopped in reverse order at its end."""
    started: list[Process] = []
    yield started
    for process in reversed(started):
        process.stop()


@pytest.fixture
def start_master(tmp_path: Path, processes: list[Process]) -> StartMaster:
    """Starts ``farm serve`` with extra command-line ``args`` and FARM_ settings ``env`` on a
    free loopback port, waits until it answers, and returns it; it is stopped with the test."""

    def start(*args: str, **env: str) -> Master:
        return Master(tmp_path, processes, base_env(tmp_path, **env), args)

    return start
