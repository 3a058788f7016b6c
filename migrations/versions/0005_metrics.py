"""metrics: engagement counters read back from the platforms, per post; when to read them next;
the collection state of each channel (paused on an auth error, apart from publishing)

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import scheduler.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('fetched_at', scheduler.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('platform_name', sa.String(length=60), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_metrics_post_fetched', 'metrics', ['post_id', 'fetched_at'])
    op.create_index('ix_metrics_fetched_at', 'metrics', ['fetched_at'])
    op.create_table('metric_schedule',
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('next_at', scheduler.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('gone_at', scheduler.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id']),
    sa.PrimaryKeyConstraint('post_id'),
    )
    op.create_index('ix_metric_schedule_next_at', 'metric_schedule', ['next_at'])
    op.create_table('metric_channels',
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('paused_at', scheduler.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('paused_reason', sa.Text(), nullable=True),
    sa.Column('wait_until', scheduler.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id']),
    sa.PrimaryKeyConstraint('channel_id'),
    )


def downgrade() -> None:
    op.drop_table('metric_channels')
    op.drop_index('ix_metric_schedule_next_at', table_name='metric_schedule')
    op.drop_table('metric_schedule')
    op.drop_index('ix_metrics_fetched_at', table_name='metrics')
    op.drop_index('ix_metrics_post_fetched', table_name='metrics')
    op.drop_table('metrics')
