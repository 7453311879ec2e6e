"""A job's failure policies in /assign, over real HTTP: a farm agent gets ``max_run_seconds``
and ``stall_seconds`` in ``job``; PyFarm's agent, whose schema refuses keys it does not know,
gets its batch anyway, without them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from farm_adapters.agent_client import FrameLimits, assign_body, frame_limits
from farm_domain.answers import Accepted, Refused
from tests.integration.test_dispatch_over_http import (
    AGENT_ID,
    BATCH,
    JOB,
    agent_client,
    fake_agent,
)
from tests.support.fake_agent import Answer, FakeAgent


@pytest.fixture
def agents() -> Iterator[list[FakeAgent]]:
    started: list[FakeAgent] = []
    yield started
    for agent in started:
        agent.close()


PYFARM_KEYS = {
    "id",
    "title",
    "data",
    "environ",
    "by",
    "batch",
    "user",
    "ram",
    "ram_warning",
    "ram_max",
    "cpus",
}


def like_pyfarm(body: dict[str, Any]) -> Answer:
    """PyFarm agent 0.8.6: voluptuous's Schema refuses keys it does not declare."""
    extra = sorted(set(body["job"]) - PYFARM_KEYS)
    if extra:
        return 400, {
            "error": "Failed to validate the request data against the schema: extra keys not "
            f"allowed @ data['job']['{extra[0]}']"
        }
    return 202, {"id": "assignment"}


def assign_bodies(agent: FakeAgent) -> list[dict[str, Any]]:
    return [body for method, path, body in agent.requests if path == "/api/v1/assign"]


def test_a_farm_agent_gets_the_jobs_limits(agents: list[FakeAgent]) -> None:
    agent = fake_agent(agents)
    client = agent_client(retries=0)
    job = attrs.evolve(JOB, max_run_seconds=600)
    url = f"http://127.0.0.1:{agent.port}/api/v1"
    assert client.assign(AGENT_ID, url, job, BATCH) == Accepted()
    (body,) = assign_bodies(agent)
    assert (body["job"]["max_run_seconds"], body["job"]["stall_seconds"]) == (600, None)


def test_jobs_without_limits_send_pyfarms_body_only(agents: list[FakeAgent]) -> None:
    agent = fake_agent(agents)
    agent.assign_answer = like_pyfarm
    url = f"http://127.0.0.1:{agent.port}/api/v1"
    assert agent_client(retries=0).assign(AGENT_ID, url, JOB, BATCH) == Accepted()
    (body,) = assign_bodies(agent)
    assert set(body["job"]) == PYFARM_KEYS


def test_a_pyfarm_agent_gets_the_batch_without_the_limits(agents: list[FakeAgent]) -> None:
    agent = fake_agent(agents)
    agent.assign_answer = like_pyfarm
    client = agent_client(retries=0, default_limits=FrameLimits(3600, None))
    url = f"http://127.0.0.1:{agent.port}/api/v1"
    assert client.assign(AGENT_ID, url, JOB, BATCH) == Accepted()
    refused, plain = assign_bodies(agent)
    assert refused["job"]["max_run_seconds"] == 3600 and set(plain["job"]) == PYFARM_KEYS
    assert plain["tasks"] == refused["tasks"]
    # remembered: the next batch goes without them at once
    assert client.assign(AGENT_ID, url, JOB, BATCH[:1]) == Accepted()
    assert len(assign_bodies(agent)) == 3 and set(assign_bodies(agent)[-1]["job"]) == PYFARM_KEYS
    # another agent is asked with them again
    other = uuid.uuid4()
    assert client.assign(other, url, JOB, BATCH) == Accepted()
    assert assign_bodies(agent)[-2]["job"]["max_run_seconds"] == 3600


def test_other_refusals_are_not_retried(agents: list[FakeAgent]) -> None:
    agent = fake_agent(agents)
    agent.assign_answer = lambda body: (400, {"error": "Not enough ram"})
    client = agent_client(retries=0, default_limits=FrameLimits(3600, 60))
    url = f"http://127.0.0.1:{agent.port}/api/v1"
    assert isinstance(client.assign(AGENT_ID, url, JOB, BATCH), Refused)
    assert len(assign_bodies(agent)) == 1


def test_a_jobs_own_limits_win_over_the_defaults() -> None:
    defaults = FrameLimits(3600, 300)
    own = attrs.evolve(JOB, max_run_seconds=60)
    assert frame_limits(own, defaults) == FrameLimits(60, 300)
    assert frame_limits(JOB, FrameLimits()) == FrameLimits() and not FrameLimits()
    body = assign_body(JOB, BATCH, FrameLimits(60, 300))
    assert {k: body["job"][k] for k in ("max_run_seconds", "stall_seconds")} == {
        "max_run_seconds": 60,
        "stall_seconds": 300,
    }
