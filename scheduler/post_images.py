"""The images of a post being queued: stored in the media folder (downloaded first when named by
URL), checked, and fitted per channel (:mod:`scheduler.fitting`), each image once for all channels;
and read back as :class:`Media` for the adapters.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from scheduler.config import ChannelConfig, Settings
from scheduler.downloads import download_image, is_url
from scheduler.errors import ValidationError
from scheduler.fitting import FitCache, FitOption, fitted_file
from scheduler.media import ImageError, file_mime, inspect_image, touch
from scheduler.platforms.base import Media, PlatformRules

_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}
#: Longest alt text any image takes (Mastodon's default description limit; a platform that takes less refuses more).
MAX_ALT = 1_500


def store_image(settings: Settings, source: str | Path, label: str = "--image") -> tuple[Path, str]:
    """Check an image file and copy it into the media folder under its content hash.

    ``label`` says where the file came from in error messages (``--image``, or the record's image).
    A URL is downloaded first (once: :func:`scheduler.downloads.download_image`)."""
    path = download_image(settings, str(source), label) if is_url(str(source)) else Path(source)
    if not path.is_file():
        raise ValidationError(f"{label} {source}: no such file")
    size = path.stat().st_size
    if size > settings.max_image_bytes:
        raise ValidationError(f"{label} {source}: {size:,} bytes is over the {settings.max_image_bytes:,}-byte limit "
                              "(PROMO_MAX_IMAGE_BYTES)")
    # Decoded whole, so a renamed, truncated or corrupt file is refused now rather than by a platform later.
    data = path.read_bytes()
    mime = inspect_image(data, f"{label} {source}").mime
    digest = hashlib.sha256(data).hexdigest()[:24]
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    target = settings.media_dir / f"{digest}{_EXT[mime]}"
    if not touch(target):  # the same bytes stored before: reused, marked as used now
        shutil.copyfile(path, target)
        touch(target)
    return target, mime


def media_for(settings: Settings, image_path: str | None, alt: str | None = None) -> Media | None:
    if not image_path:
        return None
    p = Path(image_path)
    public = f"{settings.public_media_base_url}/{p.name}" if settings.public_media_base_url else None
    mime = file_mime(p) or "application/octet-stream"
    return Media(path=p, mime=mime, size=p.stat().st_size if p.exists() else 0, alt_text=alt, public_url=public)


def more_media(settings: Settings, more_images: str | None) -> tuple[Media, ...]:
    """The images after the cover stored on a post (:attr:`Post.more_images`)."""
    if not more_images:
        return ()
    out = []
    for path, alt in json.loads(more_images):
        media = media_for(settings, path, alt)
        if media is not None:
            out.append(media)
    return tuple(out)


def image_list(image: str | Sequence[str] | None, alt: str | Sequence[str | None] | None) -> list[tuple[str, str | None]]:
    """``--image`` (once or repeated) paired in order with ``--alt``; extra alts are an error."""
    paths = [image] if isinstance(image, str) else list(image or [])
    alts = [alt] if isinstance(alt, str) or alt is None else list(alt)
    if alt is None:
        alts = []
    if len(alts) > max(len(paths), 1):
        raise ValidationError(f"{len(alts)} --alt for {len(paths)} --image: give at most one --alt per image, in order")
    for n, text in enumerate(alts, 1):
        if text and len(text) > MAX_ALT:
            raise ValidationError(f"the alt text of image {n} is {len(text):,} characters, over {MAX_ALT}")
    return [(p, alts[i] if i < len(alts) else None) for i, p in enumerate(paths) if p]


def check_image_for(rules: PlatformRules, channel: str, image: Media | None) -> None:
    if image is None:
        if rules.requires_image:
            raise ValidationError(f"channel {channel}: this platform needs an image (use --image)")
        return
    if image.mime not in rules.image_types:
        raise ValidationError(f"channel {channel}: {image.mime} images are not accepted "
                              f"(takes {', '.join(sorted(rules.image_types))})")
    if image.size > rules.max_image_bytes:
        raise ValidationError(f"channel {channel}: image is {image.size:,} bytes, over the platform's "
                              f"{rules.max_image_bytes:,}-byte limit")


def image_for_channel(settings: Settings, cfg: ChannelConfig, rules: PlatformRules, stored: Path | None,
                      alt: str | None = None, cache: FitCache | None = None) -> Path | None:
    """The image file this channel's post sends: the copy fitted to the platform's image rules
    (made now, stored once by content hash), or the stored image where the platform declares none.

    An image that cannot be fitted, or whose alt text is longer than the platform takes (never cut:
    it is staff text), is refused naming the channel, its platform and why."""
    if alt and rules.images is not None and rules.images.max_alt and len(alt) > rules.images.max_alt:
        raise ValidationError(f"channel {cfg.name} ({cfg.platform}): alt text of {len(alt):,} characters is over "
                              f"the platform's {rules.images.max_alt:,}; shorten it; nothing queued")
    if stored is None or rules.images is None:
        check_image_for(rules, cfg.name, media_for(settings, str(stored), alt) if stored else None)
        return stored
    try:
        return fitted_file(settings.media_dir, stored, rules.images, FitOption.parse(cfg.options.get("IMAGE_FIT")),
                           cache=cache)
    except ImageError as exc:
        raise ValidationError(f"channel {cfg.name} ({cfg.platform}): the image cannot be fitted: {exc}; "
                              "nothing queued") from None


def channel_images(settings: Settings, ruled: list[tuple[ChannelConfig, PlatformRules]], cover: Path | None,
                    cover_alt: str | None, more: Sequence[tuple[Path, str | None]],
                    ) -> dict[str, tuple[Path | None, list[list[str | None]]]]:
    """Each channel's copy of the cover and ``[path, alt]`` of the images after it (as many as its
    platform takes in one post), fitted image by image: one :class:`FitCache` per image, so a photo
    is decoded (and encoded, where platforms want the same) once for all the channels."""
    if cover is None:
        return {cfg.name: (image_for_channel(settings, cfg, rules, None), []) for cfg, rules in ruled}
    out: dict[str, tuple[Path | None, list[list[str | None]]]] = {}
    cache = FitCache()
    for cfg, rules in ruled:
        out[cfg.name] = (image_for_channel(settings, cfg, rules, cover, cover_alt, cache), [])
    for i, (path, alt) in enumerate(more, start=1):
        cache = FitCache()
        for cfg, rules in ruled:
            if i < (rules.images.per_post if rules.images is not None else 1):  # the cover alone where no albums
                out[cfg.name][1].append([str(image_for_channel(settings, cfg, rules, path, alt, cache)), alt])
    return out
