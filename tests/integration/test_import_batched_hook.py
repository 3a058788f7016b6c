"""`promo import` (and the web app's import) recompose unsent highlight posts with one query per
batch of 1,000 records, not one per record, and load only the products that have such a post:
the same posts change, far fewer queries and no record loaded for nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import jobs.event_promotion
from scheduler.storage.db import Database
from tests.integration import test_cli
from tests.integration.test_highlight import START, World, at, catalogue_rows

promo = test_cli.promo  # the fixture: run `promo ARGS` in-process in tmp_path


@pytest.fixture
def world(tmp_path: Path, any_db: Database) -> World:
    """test_highlight's world (a catalogue, two highlight channels), on SQLite and on PostgreSQL:
    the hook finds the posts by the updated records' database ids on both."""
    w = World(tmp_path, any_db, ("kota", "dua", "alerts"), HIGHLIGHT_CHANNELS="kota,dua", ALERT_CHANNEL="alerts")
    umkm, products = catalogue_rows()
    # 100 UMKM first: the catalogue's UMKM ids (101-113) are then no product's id (1-43), so
    # a hook that took one for the other finds nothing
    w.load("umkm", [{"id": f"pad{i}", "name": "Lain", "curated": "tidak"} for i in range(100)])
    w.load("umkm", umkm)
    w.load("products", products)
    return w


def test_an_umkm_no_longer_curated_cancels_its_unsent_highlight(world: World) -> None:
    [made, _] = world.run(at(START, "09:00"))
    umkm_ref = f"u{made.product[1:3]}"
    world.load("umkm", [{"id": umkm_ref, "name": "UMKM Baru", "city": "Balikpapan", "curated": "tidak"}])
    assert {p.status for p in world.posts()} == {"cancelled"}
    assert {r.status for r in world.rows()} == {"cancelled"}


def counted_refreshes(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The products each highlight refresh is given, by external id, one list per call."""
    calls: list[list[str]] = []
    real = jobs.event_promotion.refresh_unsent_highlights

    def counting(settings: Any, session: Any, composer: Any, products: Any, **kw: Any) -> list[str]:
        products = list(products)
        calls.append([p.external_id for p in products])
        return real(settings, session, composer, products, **kw)

    monkeypatch.setattr(jobs.event_promotion, "refresh_unsent_highlights", counting)
    return calls


def test_a_product_edit_in_a_big_file_still_recomposes(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    [made, _] = world.run(at(START, "09:00"))
    ref = made.product
    others = [{"id": f"z{i:04d}", "umkm_id": "u00", "name": f"Lain {i}", "description": "", "price": "1000",
               "curation": "approved", "active": "true"} for i in range(1500)]
    mine = {"id": ref, "umkm_id": f"u{ref[1:3]}", "name": "Nama Baru Sekali", "description": "Baru.",
            "price": "12000", "curation": "approved", "active": "true"}
    calls = counted_refreshes(monkeypatch)
    world.load("products", [*others, mine])  # the edited product is in the second batch
    assert all("Nama Baru Sekali" in p.text for p in world.posts())
    assert calls == [[ref]]  # of 1,501 records, only the one with an unsent highlight post was loaded


def test_cli_import_loads_no_product_that_has_no_unsent_highlight(promo, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    calls = counted_refreshes(monkeypatch)
    lines = ["id,umkm_id,name,description,price,image,url,tags,curation"]
    lines += [f"b{i},u1,Amplang {i},Renyah,{25000 + i},,,snack,approved" for i in range(2500)]
    Path("many.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert promo("import", "umkm", "umkm.csv")[0] == 0
    code, out, err = promo("import", "products", "many.csv")
    assert code == 0, err
    assert out.strip() == "products: 2500 created, 0 updated, 0 unchanged"
    assert calls == []  # (one call per product until 2026-11-29, then one per 1,000 with every product loaded)
