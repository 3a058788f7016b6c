"""A cover's alt text longer than 500 characters is kept whole on both engines (PostgreSQL's
``posts.image_alt`` was varchar(500) until migration 0009, while records and platforms take more:
X 1,000, Mastodon 1,500 characters)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, update

from scheduler.errors import ValidationError
from scheduler.models import Post
from scheduler.post_images import MAX_ALT, image_list
from scheduler.storage.db import Database
from tests.integration.test_due_at import NOW, _add, _alembic, _channel


def test_a_long_cover_alt_text_is_stored_whole(any_db: Database) -> None:
    alt = "Keripik tempe Bu Sri, renyah, dibungkus daun pisang. " * 22  # 1,166 characters
    assert 1_000 < len(alt) <= MAX_ALT
    post = _add(any_db, _channel(any_db, "kota"), "scheduled", NOW)
    with any_db.engine.begin() as conn:
        conn.execute(update(Post).where(Post.id == post).values(image_alt=alt))
    with any_db.engine.connect() as conn:
        assert conn.execute(select(Post.image_alt).where(Post.id == post)).scalar_one() == alt


def test_alt_text_over_the_longest_any_platform_takes_is_refused_naming_the_image() -> None:
    assert image_list(["a.jpg", "b.jpg"], ["ok", "x" * MAX_ALT]) == [("a.jpg", "ok"), ("b.jpg", "x" * MAX_ALT)]
    with pytest.raises(ValidationError, match=r"alt text of image 2 is 1,501 characters"):
        image_list(["a.jpg", "b.jpg"], ["ok", "x" * (MAX_ALT + 1)])


def test_migration_0009_downgrade_keeps_rows(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    try:
        db.upgrade()
        post = _add(db, _channel(db, "kota"), "scheduled", NOW)
        with db.engine.begin() as conn:
            conn.execute(update(Post).where(Post.id == post).values(image_alt="a" * 800))
        _alembic(db, command.downgrade, "0008")
        _alembic(db, command.upgrade, "head")
        with db.engine.connect() as conn:
            kept = conn.execute(select(Post.image_alt).where(Post.id == post)).scalar_one()
        assert kept is not None and kept.startswith("a" * 500) and len(kept) in (500, 800)  # PG cuts to the old width
    finally:
        db.dispose()
