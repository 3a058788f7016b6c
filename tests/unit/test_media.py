"""Images: the real type and displayed size, and metadata (GPS!) stripped without losing the picture."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms, ImageFile

from scheduler.media import ImageError, inspect_image, without_metadata
from tests.helpers import image_bytes


def opened(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_a_phone_photo_loses_gps_and_camera_but_stays_upright() -> None:
    # Stored 64×48 with orientation 6: the phone was held upright, the picture shows 48 wide, 64 tall.
    photo = image_bytes("JPEG", 64, 48, orientation=6, gps=True)
    assert opened(photo).getexif().get_ifd(0x8825)  # the GPS position is in the original
    assert inspect_image(photo).mime == "image/jpeg"
    assert (inspect_image(photo).width, inspect_image(photo).height) == (48, 64)

    clean = without_metadata(photo)
    out = opened(clean.data)
    assert clean.stripped and clean.info.mime == "image/jpeg" and out.format == "JPEG"
    assert dict(out.getexif()) == {} and b"Exif" not in clean.data and b"PhoneMaker" not in clean.data
    assert out.size == (48, 64) and (clean.info.width, clean.info.height) == (48, 64)
    # Rotated 90° clockwise, as the phone showed it: the blue corner moved from top-left to top-right.
    r, g, b = out.getpixel((44, 3))
    assert b > 200 and r < 60
    r, g, b = out.getpixel((3, 3))
    assert r > 150 and b < 100


def test_an_upright_jpeg_keeps_its_pixels_and_size() -> None:
    photo = image_bytes("JPEG", 64, 48, gps=True)
    clean = without_metadata(photo)
    out = opened(clean.data)
    assert clean.stripped and out.size == (64, 48) and b"PhoneMaker" not in clean.data
    before = opened(photo).convert("RGB").tobytes()
    diff = [abs(a - b) for a, b in zip(before, out.convert("RGB").tobytes(), strict=True)]
    # Re-encoded with the original quantisation: no visible change (JPEG's own rounding at the sharp
    # red/blue edge aside).
    assert sum(diff) / len(diff) < 1.5


def test_the_colour_profile_is_kept() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = opened(image_bytes("JPEG", 32, 32, gps=True))
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=img.info["exif"], icc_profile=icc)
    clean = without_metadata(buf.getvalue())
    out = opened(clean.data)
    assert clean.stripped and out.info.get("icc_profile") == icc and dict(out.getexif()) == {}


def test_png_text_chunks_and_exif_are_removed_and_a_clean_png_is_sent_as_it_is() -> None:
    tagged = image_bytes("PNG", 30, 20, gps=True, text={"Location": "Jl. Jend. Sudirman, Balikpapan"})
    clean = without_metadata(tagged)
    out = opened(clean.data)
    assert clean.stripped and out.format == "PNG" and out.text == {} and dict(out.getexif()) == {}
    assert b"Sudirman" not in clean.data and out.tobytes() == opened(tagged).tobytes()

    plain = image_bytes("PNG", 30, 20)
    same = without_metadata(plain)
    assert not same.stripped and same.data == plain and (same.info.width, same.info.height) == (30, 20)


def test_webp_exif_is_removed() -> None:
    tagged = image_bytes("WEBP", 40, 30, gps=True)
    assert b"PhoneMaker" in tagged
    clean = without_metadata(tagged)
    assert clean.stripped and clean.info.mime == "image/webp" and b"PhoneMaker" not in clean.data
    assert dict(opened(clean.data).getexif()) == {}


@pytest.mark.parametrize(("data", "message"), [
    (b"Harga Rp 25.000 per kotak", "not a JPEG, PNG, GIF or WebP image"),
    (image_bytes("JPEG", 64, 48)[:300], "cannot be read"),
    (image_bytes("PNG", 64, 48)[:60], "cannot be read"),
])
def test_what_is_not_a_whole_image_is_refused_with_its_name(data: bytes, message: str) -> None:
    for check in (inspect_image, without_metadata):
        with pytest.raises(ImageError, match=message) as info:
            check(data, "kue.jpg")
        assert str(info.value).startswith("kue.jpg: ")


def test_bmp_is_named_as_unsupported() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "BMP")
    with pytest.raises(ImageError, match="BMP images are not supported"):
        inspect_image(buf.getvalue(), "kue.bmp")


def test_a_fitted_copy_is_sent_without_decoding_it_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """At send time (Bluesky) a copy queued without metadata is only read from its header: no
    decoding in the dispatcher's burst; one that has metadata is still decoded and stripped."""
    clean = image_bytes("JPEG", 2000, 1500, noise=True)
    tagged = image_bytes("JPEG", 60, 40, orientation=6, gps=True)
    decoded: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def counted(self: ImageFile.ImageFile) -> object:
        decoded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counted)
    same = without_metadata(clean, "fit.jpg", check_pixels=False)
    assert same.data == clean and not same.stripped and (same.info.width, same.info.height) == (2000, 1500)
    assert decoded == []
    stripped = without_metadata(tagged, "phone.jpg", check_pixels=False)
    assert stripped.stripped and b"PhoneMaker" not in stripped.data and (stripped.info.width, stripped.info.height) == (40, 60)
    assert decoded and all(size == (60, 40) for size in decoded)
    assert without_metadata(clean, "fit.jpg").data == clean and (2000, 1500) in decoded  # checked by default
