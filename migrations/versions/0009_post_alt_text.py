"""posts.image_alt as text: the cover's alt text was capped at 500 characters by the column on
PostgreSQL (SQLite never enforced it), while records take longer alt texts and platforms take up
to 1,000 (X) or 1,500 (Mastodon's default) characters

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 22:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite keeps any length in a column (no table rebuild needed); PostgreSQL changes the type in place.
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('posts', 'image_alt', type_=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('posts', 'image_alt', type_=sa.String(500), existing_nullable=True,
                        postgresql_using='left(image_alt, 500)')
