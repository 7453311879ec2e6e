"""`farm agent` downloads an update only for a version the master's rule allows, and writes
nothing outside its data directory whatever it is sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from farm_agent.agent import Agent, AgentConfig
from farm_agent.paths import OutsideDataDir, inside
from tests.agent.test_agent import assign_body


@pytest.fixture
def master() -> Iterator[tuple[str, list[str]]]:
    """A loopback master that serves an archive for any update asked for; yields its URL and
    the paths asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"PK-data")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


@pytest.fixture
def agent(tmp_path: Path, master: tuple[str, list[str]]) -> Iterator[Agent]:
    agent = Agent(
        AgentConfig(master=master[0], data_dir=tmp_path / "agent", port=0, cpus=4, ram=4096)
    )
    yield agent
    agent.master.close()
    agent.server.server_close()


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.02)


@pytest.mark.parametrize(
    "version",
    ["1?/../../../x", "../../x", "1.0/../../x", "1.0\n", "1.0\x00", "1..2", "1.0?x=1", "1" * 17],
)
def test_an_unsafe_update_version_is_refused_and_writes_nothing(
    agent: Agent, tmp_path: Path, master: tuple[str, list[str]], version: str
) -> None:
    before = files_under(tmp_path)
    status, answer = agent.update({"version": version})
    assert status == 400 and "not a valid agent version" in answer["error"]
    # A valid update after it: once its archive is there, any download the bad one started
    # would have been written too.
    assert agent.update({"version": "2.0"})[0] == 202
    wait_for(tmp_path / "agent" / "updates" / "farm-agent-2.0.zip")
    time.sleep(0.2)
    assert files_under(tmp_path) - before == {tmp_path / "agent" / "updates" / "farm-agent-2.0.zip"}
    assert master[1] == ["/api/v1/agents/updates/2.0"]


def test_a_valid_update_lands_in_the_data_dirs_updates(agent: Agent, tmp_path: Path) -> None:
    assert agent.update({"version": "1.2.3-rc1"}) == (202, {"version": "1.2.3-rc1"})
    target = tmp_path / "agent" / "updates" / "farm-agent-1.2.3-rc1.zip"
    wait_for(target)
    assert target.read_bytes() == b"PK-data"


def test_a_task_attempt_that_is_not_a_number_is_refused(agent: Agent, tmp_path: Path) -> None:
    body = assign_body(1)
    body["tasks"][0]["attempt"] = "1/../../../../escaped"
    status, answer = agent.assign(body)
    assert status == 400 and "attempt" in answer["error"]
    assert not list(tmp_path.rglob("*escaped*"))


def test_paths_resolve_inside_their_root_or_not_at_all(tmp_path: Path) -> None:
    assert inside(tmp_path, "logs", "a.csv") == tmp_path.resolve() / "logs" / "a.csv"
    for parts in [("..", "x"), ("a/../../x",), ("/etc/passwd",), (".",)]:
        with pytest.raises(OutsideDataDir):
            inside(tmp_path, *parts)
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(OutsideDataDir):
        inside(tmp_path, "link", "x")
