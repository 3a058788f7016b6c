"""history index by channel and time (send budgets count a channel's recent attempts)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 18:30:00
"""
from __future__ import annotations

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('history', schema=None) as batch_op:
        batch_op.create_index('ix_history_channel_started', ['channel_id', 'started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('history', schema=None) as batch_op:
        batch_op.drop_index('ix_history_channel_started')
