"""Fitting an image to what one platform takes (:class:`ImageRules`), with Pillow, at queue time.

The copy a platform receives is made when the post is queued, never in the dispatcher's burst:

- converted to an accepted format (transparency filled with white, or the ``pad:#rrggbb``
  colour, for a JPEG-only platform; CMYK to RGB; 16-bit to 8-bit; an animated GIF kept for a
  platform that takes GIF, else its first frame);
- its EXIF orientation applied to the pixels, its metadata (GPS, camera) removed, its colour
  profile kept;
- a shape outside the platform's aspect-ratio range padded (a blurred fill of the same photo,
  or a colour) or centre-cropped, per channel (``IMAGE_FIT``);
- scaled to the pixel limits, then JPEG/WebP quality stepped down before the size is.

An image already fine for the platform is sent as it is. Copies are stored once, named by the
hash of the source and the rules, in the media folder; an image that cannot be fitted is
refused with :class:`~scheduler.media.ImageError` saying why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFilter, ImageOps

from scheduler.media import MIME, ImageError, has_metadata, load_image, open_header, orientation, touch
from scheduler.platforms.types import ImageRules

#: Bumped when fitting changes, so stored copies made the old way are not reused.
FIT_VERSION = "2"
#: Tried in turn before the size is touched; then the size is reduced at SCALED_QUALITY.
JPEG_QUALITIES = (90, 80, 70)
SCALED_QUALITY = 80
#: Over this many times the byte limit at a quality, the lower ones are not tried: stepping 90 → 70
#: roughly halves a photo (never to under a third), 80 → 70 takes off a fifth (never a third).
HOPELESS = {90: 2.5, 80: 1.5}
#: Smallest side a fitted copy is scaled down to before the image is refused as too big.
MIN_SIDE = 64
#: Padding and cropping aim this far inside the ratio range, so rounding to whole pixels stays in it.
_RATIO_MARGIN = 0.005
_FORMAT = {v: k for k, v in MIME.items()}
_EXT = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp"}
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


@dataclass(frozen=True)
class Fitted:
    """What a platform receives: the bytes, their type and size, and what was done to them."""

    data: bytes
    mime: str
    width: int
    height: int
    #: Each change, in words ("scaled 6000×4000 → 1440×960", "padded to 0.80:1"); () = the original.
    changes: tuple[str, ...] = ()
    #: The source bytes themselves (nothing needed changing).
    original: bool = False

    def describe(self) -> str:
        what = f"{_FORMAT[self.mime]} {self.width}×{self.height}, {len(self.data):,} bytes"
        return what + ("; as attached" if self.original else "; " + "; ".join(self.changes))


@dataclass(frozen=True)
class FitOption:
    """A channel's IMAGE_FIT: ``pad`` (blurred fill), ``pad:#rrggbb`` (colour) or ``crop``."""

    crop: bool = False
    colour: tuple[int, int, int] | None = None

    @classmethod
    def parse(cls, value: str | None) -> FitOption:
        v = (value or "pad").strip().lower()
        if v == "crop":
            return cls(crop=True)
        if v.startswith("pad:#") and len(v) == 11:
            return cls(colour=(int(v[5:7], 16), int(v[7:9], 16), int(v[9:11], 16)))
        return cls()

    def key(self) -> str:
        return "crop" if self.crop else f"pad{self.colour or ''}"


def _ratio_range(rules: ImageRules) -> tuple[float, float]:
    return (rules.min_ratio or 0.0, rules.max_ratio or math.inf)


def _size_ok(rules: ImageRules, w: int, h: int) -> bool:
    lo, hi = _ratio_range(rules)
    return not ((rules.max_pixels and w * h > rules.max_pixels)
                or (rules.max_side and max(w, h) > rules.max_side)
                or (rules.max_width and w > rules.max_width)
                or (rules.min_width and w < rules.min_width)
                or (rules.max_side_sum and w + h > rules.max_side_sum)
                or not lo <= w / h <= hi)


def _scale_for(rules: ImageRules, w: int, h: int) -> float:
    """The factor that brings ``w``×``h`` within every pixel limit (1 = as it is; > 1 = up to min_width)."""
    scale = 1.0
    if rules.max_side:
        scale = min(scale, rules.max_side / max(w, h))
    if rules.max_width:
        scale = min(scale, rules.max_width / w)
    if rules.max_pixels:
        scale = min(scale, math.sqrt(rules.max_pixels / (w * h)))
    if rules.max_side_sum:
        scale = min(scale, rules.max_side_sum / (w + h))
    if rules.min_width and w * scale < rules.min_width:
        scale = rules.min_width / w
    return scale


def _draft_size(img: Image.Image, rules: ImageRules, option: FitOption) -> tuple[int, int] | None:
    """From an undecoded JPEG's header: the size (as stored) it will be scaled down to at most,
    when that is under half its size (worth decoding at a reduced scale); else None."""
    w, h = img.size
    sw, sh = (h, w) if orientation(img) in (5, 6, 7, 8) else (w, h)
    lo, hi = _ratio_range(rules)
    # the limits apply after padding (a bigger canvas) or cropping (a smaller picture)
    if sw / sh > hi:
        sw, sh = (math.floor(sh * hi), sh) if option.crop else (sw, math.ceil(sw / hi))
    elif sw / sh < lo:
        sw, sh = (sw, math.floor(sw / lo)) if option.crop else (math.ceil(sh * lo), sh)
    scale = _scale_for(rules, sw, sh)
    if scale > 0.5:
        return None
    return (math.ceil(w * scale) + 1, math.ceil(h * scale) + 1)


def _resized(img: Image.Image, scale: float) -> Image.Image:
    w, h = img.size
    size = (max(1, math.floor(w * scale)), max(1, math.floor(h * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0 if scale < 1 else None)


def _eight_bit_rgb(img: Image.Image, icc: bytes | None, changes: list[str]) -> tuple[Image.Image, bytes | None]:
    """CMYK as RGB (its CMYK profile dropped: it does not describe RGB pixels), 16-bit as 8-bit."""
    if img.mode == "CMYK":
        changes.append("CMYK converted to RGB")
        return img.convert("RGB"), None
    if img.mode in _SIXTEEN_BIT:  # greyscale (Pillow reads 16-bit colour PNGs as 8-bit already)
        changes.append("16-bit reduced to 8-bit")
        return img.convert("I").point(lambda v: v * (1 / 256)).convert("L"), icc
    return img, icc


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)


def _flatten(img: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    rgba = img.convert("RGBA")
    out = Image.new("RGB", rgba.size, colour)
    out.paste(rgba, mask=rgba.getchannel("A"))
    return out


def _padded(img: Image.Image, size: tuple[int, int], option: FitOption) -> Image.Image:
    """``img`` centred on a canvas of ``size``: a blurred, stretched copy of itself, or a colour."""
    mode = "RGBA" if _has_alpha(img) else "RGB"
    if option.colour is not None:
        canvas = Image.new(mode, size, option.colour)
    else:  # blurred on a copy box-averaged to about 64 px (cheap), then enlarged: smooth either way
        src = img if img.mode not in ("P", "1") else img.convert(mode)  # modes Image.reduce refuses
        small = src.reduce(max(1, max(img.size) // 64)).convert(mode)
        fill = ImageOps.fit(small, (max(1, size[0] * 64 // max(size)), max(1, size[1] * 64 // max(size))))
        canvas = fill.filter(ImageFilter.GaussianBlur(4)).resize(size, Image.Resampling.BILINEAR)
    layer = img if img.mode == mode else img.convert(mode)
    canvas.paste(layer, ((size[0] - img.width) // 2, (size[1] - img.height) // 2),
                 layer if mode == "RGBA" else None)
    return canvas


def _ratio(r: float) -> str:
    return f"{r:.2f}:1" if r >= 1 else f"1:{1 / r:.2f}"


def _reshaped(img: Image.Image, rules: ImageRules, option: FitOption) -> tuple[Image.Image, str | None]:
    """Padded or cropped into the ratio range; the change in words, or None when it already fits."""
    lo, hi = _ratio_range(rules)
    w, h = img.size
    ratio = w / h
    if lo <= ratio <= hi:
        return img, None
    target = hi * (1 - _RATIO_MARGIN) if ratio > hi else lo * (1 + _RATIO_MARGIN)
    if option.crop:
        if ratio > hi:
            nw = max(1, math.floor(h * target))
            box = ((w - nw) // 2, 0, (w - nw) // 2 + nw, h)
        else:
            nh = max(1, math.floor(w / target))
            box = (0, (h - nh) // 2, w, (h - nh) // 2 + nh)
        out = img.crop(box)
        return out, f"cropped {w}×{h} → {out.width}×{out.height} (ratio {_ratio(target)})"
    size = (w, math.ceil(w / target)) if ratio > hi else (math.ceil(h * target), h)
    how = "colour" if option.colour else "blurred fill"
    return _padded(img, size, option), f"padded {w}×{h} → {size[0]}×{size[1]} with {how} (ratio {_ratio(target)})"


def _target_format(src: str, img: Image.Image, rules: ImageRules) -> str:
    """Keep the source format when accepted (a GIF only while it stays animated), else PNG for an
    image with transparency or a GIF, else JPEG, else whatever the platform takes."""
    if MIME[src] in rules.formats and src != "GIF":
        return src
    if (_has_alpha(img) or src == "GIF") and "image/png" in rules.formats:
        return "PNG"
    for fmt in ("JPEG", "PNG", "WEBP", "GIF"):
        if MIME[fmt] in rules.formats:
            return fmt
    raise ImageError(f"takes none of JPEG, PNG, WebP or GIF ({', '.join(sorted(rules.formats))})")


def _encode(img: Image.Image, fmt: str, quality: int | None, icc: bytes | None) -> bytes:
    out = io.BytesIO()
    opts: dict[str, object] = {"icc_profile": icc} if icc else {}
    if fmt in ("JPEG", "WEBP"):
        opts["quality"] = quality or 90
    if fmt == "PNG":
        opts["optimize"] = quality is not None  # the slower, smaller PNG only when the first is too big
    img.save(out, fmt, **opts)
    return out.getvalue()


def _first_scale(img: Image.Image, fmt: str, quality: int | None, icc: bytes | None, size: int, limit: int) -> float:
    """The scale expected to bring ``size`` bytes within ``limit``: bytes ∝ scale^k, k measured at half size."""
    half = img.reduce(2) if img.mode not in ("P", "1") else img.resize(((img.width + 1) // 2, (img.height + 1) // 2))
    k = max(1.0, math.log2(size / max(1, len(_encode(half, fmt, quality, icc)))))  # photo ~1.5, noise ~2.5
    return min(0.9, float((limit / size) ** (1 / k)) * 0.95)


def _within_bytes(img: Image.Image, fmt: str, rules: ImageRules, icc: bytes | None,
                  changes: list[str], cache: FitCache) -> tuple[bytes, Image.Image]:
    """Encoded within ``max_bytes``: quality stepped down first (JPEG_QUALITIES), then the size
    at SCALED_QUALITY, down to MIN_SIDE."""
    lossy = fmt in ("JPEG", "WEBP")
    tried: dict[int | None, bytes] = {}
    for q in (JPEG_QUALITIES if lossy else (None, 1)):
        data = tried[q] = cache.encode(img, fmt, q, icc)
        if len(data) <= rules.max_bytes:
            if lossy:
                changes.append(f"quality {q}")
            return data, img
        if lossy and q in HOPELESS and len(data) > HOPELESS[q] * rules.max_bytes:
            break  # lower quality cannot make up that much: the size has to go down anyway
    quality = SCALED_QUALITY if lossy else 1  # PNG: the optimised encoding (tried last)
    data = tried.get(quality) or _encode(img, fmt, quality, icc)
    start, scaled, total = img, img, _first_scale(img, fmt, quality, icc, len(data), rules.max_bytes)
    while True:  # each try scaled from the start (resampling a resampled image would blur it more)
        total *= 1 if scaled is start else min(0.9, math.sqrt(rules.max_bytes / len(data)) * 0.95)
        if min(start.size) * total < MIN_SIDE or (rules.min_width and start.width * total < rules.min_width):
            raise ImageError(f"cannot be brought under {rules.max_bytes:,} bytes "
                             f"({len(data):,} bytes at {scaled.width}×{scaled.height})")
        scaled = _resized(start, total)
        data = _encode(scaled, fmt, quality, icc)
        if len(data) <= rules.max_bytes:
            at = f" at quality {quality}" if lossy else ""
            changes.append(f"scaled {start.width}×{start.height} → {scaled.width}×{scaled.height}{at} "
                           f"to fit {rules.max_bytes:,} bytes")
            return data, scaled


def _animated_kept(data: bytes, img: Image.Image, rules: ImageRules) -> Fitted | None:
    if "image/gif" not in rules.formats or len(data) > rules.max_bytes or not _size_ok(rules, *img.size) \
            or has_metadata(img):
        return None
    return Fitted(data, "image/gif", img.width, img.height, ("animated GIF kept",), original=True)


class _Decoded:
    """One decoding of a source (at one JPEG scale) and, made on first use, its upright 8-bit pixels."""

    def __init__(self, img: Image.Image, stored_size: tuple[int, int]) -> None:
        self.img = img
        self.stored_size = stored_size
        self._ready: tuple[Image.Image, bytes | None, tuple[str, ...]] | None = None

    def ready(self) -> tuple[Image.Image, bytes | None, tuple[str, ...]]:
        """The pixels every platform starts from (first frame, upright, 8-bit), ICC profile, changes so far."""
        if self._ready is None:
            img, changes = self.img, []
            if img.format == "JPEG" and img.size != self.stored_size:
                changes.append(f"decoded at {img.width}×{img.height} (JPEG reduced-scale decoding; "
                               "it is scaled down anyway)")
            icc = img.info.get("icc_profile")
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            if has_metadata(img):
                changes.append("metadata removed")
            if orientation(img) != 1:
                img = ImageOps.exif_transpose(img)
                changes.append("turned upright (EXIF orientation)")
            img, icc = _eight_bit_rgb(img, icc, changes)
            self._ready = (img, icc, tuple(changes))
        return self._ready


class FitCache:
    """Work shared by the fits of one image for several platforms: its decoding (per JPEG scale), upright
    pixels and their encodings (per format and quality), made once instead of once per platform. Holds
    one source at a time (another source empties it): fit each image for every channel in turn."""

    def __init__(self) -> None:
        self._data = b""
        self._decoded: dict[tuple[int, int], _Decoded] = {}
        self._encoded: dict[tuple[int, str, int | None], tuple[Image.Image, bytes]] = {}

    def decoded(self, data: bytes, name: str, shrink: Callable[[Image.Image], tuple[int, int] | None]) -> _Decoded:
        if data is not self._data and data != self._data:
            self._data, self._decoded, self._encoded = data, {}, {}
        stored: list[tuple[int, int]] = []  # the size before JPEG reduced-scale decoding

        def noted(h: Image.Image) -> tuple[int, int] | None:
            stored.append(h.size)
            return shrink(h)
        header = open_header(data, name, noted)
        if header.size not in self._decoded:
            self._decoded[header.size] = _Decoded(load_image(header, name), stored[0] if stored else header.size)
        return self._decoded[header.size]

    def encode(self, img: Image.Image, fmt: str, quality: int | None, icc: bytes | None) -> bytes:
        if not any(d._ready is not None and img is d._ready[0] for d in self._decoded.values()):
            return _encode(img, fmt, quality, icc)  # pixels of one platform's own (padded, scaled…)
        if (key := (id(img), fmt, quality)) not in self._encoded:
            self._encoded[key] = (img, _encode(img, fmt, quality, icc))  # img kept: its id stays its own
        return self._encoded[key][1]


def fit_image(data: bytes, rules: ImageRules, option: FitOption | None = None, name: str = "image",
              cache: FitCache | None = None) -> Fitted:
    """The copy of ``data`` that ``rules`` take; :class:`ImageError` saying why when there is none.
    ``cache`` shares the decoding and encodings with the other platforms' fits of the same image."""
    option = option or FitOption()
    cache = cache or FitCache()
    decoded = cache.decoded(data, name, lambda header: _draft_size(header, rules, option))
    img = decoded.img
    src = str(img.format)
    animated = getattr(img, "n_frames", 1) > 1
    if animated:
        kept = _animated_kept(data, img, rules)
        if kept is not None:
            return kept
    needs_pixels = orientation(img) != 1 or img.mode == "CMYK" or img.mode in _SIXTEEN_BIT or animated
    if (MIME[src] in rules.formats and not needs_pixels and len(data) <= rules.max_bytes
            and _size_ok(rules, *img.size) and not has_metadata(img)):
        return Fitted(data, MIME[src], img.width, img.height, original=True)
    img, icc, done = decoded.ready()
    changes = list(done)
    if animated:
        why = "the platform takes no GIF" if "image/gif" not in rules.formats else "too large to keep animated"
        changes.insert(0, f"animated GIF: first frame only ({why})")
    fmt = _target_format(src, img, rules)
    if fmt == "JPEG" and _has_alpha(img):
        img = _flatten(img, option.colour or (255, 255, 255))
        changes.append("transparency filled with " + ("white" if option.colour is None else "the IMAGE_FIT colour"))
    if fmt == "JPEG" and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    if fmt != src:
        changes.append(f"converted {src} → {fmt}")
    img, reshaped = _reshaped(img, rules, option)
    if reshaped:
        changes.append(reshaped)
    scale = _scale_for(rules, *img.size)
    if scale != 1:
        before = img.size
        img = _resized(img, scale)
        changes.append(f"scaled {'up' if scale > 1 else ''}{' ' if scale > 1 else ''}{before[0]}×{before[1]} "
                       f"→ {img.width}×{img.height}")
    out, img = _within_bytes(img, fmt, rules, icc, changes, cache)
    if not _size_ok(rules, *img.size):
        raise ImageError(f"cannot be fitted to {img.width}×{img.height} within the platform's pixel limits")
    return Fitted(out, MIME[fmt], img.width, img.height, tuple(changes))


@dataclass(frozen=True)
class FitFacts:
    """What a platform receives of an image, without its bytes (kept in a note beside a stored copy)."""

    mime: str
    width: int
    height: int
    bytes: int
    changes: tuple[str, ...] = ()
    original: bool = False

    @property
    def reshaped(self) -> str | None:
        """"padded" or "cropped" when the shape was brought into the platform's ratio range."""
        return next((c.split()[0] for c in self.changes if c.startswith(("padded ", "cropped "))), None)


def fitted_file(media_dir: Path, source: Path, rules: ImageRules, option: FitOption | None = None,
                name: str = "image", cache: FitCache | None = None) -> Path:
    """The stored copy of ``source`` for ``rules``: made once, named by the hash of the source and
    the rules, reused after; ``source`` itself when it needs no change."""
    return fitted_copy(media_dir, source, rules, option, name, cache)[0]


def fitted_copy(media_dir: Path, source: Path, rules: ImageRules, option: FitOption | None = None,
                name: str = "image", cache: FitCache | None = None) -> tuple[Path, FitFacts]:
    """:func:`fitted_file` and what was done: noted beside the copy (``fit-<key>.json``) when it is
    made, so asking again (the compose page's preview, then queueing) reads the note, fitting nothing."""
    option = option or FitOption()
    data = source.read_bytes()
    digest = hashlib.sha256(data)
    digest.update(f"|{rules.key()}|{option.key()}|{FIT_VERSION}".encode())
    key = digest.hexdigest()[:24]
    note = media_dir / f"fit-{key}.json"
    facts = _read_note(note)
    for ext in _EXT.values():
        existing = media_dir / f"fit-{key}{ext}"
        if touch(existing):  # made before: reused, marked as used now (media pruning spares it)
            return existing, facts or _fit(data, rules, option, name, note, cache)[1]
    if facts is not None and facts.original:
        return source, facts
    fitted, facts = _fit(data, rules, option, name, note, cache)
    if fitted.original:
        return source, facts
    target = media_dir / f"fit-{key}{_EXT[_FORMAT[fitted.mime]]}"
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(fitted.data)
    tmp.replace(target)  # whole or absent: a crash never leaves half a file under the final name
    touch(target)
    return target, facts


def _fit(data: bytes, rules: ImageRules, option: FitOption, name: str, note: Path,
         cache: FitCache | None = None) -> tuple[Fitted, FitFacts]:
    fitted = fit_image(data, rules, option, name, cache)
    facts = FitFacts(fitted.mime, fitted.width, fitted.height, len(fitted.data), fitted.changes, fitted.original)
    note.parent.mkdir(parents=True, exist_ok=True)
    tmp = note.with_suffix(".part")
    tmp.write_text(json.dumps(dataclasses.asdict(facts)))
    tmp.replace(note)
    return fitted, facts


def _read_note(note: Path) -> FitFacts | None:
    try:
        found = json.loads(note.read_text())
        return FitFacts(**{**found, "changes": tuple(found["changes"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None  # no note (a copy made before notes were kept): fitted again, once
