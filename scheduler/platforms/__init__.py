"""Platform adapters: ``base`` plus one module per platform.

The registry maps a platform name (as written in ``PROMO_CHANNEL_<NAME>_PLATFORM``) to
its module; modules are imported on first use, so reading the settings loads only the
adapters of the configured channels (and `promo history` without channels none at all).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from scheduler.errors import ConfigError

if TYPE_CHECKING:  # importing the base brings httpx: only the adapters actually used load it
    from scheduler.platforms.base import Adapter

PLATFORMS: dict[str, str] = {
    "outbox": "scheduler.platforms.outbox:OutboxAdapter",
    "webhook": "scheduler.platforms.webhook:WebhookAdapter",
    "facebook": "scheduler.platforms.facebook:FacebookAdapter",
    "instagram": "scheduler.platforms.instagram:InstagramAdapter",
    "threads": "scheduler.platforms.threads:ThreadsAdapter",
    "x": "scheduler.platforms.x:XAdapter",
    "telegram": "scheduler.platforms.telegram:TelegramAdapter",
    "mastodon": "scheduler.platforms.mastodon:MastodonAdapter",
    "bluesky": "scheduler.platforms.bluesky:BlueskyAdapter",
    "linkedin": "scheduler.platforms.linkedin:LinkedInAdapter",
    "discord": "scheduler.platforms.discord:DiscordAdapter",
}


def adapter_class(platform: str) -> type[Adapter]:
    """The adapter class for ``platform``; ConfigError when there is none."""
    target = PLATFORMS.get(platform)
    if target is None:
        raise ConfigError(f"unknown platform {platform!r} (known: {', '.join(sorted(PLATFORMS))})")
    module_name, _, cls_name = target.partition(":")
    module = importlib.import_module(module_name)  # an ImportError here is a bug: let it show
    cls: type[Adapter] = getattr(module, cls_name)
    return cls
