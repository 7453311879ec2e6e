"""indexes for the dashboard's change marker and the overview's charts

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

RUNNING = sa.text("state = 'running'")
DONE = sa.text("state = 'done'")


def upgrade() -> None:
    # Partial: as small as the farm's running frames and the frames done, so the change marker
    # reads the running tasks' progress and the overview counts the frames done per hour
    # without reading every task. Neither holds `progress`: a progress report writes no index.
    op.create_index(
        "ix_tasks_running", "tasks", ["id"], sqlite_where=RUNNING, postgresql_where=RUNNING
    )
    op.create_index(
        "ix_tasks_done_time_finished",
        "tasks",
        ["time_finished"],
        sqlite_where=DONE,
        postgresql_where=DONE,
    )
    op.create_index("ix_task_failures_at", "task_failures", ["at"])


def downgrade() -> None:
    op.drop_index("ix_task_failures_at", table_name="task_failures")
    op.drop_index("ix_tasks_done_time_finished", table_name="tasks")
    op.drop_index("ix_tasks_running", table_name="tasks")
