"""Meta Graph API versions: the pinned default and how long Meta serves each one.

Facebook and Instagram calls go to ``/{version}/…``; the version is the channel's own
``GRAPH_VERSION``, else ``PROMO_GRAPH_API_VERSION``, else :data:`GRAPH_API_VERSION`. Meta
keeps a version for about two years; after its date, calls are answered by the oldest
version still served, whose behaviour may differ, so ``channels check`` warns ahead.
(Threads has its own versioning, ``v1.0``, and is not covered.)
"""

from __future__ import annotations

import datetime as dt

#: The version this release is written and tested against.
GRAPH_API_VERSION = "v21.0"
#: Warn this long before a version's date.
WARN_AHEAD = dt.timedelta(days=60)

#: Version → "available until" date from Meta's changelog
#: (developers.facebook.com/docs/graph-api/changelog/versions, read 2026-11-29); None = not announced.
AVAILABLE_UNTIL: dict[str, dt.date | None] = {
    "v26.0": None,  # released 2026-07-29
    "v25.0": dt.date(2028, 7, 29),
    "v24.0": dt.date(2028, 2, 18),
    "v23.0": dt.date(2027, 10, 8),
    "v22.0": dt.date(2027, 5, 20),
    "v21.0": dt.date(2027, 1, 21),
    "v20.0": dt.date(2026, 9, 24),
    "v19.0": dt.date(2026, 5, 21),
    "v18.0": dt.date(2026, 1, 26),
    "v17.0": dt.date(2025, 9, 12),
    "v16.0": dt.date(2025, 5, 14),
    "v15.0": dt.date(2024, 11, 20),
    "v14.0": dt.date(2024, 9, 17),
    "v13.0": dt.date(2024, 5, 28),
}
NEWEST_KNOWN = "v26.0"


def version_warning(version: str, today: dt.date, key: str = "PROMO_GRAPH_API_VERSION") -> str | None:
    """A warning when ``version`` is past (or within :data:`WARN_AHEAD` of) Meta's date; else None."""
    if version not in AVAILABLE_UNTIL:
        number = version.lstrip("v").split(".")[0]
        if number.isdigit() and int(number) < 13:
            return f"Graph API {version} was retired by Meta long ago: set {key} to a current version " \
                   f"(newest known: {NEWEST_KNOWN})"
        return None  # newer than this table: nothing known against it
    until = AVAILABLE_UNTIL[version]
    if until is None:
        return None
    if today > until:
        return (f"Graph API {version} was available until {until.isoformat()} (Meta's changelog); Meta now "
                f"answers with its oldest version instead: set {key} to a current version "
                f"(newest known: {NEWEST_KNOWN})")
    if today + WARN_AHEAD >= until:
        return (f"Graph API {version} is available only until {until.isoformat()} "
                f"({(until - today).days} days left): move {key} to a newer version (newest known: {NEWEST_KNOWN})")
    return None
