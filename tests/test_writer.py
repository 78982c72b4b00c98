"""store/writer.py: a compile that cannot finish leaves the previous file byte-identical and no
temporary file (a full disk, a file size limit, Ctrl-C, SIGTERM, kill -9), and kill -9 of a
compile leaves no worker process behind."""

import base64
import contextlib
import glob
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import string
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nanotasks as nanotasks_api
from nanotasks.compiler.build import BadRow, task_positions
from nanotasks.store.reader import Store
from tests.conftest import NANOTASKS, REPO, SAMPLE, nanotasks, small_tmpfs
from tests.fakehub import FakeHub
from tests.helpers import (
    CONVERSATIONS,
    assert_one_clear_line,
    assert_untouched,
    mirror_copy,
    rewrite,
    sha256,
    write_jsonl,
)
from tests.reference import shard


def big_jsonl(path, rows, seed=0):
    """Conversations of random words: they compress poorly, so they take room and time."""
    rng = random.Random(seed)

    def words(n):
        return " ".join(
            "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(n)
        )

    with open(path, "w") as f:
        for _ in range(rows):
            f.write(
                json.dumps(
                    [
                        {"role": "user", "content": words(20)},
                        {"role": "assistant", "content": words(60)},
                    ]
                )
                + "\n"
            )
    return path


def huge_jsonl(path, rows=15, seed=0):
    """A few 200 KB conversations of random base64: 3 MB that zstd cannot shrink, written in
    the middle of the split (past SQLite's 2 MB page cache), not only at the final commit.
    Fewer than 16 rows: no dictionary, so this is quick to compress."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(rows):
            f.write(
                json.dumps(
                    [
                        {"role": "user", "content": "Repeat this:"},
                        {
                            "role": "assistant",
                            "content": base64.b64encode(rng.randbytes(150_000)).decode(),
                        },
                    ]
                )
                + "\n"
            )
    return path


# Where the write fails: when the finished file is committed, or while a split is written.
FILLERS = {"at commit": lambda path: big_jsonl(path, 600), "mid-split": huge_jsonl}


def compile_big(db, jsonl, **kwargs):
    return subprocess.run(
        [
            *NANOTASKS,
            "compile",
            "--only",
            "gsm8k",
            "--mirror",
            SAMPLE,
            "--custom",
            f"big={jsonl}",
            "--db",
            db,
        ],
        capture_output=True,
        text=True,
        **kwargs,
    )


@pytest.fixture
def small_filesystem(tmp_path):
    with small_tmpfs(tmp_path / "small", "512k") as mountpoint:
        yield mountpoint


@pytest.mark.parametrize("where", FILLERS)
def test_a_full_disk_leaves_the_previous_file_and_no_temporary_file(
    where, sample_db, small_filesystem, tmp_path
):
    db = small_filesystem / "tasks.db"
    shutil.copyfile(sample_db, db)  # 229 KB of the 512 KiB
    before = db.read_bytes()
    result = compile_big(db, FILLERS[where](tmp_path / "big.jsonl"))
    assert_one_clear_line(result, "database or disk is full")
    assert_untouched(db, before)


@pytest.mark.parametrize("where", FILLERS)
def test_a_file_size_limit_leaves_the_previous_file_and_no_temporary_file(
    where, previous, tmp_path
):
    """The same without root: RLIMIT_FSIZE makes the writes past 150 KB fail with EFBIG
    (SIGXFSZ ignored, so the write fails instead of killing the process)."""
    db, before = previous

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    result = compile_big(db, FILLERS[where](tmp_path / "big.jsonl"), preexec_fn=limit_file_size)
    assert_one_clear_line(result, "disk I/O error")
    assert_untouched(db, before)


@pytest.fixture
def hub():
    hub = FakeHub.start(SAMPLE)
    yield hub
    hub.release()
    hub.stop()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_compile_leaves_the_previous_file_and_no_temporary_file(
    signum, previous, hub, tmp_path
):
    """Signalled while it waits for a download from the hub, held unanswered: the new file is
    then certainly half made (the custom split, first in order, is in it)."""
    db, before = previous
    chats = write_jsonl(tmp_path / "chats.jsonl", map(json.dumps, CONVERSATIONS))
    hub.hold("/cdn/")  # the first parquet shard's download
    process = subprocess.Popen(
        [*NANOTASKS, "compile", "--only", "gsm8k", "--custom", f"chats={chats}", "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=hub.environ(tmp_path / "hf-home"),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )
    try:
        assert hub.held.wait(60), "the compile never asked for a shard"
        [temporary] = db.parent.glob(f"{db.name}.tmp-*")
        assert temporary.stat().st_size > 0
        process.send_signal(signum)
        hub.release()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, stderr  # 130 for Ctrl-C, 143 for a kill
    assert stdout == ""
    assert stderr.strip().splitlines() == [f"interrupted: nothing was written; {db} is as it was"]
    assert_untouched(db, before)


def test_a_compile_through_a_symbolic_link_replaces_the_file_it_names(sample_db, tmp_path):
    """As export does: the link stays a link, and the temporary and lock files are made beside
    the file it names (the rename is within that directory)."""
    target = tmp_path / "real" / "tasks.db"
    target.parent.mkdir()
    shutil.copyfile(sample_db, target)
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "link.db"
    link.symlink_to(target)
    chats = write_jsonl(tmp_path / "chats.jsonl", map(json.dumps, CONVERSATIONS))
    nanotasks("compile", "--only", "customjson", "--custom", f"mine={chats}", "--db", link)
    assert link.is_symlink() and link.resolve() == target
    assert ("customjson", "mine", "train") in {
        (s["task"], s["subset"], s["split"]) for s in Store(target).splits()
    }
    assert [p.name for p in target.parent.iterdir()] == ["tasks.db"]
    assert [p.name for p in link.parent.iterdir()] == ["link.db"]


def big_smoltalk_mirror(tmp_path, rows=3000):
    """The sample with a SmolTalk train split big enough to take seconds to compress."""
    mirror = mirror_copy(tmp_path, "big")
    words = (SAMPLE / "dwyl/english-words/words_alpha.txt").read_text().split()
    rng = np.random.default_rng(0)

    def text(n):
        return " ".join(rng.choice(words, n))

    rewrite(
        shard(mirror, ("smoltalk", "default", "train")),
        lambda _: [
            {
                "messages": [
                    {"content": text(30), "role": "user"},
                    {"content": text(150), "role": "assistant"},
                ],
                "source": "generated",
            }
            for _ in range(rows)
        ],
    )
    return mirror


def test_killed_compile_leaves_the_previous_file_intact(sample_db, hub, tmp_path):
    """Killed while it waits for SmolTalk's download from the hub, held unanswered: the new file
    then certainly holds the splits kept from the old one (they come first in order)."""
    db = shutil.copy(sample_db, tmp_path / "nanotasks.db")
    before = sha256(db)
    hub.hold("/cdn/")  # SmolTalk's shard, the only one this compile downloads
    compile_ = subprocess.Popen(
        [*NANOTASKS, "compile", "--only", "smoltalk", "--db", db],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=hub.environ(tmp_path / "hf-home"),
    )
    try:
        assert hub.held.wait(60), "the compile never asked for SmolTalk's shard"
        [tmp] = tmp_path.glob("nanotasks.db.tmp-*")
        assert tmp.stat().st_size > 0
        compile_.send_signal(signal.SIGKILL)
        compile_.wait()
    finally:
        compile_.kill()
    assert tmp.exists()  # nothing can clean up after SIGKILL
    assert sha256(db) == before
    assert "smoltalk" in nanotasks("info", "--db", db).stdout
    assert nanotasks("show", "smoltalk", "train", "0", "--db", db).stdout.startswith("[")
    # The next compile removes what the killed one left behind.
    nanotasks("compile", "--only", "humaneval", "--mirror", SAMPLE, "--db", db)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["nanotasks.db"]
    assert sha256(db) == before


def holds_a_deleted_file_in(pid, directory):
    """Whether process `pid` or one of its descendants has a file open in `directory` that has
    no name any more."""
    links = []
    for process in process_tree(pid):
        try:
            fds = os.listdir(f"/proc/{process}/fd")
        except FileNotFoundError:  # ended meanwhile
            continue
        for fd in fds:
            try:
                links.append(os.readlink(f"/proc/{process}/fd/{fd}"))
            except FileNotFoundError:  # closed meanwhile
                pass
    return any(link.startswith(f"{directory}/") and link.endswith(" (deleted)") for link in links)


def process_tree(pid):
    """`pid` and its descendants now."""
    found, pending = [], [pid]
    while pending:
        process = pending.pop()
        found.append(process)
        for task in glob.glob(f"/proc/{process}/task/*/children"):
            with contextlib.suppress(FileNotFoundError):
                pending.extend(map(int, Path(task).read_text().split()))
    return found


def test_a_shuffled_split_is_the_same_file_with_one_job_and_with_a_pool(tmp_path):
    """With a pool, a shuffled split's rows are compressed by the workers and hashed by one more
    process, out of task order then in it; with one job, all here: the same bytes either way."""
    mirror = big_smoltalk_mirror(tmp_path)  # three batches: the pool starts
    files = []
    for jobs in ("1", "2"):
        db = tmp_path / f"jobs-{jobs}.db"
        command = ["compile", "--only", "smoltalk", "--mirror", mirror, "--db", db]
        nanotasks(*command, "--jobs", jobs, check=True)
        files.append(sha256(db))
    assert files[0] == files[1]
    assert Store(tmp_path / "jobs-2.db").split("smoltalk", "default", "train").rows == 3000
    nanotasks("verify", "--db", tmp_path / "jobs-2.db", check=True)  # its sha256 recomputed


def test_a_shuffled_split_is_stored_alike_however_its_shard_is_cut_in_row_groups(tmp_path):
    """Each worker reads whole row groups, or pieces of one when there are too few (skipping
    the rows before its piece): one row group of 3,000 rows, cut in three pieces, and row
    groups of 700, not a multiple of a batch, store the same rows."""
    mirror = big_smoltalk_mirror(tmp_path)
    path = shard(mirror, ("smoltalk", "default", "train"))
    splits = []
    for row_groups in (None, 700):
        if row_groups:
            pq.write_table(pq.read_table(path), path, row_group_size=row_groups)
        db = tmp_path / f"{row_groups}.db"
        command = ["compile", "--only", "smoltalk", "--mirror", mirror, "--db", db, "--jobs", "2"]
        nanotasks(*command, check=True)
        with sqlite3.connect(db) as connection:
            query = "SELECT rows, sha256, stored_bytes FROM splits WHERE split = 'train'"
            splits.append(connection.execute(query).fetchone())
    assert pq.ParquetFile(path).metadata.num_row_groups == 5
    assert splits[0] == splits[1] and splits[0][0] == 3000  # sha256: every row, in task order


def with_bad_rows(tmp_path):
    """A mirror whose SmolTalk train split is one row group of 12,000 rows (four pieces of
    3,072 for two workers) with a bad row in the second piece and one in the third, both late
    in the task order so that the dictionary's samples (its first rows) miss them; and the
    first of them."""
    mirror = big_smoltalk_mirror(tmp_path, rows=12_000)
    path = shard(mirror, ("smoltalk", "default", "train"))
    table = pq.read_table(path)
    rows = table.to_pylist()
    late = task_positions(len(rows)) > 6000
    first = int(np.flatnonzero(late[3500:6000])[0]) + 3500
    for bad in (first, int(np.flatnonzero(late[7000:])[0]) + 7000):
        rows[bad]["messages"][1]["role"] = "robot"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    return mirror, first


def test_the_first_bad_row_of_a_split_read_in_pieces_is_the_one_named(tmp_path):
    """Pieces are compressed side by side but their errors are taken in source order, and a
    piece numbers its rows in the split, not from where it starts."""
    mirror, first = with_bad_rows(tmp_path)
    db = tmp_path / "x.db"
    command = ["compile", "--only", "smoltalk", "--mirror", mirror, "--db", db, "--jobs", "2"]
    result = nanotasks(*command, check=False)
    assert result.returncode == 1 and not db.exists()
    assert f"smol-smoltalk default/train row {first} " in result.stderr
    assert "role 'robot'" in result.stderr


def test_progress_counts_the_pieces_compressed_not_those_handed_out(tmp_path):
    """Pieces are handed to the workers ahead of time; the bar counts a piece's rows once it
    is compressed: when the second holds a bad row, only the first."""
    bars = {}

    class Bar:
        def __init__(self, length=None, label=None):
            self.updates = bars[label] = []

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def update(self, rows):
            self.updates.append(rows)

    mirror, _ = with_bad_rows(tmp_path)
    with pytest.raises(BadRow):
        nanotasks_api.compile(tmp_path / "x.db", ["smoltalk"], mirror, jobs=2, progress=Bar)
    assert bars["smoltalk default/train"] == [3072]


class Batch(list):
    """Examples with their task positions, as the writer takes a split stored by position."""

    def __init__(self, examples, positions):
        super().__init__(examples)
        self.positions = positions


class Endless:
    """A piece of a split that a worker never gets through: it waits to read `fifo`."""

    def __init__(self, fifo):
        self.fifo = fifo

    def __len__(self):
        return 1024

    def __call__(self):
        Path(self.fifo).read_bytes()
        return iter(())


STOPPED_IN_A_PIECE = """
import sys
from nanotasks.store import Example, Provenance
from nanotasks.store.writer import Writer
from tests.test_writer import Batch, Endless

chats = [Example({"messages": [{"role": "user", "content": f"hi {i}"}]}) for i in range(2048)]
head = [Batch(chats[:1024], list(range(1024))), Batch(chats[1024:], list(range(1024, 2048)))]
writer = Writer(sys.argv[1], jobs=2)
try:
    writer.write_split("t", "s", "train", Provenance(), [Endless(sys.argv[2])], list, head)
finally:
    writer.abort()
"""


def test_ctrl_c_stops_the_workers_in_the_middle_of_a_piece(tmp_path):
    """A piece can be a whole row group, seconds of work: Ctrl-C does not wait for it. Here the
    worker would wait for ever, on a pipe that this test holds open and never writes to."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    command = [sys.executable, "-c", STOPPED_IN_A_PIECE, tmp_path / "x.db", fifo]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline, pipe = time.monotonic() + 60, None
    try:
        while pipe is None:  # until a worker has opened the pipe to read it
            assert process.poll() is None and time.monotonic() < deadline, process.stderr
            with contextlib.suppress(OSError):
                pipe = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) != 0
        assert b"KeyboardInterrupt" in process.stderr.read()
    finally:
        process.kill()
        process.wait()
        if pipe is not None:
            os.close(pipe)
    assert list(tmp_path.iterdir()) == [fifo]  # the new file's start removed


def test_the_first_null_of_a_split_checked_by_the_pool_is_the_one_named(tmp_path):
    """A split of several row groups is checked a group per worker: a null in a later group
    does not hide an earlier one, and rows are numbered in the split, not in their group."""
    mirror = big_smoltalk_mirror(tmp_path)
    path = shard(mirror, ("smoltalk", "default", "train"))
    table = pq.read_table(path)
    rows = table.to_pylist()
    rows[1200]["messages"][1]["content"] = None
    rows[2500]["messages"] = None
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path, row_group_size=1000)
    db = tmp_path / "x.db"
    command = ["compile", "--only", "smoltalk", "--mirror", mirror, "--db", db, "--jobs", "2"]
    result = nanotasks(*command, check=False)
    assert result.returncode == 1 and not db.exists()
    assert "smol-smoltalk default/train row 1200 " in result.stderr
    assert "messages holds a null" in result.stderr


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"]
)
def test_a_compile_stopped_while_it_holds_rows_out_of_order_leaves_nothing_behind(
    signum, sample_db, tmp_path
):
    """A shuffled split's compressed rows wait in temporary databases (each worker's own)
    until they are merged in task order: SQLite's temporary files, deleted from their
    directory as soon as they are made, so however the compile ends it leaves nothing there."""
    mirror = big_smoltalk_mirror(tmp_path, rows=10_000)  # over SQLite's 2 MB cache
    db = shutil.copy(sample_db, tmp_path / "nanotasks.db")
    before = sha256(db)
    spill = tmp_path / "sqlite-tmp"
    spill.mkdir()
    compile_ = subprocess.Popen(
        [*NANOTASKS, "compile", "--only", "smoltalk", "--mirror", mirror, "--db", db],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, SQLITE_TMPDIR=str(spill)),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # as from a terminal
    try:
        deadline = time.monotonic() + 60
        while not holds_a_deleted_file_in(compile_.pid, spill):
            assert compile_.poll() is None and time.monotonic() < deadline, (
                "the compile never held rows out of order on disk: make the source bigger"
            )
            time.sleep(0.01)
        compile_.send_signal(signum)
        assert compile_.wait(timeout=60) in (128 + signum, -signum)
    finally:
        compile_.kill()
        compile_.wait()
    assert list(spill.iterdir()) == []
    assert sha256(db) == before
    if signum != signal.SIGKILL:  # SIGKILL leaves the new file's start, for the next compile
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["nanotasks.db"]


def test_concurrent_compiles_of_one_file_run_one_after_the_other(sample_db, hub, tmp_path):
    """The second waits for the first (its lock beside the file), saying so, then starts from
    the file the first wrote: each one's custom split is in the end, neither's work is lost,
    and neither touched the other's temporary file."""
    db = tmp_path / "tasks.db"
    shutil.copyfile(sample_db, db)
    chats = write_jsonl(tmp_path / "chats.jsonl", map(json.dumps, CONVERSATIONS))

    def compile_(*args, **kwargs):
        return subprocess.Popen(
            [*NANOTASKS, "compile", "--db", db, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )

    hub.hold("/cdn/")
    first = compile_(
        "--only", "gsm8k", "--custom", f"first={chats}", env=hub.environ(tmp_path / "hf")
    )
    try:
        assert hub.held.wait(60), "the first compile never asked for a shard"
        second = compile_("--only", "customjson", "--custom", f"second={chats}")
        try:
            assert second.stderr.readline() == f"{db}: another compile is writing it; waiting\n"
            hub.release()
            assert first.wait(60) == 0, first.communicate()
            assert second.wait(60) == 0, second.communicate()
        finally:
            second.kill()
    finally:
        first.kill()
    assert {(s["task"], s["subset"]) for s in Store(db).splits() if s["task"] != "gsm8k"} >= {
        ("customjson", "first"),
        ("customjson", "second"),
    }
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("tasks")) == ["tasks.db"]


ROWS = 20_000  # a split of more than one chunk goes to the worker pool, at the slow level 19


def session_processes(session):
    """Live (not zombie) processes of that session, whoever their parent is now."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == session:
            found.append(int(entry.name))
    return found


def wait_for(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_workers_die_with_a_killed_compile(tmp_path):
    chats = tmp_path / "chats.jsonl"
    with chats.open("w") as file:
        for i in range(ROWS):
            file.write(
                json.dumps(
                    [
                        {
                            "role": "user",
                            "content": f"Question {i}: " + "why is the sky blue? " * (i % 13),
                        },
                        {
                            "role": "assistant",
                            "content": f"Answer {i}: " + "light scatters. " * (i % 29),
                        },
                    ]
                )
                + "\n"
            )
    command = [
        *NANOTASKS,
        "compile",
        "--only",
        "customjson",
        "--custom",
        f"chats={chats}",
        "--jobs",
        "2",
        "--db",
        tmp_path / "x.db",
    ]
    compile = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # the compile, its two workers and multiprocessing's resource tracker
        assert wait_for(lambda: len(session_processes(compile.pid)) >= 4), (
            "the worker pool never started"
        )
        compile.kill()
        compile.wait()
        assert wait_for(lambda: session_processes(compile.pid) == []), session_processes(
            compile.pid
        )
    finally:
        for pid in session_processes(compile.pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "conversation",
    [
        {"messages": [{"role": "user", "content": "héllo"}, {"role": "assistant", "content": ""}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}], "n": 3},
        {"messages": [{"role": "user", "content": "a", "score": 1e-07}]},
        {"messages": [{"role": "user", "content": "a", "meta": {"deep": [1, [2.5e16]]}}]},
        {"messages": [{"role": "user", "content": "a", "score": float("nan")}]},
        {"messages": [{"role": "user", "content": "a", "id": 2**70, "ok": True, "x": None}]},
    ],
)
def test_encode_writes_what_json_dumps_writes(conversation):
    """A body's bytes are json.dumps's, however deep a float or a big integer sits (orjson,
    which encode prefers, writes floats its own way and refuses integers past 64 bits)."""
    from nanotasks.store.writer import encode

    expected = json.dumps(conversation, ensure_ascii=False, separators=(",", ":")).encode()
    assert encode(conversation) == expected


def test_a_failed_split_takes_its_subjects_with_it(tmp_path):
    """A split that fails part way is rolled back with the subjects it added; a later split
    with the same subjects gets them afresh, not ids that now name nothing (or another one)."""
    from nanotasks.store import Example, Provenance
    from nanotasks.store.writer import Writer

    def examples(subjects, fail=False):
        for i, subject in enumerate(subjects):
            if fail and i == 25_000:  # past the rows the dictionary is trained on: some stored
                raise OSError("the source broke off")
            conversation = {"messages": [{"role": "user", "content": f"q{i}"}]}
            yield Example(conversation, subject=subject, source_row=i)

    path = tmp_path / "subjects.db"
    with Writer(path, jobs=1) as writer:
        with pytest.raises(OSError):
            writer.write_split("t", "s", "dev", Provenance(), examples(["anatomy"] * 30_000, True))
        writer.write_split("t", "s", "test", Provenance(), examples(["virology", "anatomy"]))
        writer.commit()
    store = Store(path)
    assert [row[0] for row in store.connection.execute("SELECT subject FROM examples")] == [
        "virology",
        "anatomy",
    ]
