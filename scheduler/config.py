"""Settings, read once from the environment and ``.env`` (the environment wins).

Only this module reads the environment. :func:`load_settings` checks everything and
raises one :class:`ConfigError` naming every bad key; no secret value is ever part of a
message. Every key is declared once in :data:`SETTINGS` (name, cast, default, help, secret or
not, example); ``config.example.env`` is generated from it and the adapters' declarations
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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from scheduler.errors import ConfigError
from scheduler.models import PostKind
from scheduler.redact import redact, register_secret
from scheduler.values import parse_bool

PREFIX = "PROMO_"
CHANNEL_PREFIX = "PROMO_CHANNEL_"
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_SECRETISH = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|JWT|SESSION|CREDENTIAL")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.I)

#: Post kinds and how late each may still go out (see PROMO_MAX_LATENESS_<KIND>).
DEFAULT_MAX_LATENESS: dict[str, str] = {
    PostKind.FREE_TEXT: "12h",
    PostKind.PRODUCT_HIGHLIGHT: "12h",
    PostKind.DAILY_HIGHLIGHT: "6h",
    PostKind.EVENT_ANNOUNCEMENT: "24h",
    PostKind.EVENT_REMINDER: "6h",
    PostKind.EVENT_DAYOF: "3h",
    PostKind.EVENT_ONGOING: "3h",
    PostKind.EVENT_CANCELLED: "24h",
    PostKind.ALERT: "1h",
}
POST_KINDS = tuple(DEFAULT_MAX_LATENESS)
#: Slots of the default outbox channel (used only when PROMO_CHANNELS is not set).
DEFAULT_OUTBOX_SLOTS = "09:00,12:00,19:00"


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


class SettingProblems(ValueError):
    """More than one problem with one value (each one is reported)."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _text(value: str) -> str:
    return value


def _optional(value: str) -> str | None:
    return value or None


def _bool(value: str) -> bool:
    return False if not value.strip() else parse_bool(value)


def _number(minimum: float, integer: bool = False) -> Callable[[str], float]:
    def cast(value: str) -> float:
        try:
            number = int(value) if integer else float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a {'whole ' if integer else ''}number") from None
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        return number
    cast.__name__ = f"{'whole ' if integer else ''}number >= {minimum}"
    return cast


def _zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r} (use an IANA name like Asia/Makassar)") from None


def _choice(*allowed: str, upper: bool = False) -> Callable[[str], str]:
    def cast(value: str) -> str:
        value = value.upper() if upper else value.lower()
        if value not in allowed:
            raise ValueError(f"{value!r} is not {', '.join(allowed[:-1])} or {allowed[-1]}")
        return value
    return cast


def _language(value: str) -> str:
    value = value.lower()
    if value not in ("id", "en"):
        raise ValueError(f"{value!r} is not supported (id or en)")
    return value


def _database_url(value: str) -> str:
    if "://" not in value:
        raise ValueError("not a database URL (e.g. sqlite:///promo.db)")
    return value


def _graph_version(value: str) -> str | None:
    if value and not re.fullmatch(r"v\d+\.\d+", value):
        raise ValueError(f"{value!r} is not a Graph API version like v21.0")
    return value or None


def _public_url(value: str) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/") or None


def _templates_dir(value: str) -> Path:
    return Path(value) if value else default_templates_dir()


def _user(value: str) -> str:
    return value or _login_name()


def _names(value: str) -> tuple[str, ...]:
    return tuple(v.strip().lower() for v in value.split(",") if v.strip())


def _channel_name(value: str) -> str | None:
    return value.lower() or None


def _weekdays(value: str) -> tuple[int, ...]:
    days: set[int] = set()
    bad: list[str] = []
    for d in (x.strip() for x in value.upper().split(",") if x.strip()):
        if d[:3] in WEEKDAYS:
            days.add(WEEKDAYS.index(d[:3]))
        else:
            bad.append(f"{d!r} is not a weekday (mon … sun)")
    if bad:
        raise SettingProblems(bad)
    return tuple(sorted(days))


def parse_budget(value: str) -> tuple[tuple[int, dt.timedelta], ...]:
    """``50/24h`` or ``100/15m,1000/24h`` → ((count, window), …); ``none`` → () (no budget)."""
    if value.strip().lower() in ("none", "off"):
        return ()
    out: list[tuple[int, dt.timedelta]] = []
    for part in (p.strip() for p in value.split(",") if p.strip()):
        count, _, window = part.partition("/")
        try:
            limit, span = int(count), parse_duration(window)
        except ValueError:
            limit, span = 0, dt.timedelta(0)
        if limit < 1 or span <= dt.timedelta(0):
            raise ValueError(f"{part!r} is not a budget like 50/24h or 100/15m,1000/24h (or none)")
        out.append((limit, span))
    if not out:
        raise ValueError("empty (give a budget like 50/24h, or none)")
    return tuple(out)


@dataclass(frozen=True)
class Setting:
    """One PROMO_* setting: its key (without PROMO_), how it is cast, its default (as written in
    the environment; "" = unset), help text and where config.example.env shows it."""

    key: str
    #: Turns the text into the value; raises ValueError (or SettingProblems) saying what is wrong.
    cast: Callable[[str], Any]
    default: str
    help: str
    section: str = "general"
    #: The Settings attribute it fills ("max_lateness.alert": one entry of a dict); None = read elsewhere.
    field: str | None = None
    #: The value config.example.env shows (None: the default).
    example: str | None = None
    #: config.example.env shows it commented out (it is optional and unset by default).
    commented: bool = False
    secret: bool = False
    #: A comment config.example.env shows after the key.
    note: str = ""
    strip: bool = True

    @property
    def name(self) -> str:
        return PREFIX + self.key

    def read(self, env: Mapping[str, str], problems: list[str]) -> Any:
        """The cast value; a bad one is added to ``problems`` (naming the key) and the default used."""
        raw = env.get(self.name) or ""
        raw = raw.strip() if self.strip else raw
        try:
            return self.cast(raw or self.default)
        except SettingProblems as exc:
            problems.extend(f"{self.name}: {p}" for p in exc.problems)
        except ValueError as exc:
            problems.append(f"{self.name}: {exc}")
        return self.cast(self.default)


def _lateness_settings() -> tuple[Setting, ...]:
    return tuple(
        Setting(f"MAX_LATENESS_{kind.upper()}", parse_duration, default,
                "" if i else ("Maximum lateness per post kind (90s, 15m, 6h, 2d): a post that comes due later than this\n"
                              "(the service was down) becomes `expired` instead of going out at a wrong time."),
                section="dispatcher", field=f"max_lateness.{kind}")
        for i, (kind, default) in enumerate(DEFAULT_MAX_LATENESS.items()))


#: The file config.example.env starts with (`python -m scheduler.config example` writes it).
EXAMPLE_INTRO = ("promo-scheduler configuration. Copy to .env and edit; the process environment wins over .env.\n"
                "Every key is optional: with none set, the service runs on SQLite (promo.db), timezone\n"
                "Asia/Makassar (WITA), language id, and one `outbox` channel writing outbox.jsonl.\n"
                "A bad value stops start-up with one message naming every bad key (secret values are never shown).")
#: Sections of config.example.env, in order: name → heading lines.
SECTIONS: dict[str, str] = {
    "general": "---------------------------------------------------------------------------- general",
    "dispatcher": "---------------------------------------------------------------------------- dispatcher",
    "dashboard": "---------------------------------------------------------------------------- dashboard",
    "highlight": ("---------------------------------------------------------------------------- highlight & events\n"
        "--- Daily UMKM highlight ---------------------------------------------------------"),
    "events": "--- Event promotion sequences -----------------------------------------------------",
    "channels": "---------------------------------------------------------------------------- channels",
}

#: Every PROMO_* setting, declared once: config.example.env is generated from this table and
#: load_settings reads, casts and checks each key by it. Add a setting here (and its field).
SETTINGS: tuple[Setting, ...] = (
    Setting("ENV_FILE", _text, ".env",
            "Which .env file to read (default .env in the working folder).",
            section="general", commented=True),
    Setting("DATABASE_URL", _database_url, "sqlite:///promo.db",
            ("Database URL (SQLAlchemy). SQLite runs with WAL and foreign keys; PostgreSQL for several workers:\n"
            "  postgresql+psycopg://user@127.0.0.1:5432/promo   (pip install 'promo-scheduler[postgres]')"),
            section="general", field="database_url"),
    Setting("DB_BUSY_SECONDS", _number(0.1), "30",
            ("SQLite only: how long a command waits for another process's write to finish (seconds)\n"
            "before it gives up with \"the database is busy\". Commands that only read never wait."),
            section="general", field="db_busy_seconds"),
    Setting("TIMEZONE", _zone, "Asia/Makassar",
            "The organisation's timezone (IANA name). Times people type and print are in it; the database holds UTC.",
            section="general", field="timezone"),
    Setting("LANGUAGE", _language, "id",
            "Language of the default templates: id (Indonesian) or en (English variants, *.en.j2).",
            section="general", field="language"),
    Setting("TEMPLATES_DIR", _templates_dir, "",
            ("Folder of the post templates: <kind>/<platform>.j2 with a _default.j2 fallback per kind.\n"
            "Default: ./templates when the current folder has one, else the templates shipped with promo.\n"
            "`promo templates export DIR` writes a copy of the shipped ones to edit; then point this at DIR."),
            section="general", field="templates_dir", example="templates", commented=True),
    Setting("MEDIA_DIR", Path, "media",
            "Folder where attached images are copied (named by their content hash).",
            section="general", field="media_dir"),
    Setting("PUBLIC_MEDIA_BASE_URL", _public_url, "",
            "Public URL where PROMO_MEDIA_DIR is served (Instagram/Threads fetch images by URL), e.g. https://cdn.example/promo",
            section="general", field="public_media_base_url", commented=True),
    Setting("MAX_IMAGE_BYTES", _number(1, integer=True), "8388608",
            "Largest image accepted by --image, in bytes (each platform may accept less).",
            section="general", field="max_image_bytes"),
    Setting("GRAPH_API_VERSION", _graph_version, "",
            ("Meta Graph API version for every Facebook and Instagram channel (default v21.0, which Meta serves\n"
            "until 2027-01-21). `promo channels check` warns 60 days before the pinned version's date and after it.\n"
            "A channel's own ..._GRAPH_VERSION wins. Threads keeps its own versioning (v1.0)."),
            section="general", field="graph_api_version", example="v21.0", commented=True),
    Setting("MAX_DESCRIPTION_CHARS", _number(1, integer=True), "10000",
            ("Longest product/event description `promo import` accepts, in characters; a longer one is a bad\n"
            "row (line and column named). Other fields have fixed limits (name 200, URLs 2,000; see README)."),
            section="general", field="max_description_chars"),
    Setting("SECRET_KEY", _optional, "",
            ("Key that encrypts secrets stored in the database (channels added with `promo channels add`,\n"
            "tokens the service refreshes itself). A Fernet key, or any long passphrase. Keep it secret and stable:\n"
            "  python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"),
            section="general", field="secret_key", commented=True, secret=True),
    Setting("SECRET_KEY_OLD", _optional, "",
            ("A passphrase is turned into a key with scrypt (a Fernet key is used as it is).\n"
            "While changing the key: the previous one, which still decrypts but never encrypts. Run\n"
            "`promo secrets rotate` to re-encrypt everything with PROMO_SECRET_KEY, then remove this."),
            section="general", field="secret_key_old", commented=True, secret=True),
    Setting("REQUIRE_APPROVAL", _bool, "false",
            "With true, new posts wait in pending_approval until `promo post approve ID`.",
            section="general", field="require_approval"),
    Setting("USER", _user, "",
            "Who is acting, for history and audit rows (default: the login name); `promo --as NAME` overrides it.",
            section="general", field="user", commented=True),
    Setting("LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR", upper=True), "INFO",
            "Log level of `promo serve`: DEBUG, INFO, WARNING or ERROR.",
            section="general", field="log_level"),
    Setting("POLL_SECONDS", _number(0.05), "2",
            "How often the dispatcher looks for new due posts (seconds). Posts also wake it at their exact time.",
            section="dispatcher", field="poll_seconds"),
    Setting("LEASE_SECONDS", _number(1), "120",
            ("A claimed post's lease (seconds); renewed while publishing. If the process dies, another\n"
            "process resolves the post when the lease runs out."),
            section="dispatcher", field="lease_seconds"),
    Setting("PUBLISH_TIMEOUT", _number(0.1), "30",
            "Timeout of one request to a platform (seconds).",
            section="dispatcher", field="publish_timeout"),
    Setting("MAX_ATTEMPTS", _number(1, integer=True), "5",
            "Attempts for transient errors (5xx, refused connections) before a post is failed.",
            section="dispatcher", field="max_attempts"),
    Setting("RETRY_BASE_SECONDS", _number(0), "30",
            "Exponential backoff with jitter between attempts: first step and cap (seconds).",
            section="dispatcher", field="retry_base_seconds"),
    Setting("RETRY_MAX_SECONDS", _number(0), "1800",
            "",
            section="dispatcher", field="retry_max_seconds"),
    Setting("HTTP_CLIENTS", _number(1, integer=True), "64",
            ("HTTP client shards and connections per shard (many channels publish concurrently; a channel\n"
            "always uses the same shard). More shards with few connections each cost less CPU in a burst."),
            section="dispatcher", field="http_clients"),
    Setting("HTTP_CONNECTIONS", _number(1, integer=True), "4",
            "",
            section="dispatcher", field="http_connections"),
    Setting("HTTP_ENGINE", _choice("aiohttp", "httpx"), "aiohttp",
            ("The connections under the adapters' httpx clients: aiohttp (about a third of the CPU per request,\n"
            "which matters in bursts of thousands of posts) or httpx (httpcore's own pool)."),
            section="dispatcher", field="http_engine"),
    Setting("WORKERS", _number(1, integer=True), "1",
            ("Dispatch processes `promo serve` runs (the main one plus PROMO_WORKERS-1 dispatch-only ones).\n"
            "Claims are atomic in the database, so they never publish the same post; 2 uses both cores\n"
            "of a small machine in a burst. `promo serve --workers N` overrides it."),
            section="dispatcher", field="workers"),
    *_lateness_settings(),
    Setting("ALERT_CHANNEL", _channel_name, "",
            ("A channel (from PROMO_CHANNELS) that receives a short message when a post fails, needs review\n"
            "or expires and when a channel is paused. Alerts never alert about themselves."),
            section="dispatcher", field="alert_channel", commented=True),
    Setting("ALERT_MIN_INTERVAL", parse_duration, "5m",
            "At most one alert per this interval; the ones held back are counted into the next.",
            section="dispatcher", field="alert_min_interval"),
    Setting("HEALTH_HOST", _text, "127.0.0.1",
            ("`promo serve` answers GET /healthz here (0 turns it off); it fails (503) when the dispatch loop\n"
            "has not ticked for PROMO_HEALTH_STALL_SECONDS."),
            section="dispatcher", field="health_host"),
    Setting("HEALTH_PORT", _number(0, integer=True), "8765",
            ("Port of the health endpoint; 0 turns it off. Unset, it is 8765, and a second `promo serve` on the\n"
            "same machine answers on a free port instead (logged). Set, a port already in use stops start-up."),
            section="dispatcher", field="health_port", commented=True),
    Setting("HEALTH_STALL_SECONDS", _number(1), "30",
            "",
            section="dispatcher", field="health_stall_seconds"),
    Setting("WEB_PASSWORD", _optional, "",
            ("`promo serve --web [--host H] [--port P]` serves a read-only dashboard and JSON API\n"
            "(posts, history, channels, status) on 127.0.0.1:8080 by default. On any other address\n"
            "it asks for this password (HTTP Basic, any user name); without it, start-up refuses.\n"
            "Wrong passwords are logged; 10 from one address within 5 minutes get 429 until they age out."),
            section="dashboard", field="web_password", commented=True, secret=True),
    Setting("HIGHLIGHT_TIME", parse_clock, "09:00",
            "When the day's highlight is published (HH:MM, 24 h, in PROMO_TIMEZONE).",
            section="highlight", field="highlight_time"),
    Setting("HIGHLIGHT_DAYS", _weekdays, "mon,tue,wed,thu,fri,sat,sun",
            "Days with a highlight: mon,tue,wed,thu,fri,sat,sun (any subset, comma-separated).",
            section="highlight", field="highlight_days"),
    Setting("HIGHLIGHT_CHANNELS", _names, "",
            "Channels that get the highlight (names from PROMO_CHANNELS). Empty: no highlight.",
            section="highlight", field="highlight_channels"),
    Setting("HIGHLIGHT_COUNT", _number(1, integer=True), "1",
            "How many products a day (each from a different UMKM while there are enough).",
            section="highlight", field="highlight_count"),
    Setting("HIGHLIGHT_UMKM_COOLDOWN_DAYS", _number(0, integer=True), "7",
            "A UMKM is not featured again within this many days while another one is eligible.",
            section="highlight", field="highlight_cooldown_days"),
    Setting("HIGHLIGHT_APPROVAL_LEAD", parse_duration, "2h",
            ("With PROMO_REQUIRE_APPROVAL=true: how long before PROMO_HIGHLIGHT_TIME the post is created\n"
            "(pending_approval) so an approver sees it; unapproved at its time, it expires."),
            section="highlight", field="highlight_lead", note="(How late a missed highlight may still go out is PROMO_MAX_LATENESS_DAILY_HIGHLIGHT.)"),
    Setting("EVENT_CHANNELS", _names, "",
            "Channels that get event posts (names from PROMO_CHANNELS). Empty: no event posts.",
            section="events", field="event_channels"),
    Setting("EVENT_ANNOUNCE_DAYS", _number(0, integer=True), "7",
            "Announcement this many days before the start, at the start's time of day (0 = none).",
            section="events", field="event_announce_days"),
    Setting("EVENT_REMINDER_DAYS", _number(0, integer=True), "1",
            "Reminder this many days before the start, at the start's time of day (0 = none).",
            section="events", field="event_reminder_days"),
    Setting("EVENT_DAYOF_TIME", parse_clock, "08:00",
            ("The \"today!\" post on the morning of the first day (an hour before the start if it starts earlier),\n"
            "and the time of the \"still on today\" posts."),
            section="events", field="event_dayof_time"),
    Setting("EVENT_ONGOING_POSTS", _bool, "false",
            "A \"still on today\" post on each later day of a multi-day event.",
            section="events", field="event_ongoing_posts"),
    Setting("EVENT_CANCEL_NOTICE", _bool, "true",
            "When an event is cancelled after some of its posts were published: post a cancellation notice.",
            section="events", field="event_cancel_notice"),
    Setting("CHANNELS", _names, "outbox",
            ("Channels, comma-separated; each is described by PROMO_CHANNEL_<NAME>_* keys. Every channel takes:\n"
            "  _PLATFORM   outbox, webhook, facebook, instagram, threads, x, telegram, mastodon, bluesky, linkedin, discord\n"
            "  _BASE_URL   scheme, host and port of the API (tests, self-hosted servers); the adapter adds the path\n"
            "  _SLOTS      posting slots for `promo post new --queue`, e.g. 09:00,12:30,19:00 (every day)\n"
            "  _SLOTS_MON … _SLOTS_SUN   slots for one weekday (override _SLOTS on that day)\n"
            "  _TIMEZONE   the channel's own timezone for its slots (default PROMO_TIMEZONE)\n"
            "  _BUDGET     sends allowed per rolling window, e.g. 50/24h or 100/15m,1000/24h, replacing the\n"
            "              platform's own budget (README: Send budgets); none turns it off. At the budget a post\n"
            "              waits (retry_wait; its history says until when) instead of being sent.\n"
            "`promo channels list` shows each channel's required keys; `promo channels check NAME` tests them.\n"
            "Deployments with many accounts store channels in the database instead:\n"
            "  promo channels add kota_masto --platform mastodon --set BASE_URL=https://mastodon.example --set ACCESS_TOKEN=…"),
            section="channels"),
)

SETTING = {s.key: s for s in SETTINGS}
#: Keys that are part of every channel, whatever its platform (PROMO_CHANNEL_<NAME>_<KEY>).
CHANNEL_KEYS = ("PLATFORM", "SLOTS", "SLOTS_MON", "SLOTS_TUE", "SLOTS_WED", "SLOTS_THU", "SLOTS_FRI",
                "SLOTS_SAT", "SLOTS_SUN", "TIMEZONE", "BUDGET")


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
