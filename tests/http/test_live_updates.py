"""The dashboard's live updates: one watcher per process polls the change marker, every open
page's stream hears of a change from it; streams are bounded (clients, heartbeats, lifetime)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from farm_domain.access import Role
from farm_domain.errors import Unavailable
from farm_http.live import ChangeWatch, EventStream
from tests.http.test_dashboard import Farm
from tests.support.http_harness import Harness


class Marker:
    """A change marker the test sets; counts how often it is read."""

    def __init__(self) -> None:
        self.value = "a"
        self.reads = 0
        self.down = False
        self.read_twice = threading.Event()

    def __call__(self) -> str:
        self.reads += 1
        if self.reads >= 2:
            self.read_twice.set()
        if self.down:
            raise Unavailable("the database is unavailable; retry shortly")
        return self.value


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_change_reaches_every_open_stream_from_one_poller() -> None:
    marker = Marker()
    watch = ChangeWatch(marker, interval=0.01)
    assert watch.connect() and watch.connect()
    streams = [EventStream(watch, step=0.01), EventStream(watch, step=0.01)]
    assert all(next(s).startswith(b"retry: ") for s in streams)
    assert marker.read_twice.wait(5)  # the watcher has its baseline
    marker.value = "b"
    assert watch.wait(0, timeout=5) == 1
    assert [next(s) for s in streams] == [b"event: change\ndata: 1\n\n"] * 2
    assert [next(s) for s in streams] == [b"", b""]  # nothing new: nothing sent
    threads = [t for t in threading.enumerate() if t.name == "farm-live"]
    assert len(threads) == 1  # one poller for the process, not one per page
    for s in streams:
        s.close()
        s.close()  # closing twice disconnects once
    threads[0].join(5)
    assert watch.clients == 0 and not threads[0].is_alive()  # no page, no polling


def test_a_stream_sends_heartbeats_and_ends_after_its_lifetime() -> None:
    clock = Clock()
    watch = ChangeWatch(Marker(), interval=0.01)
    assert watch.connect()
    stream = EventStream(watch, heartbeat=15, lifetime=60, step=0, clock=clock)
    next(stream)
    clock.now = 16
    assert next(stream) == b": heartbeat\n\n"
    assert next(stream) == b""
    clock.now = 61
    with pytest.raises(StopIteration):
        next(stream)
    assert watch.clients == 0


def test_a_worker_serves_at_most_its_share_of_listening_pages() -> None:
    watch = ChangeWatch(Marker(), interval=0.01, max_clients=2)
    assert watch.connect() and watch.connect()
    assert not watch.connect()
    watch.disconnect()
    assert watch.connect()
    watch.disconnect()
    watch.disconnect()


def test_a_database_outage_is_no_change_and_stops_nothing() -> None:
    marker = Marker()
    watch = ChangeWatch(marker, interval=0.01)
    assert watch.connect()
    assert marker.read_twice.wait(5)
    marker.down = True
    reads = marker.reads
    # still polling through the outage, and no change seen
    assert watch.wait(0, timeout=0.1) == 0 and marker.reads > reads
    marker.down = False
    marker.value = "b"
    assert watch.wait(0, timeout=5) == 1
    watch.disconnect()


def test_the_live_endpoint_streams_events_to_a_logged_in_page(farm: Harness) -> None:
    dash = Farm(farm, live_stream_seconds=0.3)
    vic = dash.session("vic", Role.VIEWER)
    answer = vic.get("/live")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.text.startswith("retry: 2000\n")
    assert dash.client.simulate_get("/live").status_code == 303  # no identity: the login page


def test_pages_load_the_apps_script_and_refresh_themselves_only_without_it(dash: Farm) -> None:
    page = dash.session("vic", Role.VIEWER).get("/jobs").text
    assert '<script src="/static/dashboard.js" defer></script>' in page
    assert '<noscript><meta http-equiv="refresh"' in page and 'data-live="/live"' in page
    assert "<script>" not in page  # no inline script: the CSP forbids it
    script = dash.client.simulate_get("/static/dashboard.js")
    assert script.status_code == 200 and "EventSource" in script.text
    assert script.headers["content-type"].startswith("text/javascript")


@pytest.fixture
def dash(farm: Harness) -> Farm:
    return Farm(farm)


class Markers:
    """Readings of the farm's change marker (SQLite, then PostgreSQL)."""

    def __init__(self, dash: Farm) -> None:
        self._read: Callable[[], str] = dash.harness.runtime.farm.live.marker
        self.last = self._read()

    def moved(self) -> bool:
        """Whether the marker differs from its last reading (and it reads the same again)."""
        now = self._read()
        assert self._read() == now  # nothing changed between two reads: the same marker
        moved, self.last = now != self.last, now
        return moved


def test_every_change_a_page_shows_moves_the_marker_and_a_heartbeat_does_not(
    dash: Farm,
) -> None:
    markers = Markers(dash)
    agent_id = uuid.uuid4()
    agent = f"/agents/{agent_id}"

    def post(path: str, **body: Any) -> Any:
        return dash.api("POST", path, json=body)

    dash.announce(agent_id)
    assert markers.moved(), "a new agent"
    post(agent, free_ram=1024, state="online")
    assert not markers.moved(), "a heartbeat that changes nothing shown"
    job = dash.submit()
    assert markers.moved(), "a new job"
    task_id = dash.api("GET", f"/jobs/{job['id']}/tasks/")[0]["id"]
    task = f"/jobs/{job['id']}/tasks/{task_id}"
    post(f"{agent}/tasks/", id=task_id)
    assert markers.moved(), "a task assigned"
    post(task, state="running")
    assert markers.moved(), "a task running"
    post(task, progress=0.25)
    assert markers.moved(), "a running task's progress"
    post(task, progress=0.5)
    assert markers.moved(), "its progress again"
    post(task, progress=0.5)
    assert not markers.moved(), "the same progress"
    post(task, state="done")
    assert markers.moved(), "a task done"
    post(f"/jobs/{job['id']}", priority=77)
    assert markers.moved(), "a job's priority"
    post(agent, state="disabled")
    assert markers.moved(), "an agent disabled"
    post(agent, state="online")
    assert markers.moved(), "an agent enabled"
    post(agent, state="offline")
    assert markers.moved(), "an agent offline"
    post(agent, state="disabled")
    assert markers.moved(), "an offline agent disabled (its shown state stays offline)"
    dash.api("DELETE", f"/jobs/{job['id']}")
    assert markers.moved(), "a job deleted"
    dash.api("DELETE", agent)
    assert markers.moved(), "an agent deleted"
