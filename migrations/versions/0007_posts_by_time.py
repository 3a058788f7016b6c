"""posts by scheduled time alone: the calendar's day cells (a count and the first few posts per day)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 20:05:00
"""
from __future__ import annotations

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.create_index('ix_posts_scheduled_at', ['scheduled_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index('ix_posts_scheduled_at')
