"""The pick: which products are the highlight of a day (pure: no database, no clock).

* only products whose curation is ``approved``, that are active and whose UMKM is curated
  (the caller passes those, see :func:`jobs.highlight.queries.eligible_products`);
* the UMKM least recently featured goes first (never featured counts as oldest), so a
  UMKM with ten products gets no second turn before every other eligible UMKM had one;
* no UMKM again within PROMO_HIGHLIGHT_UMKM_COOLDOWN_DAYS while another one is eligible;
* within the chosen UMKM, its least recently featured product;
* ties go to the UMKM (product) featured fewer times, then (PROMO_HIGHLIGHT_ORDER=
  fair_then_engagement) to the UMKM whose posts drew more engagement per post, then to the
  smaller external id: engagement only ever breaks a tie the fairness rules left.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    """An eligible product with its UMKM (ids are database ids; refs are external ids)."""

    product_id: int
    product_ref: str
    product_name: str
    umkm_id: int
    umkm_ref: str
    umkm_name: str


@dataclass(frozen=True)
class Feature:
    """One past pick: which product (of which UMKM) was the highlight of a day's slot."""

    day: dt.date
    slot: int
    umkm_id: int
    product_id: int


@dataclass
class Pick:
    """A product picked for a slot of a day, with the reasons in plain words."""

    slot: int
    candidate: Candidate
    why: list[str] = field(default_factory=list)


def _ago(day: dt.date, last: dt.date) -> str:
    n = (day - last).days
    return f"{last.isoformat()} ({'today' if n == 0 else '1 day ago' if n == 1 else f'{n} days ago'})"


def pick_highlights(candidates: Sequence[Candidate], history: Iterable[Feature], day: dt.date, *,
                    count: int = 1, cooldown_days: int = 7,
                    engagement: Mapping[int, float] | None = None) -> list[Pick]:
    """Pick up to ``count`` products for ``day`` (see the module docstring for the rules).

    ``history`` holds the picks of earlier days (later ones are ignored). Each pick is
    added to the history before the next slot is picked, so two slots of one day go to
    two UMKM whenever there are two. ``engagement`` (UMKM id → engagement per post) breaks
    ties between UMKM the fairness rules rank equal; None or empty: the smaller id does.
    """
    past = sorted((f for f in history if f.day < day), key=lambda f: (f.day, f.slot))
    picks: list[Pick] = []
    for slot in range(count):
        taken = {p.candidate.product_id for p in picks}
        pool = [c for c in candidates if c.product_id not in taken]
        if not pool:
            break
        pick = _pick_one(pool, past, day, slot, cooldown_days, engagement or {})
        picks.append(pick)
        past.append(Feature(day=day, slot=slot, umkm_id=pick.candidate.umkm_id,
                            product_id=pick.candidate.product_id))
    return picks


_NEVER = (dt.date.min, -1)


def _pick_one(pool: Sequence[Candidate], past: Sequence[Feature], day: dt.date, slot: int,
              cooldown_days: int, engagement: Mapping[int, float]) -> Pick:
    umkm_last: dict[int, tuple[dt.date, int]] = {}
    umkm_times: dict[int, int] = {}
    product_last: dict[int, tuple[dt.date, int]] = {}
    product_times: dict[int, int] = {}
    for f in past:  # sorted oldest first, so the last write is the latest feature
        umkm_last[f.umkm_id] = (f.day, f.slot)
        umkm_times[f.umkm_id] = umkm_times.get(f.umkm_id, 0) + 1
        product_last[f.product_id] = (f.day, f.slot)
        product_times[f.product_id] = product_times.get(f.product_id, 0) + 1
    by_umkm: dict[int, list[Candidate]] = {}
    for c in pool:
        by_umkm.setdefault(c.umkm_id, []).append(c)

    def umkm_key(u: int) -> tuple[tuple[dt.date, int], int, float, str]:
        return umkm_last.get(u, _NEVER), umkm_times.get(u, 0), -engagement.get(u, 0.0), min(c.umkm_ref for c in by_umkm[u])

    def cooling(u: int) -> bool:
        last = umkm_last.get(u)
        return last is not None and (day - last[0]).days < cooldown_days

    ranked = sorted(by_umkm, key=umkm_key)
    free = [u for u in ranked if not cooling(u)]
    chosen = (free or ranked)[0]
    first = by_umkm[chosen][0]
    last = umkm_last.get(chosen)
    seen = f"last featured {_ago(day, last[0])}" if last else "never featured"
    why = [f"UMKM {first.umkm_name} ({first.umkm_ref}): {seen}, least recently featured "
           f"of {len(ranked)} eligible UMKM"]
    ties = [u for u in ranked if u != chosen and umkm_key(u)[:2] == umkm_key(chosen)[:2]]
    if ties:
        by_engagement = engagement and any(umkm_key(u)[2] != umkm_key(chosen)[2] for u in ties)
        why.append(f"tied with {len(ties)} other UMKM; " + (
            f"the most engagement per post goes first ({engagement.get(chosen, 0.0):g})" if by_engagement
            else "the smallest id goes first"))
    if cooldown_days:
        cooled = len(ranked) - len(free)
        if not free:
            why.append(f"every eligible UMKM was featured within the {cooldown_days}-day cooldown, "
                       "so the least recent one goes again")
        elif cooled:
            why.append(f"{cooled} UMKM featured within the last {cooldown_days} days wait (cooldown)")

    def product_key(c: Candidate) -> tuple[tuple[dt.date, int], int, str]:
        return product_last.get(c.product_id, _NEVER), product_times.get(c.product_id, 0), c.product_ref

    products = sorted(by_umkm[chosen], key=product_key)
    best = products[0]
    plast = product_last.get(best.product_id)
    pseen = f"last featured {_ago(day, plast[0])}" if plast else "never featured"
    why.append(f"product {best.product_name} ({best.product_ref}): {pseen}, least recently featured "
               f"of its {len(products)} eligible product(s)")
    return Pick(slot=slot, candidate=best, why=why)
