"""Settings: .env and environment, one message naming every bad key, no secret ever printed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from scheduler.config import load_settings, read_environment
from scheduler.errors import ConfigError

TOKEN = "EAAGm0PX4ZCpsBAKZBq7rT0ps3cr3tVALUE"
BOT = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def problems(env: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return info.value


def test_defaults_need_no_credentials() -> None:
    s = load_settings({})
    assert s.database_url == "sqlite:///promo.db" and str(s.timezone) == "Asia/Makassar" and s.language == "id"
    assert [(c.name, c.platform) for c in s.channels] == [("outbox", "outbox")]


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PROMO_LANGUAGE=en\nPROMO_TIMEZONE=Asia/Jakarta\n# a comment\nPROMO_MAX_ATTEMPTS=7\n")
    merged = read_environment(env_file, {"PROMO_TIMEZONE": "Asia/Jayapura"})
    s = load_settings(merged)
    assert s.language == "en" and s.max_attempts == 7
    assert str(s.timezone) == "Asia/Jayapura"


def test_env_file_location_comes_from_promo_env_file(tmp_path: Path) -> None:
    other = tmp_path / "prod.env"
    other.write_text("PROMO_LANGUAGE=en\n")
    merged = read_environment(None, {"PROMO_ENV_FILE": str(other)})
    assert load_settings(merged).language == "en"


def test_one_message_names_every_bad_key() -> None:
    env = {
        "PROMO_TIMEZONE": "Asia/Balikpapan",
        "PROMO_CHANNELS": "fb_kota,masto,tg,bad",
        "PROMO_CHANNEL_FB_KOTA_PLATFORM": "facebook",          # PAGE_ID and ACCESS_TOKEN missing
        "PROMO_CHANNEL_MASTO_PLATFORM": "mastodon",
        "PROMO_CHANNEL_MASTO_BASE_URL": "https://mastodon.example",
        "PROMO_CHANNEL_MASTO_ACCESS_TOKEN": "x" * 20,
        "PROMO_CHANNEL_MASTO_SLOTS": "09:00,25:00",
        "PROMO_CHANNEL_MASTO_SLOTS_SAT": "noon",
        "PROMO_CHANNEL_MASTO_TIMEZONE": "Mars/Olympus",
        "PROMO_CHANNEL_MASTO_COLOUR": "blue",                  # not a mastodon setting
        "PROMO_CHANNEL_TG_PLATFORM": "telegram",
        "PROMO_CHANNEL_TG_BOT_TOKEN": BOT,
        "PROMO_CHANNEL_TG_CHAT_ID": "@kota",
        "PROMO_CHANNEL_BAD_PLATFORM": "myspace",
        "PROMO_REQUIRE_APPROVAL": "perhaps",
        "PROMO_MAX_ATTEMPTS": "many",
        "PROMO_HIGHLIGHT_TIME": "9 pagi",
        "PROMO_LANGUAGE": "fr",
        "PROMO_TIMEZON": "Asia/Makassar",                      # typo of a key
    }
    err = problems(env)
    text = str(err)
    for key in ("PROMO_TIMEZONE", "PROMO_CHANNEL_FB_KOTA", "PROMO_CHANNEL_MASTO_SLOTS:",
                "PROMO_CHANNEL_MASTO_SLOTS_SAT", "PROMO_CHANNEL_MASTO_TIMEZONE", "PROMO_CHANNEL_MASTO_COLOUR",
                "PROMO_CHANNEL_BAD_PLATFORM", "PROMO_REQUIRE_APPROVAL", "PROMO_MAX_ATTEMPTS",
                "PROMO_HIGHLIGHT_TIME", "PROMO_LANGUAGE", "PROMO_TIMEZON:"):
        assert key in text, key
    assert "PAGE_ID" in text and "ACCESS_TOKEN" in text
    assert len(err.problems) == 12
    assert "PROMO_CHANNEL_TG" not in text  # the good channel is not blamed


def test_secrets_never_appear_in_the_message() -> None:
    env = {
        "PROMO_CHANNELS": "fb,tg",
        "PROMO_CHANNEL_FB_PLATFORM": "facebook",
        "PROMO_CHANNEL_FB_ACCESS_TOKEN": TOKEN,
        "PROMO_CHANNEL_FB_BASE_URL": "not a url",
        "PROMO_CHANNEL_FB_SLOTS": TOKEN,                       # a secret pasted in the wrong key
        "PROMO_CHANNEL_TG_PLATFORM": "telegram",
        "PROMO_CHANNEL_TG_BOT_TOKEN": BOT,
        "PROMO_CHANNEL_TG_TOKEN": BOT,                         # unknown key holding a secret
        "PROMO_SECRET_KEY": "s3cr3t-fernet-key-value",
        "PROMO_SECRET": "another-s3cret-value",
    }
    text = str(problems(env))
    for secret in (TOKEN, BOT, BOT.split(":")[1], "s3cr3t-fernet-key-value", "another-s3cret-value"):
        assert secret not in text
    assert "PROMO_CHANNEL_TG_TOKEN" in text and "PROMO_SECRET:" in text and "PROMO_CHANNEL_FB_SLOTS" in text


def test_keys_of_an_unlisted_channel_are_reported() -> None:
    err = problems({"PROMO_CHANNELS": "outbox", "PROMO_CHANNEL_FB_KOTA_PLATFORM": "facebook"})
    assert err.problems == ["PROMO_CHANNEL_FB_KOTA_PLATFORM: no channel of that name in PROMO_CHANNELS (outbox)"]


def test_channel_names_that_share_a_prefix_keep_their_own_keys() -> None:
    s = load_settings({
        "PROMO_CHANNELS": "hook,hook_umkm",
        "PROMO_CHANNEL_HOOK_PLATFORM": "webhook",
        "PROMO_CHANNEL_HOOK_URL": "http://127.0.0.1:9000/a",
        "PROMO_CHANNEL_HOOK_UMKM_PLATFORM": "webhook",
        "PROMO_CHANNEL_HOOK_UMKM_URL": "http://127.0.0.1:9000/b",
    })
    assert {c.name: c.options["URL"] for c in s.channels} == {"hook": "http://127.0.0.1:9000/a",
                                                             "hook_umkm": "http://127.0.0.1:9000/b"}


def test_slots_per_weekday_and_channel_timezone() -> None:
    s = load_settings({
        "PROMO_CHANNELS": "outbox",
        "PROMO_CHANNEL_OUTBOX_SLOTS": "19:00, 09:00",
        "PROMO_CHANNEL_OUTBOX_SLOTS_SAT": "10:30",
        "PROMO_CHANNEL_OUTBOX_SLOTS_SUN": "",
        "PROMO_CHANNEL_OUTBOX_TIMEZONE": "Asia/Jakarta",
    })
    ch = s.channel("outbox")
    assert ch is not None and str(ch.timezone) == "Asia/Jakarta"
    assert ch.slots[0] == (dt.time(9), dt.time(19)) and ch.slots[4] == (dt.time(9), dt.time(19))
    assert ch.slots[5] == (dt.time(10, 30),) and ch.slots[6] == ()
    assert "SLOTS" not in ch.options and "TIMEZONE" not in ch.options


def test_values_are_cast() -> None:
    s = load_settings({"PROMO_REQUIRE_APPROVAL": "ya", "PROMO_MAX_LATENESS_EVENT_DAYOF": "90m",
                       "PROMO_HIGHLIGHT_DAYS": "mon,Fri", "PROMO_HIGHLIGHT_TIME": "07.30"})
    assert s.require_approval is True
    assert s.lateness("event_dayof") == dt.timedelta(minutes=90)
    assert s.highlight_days == (0, 4) and s.highlight_time == dt.time(7, 30)


def test_templates_are_found_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a folder without templates/: the shipped ones are used
    shipped = load_settings({}).templates_dir
    assert (shipped / "product_highlight" / "_default.j2").is_file()
    (tmp_path / "templates").mkdir()  # a folder with its own templates/ (staff edit a copy): those win
    assert load_settings({}).templates_dir.resolve() == (tmp_path / "templates").resolve()
    assert load_settings({"PROMO_TEMPLATES_DIR": "/srv/promo/tpl"}).templates_dir == Path("/srv/promo/tpl")


def test_db_busy_seconds_is_a_positive_number() -> None:
    assert load_settings({"PROMO_DB_BUSY_SECONDS": "2.5"}).db_busy_seconds == 2.5
    assert "PROMO_DB_BUSY_SECONDS" in str(problems({"PROMO_DB_BUSY_SECONDS": "soon"}))


def test_graph_api_version_is_one_checked_setting() -> None:
    assert load_settings({}).graph_api_version is None  # the adapters' pin
    assert load_settings({"PROMO_GRAPH_API_VERSION": "v25.0"}).graph_api_version == "v25.0"
    with pytest.raises(ConfigError, match="PROMO_GRAPH_API_VERSION: '25' is not a Graph API version"):
        load_settings({"PROMO_GRAPH_API_VERSION": "25"})


_TOKEN_CHANNELS = {
    "bluesky": ({"HANDLE": "kota.bsky.social", "APP_PASSWORD": "abcd-efgh-ijkl-mnop"}, True),
    "instagram": ({"IG_USER_ID": "1784", "ACCESS_TOKEN": "IGAAtoken123"}, True),
    "threads": ({"USER_ID": "2501", "ACCESS_TOKEN": "THAAtoken123"}, True),
    "x": ({"ACCESS_TOKEN": "xaccess123"}, False),
    "linkedin": ({"ORGANIZATION_ID": "2414183", "ACCESS_TOKEN": "AQVtoken123"}, False),
    "mastodon": ({"BASE_URL": "https://m.example", "ACCESS_TOKEN": "mastotoken1"}, False),
    "facebook": ({"PAGE_ID": "1048", "ACCESS_TOKEN": "EAABtoken123"}, False),
}


@pytest.mark.parametrize("platform", sorted(_TOKEN_CHANNELS))
def test_secret_key_is_required_where_the_adapter_stores_tokens(platform: str) -> None:
    """Which channels need PROMO_SECRET_KEY follows the adapters' declared token_keys: Bluesky,
    Instagram and Threads always keep refreshed tokens, X and LinkedIn only with REFRESH_TOKEN."""
    options, always = _TOKEN_CHANNELS[platform]
    env = {"PROMO_CHANNELS": "kota", "PROMO_CHANNEL_KOTA_PLATFORM": platform,
           **{f"PROMO_CHANNEL_KOTA_{k}": v for k, v in options.items()}}
    needed = "PROMO_SECRET_KEY: needed because channel 'kota'"
    if always:
        assert any(p.startswith(needed) for p in problems(env).problems)
    else:
        load_settings(env)
    if platform in ("x", "linkedin"):
        refresh = {"PROMO_CHANNEL_KOTA_REFRESH_TOKEN": "refresh12345", "PROMO_CHANNEL_KOTA_CLIENT_ID": "cid",
                   "PROMO_CHANNEL_KOTA_CLIENT_SECRET": "csecret123"}
        assert any(p.startswith(needed) for p in problems({**env, **refresh}).problems)
        load_settings({**env, **refresh, "PROMO_SECRET_KEY": "a long passphrase for tests"})
    load_settings({**env, "PROMO_SECRET_KEY": "a long passphrase for tests"})


def test_every_declared_setting_reports_a_bad_value_under_its_own_name() -> None:
    """Each declared setting is cast on read; a bad value names its key (starlette-style)."""
    from scheduler.config import SETTINGS

    bad = {"DB_BUSY_SECONDS": "soon", "MAX_ATTEMPTS": "0", "TIMEZONE": "Nowhere/Town", "LANGUAGE": "fr",
           "REQUIRE_APPROVAL": "perhaps", "ALERT_MIN_INTERVAL": "a while", "HIGHLIGHT_TIME": "noon",
           "HIGHLIGHT_DAYS": "mon,funday,caturday", "LOG_LEVEL": "loud", "HTTP_ENGINE": "curl"}
    assert set(bad) <= {s.key for s in SETTINGS}
    err = problems({f"PROMO_{k}": v for k, v in bad.items()})
    for key in bad:
        assert any(p.startswith(f"PROMO_{key}: ") for p in err.problems), key
    assert sum(p.startswith("PROMO_HIGHLIGHT_DAYS: ") for p in err.problems) == 2  # each bad day named


def test_the_web_settings_are_read_and_the_old_dashboard_password_is_named() -> None:
    settings = load_settings({"PROMO_WEB_SESSION_IDLE_MINUTES": "15", "PROMO_WEB_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"})
    assert settings.web_session_idle_minutes == 15 and settings.web_trusted_proxies == ("10.0.0.0/8", "127.0.0.1")
    with pytest.raises(ConfigError, match="PROMO_WEB_TRUSTED_PROXIES: 'proxy.local' is not an address"):
        load_settings({"PROMO_WEB_TRUSTED_PROXIES": "proxy.local"})
    with pytest.raises(ConfigError, match="PROMO_WEB_SESSION_IDLE_MINUTES"):
        load_settings({"PROMO_WEB_SESSION_IDLE_MINUTES": "0"})
    with pytest.raises(ConfigError, match="PROMO_WEB_PASSWORD: no longer used: the web app has accounts"):
        load_settings({"PROMO_WEB_PASSWORD": "rahasia"})
