"""Planning posts: find the source, compose it per channel, check media, pick times, store.

The building blocks under :mod:`scheduler.actions.posts` (what staff do) and the jobs that
create posts; none of them checks who acts, and none of them publishes (only the dispatcher does).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import values
from scheduler.composer import Composed, Composer, event_context, product_context, text_context
from scheduler.config import ChannelConfig, Settings
from scheduler.downloads import download_image, is_url
from scheduler.errors import NotFoundError, TooLongError, ValidationError
from scheduler.fitting import FitOption, fit_image, fitted_file
from scheduler.media import ImageError, file_mime, inspect_image, touch
from scheduler.models import Channel, Event, Post, PostKind, PostStatus, Product, utcnow
from scheduler.platforms import adapter_class
from scheduler.platforms.base import Media, PlatformRules
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.textrules import TextRule
from scheduler.utm import campaign_name, tagged, wants_tags

_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}
SLOT_HORIZON_DAYS = 60
#: Longest alt text an image takes (the posts table's ``image_alt`` column holds the cover's).
MAX_ALT = 500


def parse_when(value: str, tz: Any) -> dt.datetime:
    """``--at``: :func:`scheduler.values.parse_when`, its refusal as a :class:`ValidationError`."""
    try:
        return values.parse_when(value, tz)
    except ValueError as exc:
        raise ValidationError(f"--at {exc}") from None


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


def _image_list(image: str | Sequence[str] | None, alt: str | Sequence[str | None] | None) -> list[tuple[str, str | None]]:
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


def next_free_slot(cfg: ChannelConfig, after: dt.datetime, taken: set[dt.datetime]) -> dt.datetime:
    """The first slot of the channel after ``after`` that no post holds (slots in the channel's zone)."""
    if not cfg.slots:
        raise ValidationError(f"channel {cfg.name} has no slots: set PROMO_CHANNEL_{cfg.name.upper()}_SLOTS "
                              "(e.g. 09:00,12:30,19:00) to use --queue")
    local_day = after.astimezone(cfg.timezone).date()
    taken_utc = {t.astimezone(dt.UTC).replace(microsecond=0) for t in taken}
    for offset in range(SLOT_HORIZON_DAYS + 1):
        day = local_day + dt.timedelta(days=offset)
        for clock in cfg.slots.get(day.weekday(), ()):
            local = dt.datetime.combine(day, clock, tzinfo=cfg.timezone)
            when = local.astimezone(dt.UTC)
            # A wall time that does not exist (DST gap) comes back shifted; skip it.
            if when.astimezone(cfg.timezone).time() != clock:
                continue
            if when > after and when not in taken_utc:
                return when
    raise ValidationError(f"channel {cfg.name}: no free slot in the next {SLOT_HORIZON_DAYS} days")


@dataclass
class Source:
    """What a post is made from: a product, an event or free text."""

    kind: str
    product: Product | None = None
    event: Event | None = None
    text: str | None = None
    link: str | None = None

    def context(self, now: dt.datetime, tz: Any) -> tuple[dict[str, Any], tuple[str, str] | None]:
        if self.product is not None:
            return product_context(self.product, now=now), ("product.description", self.product.description or "")
        if self.event is not None:
            return event_context(self.event, now=now, tz=tz), ("event.description", self.event.description or "")
        return text_context(self.text or "", self.link), ("text", self.text or "")

    @property
    def title(self) -> str | None:
        if self.product is not None:
            return self.product.name
        if self.event is not None:
            return self.event.name
        return None


def find_source(session: Session, *, product: str | None = None, event: str | None = None,
                text: str | None = None, link: str | None = None, kind: str | None = None) -> Source:
    """Look up the record a post is made from (by external id, or numeric id)."""
    if product:
        row = _by_id(session, Product, product)
        return Source(kind=kind or PostKind.PRODUCT_HIGHLIGHT, product=row)
    if event:
        row = _by_id(session, Event, event)
        return Source(kind=kind or PostKind.EVENT_ANNOUNCEMENT, event=row)
    if text is None or not text.strip():
        raise ValidationError("give --product ID, --event ID or --text TEXT")
    return Source(kind=kind or PostKind.FREE_TEXT, text=text.strip(), link=link)


def _by_id(session: Session, model: Any, ident: str) -> Any:
    row = session.scalars(select(model).where(model.external_id == ident)).first()
    if row is None and ident.isdigit():
        row = session.get(model, int(ident))
    if row is None:
        raise NotFoundError(f"no {model.__tablename__[:-1] if model.__tablename__.endswith('s') else model.__tablename__} "
                            f"with id {ident!r} (see `promo records list`)")
    return row


def image_for_channel(settings: Settings, cfg: ChannelConfig, rules: PlatformRules, stored: Path | None,
                      alt: str | None = None) -> Path | None:
    """The image file this channel's post sends: the copy fitted to the platform's image rules
    (made now, stored once by content hash), or the stored image where the platform declares none.

    An image that cannot be fitted is refused naming the channel, its platform and why."""
    if stored is None or rules.images is None:
        check_image_for(rules, cfg.name, media_for(settings, str(stored), alt) if stored else None)
        return stored
    try:
        return fitted_file(settings.media_dir, stored, rules.images, FitOption.parse(cfg.options.get("IMAGE_FIT")))
    except ImageError as exc:
        raise ValidationError(f"channel {cfg.name} ({cfg.platform}): the image cannot be fitted: {exc}; "
                              "nothing queued") from None


def image_preview(cfg: ChannelConfig, rules: PlatformRules, data: bytes) -> dict[str, Any]:
    """What this channel's platform would receive of an image (``promo compose --image``), made in
    memory and stored nowhere: type, size, dimensions and each change, or why it cannot be fitted."""
    if rules.images is None:
        info = inspect_image(data)
        return {"format": info.mime, "width": info.width, "height": info.height, "bytes": len(data),
                "changes": [], "as_attached": True}
    try:
        fitted = fit_image(data, rules.images, FitOption.parse(cfg.options.get("IMAGE_FIT")))
    except ImageError as exc:
        return {"error": f"the image cannot be fitted: {exc}"}
    return {"format": fitted.mime, "width": fitted.width, "height": fitted.height, "bytes": len(fitted.data),
            "changes": list(fitted.changes), "as_attached": fitted.original}


def rules_for(cfg: ChannelConfig, state: Any = None) -> PlatformRules:
    return adapter_class(cfg.platform).rules_for(cfg.options, state)


#: Why free text that does not fit was not shortened, and what to do.
FREE_TEXT_REFUSAL = "and free text is not shortened unless asked: shorten it, or add --shorten to cut it at a word boundary"


def compose_for(composer: Composer, cfg: ChannelConfig, source: Source, *, now: dt.datetime,
                tz: Any, with_image: bool, template: str | None = None,
                state: Any = None, shorten: bool = False) -> Composed:
    """Compose ``source`` for one channel.

    Only a record's description is cut to fit. Free text (``--text``) that does not fit is
    refused with :class:`TooLongError`, saying by how much, unless ``shorten`` opts in to
    cutting it at a sentence or word boundary.
    """
    rules = rules_for(cfg, state)
    context, body = source.context(now, tz)
    if source.text is not None and not shorten:
        body = None
    context = {**context, "channel": {"name": cfg.name, "platform": cfg.platform}}
    record = source.product or source.event
    # Template variants (<stem>~<label>.j2) rotate by record and local day: the same all day long.
    seed = f"{source.kind}:{record.external_id if record is not None else source.text}:{now.astimezone(tz).date()}"
    return composer.compose(source.kind, cfg.platform, context, rules.text_rules(with_image), body=body,
                            template=template, link=context.get("link") or None, title=source.title,
                            refusal=FREE_TEXT_REFUSAL if source.text is not None else
                            "and it has no description to shorten", variant=seed)


def resolve_channels(session: Session, settings: Settings, names: list[str]) -> list[tuple[Channel, ChannelConfig]]:
    channel_store.sync_configured(session, settings)
    configs = channel_store.channel_configs(session, settings)
    out = []
    for written in names:
        name = written.strip().lower()
        if not name:
            continue
        cfg = configs.get(name)
        if cfg is None:
            raise NotFoundError(f"no channel named {name!r} (configured: {', '.join(sorted(configs)) or 'none'})")
        out.append((channel_store.get_channel(session, name), cfg))
    if not out:
        raise ValidationError("give at least one channel with --channel")
    return out


def _requested_time(settings: Settings, *, when: str | None, queue: bool, now_flag: bool, draft: bool,
                    now: dt.datetime) -> dt.datetime | None:
    """The one time asked for (``--at``), checked not to be past; None for --queue, --now, --draft."""
    if sum(bool(x) for x in (when, queue, now_flag)) > 1:
        raise ValidationError("give only one of --at, --queue and --now")
    if not (when or queue or now_flag or draft):
        raise ValidationError("say when: --at WHEN, --queue or --now (or --draft)")
    if not when:
        return None
    at = parse_when(when, settings.timezone)
    if at < now - dt.timedelta(seconds=1):
        local = values.local_time(at, settings.timezone)
        raise ValidationError(f"--at {when!r} ({local}) is in the past; use --now to publish right away")
    return at


def _record_images(settings: Settings, source: Source) -> list[tuple[Path, str | None]]:
    """The product's or event's own images (``;``-separated, the cover first) whose files exist,
    copied into the media folder, each with its alt text (``image_alt``, in the same order)."""
    record = source.product if source.product is not None else source.event
    if record is None or not record.image:
        return []
    label = f"image of {'product' if source.product is not None else 'event'} {record.external_id}:"
    paths = [p.strip() for p in record.image.split(";") if p.strip()]
    alts = [a.strip() or None for a in (record.image_alt or "").split(";")]
    return [(store_image(settings, p, label)[0], alts[i] if i < len(alts) else None)
            for i, p in enumerate(paths) if is_url(p) or Path(p).is_file()]


def _too_long(too_long: list[tuple[str, TooLongError]], *, only_channel: bool) -> TooLongError:
    """One error naming every channel the text does not fit, and by how much."""
    first = too_long[0][1]
    if len(too_long) == 1 and only_channel:
        return TooLongError(f"{too_long[0][0]}: {first}; nothing queued", length=first.length, limit=first.limit)
    return TooLongError("does not fit, nothing queued on any channel:\n"
                        + "\n".join(f"  {where}: {exc}" for where, exc in too_long),
                        length=first.length, limit=first.limit)


def create_posts(session: Session, settings: Settings, composer: Composer, source: Source,
                 channels: list[tuple[Channel, ChannelConfig]], *, when: str | None = None,
                 queue: bool = False, now_flag: bool = False, draft: bool = False,
                 image: str | Sequence[str] | None = None, image_alt: str | Sequence[str | None] | None = None,
                 template: str | None = None,
                 actor: str, now: dt.datetime | None = None, dedupe_key: str | None = None,
                 status: PostStatus | None = None, shorten: bool = False) -> list[Post]:
    """Compose and store one post per channel. Nothing is stored if any channel fails.

    Every channel is composed before anything is stored; when the text does not fit one or
    more of them, one :class:`TooLongError` names each such channel and by how much.
    ``shorten`` lets free text be cut to fit (see :func:`compose_for`).
    """
    now = now or utcnow()
    at = _requested_time(settings, when=when, queue=queue, now_flag=now_flag, draft=draft, now=now)
    given = _image_list(image, image_alt)
    if given:
        stored_image: Path | None = store_image(settings, given[0][0])[0]
        more = [(store_image(settings, p)[0], a) for p, a in given[1:]]
    else:
        from_record = _record_images(settings, source)
        stored_image = from_record[0][0] if from_record else None
        more = from_record[1:]
    cover_alt = given[0][1] if given else (image_alt if isinstance(image_alt, str) else
                                           from_record[0][1] if from_record else None)
    posts: list[Post] = []
    plan: list[tuple[Channel, ChannelConfig, Composed, dt.datetime | None, Path | None, str | None]] = []
    slot: dt.datetime | None  # a free slot (--queue), --at, now (--now), or None for a draft
    too_long: list[tuple[str, TooLongError]] = []
    for row, cfg in channels:
        state = channel_store.plain_state(row)
        rules = rules_for(cfg, state)
        fitted = image_for_channel(settings, cfg, rules, stored_image, cover_alt)
        room = rules.images.per_post - 1 if rules.images is not None else 0  # the cover alone where no albums
        extra = [[str(image_for_channel(settings, cfg, rules, path, alt)), alt] for path, alt in more[:room]]
        try:
            composed = compose_for(composer, cfg, source, now=now, tz=settings.timezone,
                                   with_image=fitted is not None, template=template, state=state, shorten=shorten)
        except TooLongError as exc:
            too_long.append((f"channel {cfg.name} ({cfg.platform})", exc))
            continue
        if queue:
            start = now
            taken = post_store.busy_slots(session, row.id, start, start + dt.timedelta(days=SLOT_HORIZON_DAYS + 1))
            slot = next_free_slot(cfg, now, taken)
        else:
            slot = at or (now if now_flag else None)
        plan.append((row, cfg, composed, slot, fitted, json.dumps(extra) if extra else None))
    if too_long:
        raise _too_long(too_long, only_channel=len(channels) == 1)
    if status is None:
        status = PostStatus.DRAFT if draft else PostStatus.PENDING_APPROVAL if settings.require_approval \
            else PostStatus.SCHEDULED
    for row, cfg, composed, slot, fitted, extra_json in plan:
        key = f"{dedupe_key}:{cfg.name}" if dedupe_key else None
        post = post_store.create_post(
            session, channel=row, kind=source.kind, text=composed.text, status=status, scheduled_at=slot,
            actor=actor, link=composed.link, title=composed.title, summary=composed.summary,
            template=composed.template, product_id=source.product.id if source.product else None,
            event_id=source.event.id if source.event else None,
            image_path=str(fitted) if fitted else None, image_alt=cover_alt, dedupe_key=key, more_images=extra_json,
            reason="created" + (" (shortened to fit)" if composed.shortened else ""),
        )
        if settings.utm and post.link and wants_tags(post.link, settings.utm_domains):
            record = source.product or source.event
            _tag_link(post, cfg, rules_for(cfg, channel_store.plain_state(row)).text_rules(fitted is not None),
                      campaign_name(source.kind, record.external_id if record is not None else None))
        posts.append(post)
    return posts


def _tag_link(post: Post, cfg: ChannelConfig, rules: Sequence[TextRule], campaign: str) -> None:
    """PROMO_UTM: the post's link, in its text and link field, tagged with the platform and post id.
    The text is checked again (the tags lengthen the link); nothing is shortened to make room."""
    link = str(post.link)
    new = tagged(link, platform=cfg.platform, campaign=campaign, post_id=post.id)
    text = post.text.replace(link, new)
    for rule in rules:
        if not rule.fits(text):
            n = rule.count(text)
            raise TooLongError(f"channel {cfg.name} ({cfg.platform}): with its UTM tags (PROMO_UTM) the link makes "
                               f"the text {n}, over {rule.limit} ({rule.method}); nothing queued", length=n,
                               limit=rule.limit)
    post.text, post.link = text, new
