"""The composer: sandbox, strict fields, template choice, language, shortening, default templates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.composer import Composer, event_context, product_context, text_context
from scheduler.config import POST_KINDS
from scheduler.errors import TemplateError, TooLongError
from scheduler.models import Event, Product, Umkm
from scheduler.platforms import PLATFORMS
from scheduler.textrules import TextRule, x_weighted

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
WITA = ZoneInfo("Asia/Makassar")
NOW = dt.datetime(2023, 10, 24, 1, 0, tzinfo=dt.UTC)
X_RULES = (TextRule(280, "x_weighted"),)
BIG = (TextRule(10_000, "graphemes"),)


def make_umkm(**kw: object) -> Umkm:
    fields = dict(external_id="bpp-amplang", name="Amplang Kakak", owner="Siti Rahmah", category="kuliner",
                  city="Balikpapan", district="Balikpapan Selatan", phone="0812-5000-1001",
                  instagram="amplangkakak", website="https://amplang-kakak.co.id", curated=True)
    fields.update(kw)
    return Umkm(**fields)


def make_product(umkm: Umkm | None = None, **kw: object) -> Product:
    fields = dict(external_id="amplang-tenggiri", name="Amplang Ikan Tenggiri 250 g",
                  description="Kerupuk amplang renyah dari ikan tenggiri segar, oleh-oleh khas Balikpapan.",
                  price=25000, url="https://amplang-kakak.co.id/tenggiri", tags=["oleholeh", "Balikpapan"],
                  image=None, curation="approved", active=True)
    fields.update(kw)
    product = Product(**fields)
    product.umkm = umkm or make_umkm()
    return product


def make_event(**kw: object) -> Event:
    fields = dict(external_id="nusakraf-2023", name="Nusakraf 2023",
                  description="Pameran kriya dan fesyen UMKM se-Kalimantan Timur.", venue="Atrium e-Walk",
                  city="Balikpapan", starts_at=dt.datetime(2023, 10, 25, 2, 0, tzinfo=dt.UTC),
                  ends_at=dt.datetime(2023, 10, 29, 13, 0, tzinfo=dt.UTC), url="https://balikpapan.go.id/nusakraf",
                  tags=["Nusakraf", "UMKM"], status="scheduled", image=None)
    fields.update(kw)
    return Event(**fields)


@pytest.fixture
def composer() -> Composer:
    return Composer(TEMPLATES, WITA, "id")


@pytest.fixture
def own(tmp_path: Path) -> tuple[Path, Composer]:
    """A templates folder of the test's own."""
    return tmp_path, Composer(tmp_path, WITA, "id")


def put(folder: Path, name: str, source: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")


# --- sandbox and strictness ---------------------------------------------------------------

@pytest.mark.parametrize("expr", [
    "{{ product.__class__.__mro__ }}",
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ product | attr('__class__') }}",
    "{{ product.__class__ | default('x') }}",          # the sandbox's undefined must not be swallowed
    "{% if product.__class__ is defined %}leak{% endif %}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ product.items }}",                              # printing a method shows Python internals
])
def test_unsafe_access_is_a_template_error_naming_template_and_line(own: tuple[Path, Composer], expr: str) -> None:
    folder, composer = own
    put(folder, "free_text/_default.j2", "Halo\n\n" + expr + "\n")
    ctx = {**text_context("x"), "product": {"name": "Amplang"}}
    with pytest.raises(TemplateError) as info:
        composer.compose("free_text", "outbox", ctx, BIG)
    assert info.value.template == "free_text/_default.j2" and info.value.line == 3
    assert "free_text/_default.j2, line 3" in str(info.value)
    assert "<class" not in str(info.value) and "object at 0x" not in str(info.value)


def test_templates_cannot_change_records(own: tuple[Path, Composer]) -> None:
    folder, composer = own
    put(folder, "free_text/_default.j2", "{{ product.update({'name': 'x'}) }}")
    product = {"name": "Amplang"}
    with pytest.raises(TemplateError, match="line 1"):
        composer.compose("free_text", "outbox", {**text_context("x"), "product": product}, BIG)
    assert product == {"name": "Amplang"}


def test_missing_field_fails_at_compose_time_with_name_and_line(own: tuple[Path, Composer]) -> None:
    folder, composer = own
    put(folder, "product_highlight/_default.j2", "{{ product.name }}\n\n{{ product.colour }}\n")
    with pytest.raises(TemplateError) as info:
        composer.compose("product_highlight", "outbox", product_context(make_product()), BIG)
    assert (info.value.template, info.value.line) == ("product_highlight/_default.j2", 3)
    assert "colour" in str(info.value)


def test_syntax_error_and_runtime_error_name_the_template(own: tuple[Path, Composer]) -> None:
    folder, composer = own
    put(folder, "free_text/_default.j2", "ok\n{% if text %}\nno endif\n")
    with pytest.raises(TemplateError, match=r"free_text/_default.j2.*syntax error"):
        composer.compose("free_text", "outbox", text_context("x"), BIG)
    put(folder, "free_text/x.j2", "ok\n{{ 1 / 0 }}\n")
    with pytest.raises(TemplateError, match=r"free_text/x.j2, line 2: ZeroDivisionError"):
        composer.compose("free_text", "x", text_context("x"), BIG)


# --- template choice and language ----------------------------------------------------------

def test_platform_template_then_default_then_english(tmp_path: Path) -> None:
    put(tmp_path, "free_text/_default.j2", "ID default {{ text }}")
    put(tmp_path, "free_text/x.j2", "ID x {{ text }}")
    put(tmp_path, "free_text/_default.en.j2", "EN default {{ text }}")
    indo = Composer(tmp_path, WITA, "id")
    eng = Composer(tmp_path, WITA, "en")
    ctx = text_context("hi")
    assert indo.compose("free_text", "x", ctx, BIG).text == "ID x hi"
    assert indo.compose("free_text", "mastodon", ctx, BIG).text == "ID default hi"
    assert eng.compose("free_text", "mastodon", ctx, BIG).text == "EN default hi"
    # no English variant for x: the platform template beats the language fallback chain's default
    assert eng.compose("free_text", "x", ctx, BIG).template == "free_text/_default.en.j2"
    with pytest.raises(TemplateError, match="no template for kind 'alert'"):
        indo.compose("alert", "x", ctx, BIG)


def test_template_variants_rotate_by_seed_and_a_named_template_is_kept(tmp_path: Path) -> None:
    put(tmp_path, "free_text/x.j2", "A {{ text }}")
    put(tmp_path, "free_text/x~pagi.j2", "B {{ text }}")
    put(tmp_path, "free_text/x~sore.j2", "C {{ text }}")
    put(tmp_path, "free_text/_default.j2", "D {{ text }}")
    composer = Composer(tmp_path, WITA, "id")
    ctx = text_context("hi")
    seen = {composer.compose("free_text", "x", ctx, BIG, variant=f"p1:2026-11-{d:02}").text for d in range(1, 29)}
    assert seen == {"A hi", "B hi", "C hi"}  # every wording is used
    same = {composer.compose("free_text", "x", ctx, BIG, variant="p1:2026-11-29").template for _ in range(3)}
    assert len(same) == 1  # the same seed, the same variant
    assert composer.compose("free_text", "x", ctx, BIG).text == "A hi"  # no seed: the template itself
    assert composer.compose("free_text", "x", ctx, BIG, template="x.j2", variant="p1:2026-11-02").text == "A hi"
    # a platform without variants keeps its one template
    assert composer.compose("free_text", "mastodon", ctx, BIG, variant="p1:2026-11-02").text == "D hi"


def test_english_templates_use_english_dates(composer: Composer) -> None:
    eng = Composer(TEMPLATES, WITA, "en")
    ctx = event_context(make_event(ends_at=None), now=NOW, tz=WITA)
    assert "Wednesday, 25 October 2023" in eng.compose("event_reminder", "outbox", ctx, BIG).text
    assert "Rabu, 25 Oktober 2023" in composer.compose("event_reminder", "outbox", ctx, BIG).text


# --- fitting ------------------------------------------------------------------------------

def long_product() -> Product:
    sentences = ["Kerupuk amplang renyah dari ikan tenggiri segar pilihan nelayan Teluk Balikpapan.",
                 "Digoreng setiap pagi tanpa pengawet sehingga rasanya gurih dan tahan lama.",
                 "Cocok untuk oleh-oleh keluarga, camilan kantor, maupun suguhan hari raya bersama kerabat."] * 3
    return make_product(description=" ".join(sentences))


def test_too_long_post_is_shortened_at_a_boundary_keeping_link_and_hashtags(composer: Composer) -> None:
    product = long_product()
    result = composer.compose("product_highlight", "x", product_context(product), X_RULES,
                              body=("product.description", product.description))
    assert result.shortened
    assert x_weighted(result.text) <= 280
    assert product.url in result.text and "#oleholeh #Balikpapan #UMKM" in result.text
    kept = result.text.split("\n\n", 1)[1].split("\n")[0]  # the (shortened) description line
    full = product.description
    assert kept.endswith(("…", ".")) and len(kept) > 40
    stem = kept.rstrip("…")
    assert full.startswith(stem)
    # the cut falls between words: the next character of the original is a space (or the end)
    assert full[len(stem):][:1] in ("", " ")
    # and it is the longest such cut: one more word would not fit
    longer = full[: full.find(" ", len(stem) + 1)] if full.find(" ", len(stem) + 1) > 0 else full
    too_long = result.text.replace(kept, longer + "…")
    assert x_weighted(too_long) > 280


def test_free_text_keeps_trailing_link_and_hashtags_when_shortened(composer: Composer) -> None:
    prose = " ".join(["Pasar murah digelar di Lapangan Merdeka mulai pukul tujuh pagi."] * 8)
    text = prose + " https://balikpapan.go.id/pasar #PasarMurah #Balikpapan"
    result = composer.compose("free_text", "x", text_context(text), X_RULES, body=("text", text))
    assert x_weighted(result.text) <= 280 and result.shortened
    assert result.text.endswith("https://balikpapan.go.id/pasar #PasarMurah #Balikpapan")
    assert result.text.startswith("Pasar murah digelar")


def test_what_cannot_fit_is_rejected_with_length_and_limit(composer: Composer) -> None:
    tags = [f"Tagar{i}" for i in range(60)]
    product = make_product(tags=tags)
    with pytest.raises(TooLongError) as info:
        composer.compose("product_highlight", "outbox", product_context(product), (TextRule(200, "graphemes"),),
                         body=("product.description", product.description))
    assert info.value.limit == 200 and info.value.length is not None and info.value.length > 200
    assert "product_highlight/_default.j2" in str(info.value) and "200" in str(info.value)


def test_text_without_a_body_to_cut_is_rejected(composer: Composer) -> None:
    with pytest.raises(TooLongError, match="no description to shorten"):
        composer.compose("alert", "outbox", text_context("x" * 50), (TextRule(20, "graphemes"),))


def test_a_fitting_post_is_left_alone_and_counted(composer: Composer) -> None:
    result = composer.compose("product_highlight", "x", product_context(make_product()), X_RULES,
                              body=("product.description", make_product().description))
    assert not result.shortened
    assert result.counts == ((X_RULES[0], x_weighted(result.text)),)
    assert "Kerupuk amplang renyah dari ikan tenggiri segar, oleh-oleh khas Balikpapan." in result.text


# --- the default templates ----------------------------------------------------------------

def contexts() -> dict[str, dict[str, object]]:
    event = make_event()
    return {
        "product": product_context(make_product()),
        "event": event_context(event, now=NOW, tz=WITA),
        "text": text_context("Kantor Diskominfo tutup pada hari libur nasional.", "https://balikpapan.go.id"),
    }


def context_for(kind: str) -> dict[str, object]:
    c = contexts()
    if kind.startswith("event_"):
        return c["event"]
    if kind in ("free_text", "alert"):
        return c["text"]
    return c["product"]


ALL_TEMPLATES = sorted(str(p.relative_to(TEMPLATES)) for p in TEMPLATES.glob("*/*.j2"))


def test_every_kind_has_a_default_template_in_both_languages() -> None:
    for kind in POST_KINDS:
        assert f"{kind}/_default.j2" in ALL_TEMPLATES
        assert f"{kind}/_default.en.j2" in ALL_TEMPLATES


@pytest.mark.parametrize("name", ALL_TEMPLATES)
def test_each_default_template_renders_cleanly(name: str) -> None:
    kind = name.split("/")[0]
    language = "en" if name.endswith(".en.j2") else "id"
    source = (TEMPLATES / name).read_text(encoding="utf-8")
    text = Composer(TEMPLATES, WITA, language).render(name, context_for(kind))
    lines = text.split("\n")
    assert "\n\n\n" not in text and text == text.strip()
    assert not any(bad in text for bad in ("None", " ,", ", ,", "{{", "{%"))
    assert all(line == line.rstrip() for line in lines)
    if kind not in ("alert", "free_text"):
        # the title stands alone, followed by a blank line
        assert len(lines) > 2 and lines[0] and lines[1] == "", text
    if "event.venue" in source:
        assert "Atrium e-Walk, Balikpapan" in text
        # the place is never glued to the next line's link
        assert not any("Balikpapan" in line and "https://" in line for line in lines), text
    if "hashtags" in source:
        assert lines[-1].startswith("#"), text
        # set off by a blank line, except in X's deliberately compact layout
        assert lines[-2] == "" or name.endswith("/x.j2"), text


def test_product_highlight_default_reads_as_intended(composer: Composer) -> None:
    text = composer.compose("product_highlight", "outbox", product_context(make_product()), BIG).text
    assert text == (
        "✨ Amplang Ikan Tenggiri 250 g dari Amplang Kakak, Balikpapan\n"
        "\n"
        "Kerupuk amplang renyah dari ikan tenggiri segar, oleh-oleh khas Balikpapan.\n"
        "\n"
        "Harga: Rp 25.000\n"
        "\n"
        "Info & pemesanan: https://amplang-kakak.co.id/tenggiri\n"
        "\n"
        "#oleholeh #Balikpapan #UMKM"
    )


def test_event_announcement_default_reads_as_intended(composer: Composer) -> None:
    text = composer.compose("event_announcement", "outbox", event_context(make_event(), now=NOW, tz=WITA),
                            BIG).text
    assert text == (
        "📣 Nusakraf 2023\n"
        "\n"
        "Pameran kriya dan fesyen UMKM se-Kalimantan Timur.\n"
        "\n"
        "📅 25 Okt – 29 Okt 2023\n"
        "🕖 10.00 WITA\n"
        "📍 Atrium e-Walk, Balikpapan\n"
        "\n"
        "Info: https://balikpapan.go.id/nusakraf\n"
        "\n"
        "#Nusakraf #UMKM"
    )


def test_templates_cope_with_sparse_records(composer: Composer) -> None:
    product = make_product(umkm=make_umkm(city=None, district=None, website=None), description=None, price=None,
                           url=None, tags=[])
    text = composer.compose("product_highlight", "outbox", product_context(product), BIG).text
    assert text == "✨ Amplang Ikan Tenggiri 250 g dari Amplang Kakak\n\n#UMKM"
    event = make_event(venue=None, city=None, url=None, description=None, ends_at=None, tags=[])
    for kind in ("event_announcement", "event_reminder", "event_dayof", "event_cancelled"):
        text = composer.compose(kind, "outbox", event_context(event, now=NOW, tz=WITA), BIG).text
        assert "📍" not in text and " di ," not in text and "\n\n\n" not in text
        assert "Nusakraf 2023" in text


def test_a_line_ending_in_a_tag_keeps_its_newline(own: tuple[Path, Composer]) -> None:
    folder, composer = own
    put(folder, "free_text/_default.j2",
        "A{% if text %}!{% endif %}\n\n{% if link %}\nB\n{% endif %}\nC\n")
    assert composer.compose("free_text", "outbox", text_context("t", "l"), BIG).text == "A!\n\nB\nC"


def test_free_text_is_never_shortened_to_nothing(composer: Composer) -> None:
    text = "Pengumuman" * 40 + " https://balikpapan.go.id #Info"  # one long word before the link
    with pytest.raises(TooLongError, match="cannot be cut at a word boundary|first words"):
        composer.compose("free_text", "x", text_context(text), X_RULES, body=("text", text))


@pytest.mark.parametrize("expr", ["9**9**9", "'x' * 10**9", "[1] * 100000000"])
def test_templates_cannot_exhaust_the_service(own: tuple[Path, Composer], expr: str) -> None:
    folder, composer = own
    (folder / "free_text").mkdir()
    (folder / "free_text" / "_default.j2").write_text("Halo\n{{ " + expr + " }}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"free_text/_default.j2, line 2: .*too large"):
        composer.render("free_text/_default.j2", {})


def test_ordinary_arithmetic_still_works(own: tuple[Path, Composer]) -> None:
    folder, composer = own
    (folder / "free_text").mkdir()
    (folder / "free_text" / "_default.j2").write_text("{{ 2**10 }} {{ '-' * 3 }} {{ 3 * 4 }}", encoding="utf-8")
    assert composer.render("free_text/_default.j2", {}) == "1024 --- 12"


# --- tags with hyphens become whole hashtags on every platform (issue 8.7) --------------------

HASHTAG_KINDS = ("product_highlight", "daily_highlight", "event_announcement", "event_reminder", "event_dayof",
                 "event_ongoing")


@pytest.mark.parametrize("language", ["id", "en"])
@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_hyphenated_tags_become_whole_hashtags_on_every_platform(platform: str, language: str) -> None:
    import re

    from scheduler.platforms import adapter_class
    from scheduler.platforms.atproto import facets_for
    from scheduler.platforms.linkedin import little_text
    from scheduler.textrules import hashtag_spans

    composer = Composer(TEMPLATES, WITA, language)
    tags = ["kue-kue", "jalan-jalan"]
    product = make_product(tags=tags)
    event = make_event(tags=tags)
    rules = adapter_class(platform).rules.text
    for kind in HASHTAG_KINDS:
        ctx = (event_context(event, now=NOW, tz=WITA) if kind.startswith("event_")
               else product_context(product))
        text = composer.compose(kind, platform, ctx, rules).text
        last = text.split("\n")[-1]
        assert last.startswith("#KueKue #JalanJalan"), (kind, platform, text)
        assert "kue-kue" not in last and "jalan-jalan" not in last
        # every hashtag is recognised whole: letters, digits and _ only (what X, Instagram,
        # Facebook, Threads, LinkedIn, Telegram and Mastodon link), ...
        assert all(re.fullmatch(r"#\w+", word) for word in last.split()), last
        assert {tag for _, _, tag in hashtag_spans(last)} >= {"KueKue", "JalanJalan"}
        # ... what the Bluesky adapter makes tag facets of, and what LinkedIn's escaping keeps a hashtag
        if platform == "bluesky":
            facet_tags = {f["features"][0].get("tag") for f in facets_for(text)}
            assert {"KueKue", "JalanJalan"} <= facet_tags
        if platform == "linkedin":
            assert "#KueKue #JalanJalan" in little_text(text)


# --- template files that are not UTF-8 (issue 9.14) -------------------------------------------

def test_a_template_that_is_not_utf8_names_the_file_and_byte(own: tuple[Path, Composer]) -> None:
    folder, composer = own
    (folder / "free_text").mkdir()
    path = folder / "free_text" / "_default.j2"
    path.write_bytes(b"Halo\n" + b"x" * 9000 + b"\nHari ini pukul 19.00 \xb7 Balikpapan\n{{ text }}\n")  # cp1252 dot
    with pytest.raises(TemplateError) as info:
        composer.compose("free_text", "outbox", text_context("hi"), BIG)
    assert str(info.value) == (f"{path}: not UTF-8 (byte 9027, line 3: b'\\xb7'); save the file as UTF-8")


def test_an_included_template_that_is_not_utf8_is_named_too(own: tuple[Path, Composer]) -> None:
    folder, composer = own
    put(folder, "free_text/_default.j2", "{% include 'footer.j2' %}\n{{ text }}")
    (folder / "footer.j2").write_bytes("Salam, Diskominfo\n".encode("utf-16"))
    with pytest.raises(TemplateError, match=r"footer.j2: not UTF-8 \(byte 0, line 1"):
        composer.compose("free_text", "outbox", text_context("hi"), BIG)


# --- a huge description is shortened in linear time and memory (issue 9.12) --------------------

@pytest.mark.parametrize("platform", ["x", "mastodon", "bluesky", "telegram", "instagram", "facebook"])
def test_a_1mb_description_is_shortened_with_memory_linear_in_its_size(composer: Composer, platform: str) -> None:
    import tracemalloc

    from scheduler.platforms import adapter_class

    rules = adapter_class(platform).rules.text
    x_weighted("warm up")  # twitter-text compiles its patterns on first use; that is not ours to measure
    sentence = "Kerupuk amplang renyah dari ikan tenggiri segar pilihan nelayan Teluk Balikpapan. "
    huge = (sentence * (1_000_000 // len(sentence) + 1))[:1_000_000]
    product = make_product(description=huge)
    tracemalloc.start()
    try:
        result = composer.compose("product_highlight", platform, product_context(product), rules,
                                  body=("product.description", huge))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Shortening used to copy the text once per word end: ~170,000 copies of up to 1 MB here.
    assert peak < 8 * len(huge), f"peak {peak:,} bytes for a {len(huge):,}-character description"
    assert result.shortened and all(rule.fits(result.text) for rule in rules)
    # the same post as from the description's first 100,000 characters: the cut depends only on the start
    start = huge[:100_000]
    small = composer.compose("product_highlight", platform, product_context(make_product(description=start)),
                             rules, body=("product.description", start))
    assert result.text == small.text
    assert result.text.endswith("#oleholeh #Balikpapan #UMKM")


def test_the_longest_fitting_cut_is_found_wherever_it_is(composer: Composer) -> None:
    words = [f"kata{i}" for i in range(3000)]
    rules = (TextRule(10_000, "graphemes"),)
    for n in (1, 2, 3, 50, 1500, 1598, 1599, 1600, 1601, 2999):  # around the limit (1,599 words fit), far off
        body = " ".join(words[:n])
        result = composer.compose("free_text", "outbox", text_context(body), rules, body=("text", body))
        if len(body) <= 10_000:
            assert not result.shortened and result.text == body
            continue
        assert result.shortened and result.text.endswith("…") and len(result.text) <= 10_000
        kept = result.text[:-1].split(" ")
        assert kept == words[:len(kept)]
        assert len(" ".join(words[:len(kept) + 1]) + "…") > 10_000  # one word more would not fit
