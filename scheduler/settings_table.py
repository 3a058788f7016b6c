"""Every PROMO_* setting, declared once (:data:`SETTINGS`): key, cast, default, help, where
``config.example.env`` shows it. :func:`scheduler.config.load_settings` reads by this table and
``python -m scheduler.config example`` writes the example file from it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.settings_casts import (
    PREFIX,
    SettingProblems,
    _bool,
    _channel_name,
    _choice,
    _database_url,
    _graph_version,
    _language,
    _names,
    _networks,
    _number,
    _optional,
    _public_url,
    _templates_dir,
    _text,
    _user,
    _weekdays,
    _zone,
    parse_clock,
    parse_duration,
    parse_offsets,
)
from scheduler.states import PostKind

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
    "dashboard": "---------------------------------------------------------------------------- web app",
    "highlight": ("---------------------------------------------------------------------------- highlight & events\n"
        "--- Daily UMKM highlight ---------------------------------------------------------"),
    "events": "--- Event promotion sequences -----------------------------------------------------",
    "metrics": "---------------------------------------------------------------------------- engagement",
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
    Setting("MAX_IMAGE_BYTES", _number(1, integer=True), "33554432",
            ("Largest image accepted (--image, a record's image, one downloaded by URL), in bytes; each platform\n"
             "then gets a copy fitted to its own limits when the post is queued."),
            section="general", field="max_image_bytes"),
    Setting("MEDIA_ALLOW_PRIVATE_URLS", _bool, "false",
            ("Images named by URL are downloaded once into PROMO_MEDIA_DIR (http/https, an image type, at most\n"
             "PROMO_MAX_IMAGE_BYTES, 20 s). Addresses on this machine or a private network are refused unless this\n"
             "is true (tests, an intranet image server)."),
            section="general", field="media_allow_private_urls", commented=True),
    Setting("MEDIA_KEEP_DAYS", lambda v: int(_number(1, integer=True)(v)), "30",
            ("Images of a post that is done (published, cancelled, failed or expired) are kept this many days\n"
             "after, so a failed or expired post can still be retried; then the daily housekeeping deletes them\n"
             "(originals, fitted copies, downloads) unless a post still waiting uses them. Uploads no post uses\n"
             "go after a day. By hand: `promo media prune [--dry-run]`."),
            section="general", field="media_keep_days"),
    Setting("UTM", _bool, "false",
            ("Tag links to PROMO_UTM_DOMAINS when a post is queued: utm_source=<platform>, utm_medium=social,\n"
             "utm_campaign=<kind>-<record id>, utm_content=<post id> (parameters already on a link are kept)."),
            section="general", field="utm", commented=True),
    Setting("UTM_DOMAINS", _names, "",
            "Comma-separated domains (and their subdomains) whose links get the tags, e.g. umkm.example,kota.go.id",
            section="general", field="utm_domains", example="umkm.example", commented=True),
    Setting("GRAPH_API_VERSION", _graph_version, "",
            ("Meta Graph API version for every Facebook and Instagram channel (default v21.0, which Meta serves\n"
            "until 2027-01-21). `promo channels check` warns 60 days before the pinned version's date and after it.\n"
            "A channel's own ..._GRAPH_VERSION wins. Threads keeps its own versioning (v1.0)."),
            section="general", field="graph_api_version", example="v21.0", commented=True),
    Setting("MAX_DESCRIPTION_CHARS", _number(1, integer=True), "10000",
            ("Longest product/event description `promo import` accepts, in characters; a longer one is a bad\n"
            "row (line and column named). Other fields have fixed limits (name 200, URLs 2,000; see README)."),
            section="general", field="max_description_chars"),
    Setting("HISTORY_KEEP_DAYS", lambda v: int(_number(1, integer=True)(v)) if v else None, "",
            ("Keep this many days of publish history in the database: once a day (at 03:00) older rows go into\n"
            "a gzip CSV in PROMO_HISTORY_ARCHIVE_DIR and are deleted (rows of posts still waiting, publishing or\n"
            "in review stay). Unset: history is kept forever. By hand: `promo history archive --before D FILE`."),
            section="general", field="history_keep_days", example="365", commented=True),
    Setting("HISTORY_ARCHIVE_DIR", Path, "history-archive",
            "Folder for the daily history archives (history-YYYY-MM-DD.csv.gz; an earlier file is never overwritten).",
            section="general", field="history_archive_dir"),
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
    Setting("LOG_FORMAT", _choice("text", "json"), "text",
            ("How `promo serve` writes its log: text (one line per record, for a terminal) or json (one\n"
            "object per line: time, level, logger, message, exception; secrets masked) for log shippers."),
            section="general", field="log_format"),
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
    Setting("WEB_SESSION_IDLE_MINUTES", _number(1, integer=True), "120",
            ("`promo serve --web [--host H] [--port P]` serves the staff web app and its JSON API on\n"
            "127.0.0.1:8080 by default; everyone logs in with their own account (README: Web app). Off\n"
            "127.0.0.1 it refuses to start until an admin user with a password exists.\n"
            "A login ends after this many minutes without a request (and at once on logout or when disabled)."),
            section="dashboard", field="web_session_idle_minutes"),
    Setting("WEB_TRUSTED_PROXIES", _networks, "",
            ("Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For and\n"
            "X-Forwarded-Proto are believed: the client address for the login throttle, https for the\n"
            "cookie's Secure flag. Empty: those headers are ignored."),
            section="dashboard", field="web_trusted_proxies", example="127.0.0.1", commented=True),
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
    Setting("HIGHLIGHT_ORDER", _choice("fair", "fair_then_engagement"), "fair",
            ("fair: between UMKM equally due a turn, the smaller id goes first. fair_then_engagement: the one\n"
            "whose posts drew more engagement per post in the last 90 days (README: Engagement). Never at\n"
            "the cost of fairness: it only breaks ties."),
            section="highlight", field="highlight_order"),
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
    Setting("METRICS", _bool, "true",
            ("Read likes, shares, replies and views of published posts back from the platforms that give them\n"
            "(README: Engagement), for `promo report`. Reading never delays publishing (its own connections)."),
            section="metrics", field="metrics"),
    Setting("METRICS_AT", parse_offsets, "1h,24h,7d,30d",
            "When to read each post's counters, counted from its publishing (durations, comma-separated).",
            section="metrics", field="metrics_at"),
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
