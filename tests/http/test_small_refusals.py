"""Odd values that once answered 500 are clear 400s (or 404s) that change nothing."""

from __future__ import annotations

import uuid

import pytest

from tests.support.http_harness import Harness

JOB = {"title": "shot", "jobtype": "render", "start": 1, "end": 2}


@pytest.fixture
def jobs(farm: Harness) -> Harness:
    assert farm.client.simulate_post("/api/v1/jobtypes", json={"name": "render"}).status_code == 201
    return farm


def jobs_listed(farm: Harness) -> int:
    return len(farm.client.simulate_get("/api/v1/jobs").json)


@pytest.mark.parametrize(
    "fields",
    [
        {"start": 0, "end": 1e30},
        {"start": 1, "end": 10, "by": 1e-30},
        {"parents": list(range(1, 70_001))},
        {"tags": [f"t{i}" for i in range(1_000)]},
        {"tag_requirements": [{"tag": f"t{i}", "negate": False} for i in range(1_000)]},
        {"software_requirements": [{"software": f"s{i}"} for i in range(1_000)]},
    ],
)
def test_job_submissions_out_of_bounds_are_400(jobs: Harness, fields: dict[str, object]) -> None:
    result = jobs.client.simulate_post("/api/v1/jobs", json={**JOB, **fields})
    assert result.status_code == 400, result.text[:300]
    assert isinstance(result.json["error"], str)
    assert jobs_listed(jobs) == 0


@pytest.mark.parametrize(
    "query",
    ["limit=%C2%B2", "offset=%C2%B2", "limit=%D9%A3", "title=%00", "state=%00"],
)
def test_odd_query_strings_are_400(jobs: Harness, query: str) -> None:
    result = jobs.client.simulate_get("/api/v1/jobs", query_string=query)
    assert result.status_code == 400, result.text[:300]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs/%00",
        "/api/v1/jobs/a%00b",
        "/api/v1/software/a%00b",
        "/api/v1/jobtypes/a%00b",
        "/api/v1/agents/updates/1.0%00",
    ],
)
def test_nul_in_a_path_is_400(jobs: Harness, path: str) -> None:
    result = jobs.client.simulate_get(path)
    assert result.status_code == 400, result.text[:300]


def test_a_trailing_newline_is_refused(jobs: Harness) -> None:
    agent = jobs.announce(hostname="node\n")
    assert agent.status_code == 400, agent.text[:300]
    mac = jobs.announce(mac_addresses=["aa:bb:cc:dd:ee:ff\n"])
    assert mac.status_code == 400, mac.text[:300]
    update = jobs.client.simulate_put(
        "/api/v1/agents/updates/1.0%0A", body=b"zip", headers={"Content-Type": "application/zip"}
    )
    assert update.status_code == 400, update.text[:300]


@pytest.mark.parametrize(
    "fields",
    [
        {"mac_addresses": [f"aa:bb:cc:dd:{i // 256:02x}:{i % 256:02x}" for i in range(1_000)]},
        {"gpus": [f"gpu {i}" for i in range(1_000)]},
    ],
)
def test_agent_lists_have_caps(jobs: Harness, fields: dict[str, object]) -> None:
    result = jobs.announce(uuid.uuid4(), **fields)
    assert result.status_code == 400, result.text[:300]
    assert jobs.client.simulate_get("/api/v1/agents").json == []


def test_agent_tags_have_a_cap(jobs: Harness) -> None:
    agent_id = uuid.uuid4()
    assert jobs.announce(agent_id).status_code == 201
    tags = [f"t{i}" for i in range(1_000)]
    result = jobs.client.simulate_put(f"/api/v1/agents/{agent_id}/tags", json=tags)
    assert result.status_code == 400, result.text[:300]


def test_software_version_lists_have_a_cap(jobs: Harness) -> None:
    versions = [{"version": str(i)} for i in range(2_000)]
    result = jobs.client.simulate_post(
        "/api/v1/software", json={"software": "blender", "versions": versions}
    )
    assert result.status_code == 400, result.text[:300]


@pytest.mark.parametrize("length", [250, 251, 252, 255, 256])
def test_log_identifiers_fit_a_file_name(jobs: Harness, length: int) -> None:
    job = jobs.client.simulate_post("/api/v1/jobs", json=JOB).json
    task = jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks").json[0]
    agent_id = uuid.uuid4()
    assert jobs.announce(agent_id).status_code == 201
    assert (
        jobs.client.simulate_post(
            f"/api/v1/agents/{agent_id}/tasks", json={"id": task["id"]}
        ).status_code
        < 300
    )
    identifier = "a" * length
    logs = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}/attempts/1/logs"
    registered = jobs.client.simulate_post(logs, json={"identifier": identifier})
    if length <= 251:
        assert registered.status_code == 201, registered.text[:300]
        uploaded = jobs.client.simulate_put(
            f"{logs}/{identifier}/logfile",
            body=b"line\n",
            headers={"Content-Type": "text/csv"},
        )
        assert uploaded.status_code < 300, uploaded.text[:300]
    else:
        assert registered.status_code == 400, registered.text[:300]
