"""Reads a nanotasks file: read-only, one indexed lookup and one decompression per example.

A `Store` is cheap to construct and safe to pickle: the SQLite connection is opened
lazily, once per process, so DataLoader workers (fork or spawn) never share one.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sqlite3
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar
from urllib.parse import quote

import orjson
import zstandard

from nanotasks.store import default_path
from nanotasks.store.schema import (
    APPLICATION_ID,
    EVAL_SPLITS,
    IDENTITY,
    MAX_BODY_BYTES,
    SCHEMA,
    SCHEMA_VERSION,
    body_decompressor,
)

SQLITE_MAGIC = b"SQLite format 3\x00"
# The largest string or BLOB SQLite may build on a connection to a nanotasks file (its
# SQLITE_LIMIT_LENGTH): room for the largest conversation and what SQL's JSON and text
# functions make of it. SQLite refuses a larger value before allocating it, so a single call
# (zeroblob(999999999)) cannot take the memory that a time limit, checked only between two
# steps of a query, would not stop.
MAX_VALUE_BYTES = 4 * MAX_BODY_BYTES
# SQLite reads pages through a memory map of the file rather than a read() per page: a
# lookup makes no system call. The mapped pages are the page cache every process reading
# the file shares, not memory the process allocates (see benchmarks/README.md). SQLite caps
# the size at its compile-time limit (2 GB in common builds) and reads the rest of the file
# as before.
MMAP_BYTES = 1 << 40
BODY = "SELECT body FROM example_data WHERE id = ?"
BODIES = "SELECT id, body FROM example_data WHERE id IN "
BATCH_ROWS = 500  # bound variables per query: under SQLite's limit before 3.32 (999)
# A conversation as stored: {"messages": [{"role": ..., "content": ...}, ...], ...}.
Conversation = dict[str, Any]
StrPath = str | os.PathLike[str]  # a file's path: what a Store, a Task's db= take
P = ParamSpec("P")
R = TypeVar("R")


class StoreError(Exception):
    """A problem with the file itself: missing, damaged, or lacking what was asked for."""


class FormatVersionError(StoreError):
    """A nanotasks file written in another format version, or with another schema: nothing of
    it is read, and a full compile replaces it. `reason` is what is wrong, without the advice
    to recompile (which a compile that was refused cannot follow)."""

    def __init__(self, message, reason=None):
        super().__init__(message)
        self.reason = reason or message


class StoreNotFound(StoreError, FileNotFoundError):
    """No file at the path: also a FileNotFoundError, like any other missing file."""


class FileDamaged(StoreError):
    """The file is cut short, or its contents fail SQLite's or zstd's checks."""


class FileReplaced(StoreError):
    """The file at a Store's path is not the one the Store was opened on: another compile
    replaced it since, and the splits read from the first (a Task's) would find other rows."""


class NotInStore(StoreError, LookupError):
    """The file has no such split or stored file."""


def not_in_store(path: StrPath, what: str, options: str = "", end: str = ".") -> NotInStore:
    """NotInStore saying that the file at `path` has no `what`, and the compile (with
    `options`) that adds it."""
    command = (
        f"nanotasks compile {options} --db {path}" if options else f"nanotasks compile --db {path}"
    )
    return NotInStore(f"{path} has no {what}. Add it with `{command}`{end}")


class Split(NamedTuple):
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
        raise StoreNotFound(_not_found(path))
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except OSError as error:
        raise StoreError(f"{path}: cannot be read: {error.strerror}.") from None
    if 0 < len(header) < 100 and SQLITE_MAGIC.startswith(header[:16]):  # cut inside the header
        raise FileDamaged(_cut_short(path, f"only {size} bytes"))
    if header[:16] != SQLITE_MAGIC:
        empty = " It is empty: if it was copied, copy it again." if not header else ""
        raise StoreError(
            f"{path}: not a nanotasks file (not SQLite). Check --db (or $NANOTASKS_DB): "
            f"compile does not overwrite files it did not write.{empty}"
        )
    application_id = int.from_bytes(header[68:72], "big")
    if application_id != APPLICATION_ID:
        raise StoreError(
            f"{path}: an SQLite file, but not one nanotasks wrote. Check --db (or "
            f"$NANOTASKS_DB): compile does not overwrite files it did not write."
        )
    version = int.from_bytes(header[60:64], "big")
    if version != SCHEMA_VERSION:
        reason = (
            f"{path}: written in nanotasks file format {version}; "
            f"this nanotasks reads format {SCHEMA_VERSION}."
        )
        raise FormatVersionError(
            f"{reason} Recompile it with this version: `nanotasks compile --db {path}`.", reason
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    expected = page_size * int.from_bytes(header[28:32], "big")
    if size != expected:
        raise FileDamaged(_cut_short(path, f"{size} bytes, but its header says {expected}"))


def _not_found(path):
    """What to do about a missing file. The compile makes no directory but the default one's,
    so for a path in a missing directory it is advice only once the directory is there."""
    build = (
        f"`nanotasks compile --db {path}` (add `--mirror DIR` to read local snapshots instead "
        f"of the hub)"
    )
    if not path.parent.is_dir() and path != default_path():
        build = (
            f"create the directory {path.parent} first, or choose a path in one that exists, "
            f"then {build}"
        )
    return (
        f"{path}: no such file. If you have the file elsewhere, point --db (db= in Python) or "
        f"$NANOTASKS_DB at it; to build it, {build}."
    )


def _cut_short(path, what):
    return (
        f"{path}: damaged: {what}. It was probably cut short while copying: copy it again."
        f"{verify_advice(path)}"
    )


def verify_advice(path):
    """How a reader's damage message ends; `nanotasks verify` leaves it out of its own report."""
    return f" Then check it with `nanotasks verify --db {path}`."


def _damage_reported(
    method: Callable[Concatenate[Store, P], R],
) -> Callable[Concatenate[Store, P], R]:
    """SQLite's own errors on reading (a damaged page, a table missing) become a StoreError
    that names the file and the fix. The method's signature stays as it is, for type checkers."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as error:
            raise _damaged(self.path, error) from None

    return wrapper


def _damaged(path, error):
    return FileDamaged(
        f"{path}: damaged: SQLite says: {error}. Copy it again.{verify_advice(path)}"
    )


def connect(path):
    """A read-only connection to the nanotasks file at `path`, once its schema is exactly the one
    this version writes and its `splits` rows are sane. A file is data, never code: a view or
    trigger of a crafted file could otherwise run any SQL (an endless recursive CTE) as soon
    as a table of ours is read, and a split row pointing past its own rows would serve
    another split's. Both checks read a few small rows, whatever the file's size."""
    # immutable=1: no locks, no journal, no side files; the file is only ever replaced whole
    # by a rename, never changed in place, so this is safe on read-only and network mounts.
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro&immutable=1"
    connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
    bound_values(connection)
    try:
        connection.execute("PRAGMA trusted_schema=OFF")  # no functions with side effects in views
        check_schema(connection, path)
        check_splits(connection, path)
    except sqlite3.DatabaseError as error:
        connection.close()
        raise _damaged(path, error) from None
    except StoreError:
        connection.close()
        raise
    return connection


def bound_values(connection):
    """No string or BLOB on `connection` larger than MAX_VALUE_BYTES: a query that would build
    one fails with SQLite's "string or blob too big" (sqlite3.DataError)."""
    connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)


# Every object of the schema, its SQL as bytes: a name or statement that is not UTF-8 is just
# another difference rather than a decoding error.
SCHEMA_QUERY = (
    "SELECT CAST(type AS BLOB), CAST(name AS BLOB), CAST(tbl_name AS BLOB), rootpage, "
    "CAST(sql AS BLOB) FROM sqlite_master ORDER BY rowid"
)


@functools.cache
def expected_schema():
    """sqlite_master as this version's writer leaves it: SCHEMA run on an empty database."""
    connection = sqlite3.connect(":memory:")
    connection.executescript(SCHEMA)
    objects = connection.execute(SCHEMA_QUERY).fetchall()
    connection.close()
    return objects


def check_schema(connection, path):
    """FormatVersionError unless sqlite_master of the connection's file is exactly
    expected_schema()."""
    objects = [
        tuple(row) for row in connection.execute(SCHEMA_QUERY)
    ]  # Datasette's are sqlite3.Row
    if objects != expected_schema():
        expected = {row[1]: row for row in expected_schema()}
        differ = [row[1] for row in objects if expected.get(row[1]) != row]
        differ += [name for name in expected if name not in {row[1] for row in objects}]
        name = differ[0].decode(errors="replace") if differ else "the order of objects"
        reason = (
            f"{path}: not a nanotasks file of this version: its schema is not the one nanotasks "
            f"format {SCHEMA_VERSION} writes ({name!r} differs), so none of it is read."
        )
        raise FormatVersionError(
            f"{reason} Recompile it: `nanotasks compile --db {path}`, or copy it again "
            f"from a file nanotasks wrote.",
            reason,
        )


def check_splits(connection, path):
    """FileDamaged unless the splits' rows are disjoint ranges of rowids from 1 within
    example_data, and their dictionaries blobs or NULL: what reading an example relies on.
    (Store.splits checks the other columns, for those who show them.) Neither values nor
    dictionaries are read beyond that, so this costs the same whatever the file holds."""
    (last,) = connection.execute("SELECT max(id) FROM example_data").fetchone()
    end = 0  # the last rowid of the splits so far
    for split_id, first, rows, dictionary in connection.execute(
        "SELECT id, first_example, rows, typeof(dictionary) FROM splits ORDER BY first_example"
    ):
        wrong = [
            f"{name} is {type(value).__name__}"
            for name, value in (("id", split_id), ("first_example", first), ("rows", rows))
            if type(value) is not int
        ]
        problem = (
            wrong[0]
            if wrong
            else f"dictionary is {dictionary}"
            if dictionary not in ("blob", "null")
            else f"its rows start at rowid {first}, not after rowid {end}"
            if first <= end
            else f"it has {rows} rows"
            if rows < 0
            else f"its rows end at rowid {first + rows - 1}, after the last row of example_data "
            f"({last})"
            if first + rows - 1 > (last or 0)
            else None
        )
        if problem:
            raise FileDamaged(
                f"{path}: damaged: row {split_id!r} of its splits table is not sane "
                f"({problem}). Copy it again, or check it with "
                f"`nanotasks verify --db {path}`."
            )
        end = first + rows - 1


# column -> the Python types its value may have, as Store.splits and Store.files return them
SPLIT_COLUMNS = {
    "id": int,
    "task": str,
    "subset": str,
    "split": str,
    "first_example": int,
    "rows": int,
    "repo": (str, type(None)),
    "config": (str, type(None)),
    "source_split": (str, type(None)),
    "revision": (str, type(None)),
    "sha256": str,
    "stored_bytes": int,
    "dictionary": (bytes, type(None)),
}
FILE_COLUMNS = {
    "name": str,
    "repo": (str, type(None)),
    "revision": (str, type(None)),
    "sha256": str,
    "size": int,
    "stored_bytes": int,
}


class Store:
    """A compiled file, read-only: its splits, their conversations and its stored files."""

    def __init__(self, path: StrPath) -> None:
        self.path = Path(path)
        check_header(self.path)
        self._connection: sqlite3.Connection | None = None
        self._decompressors: dict[int, zstandard.ZstdDecompressor] = {}
        # the file's contents_identity, read at the first connection
        self.identity: str | None = None
        _stores.add(self)
        self._connect()  # connecting checks the schema and splits: a bad file fails here

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_connection": None, "identity": self.identity}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        _stores.add(self)

    @property
    def connection(self) -> sqlite3.Connection:
        """The read-only SQLite connection to the file, this process's own."""
        return self._connection or self._connect()

    def _connect(self) -> sqlite3.Connection:
        """The connection, opened on first use in each process: a forked child forgets its
        parent's (see _forget_connections), a pickled Store carries none."""
        connection = connect(self.path)  # checked: see connect
        identity = self._identity_of(connection)
        if self.identity not in (None, identity):
            connection.close()
            raise FileReplaced(
                f"{self.path} was replaced by another compile since the Task reading it was "
                f"built: its splits are not where the Task would look. Build the Task again "
                f"(or restart the job) to read the new file."
            )
        self.identity = identity
        connection.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        self._decompressors = {}
        self._connection = connection
        return connection

    def _identity_of(self, connection: sqlite3.Connection) -> str:
        """The identity the file records; "" for a file written before there was one."""
        try:
            row = connection.execute("SELECT value FROM meta WHERE key = ?", (IDENTITY,)).fetchone()
        except sqlite3.DatabaseError as error:
            connection.close()
            raise _damaged(self.path, error) from None
        return row[0] if row else ""

    @_damage_reported
    def splits(self) -> list[dict[str, Any]]:
        """Every split in the file with its provenance, as dicts, in file order."""
        cursor = self.connection.execute(
            f"SELECT {', '.join(SPLIT_COLUMNS)} FROM splits ORDER BY id"
        )
        return self._checked(
            [dict(zip(SPLIT_COLUMNS, row, strict=True)) for row in cursor], SPLIT_COLUMNS, "splits"
        )

    @_damage_reported
    def files(self) -> list[dict[str, Any]]:
        """Every stored file, without its content."""
        cursor = self.connection.execute(
            "SELECT name, repo, revision, sha256, size, length(body) AS stored_bytes "
            "FROM files ORDER BY name"
        )
        return self._checked(
            [dict(zip(FILE_COLUMNS, row, strict=True)) for row in cursor], FILE_COLUMNS, "files"
        )

    def _checked(self, rows, columns, table):
        """`rows` (dicts), once each value is of its column's type."""
        for row in rows:
            wrong = [k for k, v in row.items() if not isinstance(v, columns[k])]
            if wrong:
                raise FileDamaged(
                    f"{self.path}: damaged: in its {table} table, {wrong[0]} is "
                    f"{type(row[wrong[0]]).__name__} in row {tuple(row.values())[0]!r}. "
                    f"Copy it again, or check it with `nanotasks verify --db {self.path}`."
                )
        return rows

    @_damage_reported
    def split(self, task: str, subset: str, split: str) -> Split:
        row = self.connection.execute(
            "SELECT id, task, subset, split, first_example, rows, dictionary FROM splits "
            "WHERE task = ? AND subset = ? AND split = ?",
            (task, subset, split),
        ).fetchone()
        if row is None:
            raise not_in_store(self.path, f"{task} {subset}/{split}", f"--only {task}")
        return Split(*row)

    def read(self, split: Split, position: int) -> Conversation:
        """The conversation at `position` of `split` (0 <= position < split.rows).

        The hot path of training, so written out flat: one lookup by rowid (the statement is
        prepared once, in the connection's statement cache), one decompression, one parse."""
        if not 0 <= position < split.rows:
            raise self._out_of_range(split, position)
        try:
            row = (
                (self._connection or self._connect())
                .execute(BODY, (split.first_example + position,))
                .fetchone()
            )
        except sqlite3.DatabaseError as error:
            raise _damaged(self.path, error) from None
        return self._decoded(split, position, row and row[0])

    def read_many(self, split: Split, positions: Sequence[int]) -> list[Conversation]:
        """The conversations at `positions` of `split`, in that order (a DataLoader's batch):
        one query per BATCH_ROWS of them rather than one each, which halves what finding
        the rows costs."""
        for position in positions:
            if not 0 <= position < split.rows:
                raise self._out_of_range(split, position)
        connection = self._connection or self._connect()
        ids = list(dict.fromkeys(split.first_example + p for p in positions))
        bodies: dict[int, bytes] = {}
        try:
            for start in range(0, len(ids), BATCH_ROWS):
                batch = ids[start : start + BATCH_ROWS]
                bodies.update(connection.execute(f"{BODIES}({','.join('?' * len(batch))})", batch))
        except sqlite3.DatabaseError as error:
            raise _damaged(self.path, error) from None
        return [self._decoded(split, p, bodies.get(split.first_example + p)) for p in positions]

    def _out_of_range(self, split, position):
        return IndexError(
            f"{split.task} {split.subset}/{split.split} has {split.rows} examples, "
            f"no index {position}"
        )

    def _decoded(self, split, position, body):
        """The conversation in a stored body; FileDamaged if it is missing or fails a check."""
        try:
            decompressor = self._decompressors.get(split.id) or self._decompressor(split)
            return loads(decompress_body(decompressor, body))
        except (
            zstandard.ZstdError,
            TypeError,
            ValueError,
            IndexError,
        ) as error:  # IndexError: an empty body
            problem = "missing" if body is None else f"damaged ({error})"
            raise FileDamaged(
                f"{self.path}: example {position} of {split.task} "
                f"{split.subset}/{split.split} is {problem}. Copy the file "
                f"again.{verify_advice(self.path)}"
            ) from None

    @_damage_reported
    def read_file(self, name: str) -> bytes:
        """The content of a stored file, e.g. a word list."""
        row = self.connection.execute("SELECT body FROM files WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise not_in_store(self.path, f"file {name!r}")
        try:
            return zstandard.ZstdDecompressor().decompress(row[0])
        except (zstandard.ZstdError, TypeError) as error:
            raise FileDamaged(
                f"{self.path}: stored file {name!r} is damaged ({error}). Copy the file "
                f"again.{verify_advice(self.path)}"
            ) from None

    @_damage_reported
    def overlap_summary(self) -> list[dict[str, Any]]:
        """For each evaluation split (validation, dev, test): its examples, how many of them are
        in any training split, and per training split how many exactly ('exact': the same
        normalised prompt, else 'ngram': a shared 13-word run), from the `overlaps` table."""
        pairs = self.connection.execute(
            "SELECT o.eval_id, e.id, t.id, MIN(o.kind) FROM overlaps o "
            "JOIN splits e ON o.eval_id BETWEEN e.first_example AND e.first_example + e.rows - 1 "
            "JOIN splits t ON o.train_id BETWEEN t.first_example AND t.first_example + t.rows - 1 "
            "GROUP BY o.eval_id, t.id ORDER BY t.id"
        ).fetchall()
        splits = {s["id"]: s for s in self.splits()}
        summary = {
            split_id: {
                "task": s["task"],
                "subset": s["subset"],
                "split": s["split"],
                "examples": s["rows"],
                "overlapping": set(),
                "found_in": {},
            }
            for split_id, s in splits.items()
            if s["split"] in EVAL_SPLITS
        }
        for eval_id, eval_split, train_split, kind in pairs:
            if eval_split not in summary or kind not in ("exact", "ngram"):
                raise FileDamaged(
                    f"{self.path}: damaged: its overlaps table pairs example {eval_id!r} "
                    f"as {kind!r}. Check it with `nanotasks verify --db {self.path}`."
                )
            summary[eval_split]["overlapping"].add(eval_id)
            t = splits[train_split]
            found = summary[eval_split]["found_in"].setdefault(
                train_split,
                {
                    "task": t["task"],
                    "subset": t["subset"],
                    "split": t["split"],
                    "exact": 0,
                    "ngram": 0,
                },
            )
            found[kind] += 1
        return [
            {
                **item,
                "overlapping": len(item["overlapping"]),
                "found_in": list(item["found_in"].values()),
            }
            for item in summary.values()
        ]

    def _decompressor(self, split):
        decompressor = self._decompressors[split.id] = body_decompressor(split.dictionary)
        return decompressor


# Every Store of this process, so that a forked child (a DataLoader worker) drops the
# connections it inherited before it reads: SQLite connections must not cross a fork.
_stores: weakref.WeakSet[Store] = weakref.WeakSet()


def _forget_connections():
    """In a forked child of a process that reads a file. Besides the connections, the child
    puts the objects it inherited out of the garbage collector's reach (gc.freeze): otherwise
    each full collection writes to every one of them, which copies every page of the parent's
    heap the child shares. A DataLoader worker takes ~10K page faults per 19K examples without
    the freeze, and 1.2K with it (as many as under spawn)."""
    if _stores:
        for store in _stores:
            store._connection = None
        gc.freeze()


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_forget_connections)


def decompress_body(decompressor, body):
    """One example's JSON bytes. zstd checks the frame's checksum; the size in its header is
    checked first, so a damaged header is an error rather than a huge allocation. The first
    byte says how many bytes hold the size: with 0 to 2 (flag < 2) it is under 64 KB, and
    only a 4- or 8-byte size needs reading."""
    if body[0] >= 0x80:
        size = zstandard.get_frame_parameters(
            body, format=zstandard.FORMAT_ZSTD1_MAGICLESS
        ).content_size
        if size > MAX_BODY_BYTES:
            raise ValueError(f"its frame header claims {size} bytes")
    return decompressor.decompress(body)


def loads(data):
    """JSON bytes as Python objects. orjson parses a conversation in half the time json does;
    the few documents it refuses that json takes (NaN, integers past 64 bits, which the
    writer's encoder allows) go to json."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
