"""The operator commands' fixture: a farm's settings in the environment."""

from __future__ import annotations

import pytest


@pytest.fixture
def farm_env(database_url: str, tmp_path, monkeypatch):
    """FARM_ settings for a command run in this process, on ``database_url``."""
    for key, value in {
        "FARM_DATA_DIR": str(tmp_path),
        "FARM_DATABASE_URL": database_url,
        "FARM_QUEUE_URL": "immediate",
        "FARM_AGENT_NETWORKS": "127.0.0.0/8",
        "FARM_AGENT_RETRIES": "0",
    }.items():
        monkeypatch.setenv(key, value)
    return database_url
