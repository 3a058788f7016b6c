"""Tagged links (PROMO_UTM): a link to one of the PROMO_UTM_DOMAINS gets
``utm_source=<platform>&utm_medium=social&utm_campaign=<campaign>&utm_content=<post id>``,
so the site's analytics can tell which platform and which post brought each visit.

Links to other domains are left alone, and parameters already on a link are kept (an
existing ``utm_*`` value is not overwritten: the person who wrote it meant it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def wants_tags(link: str, domains: Iterable[str]) -> bool:
    """The link's host is one of ``domains`` or under one of them."""
    host = (urlsplit(link).hostname or "").lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in (d.lower().strip(".") for d in domains) if d)


def tagged(link: str, *, platform: str, campaign: str, post_id: int) -> str:
    """``link`` with the four UTM parameters added (those already present kept)."""
    parts = urlsplit(link)
    query = parse_qsl(parts.query, keep_blank_values=True)
    have = {k for k, _v in query}
    tags = {"utm_source": platform, "utm_medium": "social", "utm_campaign": campaign, "utm_content": str(post_id)}
    query += [(k, v) for k, v in tags.items() if k not in have]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def campaign_name(kind: str, record_id: str | None) -> str:
    """The utm_campaign of a post: its kind and record (``product-amplang-1``), else the kind."""
    name = f"{kind}-{record_id}" if record_id else kind
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-").lower()
