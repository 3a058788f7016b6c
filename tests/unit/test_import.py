"""Import of UMKM, products and events: formats, every error kind, line numbers, idempotence."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from scheduler.errors import ImportValidationError, ValidationError
from scheduler.importer import import_file
from scheduler.models import AuditEntry, Event, Product, Umkm
from scheduler.storage.db import Database

WITA = ZoneInfo("Asia/Makassar")
UMKM_CSV = (
    "id,name,owner,category,city,district,phone,instagram,website,curated\n"
    "u1,Amplang Kakak,Siti,kuliner,Balikpapan,Balikpapan Selatan,0812,amplangkakak,https://amplang.example,ya\n"
    "u2,Batik Kuntul,Nurlela,fesyen,Balikpapan,Balikpapan Barat,,,,tidak\n"
)
PRODUCT_HEADER = "id,umkm_id,name,description,price,image,url,tags,curation\n"
EVENT_HEADER = "id,name,description,venue,city,starts_at,ends_at,url,image,tags,status\n"


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/promo.db")
    database.upgrade()
    yield database
    database.dispose()


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def run(db: Database, kind: str, path: Path, **kw: object):
    with db.session() as s:
        return import_file(s, kind, path, tz=WITA, actor=kw.pop("actor", "tester"), **kw)  # type: ignore[arg-type]


def count(db: Database, model: type) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def problems_of(db: Database, kind: str, path: Path) -> list[tuple[int, str, str]]:
    with pytest.raises(ImportValidationError) as info:
        run(db, kind, path)
    return [(p.line, p.column, p.reason) for p in info.value.problems]


@pytest.fixture
def with_umkm(db: Database, tmp_path: Path) -> Database:
    run(db, "umkm", write(tmp_path, "umkm.csv", UMKM_CSV))
    return db


# --- formats -------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
@pytest.mark.parametrize("delimiter", [",", ";"])
def test_csv_with_or_without_bom_comma_or_semicolon(db: Database, tmp_path: Path, encoding: str,
                                                    delimiter: str) -> None:
    text = UMKM_CSV.replace(",", delimiter)
    path = write(tmp_path, "umkm.csv", text.encode(encoding))
    result = run(db, "umkm", path)
    assert result.created == 2
    with db.session() as s:
        u = s.scalars(select(Umkm).where(Umkm.external_id == "u1")).one()
        assert (u.name, u.district, u.website, u.curated) == (
            "Amplang Kakak", "Balikpapan Selatan", "https://amplang.example", True)
        assert s.scalars(select(Umkm).where(Umkm.external_id == "u2")).one().curated is False


def test_semicolon_csv_keeps_commas_inside_cells(with_umkm: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", PRODUCT_HEADER.replace(",", ";")
                 + "p1;u1;Amplang;Renyah, gurih, khas Balikpapan;Rp 25.000;;;oleholeh;approved\n")
    run(with_umkm, "products", path)
    with with_umkm.session() as s:
        p = s.scalars(select(Product)).one()
        assert p.description == "Renyah, gurih, khas Balikpapan"
        assert p.price == 25000


def test_json_products_and_events(with_umkm: Database, tmp_path: Path) -> None:
    products = [{"id": "p1", "umkm_id": "u1", "name": "Amplang", "price": 25000, "tags": ["#oleh", "kuliner"],
                 "curation": "approved", "url": "https://amplang.example/p1"}]
    run(with_umkm, "products", write(tmp_path, "p.json", json.dumps(products)))
    events = {"events": [{"id": "e1", "name": "Nusakraf", "starts_at": "2023-10-25 19:00",
                          "ends_at": "2023-10-29T21:00:00+08:00", "tags": "kriya;#umkm"}]}
    run(with_umkm, "events", write(tmp_path, "e.json", json.dumps(events)))
    with with_umkm.session() as s:
        p = s.scalars(select(Product)).one()
        assert (p.price, p.tags, p.umkm.external_id) == (25000, ["oleh", "kuliner"], "u1")
        e = s.scalars(select(Event)).one()
        # local WITA wall time → stored in UTC
        assert e.starts_at == dt.datetime(2023, 10, 25, 11, 0, tzinfo=dt.UTC)
        assert e.ends_at == dt.datetime(2023, 10, 29, 13, 0, tzinfo=dt.UTC)
        assert e.tags == ["kriya", "umkm"] and e.status == "scheduled"


def test_unknown_extension_and_missing_file_are_refused(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown file type"):
        run(db, "umkm", write(tmp_path, "umkm.xlsx", "x"))
    with pytest.raises(ValidationError, match="no such file"):
        run(db, "umkm", tmp_path / "nope.csv")


# --- every error kind, with line and column --------------------------------------------

PRODUCT_ERRORS = [
    ("p1,u1,Amplang,,dua puluh ribu,,,,approved", "price", "not a price"),
    ("p1,u1,Amplang,,-5,,,,approved", "price", "not a price"),
    ("p1,u1,Amplang,,\"25.000,50\",,,,approved", "price", "whole rupiah"),
    ("p1,u9,Amplang,,25000,,,,approved", "umkm_id", "unknown umkm_id 'u9'"),
    ("p1,u1,,,25000,,,,approved", "name", "missing name"),
    ("p1,u1,Amplang,,25000,,,,maybe", "curation", "not approved, pending or rejected"),
    ("p1,u1,Amplang,,25000,,ftp://x.example,,approved", "url", "not an http(s) URL"),
    ("p1,u1,Amplang,,25000,,,oleh&oleh,approved", "tags", "may only hold letters"),
    ("p 1,u1,Amplang,,25000,,,,approved", "id", "not a valid id"),
]


@pytest.mark.parametrize(("row", "column", "reason"), PRODUCT_ERRORS, ids=[c for _, c, _ in PRODUCT_ERRORS])
def test_each_product_error_names_line_column_reason(with_umkm: Database, tmp_path: Path, row: str,
                                                     column: str, reason: str) -> None:
    good = "p0,u1,Keripik,,10000,,,,approved"
    path = write(tmp_path, "p.csv", PRODUCT_HEADER + good + "\n" + row + "\n")
    found = problems_of(with_umkm, "products", path)
    assert [(line, col) for line, col, _ in found] == [(3, column)]
    assert reason in found[0][2]
    assert count(with_umkm, Product) == 0  # the good row on line 2 was not written either


def test_bad_bool_in_umkm(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "u.csv", UMKM_CSV + "u3,Kopi,,,,,,,,mungkin\n")
    assert [(line, col) for line, col, _ in problems_of(db, "umkm", path)] == [(4, "curated")]
    assert count(db, Umkm) == 0


def test_duplicate_id_names_both_lines(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "u.csv", UMKM_CSV + "u1,Lagi,,,,,,,,ya\n")
    [(line, col, reason)] = problems_of(db, "umkm", path)
    assert (line, col) == (4, "id") and "line 2" in reason


@pytest.mark.parametrize(("starts", "ends", "column", "reason"), [
    ("25/10/2023 19:00", "", "starts_at", "not a date"),
    ("2023-10-25", "", "starts_at", "has no time"),
    ("2023-10-25 19:00", "besok", "ends_at", "not a date"),
    ("2023-10-25 19:00", "2023-10-25 18:00", "ends_at", "ends before it starts"),
    ("", "", "starts_at", "missing starts_at"),
])
def test_event_date_errors(db: Database, tmp_path: Path, starts: str, ends: str, column: str, reason: str) -> None:
    path = write(tmp_path, "e.csv", EVENT_HEADER + f"e1,Nusakraf,,,,{starts},{ends},,,,\n")
    [(line, col, why)] = problems_of(db, "events", path)
    assert (line, col) == (2, column) and reason in why


def test_event_end_before_start_across_zones(db: Database, tmp_path: Path) -> None:
    # 19:00 WITA is 18:00 WIB: an end at 18:30+07:00 is after the start (though 18:30 < 19:00).
    ok = "e1,A,,,,2023-10-25 19:00,2023-10-25T18:30:00+07:00,,,,\n"
    bad = "e2,B,,,,2023-10-25 19:00,2023-10-25T17:30:00+07:00,,,,\n"
    found = problems_of(db, "events", write(tmp_path, "e.csv", EVENT_HEADER + ok + bad))
    assert [(line, col) for line, col, _ in found] == [(3, "ends_at")]


def test_unknown_column_and_extra_values(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "u.csv", "id,name,colour\nu1,A,red\n")
    assert [(line, col) for line, col, _ in problems_of(db, "umkm", path)] == [(1, "colour")]
    path = write(tmp_path, "u2.csv", "id,name\nu1,A,extra\n")
    [(line, _col, reason)] = problems_of(db, "umkm", path)
    assert line == 2 and "more values than columns" in reason


def test_every_bad_row_is_reported_not_just_the_first(with_umkm: Database, tmp_path: Path) -> None:
    rows = ["p1,u1,A,,x,,,,approved", "p2,u1,B,,1000,,,,approved", "p3,u7,,,1000,,,,nope"]
    found = problems_of(with_umkm, "products", write(tmp_path, "p.csv", PRODUCT_HEADER + "\n".join(rows) + "\n"))
    assert sorted((line, col) for line, col, _ in found) == [(2, "price"), (4, "curation"), (4, "name"),
                                                             (4, "umkm_id")]


def test_message_lists_line_column_and_reason(with_umkm: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", PRODUCT_HEADER + "p1,u1,A,,x,,,,approved\n")
    with pytest.raises(ImportValidationError) as info:
        run(with_umkm, "products", path)
    assert "line 2, column 'price'" in str(info.value) and "nothing imported" in str(info.value)


# --- line numbers ---------------------------------------------------------------------

def test_csv_line_numbers_with_multiline_quoted_cells(with_umkm: Database, tmp_path: Path) -> None:
    content = (PRODUCT_HEADER
               + 'p1,u1,Amplang,"Baris satu\nbaris dua\nbaris tiga",25000,,,,approved\n'   # lines 2-4
               + "\n"                                                                      # line 5, blank
               + 'p2,u1,Kemeja,"Motif\nkuntul",mahal,,,,approved\n'                        # lines 6-7
               + "p3,u1,Tas,,1000,,,,bagus\n")                                             # line 8
    found = problems_of(with_umkm, "products", write(tmp_path, "p.csv", content))
    assert [(line, col) for line, col, _ in found] == [(6, "price"), (8, "curation")]


def test_json_rows_get_the_line_where_the_object_starts(with_umkm: Database, tmp_path: Path) -> None:
    content = """[
  {"id": "p1", "umkm_id": "u1", "name": "Quote \\" and brace } in a string {",
   "price": 1000, "curation": "approved"},
  {
    "id": "p2", "umkm_id": "u1", "name": "B",
    "price": "mahal"
  },
  {"id": "p3", "umkm_id": "u1", "name": "C", "curation": "nah"}
]"""
    found = problems_of(with_umkm, "products", write(tmp_path, "p.json", content))
    assert [(line, col) for line, col, _ in found] == [(4, "price"), (8, "curation")]


def test_json_wrapped_in_an_object_gets_line_numbers(with_umkm: Database, tmp_path: Path) -> None:
    content = '{\n  "products": [\n    {"id": "p1", "umkm_id": "u1", "name": "A"},\n' \
              '    {"id": "p2", "umkm_id": "u1", "name": "B", "price": "x"}\n  ]\n}\n'
    found = problems_of(with_umkm, "products", write(tmp_path, "p.json", content))
    assert [(line, col) for line, col, _ in found] == [(4, "price")]


def test_invalid_json_names_its_line(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="line 3"):
        run(db, "umkm", write(tmp_path, "u.json", '[\n {"id": "u1",\n  "name": }\n]'))


# --- skip-invalid, idempotence, updates ------------------------------------------------

def test_skip_invalid_writes_the_good_rows(with_umkm: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", PRODUCT_HEADER + "p1,u1,A,,x,,,,approved\np2,u1,B,,1000,,,,approved\n")
    result = run(with_umkm, "products", path, skip_invalid=True)
    assert result.created == 1 and [p.line for p in result.skipped] == [2]
    with with_umkm.session() as s:
        assert [p.external_id for p in s.scalars(select(Product))] == ["p2"]


def test_reimport_changes_nothing(with_umkm: Database, tmp_path: Path) -> None:
    products = write(tmp_path, "p.csv", PRODUCT_HEADER + "p1,u1,A,Enak,25000,,,a;b,approved\n")
    events = write(tmp_path, "e.csv", EVENT_HEADER
                   + "e1,Nusakraf,Pameran,Atrium,Balikpapan,2023-10-25 10:00,2023-10-29 21:00,,,kriya,\n")
    run(with_umkm, "products", products)
    run(with_umkm, "events", events)
    with with_umkm.session() as s:
        audits = s.scalar(select(func.count()).select_from(AuditEntry))
    for kind, path in (("umkm", tmp_path / "umkm.csv"), ("products", products), ("events", events)):
        result = run(with_umkm, kind, path)
        assert (result.created, result.updated) == (0, 0) and result.unchanged >= 1
        assert "unchanged" in result.summary()
    with with_umkm.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == audits


def test_edited_row_updates_record_and_audit_names_who_and_what(with_umkm: Database, tmp_path: Path) -> None:
    run(with_umkm, "products", write(tmp_path, "p.csv", PRODUCT_HEADER + "p1,u1,A,Enak,25000,,,,approved\n"))
    result = run(with_umkm, "products",
                 write(tmp_path, "p.csv", PRODUCT_HEADER + "p1,u1,A,Enak,27500,,,,approved\n"), actor="rina")
    assert (result.created, result.updated, result.unchanged) == (0, 1, 0)
    with with_umkm.session() as s:
        assert s.scalars(select(Product)).one().price == 27500
        entry = s.scalars(select(AuditEntry).where(AuditEntry.actor == "rina")).one()  # one row per import
        assert (entry.action, entry.entity, entry.entity_id) == ("import", "products", "p.csv")
        assert entry.detail["created"] == []
        assert entry.detail["updated"] == {"p1": {"before": {"price": 25000}, "after": {"price": 27500}}}


# --- messages said once, per file (issue 8.6) -------------------------------------------

def test_a_missing_column_is_reported_once_not_per_row(with_umkm: Database, tmp_path: Path) -> None:
    rows = "".join(f"p{i},Amplang {i},,25000,,,,approved\n" for i in range(5))
    path = write(tmp_path, "p.csv", "id,name,description,price,image,url,tags,curation\n" + rows)
    with pytest.raises(ImportValidationError) as info:
        run(with_umkm, "products", path, skip_invalid=True)  # the file is wrong, not some rows
    assert [(p.line, p.column, p.reason) for p in info.value.problems] == [
        (1, "umkm_id", "the file has no column umkm_id")]
    assert str(info.value).count("umkm_id") == 2  # "column 'umkm_id': the file has no column umkm_id"
    assert count(with_umkm, Product) == 0


def test_a_products_file_imported_as_umkm_says_so_once(with_umkm: Database, tmp_path: Path) -> None:
    rows = "".join(f"p{i},u1,Amplang {i},Renyah,25000,,,kuliner,approved\n" for i in range(4))
    path = write(tmp_path, "products.csv", PRODUCT_HEADER + rows)
    with pytest.raises(ImportValidationError) as info:
        run(with_umkm, "umkm", path)
    [problem] = info.value.problems
    assert problem.line == 1 and problem.column == "umkm_id, description, price, image, url, tags, curation"
    assert f"these columns look like a products file: try `promo import products {path}`" in problem.reason
    with pytest.raises(ImportValidationError) as info:  # and the other way round
        run(with_umkm, "products", write(tmp_path, "u.csv", UMKM_CSV))
    [problem] = info.value.problems
    assert "look like a UMKM file: try `promo import umkm" in problem.reason


def test_json_keys_no_object_has_are_reported_once(with_umkm: Database, tmp_path: Path) -> None:
    items = [{"id": f"p{i}", "name": "Amplang", "price": 1000} for i in range(3)]
    with pytest.raises(ImportValidationError) as info:
        run(with_umkm, "products", write(tmp_path, "p.json", json.dumps(items, indent=1)))
    assert [(p.column, p.reason) for p in info.value.problems] == [("umkm_id", "the file has no column umkm_id")]
    # a key some objects have and one lacks is that row's problem
    items[1]["umkm_id"] = "u1"
    found = problems_of(with_umkm, "products", write(tmp_path, "p2.json", json.dumps([items[1], items[2]])))
    assert [(line, col, why) for line, col, why in found] == [(1, "umkm_id", "missing umkm_id")]


def test_a_folder_is_not_called_a_missing_file(db: Database, tmp_path: Path) -> None:
    (tmp_path / "exports.csv").mkdir()
    with pytest.raises(ValidationError, match="is a folder, not a file"):
        run(db, "umkm", tmp_path / "exports.csv")


@pytest.mark.parametrize("cell", ["kue, kering", "kue|kering", '"kue;kering"', '"kue, kering"', "#kue | #kering"])
def test_tags_in_a_semicolon_file(with_umkm: Database, tmp_path: Path, cell: str) -> None:
    path = write(tmp_path, "p.csv", PRODUCT_HEADER.replace(",", ";") + f"p1;u1;Kue;;5000;;;{cell};approved\n")
    run(with_umkm, "products", path)
    with with_umkm.session() as s:
        assert s.scalars(select(Product)).one().tags == ["kue", "kering"]


def test_semicolon_between_tags_in_a_semicolon_file_gets_a_hint(with_umkm: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", PRODUCT_HEADER.replace(",", ";") + "p1;u1;Kue;;5000;;;kue;kering;approved\n")
    found = problems_of(with_umkm, "products", path)
    assert any(line == 2 and "separate tags with , or |" in reason for line, _col, reason in found), found


# --- tags with hyphens (issue 8.7) --------------------------------------------------------

def test_indonesian_reduplicated_tags_are_accepted_as_written(with_umkm: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", PRODUCT_HEADER + "p1,u1,Kue,,5000,,,kue-kue;#jalan-jalan;oleh-oleh_2026,approved\n")
    run(with_umkm, "products", path)
    with with_umkm.session() as s:
        assert s.scalars(select(Product)).one().tags == ["kue-kue", "jalan-jalan", "oleh-oleh_2026"]


@pytest.mark.parametrize(("tag", "reason"), [
    ("pasar murah", "has a space: join the words (pasarmurah) or use a hyphen (pasar-murah)"),
    ("-kue", "may only hold letters, digits, _ and -"),
    ("kue--kue", "may only hold letters, digits, _ and -"),
    ("kue&kopi", "may only hold letters, digits, _ and -"),
])
def test_tags_that_cannot_be_a_hashtag_are_refused(with_umkm: Database, tmp_path: Path, tag: str,
                                                   reason: str) -> None:
    path = write(tmp_path, "p.csv", PRODUCT_HEADER + f"p1,u1,Kue,,5000,,,{tag},approved\n")
    [(line, col, why)] = problems_of(with_umkm, "products", path)
    assert (line, col) == (2, "tags") and reason in why


# --- field limits and huge cells (issues 9.12, 9.13) ----------------------------------------

def test_a_huge_csv_cell_is_a_row_error_naming_line_and_column(with_umkm: Database, tmp_path: Path) -> None:
    huge = "Renyah. " * 650_000  # 5.2 MB, past the csv module's 128 KiB field limit
    path = write(tmp_path, "p.csv", PRODUCT_HEADER + "p0,u1,Keripik,,10000,,,,approved\n"
                 + f'p1,u1,Amplang,"{huge}",25000,,,,approved\n')
    [(line, col, why)] = problems_of(with_umkm, "products", path)
    assert (line, col) == (3, "description")
    assert why == "5,200,000 characters, over the limit of 10,000 (PROMO_MAX_DESCRIPTION_CHARS)"
    assert "Renyah" not in why  # the cell is not echoed
    assert count(with_umkm, Product) == 0


def test_description_limit_is_a_setting(with_umkm: Database, tmp_path: Path) -> None:
    text = "Kerupuk renyah. " * 100  # 1,600 characters
    path = write(tmp_path, "p.json", json.dumps([{"id": "p1", "umkm_id": "u1", "name": "Amplang",
                                                  "description": text}]))
    run(with_umkm, "products", path)  # under the default 10,000
    with pytest.raises(ImportValidationError) as info:
        run(with_umkm, "products", path, max_description_chars=1_000)
    [p] = info.value.problems
    assert (p.column, p.reason) == ("description", "1,600 characters, over the limit of 1,000 "
                                                   "(PROMO_MAX_DESCRIPTION_CHARS)")


@pytest.mark.parametrize(("column", "value", "limit"), [
    ("name", "A" * 201, "200"), ("url", "https://x.example/" + "a" * 2000, "2,000"),
    ("tags", ";".join(f"t{i}" for i in range(31)), "more than 30"), ("tags", "a" * 51, "longer than 50"),
])
def test_other_fields_have_limits(with_umkm: Database, tmp_path: Path, column: str, value: str, limit: str) -> None:
    row = {"id": "p1", "umkm_id": "u1", "name": "Amplang", column: value}
    [(_line, col, why)] = problems_of(with_umkm, "products", write(tmp_path, "p.json", json.dumps([row])))
    assert col == column and limit in why and len(why) < 200


def test_huge_values_are_not_echoed_in_messages(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "e.json", json.dumps([{"id": "e1", "name": "A", "starts_at": "2023-10-25 19:00",
                                                  "url": "ftp://x.example/" + "a" * 1500}]))
    [(_line, col, why)] = problems_of(db, "events", path)
    assert col == "url" and "…" in why and len(why) < 150


def test_cli_import_of_a_huge_cell_prints_no_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from scheduler.cli import main

    monkeypatch.setenv("PROMO_DATABASE_URL", f"sqlite:///{tmp_path}/promo.db")
    monkeypatch.setenv("PROMO_MAX_DESCRIPTION_CHARS", "500")
    assert main(["db", "upgrade"]) == 0
    path = write(tmp_path, "u.csv", "id,name,category\nu1,Amplang," + "x" * 300_000 + "\n")
    assert main(["import", "umkm", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 2, column 'category': 300,000 characters, over the limit of 100" in err
    assert "Traceback" not in err
    path = write(tmp_path, "p.csv", PRODUCT_HEADER + "p1,u1,A," + "kata " * 200 + ",1000,,,,approved\n")
    main(["import", "umkm", str(write(tmp_path, "u2.csv", UMKM_CSV))])
    assert main(["import", "products", str(path)]) == 1
    assert "over the limit of 500 (PROMO_MAX_DESCRIPTION_CHARS)" in capsys.readouterr().err


def test_max_description_setting_is_checked(tmp_path: Path) -> None:
    from scheduler.config import load_settings
    from scheduler.errors import ConfigError

    assert load_settings({"PROMO_MAX_DESCRIPTION_CHARS": "2500"}).max_description_chars == 2500
    assert load_settings({}).max_description_chars == 10_000
    with pytest.raises(ConfigError, match="PROMO_MAX_DESCRIPTION_CHARS: 'banyak' is not a whole number"):
        load_settings({"PROMO_MAX_DESCRIPTION_CHARS": "banyak"})


def test_image_paths_that_would_not_fit_the_database_column_are_a_row_error(with_umkm: Database,
                                                                             tmp_path: Path) -> None:
    # The column holds 500 characters (all images, ; separated): PostgreSQL refuses longer values, so
    # the import must refuse them first, naming the row, instead of failing half-way on the database.
    images = ";".join(f"media/foto-amplang-{i:03d}.jpg" for i in range(20))  # 20 × 26 = 539 characters
    path = write(tmp_path, "p.json", json.dumps([{"id": "p1", "umkm_id": "u1", "name": "Amplang", "images": images}]))
    with pytest.raises(ImportValidationError) as info:
        run(with_umkm, "products", path)
    [p] = info.value.problems
    assert (p.column, p.reason) == ("images", "539 characters, over the limit of 500")
    assert count(with_umkm, Product) == 0
