"""audit events and who submitted each job

Revision ID: 0007
Revises: 0005 (0006, the identities, when merged)
"""

import sqlalchemy as sa
from alembic import op

from farm_adapters.sql.tables import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index("ix_events_target_at", "events", ["target", "at"])
    op.create_index("ix_events_actor_at", "events", ["actor", "at"])
    # Jobs submitted before there were identities keep NULL: only wranglers and admins may
    # change them.
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("submitted_by", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("submitted_by")
    op.drop_index("ix_events_actor_at", table_name="events")
    op.drop_index("ix_events_target_at", table_name="events")
    op.drop_index("ix_events_at", table_name="events")
    op.drop_table("events")
