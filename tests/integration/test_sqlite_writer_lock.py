"""Writers of one SQLite database take turns across processes (flock), not in SQLite's
sleeping busy handler."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from farm_adapters.sql.engine import create_database_engine, sqlite_writer_lock
from farm_domain.agents import AgentQuery

pytest.importorskip("fcntl")

PROBE = textwrap.dedent("""
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("held")
    else:
        print("free")
""")


def other_process_sees(lock_path: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, lock_path], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_a_writer_holds_the_database_against_other_processes(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'farm.db'}")
    lock = sqlite_writer_lock(engine)
    assert lock is not None
    lock_path = str(tmp_path / "farm.db-writer.lock")
    lock.acquire()
    try:
        assert other_process_sees(lock_path) == "held"
    finally:
        lock.release()
    assert other_process_sees(lock_path) == "free"
    engine.dispose()


def test_the_unit_of_work_takes_the_lock_only_while_writing(tmp_path: Path) -> None:
    from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory

    engine = create_database_engine(f"sqlite:///{tmp_path / 'farm.db'}")
    factory = SqlUnitOfWorkFactory(engine)
    lock_path = str(tmp_path / "farm.db-writer.lock")
    with factory():
        assert other_process_sees(lock_path) == "held"
    assert other_process_sees(lock_path) == "free"
    with factory(read_only=True):
        assert other_process_sees(lock_path) == "free"
    engine.dispose()


def test_an_in_memory_database_needs_no_lock_file() -> None:
    engine = create_database_engine("sqlite://")
    lock = sqlite_writer_lock(engine)
    assert lock is not None
    lock.acquire()  # threads only: nothing on disk
    lock.release()
    engine.dispose()


def other_connection_can_write(database: Path) -> bool:
    """Whether a connection of its own could start a write transaction right now."""
    import sqlite3

    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        assert "locked" in str(error)
        return False
    else:
        other.execute("ROLLBACK")
        return True
    finally:
        other.close()


def test_writers_hold_sqlites_write_lock_from_the_start_and_readers_never(tmp_path: Path) -> None:
    from farm_adapters.schema_migrations import upgrade
    from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory

    database = tmp_path / "farm.db"
    engine = create_database_engine(f"sqlite:///{database}")
    upgrade(engine)
    factory = SqlUnitOfWorkFactory(engine)
    for _ in range(2):  # the same pooled connection serves both kinds in turn
        with factory(read_only=True) as uow:
            uow.agents.query(AgentQuery())
            assert other_connection_can_write(database)
        with factory():
            assert not other_connection_can_write(database)
        assert other_connection_can_write(database)
    engine.dispose()
