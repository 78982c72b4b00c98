"""Writes a nanotasks file: a fresh SQLite file beside the target, moved into place whole.

Splits are written in the order they are given, each compressed row by row with a zstd
dictionary trained on its own first rows. Rows are encoded and compressed in chunks by a
pool of worker processes (`jobs`), and written in order; a row's bytes depend only on the
row, the dictionary and the level. Nothing depends on wall-clock time, on the number of
workers, or on how the file came to be: the same splits in the same order give the same
bytes, whether compressed now or copied from an earlier file.
"""

import concurrent.futures
import ctypes
import glob
import hashlib
import itertools
import json
import multiprocessing
import os
import signal
import sqlite3
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import zstandard

from nanotasks.store import Provenance
from nanotasks.store.reader import MAX_BODY_BYTES
from nanotasks.store.schema import APPLICATION_ID, SCHEMA, SCHEMA_VERSION, body_compressor, hashed_row
from nanotasks.store.text import message_text, normalise_text, prompt_of

# Compile once, read many times: small splits are compressed hard, where it is cheap in
# total and where short rows need it to be as small as parquet. Splits of more rows than a
# dictionary is trained on are compressed at a level that keeps up with reading them
# (level 19 costs ~100x level 3 per row, for 10% fewer bytes).
LEVEL = 19
LARGE_SPLIT_LEVEL = 3
DICTIONARY_SAMPLES = 20_000  # rows a dictionary is trained on at most: the first, already shuffled
DICTIONARY_SAMPLE_BYTES = 4_000_000  # training time grows with the bytes; more gains little
MAX_DICTIONARY_BYTES = 196_608
CHUNK = 1024  # rows sent to a worker at a time

_json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class SplitSummary:
    rows: int
    stored_bytes: int
    sha256: str


def encode(conversation):
    """The canonical bytes of a conversation: these are hashed and compressed."""
    return _json_encoder.encode(conversation).encode()


def prompt_hash(messages):
    """47 bits of the normalised first user message: SQLite stores it in 6 bytes."""
    digest = hashlib.blake2b(normalise_text(prompt_of(messages)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 17


class Writer:
    """Builds a new file at `<path>.tmp-<pid>`; `commit()` renames it over `path`. Splits and
    files can be copied as they are from `previous`, the Store of an earlier file.

    As a context manager, an error (or Ctrl-C) before commit removes the temporary file and
    leaves whatever was at `path` untouched.
    """

    def __init__(self, path, jobs=None, previous=None):
        self.path = Path(path)
        self.jobs = jobs or os.cpu_count()
        self.pool = None  # started for the first split of more than one chunk
        self.subjects = {}  # name -> id, as inserted
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        self.tmp.unlink(missing_ok=True)
        _remove_stale(self.path)
        self.db = sqlite3.connect(f"file:{quote(str(self.tmp.resolve()))}", uri=True,
                                  isolation_level=None)
        try:
            self.db.execute("PRAGMA trusted_schema=OFF")  # as every connection: see reader.connect
            self.db.execute("PRAGMA journal_mode=MEMORY")  # rollback of a failed split, no side file
            self.db.execute("PRAGMA synchronous=OFF")  # one fsync before the rename is enough
            self.db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self.db.executescript(SCHEMA)
            if previous is not None:
                # Attached before the file's one transaction, so that copying splits from it
                # takes no transaction of its own: SQLite counts them in the header, and the
                # same contents must give the same bytes however they were compiled.
                uri = f"file:{quote(str(previous.path.resolve()))}?mode=ro&immutable=1"
                self.db.execute("ATTACH ? AS old", (uri,))
            self.db.execute("BEGIN")
            self.db.execute("INSERT INTO meta VALUES ('format', 'nanotasks'), ('schema_version', ?)",
                            (str(SCHEMA_VERSION),))
        except BaseException:  # a full disk or Ctrl-C before `with` has taken charge
            self.abort()
            raise
        self.next_example = 1

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()

    def write_split(self, task, subset, split, provenance, examples):
        """Compress and store `examples` (in task order). If iterating them raises, nothing of
        this split is kept and the error propagates."""
        examples = iter(examples)
        head = list(itertools.islice(examples, DICTIONARY_SAMPLES + 1))
        dictionary = train_dictionary(_dictionary_samples(head))
        level = LEVEL if len(head) <= DICTIONARY_SAMPLES else LARGE_SPLIT_LEVEL
        if self.pool is None and self.jobs > 1 and len(head) > CHUNK:
            # spawn: fresh interpreters, nothing inherited from this process's threads or files
            self.pool = concurrent.futures.ProcessPoolExecutor(
                self.jobs, mp_context=multiprocessing.get_context("spawn"),
                initializer=_die_with, initargs=(os.getpid(),))
        digest = hashlib.sha256()
        stored_bytes = len(dictionary or b"")
        rowid = self.next_example
        self.db.execute("SAVEPOINT split")
        try:
            chunks = _chunked(itertools.chain(head, examples))
            for chunk, prepared in self._prepared(chunks, dictionary, level):
                rows = []
                for example, (data, body, messages, characters, hashed) in zip(chunk, prepared):
                    digest.update(hashed_row(data, [example.source_row, messages, characters,
                                                    example.answer, example.subject, hashed]))
                    stored_bytes += len(body)
                    rows.append((rowid, example.source_row, messages, characters, example.answer,
                                 self._subject_id(example.subject), hashed, body))
                    rowid += 1
                self.db.executemany("INSERT INTO example_data VALUES (?,?,?,?,?,?,?,?)", rows)
            summary = SplitSummary(rowid - self.next_example, stored_bytes, digest.hexdigest())
            self._add_split(task, subset, split, provenance, summary, dictionary)
        except BaseException:
            if self.db.in_transaction:  # a failed write to disk ends the whole transaction itself
                self.db.execute("ROLLBACK TO split")
                self.db.execute("RELEASE split")
            raise
        self.db.execute("RELEASE split")
        return summary

    def _submit(self, *call):
        """pool.submit, which may spawn a worker: Ctrl-C or SIGTERM in the middle of that would
        cut the worker's start-up data short and leave it printing a traceback, so they wait
        until the submit is done (the workers, which inherit the mask, die with SIGKILL)."""
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            return self.pool.submit(*call)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def _prepared(self, chunks, dictionary, level):
        """(chunk, prepare(chunk)) in order: computed by the pool, with a few chunks in flight
        at a time so memory stays bounded, or here when there is no pool."""
        if self.pool is None:
            for chunk in chunks:
                yield chunk, prepare(_conversations(chunk), dictionary, level)
            return
        pending = deque()
        for chunk in chunks:
            pending.append((chunk, self._submit(prepare, _conversations(chunk), dictionary, level)))
            if len(pending) > 2 * self.jobs:
                chunk, future = pending.popleft()
                yield chunk, future.result()
        for chunk, future in pending:
            yield chunk, future.result()

    def copy_split(self, split):
        """Copy a split of the previous file as it is stored there."""
        cursor = self.db.execute("SELECT * FROM old.splits WHERE id = ?", (split.id,))
        columns = dict(zip((c[0] for c in cursor.description), cursor.fetchone()))
        first, last = columns["first_example"], columns["first_example"] + columns["rows"] - 1
        self.db.execute(
            "INSERT OR IGNORE INTO subjects (name) SELECT s.name FROM old.example_data e "
            "JOIN old.subjects s ON s.id = e.subject_id WHERE e.id BETWEEN ? AND ? ORDER BY e.id",
            (first, last))
        self.db.execute(
            "INSERT INTO example_data SELECT e.id - ? + ?, e.source_row, e.messages, e.characters, "
            "e.answer, (SELECT id FROM subjects WHERE name = s.name), e.prompt_hash, e.body "
            "FROM old.example_data e LEFT JOIN old.subjects s ON s.id = e.subject_id "
            "WHERE e.id BETWEEN ? AND ? ORDER BY e.id", (first, self.next_example, first, last))
        provenance = Provenance(*(columns[k] for k in ("repo", "config", "source_split", "revision")))
        summary = SplitSummary(columns["rows"], columns["stored_bytes"], columns["sha256"])
        self._add_split(columns["task"], columns["subset"], columns["split"], provenance, summary,
                        columns["dictionary"])
        return summary

    def write_file(self, name, content, provenance):
        """Store a whole file (e.g. a word list), compressed in one piece."""
        body = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True).compress(content)
        self.db.execute("INSERT INTO files VALUES (?,?,?,?,?,?)",
                        (name, provenance.repo, provenance.revision,
                         hashlib.sha256(content).hexdigest(), len(content), body))
        return len(body)

    def copy_file(self, name):
        """Copy a stored file of the previous file as it is."""
        self.db.execute("INSERT INTO files SELECT * FROM old.files WHERE name = ?", (name,))
        return self.db.execute("SELECT length(body) FROM files WHERE name = ?", (name,)).fetchone()[0]

    def write_overlaps(self, overlaps):
        """Store the (eval_id, train_id, kind) rows of the `overlaps` table, in order."""
        self.db.executemany("INSERT INTO overlaps VALUES (?,?,?)", overlaps)

    def commit(self):
        """Finish the file, flush it to disk, and rename it over `path` in one step."""
        self._stop_pool()
        self.db.execute("COMMIT")
        self.db.close()
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)
        _fsync_directory(self.path.parent)

    def abort(self):
        self._stop_pool()
        self.db.close()
        self.tmp.unlink(missing_ok=True)

    def _stop_pool(self):
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None

    def _subject_id(self, name):
        if name is None:
            return None
        if name not in self.subjects:
            self.db.execute("INSERT OR IGNORE INTO subjects (name) VALUES (?)", (name,))
            self.subjects[name] = self.db.execute("SELECT id FROM subjects WHERE name = ?",
                                                  (name,)).fetchone()[0]
        return self.subjects[name]

    def _add_split(self, task, subset, split, provenance, summary, dictionary):
        self.db.execute(
            "INSERT INTO splits (task, subset, split, first_example, rows, repo, config, source_split, "
            "revision, sha256, stored_bytes, dictionary) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (task, subset, split, self.next_example, summary.rows, provenance.repo, provenance.config,
             provenance.source_split, provenance.revision, summary.sha256, summary.stored_bytes,
             dictionary))
        self.next_example += summary.rows


def _die_with(parent):
    """Worker start-up: be killed when the compiling process dies, however it dies. A worker
    holds the write end of its own task pipe, so without this it would wait on it forever
    after a kill -9, and keep multiprocessing's resource tracker alive too. (Linux only.)"""
    if sys.platform == "linux":
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the signal was asked for
        os._exit(1)


def prepare(conversations, dictionary, level):
    """For each conversation: its canonical bytes, their compressed body, its number of
    messages and characters, and its prompt hash. Runs in the worker processes."""
    compressor = _compressor(dictionary, level)
    prepared = []
    for conversation in conversations:
        data = encode(conversation)
        if len(data) > MAX_BODY_BYTES:
            raise ValueError(f"a conversation of {len(data):,} bytes: the file holds conversations of "
                             f"up to {MAX_BODY_BYTES:,} bytes")
        messages = conversation["messages"]
        prepared.append((data, compressor.compress(data), len(messages),
                         sum(len(message_text(m)) for m in messages), prompt_hash(messages)))
    return prepared


_compressors = {}


def _compressor(dictionary, level):
    """One compressor per dictionary and level in each process: building one costs more than
    compressing a chunk."""
    key = (dictionary, level)
    if key not in _compressors:
        _compressors.clear()  # the previous split's is done with
        _compressors[key] = body_compressor(dictionary, level)
    return _compressors[key]


def _chunked(examples):
    while chunk := list(itertools.islice(examples, CHUNK)):
        yield chunk


def _conversations(chunk):
    return [example.conversation for example in chunk]


def _dictionary_samples(head):
    """The encoded first rows, up to DICTIONARY_SAMPLES rows and DICTIONARY_SAMPLE_BYTES."""
    samples, size = [], 0
    for example in head[:DICTIONARY_SAMPLES]:
        data = encode(example.conversation)
        if size + len(data) > DICTIONARY_SAMPLE_BYTES:
            break
        samples.append(data)
        size += len(data)
    return samples


def train_dictionary(samples):
    """A dictionary (bytes) sized to the split, or None where one would not pay for itself."""
    size = min(MAX_DICTIONARY_BYTES, sum(len(s) for s in samples) // 40)
    if size < 1024 or len(samples) < 16:
        return None
    try:
        # Fixed k and d rather than zstd's parameter search: as small, and several times faster.
        return zstandard.train_dictionary(size, samples, k=1024, d=8, level=LEVEL).as_bytes()
    except zstandard.ZstdError:
        return None  # too little or too uniform data to train on: plain zstd does as well


def _remove_stale(path):
    """Remove the temporary files of compiles that were killed (SIGKILL, power loss) and so
    could not clean up; a file whose process is still running is another compile's."""
    for stale in path.parent.glob(f"{glob.escape(path.name)}.tmp-*"):
        pid = stale.name.rpartition("-")[2]
        if pid.isdigit() and not _running(int(pid)):
            stale.unlink(missing_ok=True)


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
