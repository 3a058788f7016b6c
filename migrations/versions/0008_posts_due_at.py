"""posts.due_at: when a waiting post comes due, stored and indexed for the dispatcher's claim

``due_at`` is a generated column, ``coalesce(next_attempt_at, scheduled_at)``: the database
computes it on every insert and update, so no write path (ORM, the claim's bulk statements,
imports, a person's edit) can leave it stale. PostgreSQL stores it (the table is rewritten
once, which backfills it). SQLite cannot add a stored generated column to an existing table,
so there it is virtual: its indexes hold the value, which is what the claim reads.

Two partial indexes over the claimable posts (scheduled, retry_wait) only, so published
history does not grow them: ``(channel_id, due_at)`` for "this channel's due posts" (the
claim, a backlog) and ``(due_at)`` for "anything due at all" (the idle poll, next_due).
They replace ``ix_posts_due`` (status, channel_id, scheduled_at), which only the claim used.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 21:40:00
"""
from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

CLAIMABLE = "status IN ('scheduled', 'retry_wait')"


def upgrade() -> None:
    stored = "STORED" if op.get_bind().dialect.name == "postgresql" else "VIRTUAL"
    kind = "timestamp with time zone" if stored == "STORED" else "DATETIME"
    op.execute(f"ALTER TABLE posts ADD COLUMN due_at {kind} "
               f"GENERATED ALWAYS AS (coalesce(next_attempt_at, scheduled_at)) {stored}")
    op.execute(f"CREATE INDEX ix_posts_claim_due ON posts (channel_id, due_at) WHERE {CLAIMABLE}")
    op.execute(f"CREATE INDEX ix_posts_due_at ON posts (due_at) WHERE {CLAIMABLE}")
    op.execute("DROP INDEX ix_posts_due")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_posts_due ON posts (status, channel_id, scheduled_at)")
    op.execute("DROP INDEX ix_posts_due_at")
    op.execute("DROP INDEX ix_posts_claim_due")
    op.execute("ALTER TABLE posts DROP COLUMN due_at")
