"""Big catalogues: `promo import` writes with multi-row statements (not one per row), reports
progress, and records one audit row per import (on SQLite and on PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import event, func, select

from scheduler.importer import BATCH, import_file
from scheduler.models import AuditEntry, Product
from scheduler.storage.db import Database

WITA = ZoneInfo("Asia/Makassar")


def products_csv(path: Path, n: int, *, price: int = 25000) -> Path:
    lines = ["id,umkm_id,name,description,price,image,url,tags,curation"]
    lines += [f"p{i},u1,Amplang {i},Renyah,{price + (i % 7 == 0)},,,snack|oleh-oleh,approved" for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_big_import_writes_in_batches_with_progress_and_one_audit_row(any_db: Database, tmp_path: Path) -> None:
    n = 2 * BATCH + 500
    with any_db.session() as s:
        import_file(s, "umkm", _umkm(tmp_path), tz=WITA, actor="t")
    statements: list[str] = []
    event.listen(any_db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    seen: list[tuple[int, int]] = []
    with any_db.session() as s:
        result = import_file(s, "products", products_csv(tmp_path / "p.csv", n), tz=WITA, actor="rina",
                             progress=lambda done, total: seen.append((done, total)))
    assert (result.created, result.updated, result.unchanged) == (n, 0, 0)
    inserts = [q for q in statements if q.lstrip().upper().startswith("INSERT INTO PRODUCTS")]
    assert 1 <= len(inserts) <= 10  # a few multi-row statements, not 2,500
    assert seen[0] == (0, n) and seen[-1] == (n, n) and len(seen) == 4
    with any_db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Product)) == n
        assert s.scalars(select(Product).where(Product.external_id == "p3")).one().tags == ["snack", "oleh-oleh"]
        audit = s.scalars(select(AuditEntry).where(AuditEntry.actor == "rina")).one()
        assert audit.detail["created"][:2] == ["p0", "p1"] and len(audit.detail["created"]) == n

    statements.clear()  # the same file edited: only changed rows are written, in batches
    changed: list[str] = []
    with any_db.session() as s:
        result = import_file(s, "products", products_csv(tmp_path / "p.csv", n, price=26000), tz=WITA,
                             actor="budi", on_change=lambda _s, _k, record, fields: changed.append(
                                 f"{record.external_id}:{','.join(sorted(fields))}"))
    assert (result.created, result.updated, result.unchanged) == (0, n, 0)
    assert len([q for q in statements if q.lstrip().upper().startswith("UPDATE PRODUCTS")]) <= 10
    assert changed[:2] == ["p0:price", "p1:price"] and len(changed) == n
    with any_db.read_session() as s:
        assert s.scalars(select(Product).where(Product.external_id == "p1")).one().price == 26000
        audit = s.scalars(select(AuditEntry).where(AuditEntry.actor == "budi")).one()
        assert audit.detail["updated"]["p1"] == {"before": {"price": 25000}, "after": {"price": 26000}}


def _umkm(tmp_path: Path) -> Path:
    path = tmp_path / "umkm.csv"
    path.write_text("id,name\nu1,Toko Amplang\n", encoding="utf-8")
    return path


def test_the_progress_bar_shows_on_a_terminal_only(tmp_path: Path) -> None:
    import io

    from scheduler.importer import terminal_progress

    assert terminal_progress("products", io.StringIO()) is None  # a pipe or a log: no bar

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    update = terminal_progress("products", out)
    assert update is not None
    update(0, 2000)
    update(1000, 2000)
    assert "import products" in out.getvalue() and "1000/2000" in out.getvalue()
    update(2000, 2000)


def test_the_batched_change_hook_gets_every_changed_record_once(any_db: Database, tmp_path: Path) -> None:
    with any_db.session() as s:
        import_file(s, "umkm", _umkm(tmp_path), tz=WITA, actor="t")
    calls: list[tuple[list[str], dict[str, set[str]]]] = []
    with any_db.session() as s:
        import_file(s, "products", products_csv(tmp_path / "p.csv", BATCH + 3), tz=WITA, actor="t",
                    on_changes=lambda _s, kind, ids, fields, _db_ids: calls.append((ids, fields)))
    assert [len(ids) for ids, _ in calls] == [BATCH, 3]  # one call per batch, not per row
    assert calls[0][0][:2] == ["p0", "p1"] and {"name", "external_id"} <= calls[0][1]["p0"]  # created: every field
    calls.clear()
    with any_db.session() as s:
        import_file(s, "products", products_csv(tmp_path / "p.csv", BATCH + 3, price=26000), tz=WITA, actor="t",
                    on_changes=lambda _s, kind, ids, fields, _db_ids: calls.append((ids, fields)))
    assert calls[1] == (["p1000", "p1001", "p1002"], {f"p{i}": {"price"} for i in (1000, 1001, 1002)})


def test_the_real_command_draws_a_bar_on_a_terminal_and_nothing_in_a_pipe(tmp_path: Path) -> None:
    """`promo import` with stderr on a pseudo-terminal shows the bar; piped (a log, cron), it does not."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import sys
    import termios

    from tests.integration.test_cli import UMKM, base_env, subprocess_promo

    env = base_env(tmp_path)
    (tmp_path / "umkm.csv").write_text(UMKM, encoding="utf-8")
    assert subprocess_promo(tmp_path, env, "db", "upgrade").returncode == 0
    assert subprocess_promo(tmp_path, env, "import", "umkm", "umkm.csv").returncode == 0
    products_csv(tmp_path / "p.csv", 2 * BATCH + 500)
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a terminal 80 columns wide
    proc = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "import", "products", "p.csv"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=terminal, env={"PATH": os.environ.get("PATH", ""), **env})
    shown = b""
    while True:  # read the terminal while the command runs (the terminal stays open on this side)
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            shown += os.read(main, 4096)
        elif proc.poll() is not None:
            break
    os.close(terminal)
    os.close(main)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.decode() == "products: 2500 created, 0 updated, 0 unchanged\n"
    assert "import products" in shown.decode() and "1000/2500" in shown.decode()

    products_csv(tmp_path / "p.csv", 2 * BATCH + 500, price=26000)  # 2,500 rows to update, stderr a pipe
    piped = subprocess_promo(tmp_path, env, "import", "products", "p.csv")
    assert piped.returncode == 0 and piped.stdout == "products: 0 created, 2500 updated, 0 unchanged\n"
    assert piped.stderr == ""


def test_re_imports_update_every_kind_of_field(any_db: Database, tmp_path: Path) -> None:
    """Edited rows update text, numbers, lists, yes/no, times and emptied cells alike, on both
    databases (the batched UPDATEs set only the changed columns, the import's time once)."""
    import datetime as dt

    from scheduler.models import Event, Umkm

    def run(kind: str, text: str) -> tuple[int, int, int]:
        (tmp_path / f"{kind}.csv").write_text(text, encoding="utf-8")
        with any_db.session() as s:
            r = import_file(s, kind, tmp_path / f"{kind}.csv", tz=WITA, actor="t")
        return r.created, r.updated, r.unchanged

    assert run("umkm", "id,name,city,curated\nu1,Toko,Balikpapan,ya\nu2,Dua,Samarinda,tidak\n") == (2, 0, 0)
    assert run("umkm", "id,name,city,curated\nu1,Toko Baru,,tidak\nu2,Dua,Samarinda,ya\n") == (0, 2, 0)
    head = "id,umkm_id,name,description,price,url,tags,curation,active\n"
    assert run("products", head + "p1,u1,A,Renyah,25000,https://a.id/p1,snack|kue,approved,true\n"
                                  "p2,u1,B,,1000,,,pending,true\n") == (2, 0, 0)
    assert run("products", head + "p1,u2,A,,26000,,kue,rejected,false\n"
                                  "p2,u1,B,Baru,1000,https://a.id/p2,oleh-oleh|snack,pending,true\n") == (0, 2, 0)
    head = "id,name,starts_at,ends_at,status\n"
    assert run("events", head + "e1,Pasar,2027-03-01 16:00,2027-03-05 22:00,scheduled\n") == (1, 0, 0)
    assert run("events", head + "e1,Pasar Malam,2027-03-02 17:30,,cancelled\n") == (0, 1, 0)
    with any_db.read_session() as s:
        u1, u2 = s.scalars(select(Umkm).order_by(Umkm.external_id)).all()
        assert (u1.name, u1.city, u1.curated, u2.curated) == ("Toko Baru", None, False, True)
        p1, p2 = s.scalars(select(Product).order_by(Product.external_id)).all()
        assert (p1.umkm_id, p1.description, p1.price, p1.url, p1.tags, p1.curation, p1.active) == (
            u2.id, None, 26000, None, ["kue"], "rejected", False)
        assert (p2.description, p2.url, p2.tags) == ("Baru", "https://a.id/p2", ["oleh-oleh", "snack"])
        e1 = s.scalars(select(Event)).one()
        assert (e1.name, e1.ends_at, e1.status) == ("Pasar Malam", None, "cancelled")
        assert e1.starts_at == dt.datetime(2027, 3, 2, 9, 30, tzinfo=dt.UTC)  # 17:30 WITA
        assert e1.updated_at > e1.created_at


def test_one_bad_row_late_in_a_big_file_writes_nothing(any_db: Database, tmp_path: Path) -> None:
    import pytest

    from scheduler.errors import ImportValidationError

    with any_db.session() as s:
        import_file(s, "umkm", _umkm(tmp_path), tz=WITA, actor="t")
    path = products_csv(tmp_path / "p.csv", 2 * BATCH + 500)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2400] = lines[2400].replace(",u1,", ",u9,")  # past two batches' worth of good rows
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ImportValidationError) as caught, any_db.session() as s:
        import_file(s, "products", path, tz=WITA, actor="t")
    assert [(p.line, p.column) for p in caught.value.problems] == [(2401, "umkm_id")]
    with any_db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Product)) == 0
        assert s.scalars(select(AuditEntry).where(AuditEntry.action == "import", AuditEntry.entity == "products")).all() == []
