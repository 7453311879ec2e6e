"""The dashboard's live updates: a server-sent-events stream that says when the farm changed.

Each web worker polls the database for a change marker (``LiveUpdates.marker``) once every
``interval`` seconds while at least one page listens, whatever the number of pages: the stream
of each page waits on that one watcher. A stream is bounded: at most ``max_clients`` per worker
(beyond: 503, the page keeps its noscript refresh and the browser retries), a heartbeat comment
every ``heartbeat`` seconds (proxies keep the connection; a gone client is noticed), and it ends
after ``lifetime`` seconds (``FARM_DASHBOARD_LIVE_SECONDS``; the browser's EventSource
reconnects by itself). Under ``farm serve`` the front awaits ``EventStream.ready`` on its event
loop between chunks, so a waiting page holds no thread (see farm_http.front); a plain WSGI
server waits on a thread at most ``step`` seconds at a time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from farm_domain.errors import Unavailable

log = logging.getLogger("farm.http.live")

POLL_SECONDS = 1.0
MAX_CLIENTS = 64
HEARTBEAT_SECONDS = 15.0
LIFETIME_SECONDS = 300.0
RETRY_MILLISECONDS = 2000


class ChangeWatch:
    """One per process: reads the marker every ``interval`` seconds on a thread of its own while
    a client listens, and counts the changes (``version``)."""

    def __init__(
        self,
        read: Callable[[], str],
        *,
        interval: float = POLL_SECONDS,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._read = read
        self._interval = interval
        self._max_clients = max_clients
        self._changed = threading.Condition()
        self._clients = 0
        self._version = 0
        self._thread: threading.Thread | None = None

    @property
    def version(self) -> int:
        return self._version

    @property
    def clients(self) -> int:
        return self._clients

    def connect(self) -> bool:
        """One more listening page, unless there are ``max_clients`` already (False)."""
        with self._changed:
            if self._clients >= self._max_clients:
                return False
            self._clients += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._poll, name="farm-live", daemon=True)
                self._thread.start()
            return True

    def disconnect(self) -> None:
        with self._changed:
            self._clients -= 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """The version once it differs from ``seen``, or after ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != seen, timeout)
            return self._version

    def _poll(self) -> None:
        last: str | None = None
        marker: str | None
        while True:
            try:
                marker = self._read()
            except Unavailable as error:
                log.warning("live updates: no change marker", extra={"error": error.message})
                marker = last
            with self._changed:
                if last is not None and marker != last:
                    self._version += 1
                    self._changed.notify_all()
                last = marker
                # The last page gone: the thread ends (the next page starts another).
                if self._clients == 0:
                    self._thread = None
                    return
                self._changed.wait_for(lambda: self._clients == 0, self._interval)


class EventStream:
    """One page's stream: a ``change`` event whenever the watcher sees one, a heartbeat comment
    when nothing was sent for a while, and its end after its lifetime."""

    def __init__(
        self,
        watch: ChangeWatch,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        lifetime: float = LIFETIME_SECONDS,
        step: float = POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._watch = watch
        self._heartbeat = heartbeat
        self._step = step
        self._clock = clock
        self._seen = watch.version
        now = clock()
        self._ends = now + lifetime
        self._sent = now
        self._started = False
        self._closed = False

    def __iter__(self) -> EventStream:
        return self

    def _due(self) -> bool:
        now = self._clock()
        return now >= self._ends or now - self._sent >= self._heartbeat

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        if not self._started:
            self._started = True
            return f"retry: {RETRY_MILLISECONDS}\n: connected\n\n".encode()
        if self._clock() >= self._ends:
            self.close()
            raise StopIteration
        version = self._watch.version
        if version == self._seen and not self._due():
            version = self._watch.wait(self._seen, self._step)
        if version != self._seen:
            self._seen = version
            self._sent = self._clock()
            return f"event: change\ndata: {version}\n\n".encode()
        if self._due():
            self._sent = self._clock()
            return b": heartbeat\n\n"
        return b""

    async def ready(self) -> None:
        """Returns once the next chunk has something to say: a change, a heartbeat, the end."""
        while self._watch.version == self._seen and not self._due() and not self._closed:
            await asyncio.sleep(0.2)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._watch.disconnect()
