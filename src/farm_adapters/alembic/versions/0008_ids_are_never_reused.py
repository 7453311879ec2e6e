"""ids are never reused: SQLite integer primary keys become AUTOINCREMENT

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Every table with an integer id: clients and agents name rows by these ids (a job, a task and
# its log files, an event, a job type...), so a deleted row's id must never name a new one.
TABLES = (
    "gpus",
    "software",
    "software_versions",
    "jobtypes",
    "jobtype_versions",
    "jobs",
    "tasks",
    "task_logs",
    "events",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _rebuild_with_autoincrement(bind)
    elif bind.dialect.name == "postgresql":
        _sequences_above_every_id(bind)


def _rebuild_with_autoincrement(bind: sa.Connection) -> None:
    # SQLite can only add AUTOINCREMENT by rebuilding the table: the old one is dropped, and with
    # foreign keys enforced that DELETEs every row referring to it (ON DELETE CASCADE). The
    # pragma cannot change inside a transaction: schema_migrations.upgrade turns enforcement
    # off before this migration's transaction starts and checks the keys before it commits.
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "migration 0008 rebuilds tables: run it with SQLite's foreign keys off "
            "(farm db upgrade does)"
        )
    for name in TABLES:
        # Copying the rows with their ids sets sqlite_sequence to the highest id kept.
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def _sequences_above_every_id(bind: sa.Connection) -> None:
    # Sequences never hand out an id twice, but rows inserted with explicit ids (imports,
    # restores) do not move them: the next id could be one already taken.
    for name in TABLES:
        bind.exec_driver_sql(
            "SELECT setval(seq, GREATEST(COALESCE(pg_sequence_last_value(seq), 0),"
            f" (SELECT COALESCE(MAX(id), 0) FROM {name})) + 1, false)"
            f" FROM (SELECT pg_get_serial_sequence('{name}', 'id')::regclass AS seq) AS found"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("migration 0008 rebuilds tables: run it with SQLite's foreign keys off")
    for name in reversed(TABLES):
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
