"""Enrollment: the join token on the first announce, the agent's own credential (kept 0600)
from then on, the signing key kept from any announce answer, and a revoked agent stops."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from farm_agent.agent import Agent, AgentConfig, ShutOut
from farm_agent.credentials import Credentials, CredentialsError, CredentialStore

KEY = "c3" * 32
ROTATED = "d4" * 32

Answer = tuple[int, dict[str, Any]]


class FakeMaster:
    """Answers announces and heartbeats as told; records each request's Authorization."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        self.announce_answer: Callable[[], Answer] = lambda: (201, {"signing_key": KEY})
        self.heartbeat_answer: Answer = (200, {})
        master = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                master.seen.append((self.command, self.path, self.headers.get("Authorization")))
                announce = self.path.rstrip("/") == "/api/v1/agents"
                status, body = master.announce_answer() if announce else master.heartbeat_answer
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def authorizations(self) -> list[str | None]:
        return [auth for _, _, auth in self.seen]


@pytest.fixture
def master() -> Iterator[FakeMaster]:
    master = FakeMaster()
    yield master
    master.server.shutdown()
    master.server.server_close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    started: list[Agent] = []

    def start(master: FakeMaster, join_token: str | None = None) -> Agent:
        agent = Agent(
            AgentConfig(
                master=master.url,
                data_dir=tmp_path,
                port=0,
                cpus=2,
                ram=1024,
                join_token=join_token,
            )
        )
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.server.server_close()
        agent.master.close()


def test_a_join_token_buys_a_credential_used_from_then_on(
    master: FakeMaster, start: Callable[..., Agent], tmp_path: Path
) -> None:
    master.announce_answer = lambda: (201, {"credential": "farm_own", "signing_key": KEY})
    agent = start(master, join_token="farm_join")
    assert agent.announce()
    assert agent.heartbeat()
    assert master.authorizations() == ["Bearer farm_join", "Bearer farm_own"]
    stored = tmp_path / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text()) == {"credential": "farm_own", "signing_key": KEY}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary

    restarted = start(master, join_token="farm_join")  # the same data directory
    master.announce_answer = lambda: (200, {"signing_key": KEY})
    assert restarted.announce()
    assert master.authorizations()[-1] == "Bearer farm_own"
    assert CredentialStore(stored).load() == Credentials("farm_own", KEY)


def test_without_a_token_the_signing_key_is_still_kept(
    master: FakeMaster, start: Callable[..., Agent], tmp_path: Path
) -> None:
    agent = start(master)
    assert agent.announce()
    assert master.authorizations() == [None]
    assert CredentialStore(tmp_path / "credentials.json").load() == Credentials(None, KEY)
    master.announce_answer = lambda: (200, {"signing_key": ROTATED})  # a new master secret
    assert agent.announce()
    assert CredentialStore(tmp_path / "credentials.json").load().signing_key == ROTATED


def test_a_revoked_credential_shuts_the_agent_out(
    master: FakeMaster, start: Callable[..., Agent], tmp_path: Path
) -> None:
    CredentialStore(tmp_path / "credentials.json").save(Credentials("farm_old", KEY))
    agent = start(master, join_token="farm_join")
    master.heartbeat_answer = (401, {"error": "revoked"})
    with pytest.raises(ShutOut, match="no longer accepts"):
        agent.heartbeat()
    master.announce_answer = lambda: (401, {"error": "revoked"})
    with pytest.raises(ShutOut, match="no longer accepts.*credentials.json"):
        agent.announce()
    assert master.authorizations() == ["Bearer farm_old", "Bearer farm_old"]  # never the join


def test_a_refused_join_token_is_said_plainly(
    master: FakeMaster, start: Callable[..., Agent]
) -> None:
    master.announce_answer = lambda: (401, {"error": "bad token"})
    with pytest.raises(ShutOut, match="refused the join token"):
        start(master, join_token="farm_wrong").announce()
    with pytest.raises(ShutOut, match="--join-token"):
        start(master).announce()


def test_a_shut_out_agent_exits_non_zero(
    master: FakeMaster, start: Callable[..., Agent], tmp_path: Path
) -> None:
    CredentialStore(tmp_path / "credentials.json").save(Credentials("farm_old", KEY))
    master.announce_answer = lambda: (401, {"error": "revoked"})
    agent = start(master)
    assert agent.run() == 3


def test_unusable_or_open_credential_files(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    store = CredentialStore(path)
    assert store.load() == Credentials()
    path.write_text("{nope")
    with pytest.raises(CredentialsError, match="remove it"):
        store.load()
    path.write_text(json.dumps({"credential": "has spaces", "signing_key": KEY}))
    with pytest.raises(CredentialsError, match="remove it"):
        store.load()
    store.save(Credentials("farm_x", KEY))
    os.chmod(path, 0o644)
    assert store.load() == Credentials("farm_x", KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_malformed_answers_are_not_kept(master: FakeMaster, start: Callable[..., Agent]) -> None:
    master.announce_answer = lambda: (201, {"credential": "a b", "signing_key": "short"})
    agent = start(master)
    assert agent.announce()
    assert not agent.credentials.path.exists()
