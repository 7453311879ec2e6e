"""``/metrics``, ``/healthz`` and ``/readyz`` on the app in-process.

Counters are this test process's (every runtime built in it counts into one directory, as the
processes of one master do): the tests compare them before and after what they do. States are
read from the test's own database, so they are compared whole.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from farm_domain.access import Identity, Role
from farm_domain.enums import WorkState
from tests.support.http_harness import Harness, make_harness
from tests.support.live_farm import Backend, LiveHarness, make_live_harness
from tests.support.metrics import Samples, by_state, delta, families, parse, total

FAMILIES = {
    "farm_agents",
    "farm_tasks",
    "farm_jobs",
    "farm_agent_heartbeat_age_seconds_max",
    "farm_queue_backlog",
    "farm_assignments",
    "farm_dispatch",
    "farm_task_requeues",
    "farm_task_failures",
    "farm_stale_reports",
    "farm_double_assignments",
    "farm_http_requests",
    "farm_http_request_duration_seconds",
    "farm_db_pool_connections",
    "farm_db_pool_connections_in_use",
    "farm_up",
}
"""Every family, by the name prometheus_client's parser gives it (a counter's without
``_total``)."""


def scrape(farm: Harness, **kwargs: Any) -> Samples:
    answer = farm.client.simulate_get("/metrics", **kwargs)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(answer.text)


def test_every_family_is_there_and_parses(farm: Harness) -> None:
    farm.announce()
    answer = farm.client.simulate_get("/metrics")
    assert answer.status_code == 200
    assert FAMILIES <= families(answer.text)
    samples = parse(answer.text)
    assert by_state(samples, "farm_agents") == {"online": 1}
    assert total(samples, "farm_up") == 2  # the database and the queue


def test_states_are_counted_from_the_database(farm: Harness) -> None:
    agent = uuid.UUID(farm.announce().json["id"])
    job = farm.job()
    farm.task(job)
    farm.task(job, frame=2.0, agent_id=agent)
    farm.task(job, frame=3.0, agent_id=agent, state=WorkState.RUNNING)
    farm.task(job, frame=4.0, state=WorkState.DONE)
    paused = farm.job(title="paused", state=WorkState.PAUSED)
    farm.task(paused, state=WorkState.PAUSED)
    farm.client.simulate_post(f"/api/v1/agents/{uuid.uuid4()}", json={})  # unknown: no change

    samples = scrape(farm)

    assert by_state(samples, "farm_tasks") == {
        "queued": 1,
        "assigned": 1,
        "running": 1,
        "done": 1,
        "paused": 1,
    }
    assert by_state(samples, "farm_jobs") == {"queued": 1, "paused": 1}
    assert by_state(samples, "farm_agents") == {"online": 1}
    assert total(samples, "farm_agent_heartbeat_age_seconds_max") == 0  # the clock stood still
    farm.clock.advance(seconds=42)
    assert total(scrape(farm), "farm_agent_heartbeat_age_seconds_max") == 42


def test_requests_are_counted_by_route_template_method_and_status(farm: Harness) -> None:
    agent = farm.announce().json["id"]
    before = scrape(farm)
    for _ in range(3):
        assert farm.client.simulate_get(f"/api/v1/agents/{agent}").status_code == 200
    assert farm.client.simulate_get(f"/api/v1/agents/{uuid.uuid4()}").status_code == 404
    assert farm.client.simulate_get("/no/such/page").status_code == 404
    assert farm.client.simulate_patch("/api/v1/agents", json={}).status_code == 405
    after = scrape(farm)

    route = "/api/v1/agents/{agent_id:uuid}"
    count = "farm_http_requests_total"
    assert delta(before, after, count, route=route, method="GET", status="200") == 3
    assert delta(before, after, count, route=route, method="GET", status="404") == 1
    assert delta(before, after, count, route="unmatched", method="GET", status="404") == 1
    assert delta(before, after, count, route="/api/v1/agents", method="PATCH", status="405") == 1
    timed = "farm_http_request_duration_seconds_count"
    assert delta(before, after, timed, route=route, method="GET") == 4
    # No agent's id became a label.
    assert not any(agent in str(labels) for _, labels in after)


def test_a_stale_report_and_a_failure_are_counted(farm: Harness) -> None:
    agent = uuid.UUID(farm.announce().json["id"])
    job = farm.job(requeue=3)
    task = farm.task(job, agent_id=agent, sent_to_agent=True, attempts=2)
    path = f"/api/v1/jobs/{job.id}/tasks/{task.id}"
    before = scrape(farm)

    stale = farm.client.simulate_post(path, json={"state": "done"}, headers={"X-Farm-Attempt": "1"})
    assert stale.status_code == 409
    other = farm.client.simulate_post(
        path, json={"state": "done"}, headers={"X-Farm-Agent-Id": str(uuid.uuid4())}
    )
    assert other.status_code == 409
    failed = farm.client.simulate_post(
        path, json={"state": "failed", "reason": "timeout"}, headers={"X-Farm-Attempt": "2"}
    )
    assert failed.status_code == 200, failed.text
    after = scrape(farm)

    assert delta(before, after, "farm_stale_reports_total") == 2
    assert delta(before, after, "farm_task_failures_total", reason="timeout") == 1
    assert delta(before, after, "farm_task_requeues_total", reason="retry") == 1
    assert delta(before, after, "farm_double_assignments_total") == 0


def test_a_task_run_at_the_same_attempt_by_two_agents_is_counted(farm: Harness) -> None:
    holder = uuid.UUID(farm.announce().json["id"])
    other = farm.announce().json["id"]
    job = farm.job()
    task = farm.task(job, agent_id=holder, sent_to_agent=True, attempts=1, state=WorkState.RUNNING)
    before = scrape(farm)

    beat = farm.client.simulate_post(
        f"/api/v1/agents/{other}",
        json={"current_assignments": {str(job.id): {"tasks": [{"id": task.id, "attempt": 1}]}}},
    )
    assert beat.status_code == 200, beat.text
    after = scrape(farm)
    assert delta(before, after, "farm_double_assignments_total") == 1


def test_metrics_need_the_metrics_networks_or_a_credential_that_reads(
    farm: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = "192.0.2.7"
    assert farm.client.simulate_get("/metrics").status_code == 200  # loopback: the default
    refused = farm.client.simulate_get("/metrics", remote_addr=outside)
    # The harness admits loopback anonymously; from elsewhere there is no credential.
    assert refused.status_code == 401 and refused.json["error"]
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    identities = farm.runtime.farm.identities
    operator = Identity.local_operator("test")
    _, viewer = identities.create_token(operator, Role.VIEWER, "vic")
    _, joiner = identities.create_token(operator, Role.AGENT_JOIN, "joiner")
    read = farm.client.simulate_get(
        "/metrics", remote_addr=outside, headers={"Authorization": f"Bearer {viewer}"}
    )
    assert read.status_code == 200 and "farm_agents" in read.text
    forbidden = farm.client.simulate_get(
        "/metrics", remote_addr=outside, headers={"Authorization": f"Bearer {joiner}"}
    )
    assert forbidden.status_code == 403 and forbidden.json["error"]


def test_health_and_readiness(farm: Harness) -> None:
    health = farm.client.simulate_get("/healthz")
    assert health.status_code == 200 and health.json == {"status": "ok"}
    ready = farm.client.simulate_get("/readyz")
    assert ready.status_code == 200 and ready.json == {"status": "ready"}


@pytest.fixture
def own_farm(sqlite_url: str, tmp_path: Path) -> Iterator[Harness]:
    """The harness on a database of the test's own (SQLite): its schema version is changed."""
    yield from make_harness(sqlite_url, tmp_path)


def test_not_ready_while_the_schema_is_not_the_newest(own_farm: Harness) -> None:
    farm = own_farm
    with farm.runtime.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    answer = farm.client.simulate_get("/readyz")
    assert answer.status_code == 503
    assert answer.json["status"] == "not ready"
    assert "farm db upgrade" in answer.json["error"]
    assert [p for p in answer.json["problems"] if p.startswith("database schema at 0001")]
    # The process itself still answers.
    assert farm.client.simulate_get("/healthz").status_code == 200


@pytest.fixture
def retrying_farm(backend: Backend, tmp_path: Path) -> Iterator[LiveHarness]:
    """``live_farm`` where a failed task is offered again at once (no back-off)."""
    yield from make_live_harness(backend, tmp_path, FARM_RETRY_DELAY_SECONDS="0")


def test_a_job_run_on_an_agent_is_counted_as_it_happened(retrying_farm: LiveHarness) -> None:
    farm = retrying_farm
    created = farm.client.simulate_post("/api/v1/jobtypes", json={"name": "render", "max_batch": 1})
    assert created.status_code == 201
    before = scrape(farm)
    agent = farm.announce(remote_ip="127.0.0.1").json["id"]
    job = farm.client.simulate_post(
        "/api/v1/jobs/",
        json={"title": "shot", "jobtype": "render", "start": 1, "end": 3, "requeue": 1},
    ).json
    failed_once = False
    for _ in range(10):  # each report frees the agent for the next batch
        sent = farm.agent.calls("POST", "/api/v1/assign")
        listed = farm.client.simulate_get(f"/api/v1/agents/{agent}/tasks").json
        tasks = [t for t in listed if t["state"] not in ("done", "failed")]
        if not tasks:
            break
        (task,) = tasks
        report: dict[str, Any] = {"state": "done"}
        if not failed_once:
            report, failed_once = {"state": "failed", "reason": "stalled"}, True
        answer = farm.client.simulate_post(
            f"/api/v1/jobs/{job['id']}/tasks/{task['id']}",
            json=report,
            headers={"X-Farm-Agent-Id": agent},
        )
        assert answer.status_code == 200, answer.text
    sent = farm.agent.calls("POST", "/api/v1/assign")
    after = scrape(farm)

    assert by_state(after, "farm_tasks") == {"done": 3}
    assert by_state(after, "farm_jobs") == {"done": 1}
    # Four batches of one: three frames, one of them twice.
    assert len(sent) == 4
    assert delta(before, after, "farm_dispatch_total", outcome="accepted") == 4
    assert delta(before, after, "farm_assignments_total") == 4
    for outcome in ("refused", "conflict", "busy", "unreachable"):
        assert delta(before, after, "farm_dispatch_total", outcome=outcome) == 0
    assert delta(before, after, "farm_task_failures_total", reason="stalled") == 1
    assert delta(before, after, "farm_task_requeues_total", reason="retry") == 1
    assert delta(before, after, "farm_stale_reports_total") == 0


def test_an_agent_refusing_a_batch_is_counted(live_farm: LiveHarness) -> None:
    farm = live_farm
    farm.agent.assign_answer = lambda body: (400, {"error": "no such software"})
    assert farm.client.simulate_post("/api/v1/jobtypes", json={"name": "render"}).status_code == 201
    before = scrape(farm)
    farm.announce(remote_ip="127.0.0.1")
    farm.client.simulate_post(
        "/api/v1/jobs/", json={"title": "shot", "jobtype": "render", "start": 1, "end": 1}
    )
    after = scrape(farm)
    refusals = len(farm.agent.calls("POST", "/api/v1/assign"))
    assert refusals >= 1
    assert delta(before, after, "farm_dispatch_total", outcome="refused") == refusals
    assert delta(before, after, "farm_task_requeues_total", reason="refused") == refusals
    assert delta(before, after, "farm_dispatch_total", outcome="accepted") == 0
