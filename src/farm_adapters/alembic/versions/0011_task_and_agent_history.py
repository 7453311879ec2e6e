"""a task's and an agent's history: every change of state with its time and reason

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from farm_adapters.sql.tables import UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty at first: what happened before the upgrade was never recorded.
    op.create_table(
        "task_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "task_id",
            sa.Integer(),
            sa.ForeignKey("tasks.id", ondelete="CASCADE", name="fk_task_history_task_id_tasks"),
            nullable=False,
        ),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Uuid()),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("before", sa.String(16)),
        sa.Column("after", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_task_history"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_history_task_id_id", "task_history", ["task_id", "id"])
    op.create_table(
        "agent_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "agent_id",
            sa.Uuid(),
            sa.ForeignKey("agents.id", ondelete="CASCADE", name="fk_agent_history_agent_id_agents"),
            nullable=False,
        ),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("before", sa.String(16)),
        sa.Column("after", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agent_history"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_agent_history_agent_id_id", "agent_history", ["agent_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_agent_history_agent_id_id", table_name="agent_history")
    op.drop_table("agent_history")
    op.drop_index("ix_task_history_task_id_id", table_name="task_history")
    op.drop_table("task_history")
