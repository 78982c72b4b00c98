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
from pathlib import Path
from urllib.parse import quote

from nanotasks.store.schema import body_decompressor
from nanotasks.store.text import message_text

# What a read may do, by sqlite3 authorizer action: everything else (INSERT, CREATE, ATTACH,
# BEGIN, a PRAGMA that sets something, ...) is refused before it runs.
READS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
PRAGMAS_WITH_ARGUMENT = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo",
                         "foreign_key_list"}
SCHEMA_TABLES = {"sqlite_master", "sqlite_temp_master"}  # checked when a pragma table is first read
ACTIONS = {getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ") for name in (
    "CREATE_INDEX CREATE_TABLE CREATE_TEMP_INDEX CREATE_TEMP_TABLE CREATE_TEMP_TRIGGER "
    "CREATE_TEMP_VIEW CREATE_TRIGGER CREATE_VIEW DELETE DROP_INDEX DROP_TABLE DROP_TEMP_INDEX "
    "DROP_TEMP_TABLE DROP_TEMP_TRIGGER DROP_TEMP_VIEW DROP_TRIGGER DROP_VIEW INSERT PRAGMA "
    "TRANSACTION UPDATE ATTACH DETACH ALTER_TABLE REINDEX ANALYZE CREATE_VTABLE DROP_VTABLE "
    "SAVEPOINT").split()}


class WriteRefused(Exception):
    """A query given as read-only would change something."""


def read_only(path):
    """A connection to the nanotasks file at `path` with the functions registered, on which only
    reading statements run: `query` raises WriteRefused for any other. Returns the connection,
    the list of refused actions and the functions' Bodies."""
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro&immutable=1"
    connection = sqlite3.connect(uri, uri=True)
    bodies = register(connection)
    refused = []

    def authorize(action, arg1, arg2, database, trigger):
        if (action in READS or (action == sqlite3.SQLITE_UPDATE and arg1 in SCHEMA_TABLES)
                or (action == sqlite3.SQLITE_PRAGMA and (arg2 is None or arg1 in PRAGMAS_WITH_ARGUMENT))):
            return sqlite3.SQLITE_OK
        refused.append(" ".join(filter(None, [ACTIONS.get(action, str(action)), arg1])))
        return sqlite3.SQLITE_DENY

    connection.set_authorizer(authorize)
    return connection, refused, bodies


def query(path, sql, parameters=()):
    """Run one read-only statement on the nanotasks file at `path`: (column names, rows)."""
    connection, refused, bodies = read_only(path)
    try:
        cursor = connection.execute(sql, parameters)
        return [column[0] for column in cursor.description or ()], cursor.fetchall()
    except sqlite3.DatabaseError as error:
        if refused:
            raise WriteRefused(refused[0]) from None
        if bodies.failure:  # sqlite3 says only "user-defined function raised exception"
            raise sqlite3.OperationalError(f"{error}: {bodies.failure}") from None
        raise
    finally:
        connection.close()


def register(connection):
    """Add the functions to an sqlite3 connection to a nanotasks file; returns their Bodies."""
    bodies = Bodies(connection)
    connection.create_function("conversation", 1, bodies.conversation)
    connection.create_function("conversation_text", 1, bodies.text)
    return bodies


class Bodies:
    """Reads bodies through the connection the functions were registered on. The splits are
    loaded on first use (a connection may be to a file that is not nanotasks' and never call
    them), and each split's decompressor is built once. The functions hold the connection,
    and closing the connection releases them."""

    def __init__(self, connection):
        self.connection = connection
        self.firsts = None  # first_example of each split, ascending
        self.splits = None  # (first_example, rows, dictionary), in the same order
        self.decompressors = {}
        self.failure = None  # why the last call failed, which sqlite3 does not pass on

    def conversation(self, example_id):
        with self._stopping_the_query():
            data = self._json(example_id)
            return None if data is None else data.decode()

    def text(self, example_id):
        with self._stopping_the_query():
            data = self._json(example_id)
            if data is None:
                return None
            return "\n".join(message_text(m) for m in json.loads(data)["messages"])

    @contextlib.contextmanager
    def _stopping_the_query(self):
        """A time limit (a progress handler, Datasette's) may stop one of the functions' own
        lookups rather than the query calling them: then stop that query too, so that it fails
        as interrupted, not as "user-defined function raised exception"."""
        try:
            yield
        except sqlite3.OperationalError as error:
            if str(error) != "interrupted":
                raise
            self.connection.interrupt()

    def _json(self, example_id):
        if example_id is None:
            return None
        if type(example_id) is not int:
            self.failure = (f"conversation(id) and conversation_text(id) take the integer `id` column "
                            f"of examples, not {example_id!r:.40}")
            raise TypeError(self.failure)
        if self.splits is None:
            self.splits = self.connection.execute(
                "SELECT first_example, rows, dictionary FROM splits ORDER BY first_example").fetchall()
            self.firsts = [first for first, _, _ in self.splits]
        index = bisect.bisect_right(self.firsts, example_id) - 1
        if index < 0 or example_id >= self.splits[index][0] + self.splits[index][1]:
            return None
        row = self.connection.execute("SELECT body FROM example_data WHERE id = ?", (example_id,)).fetchone()
        if row is None:
            return None
        decompressor = self.decompressors.get(index)
        if decompressor is None:
            decompressor = self.decompressors[index] = body_decompressor(self.splits[index][2])
        return decompressor.decompress(row[0])
