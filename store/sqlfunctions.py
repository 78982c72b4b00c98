"""SQL functions that read an example's content, the same in `nanotasks sql`, sqlite-utils
and Datasette (whose plugins, in store/plugins.py, call `register`):

    conversation(id)        the conversation as JSON text: json_extract and json_each work on it
    conversation_text(id)   its messages' texts joined by newlines: for LIKE, instr, length

`id` is `example_data.id`, the `id` column of the `examples` view. The function finds the
example's split by rowid range and decompresses the body with that split's dictionary, so
nobody passes a dictionary. Both return NULL for an id that is no example, and fail for an
id that is no integer.
"""

import bisect
import contextlib
import json
import sqlite3
import time

import zstandard

from nanotasks.store.reader import (
    MAX_BODY_BYTES,
    MAX_VALUE_BYTES,
    FileDamaged,
    StoreError,
    check_header,
    check_schema,
    check_splits,
    connect,
    decompress_body,
)
from nanotasks.store.schema import body_decompressor
from nanotasks.store.text import message_text

TIMEOUT = 60  # seconds a query of `nanotasks sql` may run unless told
# SQLite's memory in the process, where `running` keeps its sorts and temporary tables: a
# query needing more fails rather than filling the disk with a temporary file.
MEMORY_LIMIT = 1 << 30
STEPS = 10_000  # SQLite instructions between checks of the time limit and of Ctrl-C

# What a read may do, by sqlite3 authorizer action: everything else (INSERT, CREATE, ATTACH,
# BEGIN, a PRAGMA that sets something, ...) is refused before it runs.
READS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
}
PRAGMAS_WITH_ARGUMENT = {
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
}
SCHEMA_TABLES = {"sqlite_master", "sqlite_temp_master"}  # checked when a pragma table is first read
ACTIONS = {
    getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ")
    for name in (
        "CREATE_INDEX CREATE_TABLE CREATE_TEMP_INDEX CREATE_TEMP_TABLE CREATE_TEMP_TRIGGER "
        "CREATE_TEMP_VIEW CREATE_TRIGGER CREATE_VIEW DELETE DROP_INDEX DROP_TABLE DROP_TEMP_INDEX "
        "DROP_TEMP_TABLE DROP_TEMP_TRIGGER DROP_TEMP_VIEW DROP_TRIGGER DROP_VIEW INSERT PRAGMA "
        "TRANSACTION UPDATE ATTACH DETACH ALTER_TABLE REINDEX ANALYZE CREATE_VTABLE DROP_VTABLE "
        "SAVEPOINT"
    ).split()
}


class WriteRefused(Exception):
    """A query given as read-only would change something."""


class QueryFailed(Exception):
    """A query stopped by a limit: time, memory, or a damaged example. The message says which."""


def refuse_writes(connection):
    """Let only reading statements run on `connection`: anything else is refused before it runs,
    and named in the returned list."""
    refused = []

    def authorize(action, arg1, arg2, database, trigger):
        if (
            action in READS
            or (action == sqlite3.SQLITE_UPDATE and arg1 in SCHEMA_TABLES)
            or (action == sqlite3.SQLITE_PRAGMA and (arg2 is None or arg1 in PRAGMAS_WITH_ARGUMENT))
        ):
            return sqlite3.SQLITE_OK
        refused.append(" ".join(filter(None, [ACTIONS.get(action, str(action)), arg1])))
        return sqlite3.SQLITE_DENY

    connection.set_authorizer(authorize)
    return refused


@contextlib.contextmanager
def running(path, sql, timeout=TIMEOUT):
    """Run one read-only statement on the nanotasks file at `path` (its schema and splits checked,
    as every open does), with the functions: yields (column names, cursor), rows to be fetched
    as they come. It stops after `timeout` seconds (QueryFailed), at Ctrl-C (KeyboardInterrupt)
    and when it needs more than MEMORY_LIMIT (QueryFailed); a write raises WriteRefused. Sets
    SQLite's heap limit for the whole process: meant for a process of its own. A file that is
    missing, damaged or not nanotasks' is a StoreError, as Store(path) says it."""
    check_header(path)
    connection = connect(path)
    bodies = register(connection)
    connection.execute("PRAGMA temp_store=MEMORY")  # counted in the heap limit, unlike a file
    connection.execute(f"PRAGMA hard_heap_limit={MEMORY_LIMIT}")
    deadline = time.monotonic() + timeout
    timed_out = []

    def check_time():
        # Ctrl-C raises KeyboardInterrupt in here, which stops the statement too
        if time.monotonic() > deadline:
            timed_out.append(True)
            return 1
        return 0

    connection.set_progress_handler(check_time, STEPS)
    refused = refuse_writes(connection)
    try:
        cursor = connection.execute(sql)
        yield [column[0] for column in cursor.description or ()], cursor
    except (sqlite3.Error, MemoryError) as error:
        raise _failure(error, connection, bodies, refused, timed_out, timeout) from None
    finally:
        connection.close()


def _failure(error, connection, bodies, refused, timed_out, timeout):
    """What a statement that failed with `error` raises: why it stopped, in words that say
    what to do, where a limit or the functions stopped it; else `error`, with the tables a
    query may read when it named another."""
    if refused:
        return WriteRefused(refused[0])
    if timed_out:
        return QueryFailed(
            f"stopped after {timeout:g} s, the time limit: give it longer with "
            f"--timeout SECONDS, or ask for less"
        )
    if isinstance(bodies.error, (StoreError, KeyboardInterrupt)):
        return bodies.error
    if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_TOOBIG:
        return QueryFailed(
            f"stopped: a value would be larger than {MAX_VALUE_BYTES >> 20} MiB, the limit "
            f"on any one string or BLOB ({MAX_VALUE_BYTES // MAX_BODY_BYTES} times the "
            f"largest conversation a file holds), which keeps a single call from taking "
            f"all the memory: ask for a smaller value"
        )
    if isinstance(error, MemoryError) or isinstance(bodies.error, MemoryError):
        return QueryFailed(
            f"stopped: it needs more than {MEMORY_LIMIT >> 20} MiB of memory for "
            f"sorting and temporary tables: add a LIMIT, or select less"
        )
    if str(error) == "interrupted":  # Ctrl-C, caught and swallowed in check_time
        return KeyboardInterrupt()
    if bodies.error is not None:  # sqlite3 says only "user-defined function raised exception"
        return sqlite3.OperationalError(f"{error}: {bodies.error}")
    if str(error).startswith("no such table: "):
        return sqlite3.OperationalError(f"{error} ({_tables(connection)})")
    return error


def _tables(connection):
    """The tables and views a query may read, for a query that named another."""
    names = connection.execute(
        "SELECT group_concat(name, ', ') FROM "
        "(SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name)"
    ).fetchone()[0]
    return f"the tables and views are {names}"


def register(connection):
    """Add the functions to an sqlite3 connection to a nanotasks file; returns their Bodies."""
    bodies = Bodies(connection)
    connection.create_function("conversation", 1, bodies.conversation)
    connection.create_function("conversation_text", 1, bodies.text)
    return bodies


class Bodies:
    """Reads bodies through the connection the functions were registered on. The file is
    checked and its splits loaded on first use (a connection may be to a file that is not
    nanotasks' and never call them), and each split's decompressor is built once. The
    functions hold the connection, and closing the connection releases them. An error in a
    function reaches SQLite only as "user-defined function raised exception": `error` keeps
    the last one, for the caller to say what it was."""

    def __init__(self, connection):
        self.connection = connection
        self.firsts: list[int] = []  # first_example of each split, ascending
        self.splits = None  # (first_example, rows, dictionary), in the same order
        self.decompressors = {}
        self.error = None

    def conversation(self, example_id):
        return self._converted(example_id, bytes.decode)

    def text(self, example_id):
        return self._converted(
            example_id,
            lambda data: "\n".join(message_text(m) for m in json.loads(data)["messages"]),
        )

    def _converted(self, example_id, convert):
        """A time limit (a progress handler, Datasette's) may stop one of the functions' own
        lookups rather than the query calling them: then stop that query too, so that it fails
        as interrupted, not as "user-defined function raised exception". Any other error is
        kept in `error`."""
        try:
            data = self._json(example_id)
            return None if data is None else convert(data)
        except sqlite3.OperationalError as error:
            if str(error) != "interrupted":
                self.error = error
                raise
            self.connection.interrupt()
        except BaseException as error:
            self.error = error
            raise

    def _json(self, example_id):
        if example_id is None:
            return None
        if type(example_id) is not int:
            raise TypeError(
                f"conversation(id) and conversation_text(id) take the integer `id` column "
                f"of examples, not {example_id!r:.40}"
            )
        if self.splits is None:
            path = self.connection.execute("PRAGMA database_list").fetchone()[2]
            check_schema(self.connection, path)
            check_splits(self.connection, path)
            self.splits = self.connection.execute(
                "SELECT first_example, rows, dictionary FROM splits ORDER BY first_example"
            ).fetchall()
            self.firsts = [first for first, _, _ in self.splits]
        index = bisect.bisect_right(self.firsts, example_id) - 1
        if index < 0 or example_id >= self.splits[index][0] + self.splits[index][1]:
            return None
        row = self.connection.execute(
            "SELECT body FROM example_data WHERE id = ?", (example_id,)
        ).fetchone()
        if row is None:
            return None
        try:
            decompressor = self.decompressors.get(index)
            if decompressor is None:
                decompressor = self.decompressors[index] = body_decompressor(self.splits[index][2])
            return decompress_body(decompressor, row[0])
        except (zstandard.ZstdError, TypeError, ValueError) as error:
            path = self.connection.execute("PRAGMA database_list").fetchone()[2]
            raise FileDamaged(
                f"{path}: example {example_id} is damaged ({error}). Check the file "
                f"with `nanotasks verify --db {path}`."
            ) from None
