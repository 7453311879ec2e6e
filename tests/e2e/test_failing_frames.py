"""Failing frames against a real farm: a job that fails on every agent ends failed with its
reason and comes back with `farm jobs requeue`; bad frames back off while the good ones are
rendered."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_farm import Farm, start_farm  # noqa: F401  # the fixture, shared
from tests.support.processes import farm_command

pytestmark = pytest.mark.e2e

# Writes the frame, unless the frame is bad or the marker file is missing: then exits 1.
RENDER_OR_FAIL = (
    "import pathlib, sys; "
    "out, frame, marker, bad = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]; "
    "ok = pathlib.Path(marker).exists() and frame not in bad.split(','); "
    "ok or sys.exit(1); "
    "(out / ('frame_%s.txt' % frame)).open('a').write('rendered\\n')"
)


def submit(farm: Farm, frames: int, marker: Path, bad: str = "", requeue: int = -1) -> int:
    if farm.api.get("/jobtypes/command").status_code == 404:
        assert farm.api.post("/jobtypes/", json={"name": "command"}).status_code == 201
    job = farm.api.post(
        "/jobs/",
        json={
            "title": "flaky",
            "jobtype": "command",
            "start": 1,
            "end": frames,
            "requeue": requeue,
            "data": {
                "command": [
                    sys.executable,
                    "-c",
                    RENDER_OR_FAIL,
                    str(farm.output),
                    "{frame}",
                    str(marker),
                    bad or "-",
                ]
            },
        },
    )
    assert job.status_code == 201, job.text
    job_id: int = job.json()["id"]
    return job_id


def test_a_job_failing_on_every_agent_fails_with_its_reason_then_requeue_completes_it(
    start_farm: Callable[..., Farm],  # noqa: F811
    tmp_path: Path,
) -> None:
    farm = start_farm(
        FARM_RETRY_DELAY_SECONDS="0.2",
        FARM_RETRY_DELAY_MAX_SECONDS="1",
        FARM_STUCK_JOB_SECONDS="2",
    )
    farm.start_agent("render01")
    farm.start_agent("render02")
    farm.wait(lambda: len(farm.api.get("/agents/").json()) == 2, "both agents to announce")
    marker = tmp_path / "license-ok"
    job_id = submit(farm, 3, marker)  # requeued forever: only the stuck rule ends it
    farm.wait(lambda: farm.job(job_id)["state"] == "failed", "the job to fail", timeout=120)
    job = farm.job(job_id)
    assert job["reason"] == "every eligible agent failed it 3 times"
    assert job["tasks"]["failed"] == 3
    blocklist = farm.api.get(f"/jobs/{job_id}/blocklist").json()
    assert {b["agent_id"] for b in blocklist if b["blocked"]} == {
        farm.agent_id("render01"),
        farm.agent_id("render02"),
    }
    assert all(b["failures"] >= 3 for b in blocklist)
    assert all(t["state"] == "failed" for t in farm.tasks(job_id))
    assert farm.frames_written() == {}
    # Explained: every agent is listed as blocklisted, the API and the CLI alike.
    explained = farm.api.get(f"/jobs/{job_id}/explain").json()
    assert (explained["can_run_now"], explained["note"]) == (False, job["reason"])
    assert [r["reason"] for r in explained["reasons"]] == ["finished", "no_queued_tasks"]
    assert [(g["reason"], g["count"]) for g in explained["agents"]] == [("blocklisted", 2)]
    assert {a["hostname"] for a in explained["agents"][0]["agents"]} == {"render01", "render02"}
    why = subprocess.run(
        farm_command("jobs", "why", str(job_id)),
        env=farm.master.env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert why.returncode == 0, why.stderr
    assert f"job {job_id} (flaky), failed: cannot run now" in why.stdout
    assert "blocklisted (2 agent(s))" in why.stdout

    marker.touch()  # the fix: the frames render from now on
    requeued = subprocess.run(
        farm_command("jobs", "requeue", str(job_id)),
        env=farm.master.env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert requeued.returncode == 0, requeued.stderr
    assert "requeued 3 failed task(s)" in requeued.stdout
    assert farm.api.get(f"/jobs/{job_id}/blocklist").json() == []
    farm.wait(lambda: farm.job(job_id)["state"] == "done", "the requeued job to finish")
    assert farm.job(job_id)["reason"] is None
    assert farm.frames_written() == {1: 1, 2: 1, 3: 1}


def test_bad_frames_back_off_while_the_agents_render_every_good_frame(
    start_farm: Callable[..., Farm],  # noqa: F811
    tmp_path: Path,
) -> None:
    """The issue's 250 frames with 5 bad ones, smaller: without the back-off, the bad frames'
    failures came in a burst, both agents were blocked, and good frames stayed queued."""
    farm = start_farm(FARM_RETRY_DELAY_SECONDS="4", FARM_RETRY_DELAY_MAX_SECONDS="60")
    farm.start_agent("render01")
    farm.start_agent("render02")
    farm.wait(lambda: len(farm.api.get("/agents/").json()) == 2, "both agents to announce")
    marker = tmp_path / "license-ok"
    marker.touch()
    bad = {3, 17}
    job_id = submit(farm, 30, marker, bad=",".join(map(str, sorted(bad))), requeue=2)
    farm.wait(lambda: farm.job(job_id)["state"] == "failed", "the job to end", timeout=120)
    tasks = {int(t["frame"]): t for t in farm.tasks(job_id)}
    assert {f for f, t in tasks.items() if t["state"] == "done"} == set(range(1, 31)) - bad
    assert {f: (t["state"], t["failures"]) for f, t in tasks.items() if f in bad} == {
        f: ("failed", 3) for f in bad
    }
    assert farm.frames_written() == {f: 1 for f in range(1, 31) if f not in bad}
    assert farm.job(job_id)["reason"] is None  # failed by its frames, not as stuck
