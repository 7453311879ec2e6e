"""The controls against real agents: ``farm serve`` and two ``farm agent``s on loopback.

Each frame writes ``pid_<frame>_<pid>`` when it starts, then waits while the file ``slow``
exists (two minutes at most) and writes ``frame_<frame>.txt``: a test holds frames running as
long as it needs, and checks that a stopped frame's process is really gone. (The farm agent
kills a stopped frame's whole process group; the frame here is a single process.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_farm import Farm
from tests.support.processes import Process, StartMaster

pytestmark = pytest.mark.e2e

FRAME = """
import os, pathlib, sys, time
d = pathlib.Path(sys.argv[1])
(d / ('pid_%s_%d' % (sys.argv[2], os.getpid()))).write_text('')
t0 = time.monotonic()
while (d / 'slow').exists() and time.monotonic() - t0 < 120:
    time.sleep(0.05)
(d / ('frame_%s.txt' % sys.argv[2])).open('a').write('rendered' + chr(10))
"""


class ControlledFarm(Farm):
    @property
    def slow(self) -> Path:
        return self.output / "slow"

    def submit_frames(self, frames: int) -> int:
        if self.api.get("/jobtypes/command").status_code == 404:
            assert self.api.post("/jobtypes/", json={"name": "command"}).status_code == 201
        job = self.api.post(
            "/jobs/",
            json={
                "title": "controlled",
                "jobtype": "command",
                "start": 1,
                "end": frames,
                "data": {"command": [sys.executable, "-c", FRAME, str(self.output), "{frame}"]},
            },
        )
        assert job.status_code == 201, job.text
        job_id: int = job.json()["id"]
        return job_id

    def pids(self) -> dict[int, list[int]]:
        """Each frame's processes, in no order."""
        found: dict[int, list[int]] = {}
        for path in self.output.glob("pid_*"):
            _, frame, pid = path.name.split("_")
            found.setdefault(int(float(frame)), []).append(int(pid))
        return found

    def running(self, job_id: int) -> list[dict[str, Any]]:
        """The job's running tasks, once each has started its process."""
        pids = self.pids()
        return [
            t for t in self.tasks(job_id) if t["state"] == "running" and int(t["frame"]) in pids
        ]

    def wait_running(self, job_id: int, count: int) -> list[dict[str, Any]]:
        """The running tasks as seen when ``count`` of them ran (read once: a second read
        could see a different moment)."""
        seen: list[dict[str, Any]] = []

        def ready() -> bool:
            seen[:] = self.running(job_id)
            return len(seen) == count

        self.wait(ready, f"{count} frames to run")
        return seen

    def wait_gone(self, frame: int) -> None:
        pids = self.pids()[frame]
        self.wait(lambda: not any(map(_alive, pids)), f"the processes of frame {frame} to end")

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.api.post(path, json=body or {})
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def idle(self) -> bool:
        """Whether neither agent holds an unfinished task."""
        return all(
            t["state"] in ("done", "failed", "canceled")
            for name in ("render01", "render02")
            for t in self.api.get(f"/agents/{self.agent_id(name)}/tasks").json()
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def farm(tmp_path: Path, processes: list[Process], start_master: StartMaster) -> ControlledFarm:
    master = start_master(
        FARM_WATCH_INTERVAL_SECONDS="0.5", FARM_AGENT_RETRY_DELAY="0.05", FARM_AGENT_RETRIES="1"
    )
    farm = ControlledFarm(master, tmp_path, processes)
    farm.slow.write_text("")
    farm.start_agent("render01")
    farm.start_agent("render02")
    farm.wait(lambda: len(farm.api.get("/agents/").json()) == 2, "both agents to announce")
    return farm


def test_stop_skip_and_retry_frames(farm: ControlledFarm) -> None:
    job_id = farm.submit_frames(4)
    a, b = farm.wait_running(job_id, 2)
    base = f"/jobs/{job_id}/tasks"
    stopped = farm.control(f"{base}/{a['id']}/stop")
    assert (stopped["state"], stopped["reason"]) == ("failed", "stopped")
    farm.wait_gone(int(a["frame"]))
    skipped = farm.control(f"{base}/{b['id']}/skip")
    assert (skipped["state"], skipped["skipped"]) == ("done", True)
    farm.wait_gone(int(b["frame"]))
    # The stopped frame runs again as a new attempt once retried.
    assert farm.control(f"{base}/{a['id']}/retry")["state"] == "queued"
    farm.slow.unlink()
    farm.wait(lambda: farm.job(job_id)["state"] == "done", "the job to finish")
    tasks = {t["id"]: t for t in farm.tasks(job_id)}
    assert tasks[a["id"]]["attempts"] == 2 and tasks[a["id"]]["failures"] == 0
    assert tasks[b["id"]]["skipped"] is True
    written = farm.frames_written()
    assert int(b["frame"]) not in written  # skipped while it ran: never finished
    assert written == {frame: 1 for frame in range(1, 5) if frame != int(b["frame"])}
    # A done frame retried runs again.
    done = next(t for t in tasks.values() if not t["skipped"])
    farm.control(f"{base}/retry", {"tasks": [done["id"]]})
    farm.wait(lambda: farm.job(job_id)["state"] == "done", "the retried frame to finish")
    assert farm.frames_written()[int(done["frame"])] == 2


def test_cancel_stops_running_frames_and_requeue_brings_the_job_back(
    farm: ControlledFarm,
) -> None:
    job_id = farm.submit_frames(4)
    running = farm.wait_running(job_id, 2)
    canceled = farm.control(f"/jobs/{job_id}/cancel")
    assert canceled["state"] == "canceled" and canceled["tasks"]["canceled"] == 4
    for task in running:
        farm.wait_gone(int(task["frame"]))
    farm.wait(farm.idle, "both agents to hold nothing")
    assert set(farm.pids()) == {int(t["frame"]) for t in running}  # nothing else started
    assert [j["state"] for j in farm.api.get("/jobs/").json()] == ["canceled"]
    farm.slow.unlink()
    requeued = farm.control(f"/jobs/{job_id}/requeue")
    assert requeued["state"] == "queued" and len(requeued["requeued"]) == 4
    farm.wait(lambda: farm.job(job_id)["state"] == "done", "the requeued job to finish")
    assert farm.frames_written() == {frame: 1 for frame in range(1, 5)}


def test_pause_lets_frames_finish_or_stops_them(farm: ControlledFarm) -> None:
    job_id = farm.submit_frames(4)
    first = farm.wait_running(job_id, 2)
    # finish: the running frames run on and finish; nothing else starts.
    paused = farm.control(f"/jobs/{job_id}/pause", {"running": "finish"})
    assert paused["state"] == "paused"
    assert all(_alive(pid) for t in first for pid in farm.pids()[int(t["frame"])])
    farm.slow.unlink()
    farm.wait(lambda: farm.job(job_id)["tasks"]["done"] == 2, "the running frames to finish")
    farm.wait(farm.idle, "both agents to hold nothing")
    job = farm.job(job_id)
    assert job["state"] == "paused" and job["tasks"]["queued"] == 2
    assert set(farm.frames_written()) == {int(t["frame"]) for t in first}
    # stop: the running frames are stopped and queued again, no failure counted.
    farm.slow.write_text("")
    assert farm.control("/bulk/jobs/resume", {"jobs": [job_id]})["results"][0]["ok"]
    second = farm.wait_running(job_id, 2)
    paused = farm.control(f"/jobs/{job_id}/pause", {"running": "stop"})
    assert paused["state"] == "paused" and paused["tasks"]["queued"] == 2
    for task in second:
        farm.wait_gone(int(task["frame"]))
    stopped = [t for t in farm.tasks(job_id) if t["id"] in {s["id"] for s in second}]
    assert all(t["state"] == "queued" and t["failures"] == 0 for t in stopped)
    farm.slow.unlink()
    farm.control(f"/jobs/{job_id}/resume")
    farm.wait(lambda: farm.job(job_id)["state"] == "done", "the resumed job to finish")
    assert farm.frames_written() == {frame: 1 for frame in range(1, 5)}
