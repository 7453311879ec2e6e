"""The OpenAPI document: valid OpenAPI 3.1, generated from the route table, naming every route
and method the app answers and nothing else, and describing the answers the app really gives."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import falcon
import falcon.testing
import jsonschema  # type: ignore[import-untyped]
from openapi_spec_validator import validate

from farm_http.openapi import path_of
from farm_http.reference import openapi_document
from farm_http.routes import ROUTES, responders
from tests.support.http_harness import Harness

DOCUMENT = openapi_document(ROUTES)
OPERATIONS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _documented() -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in OPERATIONS
    }


def _router_routes(app: falcon.App[Any, Any]) -> set[tuple[str, str]]:
    """Every (path, method) the Falcon app's own router answers under /api/ (its responders,
    not the 405 and OPTIONS defaults it fills in)."""
    found = set()

    def walk(nodes: list[Any]) -> Iterator[Any]:
        for node in nodes:
            yield node
            yield from walk(node.children)

    for node in walk(app._router._roots):
        if node.resource is None or not (
            node.uri_template.startswith("/api/") or node.uri_template in _OUTSIDE_API
        ):
            continue  # the dashboard's pages
        for method in responders(node.resource):
            found.add((path_of(node.uri_template), method))
    return found


# The table's routes outside /api/ (health checks, metrics), beside the dashboard's pages.
_OUTSIDE_API = {route.template for route in ROUTES if not route.template.startswith("/api/")}


def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"] == "3.1.0"
    validate(DOCUMENT)


def test_every_route_and_method_of_the_table_is_documented_and_nothing_else() -> None:
    table = {(path_of(route.template), method) for route in ROUTES for method in route.needs}
    assert _documented() == table


def test_every_route_the_app_answers_is_documented(farm: Harness) -> None:
    assert _router_routes(farm.client.app) == _documented()


def test_every_body_method_declares_its_body_and_every_method_its_answer() -> None:
    for route in ROUTES:
        assert set(route.answers) == set(route.needs), route.template
        assert set(route.bodies) >= route.json_bodies | route.raw_bodies, route.template
        assert set(route.bodies) <= set(route.needs), route.template


def test_the_document_is_served_to_any_credential(farm: Harness) -> None:
    result = farm.client.simulate_get("/api/v1/openapi.json")
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "application/json"
    assert result.json == DOCUMENT
    assert DOCUMENT["info"]["version"]


def test_path_parameters_come_from_the_templates() -> None:
    task = DOCUMENT["paths"]["/api/v1/jobs/{job}/tasks/{task_id}"]["get"]
    parameters = {p["name"]: p["schema"] for p in task["parameters"]}
    assert parameters["job"] == {"type": "string", "minLength": 1}
    assert parameters["task_id"] == {"type": "integer", "minimum": 0, "maximum": 2147483647}
    agent = DOCUMENT["paths"]["/api/v1/agents/{agent_id}"]["get"]
    assert agent["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}


def test_request_bodies_come_from_the_types_the_api_parses_into() -> None:
    """JobSpec's fields: ``title`` and ``start`` have no default, the rest may be left out;
    no other key is taken."""
    schemas = DOCUMENT["components"]["schemas"]
    spec = schemas["JobSpec"]
    assert set(spec["required"]) == {"title", "start"}
    assert spec["additionalProperties"] is False
    assert spec["properties"]["end"] == {"type": ["number", "null"]}
    assert spec["properties"]["environ"] == {
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    changes = schemas["JobChanges"]
    assert "required" not in changes  # every field UNSET by default: all optional
    assert changes["properties"]["ram_max"] == {"type": ["integer", "null"]}
    agent = schemas["AgentBody"]
    assert "reported_task_ids" not in agent["properties"]
    assert "current_assignments" in agent["properties"]


def test_query_parameters_and_their_bounds() -> None:
    events = DOCUMENT["paths"]["/api/v1/events"]["get"]["parameters"]
    limit = next(p for p in events if p["name"] == "limit")
    assert limit == {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
    }


def test_uploads_and_downloads_keep_their_types() -> None:
    logfile = DOCUMENT["paths"][
        "/api/v1/jobs/{job}/tasks/{task_id}/attempts/{attempt}/logs/{identifier}/logfile"
    ]
    assert set(logfile["put"]["requestBody"]["content"]) == {"text/csv", "text/plain"}
    assert set(logfile["get"]["responses"]["200"]["content"]) == {"text/plain"}
    update = DOCUMENT["paths"]["/api/v1/agents/updates/{version}"]
    assert set(update["put"]["requestBody"]["content"]) == {"application/zip"}
    assert "507" in update["put"]["responses"]


def _answer_schema(path: str, method: str, status: int) -> dict[str, Any]:
    response = DOCUMENT["paths"][path][method]["responses"][str(status)]
    return {**response["content"]["application/json"]["schema"], **DOCUMENT}


def _conforms(result: falcon.testing.Result, path: str, method: str = "get") -> None:
    assert str(result.status_code) in DOCUMENT["paths"][path][method]["responses"], result.text
    jsonschema.Draft202012Validator(
        _answer_schema(path, method, result.status_code),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    ).validate(result.json)


def test_answers_match_the_document(farm: Harness) -> None:
    """A small farm's answers, each checked against the document: every key of each answer
    is declared, with its type (no key beyond the declared ones)."""
    agent_id = uuid.UUID(int=7)
    announced = farm.announce(agent_id, os_class="linux", mac_addresses=["00:11:22:33:44:55"])
    _conforms(announced, "/api/v1/agents", "post")
    client = farm.client
    client.simulate_post(
        "/api/v1/software", json={"software": "blender", "versions": [{"version": "4.2"}]}
    )
    client.simulate_post("/api/v1/jobtypes", json={"name": "command"})
    client.simulate_post(
        f"/api/v1/agents/{agent_id}/software", json={"software": "blender", "version": "4.2"}
    )
    job = client.simulate_post(
        "/api/v1/jobs",
        json={
            "title": "shot",
            "jobtype": "command",
            "start": 1,
            "end": 3,
            "software_requirements": [{"software": "blender", "min_version": "4.2"}],
            "tag_requirements": [{"tag": "gpu", "negate": True}],
        },
    )
    _conforms(job, "/api/v1/jobs", "post")
    job_id = job.json["id"]
    task_id = client.simulate_get(f"/api/v1/jobs/{job_id}/tasks").json[0]["id"]
    _conforms(
        client.simulate_post(f"/api/v1/agents/{agent_id}/tasks", json={"id": task_id}),
        "/api/v1/agents/{agent_id}/tasks",
        "post",
    )
    _conforms(
        client.simulate_post(
            f"/api/v1/jobs/{job_id}/tasks/{task_id}",
            json={"state": "done", "outputs": [{"path": "/out/1.png", "size": 3}]},
        ),
        "/api/v1/jobs/{job}/tasks/{task_id}",
        "post",
    )
    _conforms(
        client.simulate_post(f"/api/v1/jobs/{job_id}/requeue"), "/api/v1/jobs/{job}/requeue", "post"
    )
    _conforms(
        client.simulate_post("/api/v1/bulk/jobs/pause", json={"jobs": [job_id, 999]}),
        "/api/v1/bulk/jobs/pause",
        "post",
    )
    for path, url in (
        ("/api/v1/agents", "/api/v1/agents"),
        ("/api/v1/agents/{agent_id}", f"/api/v1/agents/{agent_id}"),
        ("/api/v1/agents/{agent_id}/tasks", f"/api/v1/agents/{agent_id}/tasks"),
        ("/api/v1/agents/{agent_id}/explain", f"/api/v1/agents/{agent_id}/explain"),
        ("/api/v1/agents/{agent_id}/software", f"/api/v1/agents/{agent_id}/software"),
        ("/api/v1/agents/schema", "/api/v1/agents/schema"),
        ("/api/v1/software", "/api/v1/software"),
        ("/api/v1/jobtypes", "/api/v1/jobtypes"),
        ("/api/v1/jobs", "/api/v1/jobs"),
        ("/api/v1/jobs/{job}", f"/api/v1/jobs/{job_id}"),
        ("/api/v1/jobs/{job}/tasks", f"/api/v1/jobs/{job_id}/tasks"),
        ("/api/v1/jobs/{job}/explain", f"/api/v1/jobs/{job_id}/explain"),
        ("/api/v1/jobs/{job}/blocklist", f"/api/v1/jobs/{job_id}/blocklist"),
        ("/api/v1/jobs/{job}/tasks/{task_id}/failures", f"/api/v1/jobs/{job_id}/tasks/1/failures"),
        ("/api/v1/events", "/api/v1/events"),
        ("/api/v1/jobs/{job}", "/api/v1/jobs/404"),
    ):
        _conforms(client.simulate_get(url), path)


def test_every_operation_documents_its_refusals() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"400", "401", "403"} <= set(responses), (path, method)
            assert responses["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorJson"
            }
