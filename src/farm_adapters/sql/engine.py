"""Engines: SQLite (the embedded default) and PostgreSQL, selected by URL."""

from __future__ import annotations

import os
import sqlite3
import threading

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

try:
    import fcntl
except ImportError:  # not POSIX: threads of one process still take turns
    fcntl = None  # type: ignore[assignment]  # the module is absent off POSIX

READ_ONLY = "farm_read_only"
"""Key in a connection's ``info``: its transactions only read (SQLite: plain BEGIN)."""


def create_database_engine(url: str, *, pool_size: int = 8, pre_ping: bool = True) -> Engine:
    """An engine for ``url``: ``sqlite:///path`` or ``postgresql://...`` (psycopg 3).

    ``pre_ping=False`` is for the web workers: a ping is a round trip on every checkout (one in
    seven of a heartbeat's). There a connection the server dropped fails its first statement
    instead; SQLAlchemy then discards the pool's older connections and the unit of work answers
    Unavailable (503, Retry-After), so one request per worker sees a database restart. Queue
    consumers keep pinging: a queue job that failed that way would be lost.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=pre_ping,
            pool_recycle=3600,
        )
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # BEGIN is ours to issue (below); pysqlite would defer it to the first write.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    # Writers take the write lock up front: a deferred transaction that later writes can fail
    # with "database is locked" without waiting for busy_timeout. BEGIN is issued by the
    # dialect's do_begin rather than a "begin" event: any connection event makes SQLAlchemy
    # dispatch events around every statement (15% of the instructions of a heartbeat).
    def _begin(dbapi_connection: PoolProxiedConnection) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("BEGIN" if dbapi_connection.info.get(READ_ONLY) else "BEGIN IMMEDIATE")
        cursor.close()

    engine.dialect.do_begin = _begin  # type: ignore[method-assign]  # replacing the hook is the point
    return engine


class SqliteWriterLock:
    """Writers of one SQLite database take turns here before ``BEGIN IMMEDIATE``.

    Threads of a process queue on a lock; processes (the web workers, the embedded consumer)
    queue on ``flock`` of a file beside the database, which wakes the next writer as soon as the
    last one commits. Without it they meet in SQLite's busy handler, which sleeps 1, 2, 5 ... up
    to 100 ms between retries: with two web workers, heartbeat p99 was 196 ms (10k agents).
    """

    def __init__(self, database_path: str | None) -> None:
        self._threads = threading.Lock()
        self._path = None if not database_path else database_path + "-writer.lock"
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int | None:
        if self._path is None or fcntl is None:
            return None
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self) -> None:
        self._threads.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


def sqlite_writer_lock(engine: Engine) -> SqliteWriterLock | None:
    """The writer lock for a SQLite engine's database (None for other databases)."""
    if engine.dialect.name != "sqlite":
        return None
    path = engine.url.database
    return SqliteWriterLock(None if not path or path == ":memory:" else os.path.abspath(path))
