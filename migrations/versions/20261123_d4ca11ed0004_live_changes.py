"""The live list's change feed: when each call last changed in a way the panel shows
(`changed_at`, indexed, so a poll reads only what changed), and whether the panel shows it
as possibly stale (`shown_stale`, so hearing from it again counts as a change).

Revision ID: d4ca11ed0004
Revises: c3decade0003
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "d4ca11ed0004"
down_revision = "c3decade0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("calls") as batch_op:
        batch_op.add_column(sa.Column("changed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("shown_stale", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.execute("UPDATE calls SET changed_at = updated_at")
    with op.batch_alter_table("calls") as batch_op:
        batch_op.alter_column("changed_at", existing_type=sa.DateTime(), nullable=False)
        batch_op.create_index("ix_calls_changed_at", ["changed_at"])


def downgrade():
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_index("ix_calls_changed_at")
        batch_op.drop_column("shown_stale")
        batch_op.drop_column("changed_at")
