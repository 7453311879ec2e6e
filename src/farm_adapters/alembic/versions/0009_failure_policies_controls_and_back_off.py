"""failure policies, frame controls, retry back-off and failures per attempt

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

import farm_adapters.sql.tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UtcDateTime = farm_adapters.sql.tables.UtcDateTime


def upgrade() -> None:
    # Every new column is nullable or has a server default: existing rows keep their values and
    # read back as jobs without policies, tasks not delayed, not skipped, with no reason yet.
    op.add_column("jobs", sa.Column("max_run_seconds", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("stall_seconds", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column("tasks", sa.Column("not_before", UtcDateTime(timezone=True), nullable=True))
    op.add_column("tasks", sa.Column("reason", sa.String(length=32), nullable=True))
    op.add_column("tasks", sa.Column("failed_on", sa.Uuid(), nullable=True))
    op.add_column(
        "tasks", sa.Column("skipped", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("job_agent_blocks", sa.Column("refusal", sa.Text(), nullable=True))
    op.create_table(
        "task_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_failures_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_failures")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_failures_task_id", "task_failures", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_task_failures_task_id", table_name="task_failures")
    op.drop_table("task_failures")
    with op.batch_alter_table("job_agent_blocks") as batch:
        batch.drop_column("refusal")
    with op.batch_alter_table("tasks") as batch:
        for column in ("skipped", "failed_on", "reason", "not_before"):
            batch.drop_column(column)
    with op.batch_alter_table("jobs") as batch:
        for column in ("reason", "stall_seconds", "max_run_seconds"):
            batch.drop_column(column)
