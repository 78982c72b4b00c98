"""A compile that cannot finish leaves the previous file byte-identical and no temporary file:
a bad source row (named with its source, split and row), a full disk, Ctrl-C, SIGTERM."""

import base64
import json
import random
import resource
import shutil
import signal
import string
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from nanotasks.compiler.build import reference_order
from tests.conftest import NANOTASKS, SAMPLE, nanotasks, small_tmpfs


@pytest.fixture
def previous(sample_db, tmp_path):
    """A compiled file in a directory of its own, and its bytes as they were."""
    db = tmp_path / "out" / "tasks.db"
    db.parent.mkdir()
    shutil.copyfile(sample_db, db)
    return db, db.read_bytes()


def assert_untouched(db, before):
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]  # no .tmp-<pid> left


def mirror_with(tmp_path, relative, change):
    """data/sample copied, with the parquet file at `relative` rewritten by change(table)."""
    mirror = tmp_path / "mirror"
    shutil.copytree(SAMPLE, mirror)
    path = mirror / relative
    pq.write_table(change(pq.read_table(path)), path)
    return mirror


def with_row(position, update):
    """change(table) that applies update(row) to the source row at `position`."""
    def change(table):
        rows = table.to_pylist()
        update(rows[position])
        return pa.Table.from_pylist(rows, schema=table.schema)
    return change


def set_field(field, value):
    return lambda row: row.__setitem__(field, value)


def swap_first_two_messages(row):
    row["messages"][0], row["messages"][1] = row["messages"][1], row["messages"][0]


def string_column(name):
    def change(table):
        index = table.schema.get_field_index(name)
        return table.set_column(index, name, pc.cast(table[name], pa.string()))
    return change


ARC_EASY_TRAIN = "allenai/ai2_arc/ARC-Easy/train-00000-of-00001.parquet"
GSM8K_MAIN_TRAIN = "openai/gsm8k/main/train-00000-of-00001.parquet"
MMLU_TEST = "cais/mmlu/all/test-00000-of-00001.parquet"
SMOLTALK_TRAIN = "HuggingFaceTB/smol-smoltalk/data/train-00000-of-00001.parquet"

# (task, file, change, the source split as named, the bad row or None for "the first row
# read", what the message says about it)
BAD_ROWS = {
    "missing field": ("gsm8k", GSM8K_MAIN_TRAIN, lambda t: t.drop_columns(["answer"]),
                      "openai/gsm8k main/train", None, "it has no field 'answer'"),
    "wrong type": ("mmlu", MMLU_TEST, string_column("answer"),
                   "cais/mmlu all/test", None, "expected int"),
    "null": ("gsm8k", GSM8K_MAIN_TRAIN, with_row(3, set_field("answer", None)),
             "openai/gsm8k main/train", 3, "answer is null"),
    "answer index out of range": ("mmlu", MMLU_TEST, with_row(5, set_field("answer", 7)),
                                  "cais/mmlu all/test", 5, "answer 7 is not an index 0-3"),
    "ARC answer not a label": ("arc", ARC_EASY_TRAIN, with_row(2, set_field("answerKey", "Z")),
                               "allenai/ai2_arc ARC-Easy/train", 2, "answerKey 'Z' is not one of the labels"),
    "SmolTalk turns out of order": ("smoltalk", SMOLTALK_TRAIN, with_row(4, swap_first_two_messages),
                                    "HuggingFaceTB/smol-smoltalk default/train", 4, "expected 'user'"),
}


@pytest.mark.parametrize("case", BAD_ROWS)
def test_a_bad_source_row_stops_the_compile_and_is_named(case, previous, tmp_path):
    task, relative, change, source, row, reason = BAD_ROWS[case]
    mirror = mirror_with(tmp_path, relative, change)
    if row is None:  # every row is bad: the one named is the first the compile reads
        row = reference_order(pq.read_table(mirror / relative).num_rows)[0]
    db, before = previous
    result = nanotasks("compile", "--mirror", mirror, "--db", db, check=False)
    assert_one_clear_line(result, f"bad source row: {source} row {row} ", reason)
    assert_untouched(db, before)


def test_a_bad_row_stops_the_compile_also_when_the_task_is_not_asked_for_first(previous, tmp_path):
    """The bad row is in the last split written (smoltalk): the splits already written to the
    temporary file before it are thrown away with it."""
    mirror = mirror_with(tmp_path, SMOLTALK_TRAIN, with_row(4, swap_first_two_messages))
    db, before = previous
    result = nanotasks("compile", "--mirror", mirror, "--db", db, check=False)
    assert result.returncode == 1 and "smol-smoltalk default/train row 4 " in result.stderr
    assert_untouched(db, before)


def test_a_shard_that_is_not_parquet_fails_its_source_by_name(previous, tmp_path):
    """An unreadable shard is like an unreachable source: reported by name, the rest written,
    the split kept from the previous file."""
    mirror = tmp_path / "mirror"
    shutil.copytree(SAMPLE, mirror)
    (mirror / GSM8K_MAIN_TRAIN).write_bytes(b"this is not parquet")
    db, _ = previous
    result = nanotasks("compile", "--only", "gsm8k", "--mirror", mirror, "--db", db, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert ("failed: gsm8k main/train (kept the previous copy): openai/gsm8k: cannot read "
            "main/train-00000-of-00001.parquet (for main/train): ") in result.stderr
    assert nanotasks("verify", "--db", db).returncode == 0


def big_jsonl(path, rows, seed=0):
    """Conversations of random words: they compress poorly, so they take room and time."""
    rng = random.Random(seed)

    def words(n):
        return " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(n))

    with open(path, "w") as f:
        for _ in range(rows):
            f.write(json.dumps([{"role": "user", "content": words(20)},
                                {"role": "assistant", "content": words(60)}]) + "\n")
    return path


def huge_jsonl(path, rows=15, seed=0):
    """A few 200 KB conversations of random base64: 3 MB that zstd cannot shrink, written in
    the middle of the split (past SQLite's 2 MB page cache), not only at the final commit.
    Fewer than 16 rows: no dictionary, so this is quick to compress."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(rows):
            f.write(json.dumps([{"role": "user", "content": "Repeat this:"},
                                {"role": "assistant", "content": base64.b64encode(rng.randbytes(150_000)).decode()}]) + "\n")
    return path


# Where the write fails: when the finished file is committed, or while a split is written.
FILLERS = {"at commit": lambda path: big_jsonl(path, 600), "mid-split": huge_jsonl}


def compile_big(db, jsonl, **kwargs):
    return subprocess.run([*NANOTASKS, "compile", "--only", "gsm8k", "--mirror", SAMPLE,
                           "--custom", f"big={jsonl}", "--db", db],
                          capture_output=True, text=True, **kwargs)


def assert_one_clear_line(result, *words):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: nothing was written: ") and all(w in last for w in words), last


@pytest.fixture
def small_filesystem(tmp_path):
    with small_tmpfs(tmp_path / "small", "512k") as mountpoint:
        yield mountpoint


@pytest.mark.parametrize("where", FILLERS)
def test_a_full_disk_leaves_the_previous_file_and_no_temporary_file(where, sample_db, small_filesystem, tmp_path):
    db = small_filesystem / "tasks.db"
    shutil.copyfile(sample_db, db)  # 229 KB of the 512 KiB
    before = db.read_bytes()
    result = compile_big(db, FILLERS[where](tmp_path / "big.jsonl"))
    assert_one_clear_line(result, "database or disk is full")
    assert_untouched(db, before)


@pytest.mark.parametrize("where", FILLERS)
def test_a_file_size_limit_leaves_the_previous_file_and_no_temporary_file(where, previous, tmp_path):
    """The same without root: RLIMIT_FSIZE makes the writes past 150 KB fail with EFBIG
    (SIGXFSZ ignored, so the write fails instead of killing the process)."""
    db, before = previous

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    result = compile_big(db, FILLERS[where](tmp_path / "big.jsonl"), preexec_fn=limit_file_size)
    assert_one_clear_line(result, "disk I/O error")
    assert_untouched(db, before)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_compile_leaves_the_previous_file_and_no_temporary_file(signum, previous, tmp_path):
    db, before = previous
    jsonl = big_jsonl(tmp_path / "big.jsonl", 4000)  # ~10 s of compression: stopped long before
    process = subprocess.Popen(
        [*NANOTASKS, "compile", "--only", "gsm8k", "--mirror", SAMPLE, "--custom", f"big={jsonl}",
         "--db", db], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as from a terminal
    temporary = db.parent / f"{db.name}.tmp-{process.pid}"
    try:
        deadline = time.monotonic() + 60
        while not temporary.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # into the custom split, which is written first
        assert sorted(p.name for p in db.parent.iterdir()) == [db.name, temporary.name]
        process.send_signal(signum)
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 128 + signum  # 130 for Ctrl-C, 143 for a kill
    finally:
        process.kill()
    assert "Traceback" not in stderr
    assert stderr.strip().endswith(f"interrupted: nothing was written; {db} is as it was")
    assert_untouched(db, before)
