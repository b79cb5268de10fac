"""Baseline: calls, call events and operator actions, as `db.create_all()` made them.

Revision ID: a1f0c0de0001
Revises:
Create Date: 2026-11-23

A database made before migrations existed has exactly this schema; database.upgrade_schema()
stamps it with this revision instead of running it.
"""
import sqlalchemy as sa
from alembic import op

revision = "a1f0c0de0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "calls",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=True),
        sa.Column("from_number", sa.String(length=255), nullable=True),
        sa.Column("to_number", sa.String(length=255), nullable=True),
        sa.Column("direction", sa.String(length=32), nullable=True),
        sa.Column("caller_name", sa.String(length=255), nullable=True),
        sa.Column("forwarded_from", sa.String(length=255), nullable=True),
        sa.Column("parent_call_sid", sa.String(length=34), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_rank", sa.Integer(), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index("ix_calls_created_at_sid", "calls", ["created_at", "sid"])
    op.create_index("ix_calls_from_number", "calls", ["from_number"])
    op.create_index("ix_calls_parent_call_sid", "calls", ["parent_call_sid"])
    op.create_index("ix_calls_status_created_at_sid", "calls", ["status", "created_at", "sid"])
    op.create_index("ix_calls_to_number", "calls", ["to_number"])

    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sequence_number", sa.Integer(), nullable=True),
        sa.Column("timestamp", sa.DateTime(), nullable=True),
        sa.Column("call_duration", sa.Integer(), nullable=True),
        sa.Column("sip_response_code", sa.String(length=8), nullable=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["call_sid"], ["calls.sid"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_sid", "dedupe_key", name="uq_call_events_dedupe"),
    )
    op.create_index("ix_call_events_call_sid", "call_events", ["call_sid"])

    op.create_table(
        "operator_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=True),
        sa.Column("operator", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["call_sid"], ["calls.sid"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_operator_actions_call_sid", "operator_actions", ["call_sid"])


def downgrade():
    op.drop_table("operator_actions")
    op.drop_table("call_events")
    op.drop_table("calls")
