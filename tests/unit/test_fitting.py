"""Fitting images per platform (scheduler.fitting): every platform's copy is within its declared
rules, whatever was attached, and what was changed is said."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from scheduler import fitting
from scheduler.fitting import FitCache, FitOption, fit_image, fitted_copy, fitted_file
from scheduler.media import ImageError
from scheduler.platforms import PLATFORMS, adapter_class
from scheduler.platforms.base import MemoryState
from scheduler.platforms.types import ImageRules
from tests.helpers import image_bytes

IMAGE_PLATFORMS = sorted(p for p in PLATFORMS if adapter_class(p).rules.images is not None)


def rules(platform: str) -> ImageRules:
    r = adapter_class(platform).rules.images
    assert r is not None
    return r


def save(img: Image.Image, fmt: str, **opts: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **opts)
    return out.getvalue()


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    """A 6000×4000 camera-sized JPEG of about 20 MB (noise at a quarter size, enlarged)."""
    small = Image.frombytes("RGB", (1500, 1000), random.Random(1).randbytes(1500 * 1000 * 3))
    data = save(small.resize((6000, 4000), Image.Resampling.BICUBIC), "JPEG", quality=98)
    assert len(data) > 15_000_000
    return data


def transparent_png() -> bytes:
    img = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (100, 100, 300, 300))
    return save(img, "PNG")


def cmyk_jpeg() -> bytes:
    return save(Image.new("CMYK", (500, 400), (0, 255, 255, 0)), "JPEG")


def sixteen_bit_png() -> bytes:
    row = (65535).to_bytes(2, "little") * 200 + (32768).to_bytes(2, "little") * 200  # white | mid grey
    img = Image.frombytes("I;16", (400, 300), row * 300)
    return save(img, "PNG")


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (400, 300), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def strip() -> bytes:
    return image_bytes("PNG", 1, 5000)


def phone_photo() -> bytes:
    return image_bytes("JPEG", 640, 480, orientation=6, gps=True)


SAMPLES = {"transparent PNG": transparent_png, "CMYK JPEG": cmyk_jpeg, "16-bit PNG": sixteen_bit_png,
           "animated GIF": animated_gif, "1×5000 strip": strip, "phone photo": phone_photo}


def assert_within(platform: str, data: bytes, option: FitOption | None = None) -> Image.Image:
    """The fitted copy obeys every rule the platform declares; returns it decoded."""
    r = rules(platform)
    fitted = fit_image(data, r, option)
    img = Image.open(io.BytesIO(fitted.data))
    assert Image.MIME[str(img.format)] in r.formats, (platform, img.format)
    assert fitted.mime == Image.MIME[str(img.format)]
    assert len(fitted.data) <= r.max_bytes
    w, h = img.size
    assert (fitted.width, fitted.height) == (w, h)
    assert not r.max_pixels or w * h <= r.max_pixels
    assert not r.max_side or max(w, h) <= r.max_side
    assert not r.max_width or w <= r.max_width
    assert not r.min_width or w >= r.min_width
    assert not r.max_side_sum or w + h <= r.max_side_sum
    assert (r.min_ratio or 0) <= w / h <= (r.max_ratio or float("inf")), (platform, w, h)
    assert not img.getexif(), "metadata left in the copy"
    return img


@pytest.mark.parametrize("platform", IMAGE_PLATFORMS)
def test_a_20_mb_camera_photo_fits_every_platform(platform: str, big_jpeg: bytes) -> None:
    img = assert_within(platform, big_jpeg)
    fitted = fit_image(big_jpeg, rules(platform))
    assert fitted.changes and not fitted.original
    if platform == "instagram":  # decoded at a quarter of the size directly (JPEG DCT scaling), then fitted
        assert img.size == (1440, 960)
        assert fitted.changes[0] == "decoded at 1500×1000 (JPEG reduced-scale decoding; it is scaled down anyway)"
    if platform == "mastodon":  # 16 MiB and 33 MP: only the quality steps down, the size stays
        assert img.size == (6000, 4000) and fitted.changes == ("quality 90",)


@pytest.mark.parametrize("sample", sorted(SAMPLES))
@pytest.mark.parametrize("platform", IMAGE_PLATFORMS)
def test_every_sample_fits_every_platform(platform: str, sample: str) -> None:
    assert_within(platform, SAMPLES[sample]())


def test_an_image_that_is_already_fine_is_sent_as_it_is() -> None:
    data = image_bytes("JPEG", 1080, 1080)
    fitted = fit_image(data, rules("instagram"))
    assert fitted.original and fitted.data == data and fitted.describe().endswith("as attached")


def test_transparency_becomes_white_for_instagram_and_stays_for_png_platforms() -> None:
    img = assert_within("instagram", transparent_png())
    assert img.format == "JPEG"
    corner = img.convert("RGB").getpixel((2, 2))
    assert isinstance(corner, tuple) and min(corner) > 245  # white, not black
    fitted = fit_image(transparent_png(), rules("instagram"))
    assert "transparency filled with white" in fitted.changes and "converted PNG → JPEG" in fitted.changes
    # a colour asked for with IMAGE_FIT=pad:#rrggbb fills the transparency too
    coloured = Image.open(io.BytesIO(fit_image(transparent_png(), rules("instagram"),
                                               FitOption.parse("pad:#0000ff")).data))
    blue = coloured.convert("RGB").getpixel((2, 2))
    assert isinstance(blue, tuple) and blue[2] > 230 and blue[0] < 30
    # X takes PNG: the transparency is kept
    assert fit_image(transparent_png(), rules("x")).original


def test_cmyk_becomes_rgb() -> None:
    fitted = fit_image(cmyk_jpeg(), rules("x"))
    assert Image.open(io.BytesIO(fitted.data)).mode == "RGB"
    assert "CMYK converted to RGB" in fitted.changes


def test_sixteen_bit_becomes_eight_bit_keeping_the_tones() -> None:
    fitted = fit_image(sixteen_bit_png(), rules("x"))
    img = Image.open(io.BytesIO(fitted.data))
    assert img.mode == "L"
    assert img.getpixel((10, 10)) == 255 and img.getpixel((390, 10)) == 128
    assert "16-bit reduced to 8-bit" in fitted.changes


def test_an_animated_gif_is_kept_where_gif_is_taken_else_its_first_frame() -> None:
    kept = fit_image(animated_gif(), rules("x"))
    assert kept.original and Image.open(io.BytesIO(kept.data)).n_frames == 3
    first = fit_image(animated_gif(), rules("instagram"))
    assert first.mime == "image/jpeg"
    assert "animated GIF: first frame only (the platform takes no GIF)" in first.changes
    assert any(c.startswith("animated GIF: first frame") for c in fit_image(animated_gif(), rules("telegram")).changes)


def test_a_phone_photo_is_turned_upright_and_loses_its_gps_position() -> None:
    fitted = fit_image(phone_photo(), rules("x"))
    img = Image.open(io.BytesIO(fitted.data))
    assert img.size == (480, 640)  # orientation 6: displayed portrait
    assert not img.getexif() and b"PhoneMaker" not in fitted.data
    assert "metadata removed" in fitted.changes and "turned upright (EXIF orientation)" in fitted.changes
    # the blue top-left corner of the stored pixels is now at the top right
    top_right = img.convert("RGB").getpixel((477, 2))
    assert isinstance(top_right, tuple) and top_right[2] > 200 and top_right[0] < 60


def test_the_colour_profile_is_kept() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = save(Image.new("RGB", (3000, 2000), (10, 120, 200)), "JPEG", icc_profile=icc)
    fitted = fit_image(data, rules("instagram"))
    assert not fitted.original
    assert Image.open(io.BytesIO(fitted.data)).info.get("icc_profile") == icc


def test_a_strip_is_padded_or_cropped_per_channel_setting() -> None:
    padded = assert_within("telegram", strip())
    assert padded.height == 5000 and padded.width >= 250
    assert any(c.startswith("padded 1×5000") for c in fit_image(strip(), rules("telegram")).changes)
    cropped = assert_within("telegram", strip(), FitOption.parse("crop"))
    assert cropped.width == 1 and cropped.height == 19
    # Instagram: padded to 4:5, then scaled up to its 320-pixel minimum width at most
    ig = assert_within("instagram", strip())
    assert 0.8 <= ig.width / ig.height < 0.81


def test_a_wide_photo_is_padded_with_a_blurred_fill_of_itself() -> None:
    wide = Image.new("RGB", (3000, 1000), (0, 160, 0))
    fitted = fit_image(save(wide, "JPEG"), rules("instagram"))
    img = Image.open(io.BytesIO(fitted.data)).convert("RGB")
    assert 1.89 <= img.width / img.height <= 1.91
    top = img.getpixel((img.width // 2, 1))
    assert isinstance(top, tuple) and top[1] > 120 and top[0] < 60  # the photo's own green, not black


def test_quality_steps_down_before_the_size_does() -> None:
    data = image_bytes("JPEG", 800, 600, noise=True)
    at_80 = len(save(Image.open(io.BytesIO(data)), "JPEG", quality=80))
    tight = ImageRules(formats=frozenset({"image/jpeg"}), max_bytes=at_80 + 10)
    fitted = fit_image(data, tight)
    assert (fitted.width, fitted.height) == (800, 600) and fitted.changes == ("quality 80",)
    tighter = ImageRules(formats=frozenset({"image/jpeg"}), max_bytes=at_80 // 3)
    smaller = fit_image(data, tighter)
    assert smaller.width < 800 and len(smaller.data) <= at_80 // 3
    assert smaller.changes[-1].startswith("scaled 800×600 →")


def test_an_image_that_cannot_be_fitted_is_refused_saying_why() -> None:
    impossible = ImageRules(formats=frozenset({"image/jpeg"}), max_bytes=500)
    with pytest.raises(ImageError, match="cannot be brought under 500 bytes"):
        fit_image(image_bytes("JPEG", 800, 600, noise=True), impossible)


def test_fitted_copies_are_stored_once_and_reused(tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    source.write_bytes(transparent_png())
    media = tmp_path / "media"
    first = fitted_file(media, source, rules("instagram"))
    assert first.parent == media and first.suffix == ".jpg"
    made = first.stat().st_ino
    # the same file, not written again (only marked as used: media pruning spares it for a day)
    assert fitted_file(media, source, rules("instagram")) == first and first.stat().st_ino == made
    # other rules or another IMAGE_FIT: another copy; an image needing nothing: the source itself
    assert fitted_file(media, source, rules("instagram"), FitOption.parse("pad:#000000")) != first
    assert fitted_file(media, source, rules("x")) == source
    assert sorted(p.name for p in media.iterdir()) == sorted({first.name, *(p.name for p in media.iterdir())})
    assert not list(media.glob("*.part"))


def test_what_a_copy_is_stays_noted_beside_it_so_asking_again_fits_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "banner.png"
    Image.new("RGBA", (1200, 300), (200, 40, 40, 128)).save(source)  # 4:1, wider than Instagram's 1.91:1
    media = tmp_path / "media"
    copy, facts = fitted_copy(media, source, rules("instagram"), FitOption.parse("crop"))
    assert facts.mime == "image/jpeg" and facts.bytes == copy.stat().st_size and facts.reshaped == "cropped"
    with Image.open(copy) as img:
        assert img.size == (facts.width, facts.height)
    same, as_is = fitted_copy(media, source, rules("x"))
    assert same == source and as_is.original and as_is.reshaped is None and as_is.bytes == source.stat().st_size

    def no_fitting(*args: object, **kwargs: object) -> None:
        raise AssertionError("fitted again")

    monkeypatch.setattr(fitting, "fit_image", no_fitting)
    assert fitted_copy(media, source, rules("instagram"), FitOption.parse("crop")) == (copy, facts)
    assert fitted_copy(media, source, rules("x")) == (source, as_is)
    assert fitted_file(media, source, rules("instagram"), FitOption.parse("crop")) == copy


def test_mastodon_uses_the_servers_own_image_limits() -> None:
    cls = adapter_class("mastodon")
    default = cls.rules_for({}, MemoryState()).images
    assert default is not None and default.max_bytes == 16 * 1024 * 1024 and default.max_pixels == 33_177_600
    learned = cls.rules_for({}, MemoryState({"image_size_limit": "8388608", "image_matrix_limit": "2073600"})).images
    assert learned is not None and learned.max_bytes == 8_388_608 and learned.max_pixels == 2_073_600
    fitted = fit_image(image_bytes("JPEG", 3000, 2000), learned)
    assert fitted.width * fitted.height <= 2_073_600


def test_image_fit_is_a_channel_key_of_every_platform_taking_images() -> None:
    for platform in IMAGE_PLATFORMS:
        cls = adapter_class(platform)
        assert "IMAGE_FIT" in cls.all_keys()
        base = {k: "x" for k in cls.required_keys[0]}
        assert not [p for p in cls.validate_options({**base, "IMAGE_FIT": "pad:#FFaa00"}) if "IMAGE_FIT" in p]
        assert any("IMAGE_FIT 'stretch' is not pad, pad:#rrggbb or crop" in p
                   for p in cls.validate_options({**base, "IMAGE_FIT": "stretch"}))
    assert "IMAGE_FIT" not in adapter_class("outbox").all_keys()


def test_one_cache_for_every_platform_gives_each_the_copy_it_gets_alone_and_decodes_once_per_scale(
        big_jpeg: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    alone = {p: fit_image(big_jpeg, rules(p)) for p in IMAGE_PLATFORMS}
    decoded: list[tuple[int, int]] = []
    real_load = fitting.load_image

    def counted(img: Image.Image, name: str = "image") -> Image.Image:
        decoded.append(img.size)
        return real_load(img, name)

    monkeypatch.setattr(fitting, "load_image", counted)
    cache = FitCache()
    shared = {p: fit_image(big_jpeg, rules(p), cache=cache) for p in IMAGE_PLATFORMS}
    assert {p: (f.data, f.changes) for p, f in shared.items()} == {p: (f.data, f.changes) for p, f in alone.items()}
    # the full-size photo once, and once at each reduced JPEG scale (Instagram and Threads: 1440 wide)
    assert sorted(decoded) == sorted(set(decoded)) and (6000, 4000) in decoded and len(decoded) <= 3
    # another image empties the cache: it holds one image at a time
    before = len(decoded)
    fit_image(image_bytes("JPEG", 800, 600, noise=True), rules("bluesky"), cache=cache)
    fit_image(big_jpeg, rules("x"), cache=cache)
    assert decoded[before:] == [(800, 600), (6000, 4000)]


def test_a_photo_scaled_to_a_byte_limit_is_scaled_once_from_the_full_image_and_fills_the_limit() -> None:
    grainy = image_bytes("JPEG", 1600, 1200, noise=True)
    limit = 300_000
    fitted = fit_image(grainy, ImageRules(formats=frozenset({"image/jpeg"}), max_bytes=limit))
    assert len(fitted.data) <= limit
    assert fitted.changes[-1].startswith("scaled 1600×1200 →") and fitted.changes[-1].endswith("to fit 300,000 bytes")
    # the estimate lands near the limit rather than far under it (a tenth bigger would be over)
    bigger = Image.open(io.BytesIO(grainy)).resize((int(fitted.width * 1.1), int(fitted.height * 1.1)),
                                                   Image.Resampling.LANCZOS)
    assert len(save(bigger, "JPEG", quality=80)) > limit


@pytest.mark.parametrize("mode", ["P", "1", "L", "RGBA"])
def test_a_png_of_any_mode_over_the_byte_limit_is_scaled_down_within_it(mode: str) -> None:
    noise = Image.frombytes("RGB", (800, 600), random.Random(3).randbytes(800 * 600 * 3))
    img = noise.quantize(256) if mode == "P" else noise.convert(mode)
    data = save(img, "PNG")
    limit = len(data) // 3
    fitted = fit_image(data, ImageRules(formats=frozenset({"image/png"}), max_bytes=limit))
    assert fitted.mime == "image/png" and len(fitted.data) <= limit and fitted.width < 800
    assert Image.open(io.BytesIO(fitted.data)).mode == img.mode


@pytest.mark.parametrize("mode", ["P", "1", "L", "LA", "RGBA"])
def test_a_strip_of_any_mode_is_padded_with_a_blurred_fill_of_itself(mode: str) -> None:
    strip = Image.new("RGB", (100, 5000), (200, 30, 30))
    img = strip.quantize(16) if mode == "P" else strip.convert(mode)
    fitted = fit_image(save(img, "PNG"), rules("telegram"))
    assert fitted.mime == "image/png" and (fitted.width, fitted.height) == (252, 5000)
    assert fitted.changes == ("padded 100×5000 → 252×5000 with blurred fill (ratio 1:19.90)",)
