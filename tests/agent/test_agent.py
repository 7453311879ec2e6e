"""The render-node program's parts: its answers, its runner, its outbox, its identity."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from farm_adapters.signing import signed_headers
from farm_agent.agent import Agent, AgentConfig, agent_id
from farm_agent.credentials import Credentials, CredentialStore
from farm_agent.outbox import Outbox
from farm_agent.runner import Assignment, Runner, TaskRun, command_for


def assign_body(
    *task_ids: int, command: Sequence[object] | None = None, **job: Any
) -> dict[str, Any]:
    return {
        "job": {
            "id": 7,
            "title": "t",
            "data": {"command": command or ["true"]},
            "environ": {},
            "by": 1,
            "batch": 1,
            "user": None,
            "ram": 32,
            "ram_warning": None,
            "ram_max": None,
            "cpus": 1,
            **job,
        },
        "jobtype": {"name": "command", "version": 1},
        "tasks": [{"id": task_id, "frame": float(task_id), "attempt": 1} for task_id in task_ids],
    }


KEY = "5" * 64


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    # The master URL names a closed loopback port: nothing here reaches a master.
    agent = Agent(
        AgentConfig(master="http://127.0.0.1:9", data_dir=tmp_path, port=0, cpus=4, ram=4096)
    )
    yield agent
    agent.server.server_close()


def test_the_id_survives_restarts(tmp_path: Path) -> None:
    first = agent_id(tmp_path)
    assert agent_id(tmp_path) == first
    (tmp_path / "agent_id").write_text("garbage")
    assert agent_id(tmp_path) != first


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"job": {}, "jobtype": {}, "tasks": [{"id": 1, "frame": 1}]}, "integer id"),
        ({**assign_body(1), "tasks": []}, "non-empty"),
        ({**assign_body(1), "tasks": [{"id": "1", "frame": 1}]}, "integer id and a numeric frame"),
        (assign_body(1, command=[1]), 'data {"command"'),
    ],
)
def test_bad_assignments_are_400(agent: Agent, body: object, message: str) -> None:
    status, answer = agent.assign(body)
    assert status == 400 and message in answer["error"]


def test_unknown_job_types_and_missing_resources_are_refused(agent: Agent) -> None:
    body = assign_body(1)
    status, answer = agent.assign({**body, "jobtype": {"name": "Maya", "version": 3}})
    assert status == 400 and "runs the built-in 'command' and 'blender'" in answer["error"]
    status, answer = agent.assign(assign_body(1, ram=10**9))
    assert (status, answer["error"]) == (400, "Not enough ram")
    status, answer = agent.assign(assign_body(1, cpus=64))
    assert (status, answer["error"]) == (400, "Not enough cpus")


def test_double_assignments_are_409_and_shutdown_is_503(agent: Agent) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    status, answer = agent.assign(assign_body(1, 2, command=sleeper))
    assert status == 202
    uuid.UUID(answer["id"])  # raises unless the assignment's id is a UUID
    first = answer["id"]
    status, answer = agent.assign(assign_body(2, 3, command=sleeper))
    assert status == 409 and answer["rejected_task_ids"] == [2]
    # The same call again (the master retrying after it lost the answer): the same answer.
    assert agent.assign(assign_body(1, 2, command=sleeper)) == (202, {"id": first})
    # The same tasks at other attempts are a conflict.
    again = assign_body(1, 2, command=sleeper)
    again["tasks"] = [{**task, "attempt": 2} for task in again["tasks"]]
    assert agent.assign(again)[0] == 409
    assert {t["id"] for t in agent.running_tasks()} == {1, 2}
    assert len(agent.runner.assignments) == 1
    assert agent.stop_task(1) and agent.stop_task(2)
    assert not agent.stop_task(99)
    agent.shutting_down.set()
    assert agent.assign(assign_body(5))[0] == 503


def test_substitution_of_frame_start_and_end() -> None:
    assert command_for(
        ["render", "-f", "{frame}", "{start}-{end}", "x{frame}y"], 12.0, 10, 14.5
    ) == ["render", "-f", "12", "10-14.5", "x12y"]


class Recorder:
    def __init__(self) -> None:
        self.reports: list[tuple[int, dict[str, Any], bool]] = []
        self.logs: list[tuple[int, str]] = []
        self.done = threading.Condition()

    def report(self, task: TaskRun, body: dict[str, Any], final: bool) -> None:
        with self.done:
            self.reports.append((task.id, body, final))
            self.done.notify_all()

    def wait_final(self, count: int) -> None:
        with self.done:
            assert self.done.wait_for(
                lambda: sum(final for _, _, final in self.reports) >= count, 30
            ), self.reports


def runner_for(tmp_path: Path, recorder: Recorder) -> Runner:
    return Runner(
        tmp_path / "logs",
        recorder.report,
        lambda task, ident: None,
        lambda task, ident, path: recorder.logs.append((task.id, path.read_text())),
        lambda: None,
        kill_grace=2,
    )


def test_a_batch_runs_in_order_and_reports_each_frame(tmp_path: Path) -> None:
    recorder = Recorder()
    runner = runner_for(tmp_path, recorder)
    script = "import sys, os; print('frame', sys.argv[1], os.environ['SHOT'])"
    body = assign_body(
        1, 2, command=[sys.executable, "-c", script, "{frame}"], environ={"SHOT": "010"}
    )
    body["job"]["environ"] = {"SHOT": "010"}
    runner.start(Assignment(body))
    recorder.wait_final(2)
    assert [(task, report["state"], final) for task, report, final in recorder.reports] == [
        (1, "running", False),
        (1, "done", True),
        (2, "running", False),
        (2, "done", True),
    ]
    assert "frame 1 010" in recorder.logs[0][1] and "exit code 0" in recorder.logs[0][1]


def test_a_failing_command_reports_its_exit_code_and_stderr(tmp_path: Path) -> None:
    recorder = Recorder()
    runner = runner_for(tmp_path, recorder)
    script = "import sys; print('boom: no license', file=sys.stderr); sys.exit(3)"
    runner.start(Assignment(assign_body(1, command=[sys.executable, "-c", script])))
    recorder.wait_final(1)
    final = recorder.reports[-1][1]
    assert final["state"] == "failed"
    assert (
        final["last_error"].startswith("exit code 3") and "boom: no license" in final["last_error"]
    )
    missing = Recorder()
    runner_for(tmp_path, missing).start(Assignment(assign_body(2, command=["/no/such/tool"])))
    missing.wait_final(1)
    assert "could not start" in missing.reports[-1][1]["last_error"]


def test_a_stopped_task_is_killed_with_its_children_and_handed_back(tmp_path: Path) -> None:
    recorder = Recorder()
    runner = runner_for(tmp_path, recorder)
    marker = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time; "
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(marker)!r}, 'w').write(str(child.pid)); time.sleep(60)"
    )
    runner.start(Assignment(assign_body(1, 2, command=[sys.executable, "-c", script])))
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.stop(1) and runner.stop(2)
    recorder.wait_final(2)
    finals = {task: report for task, report, final in recorder.reports if final}
    assert finals == {
        1: {"state": "queued", "agent_id": None},
        2: {"state": "queued", "agent_id": None},
    }
    child = int(marker.read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (
        not Path(f"/proc/{child}").exists()
        or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    )


def test_the_outbox_keeps_order_across_restarts(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.put("POST", "/a", json_body={"n": 1}, task_id=1, final=False)
    outbox.put("POST", "/b", json_body={"n": 2}, task_id=1, final=True)
    reopened = Outbox(tmp_path / "outbox.db")
    assert len(reopened) == 2 and reopened.pending_final_reports() == {1}
    sent: list[str] = []
    answers = iter([False, True, True])  # the master is away once, then back
    stop = threading.Event()

    def send(message: dict[str, Any]) -> bool:
        ok = next(answers)
        if ok:
            sent.append(message["path"])
        if len(sent) == 2:
            stop.set()
        return ok

    reopened.drain(send, stop, lambda failures: 0)
    assert sent == ["/a", "/b"] and len(reopened) == 0


def test_the_agent_http_api(tmp_path: Path) -> None:
    CredentialStore(tmp_path / "credentials.json").save(Credentials(signing_key=KEY))
    agent = Agent(
        AgentConfig(master="http://127.0.0.1:9", data_dir=tmp_path, port=0, cpus=4, ram=4096)
    )
    threading.Thread(target=agent.server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{agent.port}/api/v1"

        def call(method: str, path: str, body: bytes = b"") -> httpx.Response:
            headers = signed_headers(KEY, method, f"/api/v1{path}", body, time.time())
            return httpx.request(method, base + path, content=body, headers=headers)

        assert call("GET", "/tasks/").json() == []
        assert call("DELETE", "/tasks/5").status_code == 204
        assert call("POST", "/assign", b"{nope").status_code == 400
        accepted = call("POST", "/assign", json.dumps(assign_body(9)).encode())
        assert accepted.status_code == 202
        status = httpx.get(f"{base}/status").json()
        assert status["id"] == str(agent.id)
        assert call("POST", "/update", b"{}").status_code == 400
        assert httpx.get(f"{base}/nothing").status_code == 404
    finally:
        agent.server.shutdown()
        agent.server.server_close()
