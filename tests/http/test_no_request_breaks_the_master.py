"""No request of any shape produces a 500, and a refused request changes nothing."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farm_http.routes import ROUTES, Route
from tests.support.http_harness import Harness, make_harness

FIELDS = [
    "id",
    "hostname",
    "remote_ip",
    "use_address",
    "os_class",
    "os_fullname",
    "cpu_name",
    "ram",
    "free_ram",
    "cpus",
    "port",
    "time_offset",
    "version",
    "upgrade_to",
    "ram_allocation",
    "cpu_allocation",
    "restart_requested",
    "state",
    "mac_addresses",
    "gpus",
    "current_assignments",
    "farm_name",
    "last_heard_from",
    "tasks",
    "tags",
]

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([2**31 - 1, 2**31, 2**32, 2**53, 2**63 - 1, -(2**31) - 1, 1e300])
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
BODY = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), JSON, max_size=8)

KNOWN = uuid.UUID(int=7)
VALID = {
    "id": str(KNOWN),
    "hostname": "node",
    "ram": 1024,
    "free_ram": 512,
    "cpus": 4,
    "port": 50000,
}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def farm(request, tmp_path_factory) -> Iterator[Harness]:
    from farm_adapters import schema_migrations
    from farm_adapters.sql.engine import create_database_engine
    from tests.support.databases import create_empty_postgres_database, needs_postgres

    path = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url = f"sqlite:///{path / 'farm.db'}"
    else:
        if needs_postgres.args[0]:
            pytest.skip(needs_postgres.kwargs["reason"])
        url = create_empty_postgres_database()
    engine = create_database_engine(url)
    schema_migrations.upgrade(engine)
    engine.dispose()
    harness = make_harness(url, path)
    farm = next(harness)
    assert farm.client.simulate_post("/api/v1/agents", json=VALID).status_code == 201
    yield farm


def snapshot(farm: Harness) -> object:
    return farm.client.simulate_get(f"/api/v1/agents/{KNOWN}").json


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=st.one_of(BODY, BODY.map(lambda b: {**VALID, **b}), JSON))
def test_announce_and_update_never_fail_with_a_500(farm: Harness, body) -> None:
    before = snapshot(farm)
    for path in ("/api/v1/agents/", f"/api/v1/agents/{KNOWN}"):
        result = farm.client.simulate_post(path, json=body)
        assert result.status_code < 500, (path, body, result.text)
        if result.status_code >= 400:
            assert isinstance(result.json.get("error"), str)
            assert snapshot(farm) == before
        else:
            before = snapshot(farm)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "min_ram",
                "max_ram",
                "min_cpus",
                "max_cpus",
                "hostname",
                "remote_ip",
                "port",
                "state",
                "limit",
                "offset",
                "other",
            ]
        ),
        st.text(max_size=12),
        max_size=4,
    )
)
def test_listing_never_fails_with_a_500(farm: Harness, params) -> None:
    result = farm.client.simulate_get("/api/v1/agents/", params=params)
    assert result.status_code in (200, 400), result.text


JOB_FIELDS = [
    "title",
    "jobtype",
    "jobtype_version",
    "start",
    "end",
    "by",
    "batch",
    "priority",
    "weight",
    "requeue",
    "ram",
    "cpus",
    "minimum_agents",
    "maximum_agents",
    "data",
    "environ",
    "tags",
    "parents",
    "software_requirements",
    "user",
    "state",
    "time_started",
    "agent_id",
    "progress",
    "last_error",
    "frame",
    "job_id",
]
JOB_BODY = st.dictionaries(st.sampled_from(JOB_FIELDS) | st.text(max_size=8), JSON, max_size=8)
VALID_JOB = {"title": "fuzz", "jobtype": "fuzz", "start": 1, "end": 3}


@pytest.fixture(scope="module")
def job_farm(farm: Harness) -> tuple[Harness, int, int]:
    farm.client.simulate_post("/api/v1/jobtypes", json={"name": "fuzz"})
    job = farm.client.simulate_post("/api/v1/jobs", json=VALID_JOB).json
    task = farm.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks").json[0]
    farm.client.simulate_post(f"/api/v1/agents/{KNOWN}/tasks", json={"id": task["id"]})
    return farm, job["id"], task["id"]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=st.one_of(JOB_BODY, JOB_BODY.map(lambda b: {**VALID_JOB, **b}), JSON))
def test_job_endpoints_never_fail_with_a_500(job_farm, body) -> None:
    farm, job_id, task_id = job_farm
    for path in (
        "/api/v1/jobs",
        f"/api/v1/jobs/{job_id}",
        f"/api/v1/jobs/{job_id}/tasks/{task_id}",
        f"/api/v1/jobs/{job_id}/tasks/{task_id}/attempts/1/logs",
        "/api/v1/software",
        "/api/v1/jobtypes",
    ):
        result = farm.client.simulate_post(path, json=body)
        assert result.status_code < 500, (path, body, result.text)
        if result.status_code >= 400:
            assert isinstance(result.json.get("error"), str)


TEXT = st.characters(exclude_categories=["Cs"])
"""Any character but lone surrogates, which no URL can carry."""
SEGMENT = st.text(TEXT, max_size=20) | st.sampled_from(
    ["0", "1", "2147483648", "-1", "%00", "\x00", "..", ".", "²", "1\n", "a" * 300, str(KNOWN)]
)


def _fill(template: str, segments: list[str]) -> str:
    parts = []
    for part in template.split("/"):
        if part.startswith("{"):
            part = urllib.parse.quote(segments.pop() if segments else "x", safe="")
        parts.append(part)
    return "/".join(parts)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    route=st.sampled_from(ROUTES),
    segments=st.lists(SEGMENT, min_size=4, max_size=4),
    body=JSON,
)
def test_every_route_with_any_path_segment_never_fails_with_a_500(
    job_farm, route: Route, segments: list[str], body: object
) -> None:
    farm, _, _ = job_farm
    path = _fill(route.template, segments)
    for method in sorted(route.needs):
        if method == "DELETE":
            continue
        if method in route.raw_bodies:
            result = farm.client.simulate_request(
                method, path, body=b"x", headers={"Content-Type": "application/octet-stream"}
            )
        elif method == "GET":
            result = farm.client.simulate_get(path)
        else:
            result = farm.client.simulate_request(method, path, json=body)
        assert result.status_code < 500, (method, path, body, result.text[:300])


QUERY_KEYS = [
    "limit",
    "offset",
    "state",
    "title",
    "target",
    "actor",
    "since",
    "hostname",
    "other",
    # The lists' filters (farm_http.list_filters), history's cursor, the pages' paging.
    "q",
    "tag",
    "user",
    "jobtype",
    "sort",
    "order",
    "before",
    "page",
]
SEARCHES = st.sampled_from(
    ["%", "_", "\\", "%_%", "' OR 1=1 --", "É", "İ", "ß", "\ufeff", "a" * 129]
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from(
        [
            "/api/v1/jobs",
            "/api/v1/events",
            "/api/v1/agents",
            "/api/v1/software",
            f"/api/v1/agents/{KNOWN}/history",
            "/api/v1/jobs/{job}/tasks/{task}/history",
            "/jobs",
            "/",
        ]
    ),
    params=st.dictionaries(st.sampled_from(QUERY_KEYS), SEGMENT | SEARCHES, max_size=4),
    repeated=st.sampled_from(QUERY_KEYS),
    raw=st.text(TEXT, max_size=20),
)
def test_query_strings_never_fail_with_a_500(
    job_farm, path: str, params: dict[str, str], repeated: str, raw: str
) -> None:
    farm, job_id, task_id = job_farm
    path = path.format(job=job_id, task=task_id)
    encoded = urllib.parse.urlencode(params)
    twice = urllib.parse.urlencode([(repeated, "1"), (repeated, "2"), *params.items()])
    for query in (encoded, twice, urllib.parse.quote(raw, safe="=&%")):
        result = farm.client.simulate_get(path, query_string=query)
        assert result.status_code in (200, 400), (path, query, result.text[:300])


def test_what_was_stored_reads_back(job_farm) -> None:
    farm, job_id, task_id = job_farm
    for path in (
        "/api/v1/jobs",
        f"/api/v1/jobs/{job_id}",
        f"/api/v1/jobs/{job_id}/tasks",
        f"/api/v1/jobs/{job_id}/tasks/{task_id}",
        "/api/v1/agents",
        "/api/v1/software",
        "/api/v1/jobtypes",
        "/api/v1/events",
    ):
        assert farm.client.simulate_get(path).status_code == 200, path
