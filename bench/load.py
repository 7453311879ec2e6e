"""A small load generator: keep-alive HTTP/1.1 over asyncio streams, many connections from one
process, recording each request's latency. Loopback only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Request = tuple[str, str, bytes | None]  # method, path, JSON body
Answered = Callable[[int, int, bytes, float, float], None]
"""Told of each answer: (request number, status, body, wall clock sent, wall clock answered)."""


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the server closes the connection after it)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    closes = status_line.startswith(b"HTTP/1.0")
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            closes = value.strip().lower() == b"close"
    body = await reader.readexactly(length) if length else b""
    return status, body, closes


async def _worker(
    port: int,
    make: Callable[[int], Request],
    deadline: float,
    result: Result,
    counter: list[int],
    limit: int | None,
    rate: float | None,
    worker: int,
    workers: int,
    answered: Answered | None,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.perf_counter()
    sent = 0
    try:
        while time.perf_counter() < deadline and (limit is None or counter[0] < limit):
            if rate is not None:  # open-loop pacing: this worker's share of `rate` per second
                due = start + sent * workers / rate + worker / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            counter[0] += 1
            number = counter[0]
            method, path, body = make(number)
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body or b'')}\r\n"
                "\r\n"
            ).encode()
            sent_at = time.time()
            began = time.perf_counter()
            writer.write(head + (body or b""))
            await writer.drain()
            status, answer, closes = await _read_response(reader)
            result.latencies.append(time.perf_counter() - began)
            if answered is not None:
                answered(number, status, answer, sent_at, time.time())
            sent += 1
            if status >= 400:
                result.errors += 1
            if closes:  # servers without keep-alive (gunicorn's sync workers): dial again
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def _run(
    port: int,
    make: Callable[[int], Request],
    connections: int,
    seconds: float,
    limit: int | None,
    rate: float | None,
    answered: Answered | None,
) -> Result:
    result = Result()
    counter = [0]
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(
        *(
            _worker(port, make, deadline, result, counter, limit, rate, n, connections, answered)
            for n in range(connections)
        )
    )
    result.seconds = time.perf_counter() - began
    return result


def load(
    port: int,
    make: Callable[[int], Request],
    *,
    connections: int = 16,
    seconds: float = 5.0,
    limit: int | None = None,
    rate: float | None = None,
    answered: Answered | None = None,
) -> Result:
    """Send requests from ``make(n)`` over ``connections`` for ``seconds`` (or ``limit``
    requests); with ``rate``, pace them at that many per second (open loop). ``answered``, if
    given, is told of every answer (its body too)."""
    return asyncio.run(_run(port, make, connections, seconds, limit, rate, answered))
