"""Reports kept on disk until the master has them: replayed in order when it is back."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Outbox:
    """A first-in first-out queue of HTTP requests in a small SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "method TEXT NOT NULL, path TEXT NOT NULL, body BLOB, body_file TEXT, "
            "content_type TEXT, headers TEXT NOT NULL, task_id INTEGER, final INTEGER)"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
        for column in ("range_start", "range_end"):
            if column not in columns:  # an outbox from before log chunks
                self._db.execute(f"ALTER TABLE messages ADD COLUMN {column} INTEGER")
        self._lock = threading.Lock()
        self.added = threading.Event()

    def put(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body_file: Path | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        task_id: int | None = None,
        final: bool = False,
        body_range: tuple[int, int] | None = None,
    ) -> None:
        """``body_range``: the body is these bytes (start, end) of ``body_file``, a chunk of a
        log (sent with its offset, and from an earlier one when the master asks)."""
        body = None if json_body is None else json.dumps(json_body).encode()
        start, end = body_range if body_range is not None else (None, None)
        with self._lock:
            self._db.execute(
                "INSERT INTO messages (method, path, body, body_file, content_type, headers, "
                "task_id, final, range_start, range_end) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    method,
                    path,
                    body,
                    None if body_file is None else str(body_file),
                    content_type,
                    json.dumps(headers or {}),
                    task_id,
                    int(final),
                    start,
                    end,
                ),
            )
        self.added.set()

    def first(self) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, method, path, body, body_file, content_type, headers, task_id, final, "
                "range_start, range_end FROM messages ORDER BY seq LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        keys = (
            "seq",
            "method",
            "path",
            "body",
            "body_file",
            "content_type",
            "headers",
            "task_id",
            "final",
            "range_start",
            "range_end",
        )
        message = dict(zip(keys, row, strict=True))
        message["headers"] = json.loads(message["headers"])
        return message

    def remove(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM messages WHERE seq = ?", (seq,))

    def pending_final_reports(self) -> set[int]:
        """Tasks whose final report the master has not received yet."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT task_id FROM messages WHERE final = 1 AND task_id IS NOT NULL"
            )
            return {row[0] for row in rows}

    def __len__(self) -> int:
        with self._lock:
            count: int = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
            return count

    def drain(
        self,
        send: Callable[[dict[str, Any]], bool],
        stop: threading.Event,
        backoff: Callable[[int], float],
    ) -> None:
        """Send messages in order until ``stop``; ``send`` returns False to retry later."""
        failures = 0
        while not stop.is_set():
            message = self.first()
            if message is None:
                self.added.wait(0.5)
                self.added.clear()
                continue
            if send(message):
                self.remove(message["seq"])
                failures = 0
            else:
                failures += 1
                stop.wait(backoff(failures))
