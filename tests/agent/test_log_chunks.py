"""A running frame's log leaves the agent in chunks, each at its offset, resent from where the
master says when it has less."""

from __future__ import annotations

import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from farm_agent.master import Master
from farm_agent.outbox import Outbox
from farm_agent.runner import Assignment, Runner, TaskRun
from tests.agent.test_agent import Recorder, assign_body


def test_a_running_frames_log_is_sent_before_the_frame_ends(tmp_path: Path) -> None:
    recorder = Recorder()
    seen: list[str] = []
    heard = threading.Condition()
    release = tmp_path / "release"

    def chunk(task: TaskRun, identifier: str, path: Path) -> None:
        with heard:
            seen.append(path.read_text())
            heard.notify_all()

    runner = Runner(
        tmp_path / "logs",
        recorder.report,
        lambda task, ident: None,
        lambda task, ident, path: recorder.logs.append((task.id, path.read_text())),
        lambda: None,
        kill_grace=2,
        log_chunk=chunk,
        log_every=0.05,
    )
    # The frame prints a line, then waits for the test to let it end (the lines are made up
    # as it runs: its command, in the log's first line, does not hold them).
    script = (
        "import os, sys, time\n"
        "print('first' + ' line', flush=True)\n"
        f"while not os.path.exists({str(release)!r}): time.sleep(0.02)\n"
        "print('last' + ' line')\n"
    )
    runner.start(Assignment(assign_body(1, command=[sys.executable, "-c", script])))
    try:
        with heard:
            assert heard.wait_for(lambda: any("first line" in text for text in seen), 30), seen
        assert not any(final for _, _, final in recorder.reports)  # still running
        assert all("last line" not in text for text in seen)
    finally:
        release.touch()  # the frame ends whatever the assertions found: nothing left running
    recorder.wait_final(1)
    assert recorder.reports[-1][1] == {"state": "done"}
    assert "last line" in recorder.logs[0][1] and "exit code 0" in recorder.logs[0][1]


class FakeLogMaster:
    """The master's append rules for one log, over a mock transport."""

    def __init__(self) -> None:
        self.stored = b""
        self.offsets: list[int] = []
        self.away = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.away:
            raise httpx.ConnectError("the master is down", request=request)
        offset = int(request.url.params["offset"])
        self.offsets.append(offset)
        if offset > len(self.stored):
            return httpx.Response(409, json={"error": "gap", "offset": len(self.stored)})
        self.stored += request.content[len(self.stored) - offset :]
        return httpx.Response(200, json={"offset": len(self.stored)})


def master_for(fake: FakeLogMaster) -> Master:
    master = Master("http://master.invalid")
    master._http = httpx.Client(transport=httpx.MockTransport(fake.handle))
    return master


def chunk_message(outbox: Outbox, path: Path, start: int, end: int) -> dict[str, Any]:
    outbox.put(
        "POST", "/jobs/1/tasks/2/attempts/1/logs/a.csv/chunks", body_file=path,
        content_type="text/csv", body_range=(start, end),
    )  # fmt: skip
    message = outbox.first()
    assert message is not None
    outbox.remove(message["seq"])
    return message


def test_chunks_are_sent_once_and_resent_from_where_the_master_is(tmp_path: Path) -> None:
    log = tmp_path / "a.csv"
    log.write_bytes(b"aaaabbbbcccc")
    outbox = Outbox(tmp_path / "outbox.db")
    fake = FakeLogMaster()
    master = master_for(fake)
    # The master lost the first chunk: it names the offset it has, the agent resends from it.
    assert master.send(chunk_message(outbox, log, 4, 8))
    assert fake.offsets == [4, 0] and fake.stored == b"aaaabbbb"
    # A chunk sent again (its answer lost) is stored once.
    third = chunk_message(outbox, log, 8, 12)
    assert master.send(third) and master.send(third)
    assert fake.stored == b"aaaabbbbcccc"
    # The master away: the message stays for later.
    fake.away = True
    log.write_bytes(b"aaaabbbbccccdd")
    fourth = chunk_message(outbox, log, 12, 14)
    assert not master.send(fourth)
    fake.away = False
    assert master.send(fourth) and fake.stored == b"aaaabbbbccccdd"


def test_an_outbox_from_before_log_chunks_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "method TEXT NOT NULL, path TEXT NOT NULL, body BLOB, body_file TEXT, "
        "content_type TEXT, headers TEXT NOT NULL, task_id INTEGER, final INTEGER)"
    )
    old.execute(
        "INSERT INTO messages (method, path, headers, task_id, final) "
        "VALUES ('POST', '/old', '{}', 1, 1)"
    )
    old.commit()
    old.close()
    outbox = Outbox(path)
    outbox.put("POST", "/new", body_file=tmp_path / "x", body_range=(0, 3))
    first = outbox.first()
    assert first is not None and first["path"] == "/old" and first["range_start"] is None
    outbox.remove(first["seq"])
    second = outbox.first()
    assert second is not None and (second["range_start"], second["range_end"]) == (0, 3)


def _chunks(outbox: Outbox) -> list[tuple[str, int, int]]:
    """The chunk messages queued, in order: (path, start, end); every message is taken out."""
    chunks = []
    while (message := outbox.first()) is not None:
        outbox.remove(message["seq"])
        if message["range_start"] is not None:
            chunks.append((message["path"], message["range_start"], message["range_end"]))
    return chunks


def test_a_followed_log_is_queued_in_chunks_each_byte_once(tmp_path: Path) -> None:
    log = tmp_path / "a.csv"
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.open_log(log, "/logs/a.csv/chunks", ("/logs/", {"identifier": "a.csv"}))
    registration = outbox.first()
    assert registration is not None and registration["path"] == "/logs/"
    assert outbox.open_logs() == {log: 0}
    outbox.log_chunk(log, 10)
    outbox.log_chunk(log, 10)  # nothing new: nothing queued
    outbox.log_chunk(log, 25)
    assert outbox.open_logs() == {log: 25}
    outbox.log_chunk(log, 30, last=True)
    assert outbox.open_logs() == {}
    outbox.log_chunk(log, 40, last=True)  # no longer followed: nothing more
    assert _chunks(outbox) == [
        ("/logs/a.csv/chunks", 0, 10),
        ("/logs/a.csv/chunks", 10, 25),
        ("/logs/a.csv/chunks", 25, 30),
    ]
    # An empty log's end still reaches the master (as an empty chunk), once.
    outbox.open_log(log, "/logs/b.csv/chunks", ("/logs/", {"identifier": "b.csv"}))
    outbox.log_chunk(log, 0, last=True)
    assert _chunks(outbox) == [("/logs/b.csv/chunks", 0, 0)]


def test_a_restarted_agent_sends_the_rest_of_the_logs_its_crash_interrupted(
    tmp_path: Path,
) -> None:
    from farm_agent.agent import Agent, AgentConfig

    logs = tmp_path / "logs"
    logs.mkdir()
    cut = logs / "cut.csv"  # its last row was being written when the agent died
    cut.write_bytes(b"time,stream,line\r\nt1,stdout,one\r\nt2,stdout,tw")
    whole = logs / "whole.csv"
    whole.write_bytes(b"time,stream,line\r\nt1,stdout,one\r\n")
    before = Outbox(tmp_path / "outbox.db")
    for path in (cut, whole):
        before.open_log(path, f"/logs/{path.name}/chunks", ("/logs/", {}))
        before.log_chunk(path, 18)  # the header was queued, then the agent died
    _chunks(before)  # ... and the master had those

    agent = Agent(
        AgentConfig(master="http://127.0.0.1:9", data_dir=tmp_path, port=0, cpus=4, ram=4096)
    )
    try:
        queued = _chunks(agent.outbox)
        assert agent.outbox.open_logs() == {}
    finally:
        agent.server.server_close()
    # Each ends with a line saying why; a cut row is ended first, not joined to it.
    assert cut.read_bytes().startswith(b"time,stream,line\r\nt1,stdout,one\r\nt2,stdout,tw\r\n")
    assert whole.read_bytes().startswith(b"time,stream,line\r\nt1,stdout,one\r\n2")
    for path in (cut, whole):
        assert path.read_bytes().endswith(b",agent,the agent stopped before the frame ended\r\n")
    assert sorted(queued) == [
        ("/logs/cut.csv/chunks", 18, cut.stat().st_size),
        ("/logs/whole.csv/chunks", 18, whole.stat().st_size),
    ]
