"""Operators: personal accounts, server-side sessions, the login throttle, call claims and
viewers, and an audit trail that names the operator, the channel and the address.

Revision ID: b2c0ffee0002
Revises: a1f0c0de0001
Create Date: 2026-11-23

Existing actions were recorded as "admin" (panel) or "admin (API)": the second becomes the
username with via = "api".
"""
import sqlalchemy as sa
from alembic import op

revision = "b2c0ffee0002"
down_revision = "a1f0c0de0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "operator_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_operator_sessions_operator_id", "operator_sessions", ["operator_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failures_at", "login_failures", ["at"])
    op.create_index("ix_login_failures_username_at", "login_failures", ["username", "at"])
    op.create_index("ix_login_failures_address_at", "login_failures", ["address", "at"])
    op.create_table(
        "call_views",
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["call_sid"], ["calls.sid"]),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"]),
        sa.PrimaryKeyConstraint("call_sid", "operator_id"),
    )
    with op.batch_alter_table("calls") as batch_op:
        batch_op.add_column(sa.Column("handler_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch_op.create_foreign_key("fk_calls_handler_id_operators", "operators",
                                    ["handler_id"], ["id"])
    with op.batch_alter_table("operator_actions") as batch_op:
        batch_op.add_column(sa.Column("operator_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("via", sa.String(length=8), nullable=False,
                                      server_default="panel"))
        batch_op.add_column(sa.Column("address", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_operator_actions_created_at", ["created_at"])
        batch_op.create_index("ix_operator_actions_operator_id", ["operator_id"])
        batch_op.create_foreign_key("fk_operator_actions_operator_id_operators", "operators",
                                    ["operator_id"], ["id"])
    op.execute("UPDATE operator_actions SET via = 'api', "
               "operator = substr(operator, 1, length(operator) - 6) "
               "WHERE operator LIKE '% (API)'")


def downgrade():
    op.execute("UPDATE operator_actions SET operator = operator || ' (API)' WHERE via = 'api'")
    with op.batch_alter_table("operator_actions") as batch_op:
        batch_op.drop_constraint("fk_operator_actions_operator_id_operators", type_="foreignkey")
        batch_op.drop_index("ix_operator_actions_operator_id")
        batch_op.drop_index("ix_operator_actions_created_at")
        batch_op.drop_column("address")
        batch_op.drop_column("via")
        batch_op.drop_column("operator_id")
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_constraint("fk_calls_handler_id_operators", type_="foreignkey")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("handler_id")
    op.drop_table("call_views")
    op.drop_table("login_failures")
    op.drop_table("operator_sessions")
    op.drop_table("operators")
