"""`promo records list` for big catalogues: a table shows the first 100 by id and how to see
more, `--after` pages without overlap or gap, `--search` narrows, `--limit 0` and csv/json
without --limit give every record as before (for scripts)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.integration import test_cli

promo = test_cli.promo  # the fixture: run `promo ARGS` in-process in tmp_path


def catalogue(promo, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    lines = ["id,umkm_id,name,description,price,image,url,tags,curation"]
    lines += [f"p{i:04d},u1,{'Amplang' if i % 2 else 'Kue'} {i},Renyah,{25000 + i},,,snack,approved" for i in range(n)]
    Path("many.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert promo("import", "umkm", "umkm.csv")[0] == 0
    assert promo("import", "products", "many.csv")[0] == 0
    return [f"p{i:04d}" for i in range(n)]


def test_a_table_shows_100_and_says_how_to_see_more(promo) -> None:
    ids = catalogue(promo, 250)
    code, out, _ = promo("records", "list", "products")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "UMKM_ID", "NAME"] and len(lines) == 1 + 100 + 1
    assert [line.split()[0] for line in lines[1:101]] == ids[:100]
    assert lines[-1] == ("100 shown, more there: `promo records list products --after p0099` for the next ones, "
                         "`--limit 0` for all")


def test_after_pages_through_every_record_once(promo) -> None:
    ids = catalogue(promo, 250)
    seen: list[str] = []
    after: list[str] = []
    while True:
        code, out, err = promo("records", "list", "products", "--limit", "60", "--format", "json", *after)
        assert code == 0
        seen += [r["id"] for r in json.loads(out)]
        m = re.search(r"--after (\S+)`", err)
        if not m:
            break
        assert "`promo records list products --limit 60 --format json --after" in err
        after = ["--after", m.group(1)]
    assert seen == ids


def test_search_narrows_and_json_without_limit_gives_everything(promo) -> None:
    ids = catalogue(promo, 250)
    rows = json.loads(promo("records", "list", "products", "--search", "amplang", "--limit", "0",
                            "--format", "json")[1])
    assert [r["id"] for r in rows] == ids[1::2]
    everything = json.loads(promo("records", "list", "products", "--format", "json")[1])
    assert sorted(r["id"] for r in everything) == ids and everything[0]["price_text"]  # as before: typed rows
    out = promo("records", "list", "products", "--limit", "0")[1]
    assert len(out.splitlines()) == 1 + 250 and "more there" not in out


def test_a_negative_limit_is_a_usage_error(promo) -> None:
    code, _, err = promo("records", "list", "umkm", "--limit", "-1")
    assert code == 2 and "--limit -1: 0 (all) or more" in err


def test_every_record_as_json_or_csv_is_written_as_it_is_read(promo) -> None:  # type: ignore[no-untyped-def]
    """Without --limit, json and csv stream the records (read 1,000 at a time, no record objects):
    the same text as before, an empty list included."""
    assert promo("records", "list", "products", "--format", "json")[1] == "[]\n"
    assert promo("records", "list", "products", "--format", "csv")[1].splitlines()[0] == (
        "\ufeffid,umkm_id,name,price_text,curation,active,tags")
    catalogue(promo, 2500)
    Path("odd.csv").write_text('id,umkm_id,name,price,tags\nq1,u1,"=HYPERLINK(""x"")",1234567,a;b\n', encoding="utf-8")
    assert promo("import", "products", "odd.csv")[0] == 0
    out = promo("records", "list", "products", "--format", "json")[1]
    rows = json.loads(out)
    assert out == json.dumps(rows, ensure_ascii=False, indent=2) + "\n"  # as emit prints a list
    assert len(rows) == 2501 and [r["id"] for r in rows[:2]] == ["p0000", "p0001"]
    assert rows[-1] == {"id": "q1", "umkm_id": "u1", "name": '=HYPERLINK("x")', "description": None,
                        "price": 1234567, "price_text": "Rp 1.234.567", "url": None, "image": None,
                        "tags": ["a", "b"], "curation": "pending", "active": True}
    lines = promo("records", "list", "products", "--format", "csv")[1].splitlines()
    assert lines[0] == "\ufeffid,umkm_id,name,description,price,price_text,url,image,tags,curation,active"
    assert len(lines) == 1 + 2501 and lines[1] == "p0000,u1,Kue 0,Renyah,25000,Rp 25.000,,,snack,approved,yes"
    assert lines[-1] == "q1,u1,\"'=HYPERLINK(\"\"x\"\")\",,1234567,Rp 1.234.567,,,\"a, b\",pending,yes"


def test_prices_in_the_list_read_as_the_templates_write_them() -> None:
    from scheduler.actions.records import _rupiah
    from scheduler.composer.filters import rupiah

    for price in (0, 7, 999, 1000, 25000, 1234567, 10**13, -5000, None):
        assert _rupiah(price) == rupiah(price)
