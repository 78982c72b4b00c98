"""The sqlite-utils and Datasette plugin: both call `prepare_connection` on every connection
they open, and it adds nanotasks' SQL functions (store/sqlfunctions.py) to it and, on a
connection to a nanotasks file, the bound on any value a query builds (reader.bound_values)
that nanotasks' own connections have. Installing nanotasks registers this module through
entry points (pyproject.toml); only those tools import it, and both bring pluggy with them."""

import sqlite3

from pluggy import HookimplMarker

from nanotasks.store.reader import bound_values
from nanotasks.store.schema import APPLICATION_ID
from nanotasks.store.sqlfunctions import register


# One function serves both: pluggy passes an implementation only the arguments it names,
# and `conn` is common to sqlite-utils' hook and Datasette's (conn, database, datasette).
@HookimplMarker("datasette")
@HookimplMarker("sqlite_utils")
def prepare_connection(conn):
    register(conn)
    if _is_nanotasks(conn):  # another database's values are its own business
        bound_values(conn)


def _is_nanotasks(connection):
    try:
        return connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    except sqlite3.DatabaseError:  # not a database: the tool says so in its own words
        return False
