"""Redaction of registered secrets and secret-shaped URL parts."""

from __future__ import annotations

from scheduler.redact import redact, register_secret


def test_registered_secrets_are_masked_wherever_they_appear():
    register_secret("tok-SECRET-123456")
    assert redact("a tok-SECRET-123456 b tok-SECRET-123456") == "a *** b ***"


def test_overlapping_secrets_leave_no_part_of_either():
    register_secret("abcdefSECRET-1")
    register_secret("SECRET-1xyzuvw")
    assert redact("[abcdefSECRET-1xyzuvw]") == "[***]"


def test_thousands_of_urls_sharing_a_start_are_each_masked():
    urls = [f"http://127.0.0.1:5555/regency-{i:04d}/SECRET-hook-{i}" for i in range(3000)]
    for u in urls:
        register_secret(u)
    assert redact(f"POST {urls[1234]} 200") == "POST *** 200"
    assert redact("POST http://127.0.0.1:5555/regency-1234/other 200") == \
        "POST http://127.0.0.1:5555/regency-1234/other 200"


def test_short_values_are_not_registered_and_url_shapes_are_masked_anyway():
    register_secret("1")
    assert redact("1 + 1") == "1 + 1"
    assert redact("GET /bot123456:AAEhBOwEz_abcdefghij/sendMessage") == "GET /bot***/sendMessage"
    assert redact("https://graph.example/me?access_token=EAAB123&fields=id") == \
        "https://graph.example/me?access_token=***&fields=id"
    assert redact("at://did/app.bsky.feed.post?rkey=3kabc") == "at://did/app.bsky.feed.post?rkey=3kabc"


def test_the_registry_is_reset_between_tests_part_one():
    register_secret("only-in-part-one-987654")
    assert redact("x only-in-part-one-987654 y") == "x *** y"


def test_the_registry_is_reset_between_tests_part_two():
    # part one's secret is gone: the autouse secret_registry fixture restored the registry
    assert redact("x only-in-part-one-987654 y") == "x only-in-part-one-987654 y"
