"""The access log: every request, only errors and slow requests (the default), or none."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import attrs
import falcon.testing
import pytest

from farm_http import HttpOptions, create_app
from tests.support.http_harness import Harness


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "farm.http.access"]


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """A record's attributes, with those the access log adds through ``extra=``."""
    return vars(record)


def client(farm: Harness, **options: Any) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(
        create_app(
            farm.runtime.farm, attrs.evolve(HttpOptions.of(farm.runtime.settings), **options)
        )
    )


def exchange(api: falcon.testing.TestClient) -> uuid.UUID:
    agent_id = uuid.uuid4()
    created = api.simulate_post(
        "/api/v1/agents/",
        json={
            "id": str(agent_id),
            "hostname": "node1",
            "ram": 4096,
            "free_ram": 2048,
            "cpus": 8,
            "port": 50000,
        },
    )
    assert created.status_code == 201
    assert (
        api.simulate_post(f"/api/v1/agents/{agent_id}", json={"free_ram": 1024}).status_code == 200
    )
    assert api.simulate_post(f"/api/v1/agents/{agent_id}", json={"ram": "lots"}).status_code == 400
    return agent_id


def test_all_logs_every_request_with_its_fields(farm: Harness, caplog) -> None:
    caplog.set_level(logging.INFO, logger="farm.http.access")
    agent_id = exchange(client(farm, access_log="all"))
    lines = access_lines(caplog)
    assert [fields(r)["status"] for r in lines] == [201, 200, 400]
    assert fields(lines[1])["path"] == f"/api/v1/agents/{agent_id}"
    assert fields(lines[1])["method"] == "POST" and fields(lines[1])["ms"] >= 0


def test_errors_logs_only_refused_requests_by_default(farm: Harness, caplog) -> None:
    caplog.set_level(logging.INFO, logger="farm.http.access")
    exchange(client(farm))
    assert [fields(r)["status"] for r in access_lines(caplog)] == [400]


def test_errors_also_logs_slow_requests_as_warnings(farm: Harness, caplog) -> None:
    caplog.set_level(logging.INFO, logger="farm.http.access")
    exchange(client(farm, slow_request_ms=0))  # every request is "slow"
    lines = access_lines(caplog)
    assert [fields(r)["status"] for r in lines] == [201, 200, 400]
    assert {r.levelno for r in lines} == {logging.WARNING}


def test_off_logs_nothing(farm: Harness, caplog) -> None:
    caplog.set_level(logging.INFO, logger="farm.http.access")
    exchange(client(farm, access_log="off"))
    assert access_lines(caplog) == []
