"""A whole farm on loopback: farm serve and farm agent processes rendering a command job."""

from __future__ import annotations

import signal
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import Master, Process, StartMaster, farm_command

pytestmark = pytest.mark.e2e

RENDER = (
    "import pathlib, sys, time; "
    "out = pathlib.Path(sys.argv[1]) / ('frame_%s.txt' % sys.argv[2]); "
    "time.sleep(float(sys.argv[3])); "
    "out.open('a').write('rendered\\n')"
)


class Farm:
    """A master, the agents a test starts against it, and the frames they write."""

    def __init__(self, master: Master, tmp_path: Path, processes: list[Process]) -> None:
        self.master = master
        self.tmp_path = tmp_path
        self.processes = processes
        self.api = master.api()
        self.output = tmp_path / "frames"
        self.output.mkdir()

    def start_agent(self, name: str) -> Process:
        agent = Process(
            farm_command(
                "agent",
                "--master",
                self.master.url,
                "--port",
                "0",
                "--heartbeat",
                "0.5",
                "--retry-delay",
                "0.05",
                "--hostname",
                name,
                "--data-dir",
                str(self.tmp_path / name),
            ),
            self.master.env,
            self.tmp_path / f"{name}-{len(self.processes)}.log",
        )
        self.processes.append(agent)
        return agent

    def agent_id(self, name: str) -> str:
        return (self.tmp_path / name / "agent_id").read_text().strip()

    def submit(self, frames: int, seconds: float) -> int:
        if self.api.get("/jobtypes/command").status_code == 404:
            assert self.api.post("/jobtypes/", json={"name": "command"}).status_code == 201
        job = self.api.post(
            "/jobs/",
            json={
                "title": "render",
                "jobtype": "command",
                "start": 1,
                "end": frames,
                "data": {
                    "command": [
                        sys.executable,
                        "-c",
                        RENDER,
                        str(self.output),
                        "{frame}",
                        str(seconds),
                    ]
                },
            },
        )
        assert job.status_code == 201, job.text
        job_id: int = job.json()["id"]
        return job_id

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        logs = "\n".join(p.output()[-3000:] for p in self.processes)
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def job(self, job_id: int) -> dict[str, Any]:
        job: dict[str, Any] = self.api.get(f"/jobs/{job_id}").json()
        return job

    def tasks(self, job_id: int) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = self.api.get(f"/jobs/{job_id}/tasks/").json()
        return tasks

    def frames_written(self) -> dict[int, int]:
        return {
            int(p.stem.split("_")[1]): len(p.read_text().splitlines())
            for p in self.output.glob("frame_*.txt")
        }


@pytest.fixture
def start_farm(
    tmp_path: Path, processes: list[Process], start_master_on_backend: StartMaster
) -> Callable[..., Farm]:
    """Starts a master with quick timings and these FARM_ settings, on each backend (with a
    `farm worker` on PostgreSQL + Redis); agents come later."""

    def start(**env: str) -> Farm:
        master = start_master_on_backend(
            FARM_WATCH_INTERVAL_SECONDS="0.5",
            FARM_AGENT_RETRY_DELAY="0.05",
            FARM_AGENT_RETRIES="1",
            **env,
        )
        return Farm(master, tmp_path, processes)

    return start


def test_two_agents_render_a_20_frame_job(start_farm: Callable[..., Farm]) -> None:
    farm = start_farm()
    farm.start_agent("render01")
    farm.start_agent("render02")
    job_id = farm.submit(20, 0.1)
    farm.wait(lambda: farm.job(job_id)["state"] == "done", "the job to finish")
    assert farm.frames_written() == {frame: 1 for frame in range(1, 21)}
    tasks = farm.tasks(job_id)
    assert {t["agent_id"] for t in tasks} == {farm.agent_id("render01"), farm.agent_id("render02")}
    logs = farm.api.get(f"/jobs/{job_id}/tasks/{tasks[0]['id']}/attempts/1/logs/").json()
    text = farm.api.get(
        f"/jobs/{job_id}/tasks/{tasks[0]['id']}/attempts/1/logs/{logs[0]['identifier']}/logfile"
    ).text
    assert text.startswith("time,stream,line") and "exit code 0" in text


def test_a_killed_agent_loses_its_frames_to_the_other(
    tmp_path: Path,
    processes: list[Process],
    start_master_on_backend: StartMaster,
    backend: dict[str, str],
) -> None:
    """With the default liveness settings (only the sweep runs often), a SIGKILLed agent's
    frames are back in the queue within two minutes. Slow: about 90 s, the silence limit. On
    PostgreSQL + Redis, where the sweep runs in `farm worker`, with the shortest silence limit
    the settings allow (31 s), to keep the suite short: the defaults are the embedded run's."""
    liveness = {"FARM_AGENT_SILENCE_SECONDS": "31"} if backend else {}
    master = start_master_on_backend(FARM_WATCH_INTERVAL_SECONDS="1", **liveness)
    farm = Farm(master, tmp_path, processes)
    doomed = farm.start_agent("doomed")
    farm.start_agent("survivor")
    farm.wait(lambda: len(farm.api.get("/agents/").json()) == 2, "both agents to announce")
    job_id = farm.submit(12, 2.0)
    doomed_id = farm.agent_id("doomed")
    farm.wait(
        lambda: any(
            t["state"] == "running" and t["agent_id"] == doomed_id for t in farm.tasks(job_id)
        ),
        "the doomed agent to render",
    )
    doomed.popen.send_signal(signal.SIGKILL)
    doomed.popen.wait()
    farm.wait(
        lambda: (
            not any(t["agent_id"] == doomed_id and t["state"] != "done" for t in farm.tasks(job_id))
        ),
        "the dead agent's frames to be requeued",
        timeout=120,
    )
    assert farm.api.get(f"/agents/{doomed_id}").json()["state"] == "offline"
    farm.wait(lambda: farm.job(job_id)["state"] == "done", "the survivor to finish the job")
    tasks = farm.tasks(job_id)
    assert all(t["state"] == "done" and t["failures"] == 0 for t in tasks)
    # Each task done once; the frame the killed agent was rendering may also have been
    # written by its orphaned process (a restarted agent reaping those is separate work).
    assert set(farm.frames_written()) == set(range(1, 13))

    farm.start_agent("doomed")  # the same data directory: the same id
    farm.wait(
        lambda: farm.api.get(f"/agents/{doomed_id}").json()["state"] in ("online", "running"),
        "the restarted agent to rejoin",
    )
    assert len(farm.api.get("/agents/").json()) == 2
    second = farm.submit(8, 0.3)
    farm.wait(
        lambda: any(t["agent_id"] == doomed_id for t in farm.tasks(second)),
        "the rejoined agent to get work",
    )
    farm.wait(lambda: farm.job(second)["state"] == "done", "the second job to finish")


def test_agents_keep_rendering_while_the_master_is_down(
    start_farm: Callable[..., Farm],
) -> None:
    farm = start_farm(FARM_AGENT_TIMEOUT_SECONDS="90")
    farm.start_agent("render01")
    farm.start_agent("render02")
    job_id = farm.submit(8, 1.0)
    farm.wait(
        lambda: sum(t["state"] == "running" for t in farm.tasks(job_id)) == 2,
        "both agents to render",
    )
    farm.master.stop()
    time.sleep(3)  # the master is away while frames finish; reports go to the agents' outboxes
    farm.master.start_again()
    farm.wait(lambda: farm.job(job_id)["state"] == "done", "the job to finish after the outage")
    tasks = farm.tasks(job_id)
    assert all(t["state"] == "done" and t["time_finished"] for t in tasks)
    assert farm.frames_written() == {frame: 1 for frame in range(1, 9)}


def test_sigterm_hands_running_work_back_and_reports_offline(
    start_farm: Callable[..., Farm],
) -> None:
    farm = start_farm()
    agent = farm.start_agent("render01")
    job_id = farm.submit(2, 60)
    farm.wait(
        lambda: any(t["state"] == "running" for t in farm.tasks(job_id)), "the agent to render"
    )
    agent_id = farm.agent_id("render01")
    agent.popen.send_signal(signal.SIGTERM)
    assert agent.popen.wait(timeout=60) == 0, agent.output()
    assert farm.api.get(f"/agents/{agent_id}").json()["state"] == "offline", agent.output()
    tasks = farm.tasks(job_id)
    assert all(t["state"] == "queued" and t["agent_id"] is None for t in tasks), (
        tasks,
        agent.output()[-5000:],
        farm.master.process.output()[-5000:],
    )
    assert all(t["failures"] == 0 for t in tasks)
    assert "agent stopped" in agent.output()


# The agent's check of the master's signature does not involve the queue: the default backend only.
@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_an_agent_runs_only_what_its_master_signed(start_farm: Callable[..., Farm]) -> None:
    farm = start_farm()
    farm.start_agent("render01")
    farm.wait(lambda: len(farm.api.get("/agents/").json()) == 1, "the agent to announce")
    stored = farm.tmp_path / "render01" / "credentials.json"
    farm.wait(stored.exists, "the agent to keep its signing key")
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    port = farm.api.get(f"/agents/{farm.agent_id('render01')}").json()["port"]
    marker = farm.tmp_path / "forged"
    forged = {
        "job": {
            "id": 1,
            "data": {"command": [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]},
        },
        "jobtype": {"name": "command", "version": 1},
        "tasks": [{"id": 1, "frame": 1.0, "attempt": 1}],
    }
    answer = httpx.post(f"http://127.0.0.1:{port}/api/v1/assign", json=forged)
    assert answer.status_code == 401 and "unsigned" in answer.json()["error"]
    job_id = farm.submit(2, 0.1)  # the master's own calls still go through
    farm.wait(lambda: farm.job(job_id)["state"] == "done", "the job to finish")
    assert not marker.exists()
