"""The farm agent's failure policies on real subprocesses: a frame past its ``max_run_seconds``,
silent past its ``stall_seconds`` or holding more than its ``ram_max`` is killed with all its
processes and reported failed with the reason; a frame stopped by the master leaves nothing
running; what an agent that died left running is ended by its next start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm_adapters.signing import signed_headers
from farm_agent import procs
from farm_agent.agent import Agent, AgentConfig
from farm_agent.credentials import Credentials, CredentialStore
from farm_agent.limits import Limits
from farm_agent.orphans import RECORD_NAME, SessionRecord
from farm_agent.runner import Assignment, Runner
from tests.agent.test_agent import KEY, Recorder, assign_body

pytestmark = pytest.mark.skipif(not procs.has_proc(), reason="the agent's limits need /proc")


def runner_for(tmp_path: Path, recorder: Recorder, sessions: SessionRecord | None = None) -> Runner:
    return Runner(
        tmp_path / "logs",
        recorder.report,
        lambda task, ident: None,
        lambda task, ident, path: recorder.logs.append((task.id, path.read_text())),
        lambda: None,
        kill_grace=1,
        sessions=sessions,
        check_interval=0.05,
    )


def gone(pid: int) -> bool:
    """Whether the process has ended (a zombie waiting for a parent that does not reap counts:
    it runs nothing)."""
    found = procs.stat(pid)
    return found is None or found.state in ("Z", "X")


def wait_for_file(path: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.02)  # waiting for a subprocess to write it
    raise AssertionError(f"{path} was not written")


def family(tmp_path: Path, body: str) -> str:
    """A frame script that starts a child (same session) and writes both pids to ``pids``
    before doing ``body`` (the child sleeps)."""
    pids = tmp_path / "pids"
    return (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "import os\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}\\n')\n" + body
    )


def final_of(recorder: Recorder, task_id: int = 1) -> dict[str, Any]:
    recorder.wait_final(1)
    return next(report for task, report, final in recorder.reports if final and task == task_id)


def run_one(tmp_path: Path, script: str, **job: Any) -> tuple[dict[str, Any], list[int], float]:
    recorder = Recorder()
    started = time.monotonic()
    runner_for(tmp_path, recorder).start(
        Assignment(assign_body(1, command=[sys.executable, "-c", script], **job))
    )
    final = final_of(recorder)
    took = time.monotonic() - started
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    return final, pids, took


def test_a_frame_past_max_run_seconds_is_killed_with_its_children(tmp_path: Path) -> None:
    script = family(tmp_path, "print('rendering', flush=True); time.sleep(120)")
    final, pids, took = run_one(tmp_path, script, max_run_seconds=1)
    assert final["state"] == "failed" and final["reason"] == "timeout"
    assert "max_run_seconds (1 s)" in final["last_error"]
    assert took < 30
    assert all(gone(pid) for pid in pids)


def test_a_silent_frame_is_killed_as_stalled(tmp_path: Path) -> None:
    script = family(tmp_path, "print('loading', flush=True); time.sleep(120)")
    final, pids, _ = run_one(tmp_path, script, stall_seconds=1)
    assert (final["state"], final["reason"]) == ("failed", "stalled")
    assert all(gone(pid) for pid in pids)


def test_output_keeps_a_frame_alive_even_without_newlines(tmp_path: Path) -> None:
    recorder = Recorder()
    # 2.5 s of work, a progress counter redrawn every 0.2 s on stderr without a newline
    script = (
        "import sys, time\n"
        "for i in range(13):\n"
        "    sys.stderr.write(f'\\r{i}'); sys.stderr.flush(); time.sleep(0.2)\n"
    )
    runner_for(tmp_path, recorder).start(
        Assignment(assign_body(1, command=[sys.executable, "-c", script], stall_seconds=1))
    )
    assert final_of(recorder) == {"state": "done"}


def test_a_frame_whose_processes_hold_more_than_ram_max_is_killed(tmp_path: Path) -> None:
    # The child, not the frame's first process, holds the memory: the whole tree counts.
    hog = "import time; held = b'x' * (200 * 2**20); print('held', flush=True); time.sleep(120)"
    pids = tmp_path / "pids"
    script = (
        "import os, subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {hog!r}])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}\\n')\n"
        "time.sleep(120)\n"
    )
    final, found, _ = run_one(tmp_path, script, ram_max=100, max_run_seconds=60)
    assert (final["state"], final["reason"]) == ("failed", "ram")
    assert "over ram_max 100 MB" in final["last_error"]
    assert all(gone(pid) for pid in found)


def test_frames_within_their_limits_run_to_the_end(tmp_path: Path) -> None:
    script = family(tmp_path, "print('quick', flush=True)")
    final, pids, took = run_one(
        tmp_path, script, max_run_seconds=30, stall_seconds=30, ram_max=1000
    )
    assert final == {"state": "done"}
    # the child it left sleeping went with it, and did not hold the frame up
    assert took < 20 and all(gone(pid) for pid in pids)


def test_exit_codes_and_unstartable_commands_have_reasons_too(tmp_path: Path) -> None:
    recorder = Recorder()
    runner = runner_for(tmp_path, recorder)
    runner.start(Assignment(assign_body(1, command=[sys.executable, "-c", "exit(4)"])))
    assert final_of(recorder, 1)["reason"] == "exit"
    runner.start(Assignment(assign_body(2, command=["/no/such/renderer"])))
    recorder.wait_final(2)
    assert final_of(recorder, 2)["reason"] == "not_started"


@pytest.mark.parametrize(
    "job",
    [
        {"max_run_seconds": 0},
        {"stall_seconds": -5},
        {"ram_max": "lots"},
        {"max_run_seconds": 1.5},
        {"stall_seconds": True},
        {"max_run_seconds": 2**31},
    ],
)
def test_unusable_limits_are_refused(tmp_path: Path, job: dict[str, Any]) -> None:
    agent = Agent(
        AgentConfig(master="http://127.0.0.1:9", data_dir=tmp_path, port=0, cpus=4, ram=4096)
    )
    try:
        status, answer = agent.assign(assign_body(1, **job))
        assert status == 400 and "must be null or a whole number" in answer["error"]
        assert agent.runner.running_task_ids() == set()
    finally:
        agent.server.server_close()


def test_the_largest_limits_the_master_sends_are_taken(tmp_path: Path) -> None:
    agent = Agent(
        AgentConfig(master="http://127.0.0.1:9", data_dir=tmp_path, port=0, cpus=4, ram=4096)
    )
    try:
        body = assign_body(1, ram_max=2**31 - 1, max_run_seconds=2592000, stall_seconds=None)
        assert agent.assign(body)[0] == 202
    finally:
        agent.server.server_close()


limit = st.none() | st.integers(1, 10**6)
amount = st.floats(0, 2e6, allow_nan=False)


@given(limit, limit, limit, amount, amount, st.none() | amount)
def test_a_frame_is_killed_exactly_when_past_a_limit(
    max_run: int | None,
    stall: int | None,
    ram_max: int | None,
    running: float,
    silent: float,
    rss: float | None,
) -> None:
    limits = Limits(max_run, stall, ram_max)
    reason = limits.breach(running, silent, rss)
    past = {
        "ram": ram_max is not None and rss is not None and rss > ram_max,
        "timeout": max_run is not None and running > max_run,
        "stalled": stall is not None and silent > stall,
    }
    assert (reason is None) == (not any(past.values()))
    if reason is not None:
        assert past[reason]
        # memory first: a frame that is both over its memory and its time failed for memory
        assert reason == next(name for name, over in past.items() if over)


def test_a_stop_from_the_master_ends_the_whole_session(tmp_path: Path) -> None:
    """DELETE /tasks/<id>, signed as the master sends it: the frame, a child that ignores
    SIGTERM, and a grandchild in a process group of its own are all gone."""
    CredentialStore(tmp_path / "credentials.json").save(Credentials(signing_key=KEY))
    agent = Agent(
        AgentConfig(master="http://127.0.0.1:9", data_dir=tmp_path, port=0, cpus=4, ram=4096)
    )
    threading.Thread(target=agent.server.serve_forever, daemon=True).start()
    pids = tmp_path / "pids"
    stubborn = (
        "import signal, subprocess, sys, time, os\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],"
        " process_group=0)\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{g.pid}}\\n')\n"
        "time.sleep(120)\n"
    )
    script = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {stubborn!r}])\n"
        "time.sleep(120)\n"
    )
    try:
        base = f"http://127.0.0.1:{agent.port}/api/v1"

        def call(method: str, path: str, body: bytes = b"") -> httpx.Response:
            headers = signed_headers(KEY, method, f"/api/v1{path}", body, time.time())
            return httpx.request(method, base + path, content=body, headers=headers, timeout=30)

        body = assign_body(11, command=[sys.executable, "-c", script])
        assert call("POST", "/assign", json.dumps(body).encode()).status_code == 202
        found = [int(pid) for pid in wait_for_file(pids).split()]
        frame = agent.runner.find(11)
        assert frame is not None and frame.process is not None
        assert all(procs.stat(pid).sid == frame.process.pid for pid in found)  # type: ignore[union-attr]
        assert call("DELETE", "/tasks/11").status_code == 202
        assert all(gone(pid) for pid in [frame.process.pid, *found])
        deadline = time.monotonic() + 20
        while agent.runner.running_task_ids() and time.monotonic() < deadline:
            time.sleep(0.02)  # waiting for the frame's thread to report it handed back
        assert agent.runner.running_task_ids() == set()
        assert (tmp_path / RECORD_NAME).read_text() == "[]"
    finally:
        agent.server.shutdown()
        agent.server.server_close()


FAKE_AGENT = """
import sys, time
from pathlib import Path
from farm_agent.orphans import SessionRecord
from farm_agent.runner import Assignment, Runner

data = Path(sys.argv[1])
runner = Runner(
    data / "logs", lambda *a: None, lambda *a: None, lambda *a: None, lambda: None,
    sessions=SessionRecord(data / "frame_sessions.json"),
)
runner.start(Assignment({
    "job": {"id": 1, "data": {"command": sys.argv[2:]}},
    "jobtype": {"name": "command", "version": 1},
    "tasks": [{"id": 1, "frame": 1.0}],
}))
time.sleep(120)
"""


def test_a_restarted_agent_ends_what_its_killed_predecessor_left_running(tmp_path: Path) -> None:
    script = family(tmp_path, "time.sleep(120)")
    predecessor = subprocess.Popen(
        [sys.executable, "-c", FAKE_AGENT, str(tmp_path), sys.executable, "-c", script]
    )
    record = tmp_path / RECORD_NAME
    try:
        left = [int(pid) for pid in wait_for_file(tmp_path / "pids").split()]
        deadline = time.monotonic() + 20
        while f'"sid": {left[0]},' not in _text(record) and time.monotonic() < deadline:
            time.sleep(0.02)  # waiting for the predecessor to record the frame's session
    finally:
        predecessor.kill()
        predecessor.wait()
    assert not any(gone(pid) for pid in left)  # orphans now, still rendering
    assert [entry["sid"] for entry in json.loads(record.read_text())] == [left[0]]

    agent = Agent(
        AgentConfig(master="http://127.0.0.1:9", data_dir=tmp_path, port=0, cpus=4, ram=4096)
    )
    agent.server.server_close()
    assert all(gone(pid) for pid in left)
    assert not (tmp_path / RECORD_NAME).exists()


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_only_sessions_the_agent_started_are_ended(tmp_path: Path) -> None:
    """A recorded id now held by an unrelated process (another start time), or recorded in
    another boot, is left alone."""
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    try:
        started = procs.stat(bystander.pid)
        assert started is not None
        path = tmp_path / RECORD_NAME
        boot = procs.boot_id()
        for entry in (
            {"sid": bystander.pid, "start": started.start - 1, "boot": boot},
            {"sid": bystander.pid, "start": started.start + 1, "boot": boot},
            {"sid": bystander.pid, "start": started.start, "boot": "another-boot"},
        ):
            path.write_text(json.dumps([entry]))
            assert SessionRecord(path).end_leftovers(wait=0) == []
            assert bystander.poll() is None
            assert not path.exists()
        # the same entry with the right start time and boot is the agent's: it goes
        path.write_text(json.dumps([{"sid": bystander.pid, "start": started.start, "boot": boot}]))
        assert SessionRecord(path).end_leftovers() == [bystander.pid]
        assert bystander.wait(timeout=10) == -signal.SIGKILL
    finally:
        if bystander.poll() is None:
            os.kill(bystander.pid, signal.SIGKILL)
            bystander.wait()


def test_a_damaged_record_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / RECORD_NAME
    for text in (
        "{not json",
        '{"sid": 1}',
        json.dumps([{"sid": 1, "start": 0}, "x", {"sid": "2"}]),
    ):
        path.write_text(text)
        assert SessionRecord(path).end_leftovers(wait=0) == []
