"""products by UMKM: an import's change hook finds an edited UMKM's products with unsent highlights

A batch of 1,000 edited UMKM is matched to its products by ``products.umkm_id``, then to their
posts by ``posts.product_id`` (indexed since 0001); without this index every batch read the
whole products table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 22:50:00
"""
from __future__ import annotations

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_index('ix_products_umkm_id', ['umkm_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index('ix_products_umkm_id')
