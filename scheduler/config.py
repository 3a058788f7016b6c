"""Settings, read once from the environment and ``.env`` (the environment wins).

Only this module reads the environment. :func:`load_settings` checks everything and
raises one :class:`ConfigError` naming every bad key; no secret value is ever part of a
message. Every key is declared once in :data:`scheduler.settings_table.SETTINGS` (name,
cast, default, help, secret or not, example; the casts are in :mod:`scheduler.settings_casts`);
``config.example.env`` is generated from it and the adapters' declarations
(``python -m scheduler.config example > config.example.env``; a test checks it is current).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.errors import ConfigError
from scheduler.redact import redact, register_secret
from scheduler.settings_casts import (
    PREFIX,
    WEEKDAYS,
    _zone,
    default_templates_dir,
    parse_budget,
    parse_clock,
    parse_duration,
    parse_slots,
)
from scheduler.settings_table import (
    DEFAULT_MAX_LATENESS,
    DEFAULT_OUTBOX_SLOTS,
    EXAMPLE_INTRO,
    POST_KINDS,
    SECTIONS,
    SETTING,
    SETTINGS,
    Setting,
)

#: Also what the declaration table and its casts define, so `from scheduler.config import …` works for all.
__all__ = [
    "CHANNEL_KEYS", "CHANNEL_PREFIX", "ChannelConfig", "DEFAULT_MAX_LATENESS", "DEFAULT_OUTBOX_SLOTS",
    "default_templates_dir", "example_env", "EXAMPLE_INTRO", "load_settings", "parse_budget",
    "parse_clock", "parse_duration", "parse_slots", "POST_KINDS", "PREFIX", "read_environment",
    "SECTIONS", "SETTING", "Setting", "SETTINGS", "Settings", "WEEKDAYS",
]

CHANNEL_PREFIX = "PROMO_CHANNEL_"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_SECRETISH = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|JWT|SESSION|CREDENTIAL")


@dataclass(frozen=True)
class ChannelConfig:
    """One channel as configured: its platform, options (keys without prefix) and slots."""

    name: str
    platform: str
    options: Mapping[str, str]
    timezone: ZoneInfo
    #: weekday (0=Monday) → sorted slot times in the channel's timezone.
    slots: Mapping[int, tuple[dt.time, ...]] = field(default_factory=dict)
    source: str = "env"
    #: PROMO_CHANNEL_<NAME>_BUDGET: (count, window) pairs replacing the platform's send budget
    #: (() = no budget); None = the platform's own.
    budget: tuple[tuple[int, dt.timedelta], ...] | None = None


@dataclass(frozen=True)
class Settings:
    """Every setting, cast and checked."""

    database_url: str = "sqlite:///promo.db"
    db_busy_seconds: float = 30.0
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Makassar"))
    language: str = "id"
    channels: tuple[ChannelConfig, ...] = ()
    secret_key: str | None = None
    #: the previous PROMO_SECRET_KEY while rotating: decrypts, never encrypts
    secret_key_old: str | None = None
    require_approval: bool = False
    templates_dir: Path = Path("templates")
    media_dir: Path = Path("media")
    media_keep_days: int = 30
    public_media_base_url: str | None = None
    max_image_bytes: int = 32 * 1024 * 1024
    media_allow_private_urls: bool = False
    utm: bool = False
    utm_domains: tuple[str, ...] = ()
    #: Longest description an import accepts, in characters.
    max_description_chars: int = 10_000
    lease_seconds: float = 120.0
    publish_timeout: float = 30.0
    max_attempts: int = 5
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 1800.0
    poll_seconds: float = 2.0
    max_lateness: Mapping[str, dt.timedelta] = field(default_factory=dict)
    alert_channel: str | None = None
    alert_min_interval: dt.timedelta = dt.timedelta(minutes=5)
    #: Meta Graph API version for Facebook and Instagram (PROMO_GRAPH_API_VERSION); None = the adapters' pin.
    graph_api_version: str | None = None
    health_host: str = "127.0.0.1"
    #: Web app: a session ends after this long without a request.
    web_session_idle_minutes: int = 120
    #: Web app: proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed.
    web_trusted_proxies: tuple[str, ...] = ()
    health_port: int = 8765
    #: PROMO_HEALTH_PORT was set: a taken port is then an error, not a reason to pick another.
    health_port_explicit: bool = False
    health_stall_seconds: float = 30.0
    http_clients: int = 64
    http_connections: int = 4
    http_engine: str = "aiohttp"
    workers: int = 1
    log_level: str = "INFO"
    #: text (one line per record, for a terminal) or json (one object per line, for log shipping)
    log_format: str = "text"
    user: str = "system"
    highlight_time: dt.time = dt.time(9, 0)
    highlight_days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    highlight_channels: tuple[str, ...] = ()
    highlight_count: int = 1
    highlight_cooldown_days: int = 7
    highlight_lead: dt.timedelta = dt.timedelta(hours=2)
    #: PROMO_HIGHLIGHT_ORDER: fair | fair_then_engagement (engagement breaks fairness ties only).
    highlight_order: str = "fair"
    event_channels: tuple[str, ...] = ()
    event_announce_days: int = 7
    event_reminder_days: int = 1
    event_dayof_time: dt.time = dt.time(8, 0)
    event_ongoing_posts: bool = False
    event_cancel_notice: bool = True
    #: Read engagement counters back (PROMO_METRICS) at these offsets after publishing (PROMO_METRICS_AT).
    metrics: bool = True
    metrics_at: tuple[dt.timedelta, ...] = (dt.timedelta(hours=1), dt.timedelta(hours=24), dt.timedelta(days=7),
                                            dt.timedelta(days=30))
    #: PROMO_HISTORY_KEEP_DAYS: history rows older than this many days are archived daily; None = kept forever.
    history_keep_days: int | None = None
    history_archive_dir: Path = Path("history-archive")

    def channel(self, name: str) -> ChannelConfig | None:
        for c in self.channels:
            if c.name == name:
                return c
        return None

    def lateness(self, kind: str) -> dt.timedelta:
        return self.max_lateness.get(kind) or parse_duration(DEFAULT_MAX_LATENESS.get(kind, "12h"))


def read_environment(env_file: str | os.PathLike[str] | None = None,
                     environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``.env`` values overlaid by the process environment (which wins)."""
    path = Path(env_file or (environ or os.environ).get("PROMO_ENV_FILE", ".env"))
    merged: dict[str, str] = {}
    if path.is_file():
        from dotenv import dotenv_values  # here: most runs have no .env file to parse

        merged.update({k: v or "" for k, v in dotenv_values(path).items()})
    merged.update(environ if environ is not None else os.environ)
    return merged


#: Keys that are part of every channel, whatever its platform (PROMO_CHANNEL_<NAME>_<KEY>).
CHANNEL_KEYS = ("PLATFORM", "SLOTS", "SLOTS_MON", "SLOTS_TUE", "SLOTS_WED", "SLOTS_THU", "SLOTS_FRI",
                "SLOTS_SAT", "SLOTS_SUN", "TIMEZONE", "BUDGET")


#: Settings an older version read, and what replaced them (named when one is still set).
RETIRED = {"WEB_PASSWORD": "the web app has accounts, one per person (README: Web app)"}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting; raise one ConfigError naming every bad key."""
    env = read_environment() if env is None else env
    problems: list[str] = []
    values: dict[str, Any] = {"max_lateness": {}}
    for setting in SETTINGS:
        value = setting.read(env, problems)
        if setting.secret:
            register_secret(value)
        if setting.field and "." in setting.field:
            attr, _, item = setting.field.partition(".")
            values.setdefault(attr, {})[item] = value
        elif setting.field:
            values[setting.field] = value
    names: tuple[str, ...] = SETTING["CHANNELS"].read(env, problems)
    channels, owner = _load_channels(env, names, values["timezone"], problems)
    values.update(channels=tuple(channels),
                  health_port_explicit=bool((env.get(PREFIX + "HEALTH_PORT") or "").strip()))
    settings = Settings(**values)
    problems += _cross_checks(settings, names)
    for key in sorted(env):
        if not key.startswith(PREFIX) or key[len(PREFIX):] in SETTING:
            continue
        if key.startswith(CHANNEL_PREFIX):
            if owner(key) is None:
                problems.append(f"{key}: no channel of that name in {PREFIX}CHANNELS "
                                f"({', '.join(names) or 'none'})")
        elif key[len(PREFIX):] in RETIRED:
            problems.append(f"{key}: no longer used: {RETIRED[key[len(PREFIX):]]}; remove it")
        else:
            problems.append(f"{key}: unknown setting (see config.example.env)")
    if problems:
        # Messages quote bad values; a secret pasted into the wrong key must not be shown.
        secrets = {v for k, v in env.items() if k.startswith(PREFIX) and v and len(v) >= 4
                   and _SECRETISH.search(k[len(PREFIX):])}
        raise ConfigError([_scrub(p, secrets) for p in problems])
    return settings


def _cross_checks(settings: Settings, names: tuple[str, ...]) -> list[str]:
    """Problems between settings (each one on its own was fine)."""
    from scheduler.platforms import adapter_class

    problems: list[str] = []
    if settings.secret_key_old and not settings.secret_key:
        problems.append(f"{PREFIX}SECRET_KEY_OLD: set only while rotating, next to the new {PREFIX}SECRET_KEY")
    if not settings.secret_key:
        for ch in settings.channels:
            if adapter_class(ch.platform).stores_tokens(ch.options):
                problems.append(f"{PREFIX}SECRET_KEY: needed because channel {ch.name!r} ({ch.platform}) keeps "
                                "refreshed tokens in the database, encrypted with it")
    if len(set(names)) != len(names):
        problems.append(f"{PREFIX}CHANNELS: a channel is named twice")
    if settings.alert_channel and settings.alert_channel not in names:
        problems.append(f"{PREFIX}ALERT_CHANNEL: {settings.alert_channel!r} is not in {PREFIX}CHANNELS")
    for key, listed in (("HIGHLIGHT_CHANNELS", settings.highlight_channels),
                        ("EVENT_CHANNELS", settings.event_channels)):
        for n in listed:
            if n not in names:
                problems.append(f"{PREFIX}{key}: {n!r} is not in {PREFIX}CHANNELS")
    return problems


def _load_channels(env: Mapping[str, str], names: tuple[str, ...], tz: ZoneInfo,
                   problems: list[str]) -> tuple[list[ChannelConfig], Callable[[str], str | None]]:
    """The channels named in PROMO_CHANNELS, and which channel prefix owns a key."""
    from scheduler.platforms import adapter_class

    channels: list[ChannelConfig] = []
    prefixes = sorted((CHANNEL_PREFIX + n.upper() + "_" for n in names if _NAME.match(n)), key=len, reverse=True)

    def owner(key: str) -> str | None:
        """The channel prefix a key belongs to: the longest match, so channel ``fb`` does not
        take ``PROMO_CHANNEL_FB_KOTA_PLATFORM`` from channel ``fb_kota``."""
        return next((p for p in prefixes if key.startswith(p)), None)

    for name in names:
        upper = CHANNEL_PREFIX + name.upper() + "_"
        if not _NAME.match(name):
            problems.append(f"{PREFIX}CHANNELS: channel name {name!r} must be letters, digits and _ (starting with a letter)")
            continue
        options = {k[len(upper):]: v for k, v in env.items() if owner(k) == upper and v is not None}
        platform = (options.pop("PLATFORM", "") or ("outbox" if name == "outbox" else "")).strip().lower()
        if not platform:
            problems.append(f"{upper}PLATFORM: missing (which platform does channel {name!r} post to?)")
            continue
        try:
            cls = adapter_class(platform)
        except ConfigError as exc:
            problems.append(f"{upper}PLATFORM: {exc.problems[0]}")
            continue
        ch_tz = tz
        if options.get("TIMEZONE"):
            try:
                ch_tz = _zone(options.pop("TIMEZONE"))
            except ValueError as exc:
                problems.append(f"{upper}TIMEZONE: {exc}")
        if not (env.get(PREFIX + "CHANNELS") or "").strip() and name == "outbox" and "SLOTS" not in options:
            options["SLOTS"] = DEFAULT_OUTBOX_SLOTS  # the embedded default channel can take --queue
        slots = _channel_slots(options, upper, problems)
        budget = None
        if options.get("BUDGET", "").strip():
            try:
                budget = parse_budget(options["BUDGET"])
            except ValueError as exc:
                problems.append(f"{upper}BUDGET: {exc}")
        options.pop("BUDGET", None)
        known = set(cls.all_keys())
        for key in sorted(options):
            if key not in known:
                problems.append(f"{upper}{key}: not a setting of platform {platform} "
                                f"(it takes {', '.join(sorted(known))})")
        for p in cls.validate_options(options):
            problems.append(f"{upper[:-1]}: {p}")
        for key in cls.secret_keys:
            register_secret(options.get(key))
        channels.append(ChannelConfig(name=name, platform=platform, options=dict(options),
                                      timezone=ch_tz, slots=slots, budget=budget))
    return channels, owner


def _channel_slots(options: dict[str, str], upper: str, problems: list[str]) -> dict[int, tuple[dt.time, ...]]:
    """A channel's SLOTS and SLOTS_<DAY> (taken out of ``options``): weekday → slot times."""
    slots: dict[int, tuple[dt.time, ...]] = {}
    try:
        default_slots = parse_slots(options.pop("SLOTS", ""))
        slots = {d: default_slots for d in range(7)} if default_slots else {}
    except ValueError as exc:
        problems.append(f"{upper}SLOTS: {exc}")
    for i, day in enumerate(WEEKDAYS):
        raw = options.pop(f"SLOTS_{day}", None)
        if raw is None:
            continue
        try:
            slots[i] = parse_slots(raw)
        except ValueError as exc:
            problems.append(f"{upper}SLOTS_{day}: {exc}")
    return slots


def _comment(text: str) -> str:
    return "\n".join(f"# {line}" if line else "#" for line in text.split("\n"))


def example_env() -> str:
    """config.example.env, generated from :data:`SETTINGS` and the adapters' declarations
    (``python -m scheduler.config example > config.example.env``)."""
    from scheduler.platforms import PLATFORMS, adapter_class

    out = [_comment(EXAMPLE_INTRO)]
    for section, heading in SECTIONS.items():
        out += ["", _comment(heading)]
        for s in SETTINGS:
            if s.section != section:
                continue
            if s.help:
                out.append(_comment(s.help))
            out.append(f"{'# ' if s.commented else ''}{s.name}={s.default if s.example is None else s.example}")
            if s.note:
                out.append(_comment(s.note))
    for platform in PLATFORMS:
        cls = adapter_class(platform)
        prefix = f"{CHANNEL_PREFIX}{cls.doc_channel}_"
        out += ["", f"# --- {cls.doc_title}"]
        if cls.doc_setup:
            out.append(_comment(cls.doc_setup))
        if "PLATFORM" not in cls.key_docs:
            out.append(f"# {prefix}PLATFORM={platform}")
        for key, doc in cls.key_docs.items():
            if doc.help:
                out.append(_comment(doc.help))
            out.append(f"{'' if doc.active else '# '}{prefix}{key}={doc.example}")
    return "\n".join(out) + "\n\n"


def _scrub(text: str, secrets: set[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, "***")
    return redact(text)


if __name__ == "__main__":  # python -m scheduler.config example > config.example.env
    import sys

    from scheduler.config import example_env as _example_env  # the imported module, not __main__'s copy

    if sys.argv[1:] != ["example"]:
        sys.exit("usage: python -m scheduler.config example > config.example.env")
    sys.stdout.write(_example_env())
