"""indexes for the filters people use at millions of rows

History: by channel and time, by status and time, by post (already ``ix_history_post_id``),
and the keyset pages of ``promo history`` (ordered by id, so the primary key serves them).
Posts: by status and time (the dashboard's queue, stale checks), by channel and status, and by
product and event (what `promo import` looks up for every changed record).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 18:30:00
"""
from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('history', schema=None) as batch_op:
        batch_op.create_index('ix_history_to_status_started', ['to_status', 'started_at'], unique=False)
        batch_op.create_index('ix_history_outcome_started', ['outcome', 'started_at'], unique=False)
        batch_op.create_index('ix_history_action_id', ['action', 'id'], unique=False)
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.create_index('ix_posts_status_scheduled', ['status', 'scheduled_at'], unique=False)
        batch_op.create_index('ix_posts_channel_status', ['channel_id', 'status'], unique=False)
        # an imported product's or event's own posts (the import's change hooks look them up)
        batch_op.create_index('ix_posts_product_id', ['product_id'], unique=False)
        batch_op.create_index('ix_posts_event_id', ['event_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index('ix_posts_event_id')
        batch_op.drop_index('ix_posts_product_id')
        batch_op.drop_index('ix_posts_channel_status')
        batch_op.drop_index('ix_posts_status_scheduled')
    with op.batch_alter_table('history', schema=None) as batch_op:
        batch_op.drop_index('ix_history_action_id')
        batch_op.drop_index('ix_history_outcome_started')
        batch_op.drop_index('ix_history_to_status_started')
