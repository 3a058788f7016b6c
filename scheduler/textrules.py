"""How each platform counts text, as data.

A :class:`TextRule` is a limit plus the way the platform counts towards it. Platforms
declare one or more rules (Bluesky has two: 300 graphemes *and* 3,000 UTF-8 bytes);
the composer checks every one. This module is pure and sits below both ``composer``
and ``platforms`` so either can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import regex

_GRAPHEME = regex.compile(r"\X")
_URL = regex.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
_MASTO_MENTION = regex.compile(r"(?<![/\w])@(\w+)@[\w.-]+\w")
_PICTO = regex.compile(r"\p{Extended_Pictographic}")


def graphemes(text: str) -> int:
    """User-perceived characters (extended grapheme clusters)."""
    return sum(1 for _ in _GRAPHEME.finditer(text))


def codepoints(text: str) -> int:
    return len(text)


def utf16_units(text: str) -> int:
    """UTF-16 code units, as Telegram counts."""
    return len(text.encode("utf-16-le")) // 2


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def x_weighted(text: str) -> int:
    """X's weighted length: URLs count 23, emoji and CJK count 2 (twitter-text rules)."""
    from twitter_text import parse_tweet

    return int(parse_tweet(text).weightedLength)


def mastodon_chars(text: str) -> int:
    """Mastodon: every URL counts 23, ``@user@domain`` counts as ``@user``, then graphemes."""
    t = _URL.sub("x" * 23, text)
    t = _MASTO_MENTION.sub(r"@\1", t)
    return graphemes(t)


def threads_chars(text: str) -> int:
    """Threads: graphemes, except an emoji costs its UTF-8 byte length."""
    total = 0
    for m in _GRAPHEME.finditer(text):
        g = m.group()
        total += utf8_bytes(g) if _PICTO.match(g) else 1
    return total


#: Characters LinkedIn's "little" text format reserves; plain ones are backslash-escaped.
LITTLE_RESERVED = frozenset("\\|{}@[]()<>#*_~")


def little_escaped(text: str) -> str:
    """``text`` escaped for LinkedIn's "little" format, keeping the ``#`` of each hashtag."""
    hashtag_signs = {start for start, _, _ in hashtag_spans(text)}
    return "".join("\\" + ch if ch in LITTLE_RESERVED and i not in hashtag_signs else ch
                   for i, ch in enumerate(text))


def linkedin_chars(text: str) -> int:
    """LinkedIn counts the commentary it receives, i.e. after escaping: each escape costs one."""
    return len(little_escaped(text))


COUNTERS: dict[str, Callable[[str], int]] = {
    "graphemes": graphemes,
    "codepoints": codepoints,
    "utf16": utf16_units,
    "bytes": utf8_bytes,
    "x_weighted": x_weighted,
    "mastodon": mastodon_chars,
    "threads": threads_chars,
    "linkedin": linkedin_chars,
    "hashtags": lambda text: len(hashtag_spans(text)),
}

UNIT_NAMES = {
    "graphemes": "characters",
    "codepoints": "characters",
    "utf16": "UTF-16 units",
    "bytes": "bytes",
    "x_weighted": "weighted characters",
    "mastodon": "characters",
    "threads": "characters",
    "linkedin": "characters once reserved characters are escaped",
    "hashtags": "hashtags",
}


@dataclass(frozen=True)
class TextRule:
    """A text limit and the way it is counted (one of :data:`COUNTERS`)."""

    limit: int
    method: str = "graphemes"
    #: Why the limit matters, when the count alone does not say (shown in the refusal).
    note: str = ""

    def __post_init__(self) -> None:
        if self.method not in COUNTERS:
            raise ValueError(f"unknown counting method {self.method!r}")

    def count(self, text: str) -> int:
        return COUNTERS[self.method](text)

    def fits(self, text: str) -> bool:
        return self.count(text) <= self.limit

    def describe(self) -> str:
        return f"{self.limit} {UNIT_NAMES[self.method]} ({self.note or self.method})"


def first_broken(rules: tuple[TextRule, ...], text: str) -> tuple[TextRule, int] | None:
    """The first rule ``text`` breaks, with its count; ``None`` when all fit."""
    for rule in rules:
        n = rule.count(text)
        if n > rule.limit:
            return rule, n
    return None


def find_urls(text: str) -> list[str]:
    return [m.group(0) for m in _URL.finditer(text)]


def url_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, url) for every URL in ``text``, in str (code point) offsets."""
    return [(m.start(), m.end(), m.group(0)) for m in _URL.finditer(text)]


_HASHTAG = regex.compile(r"(?<![\w#])#(\w+)", regex.UNICODE)


def hashtag_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, tag-without-#) for every hashtag in ``text``, in code point offsets."""
    return [(m.start(), m.end(), m.group(1)) for m in _HASHTAG.finditer(text)]


def last_link_or_tag_end(text: str) -> int:
    """Where the last URL or hashtag of ``text`` ends (0 when it has none), in one pass, no lists."""
    end = 0
    for m in _URL.finditer(text):
        end = max(end, m.end())
    for m in _HASHTAG.finditer(text):
        end = max(end, m.end())
    return end
