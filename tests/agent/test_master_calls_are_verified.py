"""The agent runs only what the master signed: every call but /status needs a fresh, unseen
signature under the agent's key, or it is 401 and nothing starts."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from farm_agent.agent import Agent, AgentConfig
from farm_agent.credentials import Credentials, CredentialStore
from farm_agent.signing import WINDOW, SeenNonces
from tests.agent.test_agent import assign_body

KEY = "a1" * 32
OTHER_KEY = "b2" * 32


def headers(
    key: str,
    method: str,
    path: str,
    body: bytes,
    *,
    at: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The master's signature, written out from the protocol's description."""
    timestamp = str(int(time.time() if at is None else at))
    nonce = nonce or hashlib.sha256(f"{time.monotonic_ns()}".encode()).hexdigest()[:32]
    message = f"{method}\n{path}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    return {
        "X-Farm-Timestamp": timestamp,
        "X-Farm-Nonce": nonce,
        "X-Farm-Signature": hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest(),
    }


class Node:
    """An agent serving on loopback, and a way to call it."""

    def __init__(self, tmp_path: Path, key: str | None) -> None:
        if key is not None:
            CredentialStore(tmp_path / "credentials.json").save(Credentials(signing_key=key))
        self.marker = tmp_path / "ran"
        self.agent = Agent(
            AgentConfig(master="http://127.0.0.1:9", data_dir=tmp_path, port=0, cpus=4, ram=4096)
        )
        self.base = f"http://127.0.0.1:{self.agent.port}"
        threading.Thread(target=self.agent.server.serve_forever, daemon=True).start()

    def body(self, task_id: int = 1) -> bytes:
        script = f"open({str(self.marker)!r}, 'a').write('ran\\n')"
        return json.dumps(assign_body(task_id, command=[sys.executable, "-c", script])).encode()

    def call(
        self, method: str, path: str, body: bytes = b"", sign: dict[str, str] | None = None
    ) -> httpx.Response:
        return httpx.request(method, self.base + path, content=body, headers=sign or {})

    def signed(self, method: str, path: str, body: bytes = b"", key: str = KEY) -> httpx.Response:
        return self.call(method, path, body, headers(key, method, path, body))

    def ran_nothing(self) -> bool:
        time.sleep(0.3)  # a started command would have written its marker by now
        return not self.agent.runner.assignments and not self.marker.exists()

    def close(self) -> None:
        self.agent.server.shutdown()
        self.agent.server.server_close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = Node(tmp_path, KEY)
    yield node
    node.agent.runner.stop_all()
    node.close()


def refused(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    error: str = response.json()["error"]
    return error


def test_a_signed_assignment_runs(node: Node) -> None:
    answer = node.signed("POST", "/api/v1/assign", node.body())
    assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + 20
    while not node.marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.marker.read_text() == "ran\n"
    assert node.signed("GET", "/api/v1/tasks/").status_code == 200


def test_an_unsigned_assignment_is_401_and_runs_nothing(node: Node) -> None:
    assert "unsigned" in refused(node.call("POST", "/api/v1/assign", node.body()))
    assert node.ran_nothing()


def test_a_signature_under_another_key_is_refused(node: Node) -> None:
    wrong = node.signed("POST", "/api/v1/assign", node.body(), key=OTHER_KEY)
    assert refused(wrong) == "wrong signature"
    assert node.ran_nothing()


@pytest.mark.parametrize("skew", [-(WINDOW + 5), WINDOW + 5])
def test_a_call_outside_the_window_is_refused(node: Node, skew: int) -> None:
    body = node.body()
    stale = headers(KEY, "POST", "/api/v1/assign", body, at=time.time() + skew)
    assert "timestamp" in refused(node.call("POST", "/api/v1/assign", body, stale))
    assert node.ran_nothing()


def test_a_replayed_call_is_refused(node: Node) -> None:
    signed = headers(KEY, "DELETE", "/api/v1/tasks/5", b"")
    assert node.call("DELETE", "/api/v1/tasks/5", b"", signed).status_code == 204
    assert "replayed" in refused(node.call("DELETE", "/api/v1/tasks/5", b"", signed))
    body = node.body()
    once = headers(KEY, "POST", "/api/v1/assign", body)
    assert node.call("POST", "/api/v1/assign", body, once).status_code == 202
    node.agent.runner.stop_all()
    assert "replayed" in refused(node.call("POST", "/api/v1/assign", body, once))


def test_a_tampered_body_or_path_is_refused(node: Node) -> None:
    body = node.body()
    signed = headers(KEY, "POST", "/api/v1/assign", body)
    other = body.replace(b"ran", b"pwn")
    assert refused(node.call("POST", "/api/v1/assign", other, signed)) == "wrong signature"
    update = headers(KEY, "POST", "/api/v1/update", body)
    assert refused(node.call("POST", "/api/v1/assign", body, update)) == "wrong signature"
    restart = headers(KEY, "POST", "/api/v1/assign", b"")
    assert refused(node.call("POST", "/api/v1/restart", b"", restart)) == "wrong signature"
    assert not node.agent.restart and not node.agent.shutting_down.is_set()
    assert node.ran_nothing()


def test_malformed_signature_headers_are_refused(node: Node) -> None:
    body = node.body()
    signed = headers(KEY, "POST", "/api/v1/assign", body)
    for name, value in [
        ("X-Farm-Timestamp", "soon"),
        ("X-Farm-Nonce", "x"),
        ("X-Farm-Signature", "00"),
    ]:
        answer = node.call("POST", "/api/v1/assign", body, {**signed, name: value})
        assert "malformed" in refused(answer)
    assert node.ran_nothing()


def test_an_agent_without_a_key_refuses_every_master_call(tmp_path: Path) -> None:
    node = Node(tmp_path, None)
    try:
        for method, path in [
            ("POST", "/api/v1/assign"),
            ("GET", "/api/v1/tasks/"),
            ("DELETE", "/api/v1/tasks/1"),
            ("POST", "/api/v1/update"),
            ("POST", "/api/v1/restart"),
        ]:
            body = node.body() if path.endswith("assign") else b""
            answer = node.signed(method, path, body)
            assert "no signing key" in refused(answer), (method, path)
        assert not node.agent.shutting_down.is_set()
        assert node.ran_nothing()
        assert node.call("GET", "/api/v1/status").status_code == 200  # not the master's alone
    finally:
        node.close()


def test_oversized_bodies_are_refused_before_anything_is_read(node: Node) -> None:
    with socket.create_connection(("127.0.0.1", node.agent.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/assign HTTP/1.1\r\nHost: agent\r\nContent-Length: 67108864\r\n\r\n{"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")


def test_nonces_are_forgotten_after_the_window_and_bounded() -> None:
    seen = SeenNonces(limit=2)
    assert seen.add("n1" * 8, expires=100, now=0) is None
    assert seen.add("n1" * 8, expires=100, now=50) is not None
    assert seen.add("n2" * 8, expires=100, now=50) is None
    assert "too many" in (seen.add("n3" * 8, expires=100, now=50) or "")
    assert seen.add("n3" * 8, expires=300, now=101) is None  # the first two expired
    assert len(seen) == 1
