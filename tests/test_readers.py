"""Readers never write: no side files, a read-only mount is enough, and many processes
reading at once each get exactly what one process reading alone gets."""

import multiprocessing
import pickle
import random
import shutil
import stat
import subprocess
import sys

import pytest

from nanotasks.tasks.arc import ARC
from nanotasks.tasks.common import TaskMixture
from nanotasks.tasks.gsm8k import GSM8K
from nanotasks.tasks.humaneval import HumanEval
from nanotasks.tasks.mmlu import MMLU
from nanotasks.tasks.smoltalk import SmolTalk
from nanotasks.tasks.spellingbee import SimpleSpelling, SpellingBee
from tests.conftest import REPO, nanotasks

PROCESSES = 16
READS = 300


def tasks(db):
    return [ARC("ARC-Easy", "train", db=db), ARC("ARC-Challenge", "test", db=db),
            MMLU("all", "test", db=db), GSM8K("main", "train", db=db), SmolTalk("train", db=db),
            HumanEval(db=db), SpellingBee(size=500, db=db), SimpleSpelling(size=500, db=db),
            TaskMixture([ARC("ARC-Easy", "test", db=db), GSM8K("socratic", "test", db=db),
                         MMLU("all", "dev", db=db)])]


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
    processes = [context.Process(target=reader, args=(db, seed, barrier, results)) for seed in range(PROCESSES)]
    for process in processes:
        process.start()
    concurrent = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return concurrent


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_sixteen_processes_reading_at_once_get_the_serial_results(method, sample_db):
    # Started from a fresh interpreter: a pytest-xdist worker runs threads, and forking a
    # multi-threaded process can deadlock the child (Python 3.12+ warns of it).
    script = ("import pickle, sys; from tests.test_readers import concurrent_reads; "
              f"sys.stdout.buffer.write(pickle.dumps(concurrent_reads({str(sample_db)!r}, {method!r})))")
    started = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=REPO)
    assert started.returncode == 0, started.stderr.decode()
    assert pickle.loads(started.stdout) == {seed: random_reads(sample_db, seed) for seed in range(PROCESSES)}


def read_everything(db):
    """Every way of reading the file: the Task API and each read-only CLI command."""
    for task in tasks(db):
        [task[i] for i in range(len(task))]
    for command in (["info"], ["info", "--json"], ["show", "gsm8k", "test", "1", "--subset", "main"],
                    ["verify"], ["verify", "--quick"]):
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
