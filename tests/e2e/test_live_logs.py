"""A running frame's log, followed on the master while the frame runs, through a restart of the
master in the middle of the frame: nothing lost, nothing doubled."""

from __future__ import annotations

import csv
import io
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Process, StartMaster, farm_command

pytestmark = pytest.mark.e2e

# Prints lines 1..100, waits for the file "go", prints 101..200, waits for "end". The lines
# are made up as it runs: the command, in the log's first line, does not hold them.
FRAME = (
    "import os, sys, time\n"
    "gate = sys.argv[1]\n"
    "def wait(name):\n"
    "    while not os.path.exists(os.path.join(gate, name)): time.sleep(0.02)\n"
    "for n in range(1, 101): print('line', n, flush=True)\n"
    "wait('go')\n"
    "for n in range(101, 201): print('line', n, flush=True)\n"
    "wait('end')\n"
)


def _wait(condition: Callable[[], bool], what: str, processes: list[Process]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    logs = "\n".join(p.output()[-3000:] for p in processes)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def _frame_lines(text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text)))
    return [row[2] for row in rows[1:] if len(row) == 3 and row[1] == "stdout"]


def test_log_chunks_survive_a_master_restart_in_the_middle_of_a_frame(
    tmp_path: Path, processes: list[Process], start_master: StartMaster
) -> None:
    master = start_master(FARM_WATCH_INTERVAL_SECONDS="0.5", FARM_AGENT_RETRY_DELAY="0.05")
    api = master.api()
    agent_dir = tmp_path / "render01"
    agent = Process(
        farm_command(
            "agent", "--master", master.url, "--port", "0", "--heartbeat", "0.5",
            "--retry-delay", "0.05", "--log-every", "0.2", "--hostname", "render01",
            "--data-dir", str(agent_dir),
        ),
        master.env,
        tmp_path / "agent.log",
    )  # fmt: skip
    processes.append(agent)
    gate = tmp_path / "gate"
    gate.mkdir()
    assert api.post("/jobtypes/", json={"name": "command"}).status_code == 201
    submitted = api.post(
        "/jobs/",
        json={
            "title": "chatty",
            "jobtype": "command",
            "start": 1,
            "end": 1,
            "data": {"command": [sys.executable, "-c", FRAME, str(gate)]},
        },
    )
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["id"]
    tasks: list[dict[str, object]] = []

    def running() -> bool:
        tasks[:] = api.get(f"/jobs/{job_id}/tasks/").json()
        return tasks[0]["state"] == "running"

    _wait(running, "the frame to run", processes)
    logs = f"/jobs/{job_id}/tasks/{tasks[0]['id']}/attempts/1/logs/"
    identifier: list[str] = []

    def registered() -> bool:
        identifier[:] = [log["identifier"] for log in api.get(logs).json()]
        return bool(identifier)

    _wait(registered, "the log to be registered", processes)
    logfile = f"{logs}{identifier[0]}/logfile"

    def arrived(last: int) -> Callable[[], bool]:
        def check() -> bool:
            answer = api.get(logfile)
            return answer.status_code == 200 and f"line {last}" in _frame_lines(answer.text)

        return check

    # The first half is on the master while the frame runs.
    _wait(arrived(100), "the first lines on the master", processes)
    assert api.get(f"/jobs/{job_id}/tasks/").json()[0]["state"] == "running"
    so_far = api.get(logfile).text
    assert _frame_lines(so_far) == [f"line {n}" for n in range(1, 101)]
    # A viewer asks only for what is new.
    assert api.get(logfile, params={"offset": len(so_far.encode())}).text == ""

    # The master goes away; the frame goes on writing; the chunks wait in the agent's outbox.
    master.stop()
    (gate / "go").touch()
    local = next((agent_dir / "logs").glob("*.csv"))

    def queued_chunks() -> int:
        with sqlite3.connect(agent_dir / "outbox.db") as outbox:
            row = outbox.execute(
                "SELECT COUNT(*) FROM messages WHERE range_start IS NOT NULL"
            ).fetchone()
            return int(row[0])

    _wait(
        lambda: "line 200" in _frame_lines(local.read_text()) and queued_chunks() > 0,
        "the second half to be written and queued",
        processes,
    )
    master.start_again()
    _wait(arrived(200), "the second half on the master", processes)
    (gate / "end").touch()
    _wait(lambda: api.get(f"/jobs/{job_id}").json()["state"] == "done", "the job to end", processes)
    _wait(lambda: queued_chunks() == 0, "the outbox to empty", processes)
    text = api.get(logfile).text
    assert _frame_lines(text) == [f"line {n}" for n in range(1, 201)]
    assert text.count("time,stream,line") == 1 and text.count("exit code 0") == 1
    assert text.encode() == local.read_bytes()
    listed = api.get(logs).json()
    assert listed[0]["size"] == len(local.read_bytes())
