"""The sqlite-utils and Datasette plugin: both call `prepare_connection` on every connection
they open, and it adds nanotasks' SQL functions (store/sqlfunctions.py) to it. Installing
nanotasks registers this module through entry points (pyproject.toml); only those tools
import it, and both bring pluggy with them."""

from pluggy import HookimplMarker

from nanotasks.store.sqlfunctions import register


# One function serves both: pluggy passes an implementation only the arguments it names,
# and `conn` is common to sqlite-utils' hook and Datasette's (conn, database, datasette).
@HookimplMarker("datasette")
@HookimplMarker("sqlite_utils")
def prepare_connection(conn):
    register(conn)
