"""A `farm agent` SIGKILLed in the middle of a frame, after it wrote lines it had not sent yet:
restarted, it sends the rest of that frame's log, and the master's copy ends as the agent's
file does (nothing lost, nothing doubled)."""

from __future__ import annotations

import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_live_logs import _frame_lines, _wait
from tests.support.processes import Process, StartMaster, farm_command

pytestmark = pytest.mark.e2e

# Prints lines 1..20, waits for the file "go", then writes long lines (a few kB a second, so
# that they reach the agent's file between its chunks) until the file "end" appears.
FRAME = (
    "import os, sys, time\n"
    "gate = sys.argv[1]\n"
    "def there(name): return os.path.exists(os.path.join(gate, name))\n"
    "for n in range(1, 21): print('line', n, flush=True)\n"
    "while not there('go'): time.sleep(0.02)\n"
    "n = 0\n"
    "while not there('end'):\n"
    "    n += 1\n"
    "    print('long', n, 'x' * 1000, flush=True)\n"
    "    time.sleep(0.01)\n"
)
LOG_EVERY = 5.0
"""Seconds between the agent's chunks: the test kills it well within one of them."""


def _queued(outbox: Path) -> dict[str, int]:
    """The bytes of each followed log the agent has queued for the master (its outbox)."""
    with sqlite3.connect(outbox) as db:
        return {file: queued for file, queued in db.execute("SELECT file, queued FROM logs")}


def _pending(outbox: Path) -> int:
    with sqlite3.connect(outbox) as db:
        return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


def test_a_killed_agent_sends_the_rest_of_an_interrupted_frames_log_after_its_restart(
    tmp_path: Path, processes: list[Process], start_master: StartMaster
) -> None:
    master = start_master(FARM_WATCH_INTERVAL_SECONDS="0.5", FARM_AGENT_RETRY_DELAY="0.05")
    api = master.api()
    agent_dir = tmp_path / "render01"
    outbox = agent_dir / "outbox.db"

    def start_agent(n: int) -> Process:
        agent = Process(
            farm_command(
                "agent", "--master", master.url, "--port", "0", "--heartbeat", "0.5",
                "--retry-delay", "0.05", "--log-every", str(LOG_EVERY), "--hostname", "render01",
                "--data-dir", str(agent_dir),
            ),
            master.env,
            tmp_path / f"agent-{n}.log",
        )  # fmt: skip
        processes.append(agent)
        return agent

    agent = start_agent(1)
    gate = tmp_path / "gate"
    gate.mkdir()
    try:
        assert api.post("/jobtypes/", json={"name": "command"}).status_code == 201
        submitted = api.post(
            "/jobs/",
            json={
                "title": "chatty",
                "jobtype": "command",
                "start": 1,
                "end": 1,
                "requeue": 0,
                "data": {"command": [sys.executable, "-c", FRAME, str(gate)]},
            },
        )
        assert submitted.status_code == 201, submitted.text
        job_id = submitted.json()["id"]
        task_id = api.get(f"/jobs/{job_id}/tasks/").json()[0]["id"]
        logs = f"/jobs/{job_id}/tasks/{task_id}/attempts/1/logs/"
        identifier: list[str] = []

        def registered() -> bool:
            identifier[:] = [log["identifier"] for log in api.get(logs).json()]
            return bool(identifier)

        _wait(registered, "the log to be registered", processes)
        logfile = f"{logs}{identifier[0]}/logfile"

        def on_master(line: str) -> Callable[[], bool]:
            def check() -> bool:
                answer = api.get(logfile)
                return answer.status_code == 200 and line in _frame_lines(answer.text)

            return check

        # A first chunk reached the master while the frame runs.
        _wait(on_master("line 20"), "the first chunk on the master", processes)
        local = agent_dir / "logs" / identifier[0]
        (gate / "go").touch()

        def unsent_lines_on_disk() -> bool:
            queued = _queued(outbox).get(str(local.resolve()), 0)
            return local.stat().st_size > queued and "long 20" in local.read_text()

        _wait(unsent_lines_on_disk, "long lines written and not yet queued", processes)
        agent.popen.send_signal(signal.SIGKILL)
        agent.popen.wait(timeout=30)
        # What the master had not been sent: the agent's file holds more than it queued.
        queued = _queued(outbox)[str(local.resolve())]
        cut = local.read_bytes()
        assert len(cut) > queued, "the agent queued everything before it was killed"
        assert "long 20" not in _frame_lines(api.get(logfile).text)

        start_agent(2)

        def same_on_both() -> bool:
            text = api.get(logfile).content
            return _pending(outbox) == 0 and text == local.read_bytes() and len(text) > len(cut)

        _wait(same_on_both, "the master's copy to equal the agent's file", processes)
        final = local.read_bytes()
        assert final.startswith(cut)
        assert final.endswith(b",agent,the agent stopped before the frame ended\r\n")
        lines = _frame_lines(final.decode())
        # Whole long lines (the last one written may have been cut by the kill).
        longs = [line for line in lines if line.startswith("long ") and line.endswith("x" * 1000)]
        assert lines[:20] == [f"line {n}" for n in range(1, 21)]
        assert [line.split()[1] for line in longs] == [str(n) for n in range(1, len(longs) + 1)]
        assert len(longs) >= 20
        # The interrupted attempt is over on the master: its task is no longer running it.
        _wait(
            lambda: (
                api.get(f"/jobs/{job_id}/tasks/{task_id}").json()["state"] != "running"
                or api.get(f"/jobs/{job_id}/tasks/{task_id}").json()["attempts"] > 1
            ),
            "the master to take the interrupted task back",
            processes,
        )
    finally:
        (gate / "go").touch()
        (gate / "end").touch()  # whatever the assertions found, no frame waits for ever
