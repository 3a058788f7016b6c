"""The instagram adapter: container → poll → publish, reconcile, token refresh."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
import time_machine

from scheduler import errors
from scheduler.platforms.base import Media, ReadyPost
from scheduler.platforms.graph_errors import ContainerGone
from tests.platforms.graphfake import FakeGraph, graph_error, make_adapter

IG = "17841400000000001"
TOKEN = "IGAA-SECRET-ig-token"
OPTIONS = {"IG_USER_ID": IG, "ACCESS_TOKEN": TOKEN, "GRAPH_HOST": "graph.instagram.com",
           "BASE_URL": "http://127.0.0.1:9", "POLL_INTERVAL": "0", "POLL_ATTEMPTS": "3"}
MEDIA, PUBLISH, LIST = f"/v21.0/{IG}/media", f"/v21.0/{IG}/media_publish", f"/v21.0/{IG}/media"
CONTAINER, MEDIA_ID = "17889455560051444", "17920238422030506"
NOW = dt.datetime(2024, 10, 23, 2, 0, tzinfo=dt.UTC)
TEXT = "Kue Lapis Spesial cuma Rp 25.000! Link di bio #UMKM #Balikpapan"
KEY = "container:k1"


POST_DEFAULTS = {"post_id": 1, "idempotency_key": "k1", "text": TEXT, "link": "https://umkm.example/kue",
                 "created_at": NOW - dt.timedelta(hours=1)}


def jpeg(tmp_path, name="kue.jpg") -> Media:
    img = tmp_path / name
    img.write_bytes(b"\xff\xd8\xff\xe0" + b"0" * 64)
    return Media.from_path(img, alt_text="Kue lapis di piring", public_url=f"https://media.example/{name}")


def status(code: str, detail: str | None = None) -> httpx.Response:
    body = {"status_code": code, "id": CONTAINER}
    if detail:
        body["status"] = detail
    return httpx.Response(200, json=body)


def happy_routes(over=None):
    routes = {
        ("POST", MEDIA): httpx.Response(200, json={"id": CONTAINER}),
        ("GET", f"/v21.0/{CONTAINER}"): [status("IN_PROGRESS"), status("FINISHED")],
        ("POST", PUBLISH): httpx.Response(200, json={"id": MEDIA_ID}),
        ("GET", f"/v21.0/{MEDIA_ID}"): httpx.Response(200, json={
            "id": MEDIA_ID, "permalink": "https://www.instagram.com/p/C1a2B3c4D5e/"}),
    }
    routes.update(over or {})
    return routes


def adapter(routes, options=OPTIONS, state=None):
    fake = FakeGraph(routes)
    a, memory = make_adapter("instagram", options, fake, state)
    return a, fake, memory


async def test_image_post_creates_polls_and_publishes_the_container(post_factory, tmp_path):
    a, fake, memory = adapter(happy_routes())
    stored_before_publish = []
    fake.on_request = lambda s: stored_before_publish.append(memory.get(KEY)) if s.path == PUBLISH else None
    result = await a.publish(post_factory(image=jpeg(tmp_path)))
    create, poll1, poll2, publish, permalink = fake.sent
    assert (create.method, create.path, create.query) == ("POST", MEDIA, {})
    assert create.headers["content-type"] == "application/x-www-form-urlencoded"
    assert create.form == {"image_url": "https://media.example/kue.jpg", "caption": TEXT,
                           "alt_text": "Kue lapis di piring", "access_token": TOKEN}
    for poll in (poll1, poll2):
        assert poll.query == {"fields": "status_code,status"} and poll.bearer == TOKEN
    assert publish.form == {"creation_id": CONTAINER, "access_token": TOKEN} and publish.query == {}
    assert permalink.query == {"fields": "id,permalink"} and permalink.bearer == TOKEN
    assert stored_before_publish == [CONTAINER]
    assert not [s.raw_url for s in fake.sent if TOKEN in s.raw_url or "access_token" in s.query]
    assert memory.get(KEY) is None  # dropped once published
    assert (result.remote_id, result.remote_url) == (MEDIA_ID, "https://www.instagram.com/p/C1a2B3c4D5e/")


async def test_several_images_publish_one_carousel_of_child_containers_in_order(post_factory, tmp_path):
    children = [httpx.Response(200, json={"id": f"1788945556005100{i}"}) for i in range(3)]
    a, fake, memory = adapter(happy_routes({("POST", MEDIA): [*children, httpx.Response(200, json={"id": CONTAINER})]}))
    images = [jpeg(tmp_path, f"kue{i}.jpg") for i in range(3)]
    images[1] = Media.from_path(images[1].path, public_url=images[1].public_url)  # no alt text
    result = await a.publish(post_factory(image=images[0], more_images=tuple(images[1:])))
    creates = fake.calls("POST", MEDIA)
    assert [c.form for c in creates[:3]] == [
        {"image_url": "https://media.example/kue0.jpg", "alt_text": "Kue lapis di piring", "is_carousel_item": "true",
         "access_token": TOKEN},
        {"image_url": "https://media.example/kue1.jpg", "is_carousel_item": "true", "access_token": TOKEN},
        {"image_url": "https://media.example/kue2.jpg", "alt_text": "Kue lapis di piring", "is_carousel_item": "true",
         "access_token": TOKEN}]
    assert creates[3].form == {"caption": TEXT, "media_type": "CAROUSEL",
                               "children": "17889455560051000,17889455560051001,17889455560051002",
                               "access_token": TOKEN}
    assert fake.calls("POST", PUBLISH)[0].form == {"creation_id": CONTAINER, "access_token": TOKEN}
    assert result.remote_id == MEDIA_ID and memory.get(KEY) is None


async def test_no_image_or_no_public_url_or_wrong_type_is_rejected_before_any_request(post_factory, tmp_path):
    a, fake, _ = adapter({})
    with pytest.raises(errors.RejectedContent, match="image"):
        await a.publish(ReadyPost(post_id=1, idempotency_key="k1", text=TEXT))
    p = post_factory(image=jpeg(tmp_path))
    no_url = ReadyPost(post_id=1, idempotency_key="k1", text=TEXT,
                       image=Media(path=p.image.path, mime="image/jpeg", size=10))
    with pytest.raises(errors.RejectedContent, match="PROMO_PUBLIC_MEDIA_BASE_URL"):
        await a.publish(no_url)
    with pytest.raises(errors.RejectedContent, match="JPEG"):
        await a.publish(post_factory(image=jpeg(tmp_path, "kue.png")))
    assert fake.sent == []


async def test_container_error_with_a_retryable_subcode_is_transient_and_forgets_the_container(post_factory, tmp_path):
    a, _, memory = adapter(happy_routes({
        ("GET", f"/v21.0/{CONTAINER}"): status("ERROR", "Error: Media download has failed (2207003)")}))
    with pytest.raises(ContainerGone):
        await a.publish(post_factory(image=jpeg(tmp_path)))
    assert memory.get(KEY) is None


async def test_container_error_for_bad_media_is_rejected(post_factory, tmp_path):
    a, _, memory = adapter(happy_routes({
        ("GET", f"/v21.0/{CONTAINER}"): status("ERROR", "Error: The aspect ratio is not supported (2207009)")}))
    with pytest.raises(errors.RejectedContent, match="aspect ratio"):
        await a.publish(post_factory(image=jpeg(tmp_path)))
    assert memory.get(KEY) is None


async def test_a_container_still_in_progress_is_kept_and_reused_by_the_next_attempt(post_factory, tmp_path):
    a, fake, memory = adapter(happy_routes({("GET", f"/v21.0/{CONTAINER}"): status("IN_PROGRESS")}))
    with pytest.raises(errors.Transient, match="after 3 checks"):
        await a.publish(post_factory(image=jpeg(tmp_path)))
    assert len(fake.calls("GET")) == 3 and memory.get(KEY) == CONTAINER

    a, fake, memory = adapter(happy_routes({("GET", f"/v21.0/{CONTAINER}"): status("FINISHED")}),
                              state={KEY: CONTAINER})
    result = await a.publish(post_factory(image=jpeg(tmp_path)))
    assert result.remote_id == MEDIA_ID
    assert fake.calls("POST", MEDIA) == []  # no second container


async def test_publish_after_an_earlier_attempt_went_out_does_not_publish_again(post_factory, tmp_path):
    a, fake, memory = adapter({
        ("GET", f"/v21.0/{CONTAINER}"): status("PUBLISHED"),
        ("GET", LIST): httpx.Response(200, json={"data": [
            {"id": MEDIA_ID, "caption": TEXT, "permalink": "https://www.instagram.com/p/X/",
             "timestamp": "2024-10-23T01:30:00+0000"}]}),
    }, state={KEY: CONTAINER})
    result = await a.publish(post_factory(image=jpeg(tmp_path)))
    assert (result.remote_id, result.remote_url) == (MEDIA_ID, "https://www.instagram.com/p/X/")
    assert fake.calls("POST") == [] and memory.get(KEY) is None


async def test_timeout_on_media_publish_is_unknown_and_reconcile_finds_the_media(post_factory, tmp_path):
    a, _, memory = adapter(happy_routes({("POST", PUBLISH): httpx.ReadTimeout("timed out")}))
    with pytest.raises(errors.UnknownOutcome):
        await a.publish(post_factory(image=jpeg(tmp_path)))
    assert memory.get(KEY) == CONTAINER

    a, fake, memory = adapter({
        ("GET", f"/v21.0/{CONTAINER}"): status("PUBLISHED"),
        ("GET", LIST): httpx.Response(200, json={"data": [
            {"id": "1", "caption": TEXT, "timestamp": "2024-09-01T01:30:00+0000"},  # same text, older
            {"id": MEDIA_ID, "caption": TEXT, "permalink": "https://www.instagram.com/p/C1/",
             "timestamp": "2024-10-23T01:59:00+0000"}]}),
    }, state={KEY: CONTAINER})
    result = await a.reconcile(post_factory(image=jpeg(tmp_path)))
    assert (result.remote_id, result.remote_url) == (MEDIA_ID, "https://www.instagram.com/p/C1/")
    assert fake.calls("GET", LIST)[0].query == {"fields": "id,caption,permalink,timestamp", "limit": "25"}
    assert memory.get(KEY) is None


async def test_reconcile_of_a_published_container_missing_from_the_list_returns_the_container_id(post_factory, tmp_path):
    a, _, _ = adapter({("GET", f"/v21.0/{CONTAINER}"): status("PUBLISHED"),
                       ("GET", LIST): httpx.Response(200, json={"data": []})}, state={KEY: CONTAINER})
    result = await a.reconcile(post_factory(image=jpeg(tmp_path)))
    assert result is not None and result.remote_id == CONTAINER


@pytest.mark.parametrize(("code", "kept"), [("FINISHED", True), ("IN_PROGRESS", True),
                                            ("EXPIRED", False), ("ERROR", False)])
async def test_reconcile_of_an_unpublished_container_says_not_published(post_factory, tmp_path, code, kept):
    a, _, memory = adapter({("GET", f"/v21.0/{CONTAINER}"): status(code)}, state={KEY: CONTAINER})
    assert await a.reconcile(post_factory(image=jpeg(tmp_path))) is None
    assert (memory.get(KEY) == CONTAINER) is kept


async def test_reconcile_without_a_container_looks_at_recent_media(post_factory, tmp_path):
    a, _, _ = adapter({("GET", LIST): httpx.Response(200, json={"data": [
        {"id": "9", "caption": "Other", "timestamp": "2024-10-23T01:59:00+0000"}]})})
    assert await a.reconcile(post_factory(image=jpeg(tmp_path))) is None


async def test_reconcile_that_cannot_ask_is_unknown(post_factory, tmp_path):
    a, _, _ = adapter({("GET", f"/v21.0/{CONTAINER}"): graph_error(2, "Service unavailable", status=503)},
                      state={KEY: CONTAINER})
    with pytest.raises(errors.UnknownOutcome):
        await a.reconcile(post_factory(image=jpeg(tmp_path)))


@time_machine.travel(NOW, tick=False)
async def test_publishing_cap_is_rate_limited_until_the_usage_estimate(post_factory, tmp_path):
    usage = {IG: [{"type": "instagram", "call_count": 30, "total_cputime": 2, "total_time": 3,
                   "estimated_time_to_regain_access": 95}]}
    a, _, memory = adapter(happy_routes({("POST", PUBLISH): graph_error(
        9, "Application request limit reached", 2207042, status=403,
        headers={"X-Business-Use-Case-Usage": json.dumps(usage)})}))
    with pytest.raises(errors.RateLimited) as info:
        await a.publish(post_factory(image=jpeg(tmp_path)))
    assert info.value.retry_at == NOW + dt.timedelta(minutes=95)
    assert memory.get(KEY) == CONTAINER  # reused when the cap lifts


@pytest.mark.parametrize(
    ("response", "expected", "kept"),
    [
        (graph_error(-1, "Media ID is not available", 2207027), errors.Transient, True),
        (graph_error(-2, "The media has expired", 2207020), ContainerGone, False),
        (graph_error(36003, "The aspect ratio is not supported.", 2207009), errors.RejectedContent, False),
        (graph_error(4, "Restricted: spam protection", 2207051), errors.RejectedContent, False),
        (graph_error(190, "Error validating access token", 460), errors.AuthError, True),
        # A 5xx on media_publish may follow a published post: the kept container tells (reconcile).
        (graph_error(-1, "Server error", 2207001, status=500), errors.UnknownOutcome, True),
        (httpx.Response(503, text="Service Unavailable"), errors.UnknownOutcome, True),
    ],
)
async def test_media_publish_errors(post_factory, tmp_path, response, expected, kept):
    a, _, memory = adapter(happy_routes({("POST", PUBLISH): response}))
    with pytest.raises(expected) as info:
        await a.publish(post_factory(image=jpeg(tmp_path)))
    assert "SECRET" not in str(info.value)
    assert (memory.get(KEY) == CONTAINER) is kept


@pytest.mark.parametrize("answer", [httpx.Response(503, text="Service Unavailable"),
                                    graph_error(2, "Service unavailable", status=500, is_transient=True)])
async def test_container_creation_5xx_is_transient_because_nothing_is_published_yet(post_factory, tmp_path, answer):
    a, fake, _ = adapter(happy_routes({("POST", MEDIA): answer}))
    with pytest.raises(errors.Transient) as info:
        await a.publish(post_factory(image=jpeg(tmp_path)))
    assert not isinstance(info.value, errors.UnknownOutcome)


async def test_container_creation_timeout_is_transient_not_unknown(post_factory, tmp_path):
    a, _, memory = adapter(happy_routes({("POST", MEDIA): httpx.ReadTimeout("slow")}))
    with pytest.raises(errors.Transient) as info:
        await a.publish(post_factory(image=jpeg(tmp_path)))
    assert not isinstance(info.value, errors.UnknownOutcome) and memory.get(KEY) is None


# --- long-lived Instagram token -------------------------------------------------------

REFRESHED = "IGAA-SECRET-refreshed-token"


def refresh_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"access_token": REFRESHED, "token_type": "bearer", "expires_in": 5184000})


async def first_use_state():
    """What the adapter stores about ACCESS_TOKEN the first time it sees it."""
    a, _, memory = adapter({("GET", f"/v21.0/{IG}"): httpx.Response(200, json={"id": IG, "username": "kota"})})
    await a.check()
    return dict(memory.values)


async def test_a_new_token_is_not_refreshed_until_a_day_old_then_is_refreshed_and_stored():
    with time_machine.travel(NOW, tick=False):
        state = await first_use_state()
    assert state["token_seen_at"] == "2024-10-23T02:00:00+00:00" and "access_token" not in state

    with time_machine.travel(NOW + dt.timedelta(hours=25), tick=False):
        a, fake, memory = adapter({
            ("GET", "/refresh_access_token"): refresh_answer,
            ("GET", f"/v21.0/{IG}"): httpx.Response(200, json={"id": IG, "username": "kota"}),
        }, state=state)
        assert await a.check() == f"Instagram @kota ({IG}, graph.instagram.com)"
    refresh, check = fake.sent
    assert refresh.query == {"grant_type": "ig_refresh_token", "access_token": TOKEN}
    assert check.bearer == REFRESHED
    assert memory.get("access_token") == REFRESHED
    assert memory.get("access_token_expires_at") == "2024-12-23T03:00:00+00:00"  # +60 days


async def test_a_stored_token_is_preferred_and_refreshed_ahead_of_expiry(post_factory, tmp_path):
    with time_machine.travel(NOW, tick=False):
        state = await first_use_state()
    state.update({"access_token": "IGAA-SECRET-stored", "access_token_expires_at": "2024-10-28T00:00:00+00:00"})
    with time_machine.travel(NOW, tick=False):
        a, fake, memory = adapter({("GET", "/refresh_access_token"): refresh_answer, **happy_routes()}, state=state)
        await a.publish(post_factory(image=jpeg(tmp_path)))
    assert fake.sent[0].query == {"grant_type": "ig_refresh_token", "access_token": "IGAA-SECRET-stored"}
    assert {s.form.get("access_token") or s.bearer for s in fake.sent[1:]} == {REFRESHED}

    # far from expiry: the stored token is used as is
    state.update({"access_token": "IGAA-SECRET-stored", "access_token_expires_at": "2024-12-20T00:00:00+00:00"})
    with time_machine.travel(NOW, tick=False):
        a, fake, _ = adapter(happy_routes(), state=state)
        await a.publish(post_factory(image=jpeg(tmp_path)))
    assert {s.form.get("access_token") or s.bearer for s in fake.sent} == {"IGAA-SECRET-stored"}


async def test_a_new_access_token_option_replaces_the_stored_one():
    with time_machine.travel(NOW, tick=False):
        state = await first_use_state()
    state.update({"access_token": "IGAA-SECRET-stored", "access_token_expires_at": "2024-12-20T00:00:00+00:00"})
    a, fake, memory = adapter({("GET", f"/v21.0/{IG}"): httpx.Response(200, json={"id": IG})},
                              options={**OPTIONS, "ACCESS_TOKEN": "IGAA-SECRET-new-option"}, state=state)
    await a.check()
    assert fake.sent[0].bearer == "IGAA-SECRET-new-option"
    assert memory.get("access_token") is None


async def test_a_failed_refresh_is_an_auth_error_with_a_reason_and_no_secret():
    with time_machine.travel(NOW, tick=False):
        state = await first_use_state()
    with time_machine.travel(NOW + dt.timedelta(days=2), tick=False):
        a, _, memory = adapter({("GET", "/refresh_access_token"): graph_error(
            190, f"Error validating access token: Session has expired ({TOKEN})", 463)}, state=state)
        with pytest.raises(errors.AuthError) as info:
            await a.check()
    text = str(info.value)
    assert "token refresh" in text and "new long-lived token" in text
    assert "SECRET" not in text and memory.get("access_token") is None


async def test_facebook_login_tokens_are_never_refreshed():
    options = {k: v for k, v in OPTIONS.items() if k != "GRAPH_HOST"} | {"ACCESS_TOKEN": "EAAB-SECRET-fb"}
    page_token = httpx.Response(200, json=[{"code": 200, "body": json.dumps({"data": {"type": "PAGE", "expires_at": 0}})}])
    a, fake, memory = adapter({("GET", f"/v21.0/{IG}"): httpx.Response(200, json={"id": IG, "username": "k"}),
                               ("POST", "/v21.0/"): page_token},
                              options=options, state={"token_seen_at": "2020-01-01T00:00:00+00:00"})
    with time_machine.travel(NOW, tick=False):
        assert await a.check() == f"Instagram @k ({IG}, graph.facebook.com)\n  token: PAGE token, does not expire"
    assert [s.path for s in fake.sent] == [f"/v21.0/{IG}", "/v21.0/"]  # no /refresh_access_token
    assert a.base_url == "http://127.0.0.1:9"
    options.pop("BASE_URL")
    b, _, _ = adapter({}, options=options)
    assert b.base_url == "https://graph.facebook.com"
    c, _, _ = adapter({}, options={**options, "ACCESS_TOKEN": "IGQSECRET"})
    assert c.base_url == "https://graph.instagram.com"


def test_graph_host_must_be_one_of_the_two_logins():
    from scheduler.platforms import adapter_class

    cls = adapter_class("instagram")
    assert cls.validate_options({**OPTIONS, "GRAPH_HOST": "instagram"}) == []
    assert cls.validate_options({**OPTIONS, "GRAPH_HOST": "graph.facebook.com"}) == []
    [problem] = cls.validate_options({**OPTIONS, "GRAPH_HOST": "https://graph.instagram.com"})
    assert problem.startswith("GRAPH_HOST")


# --- 30 hashtags; Facebook Login token expiry ---------------------------------------------


def test_a_caption_with_more_than_30_hashtags_is_refused_when_composed():
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from scheduler.composer import Composer, text_context
    from scheduler.platforms.instagram import InstagramAdapter

    composer = Composer(Path(__file__).resolve().parents[2] / "templates", ZoneInfo("Asia/Makassar"), "id")
    rules = InstagramAdapter.rules.text_rules(with_image=True)
    thirty = "Festival Kuliner! " + " ".join(f"#umkm{i}" for i in range(30))
    assert composer.compose("free_text", "instagram", text_context(thirty), rules).text == thirty
    with pytest.raises(errors.TooLongError) as info:
        composer.compose("free_text", "instagram", text_context(thirty + " #satu_lagi"), rules,
                         body=("text", thirty + " #satu_lagi"))
    message = str(info.value)
    assert "text is 31 hashtags, 1 over the limit of 30 hashtags" in message and "without any caption" in message


FB_OPTIONS = {"IG_USER_ID": IG, "ACCESS_TOKEN": "EAAB-SECRET-fb-token", "GRAPH_HOST": "graph.facebook.com",
              "BASE_URL": "http://127.0.0.1:9"}
CHECK_DAY = dt.datetime(2026, 6, 1, 3, 0, tzinfo=dt.UTC)


def debug_answer(**data) -> httpx.Response:
    """A batch answer holding debug_token's answer (Graph returns each body as a JSON string)."""
    body = {"data": {"app_id": "138483919580948", "application": "Promo Kota", "is_valid": True,
                     "scopes": ["instagram_basic", "instagram_content_publish"], **data}}
    return httpx.Response(200, json=[{"code": 200, "body": json.dumps(body)}])


async def _check(answer, options=FB_OPTIONS):
    a, fake, _ = adapter({("GET", f"/v21.0/{IG}"): httpx.Response(200, json={"id": IG, "username": "umkm_bpn"}),
                          ("POST", "/v21.0/"): answer}, options=options)
    with time_machine.travel(CHECK_DAY, tick=False):
        summary = await a.check()
    return summary, fake


async def test_check_says_a_facebook_login_user_token_lasts_60_days_and_warns_two_weeks_ahead():
    expires = int((CHECK_DAY + dt.timedelta(days=9)).timestamp())
    data_access = int((CHECK_DAY + dt.timedelta(days=80)).timestamp())
    summary, fake = await _check(debug_answer(type="USER", expires_at=expires, data_access_expires_at=data_access,
                                              user_id="10160000000000001"))
    assert summary.startswith(f"Instagram @umkm_bpn ({IG}, graph.facebook.com)")
    assert "user token expires after 60 days" in summary and "Page token" in summary
    assert "token: USER token, expires 2026-06-10, data access expires 2026-08-20" in summary
    assert "warning: the token's expiry is 2026-06-10 (in 9 days)" in summary
    assert "data access expiry" not in summary  # 80 days away: no warning
    # debug_token went in a POST body (a batch): no URL carries the token
    batch = fake.calls("POST", "/v21.0/")[0]
    assert batch.form["access_token"] == "EAAB-SECRET-fb-token" and batch.form["include_headers"] == "false"
    assert json.loads(batch.form["batch"])[0]["relative_url"].startswith("debug_token?input_token=")
    assert not [s for s in fake.sent if "EAAB-SECRET" in s.raw_url]


async def test_check_of_a_page_token_says_it_does_not_expire_and_warns_about_data_access():
    data_access = int((CHECK_DAY + dt.timedelta(days=5)).timestamp())
    summary, _ = await _check(debug_answer(type="PAGE", expires_at=0, data_access_expires_at=data_access,
                                           profile_id="104857600123"))
    assert "60 days" not in summary
    assert "token: PAGE token, data access expires 2026-06-06" in summary
    assert "warning: the token's data access expiry is 2026-06-06 (in 5 days)" in summary


async def test_check_survives_an_unreadable_expiry_and_instagram_login_skips_it():
    summary, _ = await _check(httpx.Response(200, json=[{"code": 400, "body": json.dumps({"error": {
        "message": "(#100) You must provide an app access token, or a user access token that is an owner or "
                   "developer of the app", "type": "OAuthException", "code": 100}})}]))
    assert summary.startswith(f"Instagram @umkm_bpn ({IG}") and "user token expires after 60 days" in summary
    assert "warning: cannot read the token's expiry" in summary and "SECRET" not in summary
    a, fake, _ = adapter({("GET", f"/v21.0/{IG}"): httpx.Response(200, json={"id": IG, "username": "umkm_bpn"})})
    with time_machine.travel(NOW, tick=False):
        assert await a.check() == f"Instagram @umkm_bpn ({IG}, graph.instagram.com)"
    assert [s.method for s in fake.sent] == ["GET"]
