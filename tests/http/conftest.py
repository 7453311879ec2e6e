"""An app on a real database (SQLite, and PostgreSQL when available) with a recording queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http_harness import Harness, make_harness


@pytest.fixture
def farm(database_url: str, tmp_path: Path) -> Iterator[Harness]:
    yield from make_harness(database_url, tmp_path)
