"""Counting text the way each platform counts it."""

from __future__ import annotations

import pytest

from scheduler.textrules import (
    TextRule,
    codepoints,
    find_urls,
    first_broken,
    graphemes,
    hashtag_spans,
    mastodon_chars,
    utf8_bytes,
    utf16_units,
    x_weighted,
)

FAMILY = "\U0001F468\u200d\U0001F469\u200d\U0001F467"  # ZWJ sequence: one visible emoji
FLAG_ID = "\U0001F1EE\U0001F1E9"  # 🇮🇩: two regional indicators
E_ACUTE = "e\u0301"  # e + combining acute accent
SMILE = "\U0001F600"


@pytest.mark.parametrize(("text", "g", "cp", "u16", "b"), [
    ("Balikpapan", 10, 10, 10, 10),
    (E_ACUTE, 1, 2, 2, 3),
    (FAMILY, 1, 5, 8, 18),
    (FLAG_ID, 1, 2, 4, 8),
    (SMILE, 1, 1, 2, 4),
    ("Rp 25.000 ✨", 11, 11, 11, 13),
])
def test_counters(text: str, g: int, cp: int, u16: int, b: int) -> None:
    assert (graphemes(text), codepoints(text), utf16_units(text), utf8_bytes(text)) == (g, cp, u16, b)


def test_x_counts_every_url_as_23_and_emoji_as_2() -> None:
    long_url = "https://umkm.balikpapankota.go.id/produk/amplang-ikan-tenggiri?ref=kominfo"
    short_url = "https://a.id"
    assert x_weighted(f"Cek {long_url}") == 4 + 23
    assert x_weighted(f"Cek {short_url}") == 4 + 23
    assert x_weighted(SMILE) == 2
    assert x_weighted(FAMILY) == 2
    assert x_weighted("Amplang") == 7


def test_mastodon_counts_urls_as_23_and_remote_mentions_by_user() -> None:
    assert mastodon_chars("lihat https://umkm.balikpapan.example/produk/amplang-ikan") == 6 + 23
    assert mastodon_chars("halo @kominfo@mastodon.example") == len("halo @kominfo")


def test_rule_checks_limit_with_its_method() -> None:
    rule = TextRule(4, "utf16")
    assert rule.fits(SMILE * 2) and not rule.fits(SMILE * 3)
    assert TextRule(3, "graphemes").fits(FAMILY * 3)
    assert not TextRule(40, "bytes").fits(FAMILY * 3)
    assert "UTF-16" in rule.describe() and "4" in rule.describe()
    with pytest.raises(ValueError):
        TextRule(10, "words")


def test_first_broken_names_the_rule_and_count() -> None:
    rules = (TextRule(300, "graphemes"), TextRule(20, "bytes"))  # Bluesky-style: both must hold
    text = FLAG_ID * 3
    assert first_broken(rules, text) == (rules[1], 24)
    assert first_broken(rules, "ok") is None


def test_urls_and_hashtags_are_found_without_trailing_punctuation() -> None:
    text = "Info: https://kota.example/acara. (https://b.example/x) #UMKM #Kuliner_Enak, bukan#ini"
    assert find_urls(text) == ["https://kota.example/acara", "https://b.example/x"]
    assert [tag for _, _, tag in hashtag_spans(text)] == ["UMKM", "Kuliner_Enak"]
