"""The daily highlight's pick: fair to businesses first, then to products, and explainable."""

from __future__ import annotations

import datetime as dt
import random

from jobs.highlight.pick import Candidate, Feature, pick_highlights
from tests.helpers import between_repeats_all_others_appear

DAY0 = dt.date(2026, 12, 1)


def catalogue(sizes: list[int]) -> list[Candidate]:
    """UMKM ``u00``… with ``sizes[i]`` products each."""
    out, pid = [], 0
    for i, n in enumerate(sizes):
        for j in range(n):
            pid += 1
            out.append(Candidate(pid, f"p{i:02d}-{j:02d}", f"Produk {i}-{j}", 100 + i, f"u{i:02d}", f"UMKM {i}"))
    return out


def simulate(cands: list[Candidate], days: int, cooldown: int = 7, count: int = 1) -> list[Feature]:
    history: list[Feature] = []
    for d in range(days):
        day = DAY0 + dt.timedelta(days=d)
        for p in pick_highlights(cands, history, day, count=count, cooldown_days=cooldown):
            history.append(Feature(day, p.slot, p.candidate.umkm_id, p.candidate.product_id))
    return history


UNEVEN = [10, 5, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1]  # 40 products from 12 UMKM


def test_sixty_days_fair_across_umkm_and_within_each():
    cands = catalogue(UNEVEN)
    history = simulate(cands, 60)
    assert len(history) == 60
    umkm_seq = [f.umkm_id for f in history]
    assert between_repeats_all_others_appear(umkm_seq, {c.umkm_id for c in cands})
    # 60 days over 12 UMKM: every UMKM exactly 5 times, whatever its number of products.
    assert {umkm_seq.count(u) for u in set(umkm_seq)} == {5}
    for u in {c.umkm_id for c in cands}:
        products = [f.product_id for f in history if f.umkm_id == u]
        own = {c.product_id for c in cands if c.umkm_id == u}
        assert between_repeats_all_others_appear(products, own)
    # The big UMKM showed 5 of its 10 products, each once.
    big = [f.product_id for f in history if f.umkm_id == 100]
    assert len(set(big)) == len(big) == 5


def test_cooldown_keeps_a_umkm_away_while_others_are_eligible():
    cands = catalogue(UNEVEN)
    history = simulate(cands, 60, cooldown=7)
    last: dict[int, dt.date] = {}
    for f in history:
        if f.umkm_id in last:
            assert (f.day - last[f.umkm_id]).days >= 7
        last[f.umkm_id] = f.day


def test_cooldown_gives_way_when_every_umkm_is_cooling_down():
    cands = catalogue([2, 1, 1])
    history = [Feature(DAY0 + dt.timedelta(days=i), 0, 100 + i, [1, 3, 4][i]) for i in range(3)]
    day = DAY0 + dt.timedelta(days=3)
    [pick] = pick_highlights(cands, history, day, cooldown_days=7)
    assert pick.candidate.umkm_ref == "u00"  # least recent, though only 3 days ago
    assert pick.candidate.product_ref == "p00-01"  # its product not shown yet
    assert any("cooldown" in line for line in pick.why)


def test_ties_are_deterministic_whatever_the_input_order():
    cands = catalogue(UNEVEN)
    expected = simulate(cands, 30)
    shuffled = cands[:]
    random.Random(3).shuffle(shuffled)
    assert simulate(shuffled, 30) == expected
    # Among never-featured UMKM the smallest external id goes first.
    assert expected[0].umkm_id == 100


def test_two_slots_a_day_go_to_two_umkm():
    cands = catalogue(UNEVEN)
    history = simulate(cands, 20, count=2)
    by_day: dict[dt.date, list[Feature]] = {}
    for f in history:
        by_day.setdefault(f.day, []).append(f)
    assert all(len(v) == 2 and v[0].umkm_id != v[1].umkm_id for v in by_day.values())
    assert between_repeats_all_others_appear([f.umkm_id for f in history], {c.umkm_id for c in cands})


def test_one_product_is_not_picked_twice_on_one_day():
    cands = catalogue([1])
    picks = pick_highlights(cands, [], DAY0, count=3)
    assert [p.candidate.product_ref for p in picks] == ["p00-00"]


def test_a_new_umkm_goes_next_and_explanations_say_why():
    cands = catalogue([3, 2])
    history = simulate(cands, 5)
    newcomer = Candidate(99, "p-new", "Keripik Baru", 500, "u-new", "UMKM Baru")
    day = DAY0 + dt.timedelta(days=5)
    [pick] = pick_highlights([*cands, newcomer], history, day)
    assert pick.candidate == newcomer
    assert "never featured" in pick.why[0] and "of 3 eligible UMKM" in pick.why[0]
    [after] = pick_highlights(cands, history, day)
    last = max(f.day for f in history if f.umkm_id == after.candidate.umkm_id)
    assert f"last featured {last.isoformat()} ({(day - last).days} days ago)" in after.why[0]


def test_nothing_to_pick():
    assert pick_highlights([], [], DAY0) == []


def test_engagement_only_breaks_ties_the_fairness_rules_leave():
    cands = catalogue([1, 1, 1])  # UMKM 100, 101, 102, none featured yet
    popular = {102: 40.0, 101: 3.0}
    (pick,) = pick_highlights(cands, [], DAY0, engagement=popular)
    assert pick.candidate.umkm_id == 102  # all tied: the most engagement per post goes first
    assert any("most engagement per post" in w for w in pick.why)
    # 102 was featured yesterday: the never-featured ones come first however popular 102 is.
    history = [Feature(DAY0, 0, 102, pick.candidate.product_id)]
    (nxt,) = pick_highlights(cands, history, DAY0 + dt.timedelta(days=1), engagement={102: 1000.0, 101: 3.0})
    assert nxt.candidate.umkm_id == 101


def test_sixty_days_with_engagement_order_stay_fair():
    cands = catalogue(UNEVEN)
    engagement = {100 + i: float(i * 7 % 5) for i in range(len(UNEVEN))}
    history: list[Feature] = []
    for d in range(60):
        day = DAY0 + dt.timedelta(days=d)
        for p in pick_highlights(cands, history, day, engagement=engagement):
            history.append(Feature(day, p.slot, p.candidate.umkm_id, p.candidate.product_id))
    assert between_repeats_all_others_appear([f.umkm_id for f in history], {100 + i for i in range(len(UNEVEN))})
