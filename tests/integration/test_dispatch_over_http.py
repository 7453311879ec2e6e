"""The dispatcher over real HTTP to fake agents on loopback, with a real database."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from farm_adapters.agent_client import HttpAgentClient
from farm_adapters.composition import Runtime, build_runtime
from farm_adapters.settings import Settings
from farm_domain.agents import AgentChanges
from farm_domain.enums import AgentState
from farm_domain.jobs import JobSpec, TaskReport
from farm_domain.jobtypes import JobTypeSpec
from farm_domain.networks import AgentNetworks
from tests.support.fake_agent import FakeAgent
from tests.support.fakes.collaborators import FixedClock

LOOPBACK = AgentNetworks(Settings.load({"FARM_AGENT_NETWORKS": "127.0.0.0/8"}).agent_networks)


@pytest.fixture
def agents() -> Iterator[list[FakeAgent]]:
    started: list[FakeAgent] = []
    yield started
    for agent in started:
        agent.close()


def fake_agent(agents: list[FakeAgent]) -> FakeAgent:
    agent = FakeAgent()
    agents.append(agent)
    return agent


class TestHttpAgentClient:
    def test_answers_are_passed_back_with_their_status(self, agents) -> None:  # type: ignore[no-untyped-def]
        agent = fake_agent(agents)
        client = HttpAgentClient(LOOPBACK, retries=0)
        url = f"http://127.0.0.1:{agent.port}/api/v1"
        for status in (202, 400, 409, 503):
            agent.assign_answer = lambda body, status=status: (status, {"status": status})
            call = client.assign(url, {"job": {}, "jobtype": {}, "tasks": []})
            assert (call.status, call.body) == (status, {"status": status})
        assert client.tasks(url).status == 200
        assert client.stop_task(url, 5).status == 204
        assert client.update(url, "1.0").status == 202
        assert agent.calls("POST", "/api/v1/update") == [{"version": "1.0"}]

    def test_connection_errors_are_retried_with_back_off_then_reported(self) -> None:
        slept: list[float] = []
        client = HttpAgentClient(LOOPBACK, retries=3, retry_delay=0.5, sleep=slept.append)
        probe = FakeAgent()
        port = probe.port
        probe.close()  # nothing listens there now
        call = client.tasks(f"http://127.0.0.1:{port}/api/v1")
        assert call.status is None and "ConnectError" in (call.error or "")
        assert slept == [0.5, 1.0, 2.0]

    def test_a_slow_agent_times_out(self, agents) -> None:  # type: ignore[no-untyped-def]
        agent = fake_agent(agents)

        def slow(body):  # type: ignore[no-untyped-def]
            time.sleep(1.0)
            return 202, {}

        agent.assign_answer = slow
        client = HttpAgentClient(LOOPBACK, timeout=0.2, retries=0)
        call = client.assign(f"http://127.0.0.1:{agent.port}/api/v1", {"tasks": []})
        assert call.status is None and "Timeout" in (call.error or "")

    def test_addresses_outside_the_agent_networks_are_never_called(self) -> None:
        slept: list[float] = []
        client = HttpAgentClient(LOOPBACK, retries=3, sleep=slept.append)
        call = client.tasks("http://10.1.2.3:50000/api/v1")
        assert call.status is None and "outside FARM_AGENT_NETWORKS" in (call.error or "")
        assert slept == []
        local = client.tasks("http://localhost:1/api/v1")  # resolves into loopback: called
        assert "outside" not in (local.error or "")

    def test_a_host_name_is_resolved_once_and_called_at_the_address_checked(
        self, agents, monkeypatch
    ) -> None:  # type: ignore[no-untyped-def]
        agent = fake_agent(agents)
        real = socket.getaddrinfo
        asked: list[str] = []

        def rebinding(host, *args, **kwargs):  # type: ignore[no-untyped-def]
            """A name server that answers loopback once, then something else (never asked
            for real: no traffic leaves the machine)."""
            if host != "agent.farm.test":
                return real(host, *args, **kwargs)
            asked.append(host)
            if len(asked) > 1:
                raise socket.gaierror("agent.farm.test now points elsewhere")
            return real("127.0.0.1", *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", rebinding)
        call = HttpAgentClient(LOOPBACK, retries=0).tasks(
            f"http://agent.farm.test:{agent.port}/api/v1"
        )
        assert call.status == 200, call.error
        assert asked == ["agent.farm.test"]
        assert agent.hosts == [f"agent.farm.test:{agent.port}"]

    def test_redirects_are_not_followed(self, agents) -> None:  # type: ignore[no-untyped-def]
        agent = fake_agent(agents)
        agent.assign_answer = lambda body: (302, {"location": "elsewhere"})
        call = HttpAgentClient(LOOPBACK, retries=0).assign(
            f"http://127.0.0.1:{agent.port}/api/v1", {}
        )
        assert call.status == 302


@pytest.fixture
def runtime(sqlite_url: str, tmp_path) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    settings = Settings.load(
        {
            "FARM_DATA_DIR": str(tmp_path),
            "FARM_DATABASE_URL": sqlite_url,
            "FARM_QUEUE_URL": "immediate",
            "FARM_AGENT_NETWORKS": "127.0.0.0/8",
            "FARM_AGENT_RETRIES": "1",
            "FARM_AGENT_RETRY_DELAY": "0",
            "FARM_AGENT_TIMEOUT_SECONDS": "120",
            "FARM_POLL_BUSY_SECONDS": "60",
        }
    )
    runtime = build_runtime(settings, clock=FixedClock())
    runtime.farm.jobtypes.create(JobTypeSpec(name="command", max_batch=2))
    yield runtime
    runtime.close()


def announce(runtime: Runtime, agent: FakeAgent, name: str) -> uuid.UUID:
    agent_id = uuid.uuid4()
    runtime.farm.agents.announce(
        AgentChanges(
            id=str(agent_id), hostname=name, ram=8192, free_ram=4096, cpus=8, port=agent.port
        ),
        "127.0.0.1",
    )
    return agent_id


def finish_everything_assigned(
    runtime: Runtime, job_id: int, agents: dict[uuid.UUID, FakeAgent]
) -> None:
    """Act as the agents: report done every task each fake agent accepted and still runs."""
    for agent_id, agent in agents.items():
        for task_id in list(agent.running):
            task = runtime.farm.jobs.task(job_id, task_id)
            if task.agent_id == agent_id and not task.is_finished:
                runtime.farm.jobs.report(job_id, task_id, TaskReport(state="done"), agent_id)
            agent.running.pop(task_id, None)


def test_a_job_is_spread_over_agents_and_finished(runtime: Runtime, agents) -> None:  # type: ignore[no-untyped-def]
    fakes = {
        announce(runtime, a, f"n{i}"): a for i, a in enumerate(fake_agent(agents) for _ in range(3))
    }
    job_id = runtime.farm.jobs.submit(
        JobSpec(title="spread", jobtype="command", start=1, end=12, batch=2)
    ).job.id
    for _ in range(12):
        finish_everything_assigned(runtime, job_id, fakes)
        if (
            runtime.farm.jobs.get(job_id).job.state is not None
            and str(runtime.farm.jobs.get(job_id).job.state) == "done"
        ):
            break
    view = runtime.farm.jobs.get(job_id)
    assert str(view.job.state) == "done"
    owners = {t.agent_id for t in runtime.farm.jobs.tasks(job_id)}
    assert owners == set(fakes)
    frames_sent = [
        t["frame"]
        for a in fakes.values()
        for body in a.calls("POST", "/api/v1/assign")
        for t in body["tasks"]
    ]
    assert sorted(frames_sent) == [float(f) for f in range(1, 13)]  # no frame sent twice


def test_refusals_503_and_silence(runtime: Runtime, agents) -> None:  # type: ignore[no-untyped-def]
    picky, busy, gone = (fake_agent(agents) for _ in range(3))
    picky.assign_answer = lambda body: (400, {"error": "Not enough ram"})
    busy.assign_answer = lambda body: (503, {"error": "shutting down"})
    picky_id = announce(runtime, picky, "picky")
    busy_id = announce(runtime, busy, "busy")
    gone.close()
    gone_id = announce(runtime, gone, "gone")
    job_id = runtime.farm.jobs.submit(JobSpec(title="j", jobtype="command", start=1, end=4)).job.id
    registry = runtime.farm.agents
    assert registry.get(busy_id).state is AgentState.OFFLINE
    assert registry.get(gone_id).state is AgentState.OFFLINE
    assert registry.get(picky_id).state is AgentState.ONLINE
    assert len(picky.calls("POST", "/api/v1/assign")) == 1  # refused once, not offered again
    assert all(t.agent_id is None for t in runtime.farm.jobs.tasks(job_id))
    # The 503 undid its attempt; the refusal and the silence each cost one.
    assert sum(t.attempts for t in runtime.farm.jobs.tasks(job_id)) == 2


def test_an_agent_that_stops_answering_loses_its_tasks_to_the_others(
    runtime: Runtime,  # type: ignore[no-untyped-def]
    agents,
) -> None:
    first, second = fake_agent(agents), fake_agent(agents)
    first_id = announce(runtime, first, "first")
    job_id = runtime.farm.jobs.submit(
        JobSpec(title="j", jobtype="command", start=1, end=4, batch=2)
    ).job.id
    held = [t.id for t in runtime.farm.jobs.tasks(job_id) if t.agent_id == first_id]
    assert len(held) == 2 and set(first.running) == set(held)
    first.close()  # the render node dies
    second_id = announce(runtime, second, "second")
    clock = runtime.dispatcher._clock  # type: ignore[attr-defined]
    clock.advance(61)
    runtime.farm.agents.update(
        second_id, AgentChanges(state="running", reported_task_ids=frozenset(second.running))
    )
    runtime.dispatcher.watch_agents()  # polls the silent busy agent: no answer → offline
    assert runtime.farm.agents.get(first_id).state is AgentState.OFFLINE
    for _ in range(6):
        finish_everything_assigned(runtime, job_id, {second_id: second})
    tasks = runtime.farm.jobs.tasks(job_id)
    assert all(t.agent_id == second_id and str(t.state) == "done" for t in tasks)
    assert all(t.failures == 0 for t in tasks if t.id in held)
