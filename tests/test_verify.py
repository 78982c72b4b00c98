"""store/verify.py: `nanotasks verify` passes a whole file, and finds flipped bytes in rows and
in SQLite's pages, missing rows and damaged plain columns, in the time of the rows that are
there."""

import json
import sqlite3

import pytest

from nanotasks.store.reader import Store, StoreError
from nanotasks.store.verify import verify
from nanotasks.tasks.gsm8k import GSM8K
from nanotasks.tasks.smoltalk import SmolTalk
from tests.conftest import invoke, nanotasks
from tests.helpers import edit, flip, locate, split_row


def test_a_byte_flipped_inside_a_row_is_found_by_verify_and_refused_by_read(copy):
    offset, length = locate(copy, "smoltalk", "default", "train", 6)
    flip(copy, offset + length // 2)
    assert Store(copy)  # the header is whole: the cheap checks pass
    result = invoke("verify", "--db", copy)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    failed = [line for line in lines if "FAILED" in line]
    assert (
        len(failed) == 1
        and failed[0].startswith("smoltalk default/train")
        and "row 6 " in failed[0]
    )
    assert lines[-1].startswith(f"{copy}: DAMAGED (1 of ")
    task = SmolTalk("train", db=copy)
    with pytest.raises(
        StoreError,
        match=rf"{copy}: example 6 of smoltalk default/train is damaged .*"
        rf"`nanotasks verify --db {copy}`",
    ):
        task[6]
    assert [task[i] for i in range(len(task)) if i != 6]  # the other rows still read
    shown = nanotasks("show", "smoltalk", "train", "6", "--db", copy, check=False)
    assert (
        shown.returncode == 1 and "is damaged" in shown.stderr and "Traceback" not in shown.stderr
    )


def test_a_flipped_byte_in_an_sqlite_page_header_is_found_by_verify(copy):
    """Damage outside the bodies: SQLite's integrity check reports it, and reads that reach
    the page raise StoreError rather than sqlite3.DatabaseError. (A row in a middle page: the
    checks of every open read the first and last.)"""
    offset, _ = locate(copy, "gsm8k", "main", "train", 6)
    page_size = int.from_bytes(copy.read_bytes()[16:18], "big")
    flip(copy, offset // page_size * page_size)  # the b-tree page type of the page holding the row
    checks = verify(copy)
    assert not next(c for c in checks if c.name == "sqlite").ok
    assert not next(c for c in checks if c.name == "gsm8k main/train").ok
    with pytest.raises(
        StoreError, match=rf"{copy}: damaged: SQLite says: database disk image is malformed"
    ):
        GSM8K("main", "train", db=copy)[6]


def test_verify_passes_a_whole_file(sample_db):
    result = invoke("verify", "--db", sample_db)
    names = [line.split()[0] for line in result.stdout.splitlines()[2:-1]]
    assert (
        names[:4] == ["header", "schema", "sqlite", "layout"] and "words_alpha.txt" in result.stdout
    )
    assert (
        sum(
            line.startswith(("arc ", "gsm8k ", "mmlu ", "smoltalk ", "humaneval "))
            for line in result.stdout.splitlines()
        )
        == 17
    )
    assert result.stdout.splitlines()[-1] == f"{sample_db}: whole (full check)"
    report = json.loads(invoke("verify", "--quick", "--json", "--db", sample_db).stdout)
    assert report["ok"] and report["quick"] and all(check["ok"] for check in report["checks"])


def test_verify_quick_finds_a_split_whose_rows_are_missing(copy):
    """The quick check: each split's first and last row. The last row of a split in the
    middle is gone; the splits table still claims it."""
    db = sqlite3.connect(copy)
    (last,) = db.execute(
        "SELECT first_example + rows - 1 FROM splits WHERE task = 'gsm8k' AND "
        "subset = 'main' AND split = 'test'"
    ).fetchone()
    db.execute("DELETE FROM example_data WHERE id = ?", (last,))
    db.commit()
    db.close()
    report = json.loads(invoke("verify", "--quick", "--json", "--db", copy).stdout)
    failed = [
        {k: v for k, v in check.items() if k not in ("ok", "detail")}
        for check in report["checks"]
        if not check["ok"]
    ]
    assert not report["ok"] and failed == [{"task": "gsm8k", "subset": "main", "split": "test"}], (
        failed
    )


def test_full_verify_takes_the_time_of_the_rows_that_are_there(copy):
    """example_data ends with a lone row at a huge rowid, and the last split claims every rowid
    up to it: sane at open, and verify's one pass over the rows finds the gap at once."""
    split_id, first, rows = split_row(copy, "smoltalk", "default", "train")
    far = 1 << 60
    edit(
        copy,
        f"INSERT INTO example_data SELECT {far}, source_row, messages, characters, answer, "
        f"subject_id, prompt_hash, body FROM example_data WHERE id = {first}",
        f"UPDATE splits SET rows = {far - first + 1} WHERE id = {split_id}",
    )
    result = nanotasks("verify", "--db", copy, check=False, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"position {rows} holds rowid {far}" in result.stdout


@pytest.mark.parametrize(
    "change",
    [
        "answer = 'Z'",
        "source_row = source_row + 1",
        "messages = 9",
        "subject_id = NULL",
        "prompt_hash = 7",
        "characters = 1",
    ],
)
def test_full_verify_covers_the_plain_columns(copy, change):
    """A changed answer (or any column SQL users query) fails verify like a changed conversation."""
    _, first, _ = split_row(copy, "mmlu", "all", "test")
    edit(copy, f"UPDATE example_data SET {change} WHERE id = {first + 1}")
    failed = [c for c in verify(copy) if not c.ok]
    assert [c.name for c in failed] == ["mmlu all/test"] and "content sha256" in failed[0].detail
