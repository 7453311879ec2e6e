"""Schema migrations (alembic), applied from code by ``farm db upgrade`` and ``farm serve``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

_SCRIPTS = Path(__file__).with_name("alembic")


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to the newest schema (or ``revision``: tests upgrading a database
    with rows in it), then refresh the planner's statistics."""
    config = _config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Rebuilding a table drops the old one, which with foreign keys enforced deletes
            # every row referring to it (ON DELETE CASCADE). The pragma is a no-op inside a
            # transaction (and our SQLite transactions BEGIN as the connection is first used),
            # so it is set on the driver's connection first, and the keys checked before commit.
            _sqlite_foreign_keys(connection, enforced=False)
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite:
                    _refuse_broken_foreign_keys(connection)
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, enforced=True)
    analyze(engine)


def _sqlite_foreign_keys(connection: Connection, *, enforced: bool) -> None:
    driver = connection.connection.driver_connection
    assert driver is not None  # a connection checked out of the pool has one
    driver.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")


def _refuse_broken_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(
            f"the migration left {len(broken)} rows whose foreign keys name no row "
            f"(first: {tuple(broken[0])}); nothing was changed"
        )


def analyze(engine: Engine) -> None:
    """Refresh the query planner's statistics: without them SQLite may walk the whole agents
    table in hostname order rather than use the filter's index (measured by the bench)."""
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
