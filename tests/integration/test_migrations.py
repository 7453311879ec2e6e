"""The migrations build exactly the schema the code maps, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from farm_adapters import schema_migrations
from farm_adapters.sql.engine import create_database_engine
from farm_adapters.sql.tables import metadata


def test_migrated_database_matches_the_tables(database_url: str) -> None:
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
        assert diff == []
        assert schema_migrations.is_up_to_date(engine)
    finally:
        engine.dispose()


def test_upgrading_twice_is_harmless(tmp_path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert not schema_migrations.is_up_to_date(engine)
        schema_migrations.upgrade(engine)
        schema_migrations.upgrade(engine)
        assert schema_migrations.current_revision(engine) == schema_migrations.head_revision()
    finally:
        engine.dispose()
