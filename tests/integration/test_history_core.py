"""`promo history`, `promo post list` and `promo status` read through SQLAlchemy Core alone: a
fresh process answers without importing the ORM or mapping the models (most of its start-up time
before), on SQLite without loading the PostgreSQL dialect either, and it prints the same rows the
dashboard's ORM sessions read."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from scheduler import views
from scheduler.cli.output import POST_FIELDS
from scheduler.history_read import HistoryFilter, csv_text, history_rows
from scheduler.models import Channel, Heartbeat, PostStatus
from scheduler.storage import posts as store
from scheduler.storage.db import Database
from tests.integration.test_history_scale import T0, UTC, seed

PROBE = """
import json, sys
from scheduler.cli import main
for argv in json.loads(sys.argv[1]):
    print("=== " + " ".join(argv), flush=True)
    code = main(argv)
    sys.stdout.flush()
    print("=== exit", code)
loaded = ("sqlalchemy.orm", "scheduler.models", "sqlalchemy.dialects.postgresql")
print("LOADED:" + ",".join(m for m in loaded if m in sys.modules))
"""


def run_promo(tmp_path: Path, url: str, *commands: list[str], exits: list[str] | None = None) -> tuple[list[str], set[str]]:
    """Each command's standard output, run one after another in one fresh process (each exits 0
    unless ``exits`` says otherwise), and which of the watched modules that process had loaded by the end."""
    env = {"PATH": os.environ.get("PATH", ""), "PROMO_DATABASE_URL": url, "PROMO_CHANNELS": "outbox",
           "PROMO_CHANNEL_OUTBOX_PATH": str(tmp_path / "outbox.jsonl"), "PROMO_ENV_FILE": str(tmp_path / "none.env"),
           "PROMO_TIMEZONE": "UTC"}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(commands))], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    *body, last = done.stdout.rstrip("\n").split("\n")
    assert last.startswith("LOADED:"), done.stdout
    outputs, codes = [], []
    for chunk in "\n".join(body).split("=== ")[1:]:
        if chunk.startswith("exit "):
            codes.append(chunk.split()[1])
        else:
            outputs.append(chunk.split("\n", 1)[1] if "\n" in chunk else "")
    assert codes == (exits or ["0"] * len(commands)), (done.stdout, done.stderr)
    return outputs, {m for m in last.removeprefix("LOADED:").split(",") if m}


def test_history_answers_on_core_alone_with_the_rows_the_dashboard_reads(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    db.upgrade()
    seed(db, 40)
    since = T0 + dt.timedelta(minutes=17)
    with db.read_session() as s:  # the ORM session the web app reads through
        newest = history_rows(s, HistoryFilter(), UTC, newest_first=True, limit=5)
        attempts = history_rows(s, HistoryFilter(), UTC)
        c1_all = history_rows(s, HistoryFilter(channel="c1", all=True), UTC)
        published = history_rows(s, HistoryFilter(statuses=("published",), since=since), UTC)
    db.dispose()
    assert published and len(c1_all) < 40 and len(attempts) < 40  # the filters below select something

    (page, c1_csv, published_jsonl, table), loaded = run_promo(
        tmp_path, db_url,
        ["history", "--limit", "5", "--format", "json"],
        ["history", "--channel", "c1", "--all", "--format", "csv"],
        ["history", "--status", "published", "--since", since.strftime("%Y-%m-%d %H:%M"), "--format", "jsonl"],
        ["history"],
    )

    assert json.loads(page) == newest
    rows = list(csv.DictReader(io.StringIO(c1_csv.removeprefix("\ufeff"))))
    assert [int(r["id"]) for r in rows] == [r["id"] for r in c1_all]
    assert {r["channel"] for r in rows} == {"c1"} and rows[0]["started_at"] == c1_all[0]["started_at"]
    assert [json.loads(line) for line in published_jsonl.splitlines()] == published
    lines = table.splitlines()
    assert lines[0].startswith("STARTED_AT") and len(lines) == 1 + len(attempts)
    assert lines[1].startswith(attempts[-1]["started_at"])  # newest first
    assert "sqlalchemy.orm" not in loaded and "scheduler.models" not in loaded, loaded
    if db_url.startswith("sqlite"):
        assert "sqlalchemy.dialects.postgresql" not in loaded  # the partial indexes' options stay in models


def test_post_list_and_status_answer_on_core_alone_with_the_rows_the_orm_reads(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    db.upgrade()
    now = dt.datetime.now(UTC).replace(microsecond=0)
    with db.session() as s:
        chans = [Channel(name=f"c{i}", platform="outbox", source="env", options={}) for i in range(2)]
        s.add_all(chans)
        s.flush()
        for i, status in enumerate([PostStatus.SCHEDULED, PostStatus.SCHEDULED, PostStatus.DRAFT, PostStatus.DRAFT,
                                    PostStatus.SCHEDULED, PostStatus.PENDING_APPROVAL]):
            at = None if i == 3 else T0 + dt.timedelta(hours=i % 4, minutes=-i)
            store.create_post(s, channel=chans[i % 2], kind="free_text", text=f"Promo {i}", status=status,
                              scheduled_at=at, actor="staff", link=f"https://example.test/{i}" if i % 2 else None)
        s.add_all([Heartbeat(worker="host-a:1", started_at=now - dt.timedelta(hours=1), last_tick=now),
                   Heartbeat(worker="host-b:2", started_at=now, last_tick=now - dt.timedelta(hours=1))])
    with db.read_session() as s:  # the ORM path these commands took before
        every = [views.post_row(p, UTC) for p in store.list_posts(s, newest_first=True)]
        c1_scheduled = [views.post_row(p, UTC) for p in store.list_posts(
            s, status=["scheduled", "pending_approval"], channel="c1", newest_first=True)]
        two = [views.post_row(p, UTC) for p in store.list_posts(s, limit=2, newest_first=True)]
        shown = store.get_post(s, c1_scheduled[0]["id"])
        show = {**views.post_row(shown, UTC),
                "history": history_rows(s, HistoryFilter(all=True, post_id=shown.id), UTC)}
    db.dispose()
    assert every[0]["scheduled_at"] is None and len(c1_scheduled) == 2  # the filters select something

    (listed, listed_csv, filtered, limited, status_json, status_text, shown_json, shown_text, _), loaded = run_promo(
        tmp_path, db_url,
        ["post", "list", "--format", "json"],
        ["post", "list", "--format", "csv"],
        ["post", "list", "--status", "scheduled,pending_approval", "--channel", "C1", "--format", "json"],
        ["post", "list", "--limit", "2", "--format", "json"],
        ["status", "--format", "json"],
        ["status"],
        ["post", "show", str(shown.id), "--format", "json"],
        ["post", "show", str(shown.id)],
        ["post", "show", "999"],
        exits=["0", "0", "0", "0", "1", "1", "0", "0", "1"],  # a stalled service, no post 999: exit 1
    )

    # Streamed row by row, the very text the list printed whole before (json.dumps, indent 2; the CSV).
    assert listed == json.dumps(every, ensure_ascii=False, indent=2) + "\n"
    assert listed_csv == csv_text([{k: "" if r[k] is None else str(r[k]) for k in POST_FIELDS} for r in every],
                                  POST_FIELDS).replace("\r\n", "\n")  # the probe reads text: newlines are \n
    assert json.loads(listed) == every and json.loads(filtered) == c1_scheduled and json.loads(limited) == two
    report = json.loads(status_json)
    assert report["counts"] == {"scheduled": 3, "draft": 2, "pending_approval": 1}
    assert [(w["worker"], w["stalled"]) for w in report["workers"]] == [("host-a:1", False), ("host-b:2", True)]
    assert "service host-b:2: last tick" in status_text and "STALLED" in status_text
    assert "posts: draft 2, pending_approval 1, scheduled 3" in status_text
    assert json.loads(shown_json) == show and show["history"]
    assert shown_text.splitlines()[0] == f"{'id':>15}: {show['id']}" and show["text"] in shown_text
    assert shown_text.rstrip().splitlines()[-1].startswith(show["history"][-1]["started_at"])
    assert "sqlalchemy.orm" not in loaded and "scheduler.models" not in loaded, loaded
    if db_url.startswith("sqlite"):
        assert "sqlalchemy.dialects.postgresql" not in loaded
