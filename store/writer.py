"""Writes a nanotasks file: a fresh SQLite file beside the target, moved into place whole.

Splits are written in the order they are given, each compressed row by row with a zstd
dictionary trained on its own first rows. Nothing depends on wall-clock time or on how
the file came to be: the same splits in the same order give the same bytes, whether
compressed now or copied from an earlier file.
"""

import glob
import hashlib
import itertools
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import zstandard

from store import Provenance
from store.schema import APPLICATION_ID, SCHEMA, SCHEMA_VERSION, body_compressor
from store.text import message_text, normalise_text, prompt_of

LEVEL = 19  # compile once, read many times: spend the time on compression
DICTIONARY_SAMPLES = 20_000  # rows a dictionary is trained on: the first, already shuffled
MAX_DICTIONARY_BYTES = 196_608


@dataclass(frozen=True)
class SplitSummary:
    rows: int
    stored_bytes: int
    sha256: str


def encode(conversation):
    """The canonical bytes of a conversation: these are hashed and compressed."""
    return json.dumps(conversation, ensure_ascii=False, separators=(",", ":")).encode()


def prompt_hash(messages):
    """47 bits of the normalised first user message: SQLite stores it in 6 bytes."""
    digest = hashlib.blake2b(normalise_text(prompt_of(messages)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 17


class Writer:
    """Builds a new file at `<path>.tmp-<pid>`; `commit()` renames it over `path`.

    As a context manager, an error (or Ctrl-C) before commit removes the temporary file and
    leaves whatever was at `path` untouched.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        self.tmp.unlink(missing_ok=True)
        _remove_stale(self.path)
        self.db = sqlite3.connect(f"file:{quote(str(self.tmp.resolve()))}", uri=True,
                                  isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=MEMORY")  # rollback of a failed split, no side file
            self.db.execute("PRAGMA synchronous=OFF")  # one fsync before the rename is enough
            self.db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self.db.executescript(SCHEMA)
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
        head = list(itertools.islice(examples, DICTIONARY_SAMPLES))
        encoded_head = [encode(example.conversation) for example in head]
        dictionary = train_dictionary(encoded_head)
        compressor = body_compressor(dictionary, LEVEL)
        digest = hashlib.sha256()
        stored_bytes = len(dictionary or b"")
        first = self.next_example
        rows = []
        self.db.execute("SAVEPOINT split")
        try:
            for example, data in _encoded(head, encoded_head, examples):
                digest.update(len(data).to_bytes(8, "little") + data)
                body = compressor.compress(data)
                stored_bytes += len(body)
                rows.append(self._row(first + len(rows), example, body))
            self.db.executemany("INSERT INTO example_data VALUES (?,?,?,?,?,?,?,?)", rows)
            summary = SplitSummary(len(rows), stored_bytes, digest.hexdigest())
            self._add_split(task, subset, split, provenance, summary, dictionary)
        except BaseException:
            if self.db.in_transaction:  # a failed write to disk ends the whole transaction itself
                self.db.execute("ROLLBACK TO split")
                self.db.execute("RELEASE split")
            raise
        self.db.execute("RELEASE split")
        return summary

    def copy_split(self, source, split):
        """Copy a split as it is stored in another nanotasks file (a `store.reader.Store`)."""
        row = source.db.execute("SELECT * FROM splits WHERE id = ?", (split.id,)).fetchone()
        columns = dict(zip((c[0] for c in source.db.execute("SELECT * FROM splits").description), row))
        self.db.execute("COMMIT")  # ATTACH and DETACH are refused inside a transaction
        self.db.execute("ATTACH ? AS old", (f"file:{quote(str(source.path.resolve()))}?mode=ro&immutable=1",))
        self.db.execute("BEGIN")
        try:
            last = columns["first_example"] + columns["rows"] - 1
            self.db.execute(
                "INSERT OR IGNORE INTO subjects (name) SELECT s.name FROM old.example_data e "
                "JOIN old.subjects s ON s.id = e.subject_id WHERE e.id BETWEEN ? AND ? ORDER BY e.id",
                (columns["first_example"], last))
            self.db.execute(
                "INSERT INTO example_data SELECT e.id - ? + ?, e.source_row, e.messages, e.characters, "
                "e.answer, (SELECT id FROM subjects WHERE name = s.name), e.prompt_hash, e.body "
                "FROM old.example_data e LEFT JOIN old.subjects s ON s.id = e.subject_id "
                "WHERE e.id BETWEEN ? AND ? ORDER BY e.id",
                (columns["first_example"], self.next_example, columns["first_example"], last))
        finally:
            self.db.execute("COMMIT")
            self.db.execute("DETACH old")
            self.db.execute("BEGIN")
        provenance = {k: columns[k] for k in ("repo", "config", "source_split", "revision")}
        summary = SplitSummary(columns["rows"], columns["stored_bytes"], columns["sha256"])
        self._add_split(columns["task"], columns["subset"], columns["split"],
                        Provenance(**provenance), summary, columns["dictionary"])
        return summary

    def write_file(self, name, content, provenance):
        """Store a whole file (e.g. a word list), compressed in one piece."""
        body = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True).compress(content)
        self.db.execute("INSERT INTO files VALUES (?,?,?,?,?,?)",
                        (name, provenance.repo, provenance.revision,
                         hashlib.sha256(content).hexdigest(), len(content), body))
        return len(body)

    def copy_file(self, source, name):
        """Copy a stored file as it is from another nanotasks file."""
        row = source.db.execute("SELECT * FROM files WHERE name = ?", (name,)).fetchone()
        self.db.execute("INSERT INTO files VALUES (?,?,?,?,?,?)", row)
        return len(row[-1])

    def write_overlaps(self, overlaps):
        """Store the (eval_id, train_id, kind) rows of the `overlaps` table, in order."""
        self.db.executemany("INSERT INTO overlaps VALUES (?,?,?)", overlaps)

    def commit(self):
        """Finish the file, flush it to disk, and rename it over `path` in one step."""
        self.db.execute("COMMIT")
        self.db.close()
        with open(self.tmp, "rb+") as f:
            _reset_change_counter(f)
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)
        _fsync_directory(self.path.parent)

    def abort(self):
        self.db.close()
        self.tmp.unlink(missing_ok=True)

    def _row(self, rowid, example, body):
        messages = example.conversation["messages"]
        return (rowid, example.source_row, len(messages), sum(len(message_text(m)) for m in messages),
                example.answer, self._subject_id(example.subject), prompt_hash(messages), body)

    def _subject_id(self, name):
        if name is None:
            return None
        self.db.execute("INSERT OR IGNORE INTO subjects (name) VALUES (?)", (name,))
        return self.db.execute("SELECT id FROM subjects WHERE name = ?", (name,)).fetchone()[0]

    def _add_split(self, task, subset, split, provenance, summary, dictionary):
        self.db.execute(
            "INSERT INTO splits (task, subset, split, first_example, rows, repo, config, source_split, "
            "revision, sha256, stored_bytes, dictionary) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (task, subset, split, self.next_example, summary.rows, provenance.repo, provenance.config,
             provenance.source_split, provenance.revision, summary.sha256, summary.stored_bytes,
             dictionary))
        self.next_example += summary.rows


def _encoded(head, encoded_head, rest):
    yield from zip(head, encoded_head)
    for example in rest:
        yield example, encode(example.conversation)


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


def _reset_change_counter(f):
    """SQLite counts the transactions a file has seen in its header (offsets 24 and 92, kept
    equal), and each split copied from an earlier file takes one more: fix the count, so that
    the content alone decides the bytes."""
    for offset in (24, 92):
        f.seek(offset)
        f.write((1).to_bytes(4, "big"))


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
