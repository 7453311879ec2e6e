"""A fake render node: a small HTTP server on loopback that answers the master's calls as told
and records them. It never calls anything itself."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any]


class FakeAgent:
    """Answers ``POST /api/v1/assign`` with ``assign_answer`` (202 by default), ``GET
    /api/v1/tasks/`` with the tasks it accepted, and records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.hosts: list[str | None] = []
        """The Host header of each request."""
        self.assign_answer: Callable[[dict[str, Any]], Answer] = lambda body: (
            202,
            {"id": "assignment"},
        )
        self.tasks_answer: Callable[[], Answer] | None = None
        self.running: dict[int, dict[str, Any]] = {}
        self.changed = threading.Condition()
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self, body: Any) -> None:
                with agent.changed:
                    agent.requests.append((self.command, self.path, body))
                    agent.hosts.append(self.headers.get("Host"))
                    agent.changed.notify_all()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                status, answer = 202, dict[str, Any]()
                if self.path == "/api/v1/assign":
                    status, answer = agent.assign_answer(body)
                    if 200 <= status < 300:
                        for task in body["tasks"]:
                            agent.running[task["id"]] = task
                self._record(body)
                self._answer(status, answer)

            def do_GET(self) -> None:
                if agent.tasks_answer is not None:
                    status, answer = agent.tasks_answer()
                else:
                    status, answer = 200, list(agent.running.values())
                self._record(None)
                self._answer(status, answer)

            def do_DELETE(self) -> None:
                task_id = int(self.path.rsplit("/", 1)[1])
                known = agent.running.pop(task_id, None) is not None
                self._record(None)
                self._answer(202 if known else 204, None)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        # A short poll interval: ``close`` waits for the loop to notice.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def calls(self, method: str, path: str) -> list[Any]:
        return [body for m, p, body in self.requests if m == method and p == path]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), self.requests

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
