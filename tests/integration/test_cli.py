"""The `promo` command as people script against it: output, --format json, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine

from scheduler.cli import main

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
POST_KEYS = {"id", "channel", "platform", "status", "scheduled_at", "published_at", "text", "remote_id",
             "remote_url", "attempts", "error"}
UMKM = "id,name,city,curated\nu1,Amplang Kakak,Balikpapan,ya\n"
PRODUCTS = ("id;umkm_id;name;description;price;url;tags;curation\n"
            "p1;u1;Amplang Ikan;Kerupuk renyah khas Balikpapan.;25000;https://amplang.co.id/p1;oleholeh;approved\n")


def base_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db",
        "PROMO_TEMPLATES_DIR": str(TEMPLATES),
        "PROMO_MEDIA_DIR": str(tmp_path / "media"),
        "PROMO_CHANNELS": "outbox,x_kota",
        "PROMO_CHANNEL_OUTBOX_PATH": str(tmp_path / "outbox.jsonl"),
        "PROMO_CHANNEL_OUTBOX_SLOTS": "09:00,19:00",
        "PROMO_CHANNEL_X_KOTA_PLATFORM": "x",
        "PROMO_CHANNEL_X_KOTA_ACCESS_TOKEN": "x-token-value-123456",
    }


@pytest.fixture
def promo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``promo ARGS`` in-process in tmp_path; returns (exit code, stdout, stderr)."""
    for key in list(os.environ):
        if key.startswith("PROMO_"):
            monkeypatch.delenv(key)
    for key, value in base_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    assert run("db", "upgrade")[0] == 0
    (tmp_path / "umkm.csv").write_text(UMKM)
    (tmp_path / "products.csv").write_text(PRODUCTS)
    return run


def subprocess_promo(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={"PATH": os.environ.get("PATH", ""), **env})


# --- subprocess: the real command ------------------------------------------------------------

def test_real_command_imports_and_queues(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    assert subprocess_promo(tmp_path, env, "db", "upgrade").returncode == 0
    (tmp_path / "umkm.csv").write_text(UMKM)
    (tmp_path / "products.csv").write_text(PRODUCTS)
    assert subprocess_promo(tmp_path, env, "import", "umkm", "umkm.csv").returncode == 0
    assert subprocess_promo(tmp_path, env, "import", "products", "products.csv").returncode == 0
    done = subprocess_promo(tmp_path, env, "post", "new", "--product", "p1", "--channel", "outbox", "--queue",
                            "--format", "json")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert POST_KEYS <= set(row)
    assert row["channel"] == "outbox" and row["status"] == "scheduled"
    assert row["scheduled_at"][10:] in ("T09:00:00+08:00", "T19:00:00+08:00")  # one of the channel's slots
    listed = subprocess_promo(tmp_path, env, "post", "list", "--format", "json")
    assert [(r["id"], r["text"]) for r in json.loads(listed.stdout)] == [(row["id"], row["text"])]


def test_bad_configuration_exits_1_with_one_message_and_no_secret(tmp_path: Path) -> None:
    secret = "EAAGm0PX4ZCpsBAKZBq7rT0ps3cr3tVALUE"
    env = {**base_env(tmp_path), "PROMO_CHANNELS": "outbox,fb", "PROMO_CHANNEL_FB_PLATFORM": "facebook",
           "PROMO_CHANNEL_FB_ACCESS_TOKEN": secret, "PROMO_CHANNEL_FB_SLOTS": secret,
           "PROMO_TIMEZONE": "Asia/Nowhere", "PROMO_COLOUR": "blue"}
    done = subprocess_promo(tmp_path, env, "post", "list")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("invalid configuration") == 1
    for key in ("PROMO_CHANNEL_FB: missing PAGE_ID", "PROMO_CHANNEL_FB_SLOTS", "PROMO_TIMEZONE", "PROMO_COLOUR"):
        assert key in done.stderr
    assert secret not in done.stderr and "Traceback" not in done.stderr


def test_usage_error_exits_2(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    done = subprocess_promo(tmp_path, env, "post", "new", "--text", "x", "--channel", "outbox", "--at",
                            "2030-01-01 10:00", "--queue")
    assert done.returncode == 2 and "not allowed with argument" in done.stderr
    assert subprocess_promo(tmp_path, env, "import", "stuff", "x.csv").returncode == 2


# --- in-process ------------------------------------------------------------------------------

def test_import_reports_every_bad_row_and_writes_nothing(promo, tmp_path: Path) -> None:
    assert promo("import", "umkm", "umkm.csv")[0] == 0
    (tmp_path / "bad.csv").write_text(PRODUCTS + "p2;u9;B;;mahal;;;approved\np3;u1;;;1000;;;nah\n")
    code, out, err = promo("import", "products", "bad.csv")
    assert code == 1
    assert "line 3, column 'umkm_id'" in err and "line 3, column 'price'" in err
    assert "line 4, column 'name'" in err and "line 4, column 'curation'" in err
    code, out, _ = promo("records", "list", "products", "--format", "json")
    assert json.loads(out) == []
    code, out, err = promo("import", "products", "bad.csv", "--skip-invalid")
    assert code == 0 and "1 created" in out and "2 invalid row(s) skipped" in out
    assert "skipped" in err and "line 3" in err


def test_reimport_says_unchanged_and_records_list_shows_them(promo) -> None:
    promo("import", "umkm", "umkm.csv")
    assert "1 created" in promo("import", "products", "products.csv")[1]
    code, out, _ = promo("import", "products", "products.csv")
    assert code == 0 and "0 created, 0 updated, 1 unchanged" in out
    code, out, _ = promo("records", "list", "products", "--format", "json")
    [row] = json.loads(out)
    assert (row["id"], row["umkm_id"], row["price"], row["price_text"]) == ("p1", "u1", 25000, "Rp 25.000")
    code, out, _ = promo("records", "list", "products")
    assert "Amplang Ikan" in out and "Rp 25.000" in out


def test_compose_previews_each_channel_with_count_and_limit(promo) -> None:
    promo("import", "umkm", "umkm.csv")
    promo("import", "products", "products.csv")
    code, out, _ = promo("compose", "--product", "p1", "--channel", "outbox,x_kota")
    assert code == 0
    assert "── outbox (outbox)" in out and "── x_kota (x)" in out
    assert "/280 (x_weighted)" in out and "/10000 (graphemes)" in out
    code, out, _ = promo("compose", "--product", "p1", "--channel", "x_kota", "--format", "json")
    [row] = json.loads(out)
    assert row["counts"][0]["limit"] == 280 and 0 < row["counts"][0]["count"] <= 280
    assert "Rp 25.000" in row["text"]


def test_compose_shows_what_each_platform_receives_of_the_image(promo, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    monkeypatch.setenv("PROMO_CHANNELS", "outbox,x_kota,tg")
    monkeypatch.setenv("PROMO_CHANNEL_TG_PLATFORM", "telegram")
    monkeypatch.setenv("PROMO_CHANNEL_TG_BOT_TOKEN", "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    monkeypatch.setenv("PROMO_CHANNEL_TG_CHAT_ID", "@kota")

    strip = Image.new("RGBA", (100, 5000), (0, 0, 0, 0))
    strip.paste((200, 0, 0, 255), (0, 0, 100, 2500))
    strip.save(tmp_path / "strip.png")
    code, out, _ = promo("compose", "--text", "Kue lapis", "--channel", "outbox,x_kota", "--image", "strip.png")
    assert code == 0, out
    assert "[image: PNG 100×5000, " in out and "as attached]" in out  # the outbox takes it as it is
    code, out, _ = promo("compose", "--text", "Kue lapis", "--channel", "x_kota", "--image", "strip.png",
                         "--format", "json")
    [row] = json.loads(out)
    assert row["image"] == {"format": "image/png", "width": 100, "height": 5000, "bytes": row["image"]["bytes"],
                            "changes": [], "as_attached": True}
    # Telegram takes no ratio over 20: padded (a blurred fill by default, a colour or a crop per channel)
    code, out, _ = promo("compose", "--text", "Kue lapis", "--channel", "tg", "--image", "strip.png")
    assert code == 0 and "[image: PNG 252×5000, " in out
    assert "padded 100×5000 → 252×5000 with blurred fill (ratio 1:19.90)" in out
    monkeypatch.setenv("PROMO_CHANNEL_TG_IMAGE_FIT", "crop")
    code, out, _ = promo("compose", "--text", "Kue lapis", "--channel", "tg", "--image", "strip.png",
                         "--format", "json")
    [row] = json.loads(out)
    assert (row["image"]["width"], row["image"]["height"]) == (100, 1990)
    assert row["image"]["changes"][0].startswith("cropped 100×5000 → 100×1990")
    assert not (tmp_path / "media").exists() or not list((tmp_path / "media").iterdir())  # a preview stores nothing
    code, out, _ = promo("compose", "--text", "x", "--channel", "x_kota", "--image", "nope.png")
    assert code != 0


def test_post_new_takes_several_images_with_their_alts_in_order(promo, tmp_path: Path) -> None:
    from tests.helpers import image_bytes

    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(image_bytes("PNG", 40, 30))
    code, out, err = promo("post", "new", "--text", "Kue", "--channel", "x_kota", "--draft", "--image", "a.png",
                           "--alt", "Kue A", "--image", "b.png", "--alt", "Kue B", "--format", "json")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["image_alt"] == "Kue A"
    from scheduler.config import load_settings
    from scheduler.models import Post
    from scheduler.storage.db import Database

    db = Database(load_settings(dict(os.environ)).database_url)
    with db.session() as session:
        post = session.get(Post, row["id"])
        assert post is not None and json.loads(post.more_images or "[]")[0][1] == "Kue B"
    db.dispose()


def test_compose_of_a_post_that_cannot_fit_exits_1(promo) -> None:
    code, out, _ = promo("compose", "--text", "x" * 400, "--channel", "x_kota")
    assert code == 1 and "ERROR" in out and "280" in out


def test_post_lifecycle_through_the_command(promo) -> None:
    with time_machine.travel("2023-10-25 02:00:00+00:00", tick=False):
        code, out, _ = promo("post", "new", "--text", "Kantor tutup.", "--channel", "outbox",
                             "--at", "2023-10-25 19:00", "--format", "json")
        assert code == 0
        [row] = json.loads(out)
        assert POST_KEYS <= set(row)
        assert (row["status"], row["scheduled_at"]) == ("scheduled", "2023-10-25T19:00:00+08:00")
        pid = str(row["id"])
        code, out, _ = promo("post", "reschedule", pid, "--at", "2023-10-26 09:00")
        assert code == 0 and "2023-10-26T09:00:00+08:00" in out
        code, out, _ = promo("post", "list", "--format", "json")
        assert [(r["id"], r["status"]) for r in json.loads(out)] == [(int(pid), "scheduled")]
        code, out, _ = promo("post", "cancel", pid, "--reason", "salah")
        assert code == 0 and "cancelled" in out
        code, out, _ = promo("post", "show", pid, "--format", "json")
        shown = json.loads(out)
        assert shown["status"] == "cancelled" and shown["history"][-1]["note"] == "salah"
        assert shown["history"][-1]["error"] is None  # a reason, not an error
        code, _, err = promo("post", "retry", pid)
        assert code == 1 and "only failed, expired or needs_review" in err


def test_past_time_is_refused_but_now_works(promo) -> None:
    with time_machine.travel("2023-10-25 02:00:00+00:00", tick=False):
        code, out, err = promo("post", "new", "--text", "x", "--channel", "outbox", "--at", "2023-10-25 09:00")
        assert code == 1 and "in the past" in err and out == ""
        code, out, _ = promo("post", "new", "--text", "x", "--channel", "outbox", "--now", "--format", "json")
        assert code == 0 and json.loads(out)[0]["scheduled_at"] == "2023-10-25T10:00:00+08:00"


def test_queue_and_draft(promo) -> None:
    with time_machine.travel("2023-10-25 02:00:00+00:00", tick=False):  # 10:00 WITA
        times = []
        for _ in range(3):
            code, out, _ = promo("post", "new", "--text", "x", "--channel", "outbox", "--queue", "--format", "json")
            times.append(json.loads(out)[0]["scheduled_at"])
        assert times == ["2023-10-25T19:00:00+08:00", "2023-10-26T09:00:00+08:00", "2023-10-26T19:00:00+08:00"]
        code, out, _ = promo("post", "new", "--text", "x", "--channel", "outbox", "--draft", "--format", "json")
        assert json.loads(out)[0]["status"] == "draft" and json.loads(out)[0]["scheduled_at"] is None


def test_image_is_validated(promo, tmp_path: Path) -> None:
    (tmp_path / "fake.jpg").write_text("hello")
    code, _, err = promo("post", "new", "--text", "x", "--channel", "outbox", "--now", "--image", "fake.jpg")
    assert code == 1 and "not a JPEG, PNG, GIF or WebP" in err
    code, _, err = promo("post", "new", "--text", "x", "--channel", "outbox", "--now", "--image", "none.png")
    assert code == 1 and "no such file" in err


def test_approval_flow(promo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMO_REQUIRE_APPROVAL", "true")
    code, out, _ = promo("post", "new", "--text", "x", "--channel", "outbox", "--now", "--format", "json")
    [row] = json.loads(out)
    assert row["status"] == "pending_approval"
    code, out, err = promo("--as", "kepala", "post", "approve", str(row["id"]))
    assert code == 0, err
    assert f"post {row['id']}: scheduled" in out


def test_unknown_record_is_a_failure_not_a_crash(promo) -> None:
    code, out, err = promo("post", "new", "--product", "nope", "--channel", "outbox", "--now")
    assert code == 1 and "no product with id 'nope'" in err and "Traceback" not in err


def test_post_new_without_a_time_or_with_a_malformed_one_is_a_usage_error(tmp_path, monkeypatch, capsys):
    for key in [k for k in os.environ if k.startswith("PROMO_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PROMO_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.setenv("PROMO_DATABASE_URL", f"sqlite:///{tmp_path}/promo.db")
    monkeypatch.chdir(tmp_path)
    assert main(["db", "upgrade"]) == 0
    assert main(["post", "new", "--text", "Halo", "--channel", "outbox"]) == 2
    assert "--at WHEN, --queue or --now" in capsys.readouterr().err
    assert main(["post", "new", "--text", "Halo", "--channel", "outbox", "--at", "besok pagi"]) == 2
    assert "YYYY-MM-DD HH:MM" in capsys.readouterr().err
    assert main(["post", "list", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


# --- free text is refused, not cut, unless --shorten (issue 9.1) --------------------------------

def test_post_new_refuses_free_text_that_does_not_fit_and_queues_nothing(promo, monkeypatch) -> None:
    monkeypatch.setenv("PROMO_CHANNELS", "outbox,x_kota,masto")
    monkeypatch.setenv("PROMO_CHANNEL_MASTO_PLATFORM", "mastodon")
    monkeypatch.setenv("PROMO_CHANNEL_MASTO_BASE_URL", "https://mastodon.example")
    monkeypatch.setenv("PROMO_CHANNEL_MASTO_ACCESS_TOKEN", "masto-token-123456")
    x_text = " ".join(["Pasar murah di Lapangan Merdeka."] * 8) + " " + "a" * 17  # 281 characters
    code, out, err = promo("post", "new", "--text", x_text, "--channel", "outbox,x_kota,masto", "--now")
    assert code == 1 and out == ""
    assert "channel x_kota (x): free_text/_default.j2: text is 281 weighted characters, 1 over the limit of 280" \
        in err and "--shorten" in err
    assert "masto" not in err  # 281 fits Mastodon's 500
    masto_text = "x" * 473 + " https://balikpapan.go.id/" + "p" * 100 + " 🎉 " + "b"  # URL counts 23: 501
    code, _, err = promo("post", "new", "--text", masto_text, "--channel", "masto,outbox", "--now")
    assert code == 1 and "channel masto (mastodon): free_text/_default.j2: text is 501 characters, 1 over" in err
    code, out, _ = promo("post", "list", "--format", "json")
    assert json.loads(out) == []  # nothing queued on any channel
    code, out, _ = promo("post", "new", "--text", x_text, "--channel", "outbox,x_kota", "--now", "--shorten",
                         "--format", "json")
    assert code == 0
    outbox, x = json.loads(out)
    assert outbox["text"] == x_text and x["text"].endswith("Merdeka.") and len(x["text"]) < 280


def test_compose_refuses_free_text_that_does_not_fit_unless_shorten(promo) -> None:
    text = " ".join(["Pasar murah di Lapangan Merdeka."] * 10)
    code, out, _ = promo("compose", "--text", text, "--channel", "x_kota")
    assert code == 1 and "ERROR: free_text/_default.j2: text is 329 weighted characters, 49 over" in out
    code, out, _ = promo("compose", "--text", text, "--channel", "x_kota", "--shorten")
    assert code == 0 and "shortened to fit" in out
