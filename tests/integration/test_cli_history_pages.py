"""`promo history` at millions of rows: a table shows one page (newest first) and how to see
more, `--after` pages without overlap or gap, csv/json/jsonl stream every row in flat memory;
`promo history archive` moves old rows into a gzip CSV."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import tracemalloc
from pathlib import Path

from sqlalchemy import func, insert, select

from scheduler import views
from scheduler.config import load_settings
from scheduler.models import Channel, HistoryEntry, Post
from scheduler.storage.db import Database
from tests.integration import test_cli
from tests.integration.test_history_scale import seed

promo = test_cli.promo  # the fixture: run `promo ARGS` in-process in tmp_path


def db() -> Database:
    return Database(load_settings().database_url)


def ids_in_json(out: str) -> list[int]:
    return [r["id"] for r in json.loads(out)]


def all_ids(*, all: bool = False) -> list[int]:
    with db().read_session() as s:
        q = select(HistoryEntry.id).order_by(HistoryEntry.id)
        if not all:
            q = q.where(HistoryEntry.action == "attempt")
        return list(s.scalars(q))


def test_a_table_shows_the_newest_50_and_says_how_to_see_more(promo) -> None:
    seed(db(), 120)
    attempts = all_ids()
    code, out, _ = promo("history")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("STARTED_AT") and len(lines) == 1 + 50 + 1
    newest = attempts[::-1][:50]
    hint = lines[-1]
    assert hint == f"50 shown, more there: `promo history --after {newest[-1]}` for older rows, `--format csv` for all"
    # newest first: the first row is the latest attempt
    assert lines[1].startswith("2027-01-01T") and lines[1] > lines[50]


def test_after_pages_through_every_row_once_newest_first(promo) -> None:
    seed(db(), 95)
    pages: list[list[int]] = []
    args = ["history", "--all", "--limit", "20", "--format", "json"]
    after: list[str] = []
    while True:
        code, out, err = promo(*args, *after)
        assert code == 0
        pages.append(ids_in_json(out))
        m = re.search(r"--after (\d+)`", err)
        if not m:
            assert err == ""
            break
        assert "`promo history --limit 20 --all --format json --after " in err and "without --limit and --after for all" in err
        after = ["--after", m.group(1)]
    assert [len(p) for p in pages] == [20, 20, 20, 20, 15]
    flat = [i for p in pages for i in p]
    assert flat == sorted(all_ids(all=True), reverse=True)  # no overlap, no gap


def test_json_csv_and_jsonl_stream_every_row_oldest_first(promo) -> None:
    seed(db(), 4500)  # more than one batch of iter_history (2,000)
    attempts = all_ids()
    assert len(attempts) == 3000
    code, out, err = promo("history", "--format", "json")
    assert code == 0 and err == ""
    rows = json.loads(out)
    assert [r["id"] for r in rows] == attempts and set(rows[0]) == set(views.HISTORY_FIELDS)
    code, out, _ = promo("history", "--format", "jsonl")
    assert [json.loads(line)["id"] for line in out.splitlines()] == attempts
    code, out, _ = promo("history", "--format", "csv")
    assert out.startswith("\ufeff")
    assert [int(r["id"]) for r in csv.DictReader(io.StringIO(out[1:]))] == attempts


def test_an_empty_history_is_an_empty_json_array(promo) -> None:
    assert json.loads(promo("history", "--format", "json")[1]) == []
    assert promo("history")[1].strip().endswith("(none)")


class LineCounter(io.StringIO):
    """A stdout that counts lines and keeps none (so only the command's own memory is measured)."""

    lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)


def command_peak(*argv: str) -> tuple[int, int]:
    """`promo ARGV` run in this process: the lines it printed (kept nowhere) and the peak of its
    Python allocations (tracemalloc)."""
    import sys

    from scheduler import cli

    out, before = LineCounter(), sys.stdout
    sys.stdout = out
    try:
        tracemalloc.start()
        code = cli.main(list(argv))
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        sys.stdout = before
    assert code == 0
    return out.lines, top


def test_streamed_export_memory_stays_flat(promo) -> None:  # type: ignore[no-untyped-def]
    seed(db(), 12000)  # one a minute from 2027-01-01 08:00 local: ~2,400 by the end of 2027-01-02
    promo("history", "--all", "--format", "jsonl")  # warm up (imports, compiled statements)

    def peak(*args: str) -> tuple[int, int]:
        return command_peak("history", "--all", "--format", "jsonl", *args)

    def held() -> int:
        """The peak of holding every row at once (what the command did before)."""
        with db().read_session() as session:
            tracemalloc.start()
            try:
                rows = list(views.iter_history(session, views.HistoryFilter(all=True), load_settings().timezone))
                _, top = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert len(rows) == 12000
        return top

    (few, small), (many, big) = peak("--until", "2027-01-02"), peak()
    assert many == 12000 and many >= 4 * few
    # A stream's peak is about one batch of rows (measured: 3.7-7.1 MB for 2,400 rows, 6.0 MB for
    # 12,000), far under holding all 12,000 (15 MB).
    assert big < 0.6 * held(), (small, big)


def test_limit_must_be_positive(promo) -> None:
    code, _, err = promo("history", "--limit", "0")
    assert code == 2 and "--limit 0: must be at least 1" in err


def test_archive_moves_old_rows_into_a_new_gzip_file(promo, tmp_path: Path) -> None:
    seed(db(), 3000)  # one a minute from 2027-01-01 00:00 UTC = 08:00 in Makassar: up to 2027-01-03 02:00
    with db().read_session() as s:
        old = s.scalar(select(func.count()).select_from(HistoryEntry).where(
            HistoryEntry.started_at < views.day_bound("2027-01-02", load_settings().timezone, end=False)))
    code, out, err = promo("history", "archive", "--before", "2027-01-02", "old.csv.gz")
    assert code == 0, err
    assert out.strip() == (f"archived {old:,} history row(s) from before 2027-01-02 into old.csv.gz; deleted {old:,} "
                           "from the database (rows of posts still waiting, publishing or in review stay)")
    with gzip.open(tmp_path / "old.csv.gz", "rt", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == old
    assert len(all_ids(all=True)) == 3000 - old
    # an existing file is never overwritten
    before = (tmp_path / "old.csv.gz").read_bytes()
    code, _, err = promo("history", "archive", "--before", "2027-01-03", "old.csv.gz")
    assert code == 2 and "old.csv.gz: already exists" in err
    assert (tmp_path / "old.csv.gz").read_bytes() == before and len(all_ids(all=True)) == 3000 - old


def test_archive_refuses_a_bad_date_or_name(promo, tmp_path: Path) -> None:
    code, _, err = promo("history", "archive", "--before", "2027-13-01", "a.csv.gz")
    assert code == 2 and "--before '2027-13-01'" in err and not (tmp_path / "a.csv.gz").exists()
    code, _, err = promo("history", "archive", "--before", "2027-01-01", "a.csv")
    assert code == 2 and "gzip CSV" in err


def test_archive_refuses_while_another_process_archives(promo, tmp_path: Path) -> None:
    """The daily job (or a colleague's `promo history archive`) holds the archiving turn: a second
    archive at the same time would copy the same rows into its own file, so it refuses, says why
    and leaves the database and the folder as they were."""
    from jobs.history_archive import archive_turn

    seed(db(), 300)
    # the service started from another folder (its PROMO_HISTORY_ARCHIVE_DIR elsewhere): same database, same turn
    with archive_turn(db(), tmp_path / "the-service-folder" / "history-archive") as mine:
        assert mine
        code, out, err = promo("history", "archive", "--before", "2027-01-02", "old.csv.gz")
    assert code == 1 and out == ""
    assert "another process is archiving history right now" in err and "run this again" in err
    assert not (tmp_path / "old.csv.gz").exists() and len(all_ids(all=True)) == 300
    code, _, err = promo("history", "archive", "--before", "2027-01-02", "old.csv.gz")  # the turn is free again
    assert code == 0, err
    assert len(all_ids(all=True)) == 0


def test_post_list_streams_every_post_in_flat_memory(promo) -> None:  # type: ignore[no-untyped-def]
    """`promo post list --format json|csv` of every post writes rows as it reads them: its peak is
    about one batch, far under holding the whole list (what it did before)."""
    from scheduler.storage import post_read

    promo("history")  # the database and its channels
    with db().session() as s:
        channel = s.scalars(select(Channel)).first() or Channel(name="outbox", platform="outbox", source="env",
                                                               options={})
        s.add(channel)
        s.flush()
        s.execute(insert(Post), [dict(channel_id=channel.id, kind="free_text", text=f"Promo UMKM {i} " + "x" * 200,
                                      status="scheduled", idempotency_key=f"k{i}", created_by="t") for i in range(8000)])

    def peak(*args: str) -> tuple[int, int]:
        return command_peak("post", "list", *args)

    peak("--format", "csv", "--limit", "10")  # warm up (imports, compiled statements)
    with db().read_session() as session:
        tracemalloc.start()
        try:
            rows = post_read.post_rows(session, load_settings().timezone)
            _, held = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(rows) == 8000
    (csv_lines, csv_peak), (json_lines, json_peak) = peak("--format", "csv"), peak("--format", "json")
    assert csv_lines == 8001 and json_lines > 8000 * 18  # every post: a header and a row each; 18 fields each
    assert csv_peak < 0.4 * held and json_peak < 0.4 * held, (csv_peak, json_peak, held)
