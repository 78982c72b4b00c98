"""store/sqlfunctions.py and store/plugins.py: the example queries of docs/sql.md through the
plain sqlite3 shell, sqlite-utils and a live Datasette, giving the rows `nanotasks sql` gives
(tests/test_docs.py checks those against the page); the SQL functions against the Store;
writes refused; a query bounded in time and memory, stopped by Ctrl-C, streamed."""

import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import sqlite_utils
import sqlite_utils.cli
from click.testing import CliRunner

from nanotasks.store.reader import MAX_VALUE_BYTES, Store
from nanotasks.store.schema import MAX_BODY_BYTES, body_compressor
from nanotasks.store.sqlfunctions import register
from nanotasks.store.text import message_text
from tests.conftest import NANOTASKS, REPO, invoke, nanotasks, require_plugin
from tests.helpers import ENDLESS, console_commands, fenced_blocks, split_row, with_body

BIN = Path(sys.executable).parent
SQL_PAGE = REPO / "docs" / "sql.md"
ON_DEMO = 'nanotasks sql --db demo.db "'


def example_queries():
    """The queries under docs/sql.md's "Example queries" heading, each (title, query, output),
    titled by the line above its block. They run on data/sample compiled with
    data/mychats.jsonl, the demo_db fixture."""
    lines = SQL_PAGE.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Example queries")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    queries = []
    for language, text, line in fenced_blocks(SQL_PAGE):
        if language != "console" or not start < line <= end:
            continue
        above = line - 2  # the fence's own line, counted from 0
        while not lines[above].strip():
            above -= 1
        for command, output in console_commands(text):
            if command.startswith(ON_DEMO):
                queries.append((lines[above].rstrip(":"), command[len(ON_DEMO) : -1], output))
    return queries


QUERIES = example_queries()
QUERY_IDS = [title for title, _, _ in QUERIES]
# The queries that use nanotasks' SQL functions, which the plain sqlite3 shell does not have.
NEEDS_FUNCTIONS = {"conversation_text(", "conversation("}


def plain(sql):
    return not any(name in sql for name in NEEDS_FUNCTIONS)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sql_json(db, query):
    return json.loads(invoke("sql", "--db", db, "--json", query).stdout)


def test_docs_show_the_example_queries():
    assert len(QUERIES) >= 7 and sum(plain(query) for _, query, _ in QUERIES) >= 4


@pytest.mark.parametrize(
    "title, query, expected",
    [q for q in QUERIES if plain(q[1])],
    ids=[q[0] for q in QUERIES if plain(q[1])],
)
def test_plain_sqlite3_shell_gives_the_same_rows(demo_db, title, query, expected):
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 shell is not installed (.ci/run installs it)")
    result = subprocess.run(
        ["sqlite3", "-json", f"file:{demo_db}?mode=ro", query],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout or "[]") == sql_json(demo_db, query)


@pytest.mark.parametrize("title, query, expected", QUERIES, ids=QUERY_IDS)
def test_sqlite_utils_has_the_functions(demo_db, title, query, expected):
    require_plugin("sqlite_utils", "nanotasks", "nanotasks.store.plugins")
    # sqlite-utils' own command, in process: it finds the plugin through its entry point
    result = CliRunner().invoke(sqlite_utils.cli.cli, ["query", str(demo_db), query])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == sql_json(demo_db, query)


@contextlib.contextmanager
def serving(db):
    """`datasette serve` on `db`, on a free port of 127.0.0.1: yields its base URL."""
    require_plugin("datasette", "nanotasks", "nanotasks.store.plugins")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [BIN / "datasette", "serve", db, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/versions.json", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    pytest.fail(f"datasette did not start:\n{server.communicate()[0]}")
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def datasette(demo_db):
    before = sha256(demo_db)
    with serving(demo_db) as url:
        yield url
    assert sha256(demo_db) == before


@pytest.mark.xdist_group("datasette")  # one worker, one server (`--dist loadgroup`)
@pytest.mark.parametrize("title, query, expected", QUERIES, ids=QUERY_IDS)
def test_live_datasette_has_the_functions(datasette, demo_db, title, query, expected):
    params = urllib.parse.urlencode({"sql": query, "_shape": "array"})
    with urllib.request.urlopen(
        f"{datasette}/{demo_db.stem}.json?{params}", timeout=30
    ) as response:
        rows = json.load(response)
    assert rows == sql_json(demo_db, query)


def test_functions_agree_with_the_store(sample_db):
    store = Store(sample_db)
    db = sqlite3.connect(sample_db)
    register(db)
    checked = 0
    for split in store.splits():
        rows = store.split(split["task"], split["subset"], split["split"])
        for position in range(rows.rows):
            example_id = rows.first_example + position
            conversation, text = db.execute(
                "SELECT conversation(?), conversation_text(?)", (example_id, example_id)
            ).fetchone()
            expected = store.read(rows, position)
            assert json.loads(conversation) == expected
            assert text == "\n".join(message_text(m) for m in expected["messages"])
            checked += 1
    assert checked == db.execute("SELECT count(*) FROM example_data").fetchone()[0]
    last = db.execute("SELECT max(id) FROM example_data").fetchone()[0]
    assert db.execute(
        "SELECT conversation(0), conversation_text(?), conversation(NULL)", (last + 1,)
    ).fetchone() == (None, None, None)


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM meta",
        "UPDATE splits SET rows = 0",
        "DROP TABLE overlaps",
        "CREATE TABLE notes (text)",
        "PRAGMA user_version = 7",
        "ATTACH 'elsewhere.db' AS other",
    ],
)
def test_writing_query_is_refused_and_nothing_changes(sample_db, tmp_path, query):
    before = sha256(sample_db)
    result = nanotasks("sql", "--db", sample_db, query, check=False, cwd=tmp_path)
    assert result.returncode == 1
    assert "refused: this query would write" in result.stderr
    assert "Traceback" not in result.stderr
    assert sha256(sample_db) == before
    assert list(tmp_path.iterdir()) == []  # ATTACH created no file


def test_sql_formats_and_errors(sample_db):
    query = (
        "SELECT task, split, rows, dictionary IS NULL AS plain FROM splits "
        "WHERE task = 'gsm8k' ORDER BY id"
    )
    rows = sql_json(sample_db, query)
    assert rows[0] == {"task": "gsm8k", "split": "test", "rows": 6, "plain": 1}
    parsed = list(
        csv.DictReader(io.StringIO(invoke("sql", "--db", sample_db, "--csv", query).stdout))
    )
    assert parsed == [{k: str(v) for k, v in row.items()} for row in rows]
    # BLOBs as sqlite-utils writes them: base64, in JSON an object that says so
    body = (
        sqlite3.connect(sample_db)
        .execute("SELECT body FROM example_data WHERE id = 1")
        .fetchone()[0]
    )
    blob = sql_json(sample_db, "SELECT body FROM example_data WHERE id = 1")[0]["body"]
    assert blob == {"$base64": True, "encoded": base64.b64encode(body).decode()}
    as_csv = invoke(
        "sql", "--db", sample_db, "--csv", "SELECT body FROM example_data WHERE id = 1"
    ).stdout
    assert as_csv == f"body\n{base64.b64encode(body).decode()}\n"
    both = invoke("sql", "--db", sample_db, "--json", "--csv", query)
    assert both.returncode == 2 and "choose one" in both.stderr
    bad = invoke("sql", "--db", sample_db, "SELECT nonsense FROM splits")
    assert bad.returncode == 1 and "SQL error: no such column: nonsense" in bad.stderr
    unknown = invoke("sql", "--db", sample_db, "SELECT * FROM example")
    assert unknown.returncode == 1 and unknown.stderr == (
        "Error: SQL error: no such table: example (the tables and views are example_data, "
        "examples, files, meta, overlaps, splits, subjects)\n"
    )
    missing = invoke("sql", "--db", sample_db.with_name("absent.db"), "SELECT 1")
    assert missing.returncode == 1 and "no such file" in missing.stderr


def running_sql(db, query, *options, **popen):
    return subprocess.Popen(
        [*NANOTASKS, "sql", "--db", str(db), *options, query],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_sql_stops_at_its_time_limit(sample_db):
    result = nanotasks(
        "sql",
        "--db",
        sample_db,
        "--timeout",
        "0.5",
        f"SELECT count(*) FROM ({ENDLESS})",
        check=False,
        timeout=60,
    )
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        "Error: stopped after 0.5 s, the time limit: "
        "give it longer with --timeout SECONDS, or ask for less"
    ]


def cpu_ticks(pid):
    """The CPU time `pid` has used, user and system, in clock ticks (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_sql_stops_at_ctrl_c(sample_db):
    """Ctrl-C while SQLite computes an endless count. sqlite3 steps to the next row before it
    returns one, so the first of two rows before the count is printed once the count is
    next; the CPU time the command spends after that, with no row left to print, is the
    count's (before it, Ctrl-C gives the same one line, through another path)."""
    query = (
        f"SELECT 'first' AS x UNION ALL SELECT 'second' UNION ALL SELECT count(*) FROM ({ENDLESS})"
    )
    process = running_sql(
        sample_db,
        query,
        "--csv",
        "--timeout",
        "600",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # each row on the pipe as it is printed
    )
    try:
        assert process.stdout.readline() == "x\n" and process.stdout.readline() == "first\n"
        printed = cpu_ticks(process.pid)
        deadline = time.monotonic() + 60
        while cpu_ticks(process.pid) < printed + 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cpu_ticks(process.pid) >= printed + 10, "the count did not run for 10 ticks"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)  # no time limit reached: 600 s
    finally:
        process.kill()
    assert process.returncode == 130 and err.strip().splitlines() == ["interrupted"]


def test_sql_streams_its_rows(sample_db):
    """An endless query prints its first rows at once, in every format."""
    for options, first_line in ([], "x"), (["--csv"], "x"), (["--json"], "["):
        process = running_sql(sample_db, ENDLESS, *options)
        assert (
            process.stdout.readline().strip() == first_line
        )  # would wait forever if collected first
        process.kill()
        process.communicate()


def test_sql_sorting_is_bounded_in_memory_not_spilled_to_disk(sample_db):
    # 1.5 GB to sort (zeroblobs: cheap to make, as big in the sorter): spilled to a temporary
    # file, it would complete
    query = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 15000) "
        "SELECT zeroblob(100000) FROM c ORDER BY 1"
    )
    result = nanotasks("sql", "--db", sample_db, query, check=False, timeout=120)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        "Error: stopped: it needs more than 1024 MiB of memory for sorting and temporary tables: "
        "add a LIMIT, or select less"
    ]


@pytest.mark.parametrize(
    "options, query",
    [
        ([], "SELECT length(randomblob(999999999))"),
        (["--csv"], "SELECT zeroblob(999999999)"),
        (
            ["--json"],
            f"SELECT length(group_concat(hex(zeroblob(1000000)))) FROM ({ENDLESS} LIMIT 100)",
        ),
    ],
    ids=["randomblob", "zeroblob", "aggregate"],
)
def test_one_huge_value_is_refused_before_it_is_made(sample_db, options, query):
    """SQLite's time limit is checked between steps of a query: a value is bounded instead,
    at once, whatever the call that would make it."""
    result = nanotasks("sql", "--db", sample_db, *options, query, check=False, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: stopped: a value would be larger than {MAX_VALUE_BYTES >> 20} MiB, the limit on "
        f"any one string or BLOB (4 times the largest conversation a file holds), which keeps a "
        f"single call from taking all the memory: ask for a smaller value"
    ]
    largest = f"SELECT length(zeroblob({MAX_VALUE_BYTES}))"
    assert sql_json(sample_db, largest) == [
        {f"length(zeroblob({MAX_VALUE_BYTES}))": MAX_VALUE_BYTES}
    ]


@pytest.mark.xdist_group("datasette")
def test_live_datasette_refuses_one_huge_value(datasette, demo_db):
    for query in "SELECT zeroblob(999999999) AS z", "SELECT length(randomblob(999999999)) AS n":
        refused = datasette_query(datasette, demo_db, query)
        assert not refused["ok"] and refused["error"] == "string or blob too big"


def test_the_plugin_bounds_values_on_nanotasks_files_only(sample_db, tmp_path):
    """sqlite-utils calls the plugin on any database it opens: a database of the user's own
    keeps SQLite's limits."""
    other = sqlite_utils.Database(tmp_path / "other.db")
    ours = sqlite_utils.Database(sqlite3.connect(f"file:{sample_db}?mode=ro", uri=True))
    assert ours.conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) == MAX_VALUE_BYTES
    assert other.conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) == 1_000_000_000


def datasette_query(url, db, query):
    params = urllib.parse.urlencode({"sql": query, "_shape": "objects"})
    try:
        with urllib.request.urlopen(f"{url}/{db.stem}.json?{params}", timeout=60) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.load(error)


def test_datasette_time_limit_holds_for_the_functions(copy):
    """A body of 64 MiB (more than any conversation may be) is refused at once rather than
    decompressed; the largest allowed takes a fraction of Datasette's 1 s limit per call, so
    a query calling the function without end is stopped by that limit."""
    _, first, _ = split_row(copy, "gsm8k", "main", "test")
    compressor = body_compressor(None, 1)
    for example_id, size in (first, 64 << 20), (first + 1, MAX_BODY_BYTES - 100):
        data = json.dumps({"messages": [{"role": "user", "content": "a" * size}]}).encode()
        with_body(copy, example_id, compressor.compress(data))
    with serving(copy) as url:
        refused = datasette_query(url, copy, f"SELECT length(conversation_text({first})) AS n")
        assert not refused["ok"] and refused["error"] == "user-defined function raised exception"
        endless = datasette_query(
            url, copy, f"SELECT count(conversation_text({first + 1})) FROM ({ENDLESS})"
        )
        assert not endless["ok"] and "took too long" in endless["error"], endless["error"]
