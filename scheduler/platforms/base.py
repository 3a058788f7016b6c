"""The adapter interface every platform module implements.

An adapter translates a :class:`ReadyPost` into the platform's HTTP calls and the
answer back into a :class:`PublishResult` or a typed :mod:`scheduler.errors` error.
It never reads the environment, never touches the database and never decides on
retries: it receives its options (``PAGE_ID``, ``ACCESS_TOKEN``…, without the
``PROMO_CHANNEL_<NAME>_`` prefix) and a :class:`ChannelState` for tokens it obtains
or refreshes itself (the caller persists those encrypted).

Each platform *declares* its rules as data (:class:`PlatformRules`): text limits and
how they are counted, media types and size, whether it needs an image, whether it
can reconcile an unknown outcome, and for how long it honours our idempotency key.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from scheduler.errors import (
    AuthError,
    PublishError,
    RateLimited,
    RejectedContent,
    Transient,
    UnknownOutcome,
)
from scheduler.platforms.types import (
    ALWAYS,
    COMMON_IMAGES,
    COMMON_METRICS,
    JPEG_PNG,
    MB,
    Gone,
    ImageRules,
    KeyDoc,
    Media,
    MetricsAnswer,
    MetricsSpec,
    PlatformRules,
    PublishResult,
    ReadyPost,
    SendBudget,
    describe_window,
    no_metrics,
)
from scheduler.redact import redact, register_secret

if TYPE_CHECKING:  # imported where requests are made: reading the settings needs no HTTP client
    import httpx

#: The values of :mod:`scheduler.platforms.types` are part of what this module offers adapters.
__all__ = [
    "ALWAYS", "COMMON_IMAGES", "JPEG_PNG", "MB", "ImageRules", "KeyDoc", "Media", "PlatformRules", "PublishResult",
    "ReadyPost", "SendBudget", "describe_window", "ChannelState", "MemoryState", "is_secret_key",
    "ChannelContext", "Adapter", "json_body", "with_link", "utcnow", "retry_at_from_headers",
    "epoch_to_utc", "COMMON_METRICS", "Gone", "MetricsAnswer", "MetricsSpec", "no_metrics",
]


class ChannelState(Protocol):
    """Tokens an adapter obtains or refreshes itself; the caller stores them encrypted."""

    def get(self, key: str) -> str | None: ...

    async def update(self, values: Mapping[str, str | None]) -> None: ...


class MemoryState:
    """A :class:`ChannelState` kept in memory (tests, ``channels check`` without a database)."""

    def __init__(self, initial: Mapping[str, str] | None = None):
        self.values: dict[str, str] = dict(initial or {})

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    async def update(self, values: Mapping[str, str | None]) -> None:
        for k, v in values.items():
            if v is None:
                self.values.pop(k, None)
            else:
                if is_secret_key(k):
                    register_secret(v)
                self.values[k] = v


#: PROMO_CHANNEL_<NAME>_IMAGE_FIT: an image whose shape the platform does not take is padded
#: (with a blurred fill of itself, or a colour) or centre-cropped.
IMAGE_FIT = re.compile(r"^(pad|pad:#[0-9a-f]{6}|crop)$")

_SECRET_WORDS = ("token", "jwt", "secret", "password", "session")


def is_secret_key(key: str) -> bool:
    """State keys that hold credentials (their values are redacted everywhere)."""
    k = key.lower()
    return any(w in k for w in _SECRET_WORDS)


@dataclass
class ChannelContext:
    """What an adapter gets to know about its channel."""

    name: str
    options: Mapping[str, str]
    state: ChannelState = field(default_factory=MemoryState)
    public_media_base_url: str | None = None
    #: PROMO_GRAPH_API_VERSION (Facebook, Instagram); None = the adapters' pinned version.
    graph_api_version: str | None = None


class Adapter(ABC):
    """Base class of every platform adapter."""

    platform: ClassVar[str]
    rules: ClassVar[PlatformRules]
    #: Alternative sets of required option keys; a channel must satisfy one whole set.
    required_keys: ClassVar[tuple[tuple[str, ...], ...]] = ((),)
    optional_keys: ClassVar[tuple[str, ...]] = ()
    #: Option keys whose values are secrets (never printed, logged or stored in plaintext).
    secret_keys: ClassVar[frozenset[str]] = frozenset()
    default_base_url: ClassVar[str] = ""
    #: One line for config.example.env and `channels list`: where to find the keys.
    help: ClassVar[str] = ""
    #: Send budgets of one account (every one must have room for a send); () = none documented.
    #: Declared by every adapter (the contract suite checks); PROMO_CHANNEL_<NAME>_BUDGET overrides.
    budget: ClassVar[tuple[SendBudget, ...]]
    #: Channel-state keys holding tokens the adapter obtains or refreshes itself (stored encrypted
    #: with PROMO_SECRET_KEY); () = it stores none. Declared by every adapter.
    token_keys: ClassVar[tuple[str, ...]]
    #: When set, tokens are stored only for channels that have this option (e.g. REFRESH_TOKEN).
    token_keys_if: ClassVar[str | None] = None
    #: config.example.env: heading, how to get the keys (comment text), example channel name, and
    #: per option key its help and example value, in the order they are shown.
    doc_title: ClassVar[str] = ""
    doc_setup: ClassVar[str] = ""
    doc_channel: ClassVar[str] = ""
    key_docs: ClassVar[Mapping[str, KeyDoc]] = {}
    #: Engagement counters the platform gives back (:class:`MetricsSpec`); ``no_metrics(why)`` when
    #: none. Declared by every adapter (the contract suite checks).
    metrics: ClassVar[MetricsSpec]

    def __init__(self, ctx: ChannelContext, http: httpx.AsyncClient):
        self.ctx = ctx
        self.http = http
        for key in self.secret_keys:
            register_secret(ctx.options.get(key))

    # --- declared configuration --------------------------------------------------

    @classmethod
    def all_keys(cls) -> tuple[str, ...]:
        keys: list[str] = []
        for group in cls.required_keys:
            keys.extend(k for k in group if k not in keys)
        keys.extend(k for k in cls.optional_keys if k not in keys)
        if "BASE_URL" not in keys:
            keys.append("BASE_URL")
        if cls.rules.images is not None and "IMAGE_FIT" not in keys:
            keys.append("IMAGE_FIT")  # pad | pad:#rrggbb | crop (scheduler.fitting)
        return tuple(keys)

    @classmethod
    def stores_tokens(cls, options: Mapping[str, str]) -> bool:
        """Whether a channel with these options keeps refreshed tokens in the database."""
        return bool(cls.token_keys) and (cls.token_keys_if is None or bool(options.get(cls.token_keys_if)))

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> list[str]:
        """Problems with a channel's options, each naming the key (empty when fine)."""
        groups = [g for g in cls.required_keys]
        for group in groups:
            if all(options.get(k) for k in group):
                break
        else:
            if len(groups) == 1:
                missing = [k for k in groups[0] if not options.get(k)]
                return [f"missing {', '.join(missing)} (required by platform {cls.platform})"]
            alternatives = " or ".join("{" + ", ".join(g) + "}" for g in groups)
            return [f"platform {cls.platform} needs one of: {alternatives}"]
        problems: list[str] = []
        fit = options.get("IMAGE_FIT")
        if fit and not IMAGE_FIT.match(fit.strip().lower()):
            problems.append(f"IMAGE_FIT {fit!r} is not pad, pad:#rrggbb or crop")
        base = options.get("BASE_URL")
        if base:
            import httpx

            parsed = httpx.URL(base)
            if parsed.scheme not in ("http", "https") or not parsed.host:
                problems.append(f"BASE_URL {base!r} is not an http(s) URL")
        return problems

    @classmethod
    def rules_for(cls, options: Mapping[str, str], state: ChannelState | None = None) -> PlatformRules:
        """The rules for one channel (an instance may differ, e.g. a Mastodon server's limit)."""
        return cls.rules

    # --- behaviour -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return (self.ctx.options.get("BASE_URL") or self.default_base_url).rstrip("/")

    def option(self, key: str, default: str | None = None) -> str | None:
        return self.ctx.options.get(key) or default

    @abstractmethod
    async def publish(self, post: ReadyPost) -> PublishResult:
        """Publish ``post``; return the remote id and URL or raise a PublishError subclass."""

    async def reconcile(self, post: ReadyPost) -> PublishResult | None:
        """After an unknown outcome: the published post, or ``None`` when it is certainly not there.

        Raises :class:`UnknownOutcome` when the platform cannot tell (the default).
        """
        raise UnknownOutcome(f"{self.platform} cannot look up whether a post went out")

    async def fetch_metrics(self, remote_ids: Sequence[str]) -> MetricsAnswer:
        """Counters of published posts (at most ``metrics.batch`` ids), by remote id: the platform's
        own names and values, or :class:`Gone` for a post deleted there. An id missing from the
        answer was not readable this time (asked again later). Errors are the typed publish errors:
        AuthError pauses the channel's collection, RateLimited makes it wait."""
        return {}

    @abstractmethod
    async def check(self) -> str:
        """Call the platform's cheapest identity endpoint; return who we are posting as."""

    # --- helpers for subclasses ----------------------------------------------------

    def redact(self, text: str | None) -> str:
        out = text or ""
        for key in self.secret_keys:
            value = self.ctx.options.get(key)
            if value and len(value) >= 4:
                out = out.replace(value, "***")
        return redact(out)

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request, mapping transport failures to typed errors.

        A failure to connect means nothing reached the platform (Transient); a timeout or
        a dropped connection after the request went out may have published (UnknownOutcome).
        """
        import httpx

        try:
            return await self.http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise Transient(self.redact(f"cannot reach {self.platform}: {type(exc).__name__}: {exc}")) from None
        except (httpx.WriteError, httpx.WriteTimeout) as exc:
            raise Transient(self.redact(f"request to {self.platform} not fully sent: {type(exc).__name__}")) from None
        except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            raise UnknownOutcome(
                self.redact(f"no answer from {self.platform} after sending ({type(exc).__name__}): outcome unknown")
            ) from None
        except httpx.HTTPError as exc:
            raise UnknownOutcome(self.redact(f"{self.platform} request failed: {type(exc).__name__}: {exc}")) from None

    def excerpt(self, response: httpx.Response, limit: int = 300) -> str:
        """A short, redacted excerpt of a response body for error messages and history."""
        try:
            text = response.text
        except Exception:
            text = repr(response.content[:limit])
        text = " ".join(text.split())
        if len(text) > limit:
            text = text[:limit] + "…"
        return self.redact(text)

    def generic_error(self, response: httpx.Response, what: str = "") -> PublishError:
        """Map a non-2xx status with no platform-specific meaning to a typed error."""
        status = response.status_code
        msg = f"{self.platform} {what + ' ' if what else ''}answered HTTP {status}: {self.excerpt(response)}"
        if status in (401, 403):
            return AuthError(msg, status=status)
        if status == 429:
            return RateLimited(msg, retry_at=retry_at_from_headers(response.headers), status=status)
        if status == 504:
            return UnknownOutcome(msg, status=status)
        if status >= 500:
            return Transient(msg, status=status)
        return RejectedContent(msg, status=status)

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release anything the adapter holds (the HTTP client belongs to the caller)."""


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or ``{}`` when the body is empty, not JSON or not an object."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def with_link(text: str, link: str | None, rules: PlatformRules, with_image: bool = False,
              sep: str = "\n\n") -> str:
    """``text`` plus ``link`` on a line of its own when the text lacks it and it still fits."""
    if not link or link in text:
        return text
    candidate = f"{text.rstrip()}{sep}{link}" if text.strip() else link
    if all(rule.fits(candidate) for rule in rules.text_rules(with_image)):
        return candidate
    return text


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def retry_at_from_headers(headers: Mapping[str, str], default_seconds: float = 60.0) -> dt.datetime:
    """The time a ``Retry-After`` header (seconds or HTTP date) points at, else now + default."""
    value = headers.get("retry-after")
    now = utcnow()
    if value:
        value = value.strip()
        try:
            return now + dt.timedelta(seconds=max(0.0, float(value)))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                if when.tzinfo is None:
                    when = when.replace(tzinfo=dt.UTC)
                return max(when, now)
            except (TypeError, ValueError):
                pass
    return now + dt.timedelta(seconds=default_seconds)


def epoch_to_utc(value: str | float | int) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(value), dt.UTC)
