"""A farm with nothing admitted anonymously: the admin token `farm serve` leaves, a join token,
farm agents that enroll with it, and what strangers and other agents can no longer do."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Master, Process, StartMaster, farm_command

pytestmark = pytest.mark.e2e

WRITE_FRAME = (
    "import pathlib, sys; pathlib.Path(sys.argv[1], 'frame_' + sys.argv[2]).write_text('ok')"
)


def wait(
    condition: Callable[[], bool], what: str, logs: list[Process], timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    output = "\n".join(p.output()[-3000:] for p in logs)
    raise AssertionError(f"timed out waiting for {what}\n{output}")


def client(master: Master, token: str | None) -> httpx.Client:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=f"{master.url}/api/v1", headers=headers, timeout=10)


def join_token(master: Master) -> str:
    """`farm tokens create`, run as the operator on the master's machine."""
    made = subprocess.run(
        farm_command("tokens", "create", "--role", "agent-join", "--name", "render-nodes"),
        env=master.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def start_agent(
    master: Master, tmp_path: Path, processes: list[Process], name: str, token: str
) -> Process:
    agent = Process(
        farm_command(
            "agent",
            "--master",
            master.url,
            "--port",
            "0",
            "--heartbeat",
            "0.5",
            "--hostname",
            name,
            "--data-dir",
            str(tmp_path / name),
            "--join-token",
            token,
        ),
        master.env,
        tmp_path / f"{name}.log",
    )
    processes.append(agent)
    return agent


def test_enrolled_agents_render_and_nobody_else_gets_in(
    tmp_path: Path, processes: list[Process], start_master: StartMaster
) -> None:
    # Nothing admitted by network: every request needs a credential.
    master = start_master(FARM_ANONYMOUS_NETWORKS="", FARM_WATCH_INTERVAL_SECONDS="0.5")
    token_file = master.data_dir / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    admin = client(master, token_file.read_text().strip())
    stranger = client(master, None)

    assert stranger.get("/jobs/").status_code == 401
    refused = stranger.post("/jobs/", json={"title": "x", "jobtype": "command", "start": 1})
    assert refused.status_code == 401 and "error" in refused.json()
    assert admin.get("/jobs/").json() == []

    token = join_token(master)
    start_agent(master, tmp_path, processes, "render01", token)
    start_agent(master, tmp_path, processes, "render02", token)
    wait(lambda: len(admin.get("/agents/").json()) == 2, "both agents to enroll", processes)
    for name in ("render01", "render02"):
        stored = tmp_path / name / "credentials.json"
        wait(stored.exists, f"{name} to keep its credential", processes)
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    ids = {
        name: (tmp_path / name / "agent_id").read_text().strip()
        for name in ("render01", "render02")
    }

    assert admin.post("/jobtypes/", json={"name": "command"}).status_code == 201
    output = tmp_path / "frames"
    output.mkdir()
    job = admin.post(
        "/jobs/",
        json={
            "title": "render",
            "jobtype": "command",
            "start": 1,
            "end": 6,
            "data": {"command": [sys.executable, "-c", WRITE_FRAME, str(output), "{frame}"]},
        },
    )
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    assert job.json()["submitted_by"] == "admin"
    wait(lambda: admin.get(f"/jobs/{job_id}").json()["state"] == "done", "the job", processes)
    assert sorted(p.name for p in output.iterdir()) == [f"frame_{n}" for n in range(1, 7)]

    # A call sent straight to an agent, not signed by its master, runs nothing.
    port = admin.get(f"/agents/{ids['render01']}").json()["port"]
    marker = tmp_path / "forged"
    forged = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/assign",
        json={
            "job": {"id": job_id, "data": {"command": ["touch", str(marker)]}},
            "jobtype": {"name": "command", "version": 1},
            "tasks": [{"id": 1, "frame": 1.0, "attempt": 1}],
        },
    )
    assert forged.status_code == 401
    time.sleep(0.5)  # a process started by the forged call would have written by now
    assert not marker.exists()

    # One agent's credential cannot speak for another.
    first = json.loads((tmp_path / "render01" / "credentials.json").read_text())["credential"]
    as_first = client(master, first)
    second_before = admin.get(f"/agents/{ids['render02']}").json()
    hijack = as_first.post(
        f"/agents/{ids['render02']}", json={"port": 1234, "current_assignments": {}}
    )
    assert hijack.status_code == 403
    assert as_first.delete(f"/agents/{ids['render02']}").status_code == 403
    second_after = admin.get(f"/agents/{ids['render02']}").json()
    assert second_after["port"] == second_before["port"]
    # ... nor submit work.
    assert (
        as_first.post("/jobs/", json={"title": "x", "jobtype": "command", "start": 1}).status_code
        == 403
    )
