"""The dashboard's live updates under a real ``farm serve --workers 2``: a logged-in page's
streams on both web workers each hear of a change made through the API (a running frame's
progress, an agent disabled), a worker holds at most 64 streams, and a stream ends after its
lifetime (the browser reconnects) and frees its place."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid

import httpx
import pytest

from tests.e2e.test_dashboard_browser import add_user
from tests.support.dashboard import PASSWORD
from tests.support.fake_agent import FakeAgent
from tests.support.processes import Master, StartMaster

pytestmark = pytest.mark.e2e

WORKERS = 2
PER_WORKER = 64  # farm_http.live.MAX_CLIENTS
LIFETIME = 30.0
DEADLINE = 15.0
"""How long a change may take to reach every stream (the README says about two seconds)."""


@pytest.fixture
def start_master(start_master_on_backend: StartMaster) -> StartMaster:
    """On the embedded default, then on PostgreSQL + Redis with a `farm worker`."""
    return start_master_on_backend


class Stream:
    """One ``GET /live`` stream: its events as they come."""

    def __init__(self, response: httpx.Response, asked: float) -> None:
        self.response = response
        self.asked = asked
        """When it was asked for: before the server began counting its lifetime."""
        self.ended: float | None = None
        self._lines = response.aiter_lines()

    async def next_event(self) -> str | None:
        """The next event's name (comments skipped), or None at the stream's end."""
        name = None
        async for line in self._lines:
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line == "" and name is not None:
                return name
        self.ended = time.monotonic()
        return None

    async def change(self) -> None:
        assert await self.next_event() == "change"

    async def end(self) -> None:
        """Reads on until the server ends the stream."""
        while await self.next_event() is not None:
            pass
        await self.response.aclose()

    @property
    def lasted(self) -> float:
        assert self.ended is not None
        return self.ended - self.asked


def log_in(master: Master, name: str) -> httpx.Cookies:
    with httpx.Client(base_url=master.url, timeout=10) as browser:
        answer = browser.post("/login", data={"name": name, "password": PASSWORD})
        assert answer.status_code == 303, answer.text
        assert answer.cookies, "no session cookie"
        return browser.cookies


async def open_streams(client: httpx.AsyncClient, wanted: int) -> list[Stream]:
    """Opens streams one at a time, each on a connection of its own (the workers share the
    listening socket), until ``wanted`` are open. A connection that reaches a worker holding its
    64 already is refused (503) meanwhile."""
    streams: list[Stream] = []
    refused = 0
    deadline = time.monotonic() + 60
    while len(streams) < wanted:
        assert time.monotonic() < deadline, f"{len(streams)} streams open, {refused} refused"
        asked = time.monotonic()
        response = await client.send(client.build_request("GET", "/live"), stream=True)
        if response.status_code == 503:
            assert response.headers["retry-after"] == "5"
            await response.aclose()
            refused += 1
            continue
        assert response.status_code == 200, response.status_code
        assert response.headers["content-type"].startswith("text/event-stream")
        streams.append(Stream(response, asked))
    return streams


async def every_stream(streams: list[Stream], step: str) -> None:
    try:
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(*(stream.change() for stream in streams))
    except TimeoutError:
        raise AssertionError(f"{step}: not every stream heard of it in {DEADLINE}s") from None


def accepted(api: httpx.Client, history: str) -> None:
    """Waits until the dispatch has recorded the agent's acceptance (the task's ``sent``): it
    has nothing more to write after that."""
    deadline = time.monotonic() + 30
    while True:
        changes = api.get(history)
        assert changes.status_code == 200, changes.text
        if "sent" in {change["to_state"] for change in changes.json()}:
            return
        assert time.monotonic() < deadline, changes.json()
        time.sleep(0.1)


def test_every_stream_of_both_workers_hears_a_change_and_the_limits_hold(
    start_master: StartMaster,
) -> None:
    master = start_master(
        "--workers",
        str(WORKERS),
        FARM_DASHBOARD_LIVE_SECONDS=str(LIFETIME),
        FARM_AGENT_SILENCE_SECONDS="600",  # the fake agent sends no heartbeat
    )
    add_user(master, "vic", "viewer")
    cookies = log_in(master, "vic")
    agent = FakeAgent()
    try:
        with master.api() as api:
            agent_id = str(uuid.uuid4())
            announced = api.post(
                "/agents/",
                json={
                    "id": agent_id,
                    "hostname": "render01",
                    "ram": 4096,
                    "free_ram": 2048,
                    "cpus": 4,
                    "port": agent.port,
                },
            )
            assert announced.status_code == 201, announced.text
            assert api.post("/jobtypes/", json={"name": "render"}).status_code == 201
            job = api.post("/jobs/", json={"title": "shot", "jobtype": "render", "start": 1})
            assert job.status_code == 201, job.text
            agent.wait_for(lambda: bool(agent.calls("POST", "/api/v1/assign")))
            (task,) = agent.calls("POST", "/api/v1/assign")[0]["tasks"]
            as_agent = {"X-Farm-Agent-Id": agent_id}
            path = f"/jobs/{job.json()['id']}/tasks/{task['id']}"
            accepted(api, f"{path}/history")
            running = api.post(path, json={"state": "running"}, headers=as_agent)
            assert running.status_code == 200, running.text
            # The farm is still from here on: one frame, running on an agent with nothing else.
            asyncio.run(
                _watch(
                    master,
                    cookies,
                    progress=functools.partial(
                        api.post, path, json={"progress": 0.5}, headers=as_agent
                    ),
                    disable=functools.partial(
                        api.post, f"/agents/{agent_id}", json={"state": "disabled"}
                    ),
                )
            )
    finally:
        agent.close()


async def _watch(
    master: Master,
    cookies: httpx.Cookies,
    progress: functools.partial[httpx.Response],
    disable: functools.partial[httpx.Response],
) -> None:
    capacity = WORKERS * PER_WORKER
    async with httpx.AsyncClient(
        base_url=master.url,
        cookies=cookies,
        timeout=httpx.Timeout(10, read=LIFETIME + 20),
        limits=httpx.Limits(max_connections=capacity + 10, max_keepalive_connections=0),
    ) as client:
        streams = await open_streams(client, capacity)
        # Both workers are full (neither serves more than 64): every further stream is refused.
        for _ in range(10):
            answer = await client.get("/live")
            assert answer.status_code == 503, answer.status_code
        assert len(streams) == capacity

        assert progress().status_code == 200
        await every_stream(streams, "a running frame's progress")
        assert disable().status_code == 200
        await every_stream(streams, "an agent disabled")

        # Each stream ends after its lifetime (the browser's EventSource then reconnects)...
        async with asyncio.timeout(LIFETIME + 15):
            await asyncio.gather(*(stream.end() for stream in streams))
        lasted = [stream.lasted for stream in streams]
        assert min(lasted) >= LIFETIME and max(lasted) < LIFETIME + 10, (min(lasted), max(lasted))
        # ... and gives its place back: a page may listen again.
        async with client.stream("GET", "/live") as again:
            assert again.status_code == 200
