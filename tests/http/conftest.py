"""An app on a real database (SQLite, and PostgreSQL when available) with a recording queue;
and the same app on a real queue and consumer (``live_farm``), on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http_harness import Harness, make_harness
from tests.support.live_farm import (
    Backend,
    LiveHarness,
    backend_for,
    backend_params,
    make_live_harness,
)


@pytest.fixture
def farm(database_url: str, tmp_path: Path) -> Iterator[Harness]:
    yield from make_harness(database_url, tmp_path)


@pytest.fixture(params=backend_params())
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The embedded default (SQLite, SQLite queue), then PostgreSQL + Redis when available."""
    return backend_for(request, request.param, tmp_path)


@pytest.fixture
def live_farm(backend: Backend, tmp_path: Path) -> Iterator[LiveHarness]:
    """The app on ``backend`` with a real consumer that runs between any two requests."""
    yield from make_live_harness(backend, tmp_path)
