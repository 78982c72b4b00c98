"""Files, queries and output paths made to hurt: a crafted `.db` is refused before any of its
SQL runs, a query is bounded in time and memory, a damaged row is one line of error, never
a traceback, and nothing a user points `export` at is lost."""

import glob
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import zstandard

from nanotasks.store.reader import MAX_BODY_BYTES, Store, StoreError
from nanotasks.store.schema import body_compressor
from nanotasks.store.verify import verify
from nanotasks.tasks.arc import ARC
from nanotasks.tasks.gsm8k import GSM8K
from tests.conftest import NANOTASKS, SAMPLE, nanotasks, small_tmpfs
from tests.test_sql import serving

ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"


@pytest.fixture
def copy(sample_db, tmp_path):
    path = tmp_path / "copy.db"
    shutil.copyfile(sample_db, path)
    return path


def edit(path, *statements):
    """Change the file behind nanotasks' back, schema included."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA writable_schema=ON")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def refused_everywhere(path, expected):
    """Every door refuses the file with one line containing `expected`, and nothing hangs: the
    library at construction, and each command with no traceback (a hang fails at the timeout)."""
    for open_it in (lambda: Store(path), lambda: ARC("ARC-Easy", "train", db=path),
                    lambda: GSM8K("main", "test", db=path)):
        with pytest.raises(StoreError, match=expected):
            open_it()
    for command in (["info"], ["show", "gsm8k", "test", "6", "--subset", "main"], ["verify", "--quick"],
                    ["verify"], ["sql", "SELECT count(*) FROM examples"], ["overlap"],
                    ["export", "gsm8k", "test", "--subset", "main"]):
        result = nanotasks(*command, "--db", path, check=False, timeout=60)
        assert result.returncode == 1, (command, result.stdout)
        assert "Traceback" not in result.stderr, (command, result.stderr)
        assert expected in result.stdout + result.stderr, (command, result.stdout, result.stderr)
        if command[0] != "verify":
            assert len(result.stderr.strip().splitlines()) == 1, (command, result.stderr)


NOT_OURS = "not a nanotasks file of this version"


@pytest.mark.parametrize("statements", [
    ["DROP VIEW examples", f"CREATE VIEW examples AS {ENDLESS}"],
    ["ALTER TABLE splits RENAME TO real_splits",
     f"CREATE VIEW splits AS SELECT real_splits.* FROM real_splits, ({ENDLESS})"],
    ["ALTER TABLE example_data RENAME TO real_data",
     "CREATE VIEW example_data AS SELECT id, source_row, messages, characters, answer, subject_id, "
     "prompt_hash, randomblob(100000000) AS body FROM real_data"],
    # ARC's rows shown as GSM8K's: every check of the rows themselves would pass
    ["DROP VIEW examples", "CREATE VIEW examples AS SELECT 'gsm8k' AS task, 'main' AS subset, "
     "'test' AS split, 0 AS position, source_row, messages, characters, answer, NULL AS subject, "
     "prompt_hash, body, id FROM example_data"],
    ["CREATE TRIGGER t AFTER INSERT ON meta BEGIN SELECT 1; END"],
    ["CREATE INDEX i ON example_data (answer)"],
], ids=["endless examples view", "endless splits view", "randomblob example_data",
        "relabelling view", "a trigger", "an index"])
def test_a_crafted_schema_is_refused_before_any_of_it_runs(copy, statements):
    edit(copy, *statements)
    refused_everywhere(copy, NOT_OURS)
    report = verify(copy)
    assert [(c.name, c.ok) for c in report] == [("header", True), ("schema", False)]


def test_invalid_utf8_in_the_schema_is_refused(copy):
    data = bytearray(copy.read_bytes())
    at = data.index(b"module name in tasks/")
    data[at] = 0xFF
    copy.write_bytes(data)
    refused_everywhere(copy, NOT_OURS)


def test_every_connection_distrusts_the_schema(sample_db):
    assert Store(sample_db).db.execute("PRAGMA trusted_schema").fetchone() == (0,)
    assert nanotasks("sql", "--db", sample_db, "PRAGMA trusted_schema").stdout.splitlines()[-1].strip() == "0"


def split_row(path, task, subset, split):
    db = sqlite3.connect(path)
    row = db.execute("SELECT id, first_example, rows FROM splits WHERE task = ? AND subset = ? "
                     "AND split = ?", (task, subset, split)).fetchone()
    db.close()
    return row


@pytest.mark.parametrize("change, problem", [
    ("rows = 1000000000000", "its rows end at rowid"),
    ("rows = 'seven'", "rows is str"),
    ("rows = -1", "it has -1 rows"),
    ("first_example = 9223372036854775807", "its rows end at rowid"),
    ("first_example = first_example - 1", "its rows start at rowid"),  # inside the split before
    ("first_example = 0", "its rows start at rowid 0"),
    ("dictionary = 'text'", "dictionary is text"),
], ids=lambda v: v if "=" in v else None)
def test_an_insane_splits_row_is_refused_at_open(copy, change, problem):
    """GSM8K main/test claims what it does not hold: no task[i] may be another split's row."""
    split_id, _, _ = split_row(copy, "gsm8k", "main", "test")
    edit(copy, f"UPDATE splits SET {change} WHERE id = {split_id}")
    refused_everywhere(copy, problem)
    report = verify(copy)
    assert not report[-1].ok and report[-1].name == "schema" and "damaged" in report[-1].detail


@pytest.mark.parametrize("table, change, problem", [
    ("splits", "repo = CAST(X'ff41' AS TEXT)", "Could not decode to UTF-8 column 'repo'"),
    ("splits", "sha256 = X'00'", "in its splits table, sha256 is bytes"),
    ("splits", "stored_bytes = 'many'", "in its splits table, stored_bytes is str"),
    ("files", "size = 'big'", "in its files table, size is str in row 'words_alpha.txt'"),
], ids=["invalid utf-8", "blob sha256", "text stored_bytes", "text file size"])
def test_a_column_of_the_wrong_type_is_one_line(copy, table, change, problem):
    """Columns only shown: a Task still reads, the commands that show them say what is wrong."""
    edit(copy, f"UPDATE {table} SET {change}" + (" WHERE id = 2" if table == "splits" else ""))
    assert GSM8K("main", "test", db=copy)[0]
    for command in ["info"], ["verify"], ["verify", "--quick"]:
        result = nanotasks(*command, "--db", copy, check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert problem in result.stdout + result.stderr
    assert not [c for c in verify(copy) if c.name == "tables"][0].ok


def with_body(path, example_id, body):
    edit(path, f"UPDATE example_data SET body = X'{body.hex()}' WHERE id = {example_id}")


def claiming(size):
    """A body whose frame header claims `size` bytes of content."""
    compressor = zstandard.ZstdCompressor(write_checksum=True)
    chunk = compressor.compressobj(size=size)
    frame = chunk.compress(b'{"messages":[]}') + chunk.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    return frame[4:]  # stored without the magic number


def test_a_body_claiming_a_terabyte_is_one_line_everywhere(copy):
    """The SQL functions have the reader's cap and its error; nothing allocates the claim."""
    split_id, first, _ = split_row(copy, "gsm8k", "main", "test")
    with_body(copy, first + 3, claiming(1 << 40))
    assert zstandard.get_frame_parameters(claiming(1 << 40), format=zstandard.FORMAT_ZSTD1_MAGICLESS).content_size == 1 << 40
    with pytest.raises(StoreError, match="example 3 of gsm8k main/test is damaged "
                                         r"\(its frame header claims 1099511627776 bytes\)"):
        GSM8K("main", "test", db=copy)[3]
    for function in ("conversation", "conversation_text"):
        result = nanotasks("sql", "--db", copy, f"SELECT {function}({first + 3})", check=False)
        assert result.returncode == 1 and result.stderr.strip().splitlines() == [
            f"Error: {copy}: example {first + 3} is damaged (its frame header claims 1099511627776 "
            f"bytes). Check the file with `nanotasks verify --db {copy}`."]
    failed = [c for c in verify(copy) if not c.ok]
    assert [c.name for c in failed] == ["gsm8k main/test"] and "claims 1099511627776 bytes" in failed[0].detail


def test_a_damaged_dictionary_is_a_verdict_not_a_traceback(copy):
    split_id, first, _ = split_row(copy, "gsm8k", "main", "test")
    garbage = b"\x37\xa4\x30\xec" + bytes(range(256)) * 4  # zstd's dictionary magic, then nothing sane
    edit(copy, f"UPDATE splits SET dictionary = X'{garbage.hex()}' WHERE id = {split_id}")
    with pytest.raises(StoreError, match="example 3 of gsm8k main/test is damaged"):
        GSM8K("main", "test", db=copy)[3]
    failed = [c for c in verify(copy) if not c.ok]
    assert [c.name for c in failed] == ["gsm8k main/test"] and "dictionary is damaged" in failed[0].detail
    for command in (["verify"], ["show", "gsm8k", "test", "3", "--subset", "main"],
                    ["sql", f"SELECT conversation({first})"]):
        result = nanotasks(*command, "--db", copy, check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "DAMAGED" in nanotasks("verify", "--db", copy, check=False).stdout


def test_full_verify_takes_the_time_of_the_rows_that_are_there(copy):
    """example_data ends with a lone row at a huge rowid, and the last split claims every rowid
    up to it: sane at open, and verify's one pass over the rows finds the gap at once."""
    split_id, first, rows = split_row(copy, "smoltalk", "default", "train")
    far = 1 << 60
    edit(copy, f"INSERT INTO example_data SELECT {far}, source_row, messages, characters, answer, "
               f"subject_id, prompt_hash, body FROM example_data WHERE id = {first}",
         f"UPDATE splits SET rows = {far - first + 1} WHERE id = {split_id}")
    result = nanotasks("verify", "--db", copy, check=False, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"position {rows} holds rowid {far}" in result.stdout


def running_sql(db, query, *options):
    return subprocess.Popen([*NANOTASKS, "sql", "--db", str(db), *options, query],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sql_stops_at_its_time_limit(sample_db):
    result = nanotasks("sql", "--db", sample_db, "--timeout", "0.5", f"SELECT count(*) FROM ({ENDLESS})",
                       check=False, timeout=60)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        "Error: stopped after 0.5 s, the time limit: give it longer with --timeout SECONDS, or ask for less"]


def test_sql_stops_at_ctrl_c(sample_db):
    process = running_sql(sample_db, f"SELECT count(*) FROM ({ENDLESS})", "--timeout", "600")
    while not any(os.path.realpath(fd) == str(sample_db) for fd in glob.glob(f"/proc/{process.pid}/fd/*")):
        time.sleep(0.05)  # until the command has started: its file is open
    time.sleep(0.5)  # and the query most likely running (before it, Ctrl-C is the same one line)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)  # no time limit reached: 600 s
    assert process.returncode == 130 and err.strip().splitlines() == ["interrupted"]


def test_sql_streams_its_rows(sample_db):
    """An endless query prints its first rows at once, in every format."""
    for options, first_line in ([], "x"), (["--csv"], "x"), (["--json"], "["):
        process = running_sql(sample_db, ENDLESS, *options)
        assert process.stdout.readline().strip() == first_line  # would wait forever if collected first
        process.kill()
        process.communicate()


def test_sql_sorting_is_bounded_in_memory_not_spilled_to_disk(sample_db):
    # 1.5 GB to sort (zeroblobs: cheap to make, as big in the sorter): spilled to a temporary
    # file, it would complete
    query = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 15000) "
             "SELECT zeroblob(100000) FROM c ORDER BY 1")
    result = nanotasks("sql", "--db", sample_db, query, check=False, timeout=120)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        "Error: stopped: it needs more than 1024 MiB of memory for sorting and temporary tables: "
        "add a LIMIT, or select less"]


@pytest.mark.parametrize("command", [["info"], ["verify"], ["verify", "--quick"], ["overlap"],
                                     ["show", "gsm8k", "test", "0", "--subset", "main"],
                                     ["sql", "SELECT * FROM examples"],
                                     ["export", "gsm8k", "test", "--subset", "main"]])
def test_stdout_on_a_full_disk_is_one_line(sample_db, command):
    with open("/dev/full", "w") as full:
        result = subprocess.run([*NANOTASKS, *command, "--db", str(sample_db)], stdout=full,
                                stderr=subprocess.PIPE, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1:] == ["Error: cannot write standard output: No space left on device"]
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


# export: nothing the output path points at is lost

EXPORT = ["export", "gsm8k", "train", "--subset", "main"]


def device(path, like):
    """A copy of the device node `like` (/dev/null, /dev/full) at `path`: needs root."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.stat(like).st_rdev)
    except PermissionError:
        pytest.skip("making device nodes needs root")
    return path


def leftovers(directory, *keep):
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_export_to_a_device_writes_through_it_and_keeps_it(sample_db, tmp_path):
    null = device(tmp_path / "null", "/dev/null")
    nanotasks(*EXPORT, "--db", sample_db, "-o", null)
    assert stat.S_ISCHR(null.stat().st_mode) and null.stat().st_rdev == os.stat("/dev/null").st_rdev
    full = device(tmp_path / "full", "/dev/full")
    result = nanotasks(*EXPORT, "--db", sample_db, "-o", full, check=False)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"Error: cannot write {full}: No space left on device"]
    assert stat.S_ISCHR(full.stat().st_mode) and full.stat().st_rdev == os.stat("/dev/full").st_rdev
    assert leftovers(tmp_path, "null", "full") == []


def test_export_refuses_to_overwrite_the_compiled_file(copy, tmp_path):
    before = copy.read_bytes()
    (tmp_path / "link.db").symlink_to(copy)
    for output in (copy, tmp_path / "link.db"):
        result = nanotasks(*EXPORT, "--db", copy, "-o", output, check=False)
        assert result.returncode == 1 and result.stderr.strip().splitlines() == [
            f"Error: {output} is the compiled file being read: write the output elsewhere"]
    assert copy.read_bytes() == before and leftovers(tmp_path) == ["copy.db", "link.db"]


def test_a_read_failing_part_way_leaves_the_previous_output(copy, tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text("the previous export\n")
    _, first, _ = split_row(copy, "gsm8k", "main", "train")
    with_body(copy, first + 3, claiming(1 << 40))
    for file_format in ("jsonl", "parquet"):
        result = nanotasks(*EXPORT, "--db", copy, "-o", output, "--format", file_format, check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "example 3 of gsm8k main/train is damaged" in result.stderr
        assert output.read_text() == "the previous export\n"
        assert leftovers(tmp_path) == ["copy.db", "out.jsonl"]


def test_a_replaced_output_keeps_its_owner_and_mode(sample_db, tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text("old\n")
    os.chmod(output, 0o640)
    try:
        os.chown(output, 1234, 5678)
    except PermissionError:
        pytest.skip("changing a file's owner needs root")
    nanotasks(*EXPORT, "--db", sample_db, "-o", output)
    assert output.read_text() != "old\n" and stat.S_IMODE(output.stat().st_mode) == 0o640
    assert (output.stat().st_uid, output.stat().st_gid) == (1234, 5678)
    assert leftovers(tmp_path) == ["out.jsonl"]


@pytest.fixture
def small_disk(tmp_path):
    with small_tmpfs(tmp_path / "small", "64k") as mountpoint:
        yield mountpoint


def test_a_full_disk_leaves_the_previous_output_and_nothing_else(sample_db, small_disk):
    output = small_disk / "out.jsonl"
    output.write_text("the previous export\n")
    with pytest.raises(OSError, match="No space left on device"), open(small_disk / "filler", "wb") as f:
        while True:
            f.write(bytes(4096))
            f.flush()
    result = nanotasks(*EXPORT, "--db", sample_db, "-o", output, check=False)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"Error: cannot write {output}: No space left on device"]
    assert output.read_text() == "the previous export\n" and leftovers(small_disk) == ["filler", "out.jsonl"]


def test_a_read_only_or_missing_directory_is_one_line(sample_db, small_disk, tmp_path):
    subprocess.run(["mount", "-o", "remount,ro", small_disk], check=True)
    for output in (small_disk / "out.jsonl", tmp_path / "missing" / "out.jsonl"):
        result = nanotasks(*EXPORT, "--db", sample_db, "-o", output, check=False)
        reason = "Read-only file system" if output.parent == small_disk else "No such file or directory"
        assert result.returncode == 1 and result.stderr.strip().splitlines() == [
            f"Error: cannot write {output}: {reason}"]
    assert leftovers(small_disk) == [] and leftovers(tmp_path) == ["small"]


# compile --custom: every bad file or name is one line naming it, and nothing is written

GOOD = '[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]\n'


def compile_custom(tmp_path, *customs):
    db = tmp_path / "custom.db"
    result = nanotasks("compile", "--only", "customjson", *[f"--custom={c}" for c in customs], "--db", db,
                       check=False, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert not db.exists()
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("content, error", [
    (b"", "no conversations (the file is empty, or only blank lines)"),
    (b"\n  \n\n", "no conversations (the file is empty, or only blank lines)"),
    (GOOD.encode() + GOOD.encode().replace(b"Hello", b"H\xffllo"), "line 2: not UTF-8 (byte 72 of the line)"),
    (GOOD.encode() * 2 + GOOD.replace("Hello", "\\ud800").encode(),
     "line 3: a lone surrogate escape such as \\ud800, which is no character: text must be valid Unicode"),
    (b"[" * 100_000 + b"]" * 100_000 + b"\n", "line 1: JSON nested too deeply"),
], ids=["empty", "blank lines", "invalid utf-8", "lone surrogate", "deep nesting"])
def test_a_bad_custom_file_is_named_with_its_line(tmp_path, content, error):
    chats = tmp_path / "chats.jsonl"
    chats.write_bytes(content)
    assert compile_custom(tmp_path, f"mine={chats}") == f"Error: nothing was written: {chats}{',' if error.startswith('line') else ':'} {error}"


def test_a_custom_line_longer_than_a_conversation_may_be_is_refused(tmp_path):
    chats = tmp_path / "chats.jsonl"
    with open(chats, "wb") as f:
        f.write(GOOD.encode())
        f.truncate(len(GOOD) + MAX_BODY_BYTES + 1)  # a line of NUL bytes, as long as it may not be
    message = compile_custom(tmp_path, f"mine={chats}")
    assert message == f"Error: nothing was written: {chats}, line 2: longer than {MAX_BODY_BYTES:,} bytes"


def test_a_custom_file_that_is_not_a_regular_file_is_refused(tmp_path):
    assert compile_custom(tmp_path, "mine=/dev/zero") == \
        "Error: nothing was written: /dev/zero: not a regular file: give a JSONL file"


@pytest.mark.parametrize("name", ["a\nb", "x" * 100_000, "../up", ""], ids=["newline", "long", "path", "empty"])
def test_a_custom_name_that_is_not_plain_and_short_is_refused(tmp_path, name):
    chats = tmp_path / "chats.jsonl"
    chats.write_text(GOOD)
    message = compile_custom(tmp_path, f"{name}={chats}")
    assert "use up to 64 letters, digits" in message or "is not of the form NAME=FILE.jsonl" in message


def test_a_custom_name_given_twice_is_refused(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(GOOD)
    second.write_text(GOOD)
    assert compile_custom(tmp_path, f"a={first}", f"a={second}") == (
        "Error: Invalid value for --custom: the name 'a' is given twice: each custom file needs its own name")


@pytest.mark.parametrize("change", ["answer = 'Z'", "source_row = source_row + 1", "messages = 9",
                                    "subject_id = NULL", "prompt_hash = 7", "characters = 1"])
def test_full_verify_covers_the_plain_columns(copy, change):
    """A changed answer (or any column SQL users query) fails verify like a changed conversation."""
    _, first, _ = split_row(copy, "mmlu", "all", "test")
    edit(copy, f"UPDATE example_data SET {change} WHERE id = {first + 1}")
    failed = [c for c in verify(copy) if not c.ok]
    assert [c.name for c in failed] == ["mmlu all/test"] and "content sha256" in failed[0].detail


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
        endless = datasette_query(url, copy, f"SELECT count(conversation_text({first + 1})) FROM ({ENDLESS})")
        assert not endless["ok"] and "took too long" in endless["error"], endless["error"]


def test_compile_replaces_a_file_of_another_schema_only_when_compiling_everything(copy):
    """Nothing of a file with another schema is kept (its splits would be copied through its
    own SQL): `--only` refuses it, a full compile replaces it."""
    edit(copy, "DROP VIEW examples", f"CREATE VIEW examples AS {ENDLESS}")
    result = nanotasks("compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", copy, check=False, timeout=120)
    assert result.returncode == 1 and NOT_OURS in result.stderr.strip().splitlines()[-1]
    nanotasks("compile", "--mirror", SAMPLE, "--db", copy, timeout=300)
    assert all(check.ok for check in verify(copy))


def test_export_through_a_link_replaces_the_file_it_names(sample_db, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    target, link = tmp_path / "elsewhere" / "out.jsonl", tmp_path / "out.jsonl"
    target.write_text("old\n")
    link.symlink_to(target)
    nanotasks(*EXPORT, "--db", sample_db, "-o", link)
    assert link.is_symlink() and target.read_text().count("\n") == len(GSM8K("main", "train", db=sample_db))
    assert leftovers(tmp_path / "elsewhere") == ["out.jsonl"]
