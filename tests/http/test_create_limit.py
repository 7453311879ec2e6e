"""Each client's budget of creates (FARM_CREATE_RATE, FARM_CREATE_BURST): past it, 429 with
Retry-After, and nothing is stored; other clients and updates are not affected."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm_domain.access import Identity, Role
from tests.support.http_harness import Harness, make_harness

BURST = 3
# 3 creates in any 300 s: no test here lives long enough to see a create come back.
RATE = "0.01"


@pytest.fixture
def limited(database_url: str, tmp_path: Path) -> Iterator[Harness]:
    yield from make_harness(
        database_url, tmp_path, FARM_CREATE_RATE=RATE, FARM_CREATE_BURST=str(BURST)
    )


def jobtype_names(farm: Harness) -> list[str]:
    return sorted(t["name"] for t in farm.client.simulate_get("/api/v1/jobtypes").json)


def agents_listed(farm: Harness) -> int:
    return len(farm.client.simulate_get("/api/v1/agents").json)


def test_a_create_past_the_burst_is_429_with_retry_after_and_stores_nothing(
    limited: Harness,
) -> None:
    for n in range(BURST):
        created = limited.client.simulate_post("/api/v1/jobtypes", json={"name": f"t{n}"})
        assert created.status_code == 201, created.text
    refused = limited.client.simulate_post("/api/v1/jobtypes", json={"name": "one-too-many"})
    assert refused.status_code == 429
    assert "FARM_CREATE_RATE" in refused.json["error"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 300
    assert jobtype_names(limited) == ["t0", "t1", "t2"]


def test_a_refused_announce_of_a_new_agent_stores_no_agent(limited: Harness) -> None:
    for _ in range(BURST):
        assert limited.announce().status_code == 201
    refused = limited.announce(hostname="flood")
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert agents_listed(limited) == BURST


def test_other_clients_keep_budgets_of_their_own(limited: Harness) -> None:
    for _ in range(BURST):
        assert limited.announce().status_code == 201
    assert limited.announce().status_code == 429
    # Another address admitted by network, and a token from the same address.
    body = {
        "id": str(uuid.uuid4()),
        "hostname": "n2",
        "ram": 4096,
        "free_ram": 1024,
        "cpus": 2,
        "port": 50000,
    }
    other = limited.client.simulate_post("/api/v1/agents", json=body, remote_addr="127.0.0.2")
    assert other.status_code == 201, other.text
    operator = Identity.local_operator("op")
    _, secret = limited.runtime.farm.identities.create_token(operator, Role.ADMIN, "pipeline")
    tokened = limited.client.simulate_post(
        "/api/v1/jobtypes", json={"name": "t"}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert tokened.status_code == 201, tokened.text
    assert agents_listed(limited) == BURST + 1


def test_re_announces_and_heartbeats_spend_nothing(limited: Harness) -> None:
    known = uuid.uuid4()
    assert limited.announce(known).status_code == 201
    for _ in range(BURST * 5):
        assert limited.announce(known, free_ram=1024).status_code == 200
        heartbeat = limited.client.simulate_post(f"/api/v1/agents/{known}", json={"free_ram": 512})
        assert heartbeat.status_code == 200, heartbeat.text
    # The first announce was the only create: two more fit in the budget, not three.
    assert limited.announce().status_code == 201
    assert limited.announce().status_code == 201
    assert limited.announce().status_code == 429
    # Updates outside the creating routes still answer once the budget is spent.
    heartbeat = limited.client.simulate_post(f"/api/v1/agents/{known}", json={"free_ram": 256})
    assert heartbeat.status_code == 200


def test_refused_creates_spend_nothing(limited: Harness) -> None:
    for _ in range(BURST * 3):
        bad = limited.client.simulate_post("/api/v1/jobtypes", json={"name": ""})
        assert bad.status_code == 400
    for n in range(BURST):
        created = limited.client.simulate_post("/api/v1/jobtypes", json={"name": f"t{n}"})
        assert created.status_code == 201, created.text


def test_a_rate_of_zero_turns_the_limit_off(database_url: str, tmp_path: Path) -> None:
    harness = make_harness(database_url, tmp_path, FARM_CREATE_RATE="0", FARM_CREATE_BURST="1")
    farm = next(harness)
    for _ in range(5):
        assert farm.announce().status_code == 201
    next(harness, None)
