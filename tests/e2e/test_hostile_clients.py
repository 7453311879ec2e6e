"""Clients and operators that would stall or confuse a real ``farm serve``, on loopback."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Process, StartMaster, base_env, farm_command, free_port

pytestmark = pytest.mark.e2e


def second_serve(tmp_path: Path, env: dict[str, str], port: int, name: str) -> Process:
    """Another ``farm serve``, expected to refuse to start."""
    process = Process(farm_command("serve", "--port", str(port)), env, tmp_path / f"{name}.log")
    try:
        process.popen.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.stop()
        raise AssertionError(f"a second farm serve started:\n{process.output()}") from None
    process.stop()
    return process


def test_a_second_master_on_the_same_data_directory_refuses_to_start(
    tmp_path: Path, start_master: StartMaster
) -> None:
    first = start_master()
    second = second_serve(tmp_path, first.env, free_port(), "second")
    assert second.popen.returncode != 0
    assert "already served" in second.output()
    assert first.api().get("/agents/").status_code == 200


def test_a_second_master_on_the_same_port_refuses_to_start(
    tmp_path: Path, start_master: StartMaster
) -> None:
    first = start_master()
    elsewhere = base_env(tmp_path, FARM_DATA_DIR=str(tmp_path / "other-data"))
    second = second_serve(tmp_path, elsewhere, first.port, "second")
    assert second.popen.returncode != 0
    assert f"port {first.port}" in second.output() and "already in use" in second.output()
    # Every request still reaches the first master (none answers from an empty second one).
    api = first.api()
    assert api.post("/jobtypes/", json={"name": "command"}).status_code == 201
    assert all(len(api.get("/jobtypes/").json()) == 1 for _ in range(20))


def closed_by_server(connection: socket.socket, within: float) -> bool:
    connection.settimeout(within)
    try:
        return connection.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_idle_connections_are_closed_and_leave_room_for_agents(start_master: StartMaster) -> None:
    master = start_master(FARM_IDLE_TIMEOUT_SECONDS="1", FARM_THREADS="2")
    address = ("127.0.0.1", master.port)
    after_a_request, mid_headers, silent = [], [], []
    try:
        for _ in range(6):  # more of each than the master has threads
            connection = socket.create_connection(address)
            connection.sendall(b"GET /api/v1/agents/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = connection.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200"), answer
            after_a_request.append(connection)
            connection = socket.create_connection(address)
            connection.sendall(b"GET /api/v1/agents/ HTTP/1.1\r\nHost: 127")
            mid_headers.append(connection)
            silent.append(socket.create_connection(address))

        started = time.monotonic()
        agent_id = str(uuid.uuid4())
        api = master.api()
        announced = api.post(
            "/agents/",
            json={
                "id": agent_id,
                "hostname": "render00",
                "ram": 4096,
                "free_ram": 2048,
                "cpus": 4,
                "port": free_port(),
            },
        )
        assert announced.status_code == 201, announced.text
        beat = api.post(
            f"/agents/{agent_id}",
            json={"state": "online", "current_assignments": {}, "free_ram": 1000},
        )
        assert beat.status_code == 200, beat.text
        assert time.monotonic() - started < 5

        for connection in (*after_a_request, *mid_headers):
            assert closed_by_server(connection, within=5)
    finally:
        for connection in (*after_a_request, *mid_headers, *silent):
            connection.close()


@pytest.mark.xfail(
    strict=True,
    reason="granian hands a request to a thread before its body has arrived and reads the body "
    "with no timeout: slow senders hold every thread until a buffering proxy is put in front "
    "(README, Configuration)",
)
def test_slow_bodies_leave_room_for_agents(start_master: StartMaster) -> None:
    master = start_master(FARM_THREADS="2")
    slow = []
    try:
        for _ in range(4):  # more than the master has threads
            connection = socket.create_connection(("127.0.0.1", master.port))
            connection.sendall(
                b"POST /api/v1/jobtypes/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
            slow.append(connection)
        time.sleep(0.5)
        with httpx.Client(base_url=f"{master.url}/api/v1", timeout=3) as api:
            assert api.get("/agents/").status_code == 200
    finally:
        for connection in slow:
            connection.close()


def test_a_100000_frame_job_leaves_room_for_heartbeats(start_master: StartMaster) -> None:
    """Its tasks are stored a chunk per transaction: a heartbeat waits for one chunk at most,
    not for the whole job (seconds, on SQLite, where writers take turns)."""
    master = start_master()
    agent_id = str(uuid.uuid4())
    with master.api() as api:
        assert api.post("/jobtypes/", json={"name": "render"}).status_code == 201
        announced = api.post(
            "/agents/",
            json={
                "id": agent_id,
                "hostname": "node",
                "ram": 16,  # less than the job asks: the scheduler leaves it be
                "free_ram": 1,
                "cpus": 1,
                "port": free_port(),
            },
        )
        assert announced.status_code == 201, announced.text
    submitting = threading.Event()
    latencies: list[float] = []

    def heartbeat() -> None:
        with httpx.Client(base_url=f"{master.url}/api/v1", timeout=30) as agent:
            while submitting.is_set():
                began = time.monotonic()
                answer = agent.post(f"/agents/{agent_id}", json={"free_ram": 1})
                assert answer.status_code == 200, answer.text
                latencies.append(time.monotonic() - began)

    with httpx.Client(base_url=f"{master.url}/api/v1", timeout=300) as api:
        submitting.set()
        beating = threading.Thread(target=heartbeat)
        beating.start()
        began = time.monotonic()
        try:
            created = api.post(
                "/jobs/",
                json={"title": "long shot", "jobtype": "render", "start": 1, "end": 100000},
            )
        finally:
            submitted_in = time.monotonic() - began
            submitting.clear()
            beating.join()
        assert created.status_code == 201, created.text
        counts = created.json()["tasks"]
        assert counts["queued"] == sum(counts.values()) == 100000
        job_id = created.json()["id"]
        assert api.get(f"/jobs/{job_id}").json()["tasks"]["queued"] == 100000
    print(
        f"100k-frame submission {submitted_in:.2f}s; {len(latencies)} heartbeats meanwhile, "
        f"slowest {max(latencies) * 1000:.0f} ms"
    )
    # 1 s on a quiet machine (slowest measured: 0.2 s). On one so loaded that the submission
    # takes several times its 3 s, a fifth of it: a heartbeat that waited for the whole job
    # waited for nearly all of it (3.2 s of 3.3 s, measured before the tasks were chunked).
    assert max(latencies) < max(1.0, submitted_in / 5)
    assert len(latencies) >= 3  # they ran while the tasks were stored
