"""The master's memory after hostile input, on loopback: JSON bodies past FARM_MAX_JSON_BYTES,
and a fake agent answering the master's calls with multi-MB and endless bodies."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx

from bench.load import Result

MIB = 1024 * 1024
MARGIN_MB = 20.0
"""How much the master's RSS may grow over a hostile scenario (its buffers are capped: a JSON
body at FARM_MAX_JSON_BYTES + 1, an agent's answer at 64 KiB, per request in flight)."""
OVERSIZED = 2 * MIB  # twice the default FARM_MAX_JSON_BYTES
HUGE_ANSWER = 8 * MIB
ENDLESS_CAP = 256 * MIB  # "endless": the fake agent stops writing here if nobody hung up


def verdict(before: float, after: float) -> str:
    within = "within" if after - before <= MARGIN_MB else "OVER"
    return f"RSS {before:.0f}→{after:.0f} MB, {within} {MARGIN_MB:.0f} MB"


def oversized_bodies(port: int, count: int, *, chunked: bool, threads: int = 8) -> Result:
    """``count`` job submissions of OVERSIZED bytes, with a declared length (refused before
    anything is read) or chunked (read up to the limit + 1); each should be a 413."""
    url = f"http://127.0.0.1:{port}/api/v1/jobs"
    body = b'{"title": "' + b"x" * (OVERSIZED - 13) + b'"}'
    headers = {"Content-Type": "application/json"}
    result = Result()

    def chunks() -> Iterator[bytes]:
        for offset in range(0, len(body), 64 * 1024):
            yield body[offset : offset + 64 * 1024]

    def send(n: int) -> tuple[float, bool]:
        began = time.perf_counter()
        try:
            with httpx.Client(timeout=30) as client:
                answer = client.post(url, content=chunks() if chunked else body, headers=headers)
            return time.perf_counter() - began, answer.status_code == 413
        except httpx.HTTPError:
            # The master may close the connection on a refused body it did not read.
            return time.perf_counter() - began, True

    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for latency, refused in pool.map(send, range(count)):
            result.latencies.append(latency)
            result.errors += not refused
    result.seconds = time.perf_counter() - began
    return result


class FakeAgent(http.server.BaseHTTPRequestHandler):
    """Answers every call with HUGE_ANSWER bytes of declared length, or (every other call) an
    endless body without a length, written until the master hangs up."""

    calls = 0
    lock = threading.Lock()

    def _answer(self) -> None:
        with FakeAgent.lock:
            FakeAgent.calls += 1
            endless = FakeAgent.calls % 2 == 0
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if endless:
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(HUGE_ANSWER))
        self.end_headers()
        chunk = b"[" + b" " * (64 * 1024 - 1)
        written = 0
        try:
            while written < (ENDLESS_CAP if endless else HUGE_ANSWER):
                self.wfile.write(chunk)
                written += len(chunk)
                chunk = b" " * len(chunk)
        except OSError:
            pass  # the master hung up: what it should do
        self.close_connection = True

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def fake_agent() -> Iterator[int]:
    """The fake agent's port on 127.0.0.1, served until the block ends."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeAgent)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def huge_answers(port: int, agent_port: int, agents: int, seconds: float) -> int:
    """Announce ``agents`` agents that all live at the fake agent, with a job to hand them,
    and let the master call them (assignments, and polls every sweep) for ``seconds``.
    Returns how many calls the fake agent answered."""
    FakeAgent.calls = 0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as api:
        api.post("/jobtypes", json={"name": "hostile"}).raise_for_status()
        job = {"title": "fed to fake agents", "jobtype": "hostile", "start": 1, "end": 500}
        api.post("/jobs", json=job).raise_for_status()
        for n in range(agents):
            body = {
                "id": str(uuid.uuid4()),
                "hostname": f"fake{n}",
                "ram": 8192,
                "free_ram": 4096,
                "cpus": 8,
                "port": agent_port,
                "state": "online",
            }
            api.post("/agents", json=body).raise_for_status()
    time.sleep(seconds)  # the master's sweeps call the fake agents meanwhile
    return FakeAgent.calls


def settled(rss: Callable[[], float]) -> float:
    time.sleep(1)  # let the last refused requests finish
    return rss()
