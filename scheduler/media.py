"""Images, read by Pillow: what a file really is, and a copy without the metadata a phone
writes into it (GPS position, camera, owner) before it leaves the machine.

Used when an image is attached (``promo post new --image``: a file that is not a whole
JPEG, PNG, GIF or WebP image is refused there, naming the problem) and by adapters whose
platform does not strip metadata itself (Bluesky: its docs ask clients to strip EXIF).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from scheduler.errors import ValidationError

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}

# JPEG segments that carry colour or encoding, not facts about the photo: JFIF, ICC profile, Adobe.
_JPEG_NEUTRAL = (("APP0", b"JFIF"), ("APP0", b"JFXX"), ("APP2", b"ICC_PROFILE"), ("APP14", b"Adobe"))
# Pillow ``info`` keys that hold metadata in any format.
_METADATA_KEYS = ("exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "iptc")


class ImageError(ValidationError):
    """The bytes are not a whole image of a supported type."""


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    #: As displayed, i.e. after the EXIF orientation is applied (a portrait phone photo is taller than wide).
    width: int
    height: int


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    info: ImageInfo
    #: Metadata was found and removed (the image was re-encoded); False = the original bytes.
    stripped: bool


def _open(data: bytes, name: str, shrink: Callable[[Image.Image], tuple[int, int] | None] | None = None,
          load: bool = True) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        if shrink is not None and img.format == "JPEG" and (size := shrink(img)) is not None:
            img.draft(None, size)  # JPEG decodes at 1/2, 1/4 or 1/8 scale directly: far less work
        if load:
            img.load()  # decodes the pixels: a truncated or corrupt file fails here, not at the platform
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a JPEG, PNG, GIF or WebP image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: the image cannot be read ({exc})") from None
    if img.format not in MIME:
        raise ImageError(f"{name}: {img.format} images are not supported (JPEG, PNG, GIF or WebP)")
    return img


def open_image(data: bytes, name: str = "image",
               shrink: Callable[[Image.Image], tuple[int, int] | None] | None = None) -> Image.Image:
    """The decoded image (:class:`ImageError` naming the problem when it is not a whole supported image).

    ``shrink`` may name, from the undecoded header, the smallest size (as stored) the caller needs:
    a JPEG is then decoded at the smallest DCT scale at least that big."""
    return _open(data, name, shrink)


def open_header(data: bytes, name: str = "image",
                shrink: Callable[[Image.Image], tuple[int, int] | None] | None = None) -> Image.Image:
    """Like :func:`open_image` without decoding the pixels yet: its ``size`` is the size it will
    decode at (after ``shrink``); :func:`load_image` decodes it."""
    return _open(data, name, shrink, load=False)


def load_image(img: Image.Image, name: str = "image") -> Image.Image:
    """Decodes an image from :func:`open_header` (:class:`ImageError` when the pixels cannot be read)."""
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: the image cannot be read ({exc})") from None
    return img


def orientation(img: Image.Image) -> int:
    """The EXIF orientation (1 = upright as stored)."""
    return _orientation(img)


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except (TypeError, ValueError):
        return 1


def _displayed_size(img: Image.Image) -> tuple[int, int]:
    w, h = img.size
    return (h, w) if _orientation(img) in (5, 6, 7, 8) else (w, h)


def inspect_image(data: bytes, name: str = "image") -> ImageInfo:
    """The type and displayed size of an image; :class:`ImageError` naming the problem otherwise."""
    img = _open(data, name)
    w, h = _displayed_size(img)
    return ImageInfo(MIME[str(img.format)], w, h)


def file_mime(path: Path) -> str | None:
    """The type of a stored image file from its header (Pillow's identification, no decoding:
    the file was decoded whole when it was attached); None when it is missing or not an image."""
    try:
        with Image.open(path) as img:
            return MIME.get(str(img.format))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None


def has_metadata(img: Image.Image) -> bool:
    if any(img.info.get(k) for k in _METADATA_KEYS):
        return True
    if img.format == "JPEG":
        for marker, payload in getattr(img, "applist", []):
            if not any(marker == m and payload.startswith(tag) for m, tag in _JPEG_NEUTRAL):
                return True
    # tEXt / iTXt / zTXt chunks (author, software, GPS notes…)
    return img.format == "PNG" and bool(getattr(img, "text", None))


def without_metadata(data: bytes, name: str = "image", check_pixels: bool = True) -> CleanImage:
    """The image without EXIF, XMP, IPTC, comments or text chunks, its orientation applied to
    the pixels and its colour profile kept. An image without metadata comes back unchanged.

    ``check_pixels=False`` is for a file decoded and written when it was queued (a fitted copy): a
    JPEG's pixels are then decoded only when there is metadata to remove, not to check them again."""
    img = _open(data, name, load=check_pixels)
    if img.format != "JPEG":  # a PNG's text chunks may follow its pixels: only a JPEG's header tells all
        load_image(img, name)
    fmt = str(img.format)
    mime = MIME[fmt]
    if not has_metadata(img):
        w, h = img.size
        return CleanImage(data, ImageInfo(mime, w, h), stripped=False)
    load_image(img, name)
    upright = ImageOps.exif_transpose(img)
    turned = _orientation(img) != 1
    icc = img.info.get("icc_profile")
    out = io.BytesIO()
    # Nothing but the pixels and the colour profile is passed on: Pillow writes EXIF, XMP and
    # text chunks only when asked to.
    opts: dict[str, object] = {"icc_profile": icc} if icc else {}
    frames = getattr(img, "n_frames", 1)
    if fmt == "JPEG":
        if not turned:  # the same quantisation and subsampling: as close to the original as re-encoding gets
            opts.update(quality="keep", subsampling="keep")
        else:
            opts.update(quality=92)
        (img if not turned else upright).save(out, "JPEG", **opts)
    elif fmt == "PNG":
        upright.save(out, "PNG", **opts)
    elif fmt == "WEBP":
        upright.save(out, "WEBP", quality=90, save_all=frames > 1, **opts)
    else:  # GIF
        upright.save(out, "GIF", save_all=frames > 1)
    w, h = upright.size
    return CleanImage(out.getvalue(), ImageInfo(mime, w, h), stripped=True)


def touch(path: Path) -> bool:
    """Mark a stored media file as just used (its modification time now): media pruning
    (:mod:`scheduler.mediaprune`) never deletes a file used in the last day. False when it is
    not there (never stored, or pruned meanwhile): the caller stores it again."""
    now = time.time()
    try:
        os.utime(path, (now, now))
    except FileNotFoundError:
        return False
    return True
