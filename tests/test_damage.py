"""A damaged file is refused or reported, never served: truncated copies at open, flipped
bytes by `nanotasks verify` and by the read of the damaged row."""

import json
import shutil
import sqlite3

import pytest

from nanotasks.store.reader import Store, StoreError
from nanotasks.store.schema import SCHEMA_VERSION
from nanotasks.store.verify import verify
from nanotasks.tasks.arc import ARC
from nanotasks.tasks.common import TaskMixture
from nanotasks.tasks.gsm8k import GSM8K
from nanotasks.tasks.smoltalk import SmolTalk
from nanotasks.tasks.spellingbee import SpellingBee
from tests.conftest import SAMPLE, invoke, nanotasks


@pytest.fixture
def copy(sample_db, tmp_path):
    """A writable copy of the sample file."""
    path = tmp_path / "copy.db"
    shutil.copyfile(sample_db, path)
    return path


def open_by_every_door(path):
    """Each way a user opens the file; each must raise StoreError before serving anything."""
    for open_it in (lambda: Store(path), lambda: ARC("ARC-Easy", "train", db=path),
                    lambda: SpellingBee(db=path), lambda: TaskMixture([GSM8K("main", "test", db=path)])):
        with pytest.raises(StoreError) as error:
            open_it()
        yield str(error.value)


@pytest.mark.parametrize("keep", [0, 50, 100, 4096, 40_000, -1], ids=lambda k: f"cut at {k}")
def test_a_truncated_file_is_refused_at_open(keep, copy):
    size = copy.stat().st_size
    with open(copy, "r+b") as f:
        f.truncate(keep % size)
    # cut short, or (nothing at all) empty: copy it again
    expected = "It is empty: if it was copied, copy it again." if keep == 0 else "cut short while copying: copy it again"
    for message in open_by_every_door(copy):
        assert message.startswith(f"{copy}: ") and expected in message
        assert keep == 0 or f"`nanotasks verify --db {copy}`" in message
    for command in (["info"], ["show", "arc", "train", "0", "--subset", "ARC-Easy"], ["verify", "--quick"]):
        result = invoke(*command, "--db", copy)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert expected in result.stdout + result.stderr


def test_a_file_of_another_format_version_is_refused_at_open(copy):
    db = sqlite3.connect(copy)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    for message in open_by_every_door(copy):
        assert f"written in nanotasks file format {SCHEMA_VERSION + 1}" in message
        assert f"Recompile it with this version: `nanotasks compile --db {copy}`" in message


@pytest.mark.parametrize("kind", ["text", "sqlite"])
def test_a_file_that_is_not_a_nanotasks_file_is_refused_at_open(kind, tmp_path):
    path = tmp_path / "other.db"
    if kind == "text":
        path.write_text("id,question\n" * 20)
    else:
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    what = "not a nanotasks file (not SQLite)" if kind == "text" else "an SQLite file, but not one nanotasks wrote"
    for message in open_by_every_door(path):
        assert message.startswith(f"{path}: {what}. Check --db (or $NANOTASKS_DB)")


def test_a_split_or_file_not_compiled_is_named_at_construction(tmp_path):
    db = tmp_path / "gsm8k.db"
    nanotasks("compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", db)
    with pytest.raises(StoreError, match=rf"{db} has no arc ARC-Easy/train\. Add it with "
                                         rf"`nanotasks compile --only arc --db {db}`"):
        ARC("ARC-Easy", "train", db=db)
    with pytest.raises(StoreError, match=rf"{db} has no words_alpha.txt, the word list"):
        SpellingBee(db=db)


def flip(path, offset, bits=0xFF):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ bits]))


def locate(path, task, subset, split, position):
    """The offset of a row's compressed body in the file's bytes."""
    db = sqlite3.connect(path)
    body, = db.execute("SELECT body FROM examples WHERE task = ? AND subset = ? AND split = ? AND "
                       "position = ?", (task, subset, split, position)).fetchone()
    db.close()
    data = path.read_bytes()
    assert data.count(body) == 1
    return data.index(body), len(body)


def test_a_byte_flipped_inside_a_row_is_found_by_verify_and_refused_by_read(copy):
    offset, length = locate(copy, "smoltalk", "default", "train", 6)
    flip(copy, offset + length // 2)
    assert Store(copy)  # the header is whole: the cheap checks pass
    result = invoke("verify", "--db", copy)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    failed = [line for line in lines if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("smoltalk default/train") and "row 6 " in failed[0]
    assert lines[-1].startswith(f"{copy}: DAMAGED (1 of ")
    task = SmolTalk("train", db=copy)
    with pytest.raises(StoreError, match=rf"{copy}: example 6 of smoltalk default/train is damaged .*"
                                         rf"`nanotasks verify --db {copy}`"):
        task[6]
    assert [task[i] for i in range(len(task)) if i != 6]  # the other rows still read
    shown = nanotasks("show", "smoltalk", "train", "6", "--db", copy, check=False)
    assert shown.returncode == 1 and "is damaged" in shown.stderr and "Traceback" not in shown.stderr


def test_no_flipped_byte_of_a_row_is_ever_served_as_different_content(sample_db, tmp_path):
    """Every byte of a row's frame inverted in turn (the frame header, the content size, the
    blocks, the checksum), and every single bit of the header's first 8 bytes: the read
    raises StoreError or, where zstd does not use the bit, returns the very same
    conversation; verify fails exactly when the read does."""
    offset, length = locate(sample_db, "gsm8k", "main", "train", 2)
    original = GSM8K("main", "train", db=sample_db)[2]
    path = tmp_path / "flipped.db"
    outcomes = {"refused": 0, "same": 0}
    flips = [(i, 0xFF) for i in range(length)] + [(i, 1 << bit) for i in range(8) for bit in range(8)]
    for i, bits in flips:
        shutil.copyfile(sample_db, path)
        flip(path, offset + i, bits)
        try:
            conversation = GSM8K("main", "train", db=path)[2]
        except StoreError as error:
            assert "example 2 of gsm8k main/train is damaged" in str(error)
            outcomes["refused"] += 1
            whole = False
        else:
            assert conversation == original, f"flipping {bits:#x} at byte {i} changed the content"
            outcomes["same"] += 1
            whole = True
        assert all(check.ok for check in verify(path)) == whole, (i, bits)
    assert outcomes["refused"] >= len(flips) - 20, outcomes


def test_a_flipped_byte_in_an_sqlite_page_header_is_found_by_verify(copy):
    """Damage outside the bodies: SQLite's integrity check reports it, and reads that reach
    the page raise StoreError rather than sqlite3.DatabaseError."""
    offset, _ = locate(copy, "smoltalk", "default", "train", 6)
    page_size = 4096
    flip(copy, offset // page_size * page_size)  # the b-tree page type of the page holding the row
    checks = verify(copy)
    assert not next(c for c in checks if c.name == "sqlite").ok
    assert not next(c for c in checks if c.name == "smoltalk default/train").ok
    with pytest.raises(StoreError, match=rf"{copy}: damaged: SQLite says: database disk image is malformed"):
        SmolTalk("train", db=copy)[6]


def test_verify_passes_a_whole_file(sample_db):
    result = invoke("verify", "--db", sample_db)
    names = [line.split()[0] for line in result.stdout.splitlines()[2:-1]]
    assert names[:4] == ["header", "schema", "sqlite", "layout"] and "words_alpha.txt" in result.stdout
    assert sum(line.startswith(("arc ", "gsm8k ", "mmlu ", "smoltalk ", "humaneval ")) for line in
               result.stdout.splitlines()) == 17
    assert result.stdout.splitlines()[-1] == f"{sample_db}: whole (full check)"
    report = json.loads(invoke("verify", "--quick", "--json", "--db", sample_db).stdout)
    assert report["ok"] and report["quick"] and all(check["ok"] for check in report["checks"])


def test_verify_quick_finds_a_split_whose_rows_are_missing(copy):
    """The quick check: each split's first and last row. The last row of a split in the
    middle is gone; the splits table still claims it."""
    db = sqlite3.connect(copy)
    last, = db.execute("SELECT first_example + rows - 1 FROM splits WHERE task = 'gsm8k' AND "
                       "subset = 'main' AND split = 'test'").fetchone()
    db.execute("DELETE FROM example_data WHERE id = ?", (last,))
    db.commit()
    db.close()
    report = json.loads(invoke("verify", "--quick", "--json", "--db", copy).stdout)
    failed = [{k: v for k, v in check.items() if k not in ("ok", "detail")} for check in report["checks"] if not check["ok"]]
    assert not report["ok"] and failed == [{"task": "gsm8k", "subset": "main", "split": "test"}], failed
def test_a_split_claiming_rows_past_the_end_of_the_file_is_refused_at_open(copy):
    """The last row of the file is gone: the last split claims a row that is not there."""
    db = sqlite3.connect(copy)
    db.execute("DELETE FROM example_data WHERE id = (SELECT max(id) FROM example_data)")
    db.commit()
    db.close()
    for message in open_by_every_door(copy):
        assert message.startswith(f"{copy}: damaged: row 17 of its splits table is not sane (its rows end at ")
    report = json.loads(invoke("verify", "--quick", "--json", "--db", copy).stdout)
    assert [(c["check"], c["ok"]) for c in report["checks"]] == [("header", True), ("schema", False)]


def test_compile_will_not_start_from_a_damaged_previous_file(copy):
    """compile keeps the splits it is not asked to rebuild from the file it replaces: from a
    cut-short one it stops, says how to start afresh, and leaves the file for inspection."""
    with open(copy, "r+b") as f:
        f.truncate(40_000)
    before = copy.read_bytes()
    result = nanotasks("compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", copy, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"Error: nothing was written: {copy}: damaged: ") and \
        message.endswith("move it away to compile afresh)")
    assert copy.read_bytes() == before and [p.name for p in copy.parent.iterdir()] == [copy.name]


def replace_body(path, task, subset, split, position, body):
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE example_data SET body = ? WHERE id = (SELECT id FROM examples WHERE task = ? AND "
                   "subset = ? AND split = ? AND position = ?)", (body, task, subset, split, position))
    db.close()


@pytest.mark.parametrize("size_bytes", [4, 8])
def test_a_frame_header_claiming_a_huge_size_is_refused_before_allocating_it(copy, size_bytes):
    # single segment, the content size in `size_bytes` bytes, then a block that is never reached
    flag = {4: 2, 8: 3}[size_bytes]
    header = bytes([flag << 6 | 0x20]) + (2**31 + 1).to_bytes(size_bytes, "little")
    replace_body(copy, "gsm8k", "main", "train", 2, header + b"\x01\x00\x00x")
    with pytest.raises(StoreError, match=f"example 2 of gsm8k main/train is damaged "
                                         rf"\(its frame header claims {2**31 + 1} bytes\)"):
        GSM8K("main", "train", db=copy)[2]
