"""Answers read tolerantly: a field a newer master adds stays reachable in ``raw``, one an older
master lacks is None or empty, and an answer of the wrong shape is a BadResponse, not a crash
deep in the caller."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from farm_client import BadResponse, FarmClient, Job, ServerError, Task, TooManyRequests
from farm_client.models import Agent


def test_unknown_fields_stay_in_raw_and_missing_ones_are_none() -> None:
    job = Job.from_json(
        {"id": 3, "title": "t", "jobtype": "command", "state": "canceled", "shiny": [1, 2]}
    )
    assert (job.id, job.state, job.priority, job.ram, job.tags) == (3, "canceled", 0, None, ())
    assert job.raw["shiny"] == [1, 2]
    agent_id = uuid.uuid4()
    agent = Agent.from_json(
        {
            "id": str(agent_id),
            "hostname": "n1",
            "state": "online",
            "last_heard_from": "2026-01-02T03:04:05+00:00",
            "dispatch": {"callable": False, "reason": "outside FARM_AGENT_NETWORKS"},
            "temperature": 40,
        }
    )
    assert agent.id == agent_id
    assert agent.last_heard_from == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (agent.callable, agent.not_callable_because) == (False, "outside FARM_AGENT_NETWORKS")
    assert agent.raw["temperature"] == 40
    task = Task.from_json({"id": 1, "job_id": 2, "frame": 1.0, "state": None})
    assert (task.state, task.agent_id, task.job) == ("queued", None, None)


def test_an_answer_of_the_wrong_shape_is_a_bad_response() -> None:
    with pytest.raises(BadResponse):
        Job.from_json(["not", "an", "object"])
    with pytest.raises(BadResponse):
        Agent.from_json({"id": "nope", "hostname": "n1", "state": "online"})


def _client(handler) -> FarmClient:
    return FarmClient("http://farm.test", token="t", transport=httpx.MockTransport(handler))


def test_the_token_is_sent_and_statuses_map_to_errors() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v1/jobs":
            return httpx.Response(
                429, json={"error": "too many creates"}, headers={"Retry-After": "7"}
            )
        if request.url.path == "/api/v1/agents":
            return httpx.Response(503, text="down for maintenance")
        return httpx.Response(200, text="<html>not json</html>")

    with _client(handler) as client:
        with pytest.raises(TooManyRequests) as limited:
            client.jobs()
        assert (limited.value.status, limited.value.retry_after) == (429, 7.0)
        assert limited.value.message == "too many creates"
        with pytest.raises(ServerError) as down:
            client.agents()
        assert down.value.status == 503
        assert "down for maintenance" in down.value.message
        with pytest.raises(BadResponse):
            client.software_list()
    assert seen[0].headers["Authorization"] == "Bearer t"
    assert seen[0].headers["User-Agent"].startswith("farm-client/")


def test_names_are_quoted_in_paths_and_redirects_are_not_followed() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        if request.url.path.startswith("/api/v1/jobs"):
            return httpx.Response(302, headers={"Location": "http://elsewhere.test/"})
        return httpx.Response(200, json={"id": 1, "software": "a b?c", "versions": []})

    with _client(handler) as client:
        assert client.software("a b?c#d").name == "a b?c"
        with pytest.raises(BadResponse, match="not followed"):
            client.job(1)
    assert paths == ["/api/v1/software/a%20b%3Fc%23d", "/api/v1/jobs/1"]


def test_new_answers_are_read_tolerantly_too() -> None:
    from farm_client import AgentExplanation, JobExplanation, Outcome, TaskFailure
    from farm_client.models import outcomes

    (done, refused) = outcomes(
        {
            "results": [
                {"id": 4, "ok": True, "job": {"id": 4, "title": "t", "requeued": [7, "x"]}},
                {"id": 5, "ok": False, "status": 409, "error": "Job 5 is done"},
            ]
        }
    )
    assert done.job is not None and done.job.requeued == (7,) and done.task is None
    assert (refused.ok, refused.status, refused.error, refused.job) == (
        False,
        409,
        "Job 5 is done",
        None,
    )
    assert Outcome.from_json({"id": 1}).ok is False
    with pytest.raises(BadResponse):
        outcomes([{"id": 1}])  # not the bulk answer's object
    explained = JobExplanation.from_json({"job": {"id": 2}, "agents": [{"reason": "ram"}]})
    assert (explained.state, explained.can_run_now, explained.agents[0].count) == (
        "queued",
        False,
        0,
    )
    agent = AgentExplanation.from_json({"agent": {"id": "nope"}, "would_get": None})
    assert (agent.agent.id, agent.would_get, agent.jobs) == (None, None, ())
    failure = TaskFailure.from_json({"attempt": 2, "at": "2026-01-02T03:04:05+00:00"})
    assert (failure.attempt, failure.at, failure.reason) == (
        2,
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "",
    )
