"""A whole farm rendering a real Blender scene: ``farm serve`` and two ``farm agent``s, each
rendering through the ``bpy`` module; one agent SIGKILLed mid-job."""

from __future__ import annotations

import functools
import importlib.metadata
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_farm import Farm
from tests.support.blender_scene import HEIGHT, WIDTH, build_scene, needs_bpy, png_size
from tests.support.processes import Process, StartMaster

pytestmark = [pytest.mark.e2e, needs_bpy]


@pytest.fixture
def start_farm(
    tmp_path: Path, processes: list[Process], start_master: StartMaster
) -> Callable[[], Farm]:
    def start() -> Farm:
        # Short liveness: a busy agent silent for 2 s (it heartbeats every 0.5 s) is polled,
        # and one that does not answer goes offline with its tasks requeued.
        master = start_master(
            FARM_WATCH_INTERVAL_SECONDS="0.5",
            FARM_POLL_BUSY_SECONDS="2",
            FARM_POLL_IDLE_SECONDS="2",
            FARM_AGENT_RETRY_DELAY="0.05",
            FARM_AGENT_RETRIES="1",
            FARM_AGENT_CONNECT_TIMEOUT="0.5",
        )
        return Farm(master, tmp_path, processes)

    return start


def test_two_agents_render_a_blender_job_and_survive_a_killed_one(
    tmp_path: Path, start_farm: Callable[[], Farm]
) -> None:
    scene = build_scene(tmp_path / "shot.blend")
    farm = start_farm()
    version = importlib.metadata.version("bpy")
    # The catalogue knows Blender: the agents record theirs, and the job can require it.
    created = farm.api.post(
        "/software/",
        json={"software": "blender", "versions": [{"version": "4.2"}, {"version": version}]},
    )
    assert created.status_code == 201, created.text
    assert farm.api.post("/jobtypes/", json={"name": "blender"}).status_code == 201
    doomed = farm.start_agent("doomed")
    farm.start_agent("survivor")
    farm.wait(lambda: len(farm.api.get("/agents/").json()) == 2, "both agents to announce")

    def reported(name: str) -> bool:
        found = farm.api.get(f"/agents/{farm.agent_id(name)}/software").json()
        return bool(found == [{"software": "blender", "version": version}])

    for name in ("doomed", "survivor"):
        farm.wait(functools.partial(reported, name), f"{name} to report its Blender")
    output = tmp_path / "renders"
    job = farm.api.post(
        "/jobs/",
        json={
            "title": "shot",
            "jobtype": "blender",
            "start": 1,
            "end": 4,
            "software_requirements": [{"software": "blender", "min_version": "4.2"}],
            "data": {
                "file": str(scene),
                "output": str(output / "shot_####"),
                "format": "PNG",
                "engine": "CYCLES",
                "samples": 48,  # about a second a frame: the kill lands mid-frame
                "scene": "Shot",
            },
        },
    )
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    doomed_id = farm.agent_id("doomed")
    farm.wait(
        lambda: any(
            t["state"] == "running" and t["agent_id"] == doomed_id for t in farm.tasks(job_id)
        ),
        "the doomed agent to render",
    )
    doomed.popen.send_signal(signal.SIGKILL)
    doomed.popen.wait()

    farm.wait(lambda: farm.job(job_id)["state"] == "done", "the survivor to finish", timeout=60)
    tasks = farm.tasks(job_id)
    assert [t["frame"] for t in tasks] == [1.0, 2.0, 3.0, 4.0]
    assert all(t["state"] == "done" and t["failures"] == 0 for t in tasks), tasks
    assert any(t["attempts"] == 2 for t in tasks)  # the frame the killed agent was rendering
    assert farm.api.get(f"/agents/{doomed_id}").json()["state"] == "offline"
    images = [Path(t["outputs"][0]["path"]) for t in tasks]
    assert images == [(output / f"shot_{frame:04d}.png").resolve() for frame in range(1, 5)]
    assert all(len(t["outputs"]) == 1 for t in tasks)
    # The killed agent's orphaned render may have written its frame too: the same file.
    assert sorted(output.iterdir()) == images
    for task, image in zip(tasks, images, strict=True):
        assert png_size(image) == (WIDTH, HEIGHT)
        assert task["outputs"][0]["size"] > 0
    assert len({image.read_bytes() for image in images}) == 4  # the cube moves: frames differ
    finished = tasks[0]
    logs = farm.api.get(
        f"/jobs/{job_id}/tasks/{finished['id']}/attempts/{finished['attempts']}/logs/"
    ).json()
    text = farm.api.get(
        f"/jobs/{job_id}/tasks/{finished['id']}/attempts/{finished['attempts']}/logs/"
        f"{logs[0]['identifier']}/logfile"
    ).text
    assert "Sample 48/48" in text and "Saved: '" in text
