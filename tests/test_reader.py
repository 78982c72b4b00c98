"""store/reader.py: a file that is truncated, of another version, not nanotasks', crafted or
damaged is refused at open or at the read of the damaged row, never served, with one line of
error everywhere. Readers never write: no side files, a read-only mount is enough, and many
processes reading at once each get exactly what one process reading alone gets."""

import json
import multiprocessing
import pickle
import random
import shutil
import sqlite3
import stat
import subprocess
import sys

import pytest
import zstandard

from nanotasks.store import reader as store_reader
from nanotasks.store.reader import FileDamaged, FileReplaced, Store, StoreError, StoreNotFound
from nanotasks.store.schema import SCHEMA_VERSION
from nanotasks.store.verify import verify
from nanotasks.tasks.arc import ARC
from nanotasks.tasks.common import TaskMixture
from nanotasks.tasks.gsm8k import GSM8K
from nanotasks.tasks.humaneval import HumanEval
from nanotasks.tasks.mmlu import MMLU
from nanotasks.tasks.smoltalk import SmolTalk
from nanotasks.tasks.spellingbee import SimpleSpelling, SpellingBee
from tests.conftest import REPO, SAMPLE, invoke, nanotasks, nanotasks_each
from tests.helpers import ENDLESS, NOT_OURS, claiming, edit, flip, locate, split_row, with_body

PROCESSES = 8  # more than the cores, so that reads interleave
READS = 300


def tasks(db):
    return [
        ARC("ARC-Easy", "train", db=db),
        ARC("ARC-Challenge", "test", db=db),
        MMLU("all", "test", db=db),
        GSM8K("main", "train", db=db),
        SmolTalk("train", db=db),
        HumanEval(db=db),
        SpellingBee(size=500, db=db),
        SimpleSpelling(size=500, db=db),
        TaskMixture(
            [
                ARC("ARC-Easy", "test", db=db),
                GSM8K("socratic", "test", db=db),
                MMLU("all", "dev", db=db),
            ]
        ),
    ]


def random_reads(db, seed, barrier=None):
    """READS random (task, index) examples: what one reader process returns."""
    all_tasks = tasks(db)
    if barrier is not None:
        barrier.wait()  # every process reads at the same time
    rng = random.Random(seed)
    reads = []
    for _ in range(READS):
        t = rng.randrange(len(all_tasks))
        i = rng.randrange(len(all_tasks[t]))
        reads.append((t, i, all_tasks[t][i]))
    return reads


def reader(db, seed, barrier, results):
    results.put((seed, random_reads(db, seed, barrier)))


def concurrent_reads(db, method):
    """{seed: random_reads(db, seed)} from PROCESSES processes started with `method`, all
    reading at once."""
    context = multiprocessing.get_context(method)
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    processes = [
        context.Process(target=reader, args=(db, seed, barrier, results))
        for seed in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    concurrent = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return concurrent


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_eight_processes_reading_at_once_get_the_serial_results(method, sample_db):
    # Started from a fresh interpreter: a pytest-xdist worker runs threads, and forking a
    # multi-threaded process can deadlock the child (Python 3.12+ warns of it).
    script = (
        "import pickle, sys; from tests.test_reader import concurrent_reads; "
        f"sys.stdout.buffer.write(pickle.dumps(concurrent_reads({str(sample_db)!r}, {method!r})))"
    )
    started = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=REPO)
    assert started.returncode == 0, started.stderr.decode()
    assert pickle.loads(started.stdout) == {
        seed: random_reads(sample_db, seed) for seed in range(PROCESSES)
    }


def read_everything(db):
    """Every way of reading the file: the Task API and each read-only CLI command."""
    for task in tasks(db):
        [task[i] for i in range(len(task))]
    for command in (
        ["info"],
        ["info", "--json"],
        ["show", "gsm8k", "test", "1", "--subset", "main"],
        ["verify"],
        ["verify", "--quick"],
    ):
        nanotasks(*command, "--db", db)


def test_reading_leaves_no_side_files_and_changes_nothing(sample_db, tmp_path):
    db = tmp_path / "tasks.db"
    shutil.copyfile(sample_db, db)
    before = db.stat()
    read_everything(db)
    assert [p.name for p in tmp_path.iterdir()] == ["tasks.db"]  # no -journal, -wal, -shm
    after = db.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert db.read_bytes() == sample_db.read_bytes()


def test_reading_from_a_read_only_file_in_a_read_only_directory(sample_db, tmp_path):
    """Modes 0444 and 0555 (root ignores them: the read-only mount below is the real test)."""
    directory = tmp_path / "ro"
    directory.mkdir()
    db = directory / "tasks.db"
    shutil.copyfile(sample_db, db)
    db.chmod(0o444)
    directory.chmod(0o555)
    try:
        read_everything(db)
        assert [p.name for p in directory.iterdir()] == ["tasks.db"]
        assert stat.S_IMODE(db.stat().st_mode) == 0o444
    finally:
        directory.chmod(0o755)


@pytest.fixture
def read_only_mount(sample_db, tmp_path):
    """A directory holding the file, bind-mounted read-only: needs root, skipped elsewhere."""
    source, mountpoint = tmp_path / "source", tmp_path / "mnt"
    source.mkdir()
    mountpoint.mkdir()
    shutil.copyfile(sample_db, source / "tasks.db")
    bind = subprocess.run(["mount", "--bind", source, mountpoint], capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", mountpoint], check=True)
        yield mountpoint
    finally:
        # lazily: the tests' Stores hold the file open until the cycle collector frees them
        subprocess.run(["umount", "--lazy", mountpoint], check=True)


def test_reading_from_a_read_only_mount(read_only_mount, sample_db):
    db = read_only_mount / "tasks.db"
    with pytest.raises(OSError, match="Read-only file system"):
        (read_only_mount / "probe").touch()
    read_everything(db)
    assert random_reads(db, 7) == random_reads(sample_db, 7)
    assert [p.name for p in read_only_mount.iterdir()] == ["tasks.db"]


def test_example_lookup_is_one_primary_key_search(sample_db):
    store = Store(sample_db)
    statements = []
    store.connection.set_trace_callback(statements.append)
    split = store.split("mmlu", "all", "test")
    store.read(split, 7)
    store.connection.set_trace_callback(None)
    assert len(statements) == 2
    plans = [
        [row[3] for row in store.connection.execute(f"EXPLAIN QUERY PLAN {sql}")]
        for sql in statements
    ]
    assert plans[0] == [
        "SEARCH splits USING INDEX sqlite_autoindex_splits_1 (task=? AND subset=? AND split=?)"
    ]
    assert plans[1] == ["SEARCH example_data USING INTEGER PRIMARY KEY (rowid=?)"]


def test_examples_view_finds_a_split_by_rowid_range(sample_db):
    with sqlite3.connect(sample_db) as connection:
        plan = [
            row[3]
            for row in connection.execute(
                "EXPLAIN QUERY PLAN SELECT body FROM examples "
                "WHERE task = ? AND subset = ? AND split = ? AND position = ?",
                ("gsm8k", "main", "test", 3),
            )
        ]
    assert "SEARCH example_data USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in plan
    assert not [step for step in plan if step.startswith("SCAN")]


def open_by_every_door(path):
    """Each way a user opens the file; each must raise StoreError before serving anything."""
    for open_it in (
        lambda: Store(path),
        lambda: ARC("ARC-Easy", "train", db=path),
        lambda: SpellingBee(db=path),
        lambda: TaskMixture([GSM8K("main", "test", db=path)]),
    ):
        with pytest.raises(StoreError) as error:
            open_it()
        yield str(error.value)


@pytest.mark.parametrize("keep", [0, 50, 100, 4096, 40_000, -1], ids=lambda k: f"cut at {k}")
def test_a_truncated_file_is_refused_at_open(keep, copy):
    size = copy.stat().st_size
    with open(copy, "r+b") as f:
        f.truncate(keep % size)
    # cut short, or (nothing at all) empty: copy it again
    expected = (
        "It is empty: if it was copied, copy it again."
        if keep == 0
        else "cut short while copying: copy it again"
    )
    for message in open_by_every_door(copy):
        assert message.startswith(f"{copy}: ") and expected in message
        assert keep == 0 or f"`nanotasks verify --db {copy}`" in message
    for command in (
        ["info"],
        ["show", "arc", "train", "0", "--subset", "ARC-Easy"],
        ["verify", "--quick"],
    ):
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
    what = (
        "not a nanotasks file (not SQLite)"
        if kind == "text"
        else "an SQLite file, but not one nanotasks wrote"
    )
    for message in open_by_every_door(path):
        assert message.startswith(f"{path}: {what}. Check --db (or $NANOTASKS_DB)")


def test_a_missing_file_is_named_with_the_argument_a_python_caller_gives(tmp_path):
    with pytest.raises(StoreNotFound, match=r"point --db \(db= in Python\) or \$NANOTASKS_DB"):
        GSM8K("main", "test", db=tmp_path / "absent.db")


def test_every_connection_bounds_the_values_a_query_builds(sample_db):
    connection = store_reader.connect(sample_db)
    with pytest.raises(sqlite3.DataError, match="string or blob too big"):
        connection.execute("SELECT zeroblob(?)", (store_reader.MAX_VALUE_BYTES + 1,))
    limit = Store(sample_db).connection.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
    assert limit == store_reader.MAX_VALUE_BYTES


def test_a_split_or_file_not_compiled_is_named_at_construction(tmp_path):
    db = tmp_path / "gsm8k.db"
    nanotasks("compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", db)
    with pytest.raises(
        StoreError,
        match=rf"{db} has no arc ARC-Easy/train\. Add it with "
        rf"`nanotasks compile --only arc --db {db}`",
    ):
        ARC("ARC-Easy", "train", db=db)
    with pytest.raises(StoreError, match=rf"{db} has no words_alpha.txt, the word list"):
        SpellingBee(db=db)


def test_no_flipped_byte_of_a_row_is_ever_served_as_different_content(sample_db, tmp_path):
    """Every byte of a row's frame inverted in turn (the frame header, the content size, the
    blocks, the checksum), and every single bit of the header's first 8 bytes: the read
    raises StoreError or, where zstd does not use the bit, returns the very same
    conversation; verify fails exactly when the read does."""
    offset, length = locate(sample_db, "gsm8k", "main", "train", 2)
    original = GSM8K("main", "train", db=sample_db)[2]
    path = tmp_path / "flipped.db"
    outcomes = {"refused": 0, "same": 0}
    flips = [(i, 0xFF) for i in range(length)] + [
        (i, 1 << bit) for i in range(8) for bit in range(8)
    ]
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


def db_row(path, query):
    with sqlite3.connect(path) as db:
        return db.execute(query).fetchone()


def test_a_split_claiming_rows_past_the_end_of_the_file_is_refused_at_open(copy):
    """The last row of the file is gone: the last split claims a row that is not there."""
    db = sqlite3.connect(copy)
    db.execute("DELETE FROM example_data WHERE id = (SELECT max(id) FROM example_data)")
    db.commit()
    db.close()
    (last,) = db_row(copy, "SELECT max(id) FROM splits")
    for message in open_by_every_door(copy):
        assert message.startswith(
            f"{copy}: damaged: row {last} of its splits table is not sane (its rows end at "
        )
    report = json.loads(invoke("verify", "--quick", "--json", "--db", copy).stdout)
    assert [(c["check"], c["ok"]) for c in report["checks"]] == [
        ("header", True),
        ("schema", False),
    ]


def replace_body(path, task, subset, split, position, body):
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "UPDATE example_data SET body = ? WHERE id = (SELECT id FROM examples "
            "WHERE task = ? AND subset = ? AND split = ? AND position = ?)",
            (body, task, subset, split, position),
        )
    db.close()


@pytest.mark.parametrize("size_bytes", [4, 8])
def test_a_frame_header_claiming_a_huge_size_is_refused_before_allocating_it(copy, size_bytes):
    # single segment, the content size in `size_bytes` bytes, then a block that is never reached
    flag = {4: 2, 8: 3}[size_bytes]
    header = bytes([flag << 6 | 0x20]) + (2**31 + 1).to_bytes(size_bytes, "little")
    replace_body(copy, "gsm8k", "main", "train", 2, header + b"\x01\x00\x00x")
    with pytest.raises(
        StoreError,
        match=f"example 2 of gsm8k main/train is damaged "
        rf"\(its frame header claims {2**31 + 1} bytes\)",
    ):
        GSM8K("main", "train", db=copy)[2]


def refused_everywhere(path, expected):
    """Every door refuses the file with one line containing `expected`, and nothing hangs: the
    library at construction, and each command with no traceback (a hang fails at the timeout)."""
    for open_it in (
        lambda: Store(path),
        lambda: ARC("ARC-Easy", "train", db=path),
        lambda: GSM8K("main", "test", db=path),
    ):
        with pytest.raises(StoreError, match=expected):
            open_it()
    commands = (
        ["info"],
        ["show", "gsm8k", "test", "6", "--subset", "main"],
        ["verify", "--quick"],
        ["verify"],
        ["sql", "SELECT count(*) FROM examples"],
        ["overlap"],
        ["export", "gsm8k", "test", "--subset", "main"],
    )
    for command, result in zip(
        commands, nanotasks_each(*[[*c, "--db", path] for c in commands], timeout=120), strict=True
    ):
        assert result.returncode == 1, (command, result.stdout)
        assert "Traceback" not in result.stderr, (command, result.stderr)
        assert expected in result.stdout + result.stderr, (command, result.stdout, result.stderr)
        if command[0] != "verify":
            assert len(result.stderr.strip().splitlines()) == 1, (command, result.stderr)


@pytest.mark.parametrize(
    "statements",
    [
        ["DROP VIEW examples", f"CREATE VIEW examples AS {ENDLESS}"],
        [
            "ALTER TABLE splits RENAME TO real_splits",
            f"CREATE VIEW splits AS SELECT real_splits.* FROM real_splits, ({ENDLESS})",
        ],
        [
            "ALTER TABLE example_data RENAME TO real_data",
            "CREATE VIEW example_data AS SELECT id, source_row, messages, characters, answer, "
            "subject_id, prompt_hash, randomblob(100000000) AS body FROM real_data",
        ],
        # ARC's rows shown as GSM8K's: every check of the rows themselves would pass
        [
            "DROP VIEW examples",
            "CREATE VIEW examples AS SELECT 'gsm8k' AS task, 'main' AS subset, "
            "'test' AS split, 0 AS position, source_row, messages, characters, answer, "
            "NULL AS subject, prompt_hash, body, id FROM example_data",
        ],
        ["CREATE TRIGGER t AFTER INSERT ON meta BEGIN SELECT 1; END"],
        ["CREATE INDEX i ON example_data (answer)"],
    ],
    ids=[
        "endless examples view",
        "endless splits view",
        "randomblob example_data",
        "relabelling view",
        "a trigger",
        "an index",
    ],
)
def test_a_crafted_schema_is_refused_before_any_of_it_runs(copy, statements):
    edit(copy, *statements)
    refused_everywhere(copy, NOT_OURS)
    report = verify(copy)
    assert [(c.name, c.ok) for c in report] == [("header", True), ("schema", False)]


def test_invalid_utf8_in_the_schema_is_refused(copy):
    data = bytearray(copy.read_bytes())
    at = data.index(b"module name in tasks/")
    data[at] = 0xFF
    copy.write_bytes(data)
    refused_everywhere(copy, NOT_OURS)


def test_every_connection_distrusts_the_schema(sample_db):
    assert Store(sample_db).connection.execute("PRAGMA trusted_schema").fetchone() == (0,)
    assert (
        nanotasks("sql", "--db", sample_db, "PRAGMA trusted_schema").stdout.splitlines()[-1].strip()
        == "0"
    )


@pytest.mark.parametrize(
    "change, problem",
    [
        ("rows = 1000000000000", "its rows end at rowid"),
        ("rows = 'seven'", "rows is str"),
        ("rows = -1", "it has -1 rows"),
        ("first_example = 9223372036854775807", "its rows end at rowid"),
        ("first_example = first_example - 1", "its rows start at rowid"),  # inside the split before
        ("first_example = 0", "its rows start at rowid 0"),
        ("dictionary = 'text'", "dictionary is text"),
    ],
    ids=lambda v: v if "=" in v else None,
)
def test_an_insane_splits_row_is_refused_at_open(copy, change, problem):
    """GSM8K main/test claims what it does not hold: no task[i] may be another split's row."""
    split_id, _, _ = split_row(copy, "gsm8k", "main", "test")
    edit(copy, f"UPDATE splits SET {change} WHERE id = {split_id}")
    refused_everywhere(copy, problem)
    report = verify(copy)
    assert not report[-1].ok and report[-1].name == "schema" and "damaged" in report[-1].detail


@pytest.mark.parametrize(
    "table, change, problem",
    [
        ("splits", "repo = CAST(X'ff41' AS TEXT)", "Could not decode to UTF-8 column 'repo'"),
        ("splits", "sha256 = X'00'", "in its splits table, sha256 is bytes"),
        ("splits", "stored_bytes = 'many'", "in its splits table, stored_bytes is str"),
        ("files", "size = 'big'", "in its files table, size is str in row 'core_settings.json'"),
    ],
    ids=["invalid utf-8", "blob sha256", "text stored_bytes", "text file size"],
)
def test_a_column_of_the_wrong_type_is_one_line(copy, table, change, problem):
    """Columns only shown: a Task still reads, the commands that show them say what is wrong."""
    edit(copy, f"UPDATE {table} SET {change}" + (" WHERE id = 2" if table == "splits" else ""))
    assert GSM8K("main", "test", db=copy)[0]
    for result in nanotasks_each(
        ["info", "--db", copy], ["verify", "--db", copy], ["verify", "--quick", "--db", copy]
    ):
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert problem in result.stdout + result.stderr
    assert not [c for c in verify(copy) if c.name == "tables"][0].ok


def test_a_body_claiming_a_terabyte_is_one_line_everywhere(copy):
    """The SQL functions have the reader's cap and its error; nothing allocates the claim."""
    split_id, first, _ = split_row(copy, "gsm8k", "main", "test")
    with_body(copy, first + 3, claiming(1 << 40))
    assert (
        zstandard.get_frame_parameters(
            claiming(1 << 40), format=zstandard.FORMAT_ZSTD1_MAGICLESS
        ).content_size
        == 1 << 40
    )
    with pytest.raises(
        StoreError,
        match="example 3 of gsm8k main/test is damaged "
        r"\(its frame header claims 1099511627776 bytes\)",
    ):
        GSM8K("main", "test", db=copy)[3]
    for function in ("conversation", "conversation_text"):
        result = nanotasks("sql", "--db", copy, f"SELECT {function}({first + 3})", check=False)
        assert result.returncode == 1 and result.stderr.strip().splitlines() == [
            f"Error: {copy}: example {first + 3} is damaged (its frame header claims 1099511627776 "
            f"bytes). Check the file with `nanotasks verify --db {copy}`."
        ]
    failed = [c for c in verify(copy) if not c.ok]
    assert [c.name for c in failed] == [
        "gsm8k main/test"
    ] and "claims 1099511627776 bytes" in failed[0].detail


def test_a_damaged_dictionary_is_a_verdict_not_a_traceback(copy):
    split_id, first, _ = split_row(copy, "gsm8k", "main", "test")
    garbage = (
        b"\x37\xa4\x30\xec" + bytes(range(256)) * 4
    )  # zstd's dictionary magic, then nothing sane
    edit(copy, f"UPDATE splits SET dictionary = X'{garbage.hex()}' WHERE id = {split_id}")
    with pytest.raises(StoreError, match="example 3 of gsm8k main/test is damaged"):
        GSM8K("main", "test", db=copy)[3]
    failed = [c for c in verify(copy) if not c.ok]
    assert [c.name for c in failed] == ["gsm8k main/test"] and "dictionary is damaged" in failed[
        0
    ].detail
    verified, *others = nanotasks_each(
        ["verify", "--db", copy],
        ["show", "gsm8k", "test", "3", "--subset", "main", "--db", copy],
        ["sql", "--db", copy, f"SELECT conversation({first})"],
    )
    for result in (verified, *others):
        assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "DAMAGED" in verified.stdout


# --- read_many: the rows of a batch in one query per BATCH_ROWS ---------------------------


def test_batches_of_more_rows_than_one_query_binds(sample_db, monkeypatch):
    monkeypatch.setattr(store_reader, "BATCH_ROWS", 3)
    task = GSM8K("main", "train", db=sample_db)
    indices = list(range(len(task)))[::-1]
    assert task.__getitems__(indices) == [task[i] for i in indices]


def test_a_row_missing_from_a_split_is_reported_by_both_reads(sample_db, tmp_path):
    copy = tmp_path / "missing.db"
    shutil.copyfile(sample_db, copy)
    task = GSM8K("main", "train", db=sample_db)
    with sqlite3.connect(copy) as db:
        db.execute("DELETE FROM example_data WHERE id = ?", (task.stored_split.first_example + 2,))
    db.close()
    damaged = GSM8K("main", "train", db=copy)
    expected = f"{copy}: example 2 of gsm8k main/train is missing"
    with pytest.raises(FileDamaged, match=expected):
        damaged[2]
    with pytest.raises(FileDamaged, match=expected):
        damaged.__getitems__([0, 1, 2])
    assert damaged.__getitems__([0, 1, 3]) == [task[0], task[1], task[3]]


REPLACED = (
    "was replaced by another compile since the Task reading it was built: its splits are not "
    "where the Task would look. Build the Task again (or restart the job) to read the new file."
)


def recompile_with_a_custom_split(db, tmp_path):
    """Replace `db` by a compile that adds a custom split: it sorts before gsm8k, so every
    gsm8k row moves to other rowids."""
    chats = tmp_path / "chats.jsonl"
    chats.write_text(
        "".join(
            json.dumps(
                [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]
            )
            + "\n"
            for i in range(9)
        )
    )
    invoke("compile", "--only", "customjson", "--custom", f"early={chats}", "--db", db, check=True)


def test_a_pickled_task_refuses_a_file_another_compile_replaced(sample_db, tmp_path):
    """What a spawn DataLoader worker does: the Task is pickled, the file recompiled meanwhile,
    the worker unpickles it and reads. One clear error, never another split's examples."""
    db = shutil.copy(sample_db, tmp_path / "tasks.db")
    state = pickle.dumps(GSM8K(subset="main", split="test", db=db))
    assert pickle.loads(state)[1] == GSM8K(subset="main", split="test", db=sample_db)[1]
    recompile_with_a_custom_split(db, tmp_path)
    task = pickle.loads(state)
    with pytest.raises(FileReplaced) as replaced:
        task[1]
    assert str(replaced.value) == f"{db} {REPLACED}"
    assert GSM8K(subset="main", split="test", db=db)[1] == task_of(sample_db)[1]  # rebuilt: fine


def task_of(db):
    return GSM8K(subset="main", split="test", db=db)


FORKED_READER = """
import os, sys
from nanotasks.tasks.gsm8k import GSM8K
task = GSM8K(subset="main", split="test", db=sys.argv[1])
before = task[1]
print("built", flush=True)
sys.stdin.readline()  # the file is recompiled meanwhile
child = os.fork()
if child == 0:  # a forked worker: it opens the file anew
    try:
        print("child read", task[1] == before, flush=True)
    except Exception as error:
        print(f"child {type(error).__name__}: {error}", flush=True)
    os._exit(0)
os.waitpid(child, 0)
print("parent read", task[1] == before, flush=True)  # its connection is to the file it opened
"""


def test_a_forked_reader_refuses_a_file_another_compile_replaced(sample_db, tmp_path):
    db = shutil.copy(sample_db, tmp_path / "tasks.db")
    reader = subprocess.Popen(
        [sys.executable, "-c", FORKED_READER, db],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline() == "built\n"
        recompile_with_a_custom_split(db, tmp_path)
        stdout, _ = reader.communicate("go\n", timeout=60)
    finally:
        reader.kill()
    assert stdout.splitlines() == [f"child FileReplaced: {db} {REPLACED}", "parent read True"]


def test_a_recompile_to_the_same_contents_is_the_same_file_to_a_reader(sample_db, tmp_path):
    """The identity is of the contents: a Task built before a compile that changed nothing
    reads on, and the same sources still give the same bytes."""
    db = shutil.copy(sample_db, tmp_path / "tasks.db")
    state = pickle.dumps(task_of(db))
    invoke("compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", db, check=True)
    assert (tmp_path / "tasks.db").read_bytes() == sample_db.read_bytes()
    assert pickle.loads(state)[1] == task_of(sample_db)[1]
