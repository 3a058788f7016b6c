"""posts.more_images: the images after the cover (albums, carousels), as JSON [[path, alt], ...];
products.image_alt and events.image_alt: each image's alt text, ;-separated

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 19:25:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('more_images', sa.Text(), nullable=True))
    for table in ('products', 'events'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('image_alt', sa.Text(), nullable=True))


def downgrade() -> None:
    for table in ('events', 'products'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('image_alt')
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_column('more_images')
