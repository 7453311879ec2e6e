"""The unit of work: one connection and transaction, its repositories, and the errors that
mean the database is unavailable for now."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from farm_adapters.sql.agents import SqlAgentRepository
from farm_adapters.sql.blocklist import SqlBlocklistRepository
from farm_adapters.sql.catalogue import SqlJobTypeRepository, SqlSoftwareRepository
from farm_adapters.sql.engine import READ_ONLY, SqliteWriterLock, sqlite_writer_lock
from farm_adapters.sql.events import SqlEventRepository
from farm_adapters.sql.history import SqlHistoryRepository
from farm_adapters.sql.identities import (
    SqlSessionRepository,
    SqlTokenRepository,
    SqlUserRepository,
)
from farm_adapters.sql.jobs import SqlJobRepository, SqlTaskLogRepository, SqlTaskRepository
from farm_adapters.sql.scheduling import SqlSchedulingRepository
from farm_domain.errors import AlreadyExists, Conflict, Unavailable

log = logging.getLogger("farm.database")

# What "retry shortly" is the honest answer to; anything else stays a bug (500).
_RETRY_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"}
_RETRY_MESSAGES = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "unable to open database",
    "connection",
    "could not connect",
    "server closed",
)


def _raise_if_unavailable(error: BaseException) -> None:
    """A lost or refused connection, a lock not obtained in time, a deadlock or serialization
    failure, a server shutting down: the database is Unavailable for now (503, retry). Other
    errors (a missing table or column, a constraint) are bugs and stay what they are."""
    if not isinstance(error, DBAPIError):
        return
    state = getattr(error.orig, "sqlstate", None)
    if state:
        retry = state.startswith("08") or state in _RETRY_SQLSTATES
    else:  # SQLite, or no connection to have a state on
        text = str(error.orig).lower()
        retry = isinstance(error, OperationalError) and any(m in text for m in _RETRY_MESSAGES)
    if error.connection_invalidated or retry:
        raise Unavailable("the database is unavailable; retry shortly") from error


def _raise_if_conflict(error: BaseException) -> None:
    """A unique or foreign-key violation that reached the unit of work: two requests raced
    (the repositories insert with ON CONFLICT where a race is expected; this is the backstop
    for the others, such as a rename onto a name just taken). The request conflicts with what
    another one did (409); logged, since it may also be a check that a service lacks."""
    if not isinstance(error, IntegrityError):
        return
    state = getattr(error.orig, "sqlstate", None)
    text = str(error.orig)
    diag = getattr(error.orig, "diag", None)
    table = getattr(diag, "table_name", None) or (
        text.split(": ", 1)[1].split(".", 1)[0] if ": " in text else "row"
    )
    if state == "23505" or text.startswith("UNIQUE constraint failed"):
        log.warning("unique violation answered 409", extra={"table": table, "error": text})
        raise AlreadyExists(
            f"a {table} entry with the same name or key exists already "
            "(perhaps stored by a concurrent request)"
        ) from error
    if state == "23503" or text.startswith("FOREIGN KEY constraint failed"):
        log.warning("foreign key violation answered 409", extra={"table": table, "error": text})
        raise Conflict(
            "what this request refers to was deleted or changed by a concurrent request"
        ) from error


class SqlUnitOfWork:
    """A connection and a transaction; rolls back on exit unless committed.

    On SQLite, writing units take turns on a SqliteWriterLock before ``BEGIN IMMEDIATE``:
    SQLite's own busy handler sleeps up to 100 ms between retries, which under contention
    costs far more than waiting in line.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        read_only: bool = False,
        writer_lock: SqliteWriterLock | None = None,
    ) -> None:
        self._engine = engine
        self._read_only = read_only
        self._committed = False
        self._writer_lock = None if read_only else writer_lock

    def __enter__(self) -> Self:
        if self._writer_lock is not None:
            self._writer_lock.acquire()
        try:
            return self._begin()
        except BaseException as error:
            if self._writer_lock is not None:
                self._writer_lock.release()
            _raise_if_unavailable(error)
            raise

    def _begin(self) -> Self:
        connection = self._engine.connect()
        connection.info[READ_ONLY] = self._read_only
        if self._read_only and connection.dialect.name == "postgresql":
            # At READ COMMITTED each statement reads its own snapshot, in a transaction or
            # not; outside one, a read is one round trip instead of three (BEGIN, ROLLBACK).
            connection.execution_options(isolation_level="AUTOCOMMIT")
        self._connection = connection
        self._transaction = connection.begin()
        self.agents = SqlAgentRepository(connection)
        self.tasks = SqlTaskRepository(connection)
        self.jobs = SqlJobRepository(connection)
        self.jobtypes = SqlJobTypeRepository(connection)
        self.software = SqlSoftwareRepository(connection)
        self.logs = SqlTaskLogRepository(connection)
        self.blocks = SqlBlocklistRepository(connection)
        self.scheduling = SqlSchedulingRepository(connection)
        self.tokens = SqlTokenRepository(connection)
        self.users = SqlUserRepository(connection)
        self.sessions = SqlSessionRepository(connection)
        self.events = SqlEventRepository(connection)
        self.history = SqlHistoryRepository(connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed and self._transaction.is_active:
                self._transaction.rollback()
        except DBAPIError as failed:
            if exc is None:  # otherwise the first error is the one to report
                _raise_if_unavailable(failed)
                raise
        finally:
            self._connection.close()
            if self._writer_lock is not None:
                self._writer_lock.release()
        if exc is not None:
            _raise_if_unavailable(exc)
            _raise_if_conflict(exc)

    def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        try:
            self._transaction.commit()
        except DBAPIError as error:
            _raise_if_unavailable(error)
            _raise_if_conflict(error)
            raise
        self._committed = True


class SqlUnitOfWorkFactory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer_lock = sqlite_writer_lock(engine)

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, read_only=read_only, writer_lock=self._writer_lock)
