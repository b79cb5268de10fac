"""What the caller did: recordings (<Record>) and answers to <Gather> (keys and speech).

Revision ID: c3decade0003
Revises: b2c0ffee0002
Create Date: 2026-11-23

Two new tables; nothing existing changes.
"""
import sqlalchemy as sa
from alembic import op

revision = "c3decade0003"
down_revision = "b2c0ffee0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "call_recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("recording_sid", sa.String(length=34), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["call_sid"], ["calls.sid"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recording_sid"),
    )
    op.create_index("ix_call_recordings_call_sid", "call_recordings", ["call_sid"])
    op.create_table(
        "gather_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("digits", sa.String(length=64), nullable=True),
        sa.Column("speech_result", sa.String(length=2000), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["call_sid"], ["calls.sid"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_sid", "dedupe_key", name="uq_gather_results_dedupe"),
    )
    op.create_index("ix_gather_results_call_sid", "gather_results", ["call_sid"])


def downgrade():
    op.drop_index("ix_gather_results_call_sid", table_name="gather_results")
    op.drop_table("gather_results")
    op.drop_index("ix_call_recordings_call_sid", table_name="call_recordings")
    op.drop_table("call_recordings")
