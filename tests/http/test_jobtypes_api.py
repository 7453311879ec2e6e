"""Job types over HTTP, including what a PyFarm agent downloads."""

from __future__ import annotations

import pytest

from tests.support.http_harness import Harness

RENDER = {
    "name": "Render",
    "description": "renders frames",
    "classname": "Render",
    "code": "class Render(JobType):\n    pass\n",
    "max_batch": 4,
    "batch_contiguous": True,
    "software_requirements": [],
}


def test_job_type_life_cycle(farm: Harness) -> None:
    c = farm.client
    c.simulate_post(
        "/api/v1/software",
        json={"software": "blender", "versions": [{"version": "2.79"}, {"version": "2.80"}]},
    )
    body = {**RENDER, "software_requirements": [{"software": "blender", "min_version": "2.79"}]}
    created = c.simulate_post("/api/v1/jobtypes/", json=body)
    assert created.status_code == 201, created.json
    assert created.json["version"] == 1
    assert created.json["software_requirements"] == [
        {"software": "blender", "min_version": "2.79", "max_version": None}
    ]
    assert c.simulate_post("/api/v1/jobtypes", json=body).status_code == 409

    second = c.simulate_put("/api/v1/jobtypes/Render", json={**RENDER, "max_batch": 8})
    assert second.status_code == 200 and second.json["version"] == 2
    assert second.json["id"] == created.json["id"]
    assert c.simulate_get("/api/v1/jobtypes/Render").json["max_batch"] == 8

    agent_view = c.simulate_get("/api/v1/jobtypes/Render/versions/1")
    assert agent_view.status_code == 200
    assert set(agent_view.json) >= {
        "id",
        "name",
        "version",
        "classname",
        "code",
        "max_batch",
        "batch_contiguous",
        "software_requirements",
    }
    assert agent_view.json["code"] == RENDER["code"]
    by_id = c.simulate_get(f"/api/v1/jobtypes/{created.json['id']}/versions/2")
    assert by_id.status_code == 200 and by_id.json["version"] == 2
    missing = c.simulate_get("/api/v1/jobtypes/Render/versions/3")
    assert missing.status_code == 404
    assert missing.json["error"] == "JobType Render version 3 not found"
    assert c.simulate_get("/api/v1/jobtypes/Render/versions/x").status_code == 404

    assert [v["version"] for v in c.simulate_get("/api/v1/jobtypes/Render/versions").json] == [1, 2]
    assert [j["name"] for j in c.simulate_get("/api/v1/jobtypes").json] == ["Render"]
    new = c.simulate_put("/api/v1/jobtypes/Comp", json={**RENDER, "name": "Comp"})
    assert new.status_code == 201 and new.json["version"] == 1
    assert c.simulate_delete("/api/v1/jobtypes/Comp").status_code == 204
    assert c.simulate_get("/api/v1/jobtypes/Comp").status_code == 404
    assert c.simulate_delete("/api/v1/jobtypes/Comp").status_code == 204


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "`name` is required"),
        ({"name": "x", "max_batch": 0}, 400, "`max_batch` must be between 1 and 100000"),
        ({"name": "x", "max_batch": "4"}, 400, "must be an integer"),
        ({"name": "x", "batch_contiguous": 1}, 400, "must be a boolean"),
        ({"name": "123"}, 400, "not a valid job type name"),
        (
            {"name": "x", "software_requirements": [{"software": "nope"}]},
            404,
            "Software nope not found",
        ),
        (
            {"name": "x", "software_requirements": [{"software": "maya", "min_version": "9"}]},
            404,
            "Software maya version 9 not found",
        ),
        (
            {
                "name": "x",
                "software_requirements": [
                    {"software": "maya", "min_version": "2018", "max_version": "2017"}
                ],
            },
            400,
            "is newer than max_version",
        ),
        (
            {"name": "x", "software_requirements": [{"software": "maya"}, {"software": "maya"}]},
            400,
            "required twice",
        ),
        (
            {"name": "x", "software_requirements": [{"software": "maya", "colour": 1}]},
            400,
            "do not exist: colour",
        ),
    ],
)
def test_bad_job_types_are_refused(farm: Harness, body, status, message) -> None:
    farm.client.simulate_post(
        "/api/v1/software",
        json={"software": "maya", "versions": [{"version": "2017"}, {"version": "2018"}]},
    )
    result = farm.client.simulate_post("/api/v1/jobtypes", json=body)
    assert result.status_code == status, result.json
    assert message in result.json["error"]
    assert farm.client.simulate_get("/api/v1/jobtypes").json == []


def test_put_cannot_rename(farm: Harness) -> None:
    farm.client.simulate_post("/api/v1/jobtypes", json=RENDER)
    result = farm.client.simulate_put("/api/v1/jobtypes/Render", json={**RENDER, "name": "X"})
    assert result.status_code == 400 and "does not match" in result.json["error"]


def test_a_job_type_in_use_cannot_be_deleted(farm: Harness) -> None:
    job = farm.job()
    with farm.uow() as uow:
        name = next(j.name for j in uow.jobtypes.list_latest() if j.id == job.jobtype_version_id)
    result = farm.client.simulate_delete(f"/api/v1/jobtypes/{name}")
    assert result.status_code == 409 and "used by jobs" in result.json["error"]
