"""What passes between the dispatcher and an adapter, as plain values: the rules a platform
declares (:class:`PlatformRules`, :class:`SendBudget`, :class:`KeyDoc`), the post it is given
(:class:`ReadyPost` with its :class:`Media`) and what it answers (:class:`PublishResult`).

:mod:`scheduler.platforms.base` re-exports every name, so adapters import them from there.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scheduler.textrules import TextRule

JPEG_PNG = frozenset({"image/jpeg", "image/png"})
COMMON_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
MB = 1024 * 1024
#: ``idempotent_for`` of a platform that never forgets a key (our outbox file, a deduping receiver).
ALWAYS = dt.timedelta.max


@dataclass(frozen=True)
class ImageRules:
    """What images a platform takes, as data: the queue fits a copy of each image to these
    (:mod:`scheduler.fitting`) and the adapter sends that copy as it is."""

    #: Accepted MIME types (the fitted copy is converted to one of them).
    formats: frozenset[str]
    #: Bytes per image.
    max_bytes: int
    #: Width × height (Mastodon's ``image_matrix_limit``, LinkedIn's pixel cap); None = no cap.
    max_pixels: int | None = None
    #: Longest side in pixels; None = no cap.
    max_side: int | None = None
    #: Width range in pixels (Instagram 320–1440; narrower images are scaled up, wider down).
    min_width: int | None = None
    max_width: int | None = None
    #: Width + height (Telegram: 10,000).
    max_side_sum: int | None = None
    #: Width / height range (Instagram 4:5 = 0.8 to 1.91); outside it the copy is padded or cropped.
    min_ratio: float | None = None
    max_ratio: float | None = None
    #: Images in one post (album, carousel, multi-photo); 1 = the cover alone.
    per_post: int = 1
    #: The platform fetches the image from its public URL (PROMO_PUBLIC_MEDIA_BASE_URL) instead of
    #: receiving the bytes.
    by_url: bool = False
    #: Characters of alt text per image (X 1,000; Mastodon the server's description_limit); None = no cap.
    #: Not part of :meth:`key`: the copy does not depend on it.
    max_alt: int | None = None

    def key(self) -> str:
        """A stable text of every value (part of a fitted copy's content hash)."""
        return repr((sorted(self.formats), self.max_bytes, self.max_pixels, self.max_side, self.min_width,
                     self.max_width, self.max_side_sum, self.min_ratio, self.max_ratio))


@dataclass(frozen=True)
class PlatformRules:
    """What a platform accepts, declared as data and enforced by the composer and queue."""

    text: tuple[TextRule, ...]
    #: Rules for the text when an image is attached (Telegram captions: 1,024); None = same as text.
    text_with_image: tuple[TextRule, ...] | None = None
    image_types: frozenset[str] = COMMON_IMAGES
    max_image_bytes: int = 5 * MB
    requires_image: bool = False
    #: What images the platform takes (fitted at queue time); None = images are passed on as
    #: stored, checked only against ``image_types`` and ``max_image_bytes`` (outbox, webhook).
    #: When given, ``image_types`` and ``max_image_bytes`` are taken from it.
    images: ImageRules | None = None
    #: ``reconcile`` can tell whether a post whose outcome is unknown went out.
    can_reconcile: bool = False
    #: How long the platform honours our idempotency key: a resend with the same key inside this
    #: window (counted from the first attempt that may have reached it) cannot post twice.
    #: None: no key, never resend blindly; :data:`ALWAYS`: the key is never forgotten.
    idempotent_for: dt.timedelta | None = None

    def __post_init__(self) -> None:
        if self.images is not None:  # one declaration: the older fields follow the image rules
            object.__setattr__(self, "image_types", self.images.formats)
            object.__setattr__(self, "max_image_bytes", self.images.max_bytes)

    @property
    def idempotent(self) -> bool:
        """The platform dedupes on our key at all (for some window)."""
        return self.idempotent_for is not None

    def text_rules(self, with_image: bool) -> tuple[TextRule, ...]:
        if with_image and self.text_with_image is not None:
            return self.text_with_image
        return self.text


@dataclass(frozen=True)
class SendBudget:
    """How many posts a platform lets one account publish within a rolling window.

    The dispatcher counts a channel's publish attempts in the window (history table) and, at
    the budget, lets the post wait until the oldest attempt leaves the window: never a send.
    """

    limit: int
    window: dt.timedelta
    #: Where the number comes from (for people reading the declaration and `channels list`).
    source: str = ""

    def describe(self) -> str:
        return f"{self.limit} per {describe_window(self.window)}"


def describe_window(window: dt.timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@dataclass(frozen=True)
class KeyDoc:
    """What config.example.env says about one channel option: help lines and an example value."""

    help: str = ""
    example: str = ""
    #: Written as a live setting rather than a commented-out one (the default outbox channel).
    active: bool = False


@dataclass(frozen=True)
class Media:
    """An image attached to a post."""

    path: Path
    mime: str
    size: int
    alt_text: str | None = None
    #: Where the image is publicly served (``PROMO_PUBLIC_MEDIA_BASE_URL`` + file name), if known.
    public_url: str | None = None

    @classmethod
    def from_path(cls, path: str | Path, alt_text: str | None = None, public_url: str | None = None) -> Media:
        p = Path(path)
        mime = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        return cls(path=p, mime=mime, size=p.stat().st_size, alt_text=alt_text, public_url=public_url)

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class ReadyPost:
    """A composed post, ready to publish on one channel."""

    post_id: int
    #: Stable, unique per post, stored when the post was created; sent as the idempotency key
    #: where the platform takes one, and used to derive client-chosen record keys.
    idempotency_key: str
    text: str
    link: str | None = None
    #: Title and description for link cards (the record's name and short description).
    title: str | None = None
    description: str | None = None
    image: Media | None = None
    #: The images after the cover (albums, carousels), already fitted and within the platform's
    #: ``images.per_post``; adapters without albums send the cover alone.
    more_images: tuple[Media, ...] = ()
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    #: What an earlier attempt learned (e.g. a container id), for reconcile; keys are adapter-defined.
    remote_hint: Mapping[str, str] = field(default_factory=dict)
    #: When the first attempt that may have reached the platform started (the post cannot be
    #: there from before); reconcile looks back to here. None: use ``created_at``.
    attempted_at: dt.datetime | None = None

    @property
    def images(self) -> tuple[Media, ...]:
        """Every image, the cover first."""
        return (self.image, *self.more_images) if self.image is not None else ()

    @property
    def since(self) -> dt.datetime:
        """The earliest time the post can have appeared on the platform."""
        return self.attempted_at or self.created_at


@dataclass(frozen=True)
class PublishResult:
    remote_id: str
    remote_url: str | None = None
    http_status: int | None = None


#: The common vocabulary every platform's counters are mapped to (reports add them up by these names).
COMMON_METRICS = ("views", "likes", "shares", "replies", "saves", "clicks", "reach", "quotes")


@dataclass(frozen=True)
class MetricsSpec:
    """What engagement counters a platform lets us read back, declared as data.

    ``names`` maps the platform's own counter names to :data:`COMMON_METRICS` (an empty mapping:
    the platform offers none, and reports say so instead of showing zeros). ``batch`` posts go in
    one request; at most ``requests_per_run`` requests per channel per collection run, chosen well
    inside the platform's read limit (``source`` says which); ``needs`` names the token scopes.
    """

    names: Mapping[str, str] = field(default_factory=dict)
    batch: int = 1
    requests_per_run: int = 0
    source: str = ""
    needs: str = ""

    @property
    def available(self) -> bool:
        return bool(self.names)


def no_metrics(why: str) -> MetricsSpec:
    """The declaration of a platform that gives no counters back (``why`` says so to people)."""
    return MetricsSpec(source=why)


@dataclass(frozen=True)
class Gone:
    """``fetch_metrics``' answer for a post that no longer exists on the platform (never asked again)."""

    reason: str = "deleted on the platform"


#: ``fetch_metrics``' answer: per remote id, the platform's counters by their own names, or Gone.
MetricsAnswer = dict[str, dict[str, int] | Gone]
