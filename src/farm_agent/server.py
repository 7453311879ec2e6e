"""The agent's HTTP API, which the master calls (agent-protocol.md, agent side)."""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

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
    daemon_threads = True

    def __init__(self, address: tuple[str, int], agent: MasterCalls) -> None:
        self.agent = agent
        super().__init__(address, _Handler)


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

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return _INVALID

    def do_GET(self) -> None:
        agent = self.server.agent
        if agent.shutting_down.is_set():
            self._send(503, {"error": "this agent is shutting down"})
        elif self.path.rstrip("/") == "/api/v1/tasks":
            self._send(200, agent.running_tasks())
        elif self.path.rstrip("/") == "/api/v1/status":
            self._send(200, agent.status())
        else:
            self._send(404, {"error": f"no such resource {self.path}"})

    def do_POST(self) -> None:
        agent = self.server.agent
        body = self._body()
        if body is _INVALID:
            self._send(400, {"error": "the body is not JSON"})
            return
        path = self.path.rstrip("/")
        if path == "/api/v1/assign":
            status, answer = agent.assign(body)
        elif path == "/api/v1/update":
            status, answer = agent.update(body)
        elif path == "/api/v1/restart":
            status, answer = agent.request_restart()
        else:
            status, answer = 404, {"error": f"no such resource {self.path}"}
        self._send(status, answer)

    def do_DELETE(self) -> None:
        match = _TASK.match(self.path)
        if match is None:
            self._send(404, {"error": f"no such resource {self.path}"})
            return
        known = self.server.agent.stop_task(int(match.group(1)))
        self._send(202 if known else 204, {"stopping": True} if known else None)


_INVALID = object()
