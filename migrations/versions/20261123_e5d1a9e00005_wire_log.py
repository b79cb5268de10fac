"""See the wire: every webhook Twilio sent and every REST request the app made (`wire_log`),
and the events of Twilio's Debugger webhook (`debugger_events`).

Revision ID: e5d1a9e00005
Revises: d4ca11ed0004
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "e5d1a9e00005"
down_revision = "d4ca11ed0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "wire_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=16), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("action_id", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["action_id"], ["operator_actions.id"],
                                name="fk_wire_log_action_id_operator_actions"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_wire_log_call_sid_id", "wire_log", ["call_sid", "id"])
    op.create_index("ix_wire_log_at", "wire_log", ["at"])
    op.create_table(
        "debugger_events",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=True),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("timestamp", sa.DateTime(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index("ix_debugger_events_call_sid", "debugger_events", ["call_sid"])


def downgrade():
    op.drop_index("ix_debugger_events_call_sid", table_name="debugger_events")
    op.drop_table("debugger_events")
    op.drop_index("ix_wire_log_at", table_name="wire_log")
    op.drop_index("ix_wire_log_call_sid_id", table_name="wire_log")
    op.drop_table("wire_log")
