"""The compose page's image: checked and stored once when chosen (in the media folder, named by its
content hash, as queueing stores it), then what each channel's platform will receive of it: the
queue's own fitting (:func:`scheduler.fitting.fitted_copy`: the copy made once, stored, reused when
the post is queued), remembered in this process, so a preview asked at every keystroke fits nothing.
"""

from __future__ import annotations

import functools
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from scheduler import post_images
from scheduler.actions import Actor, Context, require
from scheduler.config import ChannelConfig
from scheduler.errors import NotFoundError, ValidationError
from scheduler.fitting import FitFacts, FitOption, fitted_copy
from scheduler.media import ImageError, inspect_image
from scheduler.platforms.types import ImageRules, PlatformRules

#: What :func:`stage_image` names a stored image: its content hash and the type's extension.
STAGED = re.compile(r"^[0-9a-f]{24}\.(?:jpg|png|gif|webp)$")


@dataclass(frozen=True)
class Staged:
    """An image stored for a post: ``id`` names it to the preview (and the queue), with what it is."""

    id: str
    format: str
    width: int
    height: int
    bytes: int


@dataclass(frozen=True)
class ImageFit:
    """What one platform receives of the image: type, size, bytes, each change made and whether it
    was ``padded`` or ``cropped`` to the platform's shape, or sent as attached; or why it cannot be."""

    format: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    changes: list[str] = field(default_factory=list)
    as_attached: bool = False
    #: "padded" or "cropped" (to the platform's aspect ratio range), or None
    reshaped: str | None = None
    error: str | None = None


def stage_image(ctx: Context, actor: Actor, data: bytes, name: str) -> Staged:
    """Check an uploaded image as ``--image`` is (size, decodes whole) and store it by content hash
    (the same bytes twice: one file)."""
    require(actor, "post.preview")
    label = f"image {Path(name).name[:100] or 'image'}"
    if not data:
        raise ValidationError(f"{label}: the file is empty")
    limit = ctx.settings.max_image_bytes
    if len(data) > limit:
        raise ValidationError(f"{label}: over the {limit:,}-byte limit (PROMO_MAX_IMAGE_BYTES)")
    info = inspect_image(data, label)  # ImageError (a ValidationError) names what is wrong
    with tempfile.TemporaryDirectory(prefix="promo-upload-") as folder:
        upload = Path(folder) / "upload"
        upload.write_bytes(data)
        stored, mime = post_images.store_image(ctx.settings, upload, label)
    return Staged(stored.name, mime, info.width, info.height, len(data))


def staged_path(ctx: Context, image_id: str) -> Path:
    """The stored image ``image_id`` names (NotFoundError when it is not, or no longer, there)."""
    path = ctx.settings.media_dir / image_id
    if not STAGED.match(image_id) or not path.is_file():
        raise NotFoundError(f"no image {image_id!r}: send it again (POST /api/v1/images)")
    return path


def image_fit(ctx: Context, cfg: ChannelConfig, rules: PlatformRules, image: Path) -> ImageFit:
    """What ``cfg``'s platform receives of the stored ``image`` (the queue's fitting, remembered)."""
    st = image.stat()
    option = FitOption.parse(cfg.options.get("IMAGE_FIT"))
    found = _remembered(ctx.settings.media_dir, image, (st.st_size, st.st_mtime_ns), rules.images, option)
    if isinstance(found, ImageError):
        return ImageFit(error=f"{cfg.platform} (channel {cfg.name}): the image cannot be fitted: {found}")
    return ImageFit(found.mime, found.width, found.height, found.bytes, list(found.changes), found.original,
                    found.reshaped)


@functools.lru_cache(maxsize=256)
def _remembered(media_dir: Path, image: Path, stamp: tuple[int, int], rules: ImageRules | None,
                option: FitOption) -> FitFacts | ImageError:
    """Per stored image (its size and time in ``stamp``), rules and IMAGE_FIT: the facts, or why not."""
    if rules is None:  # the platform declares no image rules: it gets the image as attached
        info = inspect_image(image.read_bytes())
        return FitFacts(info.mime, info.width, info.height, stamp[0], original=True)
    try:
        return fitted_copy(media_dir, image, rules, option)[1]
    except ImageError as exc:
        return exc
