"""The ``blender`` job type in the agent: its data's rules, reading Blender's output, finding
Blender, and frames rendered for real through ``bpy`` (a tiny scene, 64x48, 4 samples)."""

from __future__ import annotations

import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm_agent import blender
from farm_agent.agent import Agent, AgentConfig
from farm_agent.blender import Renderer
from farm_agent.runner import Assignment, BlenderFrames, Runner
from tests.agent.test_agent import Recorder
from tests.agent.test_limits import wait_for_file
from tests.support.blender_scene import HEIGHT, WIDTH, build_scene, needs_bpy, png_size


def blender_body(*frames: int, **data: Any) -> dict[str, Any]:
    return {
        "job": {"id": 9, "title": "shot", "data": data, "environ": {}, "ram": 32, "cpus": 1},
        "jobtype": {"name": "blender", "version": 1},
        "tasks": [{"id": frame, "frame": float(frame), "attempt": 1} for frame in frames],
    }


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    agent = Agent(
        AgentConfig(master="http://127.0.0.1:9", data_dir=tmp_path, port=0, cpus=4, ram=4096)
    )
    yield agent
    agent.runner.stop_all()
    agent.server.server_close()


# -- data -------------------------------------------------------------------------------------

GOOD = {"file": "/farm/shot.blend", "output": "/farm/out/shot_####"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, 'needs data {"file"'),
        ({"output": "/o"}, "`data.file` must be a path"),
        ({"file": "", "output": "/o"}, "`data.file` must be a path"),
        ({"file": "/f\x00", "output": "/o"}, "`data.file` must be a path"),
        ({"file": "/f"}, "`data.output` must be a path"),
        ({**GOOD, "format": "TIFF"}, "`data.format` must be one of JPEG, OPEN_EXR, PNG"),
        ({**GOOD, "engine": "LUXCORE"}, "`data.engine` must be one of"),
        ({**GOOD, "samples": 0}, "`data.samples` must be a whole number"),
        ({**GOOD, "samples": 2.5}, "`data.samples` must be a whole number"),
        ({**GOOD, "samples": True}, "`data.samples` must be a whole number"),
        ({**GOOD, "resolution_percentage": 5000}, "`data.resolution_percentage`"),
        ({**GOOD, "scene": ""}, "`data.scene` must be a scene name"),
        ({**GOOD, "args": "-t 4"}, "`data.args` must be a list"),
        ({**GOOD, "args": [1]}, "`data.args` must be a list"),
        ({**GOOD, "command": ["rm"]}, "unknown key(s) in the blender job's data: command"),
    ],
)
def test_malformed_data_is_refused_with_400(agent: Agent, data: Any, message: str) -> None:
    status, answer = agent.assign(blender_body(1, **({} if data is None else data)))
    if data is None:
        status, answer = agent.assign({**blender_body(1), "job": {"id": 9, "data": None}})
    assert status == 400 and message in answer["error"], answer
    assert agent.runner.running_task_ids() == set()


def test_the_full_data_passes_and_fractional_frames_are_refused(agent: Agent) -> None:
    full = {
        **GOOD,
        "format": "OPEN_EXR",
        "engine": "BLENDER_EEVEE_NEXT",
        "samples": 16,
        "resolution_percentage": 50,
        "scene": "Shot",
        "args": ["-t", "2"],
    }
    assert blender.data_problem(full) is None
    body = blender_body(1, **GOOD)
    body["tasks"][0]["frame"] = 1.5
    status, answer = agent.assign(body)
    assert status == 400 and "whole frames" in answer["error"]


def test_an_agent_without_blender_refuses_blender_work(tmp_path: Path, agent: Agent) -> None:
    agent.blender = blender.RendererLookup(
        {"PATH": str(tmp_path), "FARM_AGENT_BLENDER_PYTHON": str(tmp_path / "no-python")}
    )
    assert agent.blender.get() is None  # looked for (at start-up), found none
    status, answer = agent.assign(blender_body(1, **GOOD))
    assert status == 400 and "has no Blender" in answer["error"]


def test_blender_work_is_accepted_at_once_while_blender_is_being_looked_for(
    tmp_path: Path, agent: Agent
) -> None:
    # A Blender binary that answers --version only once the test opens the gate.
    gate, asked = tmp_path / "gate", tmp_path / "asked"
    binary = fake_blender(
        tmp_path,
        f"open({str(asked)!r}, 'w').write('asked\\n')\n"
        f"while not os.path.exists({str(gate)!r}): time.sleep(0.01)\n"
        "print('Blender 4.2.3 LTS')",
    )
    agent.blender = blender.RendererLookup({"FARM_AGENT_BLENDER": str(binary)})
    looking = threading.Thread(target=agent.blender.get)
    looking.start()
    try:
        wait_for_file(asked)
        assert not agent.blender.known()
        # No .blend there: once the lookup ends, the frame fails on its own, not on the lookup.
        status, _ = agent.assign(blender_body(1, **GOOD))
        assert status == 202 and agent.runner.find(1) is not None
    finally:
        gate.write_text("open\n")
        looking.join(timeout=30)
    assert agent.blender.get() == Renderer("binary", str(binary), "4.2.3")


def test_frames_accepted_before_the_lookup_found_no_blender_fail_with_why(
    tmp_path: Path,
) -> None:
    recorder = Recorder()
    lookup = blender.RendererLookup({"PATH": str(tmp_path), "FARM_AGENT_BLENDER_PYTHON": "/no"})
    body = blender_body(1, **GOOD)
    runner_for(tmp_path, recorder).start(Assignment(body, BlenderFrames(body["job"], lookup)))
    recorder.wait_final(1)
    ((task_id, final, _),) = [r for r in recorder.reports if r[2]]
    assert task_id == 1 and final["state"] == "failed" and final["reason"] == "blender_error"
    assert "has no Blender" in final["last_error"]


# -- Blender's output -------------------------------------------------------------------------

CYCLES = (
    "Fra:1 Mem:12.31M (Peak 13.02M) | Time:00:01.23 | Remaining:00:02.11 | Mem:1.50M, "
    "Peak:2.00M | Scene, ViewLayer | Sample 16/128"
)


@pytest.mark.parametrize(
    ("line", "progress"),
    [
        (CYCLES, 16 / 128),
        ("Fra:1 Mem: 2M | Sample 4/4", 1.0),
        ("Fra:3 Mem:9M | Scene, ViewLayer | Rendered 3/4 Tiles, Sample 32/64", (2 + 0.5) / 4),
        ("Fra:3 Mem:9M | Scene, ViewLayer | Rendered 2/8 Tiles", 2 / 8),
        ("Fra:1 Mem:50M | Scene | Rendering 10 / 64 samples", 10 / 64),
        ("Fra:1 Mem:12.31M | Synchronizing object | Cube", None),
        ("Sample 3/0", None),
        ("00:00.675  render           | Saved: '/tmp/out_0002.png'", None),
    ],
)
def test_progress_is_read_from_blenders_lines(line: str, progress: float | None) -> None:
    assert blender.progress_of(line) == progress


@given(st.text(max_size=300))
def test_progress_read_from_any_line_is_a_fraction_or_nothing(line: str) -> None:
    found = blender.progress_of(line)
    assert found is None or 0.0 <= found <= 1.0


def test_the_watch_follows_progress_and_the_saved_files() -> None:
    watch = blender.FrameWatch()
    assert watch.line("Fra:2 Mem: 0M | Initializing") is None
    assert watch.line("Fra:2 Mem: 2M | Sample 1/4\rFra:2 Mem: 2M | Sample 2/4") == 0.5
    assert watch.line("Fra:2 Mem: 2M | Sample 2/4") is None  # no move, no report
    watch.line("00:00.6  render  | Saved: '/r/shot_0002.png'")
    watch.line("Saved: '/r/shot_0002.png'")
    assert watch.saved == ["/r/shot_0002.png"] and watch.frame_seen


@pytest.mark.parametrize(
    ("version", "asked", "passed"),
    [
        ("4.2.3", "BLENDER_EEVEE", "BLENDER_EEVEE_NEXT"),
        ("4.4.0", "BLENDER_EEVEE_NEXT", "BLENDER_EEVEE_NEXT"),
        ("5.0.1", "BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"),
        ("4.1", "BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"),
        ("5.0.1", "CYCLES", "CYCLES"),
        ("unknown", "BLENDER_EEVEE_NEXT", "BLENDER_EEVEE_NEXT"),
    ],
)
def test_eevee_is_passed_by_the_name_the_agents_blender_knows(
    version: str, asked: str, passed: str
) -> None:
    argv = blender.argv_for(Renderer("binary", "blender", version), {**GOOD, "engine": asked}, 1)
    assert argv[argv.index("-E") + 1] == passed


def test_the_binary_command_line() -> None:
    renderer = Renderer("binary", "/opt/blender/blender", "4.2.3")
    data = {
        **GOOD,
        "scene": "Shot",
        "engine": "CYCLES",
        "samples": 8,
        "format": "PNG",
        "args": ["-t", "2"],
    }
    argv = blender.argv_for(renderer, data, 12)
    expr = argv[argv.index("--python-expr") + 1]
    assert argv == [
        "/opt/blender/blender",
        "-b",
        "/farm/shot.blend",
        "-S",
        "Shot",
        "-E",
        "CYCLES",
        "--python-exit-code",
        "1",
        "--python-expr",
        expr,
        "-o",
        "/farm/out/shot_####",
        "-F",
        "PNG",
        "-t",
        "2",
        "-f",
        "12",
    ]
    assert "s.cycles.samples = 8" in expr
    assert blender.argv_for(renderer, GOOD, 1) == [
        "/opt/blender/blender",
        "-b",
        "/farm/shot.blend",
        "-o",
        "/farm/out/shot_####",
        "-f",
        "1",
    ]


# -- finding Blender --------------------------------------------------------------------------


def fake_blender(tmp_path: Path, body: str) -> Path:
    """An executable Python script standing in for a Blender binary."""
    path = tmp_path / "blender"
    path.write_text(f"#!{sys.executable}\nimport os, sys, time\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_blender_binary_is_found_by_its_variable_or_on_path(tmp_path: Path) -> None:
    binary = fake_blender(tmp_path, "print('Blender 4.2.3 LTS'); print('\\tbuild date: x')")
    assert blender.find_renderer({"FARM_AGENT_BLENDER": str(binary)}) == Renderer(
        "binary", str(binary), "4.2.3"
    )
    assert blender.find_renderer({"PATH": str(tmp_path)}) == Renderer(
        "binary", str(binary), "4.2.3"
    )


def test_without_binary_nor_bpy_there_is_no_blender(tmp_path: Path) -> None:
    environ = {"PATH": str(tmp_path), "FARM_AGENT_BLENDER_PYTHON": str(tmp_path / "python")}
    assert blender.find_renderer(environ) is None


@needs_bpy
def test_without_binary_the_bpy_module_is_found(tmp_path: Path) -> None:
    import importlib.metadata

    found = blender.find_renderer({"PATH": str(tmp_path)})
    assert found == Renderer("bpy", sys.executable, importlib.metadata.version("bpy"))


# -- frames on a fake binary: the limits, a crash, no file --------------------------------------


def runner_for(tmp_path: Path, recorder: Recorder) -> Runner:
    return Runner(
        tmp_path / "logs",
        recorder.report,
        lambda task, ident: None,
        lambda task, ident, path: recorder.logs.append((task.id, path.read_text())),
        lambda: None,
        kill_grace=1,
        check_interval=0.05,
    )


def render(
    tmp_path: Path, renderer: Renderer, frames: tuple[int, ...] = (1,), **job: Any
) -> Recorder:
    recorder = Recorder()
    data = job.pop("data")
    body = blender_body(*frames, **data)
    body["job"].update(job)
    runner_for(tmp_path, recorder).start(Assignment(body, BlenderFrames(body["job"], renderer)))
    recorder.wait_final(len(frames))
    return recorder


def finals(recorder: Recorder) -> dict[int, dict[str, Any]]:
    return {task: report for task, report, final in recorder.reports if final}


@pytest.fixture
def blend(tmp_path: Path) -> Path:
    path = tmp_path / "shot.blend"
    path.write_bytes(b"BLENDER-v500")  # enough for the fake binaries
    return path


def test_a_binary_frame_reports_progress_and_its_file(tmp_path: Path, blend: Path) -> None:
    binary = fake_blender(
        tmp_path,
        "out = sys.argv[sys.argv.index('-o') + 1].replace('####', '%04d' % int(sys.argv[-1]))\n"
        "for i in range(1, 5): print(f'Fra:{sys.argv[-1]} Mem:1M | Sample {i}/4', flush=True)\n"
        "open(out + '.png', 'wb').write(b'x' * 100)\n"
        "print(f\"Saved: '{out}.png'\")",
    )
    recorder = render(
        tmp_path,
        Renderer("binary", str(binary), "4.2.3"),
        (3,),
        data={"file": str(blend), "output": str(tmp_path / "f_####")},
    )
    done = finals(recorder)[3]
    assert done == {
        "state": "done",
        "outputs": [{"path": str((tmp_path / "f_0003.png").resolve()), "size": 100}],
    }
    progress = [r["progress"] for _, r, final in recorder.reports if "progress" in r]
    assert progress and progress[-1] == 1.0 and all(0 < p <= 1 for p in progress)


def test_a_missing_blend_fails_without_starting_blender(tmp_path: Path) -> None:
    binary = fake_blender(tmp_path, f"open({str(tmp_path / 'ran')!r}, 'w').write('ran')")
    recorder = render(
        tmp_path,
        Renderer("binary", str(binary), "4.2.3"),
        data={"file": str(tmp_path / "gone.blend"), "output": str(tmp_path / "f_")},
    )
    failed = finals(recorder)[1]
    assert (failed["state"], failed["reason"]) == ("failed", "blender_error")
    assert failed["last_error"] == f"no such .blend file: {tmp_path / 'gone.blend'}"
    assert not (tmp_path / "ran").exists()
    assert "no such .blend file" in recorder.logs[0][1]


def test_a_crash_fails_with_the_tail_of_blenders_output(tmp_path: Path, blend: Path) -> None:
    binary = fake_blender(
        tmp_path,
        "print('Fra:1 Mem:1M | Sample 1/4', flush=True)\n"
        "print('Writing: /tmp/blender.crash.txt', flush=True)\n"
        "import signal; os.kill(os.getpid(), signal.SIGSEGV)",
    )
    recorder = render(
        tmp_path,
        Renderer("binary", str(binary), "4.2.3"),
        data={"file": str(blend), "output": str(tmp_path / "f_")},
    )
    failed = finals(recorder)[1]
    assert (failed["state"], failed["reason"]) == ("failed", "blender_error")
    assert failed["last_error"].startswith(f"exit code {-11}: ")
    assert "Writing: /tmp/blender.crash.txt" in failed["last_error"]  # stdout's tail


def test_exiting_0_without_a_file_fails(tmp_path: Path, blend: Path) -> None:
    binary = fake_blender(tmp_path, "print('Fra:1 Mem:1M | Sample 4/4')")
    recorder = render(
        tmp_path,
        Renderer("binary", str(binary), "4.2.3"),
        data={"file": str(blend), "output": str(tmp_path / "f_")},
    )
    failed = finals(recorder)[1]
    assert failed["reason"] == "blender_error"
    assert failed["last_error"].startswith("Blender exited 0 but saved no file")


def test_the_jobs_limits_apply_to_blender_frames(tmp_path: Path, blend: Path) -> None:
    binary = fake_blender(
        tmp_path, "print('Fra:1 Mem:1M | Sample 1/4', flush=True)\ntime.sleep(60)"
    )
    recorder = render(
        tmp_path,
        Renderer("binary", str(binary), "4.2.3"),
        data={"file": str(blend), "output": str(tmp_path / "f_")},
        max_run_seconds=1,
    )
    failed = finals(recorder)[1]
    assert (failed["state"], failed["reason"]) == ("failed", "timeout")


def test_a_stopped_blender_frame_goes_back_to_the_queue(tmp_path: Path, blend: Path) -> None:
    started = tmp_path / "started"
    binary = fake_blender(
        tmp_path,
        f"open({str(started)!r}, 'w').write('x\\n')\nprint('Fra:1', flush=True)\ntime.sleep(60)",
    )
    recorder = Recorder()
    runner = runner_for(tmp_path, recorder)
    body = blender_body(1, file=str(blend), output=str(tmp_path / "f_"))
    runner.start(Assignment(body, BlenderFrames(body["job"], Renderer("binary", str(binary), "4"))))
    wait_for_file(started)
    assert runner.stop(1)
    recorder.wait_final(1)
    assert finals(recorder)[1] == {"state": "queued", "agent_id": None}


# -- real frames through bpy ------------------------------------------------------------------


@needs_bpy
def test_frames_render_for_real_through_bpy(tmp_path: Path) -> None:
    scene = build_scene(tmp_path / "shot.blend")
    renderer = blender.find_renderer({"PATH": str(tmp_path)})
    assert renderer is not None and renderer.kind == "bpy"
    recorder = render(
        tmp_path,
        renderer,
        (1, 4),
        data={
            "file": str(scene),
            "output": str(tmp_path / "out" / "shot_####"),
            "format": "PNG",
            "engine": "CYCLES",
            "samples": 2,
            "scene": "Shot",
        },
    )
    done = finals(recorder)
    assert {task: report["state"] for task, report in done.items()} == {1: "done", 4: "done"}
    images = {task: Path(report["outputs"][0]["path"]) for task, report in done.items()}
    assert images == {
        1: (tmp_path / "out" / "shot_0001.png").resolve(),
        4: (tmp_path / "out" / "shot_0004.png").resolve(),
    }
    for task, image in images.items():
        assert png_size(image) == (WIDTH, HEIGHT)
        assert done[task]["outputs"][0]["size"] == image.stat().st_size
    assert images[1].read_bytes() != images[4].read_bytes()  # the cube moved
    progress = [r["progress"] for _, r, _ in recorder.reports if "progress" in r]
    assert progress[-1] == 1.0 and all(0 <= p <= 1 for p in progress)
    assert "Sample 2/2" in recorder.logs[0][1]


@needs_bpy
def test_a_broken_blend_or_a_missing_scene_fails_with_blenders_message(tmp_path: Path) -> None:
    scene = build_scene(tmp_path / "shot.blend")
    renderer = blender.find_renderer({"PATH": str(tmp_path)})
    assert renderer is not None
    broken = tmp_path / "broken.blend"
    broken.write_bytes(b"not a blend file at all")
    recorder = render(
        tmp_path, renderer, (1,), data={"file": str(broken), "output": str(tmp_path / "x_")}
    )
    failed = finals(recorder)[1]
    assert (failed["state"], failed["reason"]) == ("failed", "blender_error")
    assert "Traceback" in failed["last_error"] and str(broken) in failed["last_error"]
    recorder = render(
        tmp_path / "again",
        renderer,
        (1,),
        data={"file": str(scene), "output": str(tmp_path / "x_"), "scene": "Nope"},
    )
    failed = finals(recorder)[1]
    assert (failed["state"], failed["reason"]) == ("failed", "blender_error")
    assert f"no scene named 'Nope' in {scene}" in failed["last_error"]
