"""The agent's HTTP API, which the master calls (agent-protocol.md, agent side)."""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from farm_agent.signing import Verifier

log = logging.getLogger("farm_agent.server")

_TASK = re.compile(r"^/api/v1/tasks/(\d+)/?$")


class MasterCalls(Protocol):
    """What the server needs of the agent: an answer to each of the master's calls, as
    (status, body) where the agent decides the status."""

    @property
    def shutting_down(self) -> threading.Event: ...

    def assign(self, body: Any) -> tuple[int, Any]: ...

    def running_tasks(self) -> list[dict[str, Any]]: ...

    def status(self) -> dict[str, Any]: ...

    def stop_task(self, task_id: int) -> bool:
        """Whether the task was running (and is stopping now)."""

    def update(self, body: Any) -> tuple[int, Any]: ...

    def request_restart(self) -> tuple[int, Any]: ...


class AgentServer(ThreadingHTTPServer):
    """Answers the master's calls; every one but ``GET /status`` must carry the master's
    signature (``verifier``), else 401 and nothing runs."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], agent: MasterCalls, verifier: Verifier) -> None:
        self.agent = agent
        self.verifier = verifier
        super().__init__(address, _Handler)


MAX_BODY = 16 * 1024 * 1024
"""The largest body the master sends (an assignment with its job's data and environment)."""


class _Handler(BaseHTTPRequestHandler):
    server: AgentServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.command, self.path)

    def _send(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _raw_body(self) -> bytes | None:
        """The body, or None (answered already) when its length is missing sense or too big."""
        text = self.headers.get("Content-Length") or "0"
        if not text.isdigit():
            self.close_connection = True
            self._send(400, {"error": "bad Content-Length"})
            return None
        length = int(text)
        if length > MAX_BODY:
            self.close_connection = True
            self._send(413, {"error": f"bodies are limited to {MAX_BODY} bytes"})
            return None
        return self.rfile.read(length) if length else b""

    def _from_master(self, raw: bytes) -> bool:
        """Whether the call carries the master's signature; answers 401 when it does not."""
        refusal = self.server.verifier.refusal(self.command, self.path, self.headers, raw)
        if refusal is None:
            return True
        log.warning(
            "call refused",
            extra={
                "method": self.command,
                "path": self.path[:200],
                "peer": self.client_address[0],
                "reason": refusal,
            },
        )
        self._send(401, {"error": refusal})
        return False

    def do_GET(self) -> None:
        agent = self.server.agent
        path = self.path.rstrip("/")
        if path == "/api/v1/status":
            if agent.shutting_down.is_set():
                self._send(503, {"error": "this agent is shutting down"})
            else:
                self._send(200, agent.status())
            return
        if path != "/api/v1/tasks":
            self._send(404, {"error": f"no such resource {self.path}"})
            return
        raw = self._raw_body()
        if raw is None or not self._from_master(raw):
            return
        if agent.shutting_down.is_set():
            self._send(503, {"error": "this agent is shutting down"})
        else:
            self._send(200, agent.running_tasks())

    def do_POST(self) -> None:
        agent = self.server.agent
        path = self.path.rstrip("/")
        if path not in ("/api/v1/assign", "/api/v1/update", "/api/v1/restart"):
            self._send(404, {"error": f"no such resource {self.path}"})
            return
        raw = self._raw_body()
        if raw is None or not self._from_master(raw):
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            self._send(400, {"error": "the body is not JSON"})
            return
        if path == "/api/v1/assign":
            status, answer = agent.assign(body)
        elif path == "/api/v1/update":
            status, answer = agent.update(body)
        else:
            status, answer = agent.request_restart()
        self._send(status, answer)

    def do_DELETE(self) -> None:
        match = _TASK.match(self.path)
        if match is None:
            self._send(404, {"error": f"no such resource {self.path}"})
            return
        raw = self._raw_body()
        if raw is None or not self._from_master(raw):
            return
        known = self.server.agent.stop_task(int(match.group(1)))
        self._send(202 if known else 204, {"stopping": True} if known else None)
