"""The software catalogue over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tests.support.http_harness import Harness


def test_software_life_cycle(farm: Harness) -> None:
    c = farm.client
    created = c.simulate_post(
        "/api/v1/software/",
        json={
            "software": "blender",
            "versions": [{"version": "2.79", "rank": 100}, {"version": "2.80"}],
        },
    )
    assert created.status_code == 201
    assert created.json["software"] == "blender"
    assert [(v["version"], v["rank"]) for v in created.json["versions"]] == [
        ("2.79", 100),
        ("2.80", 200),
    ]
    assert c.simulate_post("/api/v1/software", json={"software": "blender"}).status_code == 409
    assert [s["software"] for s in c.simulate_get("/api/v1/software").json] == ["blender"]
    assert c.simulate_get("/api/v1/software/blender").json == created.json

    added = c.simulate_post("/api/v1/software/blender/versions/", json={"version": "2.81"})
    assert added.status_code == 201 and added.json["rank"] == 300
    assert c.simulate_get("/api/v1/software/blender/versions/2.81").json == added.json
    listed = c.simulate_get("/api/v1/software/blender/versions").json
    assert [v["version"] for v in listed] == ["2.79", "2.80", "2.81"]

    renamed = c.simulate_put("/api/v1/software/blender", json={"software": "Blender"})
    assert renamed.status_code == 200 and renamed.json["software"] == "Blender"
    assert c.simulate_get("/api/v1/software/blender").status_code == 404

    assert c.simulate_delete("/api/v1/software/Blender/versions/2.80").status_code == 204
    assert c.simulate_get("/api/v1/software/Blender/versions/2.80").status_code == 404
    assert c.simulate_delete("/api/v1/software/Blender").status_code == 204
    assert c.simulate_delete("/api/v1/software/Blender").status_code == 204
    assert c.simulate_get("/api/v1/software").json == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "`software` is required"),
        ({"software": 5}, "`software` must be a string"),
        ({"software": "x", "versions": "2.79"}, "`versions` must be a list"),
        ({"software": "x", "versions": [{"version": 2.79}]}, "must be a string"),
        ({"software": "x", "versions": [{"version": "1", "rank": "1"}]}, "must be an integer"),
        (
            {"software": "x", "versions": [{"version": "1", "colour": "red"}]},
            "do not exist: colour",
        ),
        ({"software": "x", "colour": "red"}, "do not exist: colour"),
        ({"software": "a/b"}, "not a valid software"),
        ({"software": "x", "versions": [{"version": "1"}, {"version": "1"}]}, "listed twice"),
    ],
)
def test_bad_software_bodies_are_400(farm: Harness, body, message) -> None:
    result = farm.client.simulate_post("/api/v1/software", json=body)
    assert result.status_code == 400, result.json
    assert message in result.json["error"]
    assert farm.client.simulate_get("/api/v1/software").json == []


def test_unknown_software_is_404(farm: Harness) -> None:
    for path in (
        "/api/v1/software/nope",
        "/api/v1/software/nope/versions",
        "/api/v1/software/nope/versions/1",
    ):
        result = farm.client.simulate_get(path)
        assert result.status_code == 404 and "not found" in result.json["error"]
    put = farm.client.simulate_put("/api/v1/software/nope", json={"software": "x"})
    assert put.status_code == 404


def test_an_agents_installed_software(farm: Harness) -> None:
    c = farm.client
    c.simulate_post(
        "/api/v1/software", json={"software": "maya", "versions": [{"version": "2018"}]}
    )
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    path = f"/api/v1/agents/{agent_id}/software"
    assert c.simulate_get(path).json == []
    installed = c.simulate_post(path + "/", json={"software": "maya", "version": "2018"})
    assert installed.status_code == 201
    assert installed.json == [{"software": "maya", "version": "2018"}]
    assert c.simulate_get(f"/api/v1/agents/{agent_id}").json["software"] == installed.json
    missing = c.simulate_post(path, json={"software": "maya", "version": "2099"})
    assert missing.status_code == 404 and "version 2099 not found" in missing.json["error"]
    assert c.simulate_post(path, json={"software": "maya"}).status_code == 400
    assert c.simulate_delete(f"{path}/maya/versions/2018").status_code == 204
    assert c.simulate_get(path).json == []
    assert c.simulate_get(f"/api/v1/agents/{uuid.uuid4()}/software").status_code == 404
