"""Settings, read once from the environment and ``.env`` (the environment wins).

Only this module reads the environment. :func:`load_settings` checks everything and
raises one :class:`ConfigError` naming every bad key; no secret value is ever part of a
message. Every key is documented in ``config.example.env`` (a test checks that).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from scheduler.errors import ConfigError
from scheduler.redact import redact, register_secret

PREFIX = "PROMO_"
CHANNEL_PREFIX = "PROMO_CHANNEL_"
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_TRUE = {"1", "true", "yes", "ya", "on"}
_FALSE = {"0", "false", "no", "tidak", "off", ""}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_SECRETISH = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|JWT|SESSION|CREDENTIAL")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.I)

#: Post kinds and how late each may still go out (see PROMO_MAX_LATENESS_<KIND>).
DEFAULT_MAX_LATENESS = {
    "free_text": "12h",
    "product_highlight": "12h",
    "daily_highlight": "6h",
    "event_announcement": "24h",
    "event_reminder": "6h",
    "event_dayof": "3h",
    "event_ongoing": "3h",
    "event_cancelled": "24h",
    "alert": "1h",
}
POST_KINDS = tuple(DEFAULT_MAX_LATENESS)
#: Slots of the default outbox channel (used only when PROMO_CHANNELS is not set).
DEFAULT_OUTBOX_SLOTS = "09:00,12:00,19:00"
#: Platforms whose adapters always keep refreshed tokens (stored encrypted with PROMO_SECRET_KEY).
TOKEN_STORING = frozenset({"bluesky", "instagram", "threads"})


def parse_duration(value: str) -> dt.timedelta:
    """``90``/``90s``, ``15m``, ``6h``, ``2d`` → timedelta. ValueError on anything else."""
    m = _DURATION.match(value or "")
    if not m:
        raise ValueError(f"{value!r} is not a duration like 90s, 15m, 6h or 2d")
    n, unit = float(m.group(1)), (m.group(2) or "s").lower()
    return dt.timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])


def parse_clock(value: str) -> dt.time:
    """``HH:MM`` (24 h) → time. ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d{1,2})[:.](\d{2})\s*", value or "")
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(f"{value!r} is not a time like 09:00")
    return dt.time(int(m.group(1)), int(m.group(2)))


def parse_slots(value: str) -> tuple[dt.time, ...]:
    return tuple(sorted({parse_clock(v) for v in value.split(",") if v.strip()}))


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
    public_media_base_url: str | None = None
    max_image_bytes: int = 8 * 1024 * 1024
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
    #: HTTP Basic password of the dashboard (`promo serve --web`); required off 127.0.0.1.
    web_password: str | None = None
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
    event_channels: tuple[str, ...] = ()
    event_announce_days: int = 7
    event_reminder_days: int = 1
    event_dayof_time: dt.time = dt.time(8, 0)
    event_ongoing_posts: bool = False
    event_cancel_notice: bool = True

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
        merged.update({k: v or "" for k, v in dotenv_values(path).items()})
    merged.update(environ if environ is not None else os.environ)
    return merged


def default_templates_dir() -> Path:
    """./templates when the current folder has one (a checkout, or a copy staff edit), else the
    templates that ship with promo (in the installed package, or this checkout), so `promo`
    works from any folder."""
    from scheduler.shipped import templates_dir

    here = Path("templates")
    return here if here.is_dir() else templates_dir()


def _login_name() -> str:
    """Who runs the command, for history and audit rows when neither --as nor PROMO_USER says."""
    import getpass

    try:
        return getpass.getuser()  # LOGNAME, USER, LNAME, USERNAME, then the password database
    except (OSError, KeyError):
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "system"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting; raise one ConfigError naming every bad key."""
    from scheduler.platforms import adapter_class

    env = read_environment() if env is None else env
    problems: list[str] = []
    # Every PROMO_* key read below; any other one in the environment is a typo or a
    # setting this version does not have, and is reported rather than ignored.
    read_keys: set[str] = {PREFIX + "ENV_FILE", PREFIX + "SECRET_KEY", PREFIX + "SECRET_KEY_OLD"}

    def get(key: str, default: str = "") -> str:
        read_keys.add(PREFIX + key)
        return (env.get(PREFIX + key) or default).strip()

    def as_bool(key: str, default: bool) -> bool:
        raw = get(key).lower()
        if raw == "":
            return default
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        problems.append(f"{PREFIX}{key}: {raw!r} is not true or false")
        return default

    def as_number(key: str, default: float, minimum: float = 0, integer: bool = False) -> float:
        raw = get(key)
        if raw == "":
            return default
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            problems.append(f"{PREFIX}{key}: {raw!r} is not a {'whole ' if integer else ''}number")
            return default
        if value < minimum:
            problems.append(f"{PREFIX}{key}: must be at least {minimum}")
            return default
        return value

    def as_zone(key: str, raw: str) -> ZoneInfo:
        try:
            return ZoneInfo(raw)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"{key}: unknown timezone {raw!r} (use an IANA name like Asia/Makassar)")
            return ZoneInfo("Asia/Makassar")

    def as_duration(key: str, default: str) -> dt.timedelta:
        try:
            return parse_duration(get(key, default))
        except ValueError as exc:
            problems.append(f"{PREFIX}{key}: {exc}")
            return parse_duration(default)

    def as_clock(key: str, default: str) -> dt.time:
        try:
            return parse_clock(get(key, default))
        except ValueError as exc:
            problems.append(f"{PREFIX}{key}: {exc}")
            return parse_clock(default)

    def as_list(key: str, default: str = "") -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in get(key, default).split(",") if v.strip())

    tz = as_zone(PREFIX + "TIMEZONE", get("TIMEZONE", "Asia/Makassar"))
    language = get("LANGUAGE", "id").lower()
    if language not in ("id", "en"):
        problems.append(f"{PREFIX}LANGUAGE: {language!r} is not supported (id or en)")
        language = "id"

    # --- channels -------------------------------------------------------------------
    channels: list[ChannelConfig] = []
    names = as_list("CHANNELS", "outbox")
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
        ch_tz = as_zone(upper + "TIMEZONE", options.pop("TIMEZONE")) if options.get("TIMEZONE") else tz
        if not get("CHANNELS") and name == "outbox" and "SLOTS" not in options:
            options["SLOTS"] = DEFAULT_OUTBOX_SLOTS  # the embedded default channel can take --queue
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
                                      timezone=ch_tz, slots=slots))
    secret_key = env.get(PREFIX + "SECRET_KEY") or None
    secret_key_old = env.get(PREFIX + "SECRET_KEY_OLD") or None
    if secret_key_old and not secret_key:
        problems.append(f"{PREFIX}SECRET_KEY_OLD: set only while rotating, next to the new {PREFIX}SECRET_KEY")
    web_password = get("WEB_PASSWORD") or None
    register_secret(web_password)
    if not secret_key:
        for ch in channels:
            if ch.platform in TOKEN_STORING or (ch.platform in ("x", "linkedin") and ch.options.get("REFRESH_TOKEN")):
                problems.append(f"{PREFIX}SECRET_KEY: needed because channel {ch.name!r} ({ch.platform}) keeps "
                                "refreshed tokens in the database, encrypted with it")
    if len(set(names)) != len(names):
        problems.append(f"{PREFIX}CHANNELS: a channel is named twice")

    known_channels = set(names)
    alert = get("ALERT_CHANNEL").lower() or None
    if alert and alert not in known_channels:
        problems.append(f"{PREFIX}ALERT_CHANNEL: {alert!r} is not in {PREFIX}CHANNELS")
    highlight_channels = as_list("HIGHLIGHT_CHANNELS")
    event_channels = as_list("EVENT_CHANNELS")
    for key, listed in (("HIGHLIGHT_CHANNELS", highlight_channels), ("EVENT_CHANNELS", event_channels)):
        for n in listed:
            if n not in known_channels:
                problems.append(f"{PREFIX}{key}: {n!r} is not in {PREFIX}CHANNELS")

    days_raw = get("HIGHLIGHT_DAYS", "mon,tue,wed,thu,fri,sat,sun").upper()
    highlight_days: list[int] = []
    for d in (x.strip() for x in days_raw.split(",") if x.strip()):
        if d[:3] in WEEKDAYS:
            highlight_days.append(WEEKDAYS.index(d[:3]))
        else:
            problems.append(f"{PREFIX}HIGHLIGHT_DAYS: {d!r} is not a weekday (mon … sun)")

    lateness: dict[str, dt.timedelta] = {}
    for kind, default in DEFAULT_MAX_LATENESS.items():
        lateness[kind] = as_duration(f"MAX_LATENESS_{kind.upper()}", default)

    register_secret(secret_key)
    register_secret(secret_key_old)

    db_url = get("DATABASE_URL", "sqlite:///promo.db")
    if "://" not in db_url:
        problems.append(f"{PREFIX}DATABASE_URL: not a database URL (e.g. sqlite:///promo.db)")
    graph_api_version = get("GRAPH_API_VERSION") or None
    if graph_api_version and not re.fullmatch(r"v\d+\.\d+", graph_api_version):
        problems.append(f"{PREFIX}GRAPH_API_VERSION: {graph_api_version!r} is not a Graph API version like v21.0")
        graph_api_version = None
    public_media = get("PUBLIC_MEDIA_BASE_URL") or None
    if public_media and not public_media.startswith(("http://", "https://")):
        problems.append(f"{PREFIX}PUBLIC_MEDIA_BASE_URL: must start with http:// or https://")

    settings = Settings(
        database_url=db_url,
        db_busy_seconds=as_number("DB_BUSY_SECONDS", 30, 0.1),
        timezone=tz,
        language=language,
        channels=tuple(channels),
        secret_key=secret_key,
        secret_key_old=secret_key_old,
        require_approval=as_bool("REQUIRE_APPROVAL", False),
        templates_dir=Path(get("TEMPLATES_DIR", "") or default_templates_dir()),
        media_dir=Path(get("MEDIA_DIR", "media")),
        public_media_base_url=public_media.rstrip("/") if public_media else None,
        max_image_bytes=int(as_number("MAX_IMAGE_BYTES", 8 * 1024 * 1024, 1, integer=True)),
        max_description_chars=int(as_number("MAX_DESCRIPTION_CHARS", 10_000, 1, integer=True)),
        lease_seconds=as_number("LEASE_SECONDS", 120, 1),
        publish_timeout=as_number("PUBLISH_TIMEOUT", 30, 0.1),
        max_attempts=int(as_number("MAX_ATTEMPTS", 5, 1, integer=True)),
        retry_base_seconds=as_number("RETRY_BASE_SECONDS", 30, 0),
        retry_max_seconds=as_number("RETRY_MAX_SECONDS", 1800, 0),
        poll_seconds=as_number("POLL_SECONDS", 2, 0.05),
        max_lateness=lateness,
        alert_channel=alert,
        graph_api_version=graph_api_version,
        alert_min_interval=as_duration("ALERT_MIN_INTERVAL", "5m"),
        health_host=get("HEALTH_HOST", "127.0.0.1"),
        web_password=web_password,
        health_port=int(as_number("HEALTH_PORT", 8765, 0, integer=True)),
        health_port_explicit=bool(get("HEALTH_PORT")),
        health_stall_seconds=as_number("HEALTH_STALL_SECONDS", 30, 1),
        http_clients=int(as_number("HTTP_CLIENTS", 64, 1, integer=True)),
        http_connections=int(as_number("HTTP_CONNECTIONS", 4, 1, integer=True)),
        http_engine=get("HTTP_ENGINE", "aiohttp").lower(),
        workers=int(as_number("WORKERS", 1, 1, integer=True)),
        log_level=get("LOG_LEVEL", "INFO").upper(),
        log_format=get("LOG_FORMAT", "text").strip().lower(),
        user=get("USER") or _login_name(),
        highlight_time=as_clock("HIGHLIGHT_TIME", "09:00"),
        highlight_days=tuple(sorted(set(highlight_days))),
        highlight_channels=highlight_channels,
        highlight_count=int(as_number("HIGHLIGHT_COUNT", 1, 1, integer=True)),
        highlight_cooldown_days=int(as_number("HIGHLIGHT_UMKM_COOLDOWN_DAYS", 7, 0, integer=True)),
        highlight_lead=as_duration("HIGHLIGHT_APPROVAL_LEAD", "2h"),
        event_channels=event_channels,
        event_announce_days=int(as_number("EVENT_ANNOUNCE_DAYS", 7, 0, integer=True)),
        event_reminder_days=int(as_number("EVENT_REMINDER_DAYS", 1, 0, integer=True)),
        event_dayof_time=as_clock("EVENT_DAYOF_TIME", "08:00"),
        event_ongoing_posts=as_bool("EVENT_ONGOING_POSTS", False),
        event_cancel_notice=as_bool("EVENT_CANCEL_NOTICE", True),
    )
    for key in sorted(env):
        if not key.startswith(PREFIX) or key in read_keys:
            continue
        if key.startswith(CHANNEL_PREFIX):
            if owner(key) is None:
                problems.append(f"{key}: no channel of that name in {PREFIX}CHANNELS "
                                f"({', '.join(names) or 'none'})")
        else:
            problems.append(f"{key}: unknown setting (see config.example.env)")
    if settings.http_engine not in ("aiohttp", "httpx"):
        problems.append(f"{PREFIX}HTTP_ENGINE: {settings.http_engine!r} is not aiohttp or httpx")
    if settings.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"{PREFIX}LOG_LEVEL: {settings.log_level!r} is not DEBUG, INFO, WARNING or ERROR")
    if settings.log_format not in ("text", "json"):
        problems.append(f"{PREFIX}LOG_FORMAT: {settings.log_format!r} is not text or json")
    if problems:
        # Messages quote bad values; a secret pasted into the wrong key must not be shown.
        secrets = {v for k, v in env.items() if k.startswith(PREFIX) and v and len(v) >= 4
                   and _SECRETISH.search(k[len(PREFIX):])}
        raise ConfigError([_scrub(p, secrets) for p in problems])
    return settings


def _scrub(text: str, secrets: set[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, "***")
    return redact(text)
