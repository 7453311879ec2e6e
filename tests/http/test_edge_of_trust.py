"""The HTTP edge: who a request is (a token, a network admitted anonymously, or nobody), and
what keeps a browser from being used against the master (Host, body types, headers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from farm_domain.access import Identity, Role
from tests.support.http_harness import Harness, make_harness

JOB = {"title": "x", "jobtype": "command", "start": 1}
ANNOUNCE = {"hostname": "node", "ram": 4096, "free_ram": 2048, "cpus": 8, "port": 50000}


@pytest.fixture
def fresh(database_url: str, tmp_path: Path) -> Iterator[Harness]:
    """A master on the default trust settings (no anonymous networks), answering to the test
    client's Host."""
    yield from make_harness(
        database_url,
        tmp_path,
        FARM_ANONYMOUS_NETWORKS="",
        FARM_ANONYMOUS_ROLE="",
        FARM_ALLOWED_HOSTS="",
    )


def _localhost(harness: Harness, method: str, path: str, **kwargs: Any) -> falcon.testing.Result:
    headers = {"Host": "localhost:8080", **kwargs.pop("headers", {})}
    return harness.client.simulate_request(method, path, headers=headers, **kwargs)


def test_a_fresh_master_answers_nobody_401_before_reading_the_body(fresh: Harness) -> None:
    for method, path, kwargs in (
        ("GET", "/api/v1/jobs", {}),
        ("POST", "/api/v1/jobs", {"json": JOB}),
        (
            "POST",
            "/api/v1/jobs",
            {"body": b"{not json", "headers": {"Content-Type": "application/json"}},
        ),
        ("POST", "/api/v1/agents", {"json": {"id": str(uuid.uuid4()), **ANNOUNCE}}),
        ("GET", "/api/v1/no-such-route", {}),
    ):
        answer = _localhost(fresh, method, path, **kwargs)
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.json["error"]
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert _localhost(fresh, "GET", "/api/v1/agents").status_code == 401


def test_a_malformed_or_unknown_authorization_is_401_even_from_an_admitted_network(
    farm: Harness,
) -> None:
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "bearer farm_unknown", "Token x"):
        answer = farm.client.simulate_get("/api/v1/jobs", headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert answer.json["error"]
    assert farm.client.simulate_get("/api/v1/jobs").status_code == 200  # anonymous admin


def test_a_token_is_an_identity_and_its_role_decides(fresh: Harness) -> None:
    operator = Identity.local_operator("test")
    _, viewer = fresh.runtime.farm.identities.create_token(operator, Role.VIEWER, "vic")
    headers = {"Host": "localhost", "Authorization": f"Bearer {viewer}"}
    assert fresh.client.simulate_get("/api/v1/jobs", headers=headers).status_code == 200
    submitted = fresh.client.simulate_post("/api/v1/jobs", json=JOB, headers=headers)
    assert submitted.status_code == 403 and "viewer" in submitted.json["error"]


@pytest.mark.parametrize(
    "headers",
    [
        {},  # a no-cors Blob: no Content-Type at all
        {"Content-Type": "text/plain"},
        {"Content-Type": "text/plain;charset=UTF-8"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "multipart/form-data; boundary=x"},
    ],
)
def test_json_endpoints_refuse_bodies_of_other_types_with_415(
    farm: Harness, headers: dict[str, str]
) -> None:
    body = b'{"title": "x", "jobtype": "command", "start": 1}'
    answer = farm.client.simulate_post("/api/v1/jobs", body=body, headers=headers)
    assert answer.status_code == 415 and answer.json["error"]
    assert farm.client.simulate_get("/api/v1/jobs").json == []
    agent = farm.client.simulate_post("/api/v1/agents", body=b'{"hostname": "x"}', headers=headers)
    assert agent.status_code == 415


def test_json_with_a_charset_is_json(farm: Harness) -> None:
    assert (
        farm.client.simulate_post("/api/v1/jobtypes", json={"name": "command"}).status_code == 201
    )
    answer = farm.client.simulate_post(
        "/api/v1/jobtypes",
        body=b'{"name": "other"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert answer.status_code == 201


def test_uploads_keep_their_own_types(farm: Harness) -> None:
    archive = b"PK\x05\x06" + bytes(18)
    stored = farm.client.simulate_put(
        "/api/v1/agents/updates/1.2",
        body=archive,
        headers={"Content-Type": "application/zip"},
    )
    assert stored.status_code == 201
    as_json = farm.client.simulate_put(
        "/api/v1/agents/updates/1.3", body=archive, headers={"Content-Type": "application/json"}
    )
    assert as_json.status_code == 415


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.2", "[::2]:80"])
def test_a_foreign_host_is_400_on_every_route(fresh: Harness, host: str) -> None:
    for path in ("/api/v1/jobs", "/api/v1/agents/schema", "/agents", "/"):
        answer = fresh.client.simulate_get(path, headers={"Host": host})
        assert answer.status_code == 400, (host, path)
        assert "Host" in answer.json["error"]
        assert answer.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8080", "127.0.0.1:80", "[::1]:8080"])
def test_the_default_hosts_are_the_bind_address_and_loopback_names(
    fresh: Harness, host: str
) -> None:
    answer = fresh.client.simulate_get("/api/v1/jobs", headers={"Host": host})
    assert answer.status_code == 401  # past the Host check, to the credential check


def test_any_host_when_told(database_url: str, tmp_path: Path) -> None:
    for harness in make_harness(database_url, tmp_path, FARM_ALLOWED_HOSTS="*"):
        answer = harness.client.simulate_get("/api/v1/jobs", headers={"Host": "rebound.example"})
        assert answer.status_code == 200


def test_every_answer_carries_the_security_headers(farm: Harness) -> None:
    for answer in (
        farm.client.simulate_get("/api/v1/jobs"),
        farm.client.simulate_get("/api/v1/jobs/404"),
        farm.client.simulate_post("/api/v1/jobs", body=b"x"),
        farm.client.simulate_get("/agents"),
        farm.client.simulate_get("/api/v1/jobs", headers={"Host": "evil.example"}),
    ):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
    api = farm.client.simulate_get("/api/v1/jobs")
    assert api.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_an_anonymous_network_agent_acts_as_any_agent_but_submits_nothing(
    database_url: str, tmp_path: Path
) -> None:
    for harness in make_harness(
        database_url,
        tmp_path,
        FARM_ANONYMOUS_NETWORKS="10.1.0.0/16",
        FARM_ANONYMOUS_ROLE="agent",
    ):
        client = harness.client
        pyfarm = {"remote_addr": "10.1.2.3"}
        first, second = uuid.uuid4(), uuid.uuid4()
        for agent_id in (first, second):
            announced = client.simulate_post(
                "/api/v1/agents", json={"id": str(agent_id), **ANNOUNCE}, **pyfarm
            )
            assert announced.status_code == 201, announced.text
            beat = client.simulate_post(
                f"/api/v1/agents/{agent_id}", json={"free_ram": 1024}, **pyfarm
            )
            assert beat.status_code == 200 and beat.json["free_ram"] == 1024
        assert client.simulate_get("/api/v1/agents", **pyfarm).status_code == 200
        submitted = client.simulate_post("/api/v1/jobs", json=JOB, **pyfarm)
        assert submitted.status_code == 403
        tags = client.simulate_put(f"/api/v1/agents/{first}/tags", json=["gpu"], **pyfarm)
        assert tags.status_code == 403
        jobtype = client.simulate_post("/api/v1/jobtypes", json={"name": "command"}, **pyfarm)
        assert jobtype.status_code == 403
        outsider = client.simulate_get("/api/v1/agents", remote_addr="10.2.0.1")
        assert outsider.status_code == 401
        events = harness.runtime.farm.events.query(Identity.local_operator("test"))
        assert {(e.actor, e.role, e.address) for e in events} == {
            ("anonymous", Role.AGENT, "10.1.2.3")
        }
