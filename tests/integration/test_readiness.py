"""``/readyz`` as an orchestrator sees it when a store goes away: each test reaches its store
through a proxy on loopback and cuts it (the machine's PostgreSQL and Redis keep running)."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from tests.support.databases import REDIS_URL, needs_redis
from tests.support.http_harness import Harness, make_harness
from tests.support.metrics import parse, value
from tests.support.proxy import CuttableProxy


def readiness(farm: Harness) -> tuple[int, list[str]]:
    answer = farm.client.simulate_get("/readyz")
    return answer.status_code, answer.json.get("problems", [])


def store_up(farm: Harness, store: str) -> float:
    answer = farm.client.simulate_get("/metrics")
    assert answer.status_code == 200, answer.text
    return value(parse(answer.text), "farm_up", store=store)


@pytest.mark.postgres
def test_not_ready_once_the_database_is_out_of_reach(
    postgres_database_url: str, tmp_path: Path
) -> None:
    database = make_url(postgres_database_url)
    proxy = CuttableProxy(database.host or "127.0.0.1", database.port or 5432)
    through_proxy = database.set(host="127.0.0.1", port=proxy.port)
    for farm in make_harness(through_proxy.render_as_string(hide_password=False), tmp_path):
        assert readiness(farm) == (200, [])
        assert store_up(farm, "database") == 1

        proxy.cut()

        status, problems = readiness(farm)
        assert status == 503
        assert [p for p in problems if p.startswith("database unreachable")], problems
        assert not [p for p in problems if p.startswith("queue")], problems
        # The process answers, and its metrics say what they could not read.
        assert farm.client.simulate_get("/healthz").status_code == 200
        assert store_up(farm, "database") == 0


@pytest.mark.redis
@needs_redis
def test_not_ready_once_the_queue_is_out_of_reach(sqlite_url: str, tmp_path: Path) -> None:
    assert REDIS_URL
    redis = urlsplit(REDIS_URL)
    proxy = CuttableProxy(redis.hostname or "127.0.0.1", redis.port or 6379)
    queue_url = redis._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    name = f"farm-readiness-{uuid.uuid4().hex[:12]}"
    for farm in make_harness(sqlite_url, tmp_path, FARM_QUEUE_URL=queue_url, FARM_QUEUE_NAME=name):
        assert readiness(farm) == (200, [])
        assert store_up(farm, "queue") == 1

        proxy.cut()

        status, problems = readiness(farm)
        assert status == 503
        assert [p for p in problems if p.startswith("queue unreachable")], problems
        assert not [p for p in problems if p.startswith("database")], problems
        assert farm.client.simulate_get("/healthz").status_code == 200
        assert store_up(farm, "queue") == 0
