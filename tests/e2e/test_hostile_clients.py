"""Clients and operators that would stall or confuse a real ``farm serve``, on loopback."""

from __future__ import annotations

import socket
import subprocess
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


def answer_then_close(connection: socket.socket, within: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``within`` runs out)."""
    connection.settimeout(within)
    answer = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            break
        except OSError:
            return answer + b"<reset>"
        if not chunk:
            return answer + b"<closed>"
        answer += chunk
    return answer


def test_a_stalled_body_is_cut_off_and_changes_nothing(start_master: StartMaster) -> None:
    master = start_master(FARM_BODY_TIMEOUT_SECONDS="1", FARM_THREADS="2")
    stalled = socket.create_connection(("127.0.0.1", master.port))
    try:
        body = b'{"name": "stalled"}'
        stalled.sendall(
            b"POST /api/v1/jobtypes/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body) + 10, body)
        )
        started = time.monotonic()
        answer = answer_then_close(stalled, within=10)
        assert time.monotonic() - started < 5
    finally:
        stalled.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"FARM_BODY_TIMEOUT_SECONDS" in answer and answer.endswith(b"<closed>"), answer
    api = master.api()
    assert api.get("/jobtypes/").json() == []
    assert api.post("/jobtypes/", json={"name": "complete"}).status_code == 201


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(
    start_master: StartMaster,
) -> None:
    master = start_master(
        FARM_MAX_JSON_BYTES="1000", FARM_MAX_LOG_BYTES="5000", FARM_MAX_UPDATE_BYTES="5000"
    )
    address = ("127.0.0.1", master.port)
    huge = socket.create_connection(address)
    try:
        # Nothing of the body is sent: a master that waited for it would not answer.
        huge.sendall(
            b"POST /api/v1/jobtypes/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1001\r\n\r\n"
        )
        answer = answer_then_close(huge, within=5)
    finally:
        huge.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"FARM_MAX_JSON_BYTES" in answer, answer

    # An upload route takes bodies up to the upload limits, chunked ones too.
    api = master.api()
    big_json = api.post("/jobtypes/", json={"name": "x" * 2000})
    assert big_json.status_code == 413, big_json.text
    archive = b"PK\x05\x06" + b"\0" * 18  # an empty zip
    upload = api.put(
        "/agents/updates/2.0",
        content=iter([archive[:10], archive[10:]]),  # chunked: no Content-Length
        headers={"Content-Type": "application/zip"},
    )
    assert upload.status_code == 201, upload.text
    assert api.get("/agents/updates/2.0").content == archive
    too_big = api.put(
        "/agents/updates/2.1",
        content=iter([b"x" * 3000] * 200),
        headers={"Content-Type": "application/zip"},
    )
    assert too_big.status_code == 413, too_big.text
    assert api.get("/jobtypes/").json() == []
