"""Reads a nanotasks file: read-only, one indexed lookup and one decompression per example.

A `Store` is cheap to construct and safe to pickle: the SQLite connection is opened
lazily, once per process, so DataLoader workers (fork or spawn) never share one.
"""

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import zstandard

from store.schema import APPLICATION_ID, SCHEMA_VERSION, body_decompressor

SQLITE_MAGIC = b"SQLite format 3\x00"


class StoreError(Exception):
    """A problem with the file itself: missing, damaged, or lacking what was asked for."""


@dataclass(frozen=True)
class Split:
    id: int
    task: str
    subset: str
    split: str
    first_example: int
    rows: int
    dictionary: bytes | None


def check_header(path):
    """The cheap checks, from the first 100 bytes: is this a whole nanotasks file of our version?"""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file. Build it with `nanotasks compile --db {path}`.")
    with open(path, "rb") as f:
        header = f.read(100)
        size = os.fstat(f.fileno()).st_size
    if len(header) < 100 or header[:16] != SQLITE_MAGIC:
        raise StoreError(f"{path}: not a nanotasks file (not SQLite). Check the path, or rebuild it "
                         f"with `nanotasks compile --db {path}`.")
    application_id = int.from_bytes(header[68:72], "big")
    if application_id != APPLICATION_ID:
        raise StoreError(f"{path}: an SQLite file, but not one nanotasks wrote. Check the path, "
                         f"or rebuild it with `nanotasks compile --db {path}`.")
    version = int.from_bytes(header[60:64], "big")
    if version != SCHEMA_VERSION:
        raise StoreError(f"{path}: written in nanotasks file format {version}; this nanotasks reads "
                         f"format {SCHEMA_VERSION}. Recompile it with this version: "
                         f"`nanotasks compile --db {path}`.")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    expected = page_size * int.from_bytes(header[28:32], "big")
    if size != expected:
        raise StoreError(f"{path}: damaged: {size} bytes, but its header says {expected}. It was "
                         f"probably cut short while copying: copy it again, then check it with "
                         f"`nanotasks verify --db {path}`.")


class Store:
    def __init__(self, path):
        self.path = Path(path)
        check_header(self.path)
        self._pid = None

    def __getstate__(self):
        return {"path": self.path, "_pid": None}

    @property
    def db(self):
        if self._pid != os.getpid():
            # immutable=1: no locks, no journal, no side files; the file is only ever replaced
            # whole by a rename, never changed in place, so this is safe on read-only and
            # network mounts.
            uri = f"file:{quote(str(self.path.resolve()))}?mode=ro&immutable=1"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._decompressors = {}
            self._pid = os.getpid()
        return self._db

    def splits(self):
        """Every split in the file with its provenance, as dicts, in file order."""
        cursor = self.db.execute("SELECT * FROM splits ORDER BY id")  # dictionary included
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def files(self):
        """Every stored file, without its content."""
        cursor = self.db.execute("SELECT name, repo, revision, sha256, size, length(body) AS stored_bytes "
                                 "FROM files ORDER BY name")
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def split(self, task, subset, split):
        row = self.db.execute(
            "SELECT id, task, subset, split, first_example, rows, dictionary FROM splits "
            "WHERE task = ? AND subset = ? AND split = ?", (task, subset, split)).fetchone()
        if row is None:
            raise StoreError(f"{self.path} has no {task} {subset}/{split}. Add it with "
                             f"`nanotasks compile --only {task} --db {self.path}`.")
        return Split(*row)

    def read(self, split, position):
        """The conversation at `position` of `split` (0 <= position < split.rows)."""
        if not 0 <= position < split.rows:
            raise IndexError(f"{split.task} {split.subset}/{split.split} has {split.rows} examples, "
                             f"no index {position}")
        row = self.db.execute("SELECT body FROM example_data WHERE id = ?",
                              (split.first_example + position,)).fetchone()
        try:
            return json.loads(self._decompressor(split).decompress(row[0]))
        except (zstandard.ZstdError, TypeError, ValueError) as error:
            raise StoreError(f"{self.path}: example {position} of {split.task} "
                             f"{split.subset}/{split.split} is damaged ({error}). Copy the file "
                             f"again, or check it with `nanotasks verify --db {self.path}`.") from None

    def read_file(self, name):
        """The content of a stored file, e.g. a word list."""
        row = self.db.execute("SELECT body FROM files WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path} has no file {name!r}. Add it with "
                             f"`nanotasks compile --db {self.path}`.")
        return zstandard.ZstdDecompressor().decompress(row[0])

    def _decompressor(self, split):
        decompressor = self._decompressors.get(split.id)
        if decompressor is None:
            decompressor = self._decompressors[split.id] = body_decompressor(split.dictionary)
        return decompressor
