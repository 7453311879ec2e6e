"""The dispatcher over real HTTP to fake agents on loopback, with a real database."""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from farm_adapters.agent_client import MAX_ANSWER_BYTES, HttpAgentClient, resolve
from farm_adapters.composition import Runtime, build_runtime
from farm_adapters.queue import start_embedded_consumer
from farm_adapters.settings import Settings
from farm_adapters.signing import AgentSigningKeys
from farm_agent.agent import Agent, AgentConfig
from farm_agent.agent import agent_id as stored_agent_id
from farm_agent.credentials import Credentials, CredentialStore
from farm_domain.agents import AgentChanges
from farm_domain.answers import (
    Accepted,
    Busy,
    Conflict,
    NotRunning,
    Refused,
    Running,
    Unreachable,
)
from farm_domain.enums import AgentState
from farm_domain.job_requests import JobSpec, TaskReport
from farm_domain.jobtypes import JobTypeSpec
from farm_domain.networks import AgentNetworks
from farm_domain.work import Job, Task
from tests.support.fake_agent import Answer, FakeAgent
from tests.support.fakes.collaborators import FixedClock
from tests.support.identities import ADMIN

LOOPBACK = AgentNetworks(Settings.load({"FARM_AGENT_NETWORKS": "127.0.0.0/8"}).agent_networks)
DEFAULTS = Settings.load({})
KEYS = AgentSigningKeys(lambda: b"a test secret of at least 32 characters")
AGENT_ID = uuid.UUID("6d7c1a8e-3c44-4e0c-9a1f-2b8e8c7d0f11")


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


def closed_port() -> int:
    """A loopback port nothing listens on."""
    probe = socket.create_server(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


JOB = Job(
    id=7,
    title="shot",
    jobtype_version_id=1,
    data={"command": ["echo", "{frame}"]},
    environ={"A": "1"},
    jobtype="render",
    jobtype_version=1,
)
BATCH = [Task(id=12, job_id=7, frame=2.0, attempts=1), Task(id=11, job_id=7, frame=1.0, attempts=1)]


def agent_client(
    *,
    timeout: float = DEFAULTS.agent_request_timeout,
    connect_timeout: float = DEFAULTS.agent_connect_timeout,
    retries: int = DEFAULTS.agent_retries,
    retry_delay: float = DEFAULTS.agent_retry_delay,
    **collaborators: Any,
) -> HttpAgentClient:
    """The master's agent client on loopback, with the farm's default timeouts unless given."""
    return HttpAgentClient(
        LOOPBACK,
        KEYS,
        timeout=timeout,
        connect_timeout=connect_timeout,
        retries=retries,
        retry_delay=retry_delay,
        **collaborators,
    )


def answering(status: int, said: Any) -> Callable[[dict[str, Any]], Answer]:
    """A fake agent's /assign that always answers ``status`` and ``said``."""

    def answer(body: dict[str, Any]) -> Answer:
        return status, said

    return answer


class TestHttpAgentClient:
    def test_assign_posts_pyfarms_body(self, agents: list[FakeAgent]) -> None:
        agent = fake_agent(agents)
        client = agent_client(retries=0)
        assert (
            client.assign(AGENT_ID, f"http://127.0.0.1:{agent.port}/api/v1", JOB, BATCH)
            == Accepted()
        )
        (body,) = agent.calls("POST", "/api/v1/assign")
        assert body["job"]["id"] == 7 and body["job"]["data"] == {"command": ["echo", "{frame}"]}
        assert set(body["job"]) == {
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
        assert body["jobtype"] == {"name": "render", "version": 1}
        assert [(t["id"], t["frame"], t["attempt"]) for t in body["tasks"]] == [
            (11, 1.0, 1),
            (12, 2.0, 1),
        ]

    @pytest.mark.parametrize(
        ("user", "submitted_by", "sent"),
        [("ana", "tok", "ana"), (None, "pipeline-token", "pipeline-token"), (None, None, "")],
    )
    def test_the_user_sent_to_agents_is_always_a_string(
        self, agents: list[FakeAgent], user: str | None, submitted_by: str | None, sent: str
    ) -> None:
        """PyFarm's agent validates ``user`` as a string: a null made it refuse every task."""
        agent = fake_agent(agents)
        job = attrs.evolve(JOB, user=user, submitted_by=submitted_by)
        agent_client(retries=0).assign(
            AGENT_ID, f"http://127.0.0.1:{agent.port}/api/v1", job, BATCH
        )
        (body,) = agent.calls("POST", "/api/v1/assign")
        assert body["job"]["user"] == sent

    def test_each_status_is_passed_back_as_its_answer(self, agents: list[FakeAgent]) -> None:
        agent = fake_agent(agents)
        client = agent_client(retries=0)
        url = f"http://127.0.0.1:{agent.port}/api/v1"
        answers = {
            202: ({"id": "a"}, Accepted()),
            400: ({"error": "Not enough ram"}, Refused("Not enough ram")),
            409: (
                {"error": "tasks already assigned", "rejected_task_ids": [11]},
                Conflict(frozenset({11}), "tasks already assigned {'rejected_task_ids': [11]}"),
            ),
            503: ({"error": "shutting down"}, Busy("shutting down")),
        }
        for status, (said, answer) in answers.items():
            agent.assign_answer = answering(status, said)
            assert client.assign(AGENT_ID, url, JOB, BATCH) == answer
        assert client.tasks(AGENT_ID, url) == Running(frozenset({11, 12}))  # the batch it accepted
        assert client.stop_task(AGENT_ID, url, 5) == NotRunning()  # 204
        assert client.update(AGENT_ID, url, "1.0") == Accepted()  # 202
        assert agent.calls("POST", "/api/v1/update") == [{"version": "1.0"}]

    def test_a_connection_refused_is_reported_at_once_without_retries(self) -> None:
        slept: list[float] = []
        client = agent_client(retries=3, retry_delay=0.5, sleep=slept.append)
        answer = client.tasks(AGENT_ID, f"http://127.0.0.1:{closed_port()}/api/v1")
        assert isinstance(answer, Unreachable) and "ConnectError" in answer.reason
        assert slept == []

    def test_an_agent_that_never_accepts_costs_one_short_connect_timeout(self) -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = []
        try:
            # Fill the accept queue: the kernel drops further connection attempts, as a
            # firewall that drops packets or a machine that is gone would.
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(listener.getsockname())
                fillers.append(filler)
            time.sleep(0.1)
            slept: list[float] = []
            client = agent_client(timeout=30, connect_timeout=0.3, retries=3, sleep=slept.append)
            started = time.monotonic()
            answer = client.tasks(AGENT_ID, f"http://127.0.0.1:{listener.getsockname()[1]}/x")
            assert isinstance(answer, Unreachable) and "ConnectTimeout" in answer.reason
            assert time.monotonic() - started < 3
            assert slept == []
        finally:
            for filler in fillers:
                filler.close()
            listener.close()

    def test_a_connected_call_without_an_answer_is_retried_with_back_off(self) -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        accepted: list[int] = []

        def hang_up() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                accepted.append(1)
                with conn:
                    conn.recv(65536)

        threading.Thread(target=hang_up, daemon=True).start()
        try:
            slept: list[float] = []
            client = agent_client(retries=3, retry_delay=0.5, sleep=slept.append)
            answer = client.tasks(AGENT_ID, f"http://127.0.0.1:{listener.getsockname()[1]}/x")
        finally:
            listener.close()
        assert isinstance(answer, Unreachable) and "RemoteProtocolError" in answer.reason
        assert slept == [0.5, 1.0, 2.0]
        assert len(accepted) == 4

    def test_a_slow_agent_times_out(self, agents: list[FakeAgent]) -> None:
        agent = fake_agent(agents)

        def slow(body: dict[str, Any]) -> Answer:
            time.sleep(1.0)
            return 202, {}

        agent.assign_answer = slow
        client = agent_client(timeout=0.2, retries=0)
        answer = client.assign(AGENT_ID, f"http://127.0.0.1:{agent.port}/api/v1", JOB, [])
        assert isinstance(answer, Unreachable) and "Timeout" in answer.reason

    def test_addresses_outside_the_agent_networks_are_never_called(self) -> None:
        slept: list[float] = []
        client = agent_client(retries=3, sleep=slept.append)
        answer = client.tasks(AGENT_ID, "http://10.1.2.3:50000/api/v1")
        assert isinstance(answer, Unreachable) and "outside FARM_AGENT_NETWORKS" in answer.reason
        assert slept == []
        local = client.tasks(
            AGENT_ID, "http://localhost:1/api/v1"
        )  # resolves into loopback: called
        assert isinstance(local, Unreachable) and "outside" not in local.reason

    def test_a_host_name_is_resolved_once_and_called_at_the_address_checked(
        self, agents: list[FakeAgent]
    ) -> None:
        agent = fake_agent(agents)
        asked: list[str] = []

        def rebinding(host: str, port: int) -> list[str]:
            """A name server that answers loopback once, then something else (never asked
            for real: no traffic leaves the machine)."""
            if host != "agent.farm.test":
                return resolve(host, port)
            asked.append(host)
            if len(asked) > 1:
                raise socket.gaierror("agent.farm.test now points elsewhere")
            return resolve("127.0.0.1", port)

        client = agent_client(retries=0, resolver=rebinding)
        answer = client.tasks(AGENT_ID, f"http://agent.farm.test:{agent.port}/api/v1")
        assert isinstance(answer, Running), answer
        assert asked == ["agent.farm.test"]
        assert agent.hosts == [f"agent.farm.test:{agent.port}"]

    def test_redirects_are_not_followed(self, agents: list[FakeAgent]) -> None:
        agent = fake_agent(agents)
        agent.assign_answer = lambda body: (302, {"location": "elsewhere"})
        answer = agent_client(retries=0).assign(
            AGENT_ID, f"http://127.0.0.1:{agent.port}/api/v1", JOB, BATCH
        )
        assert answer == Unreachable("answered 302")
        assert len(agent.calls("POST", "/api/v1/assign")) == 1


class _CountingStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, counted: list[int]) -> None:
        self._inner = inner
        self._counted = counted

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._counted.append(len(chunk))
            yield chunk

    def close(self) -> None:
        self._inner.close()


class CountingTransport(httpx.HTTPTransport):
    """The real transport, counting the bytes of answers the client pulls off the network."""

    def __init__(self) -> None:
        super().__init__()
        self.counted: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _CountingStream(response.stream, self.counted)
        return response


@contextlib.contextmanager
def huge_answerer(size: int, declare: bool) -> Iterator[int]:
    """A loopback agent answering every request with ``size`` bytes of a JSON string, with
    or without a Content-Length; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    length = f"Content-Length: {size}\r\n" if declare else ""
                    conn.sendall(
                        b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                        + length.encode()
                        + b"Connection: close\r\n\r\n"
                    )
                    piece = b"a" * 65536
                    conn.sendall(b'"')
                    for _ in range(size // len(piece)):
                        conn.sendall(piece)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        listener.close()
        thread.join(5)


@contextlib.contextmanager
def raw_answerer(body: bytes) -> Iterator[int]:
    """A loopback agent answering one request 200 with ``body`` as is; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(5)


class TestBoundedAnswers:
    """An agent's answer is read up to MAX_ANSWER_BYTES: a larger one is that agent's refusal,
    and the client never pulls much more than the cap off the network."""

    @pytest.mark.parametrize("declare", [True, False], ids=["declared", "undeclared"])
    def test_a_ten_megabyte_answer_is_a_refusal_read_no_further_than_the_cap(
        self, declare: bool, caplog: pytest.LogCaptureFixture
    ) -> None:
        transport = CountingTransport()
        client = agent_client(retries=0, transport=transport)
        with huge_answerer(10 * 1024 * 1024, declare) as port:
            url = f"http://127.0.0.1:{port}/api/v1"
            with caplog.at_level(logging.WARNING, logger="farm.agent_client"):
                answers = [
                    client.assign(AGENT_ID, url, JOB, BATCH),
                    client.tasks(AGENT_ID, url),
                    client.stop_task(AGENT_ID, url, 5),
                    client.update(AGENT_ID, url, "1.0"),
                ]
        for answer in answers:
            assert isinstance(answer, Refused) and "larger than" in answer.reason, answer
        # each call pulled at most the cap and one more network read
        assert sum(transport.counted) <= 4 * (MAX_ANSWER_BYTES + 65536)
        refusals = [r for r in caplog.records if r.getMessage() == "agent answer refused"]
        assert len(refusals) == 4
        assert all(getattr(r, "agent_id", None) == str(AGENT_ID) for r in refusals)

    def test_an_answer_just_under_the_cap_is_read(self, agents: list[FakeAgent]) -> None:
        agent = fake_agent(agents)
        agent.assign_answer = lambda body: (400, {"error": "x" * (MAX_ANSWER_BYTES - 100)})
        answer = agent_client(retries=0).assign(
            AGENT_ID, f"http://127.0.0.1:{agent.port}/api/v1", JOB, BATCH
        )
        assert answer == Refused("x" * (MAX_ANSWER_BYTES - 100))

    def test_an_answer_nested_too_deep_to_parse_is_not_json(self) -> None:
        nested = b"[" * 30000 + b"]" * 30000  # under the cap, past the parser's depth
        with raw_answerer(nested) as port:
            answer = agent_client(retries=0).tasks(AGENT_ID, f"http://127.0.0.1:{port}/api/v1")
        assert answer == Unreachable("answered 200 without a list of tasks")


class TestSignedCallsToAFarmAgent:
    """The master's client against a real farm_agent on loopback: the key derived for the
    agent's id opens every call; any other key opens none."""

    @pytest.fixture
    def farm_agent(self, tmp_path: Path) -> Iterator[Agent]:
        key = KEYS.key_for(stored_agent_id(tmp_path))  # what the master hands it when it announces
        CredentialStore(tmp_path / "credentials.json").save(Credentials(signing_key=key))
        agent = Agent(
            AgentConfig(master="http://127.0.0.1:9", data_dir=tmp_path, port=0, cpus=2, ram=4096)
        )
        threading.Thread(target=agent.server.serve_forever, daemon=True).start()
        yield agent
        agent.runner.stop_all()
        agent.server.shutdown()
        agent.server.server_close()

    def test_every_call_is_accepted_with_the_derived_key(self, farm_agent: Agent) -> None:
        client = agent_client(retries=0)
        url = f"http://127.0.0.1:{farm_agent.port}/api/v1"
        job = attrs.evolve(
            JOB,
            jobtype="command",
            data={"command": [sys.executable, "-c", "import time; time.sleep(30)"]},
        )
        assert client.assign(farm_agent.id, url, job, BATCH) == Accepted()
        assert client.tasks(farm_agent.id, url) == Running(frozenset({11, 12}))
        assert client.stop_task(farm_agent.id, url, 11) == Accepted()
        assert client.stop_task(farm_agent.id, url, 99) == NotRunning()
        assert isinstance(client.update(farm_agent.id, url, "../x"), Accepted | Refused)

    def test_a_key_for_another_agent_or_master_opens_nothing(self, farm_agent: Agent) -> None:
        url = f"http://127.0.0.1:{farm_agent.port}/api/v1"
        other_master = HttpAgentClient(
            LOOPBACK,
            AgentSigningKeys(lambda: b"another master's secret, 32 chars+"),
            timeout=5,
            retries=0,
            retry_delay=0,
        )
        for client, agent_id in [
            (agent_client(retries=0), uuid.uuid4()),
            (other_master, farm_agent.id),
        ]:
            answer = client.assign(agent_id, url, attrs.evolve(JOB, jobtype="command"), BATCH)
            assert answer == Refused("wrong signature")
            assert client.tasks(agent_id, url) == Refused("wrong signature")
        assert not farm_agent.runner.assignments


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[Runtime]:
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
    runtime = build_runtime(settings, clock=clock)
    runtime.farm.jobtypes.create(ADMIN, JobTypeSpec(name="command", max_batch=2))
    yield runtime
    runtime.close()


def announce(runtime: Runtime, agent: FakeAgent, name: str) -> uuid.UUID:
    agent_id = uuid.uuid4()
    runtime.farm.agents.announce(
        ADMIN,
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
            task = runtime.farm.jobs.task(ADMIN, job_id, task_id)
            if task.agent_id == agent_id and not task.is_finished:
                runtime.farm.jobs.report(ADMIN, job_id, task_id, TaskReport(state="done"), agent_id)
            agent.running.pop(task_id, None)


def test_a_job_is_spread_over_agents_and_finished(
    runtime: Runtime, agents: list[FakeAgent]
) -> None:
    fakes = {
        announce(runtime, a, f"n{i}"): a for i, a in enumerate(fake_agent(agents) for _ in range(3))
    }
    job_id = runtime.farm.jobs.submit(
        ADMIN, JobSpec(title="spread", jobtype="command", start=1, end=12, batch=2)
    ).job.id
    for _ in range(12):
        finish_everything_assigned(runtime, job_id, fakes)
        if (
            runtime.farm.jobs.get(ADMIN, job_id).job.state is not None
            and str(runtime.farm.jobs.get(ADMIN, job_id).job.state) == "done"
        ):
            break
    view = runtime.farm.jobs.get(ADMIN, job_id)
    assert str(view.job.state) == "done"
    owners = {t.agent_id for t in runtime.farm.jobs.tasks(ADMIN, job_id)}
    assert owners == set(fakes)
    frames_sent = [
        t["frame"]
        for a in fakes.values()
        for body in a.calls("POST", "/api/v1/assign")
        for t in body["tasks"]
    ]
    assert sorted(frames_sent) == [float(f) for f in range(1, 13)]  # no frame sent twice


def test_refusals_503_and_silence(runtime: Runtime, agents: list[FakeAgent]) -> None:
    picky, busy, gone = (fake_agent(agents) for _ in range(3))
    picky.assign_answer = lambda body: (400, {"error": "Not enough ram"})
    busy.assign_answer = lambda body: (503, {"error": "shutting down"})
    picky_id = announce(runtime, picky, "picky")
    busy_id = announce(runtime, busy, "busy")
    gone.close()
    gone_id = announce(runtime, gone, "gone")
    job_id = runtime.farm.jobs.submit(
        ADMIN, JobSpec(title="j", jobtype="command", start=1, end=4)
    ).job.id
    registry = runtime.farm.agents
    assert registry.get(ADMIN, busy_id).state is AgentState.OFFLINE
    assert registry.get(ADMIN, gone_id).state is AgentState.OFFLINE
    assert registry.get(ADMIN, picky_id).state is AgentState.ONLINE
    assert len(picky.calls("POST", "/api/v1/assign")) == 1  # refused once, not offered again
    assert all(t.agent_id is None for t in runtime.farm.jobs.tasks(ADMIN, job_id))
    # The 503 undid its attempt; the refusal and the silence each cost one.
    assert sum(t.attempts for t in runtime.farm.jobs.tasks(ADMIN, job_id)) == 2


def test_an_agent_that_stops_answering_loses_its_tasks_to_the_others(
    runtime: Runtime, agents: list[FakeAgent], clock: FixedClock
) -> None:
    first, second = fake_agent(agents), fake_agent(agents)
    first_id = announce(runtime, first, "first")
    job_id = runtime.farm.jobs.submit(
        ADMIN, JobSpec(title="j", jobtype="command", start=1, end=4, batch=2)
    ).job.id
    held = [t.id for t in runtime.farm.jobs.tasks(ADMIN, job_id) if t.agent_id == first_id]
    assert len(held) == 2 and set(first.running) == set(held)
    first.close()  # the render node dies
    second_id = announce(runtime, second, "second")
    clock.advance(61)
    runtime.farm.agents.update(
        ADMIN, second_id, AgentChanges(state="running", reported_task_ids=frozenset(second.running))
    )
    runtime.dispatcher.watch_agents()  # polls the silent busy agent: no answer → offline
    assert runtime.farm.agents.get(ADMIN, first_id).state is AgentState.OFFLINE
    for _ in range(6):
        finish_everything_assigned(runtime, job_id, {second_id: second})
    tasks = runtime.farm.jobs.tasks(ADMIN, job_id)
    assert all(t.agent_id == second_id and str(t.state) == "done" for t in tasks)
    assert all(t.failures == 0 for t in tasks if t.id in held)


@pytest.fixture
def queued_runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """The farm with its embedded queue (two consumers, as `farm serve` runs) and the default
    timeouts and retries for calls to agents."""
    settings = Settings.load(
        {
            "FARM_DATA_DIR": str(tmp_path),
            "FARM_DATABASE_URL": sqlite_url,
            "FARM_QUEUE_URL": f"sqlite:///{tmp_path / 'queue.db'}",
            "FARM_AGENT_NETWORKS": "127.0.0.0/8",
        }
    )
    runtime = build_runtime(settings)
    runtime.farm.jobtypes.create(ADMIN, JobTypeSpec(name="command", max_batch=1))
    consumer = start_embedded_consumer(runtime.huey, workers=2, periodic=False)
    yield runtime
    consumer.stop(graceful=False)
    runtime.huey.storage.flush_queue()
    runtime.close()


def test_unreachable_agents_do_not_starve_the_queue(
    queued_runtime: Runtime, agents: list[FakeAgent]
) -> None:
    runtime = queued_runtime
    for index in range(6):
        runtime.farm.agents.announce(
            ADMIN,
            AgentChanges(
                id=str(uuid.uuid4()),
                hostname=f"dead{index}",
                ram=8192,
                free_ram=4096,
                cpus=8,
                port=closed_port(),
            ),
            "127.0.0.1",
        )
    runtime.farm.jobs.submit(ADMIN, JobSpec(title="j", jobtype="command", start=1, end=40))
    time.sleep(0.5)  # the dead agents' batches are on their way
    real = fake_agent(agents)
    announced = time.monotonic()
    announce(runtime, real, "real")
    with real.changed:
        assert real.changed.wait_for(lambda: real.calls("POST", "/api/v1/assign"), 5), (
            "the real agent got no work within 5 s"
        )
    assert time.monotonic() - announced < 5
