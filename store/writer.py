"""Writes a nanotasks file: a fresh SQLite file beside the target, moved into place whole.

Splits are written in the order they are given, each compressed row by row with a zstd
dictionary trained on its own first rows. Rows are encoded and compressed in chunks by a
pool of worker processes (`jobs`), and written in order (a split whose rows come out of order
waits in the workers' temporary databases, and one more process hashes it as it is merged in
order); a row's bytes depend only on the row, the dictionary and the level. Nothing depends on
wall-clock time, on the number of workers, or on how the file came to be: the same splits in
the same order give the same bytes, whether compressed now or copied from an earlier file.
"""

import concurrent.futures
import contextlib
import ctypes
import fcntl
import functools
import gc
import glob
import hashlib
import heapq
import itertools
import json
import multiprocessing
import os
import platform
import secrets
import signal
import sqlite3
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import orjson
import zstandard

from nanotasks.store import Provenance, interrupt
from nanotasks.store.schema import (
    APPLICATION_ID,
    IDENTITY,
    MAX_BODY_BYTES,
    SCHEMA,
    SCHEMA_VERSION,
    body_compressor,
    body_decompressor,
    contents_identity,
    hashed_row,
)
from nanotasks.store.text import message_text, normalise_text, prompt_of

# Compile once, read many times: small splits are compressed hard, where it is cheap in
# total and where short rows need it to be as small as parquet. Splits of more rows than a
# dictionary is trained on are compressed at a level that keeps up with reading them
# (level 19 costs ~100x level 3 per row, for 10% fewer bytes).
LEVEL = 19
LARGE_SPLIT_LEVEL = 3
DICTIONARY_SAMPLES = 20_000  # rows a dictionary is trained on at most: the first, already shuffled
DICTIONARY_SAMPLE_BYTES = 4_000_000  # training time grows with the bytes; more gains little
MAX_DICTIONARY_BYTES = 196_608  # what a large split gets: 1.7% smaller than half that on SmolTalk
# Pages of 16 KiB rather than SQLite's 4 KiB: in 4 KiB pages SmolTalk's bodies of 1-4 KB leave
# 14% of the file empty (a body of 3 KB fills a page on its own), and random reads cost the
# same. Larger pages save 3% more there, but each of the file's 12 tables and indexes takes at
# least a page: they make a file of GSM8K, MMLU and HumanEval 2% (32 KiB) and 8% (64 KiB) bigger.
PAGE_SIZE = 16384
CHUNK = 1024  # rows sent to a worker at a time
HASHER_CHUNKS = 16  # chunks the hasher process may be behind at most
MALLOC_MMAP_BYTES = 32 << 20  # allocations above this still get their own mapping
MALLOC_KEPT_BYTES = 32 << 20  # free memory a compiling process keeps for reuse at most
TEMPORARY = ".tmp-"  # the new file is written as <path>.tmp-<random> beside <path>

_json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class SplitSummary:
    rows: int
    stored_bytes: int
    sha256: str


def encode(conversation):
    """The canonical bytes of a conversation, hashed and compressed: compact JSON as
    `json.dumps(conversation, ensure_ascii=False, separators=(",", ":"))` writes it. orjson
    writes the same bytes 2-3x faster, except for floats (1e-07 is 1e-7 to it, NaN null) and
    ints beyond 64 bits (which it refuses): only a custom file's messages can hold those."""
    if _without_floats(conversation):
        try:
            return orjson.dumps(conversation)
        except orjson.JSONEncodeError:
            pass
    return _json_encoder.encode(conversation).encode()


def _without_floats(value):
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            pending.extend(item.values())
        elif kind is list:
            pending.extend(item)
        elif kind is not str and kind is not int and kind is not bool and item is not None:
            return False
    return True


def prompt_hash(messages):
    """47 bits of the normalised first user message: SQLite stores it in 6 bytes."""
    digest = hashlib.blake2b(normalise_text(prompt_of(messages)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 17


class Writer:
    """Builds a new file at `<path>.tmp-<random>`; `commit()` renames it over `path`. Splits and
    files can be copied as they are from `previous`, the Store of an earlier file. A compile
    holds `exclusive(path)` around its Writer and its reading of `previous`.

    As a context manager, an error (or Ctrl-C) before commit removes the temporary file and
    leaves whatever was at `path` untouched.
    """

    def __init__(self, path, jobs=None, previous=None):
        self.path = Path(path)
        self.jobs: int = jobs or os.cpu_count() or 1
        # The worker processes, started for the first split of more than one chunk: one
        # executor each, so that a call can go to a given worker (each keeps what it
        # compressed of a split stored by position until it is merged).
        self.lanes: list[concurrent.futures.ProcessPoolExecutor] = []
        # one more process, started with the workers, that hashes splits stored by position
        self.hasher: concurrent.futures.ProcessPoolExecutor | None = None
        self.subjects = {}  # name -> id, as inserted
        # Random, not the process id: processes in other PID namespaces (containers sharing the
        # directory) may have the same one.
        self.tmp = self.path.with_name(f"{self.path.name}{TEMPORARY}{secrets.token_hex(8)}")
        keep_freed_memory()
        self.connection = sqlite3.connect(
            f"file:{quote(str(self.tmp.resolve()))}", uri=True, isolation_level=None
        )
        try:
            self.connection.execute(
                "PRAGMA trusted_schema=OFF"
            )  # as every connection: see reader.connect
            self.connection.execute(f"PRAGMA page_size={PAGE_SIZE}")
            self.connection.execute(
                "PRAGMA journal_mode=MEMORY"
            )  # rollback of a failed split, no side file
            self.connection.execute(
                "PRAGMA synchronous=OFF"
            )  # one fsync before the rename is enough
            self.connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
            self.connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self.connection.executescript(SCHEMA)
            if previous is not None:
                # Attached before the file's one transaction, so that copying splits from it
                # takes no transaction of its own: SQLite counts them in the header, and the
                # same contents must give the same bytes however they were compiled.
                uri = f"file:{quote(str(previous.path.resolve()))}?mode=ro&immutable=1"
                self.connection.execute("ATTACH ? AS old", (uri,))
            self.connection.execute("BEGIN")
            self.connection.execute(
                "INSERT INTO meta VALUES ('format', 'nanotasks'), ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except BaseException:  # a full disk or Ctrl-C before `with` has taken charge
            self.abort()
            raise
        self.next_example = 1

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()

    def write_split(
        self, task, subset, split, provenance, examples, to_examples=None, head=None, done=None
    ):
        """Compress and store `examples` (in task order). With `to_examples`, `examples` are
        batches (of source rows, say) that `to_examples(batch)` turns into a list of Examples:
        in the worker processes, so it must pickle (a module-level function, or a partial of
        one). With `head`, a list of the split's first batches in task order (up to
        DICTIONARY_SAMPLES rows and one batch past them, or all), which is emptied once the
        dictionary is trained, `examples` are pieces of the split in any order: functions of
        no argument (which pickle) that give its batches, each with `positions`, the task
        position of each of its rows, and whose len() is their rows. `done`, if given, is
        called with the rows of each batch or piece once it is compressed. If iterating or
        converting them raises, nothing of this split is kept and the error propagates."""
        if to_examples is None:
            examples, to_examples = chunked(examples), list
        batches, in_order = iter(examples), head is None
        if in_order:
            head = _head(batches)
            batches = itertools.chain(head, batches)
        large = sum(len(batch) for batch in head) > DICTIONARY_SAMPLES
        dictionary = train_dictionary(_dictionary_samples(head, to_examples), large)
        self._start_pool(len(head))
        if not in_order:
            head.clear()  # held no longer than the dictionary needs it
            release_freed_memory()
        compress = functools.partial(
            prepare,
            to_examples=to_examples,
            dictionary=dictionary,
            level=LARGE_SPLIT_LEVEL if large else LEVEL,
            hashed=in_order,
        )
        done = done or (lambda rows: None)
        self.connection.execute("SAVEPOINT split")
        try:
            if in_order:
                summary = self._store_in_order(batches, compress, dictionary, done)
            else:
                summary = self._store_by_position(batches, compress, dictionary, done)
            self._add_split(task, subset, split, provenance, summary, dictionary)
        except BaseException:
            self.subjects.clear()  # the subjects this split added are rolled back with it
            if (
                self.connection.in_transaction
            ):  # a failed write to disk ends the whole transaction itself
                self.connection.execute("ROLLBACK TO split")
                self.connection.execute("RELEASE split")
            raise
        self.connection.execute("RELEASE split")
        return summary

    def run(self, calls, count):
        """The results of `calls` (functions of no argument, which pickle), in order: computed
        by the worker processes, started for them when there are `count` > 1, else here."""
        self._start_pool(count)
        return self._done_in_order(calls)

    def _start_pool(self, batches):
        """The worker processes, for the first split of more than one batch."""
        if not self.lanes and self.jobs > 1 and batches > 1:
            self.lanes = [_process() for _ in range(self.jobs)]
            self.hasher = _process()

    def _store_in_order(self, batches, compress, dictionary, done):
        """Compress batches given in task order and store them as they come."""
        digest, stored_bytes = hashlib.sha256(), len(dictionary or b"")
        rowid = self.next_example
        work = (functools.partial(compress, batch) for batch in batches)
        for prepared, hashed in self._done_in_order(work):
            digest.update(hashed)
            stored_bytes += sum(len(row[-1]) for row in prepared)
            self._insert(rowid, prepared)
            rowid += len(prepared)
            done(len(prepared))
        return SplitSummary(rowid - self.next_example, stored_bytes, digest.hexdigest())

    def _store_by_position(self, pieces, compress, dictionary, done):
        """Each worker reads the pieces it is given and compresses them into a temporary
        database of its own, keyed by task position; the workers' rows are then merged and
        copied here in task order. The split is never held in memory, and this process only
        stores it."""
        split = secrets.token_hex(8)  # names the split's databases in the workers
        piece_rows: deque[int] = deque()  # of each piece handed out and not done

        def spilling():
            for piece in pieces:
                piece_rows.append(len(piece))
                yield functools.partial(_spill, split, piece, compress)

        try:
            for _ in self._done_in_order(spilling()):
                done(piece_rows.popleft())
            spilled = [self._spilled(lane, split) for lane in self.lanes]
            merged = heapq.merge(*spilled or [self._spilled(None, split)])
            return self._copy_in_order(chunked(row[1:] for row in merged), dictionary)
        finally:
            if not self.lanes:
                _end_spill(split)

    def _spilled(self, lane, split):
        """The rows of `split` that `lane` (None: this process) spilled, in task order, each
        led by its position; the next chunk is read while these are merged."""
        if lane is None:
            while chunk := _spilled_chunk(split):
                yield from chunk
            return
        ahead = self._submit(lane, _spilled_chunk, split)
        while chunk := ahead.result():
            ahead = self._submit(lane, _spilled_chunk, split)
            yield from chunk

    def _copy_in_order(self, chunks, dictionary):
        """Store `chunks` of prepared rows, in task order. The split's sha256 covers what its
        bodies decompress to, which takes longer than storing them: with workers, the hasher
        process does that meanwhile."""
        if self.hasher is None:
            digest: SplitDigest | HasherDigest = SplitDigest(dictionary)
        else:
            digest = HasherDigest(functools.partial(self._submit, self.hasher), dictionary)
        stored_bytes, rowid = len(dictionary or b""), self.next_example
        for prepared in chunks:
            digest.add(prepared)
            stored_bytes += sum(len(row[-1]) for row in prepared)
            self._insert(rowid, prepared)
            rowid += len(prepared)
        return SplitSummary(rowid - self.next_example, stored_bytes, digest.hexdigest())

    def _insert(self, first, prepared):
        """Insert prepared rows (see prepare) into example_data from rowid `first` on."""
        self.connection.executemany(
            "INSERT INTO example_data VALUES (?,?,?,?,?,?,?,?)",
            [
                (
                    rowid,
                    source_row,
                    messages,
                    characters,
                    answer,
                    self._subject_id(subject),
                    prompt,
                    body,
                )
                for rowid, (
                    source_row,
                    messages,
                    characters,
                    answer,
                    subject,
                    prompt,
                    body,
                ) in enumerate(prepared, first)
            ],
        )

    def _submit(self, executor, *call):
        """executor.submit, which may spawn its worker: Ctrl-C or SIGTERM in the middle of
        that would cut the worker's start-up data short and leave it printing a traceback, so
        they wait until the submit is done (the workers, which inherit the mask, die with
        SIGKILL)."""
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            return executor.submit(*call)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def _done_in_order(self, calls):
        """The results of `calls` (functions of no argument) in order: computed by the
        workers, each call given to the one with the least left to do, a few at a time so
        that memory stays bounded; or here when there are none."""
        if not self.lanes:
            yield from (call() for call in calls)
            return
        pending: deque[tuple[concurrent.futures.ProcessPoolExecutor, concurrent.futures.Future]]
        pending = deque()

        def unfinished(lane):
            return sum(not future.done() for other, future in pending if other is lane)

        for call in calls:
            lane = min(self.lanes, key=unfinished)
            pending.append((lane, self._submit(lane, call)))
            if len(pending) > 2 * len(self.lanes):
                yield pending.popleft()[1].result()
        for _, future in pending:
            yield future.result()

    def copy_split(self, split):
        """Copy a split of the previous file as it is stored there."""
        cursor = self.connection.execute("SELECT * FROM old.splits WHERE id = ?", (split.id,))
        columns = dict(zip((c[0] for c in cursor.description), cursor.fetchone(), strict=True))
        first, last = columns["first_example"], columns["first_example"] + columns["rows"] - 1
        self.connection.execute(
            "INSERT OR IGNORE INTO subjects (name) SELECT s.name FROM old.example_data e "
            "JOIN old.subjects s ON s.id = e.subject_id WHERE e.id BETWEEN ? AND ? ORDER BY e.id",
            (first, last),
        )
        self.connection.execute(
            "INSERT INTO example_data SELECT e.id - ? + ?, e.source_row, e.messages, e.characters, "
            "e.answer, (SELECT id FROM subjects WHERE name = s.name), e.prompt_hash, e.body "
            "FROM old.example_data e LEFT JOIN old.subjects s ON s.id = e.subject_id "
            "WHERE e.id BETWEEN ? AND ? ORDER BY e.id",
            (first, self.next_example, first, last),
        )
        provenance = Provenance(
            *(columns[k] for k in ("repo", "config", "source_split", "revision"))
        )
        summary = SplitSummary(columns["rows"], columns["stored_bytes"], columns["sha256"])
        self._add_split(
            columns["task"],
            columns["subset"],
            columns["split"],
            provenance,
            summary,
            columns["dictionary"],
        )
        return summary

    def write_file(self, name, content, provenance):
        """Store a whole file (e.g. a word list), compressed in one piece."""
        body = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True).compress(content)
        self.connection.execute(
            "INSERT INTO files VALUES (?,?,?,?,?,?)",
            (
                name,
                provenance.repo,
                provenance.revision,
                hashlib.sha256(content).hexdigest(),
                len(content),
                body,
            ),
        )
        return len(body)

    def copy_file(self, name):
        """Copy a stored file of the previous file as it is."""
        self.connection.execute("INSERT INTO files SELECT * FROM old.files WHERE name = ?", (name,))
        return self.connection.execute(
            "SELECT length(body) FROM files WHERE name = ?", (name,)
        ).fetchone()[0]

    def write_overlaps(self, overlaps):
        """Store the (eval_id, train_id, kind) rows of the `overlaps` table, given in any order,
        in (eval_id, train_id) order: they wait in a temporary table, on disk beyond SQLite's
        cache, until its sort gives them back in order, so none need be held in memory."""
        self.connection.execute(
            "CREATE TEMP TABLE found (eval_id INTEGER, train_id INTEGER, kind TEXT)"
        )
        self.connection.executemany("INSERT INTO temp.found VALUES (?,?,?)", overlaps)
        self.connection.execute(
            "INSERT INTO overlaps SELECT * FROM temp.found ORDER BY eval_id, train_id"
        )
        self.connection.execute("DROP TABLE temp.found")

    def commit(self):
        """Finish the file, flush it to disk, and rename it over `path` in one step, unless a
        signal asked this process to stop (see store.interrupt): then it raises Interrupted."""
        self.stop_pool()
        self.connection.execute(
            "INSERT INTO meta VALUES (?, ?)", (IDENTITY, contents_identity(self.connection))
        )
        self.connection.execute("COMMIT")
        self.connection.close()
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        interrupt.check()
        os.replace(self.tmp, self.path)
        _fsync_directory(self.path.parent)

    def abort(self):
        """Remove the temporary file; a second Ctrl-C or SIGTERM waits until it is gone."""
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for executor in (*self.lanes, self.hasher):
                if executor is not None:  # now, not once a worker is done with its row group
                    _kill(executor)
            self.stop_pool()
            self.connection.close()
            self.tmp.unlink(missing_ok=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def stop_pool(self):
        """End the worker processes: once every split is written, their memory is better
        spent on the overlaps pass."""
        for executor in (*self.lanes, self.hasher):
            if executor is not None:
                executor.shutdown(cancel_futures=True)
        self.lanes, self.hasher = [], None

    def _subject_id(self, name):
        if name is None:
            return None
        if name not in self.subjects:
            self.connection.execute("INSERT OR IGNORE INTO subjects (name) VALUES (?)", (name,))
            self.subjects[name] = self.connection.execute(
                "SELECT id FROM subjects WHERE name = ?", (name,)
            ).fetchone()[0]
        return self.subjects[name]

    def _add_split(self, task, subset, split, provenance, summary, dictionary):
        self.connection.execute(
            "INSERT INTO splits (task, subset, split, first_example, rows, repo, config, "
            "source_split, revision, sha256, stored_bytes, dictionary) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                task,
                subset,
                split,
                self.next_example,
                summary.rows,
                provenance.repo,
                provenance.config,
                provenance.source_split,
                provenance.revision,
                summary.sha256,
                summary.stored_bytes,
                dictionary,
            ),
        )
        self.next_example += summary.rows


def _die_with(parent):
    """Worker start-up: be killed when the compiling process dies, however it dies. A worker
    holds the write end of its own task pipe, so without this it would wait on it forever
    after a kill -9, and keep multiprocessing's resource tracker alive too. (Linux only.)"""
    keep_freed_memory()
    if sys.platform == "linux":
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the signal was asked for
        os._exit(1)


def keep_freed_memory():
    """Have glibc's malloc reuse the memory a batch freed for the next batch rather than hand
    it back to the kernel: each batch's pickles and tables are allocated and freed whole, so
    by default each is a fresh mapping whose every page faults in again. On 460K SmolTalk
    rows with 2 jobs that is 4.3M page faults, 12.5 s of system time and a split of 28 s; with
    this, 0.34M, 4.5 s and 24 s, at the same peak memory (a process keeps at most
    MALLOC_KEPT_BYTES of free memory: 128 MB gave no fewer faults than 32 MB)."""
    if libc := _glibc():
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_BYTES)
        libc.mallopt(M_TRIM_THRESHOLD, MALLOC_KEPT_BYTES)


def release_freed_memory():
    """Hand back to the kernel what this process has freed and keeps (see keep_freed_memory):
    after work that is done once, such as a split's first pass, rather than for each batch."""
    if libc := _glibc():
        libc.malloc_trim(0)


def _glibc():
    """The C library, when it is glibc (whose malloc the two above tune), else None."""
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(None)


def prepare(batch, to_examples, dictionary, level, hashed=True):
    """The rows of a batch as stored: for each example its source row, number of messages and
    characters, answer, subject, prompt hash and compressed body; and what the split's sha256
    covers of them, together (empty unless `hashed`). Runs in the worker processes."""
    compressor = _compressor(dictionary, level)
    rows, covered = [], []
    with _no_cycle_collection():
        examples = to_examples(batch)
    for example in examples:
        data = encode(example.conversation)
        if len(data) > MAX_BODY_BYTES:
            raise ValueError(
                f"a conversation of {len(data):,} bytes: the file holds conversations of "
                f"up to {MAX_BODY_BYTES:,} bytes"
            )
        messages = example.conversation["messages"]
        columns = [
            example.source_row,
            len(messages),
            sum(len(message_text(m)) for m in messages),
            example.answer,
            example.subject,
            prompt_hash(messages),
        ]
        if hashed:
            covered.append(hashed_row(data, columns))
        rows.append((*columns, compressor.compress(data)))
    return rows, b"".join(covered)


@contextlib.contextmanager
def _no_cycle_collection():
    """Python's cycle collector paused: normalising makes no reference cycles, but many
    objects, and the collector's passes over them take a tenth of that time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class SplitDigest:
    """The sha256 of a split, fed its prepared rows (see prepare) in task order."""

    def __init__(self, dictionary):
        self.decompressor, self.sha256 = body_decompressor(dictionary), hashlib.sha256()

    def add(self, prepared):
        for row in prepared:
            self.sha256.update(hashed_row(self.decompressor.decompress(row[-1]), list(row[:-1])))

    def hexdigest(self):
        return self.sha256.hexdigest()


class HasherDigest:
    """A SplitDigest kept in the hasher process, which `submit` runs calls in (in the order
    given: it is one process). `add` returns at once unless the hasher is HASHER_CHUNKS
    chunks behind, so that rows waiting to be hashed stay few."""

    def __init__(self, submit, dictionary):
        self.submit, self.pending = submit, deque([submit(_hasher_start, dictionary)])

    def add(self, prepared):
        self.pending.append(self.submit(_hasher_add, prepared))
        while len(self.pending) > HASHER_CHUNKS:
            self.pending.popleft().result()

    def hexdigest(self):
        for call in self.pending:
            call.result()
        return self.submit(_hasher_end).result()


_hashing: dict[str, SplitDigest] = {}  # in the hasher process: the split it is hashing


def _hasher_start(dictionary):
    _hashing["split"] = SplitDigest(dictionary)


def _hasher_add(prepared):
    _hashing["split"].add(prepared)


def _hasher_end():
    return _hashing.pop("split").hexdigest()


def _kill(executor):
    # ProcessPoolExecutor.kill_workers() from Python 3.14 on
    for process in list(executor._processes.values()):
        process.kill()


def _process():
    """An executor of one process, spawned: a fresh interpreter, nothing inherited from this
    process's threads or files."""
    return concurrent.futures.ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_die_with,
        initargs=(os.getpid(),),
    )


_compressors: dict[tuple[bytes | None, int], zstandard.ZstdCompressor] = {}


def _compressor(dictionary, level):
    """One compressor per dictionary and level in each process: building one costs more than
    compressing a chunk."""
    key = (dictionary, level)
    if key not in _compressors:
        _compressors.clear()  # the previous split's is done with
        release_freed_memory()  # as is what the split's first pass left in a worker
        _compressors[key] = body_compressor(dictionary, level)
    return _compressors[key]


class RowsByPosition:
    """Prepared rows (see prepare) stored out of task order until they are read in order: a
    private database in SQLite's own temporary file, which is deleted as soon as it is made
    (open, but with no name), so not even a killed compile leaves it behind. Its pages beyond
    SQLite's default cache (2 MB) are on disk, where SQLite keeps temporary files:
    $SQLITE_TMPDIR, else $TMPDIR, else /var/tmp or /tmp. Rows are appended as they come and
    read back through SQLite's external merge sort: on 460K SmolTalk-sized rows, a third of
    the time of inserting them into a table keyed by position (a random insert each), and as
    fast with a 2 MB cache as with 32 MB."""

    def __init__(self):
        self.connection = sqlite3.connect("", isolation_level=None)
        self.connection.execute(f"PRAGMA page_size={PAGE_SIZE}")
        self.connection.execute("PRAGMA journal_mode=OFF")
        self.connection.execute(
            "CREATE TABLE rows (position INTEGER, source_row, messages, characters, answer, "
            "subject, prompt_hash, body)"
        )
        self.connection.execute("BEGIN")
        self.cursor: sqlite3.Cursor | None = None

    def add(self, positions, prepared):
        self.connection.executemany(
            "INSERT INTO rows VALUES (?,?,?,?,?,?,?,?)",
            [(position, *row) for position, row in zip(positions, prepared, strict=True)],
        )

    def next_chunk(self):
        """The next CHUNK rows in task order, each led by its position ([] at the end)."""
        if self.cursor is None:
            self.cursor = self.connection.execute("SELECT * FROM rows ORDER BY position")
        return self.cursor.fetchmany(CHUNK)


_spills: dict[str, RowsByPosition] = {}  # in each worker: its rows of a split, by split name


def _spill(split, piece, compress):
    """Compress the batches of `piece` into this process's rows of `split`, dropping those of
    any other split (one that failed). Runs in the worker processes."""
    if split not in _spills:
        for other in list(_spills):
            _end_spill(other)
        _spills[split] = RowsByPosition()
    for batch in piece():
        prepared, _ = compress(batch)
        _spills[split].add(batch.positions, prepared)


def _spilled_chunk(split):
    """The next CHUNK of this process's rows of `split` in task order, each led by its
    position; at the end [], and they are deleted. Runs in the worker processes."""
    chunk = _spills[split].next_chunk() if split in _spills else []
    if not chunk:
        _end_spill(split)
    return chunk


def _end_spill(split):
    spill = _spills.pop(split, None)
    if spill is not None:
        spill.connection.close()


def _head(batches):
    """The first batches of `batches`, up to DICTIONARY_SAMPLES rows and one batch past them."""
    head, rows = [], 0
    while rows <= DICTIONARY_SAMPLES and (batch := next(batches, None)) is not None:
        head.append(batch)
        rows += len(batch)
    return head


def chunked(items, size=CHUNK):
    """`items` in lists of `size` (the last may be shorter): CHUNK examples are write_split's
    batches."""
    items = iter(items)
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _dictionary_samples(head, to_examples):
    """The encoded first rows, up to DICTIONARY_SAMPLES rows and DICTIONARY_SAMPLE_BYTES."""
    samples: list[bytes] = []
    size = 0
    for batch in head:
        for example in to_examples(batch):
            data = encode(example.conversation)
            if len(samples) == DICTIONARY_SAMPLES or size + len(data) > DICTIONARY_SAMPLE_BYTES:
                return samples
            samples.append(data)
            size += len(data)
    return samples


def train_dictionary(samples, large=False):
    """A dictionary (bytes) sized to the split, or None where one would not pay for itself. A
    split of more rows than it is trained on gets the largest; a smaller one, 1/40 of the
    samples (1/20 makes GSM8K's 3% bigger: the dictionary is stored too)."""
    sample_bytes = sum(len(s) for s in samples)
    size = MAX_DICTIONARY_BYTES if large else min(MAX_DICTIONARY_BYTES, sample_bytes // 40)
    if sample_bytes // 40 < 1024 or len(samples) < 16:
        return None
    try:
        # Fixed k and d rather than zstd's parameter search: as small, and several times faster;
        # accel=4 halves the time again for the same sizes (8 makes MMLU's 2% bigger).
        return zstandard.train_dictionary(
            size, samples, k=1024, d=8, accel=4, level=LEVEL
        ).as_bytes()
    except zstandard.ZstdError:
        return None  # too little or too uniform data to train on: plain zstd does as well


@contextlib.contextmanager
def exclusive(path, waiting=None):
    """Hold `<path>.lock` for the block: compiles to one file run one after the other, each
    reading the file the one before left. If another process holds it, `waiting()` is called
    once before waiting for it. Once it is held, no other compile of `path` is running, so any
    temporary file beside `path` is one a killed compile left, and is removed. The lock file
    is removed at the end: a process that locked it after it was removed finds that its lock
    is no longer the path's, and locks the new one."""
    lock = path.with_name(f"{path.name}.lock")
    while True:
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(descriptor, waiting)
            waiting = None
            if _same_file(descriptor, lock):
                break
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)
    try:
        for stale in path.parent.glob(f"{glob.escape(path.name)}{TEMPORARY}*"):
            stale.unlink(missing_ok=True)
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(descriptor)


def _lock(descriptor, waiting):
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if waiting is not None:
            waiting()
        fcntl.flock(descriptor, fcntl.LOCK_EX)


def _same_file(descriptor, path):
    try:
        return os.path.samestat(os.fstat(descriptor), os.stat(path))
    except FileNotFoundError:
        return False


def _fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
