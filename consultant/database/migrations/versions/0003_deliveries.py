"""Deliveries (the outbox's state for each outbound message) and a message's Reply-To

Declines queued before delivery existed become queued deliveries, so they are sent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consultant.database.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("server_reply", sa.String(length=1000), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveries_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_deliveries_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_ticket_id"), ["ticket_id"], unique=False)

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_to", sa.String(length=320), nullable=True))

    op.execute(
        "INSERT INTO deliveries (message_id, ticket_id, kind, state, attempts, next_attempt_at,"
        " transport, server_reply, error, created_at)"
        " SELECT id, ticket_id, 'decline', 'queued', 0, received_at, '', '', '', received_at"
        " FROM messages WHERE direction = 'outbound' AND outcome = 'queued'"
    )
    op.execute(
        "UPDATE messages SET outcome = 'outbound', source = 'decline'"
        " WHERE direction = 'outbound' AND outcome = 'queued'"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE messages SET outcome = 'queued' WHERE id IN"
        " (SELECT message_id FROM deliveries WHERE state = 'queued')"
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("reply_to")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_state"))
        batch_op.drop_index(batch_op.f("ix_deliveries_next_attempt_at"))

    op.drop_table("deliveries")
