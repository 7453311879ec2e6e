"""``farm worker --metrics-port``: a queue consumer serves its own counters, so that workers on
other hosts are seen; with the master's ``/metrics`` every count is served exactly once."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from farm_adapters.metrics import worker_directory
from farm_cli.main import main
from tests.support.databases import needs_redis
from tests.support.fake_agent import FakeAgent
from tests.support.metrics import Samples, families, parse, value
from tests.support.processes import (
    Master,
    Process,
    base_env,
    farm_command,
    free_port,
)

pytestmark = pytest.mark.e2e

SECRET = "worker-metrics-test-secret-0123456789abcdef"
"""Every process of one master shares its secret, whichever host it runs on."""

EVENTS = {
    ("farm_dispatch_total", "accepted"): 4,
    ("farm_dispatch_total", "refused"): 0,
    ("farm_dispatch_total", "conflict"): 0,
    ("farm_dispatch_total", "busy"): 0,
    ("farm_dispatch_total", "unreachable"): 0,
    ("farm_assignments_total", None): 4,
    ("farm_task_failures_total", "stalled"): 1,
    ("farm_task_requeues_total", "retry"): 1,
    ("farm_stale_reports_total", None): 1,
    ("farm_double_assignments_total", None): 0,
}
"""What the job of ``run_job`` causes: three frames, the first failing once, then a stale
report of its first attempt."""

STATE_FAMILIES = {
    "farm_agents",
    "farm_tasks",
    "farm_jobs",
    "farm_queue_backlog",
    "farm_up",
    "farm_agent_heartbeat_age_seconds_max",
}


def count(samples: Samples, name: str, label: str | None) -> float:
    if label is None:
        return value(samples, name)
    key = "outcome" if name == "farm_dispatch_total" else "reason"
    return value(samples, name, **{key: label})


def start_worker(
    processes: list[Process], data_root: Path, backend: dict[str, str], *args: str
) -> tuple[Process, str]:
    """``farm worker --metrics-port`` with its data dir under ``data_root``; returns it and
    its metrics URL once that answers."""
    port = free_port()
    data_root.mkdir(exist_ok=True)
    worker = Process(
        farm_command("worker", "--metrics-port", str(port), *args),
        base_env(data_root, **backend, FARM_SECRET_KEY=SECRET),
        data_root / f"worker-{len(processes)}.log",
    )
    processes.append(worker)
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 30
    while True:
        assert worker.popen.poll() is None, f"farm worker exited:\n{worker.output()}"
        assert time.monotonic() < deadline, f"no metrics at {url}:\n{worker.output()}"
        try:
            answered = httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            answered = False
        if answered and f'"address":"{url}"' in worker.output():  # and said where, in its log
            return worker, url
        time.sleep(0.1)


def scrape(url: str) -> tuple[Samples, set[str]]:
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    return parse(answer.text), families(answer.text)


def scrape_dispatched(url: str, accepted: int) -> tuple[Samples, set[str]]:
    """A scrape of a worker once it counted ``accepted`` batches accepted: it counts an answer
    once it has it, which may be after the agent saw the batch and the test went on."""
    deadline = time.monotonic() + 20
    while True:
        samples, names = scrape(url)
        if count(samples, "farm_dispatch_total", "accepted") >= accepted:
            return samples, names
        assert time.monotonic() < deadline, f"{url} never counted {accepted} accepted: {samples}"
        time.sleep(0.05)


def batches_sent(agent: FakeAgent, at_least: int) -> bool:
    return len(agent.calls("POST", "/api/v1/assign")) >= at_least


def announce(api: httpx.Client, agent: FakeAgent) -> str:
    announced = api.post(
        "/agents/",
        json={
            "id": "4b3f0e2c-5a0c-4c39-9a51-64f1d2a0b002",
            "hostname": "render00",
            "ram": 4096,
            "free_ram": 2048,
            "cpus": 4,
            "port": agent.port,
        },
    )
    assert announced.status_code in (200, 201), announced.text
    agent_id: str = announced.json()["id"]
    return agent_id


def run_job(
    api: httpx.Client, agent: FakeAgent, agent_id: str, frames: int, fail_first: bool
) -> None:
    """A job of ``frames`` frames rendered one batch at a time by ``agent``; with
    ``fail_first``, the first batch fails (stalled) and its first attempt then reports late."""
    job = api.post(
        "/jobs/",
        json={"title": "shot", "jobtype": "render", "start": 1, "end": frames, "requeue": 1},
    ).json()
    sent = len(agent.calls("POST", "/api/v1/assign"))
    first_task = None
    for batch in range(frames + (1 if fail_first else 0)):
        agent.wait_for(functools.partial(batches_sent, agent, sent + batch + 1))
        (task,) = agent.calls("POST", "/api/v1/assign")[sent + batch]["tasks"]
        first_task = first_task or task
        failed = fail_first and batch == 0
        answer = api.post(
            f"/jobs/{job['id']}/tasks/{task['id']}",
            json={"state": "failed", "reason": "stalled"} if failed else {"state": "done"},
            headers={"X-Farm-Agent-Id": agent_id},
        )
        assert answer.status_code == 200, answer.text
    if fail_first:
        assert first_task is not None
        stale = api.post(
            f"/jobs/{job['id']}/tasks/{first_task['id']}",
            json={"state": "done"},
            headers={"X-Farm-Agent-Id": agent_id, "X-Farm-Attempt": "1"},
        )
        assert stale.status_code == 409, stale.text


@pytest.mark.postgres
@pytest.mark.redis
@needs_redis
@pytest.mark.parametrize("backend", ["scale-out"], indirect=True)
def test_each_worker_serves_its_own_counters_and_the_targets_sum_to_the_farms(
    tmp_path: Path, processes: list[Process], backend: dict[str, str]
) -> None:
    # A worker on "another host": a data dir of its own, which the master never reads.
    other_host, other_url = start_worker(processes, tmp_path / "other-host", backend)
    master = Master(
        tmp_path,
        processes,
        base_env(tmp_path, **backend, FARM_SECRET_KEY=SECRET, FARM_RETRY_DELAY_SECONDS="0"),
        (),
    )
    agent = FakeAgent()
    try:
        with master.api() as api:
            created = api.post("/jobtypes/", json={"name": "render", "max_batch": 1})
            assert created.status_code == 201, created.text
            agent_id = announce(api, agent)
            run_job(api, agent, agent_id, frames=3, fail_first=True)
            on_worker, worker_families = scrape_dispatched(other_url, 4)
            on_master, master_families = scrape(f"{master.url}/metrics")

            # The worker consumed the queue: its dispatches and assignments are on its port,
            # and only there; the farm's state is on the master's alone.
            assert count(on_worker, "farm_dispatch_total", "accepted") == 4
            assert count(on_worker, "farm_assignments_total", None) == 4
            assert count(on_master, "farm_dispatch_total", "accepted") == 0
            assert count(on_master, "farm_assignments_total", None) == 0
            assert worker_families & STATE_FAMILIES == set()
            assert STATE_FAMILIES <= master_families
            assert "farm_http_requests" not in worker_families
            # Every count, added up over the two targets, is what happened: none twice.
            for (name, label), expected in EVENTS.items():
                summed = count(on_master, name, label) + count(on_worker, name, label)
                assert summed == expected, (name, label)

            # A worker with a port on the master's host and data dir instead (it starts while
            # the other stops): its counts leave the master's /metrics (its own directory is
            # not the host's), so they are not served twice either.
            other_host.popen.terminate()
            _, same_url = start_worker(processes, tmp_path, backend, "--no-periodic")
            assert other_host.stop() == 0
            # Its counts went with it: nothing would serve them again.
            assert list((tmp_path / "other-host" / "data" / "metrics").glob("*/worker-*")) == []
            run_job(api, agent, agent_id, frames=1, fail_first=False)
            on_same, same_families = scrape_dispatched(same_url, 1)
            after, _ = scrape(f"{master.url}/metrics")
            assert count(on_same, "farm_dispatch_total", "accepted") == 1
            assert count(on_same, "farm_assignments_total", None) == 1
            assert count(after, "farm_dispatch_total", "accepted") == 0
            assert count(after, "farm_assignments_total", None) == 0
            assert same_families & STATE_FAMILIES == set()
    finally:
        agent.close()


@pytest.mark.parametrize(
    ("arguments", "env", "problem"),
    [
        (["--metrics-port", "0"], {}, "FARM_WORKER_METRICS_PORT='0': must be between 1 and 65535"),
        (["--metrics-port", "65536"], {}, "FARM_WORKER_METRICS_PORT='65536': must be between"),
        (
            ["--metrics-port", "9100", "--metrics-address", "localhost"],
            {},
            "FARM_WORKER_METRICS_ADDRESS='localhost': must be an IP address",
        ),
        (
            [],
            {"FARM_WORKER_METRICS_PORT": "http"},
            "FARM_WORKER_METRICS_PORT='http': must be a whole",
        ),
        (
            [],
            {"FARM_WORKER_METRICS_ADDRESS": "10.0.0.300"},
            "FARM_WORKER_METRICS_ADDRESS='10.0.0.300'",
        ),
    ],
)
def test_a_bad_metrics_port_or_address_stops_the_worker_before_it_starts(
    arguments: list[str],
    env: dict[str, str],
    problem: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, setting in base_env(tmp_path, **env).items():
        monkeypatch.setenv(key, setting)
    assert main(["worker", *arguments]) == 2
    assert problem in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # nothing made, nothing served


def test_a_metrics_port_in_use_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        finished = subprocess.run(
            farm_command("worker", "--metrics-port", str(port)),
            env=base_env(tmp_path),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert finished.returncode == 2, finished.stderr
    assert finished.stderr.splitlines() == [
        (
            "farm: --metrics-port (FARM_WORKER_METRICS_PORT): cannot serve metrics on "
            f"127.0.0.1:{port}: Address already in use"
        ),
    ]
    assert finished.stdout == ""
    # It counted nothing it would leave behind.
    assert list((tmp_path / "data" / "metrics").glob("*/worker-*")) == []


def test_a_worker_removes_the_directories_of_workers_no_longer_running(tmp_path: Path) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    gone = tmp_path / f"worker-{ended.pid}"
    running = tmp_path / f"worker-{os.getppid()}"
    mine = tmp_path / f"worker-{os.getpid()}"  # left by a process that had this id before
    for directory in (gone, running, mine):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"")
    assert worker_directory(tmp_path) == mine
    assert not gone.exists()
    assert running.exists()
    assert not mine.exists()  # its counts start from zero
