"""The commands added with the actions layer: `post reject`, `post edit`, `channels pause|resume`."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine

from scheduler.config import load_settings
from scheduler.models import ChannelStatus
from scheduler.storage import channels as channel_store
from scheduler.storage import claims
from scheduler.storage.db import Database
from tests.integration.test_cli import promo  # noqa: F401  (the fixture)

NOW = "2023-10-25 02:00:00+00:00"  # 10:00 WITA


def new_post(promo, *args: str) -> dict:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, err = promo("post", "new", "--channel", "outbox", "--format", "json", *args)
    assert code == 0, err
    [row] = json.loads(out)
    return row  # type: ignore[no-any-return]


def history(promo, pid: int) -> list[dict]:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, _ = promo("post", "show", str(pid), "--format", "json")
    assert code == 0
    return json.loads(out)["history"]  # type: ignore[no-any-return]


# --- post reject ----------------------------------------------------------------------------------

def test_reject_sends_a_pending_post_back_to_draft_with_the_reason(promo, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("PROMO_REQUIRE_APPROVAL", "true")
    row = new_post(promo, "--text", "Harga Rp 5.000", "--at", "2030-01-01 09:00")
    assert row["status"] == "pending_approval"
    code, out, err = promo("--as", "kepala", "post", "reject", str(row["id"]), "--reason", "harga salah")
    assert (code, out.strip()) == (0, f"post {row['id']}: draft"), err
    last = history(promo, row["id"])[-1]
    assert (last["from_status"], last["to_status"], last["actor"], last["note"]) == \
        ("pending_approval", "draft", "kepala", "rejected: harga salah")
    # A draft is not pending any more: rejecting it again fails (exit 1) and says why.
    code, _, err = promo("post", "reject", str(row["id"]), "--reason", "lagi")
    assert code == 1 and "not pending_approval" in err


def test_reject_needs_a_reason_and_changes_none_when_one_post_cannot_be_rejected(promo, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("PROMO_REQUIRE_APPROVAL", "true")
    pending = new_post(promo, "--text", "Satu", "--at", "2030-01-01 09:00")
    code, _, err = promo("post", "reject", str(pending["id"]))
    assert code == 2 and "--reason" in err
    code, _, err = promo("post", "reject", str(pending["id"]), "--reason", "   ")
    assert code == 1 and "say why" in err
    draft = new_post(promo, "--text", "Dua", "--draft")
    code, _, err = promo("post", "reject", str(pending["id"]), str(draft["id"]), "--reason", "tidak")
    assert code == 1 and f"post {draft['id']} is draft" in err
    code, out, _ = promo("post", "list", "--format", "json")
    assert {r["id"]: r["status"] for r in json.loads(out)}[pending["id"]] == "pending_approval"


# --- post edit ------------------------------------------------------------------------------------

def test_edit_replaces_the_text_of_a_scheduled_post_and_records_it(promo) -> None:  # noqa: F811
    row = new_post(promo, "--text", "Kantor tutup.", "--at", "2030-01-01 09:00")
    code, out, err = promo("--as", "rina", "post", "edit", str(row["id"]), "--text", "Kantor tutup hari Jumat.")
    assert code == 0, err
    assert out.startswith(f"post {row['id']}: scheduled; text edited [") and "24/" in out
    code, out, _ = promo("post", "show", str(row["id"]), "--format", "json")
    shown = json.loads(out)
    assert shown["text"] == "Kantor tutup hari Jumat." and shown["status"] == "scheduled"
    assert (shown["history"][-1]["actor"], shown["history"][-1]["note"]) == ("rina", "text edited (13 → 24 characters)")
    code, out, _ = promo("audit", "--entity", "post", "--format", "json")
    assert [(a["actor"], a["action"], a["entity_id"]) for a in json.loads(out)] == [("rina", "post.edit", str(row["id"]))]


def test_edit_refuses_text_that_does_not_fit_and_never_shortens_it(promo) -> None:  # noqa: F811
    code, out, err = promo("post", "new", "--text", "Singkat", "--channel", "x_kota", "--at", "2030-01-01 09:00",
                           "--format", "json")
    assert code == 0, err
    [row] = json.loads(out)
    long = "kata " * 60  # 300 characters: over X's 280
    code, out, err = promo("post", "edit", str(row["id"]), "--text", long)
    assert code == 1 and out == ""
    assert "over the limit of 280" in err and "nothing changed" in err
    code, out, _ = promo("post", "show", str(row["id"]), "--format", "json")
    assert json.loads(out)["text"] == "Singkat" and len(json.loads(out)["history"]) == 1


def test_edit_of_a_sent_or_cancelled_post_is_refused(promo) -> None:  # noqa: F811
    row = new_post(promo, "--text", "x", "--at", "2030-01-01 09:00")
    assert promo("post", "cancel", str(row["id"]))[0] == 0
    code, _, err = promo("post", "edit", str(row["id"]), "--text", "y")
    assert code == 1 and "only draft, pending_approval or scheduled posts can be edited" in err
    code, _, err = promo("post", "edit", "999", "--text", "y")
    assert code == 1 and "no post with id 999" in err


def test_with_approval_required_an_edited_approved_post_needs_approval_again(promo, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("PROMO_REQUIRE_APPROVAL", "true")
    row = new_post(promo, "--text", "Versi satu", "--at", "2030-01-01 09:00")
    assert promo("post", "approve", str(row["id"]))[0] == 0
    code, out, _ = promo("post", "edit", str(row["id"]), "--text", "Versi dua")
    assert code == 0 and out.startswith(f"post {row['id']}: pending_approval;")
    assert history(promo, row["id"])[-1]["note"].endswith("needs approval again")


# --- channels pause / resume ----------------------------------------------------------------------

def claimable(now: dt.datetime) -> list[int]:
    db = Database(load_settings().database_url)
    try:
        return [c.id for c in claims.claim_due(db.engine, worker="t", now=now, lease=dt.timedelta(seconds=1))]
    finally:
        db.dispose()


def test_a_paused_channel_keeps_its_posts_until_resumed(promo) -> None:  # noqa: F811
    with time_machine.travel(NOW, tick=False):
        code, out, err = promo("--as", "rina", "channels", "pause", "OUTBOX", "--reason", "akun diperiksa")
        assert (code, out.strip()) == (0, "channel outbox: paused; its 0 waiting posts wait until "
                                          "`promo channels resume outbox`"), err
        code, out, _ = promo("channels", "list", "--format", "json")
        outbox = next(c for c in json.loads(out) if c["name"] == "outbox")
        assert (outbox["status"], outbox["reason"]) == ("paused", "akun diperiksa")
        row = new_post(promo, "--text", "Info", "--now")
        now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        assert claimable(now) == []  # the dispatcher does not take it
        code, out, _ = promo("channels", "pause", "outbox")
        assert (code, out.strip()) == (0, "channel outbox: already paused (1 waiting post)")
        code, out, err = promo("channels", "resume", "outbox")
        assert code == 0 and out.startswith("channel outbox: active again; its 1 waiting post goes out"), err
        assert claimable(now) == [row["id"]]
        code, out, _ = promo("audit", "--entity", "channel", "--format", "json")
        audit = [(a["actor"], a["action"]) for a in json.loads(out)]
        assert audit[-2][0] == "rina" and [action for _, action in audit[-2:]] == ["channel.paused", "channel.active"]


def test_pause_or_resume_of_an_unknown_channel_fails_and_needs_reauth_is_not_resumed(promo) -> None:  # noqa: F811
    code, _, err = promo("channels", "pause", "nope")
    assert code == 1 and "no channel named 'nope'" in err
    assert promo("channels", "resume")[0] == 2
    db = Database(load_settings().database_url)
    with db.session() as s:
        channel_store.sync_configured(s, load_settings())
        channel_store.set_status(s, channel_store.get_channel(s, "x_kota"), ChannelStatus.NEEDS_REAUTH,
                                 "token revoked", "dispatcher")
    db.dispose()
    code, _, err = promo("channels", "resume", "x_kota")
    assert code == 1 and "promo channels check x_kota" in err
    code, out, _ = promo("channels", "list", "--format", "json")
    assert next(c for c in json.loads(out) if c["name"] == "x_kota")["status"] == "needs_reauth"


@pytest.mark.parametrize("args", [("post", "reject", "--help"), ("post", "edit", "--help"),
                                  ("channels", "pause", "--help"), ("channels", "resume", "--help")])
def test_new_commands_have_help(promo, args: tuple[str, ...]) -> None:  # noqa: F811
    code, out, _ = promo(*args)
    assert code == 0 and "usage: promo" in out
