"""Reports kept on disk until the master has them: replayed in order when it is back."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
        # The logs of frames that may still write: how far each is in the messages. Kept with
        # them (one transaction), so that after a crash the agent knows what it has not sent.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS logs "
            "(file TEXT PRIMARY KEY, path TEXT NOT NULL, queued INTEGER NOT NULL)"
        )
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
        with self._lock:
            self._insert(
                method,
                path,
                json_body=json_body,
                body_file=body_file,
                content_type=content_type,
                headers=headers,
                task_id=task_id,
                final=final,
                body_range=body_range,
            )
        self.added.set()

    def _insert(
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
        body = None if json_body is None else json.dumps(json_body).encode()
        start, end = body_range if body_range is not None else (None, None)
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

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        self.added.set()

    def open_log(self, file: Path, chunks_path: str, register: tuple[str, Any]) -> None:
        """A frame's log starts: its registration (``register``: the path and JSON body) is
        queued, and the log is followed from byte 0 on, its chunks to go to ``chunks_path``."""
        with self._transaction():
            self._insert("POST", register[0], json_body=register[1])
            self._db.execute(
                "INSERT OR REPLACE INTO logs (file, path, queued) VALUES (?, ?, 0)",
                (str(file), chunks_path),
            )

    def log_chunk(self, file: Path, size: int, *, last: bool = False) -> None:
        """Queue ``file``'s bytes beyond those queued already, up to ``size``, as a chunk at
        their offset. ``last``: the log is complete, and stops being followed (its first chunk
        goes even if empty, so that the master has the log). A file not followed is left."""
        with self._transaction():
            row = self._db.execute(
                "SELECT path, queued FROM logs WHERE file = ?", (str(file),)
            ).fetchone()
            if row is None:
                return
            path, queued = row
            if size > queued or (last and queued == 0):
                self._insert(
                    "POST",
                    path,
                    body_file=file,
                    content_type="text/csv",
                    body_range=(queued, max(size, queued)),
                )
            if last:
                self._db.execute("DELETE FROM logs WHERE file = ?", (str(file),))
            elif size > queued:
                self._db.execute("UPDATE logs SET queued = ? WHERE file = ?", (size, str(file)))

    def open_logs(self) -> dict[Path, int]:
        """The logs followed and not complete, with the bytes queued of each: after a crash,
        those of the frames it interrupted."""
        with self._lock:
            rows = self._db.execute("SELECT file, queued FROM logs ORDER BY file").fetchall()
        return {Path(file): queued for file, queued in rows}

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
