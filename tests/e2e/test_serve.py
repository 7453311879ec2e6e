"""The agents API over real HTTP against ``farm serve``: embedded, and PostgreSQL + Redis."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.databases import REDIS_URL, create_empty_postgres_database, needs_redis
from tests.support.fake_agent import FakeAgent
from tests.support.processes import Process, StartMaster, base_env, farm_command, free_port

pytestmark = pytest.mark.e2e


def log_lines(process: Process) -> list[dict[str, Any]]:
    lines = []
    for line in process.output().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def wait_for_log(
    process: Process, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in log_lines(process):
            if predicate(entry):
                return entry
        time.sleep(0.1)
    raise AssertionError(f"no such log line:\n{process.output()[-4000:]}")


def exercise_agents_api(base: str) -> list[str]:
    """Announce, heartbeat, list with filters and delete, as agents and operators would."""
    client = httpx.Client(
        base_url=f"{base}/api/v1", timeout=10, headers={"User-Agent": "PyFarm/1.0 (agent)"}
    )
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for number, (agent_id, ram) in enumerate(zip(ids, (2048, 8192, 32768), strict=True)):
        created = client.post(
            "/agents/",
            json={
                "id": agent_id,
                "hostname": f"render{number:02d}",
                "version": "0.8.6",
                "os_class": "linux",
                "os_fullname": "Debian 12",
                "ram": ram,
                "cpus": 4 * (number + 1),
                "cpu_name": "Xeon",
                "port": 50000 + number,
                "free_ram": ram // 2,
                "time_offset": 0,
                "state": "online",
                "mac_addresses": [f"aa:bb:cc:dd:ee:0{number}"],
                "current_assignments": {},
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["remote_ip"] == "127.0.0.1"
    again = client.post(
        "/agents",
        json={
            "id": ids[0],
            "hostname": "render00",
            "ram": 2048,
            "free_ram": 100,
            "cpus": 4,
            "port": 50000,
        },
    )
    assert again.status_code == 200

    heartbeat = client.post(
        f"/agents/{ids[1]}", json={"state": "running", "current_assignments": {}, "free_ram": 1000}
    )
    assert heartbeat.status_code == 200 and heartbeat.json()["state"] == "running"
    assert heartbeat.json()["free_ram"] == 1000

    listed = client.get("/agents/", params={"min_ram": 4096, "min_cpus": 8}).json()
    assert [a["hostname"] for a in listed] == ["render01", "render02"]
    assert client.get("/agents", params={"hostname": "render00"}).json()[0]["id"] == ids[0]
    bad = client.get("/agents/", params={"min_ram": "lots"})
    assert bad.status_code == 400 and "Failed to convert" in bad.json()["error"]

    shutdown = client.post(
        f"/agents/{ids[2]}", json={"state": "offline", "current_assignments": {}, "free_ram": 1}
    )
    assert shutdown.json()["state"] == "offline"
    assert client.delete(f"/agents/{ids[2]}").status_code == 204
    assert client.delete(f"/agents/{ids[2]}").status_code == 204
    assert client.get(f"/agents/{ids[2]}").status_code == 404
    assert client.get(f"/agents/{ids[2]}/tasks/").status_code == 404
    assert client.get(f"/agents/{ids[0]}/tasks/").json() == []
    assert len(client.get("/agents").json()) == 2
    garbage = client.post("/agents/", content=b"[1]", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 400 and garbage.json()["error"]
    return ids


def work_reaches_a_fake_agent(base: str) -> tuple[FakeAgent, str]:
    """Announce a fake agent, submit a job: the queue's consumer must assign and send it."""
    agent = FakeAgent()
    api = httpx.Client(base_url=f"{base}/api/v1", timeout=10)
    agent_id = str(uuid.uuid4())
    assert api.post("/jobtypes/", json={"name": "command"}).status_code == 201
    assert (
        api.post(
            "/agents/",
            json={
                "id": agent_id,
                "hostname": "fake",
                "ram": 4096,
                "free_ram": 2048,
                "cpus": 4,
                "port": agent.port,
            },
        ).status_code
        == 201
    )
    assert (
        api.post(
            "/jobs/", json={"title": "t", "jobtype": "command", "start": 1, "end": 3}
        ).status_code
        == 201
    )
    agent.wait_for(lambda: bool(agent.calls("POST", "/api/v1/assign")))
    (body,) = agent.calls("POST", "/api/v1/assign")
    assert body["jobtype"] == {"name": "command", "version": 1}
    return agent, agent_id


def test_serve_on_the_embedded_default(start_master: StartMaster) -> None:
    master = start_master(FARM_ACCESS_LOG="all")
    serve = master.process
    exercise_agents_api(master.url)
    # The queue's consumer runs inside `farm serve`: the job reached an agent through it.
    agent, agent_id = work_reaches_a_fake_agent(master.url)
    agent.close()
    wait_for_log(serve, lambda e: e.get("msg") == "tasks sent" and e.get("agent_id") == agent_id)
    requests = [e for e in log_lines(serve) if e.get("logger") == "farm.http.access"]
    assert len(requests) >= 15
    assert {"method", "path", "status", "ms"} <= set(requests[0])
    assert (master.data_dir / "farm.db").exists() and (master.data_dir / "queue.db").exists()


def test_serve_refuses_bad_configuration_clearly(tmp_path: Path) -> None:
    env = base_env(tmp_path, FARM_PORT="eighty", FARM_DEFAULT_AGENT_SOFTWARE="nope")
    result = subprocess.run(
        farm_command("serve"), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "FARM_PORT='eighty'" in result.stderr
    assert "FARM_DEFAULT_AGENT_SOFTWARE" in result.stderr


@pytest.mark.postgres
@needs_redis
def test_scale_out_on_postgresql_and_redis(
    tmp_path: Path,
    processes: list[Process],
    start_master: StartMaster,
    postgres_database_url: str,
) -> None:
    database = create_empty_postgres_database()
    assert REDIS_URL
    settings = {
        "FARM_DATABASE_URL": database,
        "FARM_QUEUE_URL": REDIS_URL,
        # Its own queue: tests running at once on one Redis must not take each other's jobs.
        "FARM_QUEUE_NAME": f"farm-e2e-{uuid.uuid4().hex[:12]}",
    }
    env = base_env(tmp_path, **settings)

    refused = subprocess.run(
        farm_command("serve", "--port", str(free_port())),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and "farm db upgrade" in refused.stderr

    upgrade = subprocess.run(
        farm_command("db", "upgrade"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert upgrade.returncode == 0, upgrade.stderr

    worker = Process(farm_command("worker"), env, tmp_path / "worker.log")
    processes.append(worker)
    master = start_master("--workers", "2", **settings)
    serve = master.process
    exercise_agents_api(master.url)
    # No consumer runs inside `farm serve` here: the separate `farm worker` sent the work.
    agent, agent_id = work_reaches_a_fake_agent(master.url)
    agent.close()
    wait_for_log(worker, lambda e: e.get("msg") == "tasks sent" and e.get("agent_id") == agent_id)
    assert "tasks sent" not in serve.output()
