"""What a template sees: the fields of a product (with its UMKM), an event, or a free text.

The names here are the template API staff write against (``{{ product.name }}``,
``{{ product.price | rupiah }}``, ``{{ days_left }}``); renaming one breaks their templates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo


def product_context(product: Any, *, now: dt.datetime | None = None) -> dict[str, Any]:
    umkm = product.umkm
    return {
        "product": {"id": product.external_id, "name": product.name, "description": product.description or "",
                    "price": product.price, "url": product.url, "tags": list(product.tags or []),
                    "image": product.image},
        "umkm": {"id": umkm.external_id, "name": umkm.name, "owner": umkm.owner or "", "city": umkm.city or "",
                 "district": umkm.district or "", "category": umkm.category or "", "phone": umkm.phone or "",
                 "instagram": umkm.instagram or "", "website": umkm.website or ""},
        "link": product.url or umkm.website or "",
        "summary": product.description or "",
    }


def event_context(event: Any, *, now: dt.datetime | None = None, tz: ZoneInfo | None = None) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    days_left = None
    if tz is not None:
        days_left = (event.starts_at.astimezone(tz).date() - now.astimezone(tz).date()).days
    return {
        "event": {"id": event.external_id, "name": event.name, "description": event.description or "",
                  "venue": event.venue or "", "city": event.city or "", "starts_at": event.starts_at,
                  "ends_at": event.ends_at, "url": event.url, "tags": list(event.tags or []),
                  "status": event.status, "multi_day": bool(event.ends_at and tz and
                                                            event.ends_at.astimezone(tz).date()
                                                            != event.starts_at.astimezone(tz).date())},
        "days_left": days_left,
        "link": event.url or "",
        "summary": event.description or "",
    }


def text_context(text: str, link: str | None = None) -> dict[str, Any]:
    return {"text": text, "link": link or "", "summary": ""}

