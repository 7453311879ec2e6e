"""Failure policies end to end: farm serve and a real farm agent. A frame that sleeps past its
job's max_run_seconds is killed and fails with reason timeout; one that allocates past ram_max
fails with reason ram; neither leaves a process behind."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from farm_agent import procs
from farm_agent.orphans import RECORD_NAME
from tests.e2e.test_farm import Farm
from tests.support.processes import Process, StartMaster

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not procs.has_proc(), reason="the agent's limits need /proc"),
]

# Writes its pid where the test can find it, then does what it is told.
FRAME = "import os, pathlib, sys; pathlib.Path(sys.argv[1]).write_text(str(os.getpid())); "


@pytest.fixture
def farm(tmp_path: Path, processes: list[Process], start_master: StartMaster) -> Farm:
    master = start_master(
        FARM_WATCH_INTERVAL_SECONDS="0.5", FARM_AGENT_RETRY_DELAY="0.05", FARM_AGENT_RETRIES="1"
    )
    return Farm(master, tmp_path, processes)


def submit(farm: Farm, title: str, code: str, pid_file: Path, **fields: Any) -> int:
    if farm.api.get("/jobtypes/command").status_code == 404:
        assert farm.api.post("/jobtypes/", json={"name": "command"}).status_code == 201
    job = farm.api.post(
        "/jobs/",
        json={
            "title": title,
            "jobtype": "command",
            "start": 1,
            "end": 1,
            "requeue": 0,
            "data": {"command": [sys.executable, "-c", FRAME + code, str(pid_file)]},
            **fields,
        },
    )
    assert job.status_code == 201, job.text
    job_id: int = job.json()["id"]
    return job_id


def ended(farm: Farm, job_id: int) -> Callable[[], bool]:
    return lambda: farm.job(job_id)["state"] in ("failed", "done")


def gone(pid: int) -> bool:
    found = procs.stat(pid)
    return found is None or found.state in ("Z", "X")


def test_frames_past_their_limits_are_killed_and_fail_with_the_reason(
    farm: Farm, tmp_path: Path
) -> None:
    farm.start_agent("render01")
    slow_pid, hog_pid = tmp_path / "slow.pid", tmp_path / "hog.pid"
    started = time.monotonic()
    slow = submit(farm, "slow", "import time; time.sleep(30)", slow_pid, max_run_seconds=1)
    farm.wait(ended(farm, slow), "the slow frame to be killed", timeout=60)
    assert time.monotonic() - started < 30  # killed, not waited for
    (task,) = farm.tasks(slow)
    assert (task["state"], task["reason"]) == ("failed", "timeout")
    assert "max_run_seconds (1 s)" in task["last_error"]
    failures = farm.api.get(f"/jobs/{slow}/tasks/{task['id']}/failures").json()
    assert [(f["attempt"], f["reason"], f["agent_id"]) for f in failures] == [
        (1, "timeout", farm.agent_id("render01"))
    ]
    assert gone(int(slow_pid.read_text()))

    hog = submit(
        farm,
        "hog",
        "import time; held = b'x' * (300 * 2**20); time.sleep(30)",
        hog_pid,
        ram_max=100,
        max_run_seconds=60,
    )
    farm.wait(ended(farm, hog), "the frame over its ram_max to be killed", timeout=60)
    (task,) = farm.tasks(hog)
    assert (task["state"], task["reason"]) == ("failed", "ram")
    assert "over ram_max 100 MB" in task["last_error"]
    assert gone(int(hog_pid.read_text()))
    assert farm.job(hog)["state"] == "failed"


def test_a_restarted_agent_ends_the_frame_its_killed_predecessor_left(
    farm: Farm, tmp_path: Path
) -> None:
    agent = farm.start_agent("render02")
    pid_file = tmp_path / "orphan.pid"
    submit(farm, "long", "import time; time.sleep(120)", pid_file)
    farm.wait(pid_file.exists, "the frame to start")
    farm.wait(lambda: pid_file.read_text() != "", "the frame to write its pid")
    frame = int(pid_file.read_text())
    record = tmp_path / "render02" / RECORD_NAME
    farm.wait(
        lambda: record.exists() and f'"sid": {frame},' in record.read_text(),
        "the agent to record the frame's session",
    )
    agent.popen.kill()
    agent.popen.wait()
    assert not gone(frame)  # an orphan now, still rendering
    farm.start_agent("render02")  # the same data directory
    farm.wait(lambda: gone(frame), "the restarted agent to end the orphaned frame", timeout=30)
