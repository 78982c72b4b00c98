"""cli.py: info, show, where the file lives, and one clear line (exit status 1 or 2, no
traceback) for every mistake. Real files; in process through click's CliRunner where only the
output is checked, real subprocesses where the process is (exit status, a full standard output)."""

import contextlib
import fcntl
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from nanotasks.store.reader import Store
from tests.conftest import NANOTASKS, SAMPLE, invoke, nanotasks
from tests.helpers import without_cost
from tests.reference import SPLITS


def fails(*args, status=1, **kwargs):
    """Run a command that must fail, in process; returns its one-line error."""
    result = invoke(*args, **kwargs)
    assert result.returncode == status, result
    return result.stderr.strip().splitlines()[-1]


def test_info_lists_splits_and_provenance(sample_db):
    lines = invoke("info", "--db", sample_db).stdout.splitlines()
    assert lines[0].split() == [
        "task",
        "subset",
        "split",
        "rows",
        "bytes",
        "source",
        "revision",
        "sha256",
    ]
    store = Store(sample_db)
    for split in store.splits():
        # Where the config or split read differs from the stored subset or split, it is shown.
        source = {("mmlu", "all", "auxiliary_train"): "cais/mmlu:auxiliary_train/train"}.get(
            (split["task"], split["subset"], split["split"]), split["repo"]
        )
        assert any(
            line.split()[:5]
            == [
                split["task"],
                split["subset"],
                split["split"],
                str(split["rows"]),
                f"{split['stored_bytes']:,}",
            ]
            and line.split()[5:] == [source, "mirror", split["sha256"][:12]]
            for line in lines
        ), split
    assert any(line.split()[:2] == ["file", "words_alpha.txt"] for line in lines)


def test_info_json(sample_db):
    info = json.loads(invoke("info", "--json", "--db", sample_db).stdout)
    assert info["path"] == str(sample_db)
    splits = {(s["task"], s["subset"], s["split"]): s for s in info["splits"]}
    assert {key for key in splits if key[0] != "core"} == set(SPLITS)  # core: tests/test_core.py
    for key, (repo, config, source_split, _) in SPLITS.items():
        assert (splits[key]["repo"], splits[key]["config"], splits[key]["source_split"]) == (
            repo,
            config,
            source_split,
        )
        assert splits[key]["revision"] is None and len(splits[key]["sha256"]) == 64
    [words] = [f for f in info["files"] if f["file"] == "words_alpha.txt"]
    assert (
        words["file"] == "words_alpha.txt"
        and words["size"] == (SAMPLE / "dwyl/english-words/words_alpha.txt").stat().st_size
    )


def test_show_prints_a_readable_conversation(sample_db):
    store = Store(sample_db)
    split = store.split("gsm8k", "main", "train")
    position = next(
        i for i in range(split.rows) if "muffins" in store.read(split, i)["messages"][0]["content"]
    )
    out = invoke("show", "gsm8k", "train", position, "--subset", "main", "--db", sample_db).stdout
    assert out.startswith("[user]\nEach box holds 3 rows of 4 muffins.")
    assert (
        "\n[assistant]\nOne box holds 3*4 = <<3*4>>12 muffins.\n"
        "Jon packed 7*12 = <<7*12=84>>84 muffins.\n#### 84\n" in out
    )
    as_json = invoke(
        "show", "gsm8k", "train", position, "--subset", "main", "--json", "--db", sample_db
    ).stdout
    assert json.loads(as_json) == store.read(split, position)


def test_show_picks_the_only_subset_and_prints_extras(sample_db):
    out = invoke("show", "humaneval", "test", "0", "--db", sample_db).stdout
    assert out.startswith("[user]\n") and "\n[assistant]\n" in out
    assert '"entry_point": ' in out.splitlines()[-1]


VALID = "give 0 to 5, or -6 to -1 from the end"


def test_show_mistakes(sample_db):
    assert (
        fails("show", "arc", "test", "0", "--db", sample_db, status=2)
        == "Error: arc test is stored for subsets ARC-Challenge, ARC-Easy: "
        "pick one with --subset (subset= in Python)"
    )
    assert (
        fails("show", "gsm8k", "test", "6", "--subset", "main", "--db", sample_db)
        == f"Error: gsm8k main/test has 6 examples, no index 6: {VALID}"
    )
    assert (
        fails("show", "gsm8k", "test", "-7", "--subset", "main", "--db", sample_db)
        == f"Error: gsm8k main/test has 6 examples, no index -7: {VALID}"
    )
    assert fails("show", "nope", "test", "0", "--db", sample_db, status=2).startswith(
        "Error: unknown benchmark 'nope'"
    )
    # a split or subset the benchmark never has: no compile could add it, so none is suggested
    assert (
        fails("show", "gsm8k", "validation", "0", "--subset", "main", "--db", sample_db, status=2)
        == "Error: gsm8k has no split 'validation': choose one of test, train"
    )
    assert (
        fails("show", "gsm8k", "test", "0", "--subset", "nope", "--db", sample_db, status=2)
        == "Error: gsm8k test has no subset 'nope': choose one of main, socratic"
    )
    assert (
        fails("show", "spellingbee", "train", "0", "--subset", "nope", "--db", sample_db, status=2)
        == "Error: spellingbee has no task 'nope': "
        "choose one of SpellingBee, SimpleSpelling (with --subset)"
    )


def test_show_counts_a_negative_index_from_the_end(sample_db):
    last = invoke("show", "gsm8k", "test", "-1", "--subset", "main", "--json", "--db", sample_db)
    assert json.loads(last.stdout) == Store(sample_db).read(
        Store(sample_db).split("gsm8k", "main", "test"), 5
    )


def test_show_generates_the_spelling_tasks(sample_db):
    from nanotasks.tasks.spellingbee import SimpleSpelling, SpellingBee

    for arguments, task in [
        ([], SpellingBee(split="test", db=sample_db)),
        (["--subset", "simplespelling"], SimpleSpelling(split="test", db=sample_db)),
    ]:
        shown = invoke("show", "spellingbee", "test", "3", "--json", *arguments, "--db", sample_db)
        assert json.loads(shown.stdout) == task[3]


@pytest.mark.parametrize(
    "command", [["info"], ["info", "--json"], ["show", "gsm8k", "test", "0", "--subset", "main"]]
)
def test_a_missing_file_is_one_clear_line(command, tmp_path):
    db = tmp_path / "missing.db"
    assert fails(*command, "--db", db) == (
        f"Error: {db}: no such file. If you have the file elsewhere, point --db (db= in Python) or "
        f"$NANOTASKS_DB at it; to build it, `nanotasks compile --db {db}` (add `--mirror DIR` to "
        f"read local snapshots instead of the hub)."
    )


def test_a_file_in_a_missing_directory_is_advised_to_make_the_directory_first(tmp_path):
    """The advice works when followed: the compile refuses a path in a missing directory."""
    db = tmp_path / "nodir" / "x.db"
    advice = fails("info", "--db", db)
    assert advice == (
        f"Error: {db}: no such file. If you have the file elsewhere, point --db (db= in Python) or "
        f"$NANOTASKS_DB at it; to build it, create the directory {db.parent} first, or choose a "
        f"path in one that exists, then `nanotasks compile --db {db}` (add `--mirror DIR` to read "
        f"local snapshots instead of the hub)."
    )
    db.parent.mkdir()
    invoke("compile", "--mirror", SAMPLE, "--only", "gsm8k", "--db", db, check=True)
    assert invoke("info", "--db", db, check=True).stdout.startswith("task")


def wrong_files(tmp_path, sample_db):
    """(file, what the error must say) for files that are not a readable nanotasks file."""
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    empty = tmp_path / "empty.db"
    empty.touch()
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE t (x)")
    connection.close()
    newer = shutil.copy(sample_db, tmp_path / "newer.db")
    with sqlite3.connect(newer) as connection:
        connection.execute("PRAGMA user_version = 2")
    connection.close()
    cut = tmp_path / "cut.db"
    cut.write_bytes(sample_db.read_bytes()[:20_000])
    return [
        (text, "not a nanotasks file (not SQLite)"),
        (empty, "not a nanotasks file (not SQLite)"),
        (foreign, "an SQLite file, but not one nanotasks wrote"),
        (newer, "written in nanotasks file format 2; this nanotasks reads format 1"),
        (cut, "damaged: 20000 bytes, but its header says"),
    ]


def test_a_wrong_file_is_one_clear_line(sample_db, tmp_path):
    for db, message in wrong_files(tmp_path, sample_db):
        for command in (["info"], ["show", "humaneval", "test", "0"]):
            assert fails(*command, "--db", db).startswith(f"Error: {db}: {message}")


def test_compile_does_not_overwrite_a_file_it_did_not_write(sample_db, tmp_path):
    for db, message in wrong_files(tmp_path, sample_db):
        if "format 2" in message:
            continue
        before = db.read_bytes()
        assert fails("compile", "--mirror", SAMPLE, "--db", db).startswith(
            f"Error: nothing was written: {db}: {message}"
        )
        assert db.read_bytes() == before


@pytest.mark.parametrize(
    "change, reason",
    [
        ("PRAGMA user_version = 2", "written in nanotasks file format 2"),
        ("CREATE TABLE notes (x)", "not a nanotasks file of this version: its schema is not"),
    ],
    ids=["version", "schema"],
)
def test_compile_replaces_a_file_of_another_format_version(sample_db, tmp_path, change, reason):
    db = shutil.copy(sample_db, tmp_path / "old.db")
    with sqlite3.connect(db) as connection:
        connection.execute(change)
    connection.close()
    # --only would have to keep splits this version cannot read: refused, file untouched, and
    # the way out is a compile without --only (not the reader's "recompile it", just refused).
    before = db.read_bytes()
    error = fails("compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", db)
    assert error.startswith(f"Error: nothing was written: {db}: {reason}")
    assert error.endswith(
        "--only keeps the other splits of the file it replaces, and cannot read them from "
        "this one: compile without --only to replace the whole file, or move it away."
    )
    assert "Recompile" not in error
    assert db.read_bytes() == before
    invoke("compile", "--mirror", SAMPLE, "--db", db, check=True)
    assert db.read_bytes() == sample_db.read_bytes()


def test_only_takes_benchmark_module_names(tmp_path):
    error = fails(
        "compile", "--only", "bogus", "--mirror", SAMPLE, "--db", tmp_path / "x.db", status=2
    )
    assert error == (
        "Error: unknown benchmark 'bogus': choose from "
        "arc, mmlu, gsm8k, humaneval, smoltalk, spellingbee, core, customjson, chat"
    )
    assert not (tmp_path / "x.db").exists()


def test_only_spellingbee_stores_just_the_word_list(tmp_path):
    db = tmp_path / "words.db"
    invoke("compile", "--only", "spellingbee", "--mirror", SAMPLE, "--db", db, check=True)
    store = Store(db)
    assert store.splits() == [] and [f["name"] for f in store.files()] == ["words_alpha.txt"]


@pytest.fixture
def environment(tmp_path):
    """The environment without NANOTASKS_DB and XDG_CACHE_HOME, with HOME under tmp_path (for
    invoke: None unsets a variable)."""
    return {"NANOTASKS_DB": None, "XDG_CACHE_HOME": None, "HOME": str(tmp_path / "home")}


def test_nanotasks_db_environment_variable(environment, tmp_path):
    db = tmp_path / "from-env.db"
    environment["NANOTASKS_DB"] = str(db)
    invoke("compile", "--only", "humaneval", "--mirror", SAMPLE, env=environment, check=True)
    assert [s["task"] for s in Store(db).splits()] == ["humaneval"]
    assert "humaneval" in invoke("info", env=environment, check=True).stdout
    assert invoke("show", "humaneval", "test", "0", env=environment, check=True).stdout.startswith(
        "[user]"
    )


def test_default_file_is_in_the_users_cache_dir(environment, tmp_path):
    invoke("compile", "--only", "humaneval", "--mirror", SAMPLE, env=environment, check=True)
    assert (tmp_path / "home/.cache/nanotasks/nanotasks.db").is_file()
    environment["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    invoke("compile", "--only", "gsm8k", "--mirror", SAMPLE, env=environment, check=True)
    assert [s["task"] for s in Store(tmp_path / "cache/nanotasks/nanotasks.db").splits()] == [
        "gsm8k"
    ] * 4
    assert "gsm8k" in invoke("info", env=environment, check=True).stdout
    assert "XDG_CACHE_HOME" in invoke("compile", "--help", env=environment, check=True).stdout


def test_compile_json_reports_every_split_and_each_failure(tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(SAMPLE / "openai", mirror / "openai")
    (mirror / "openai/gsm8k/socratic/train-00000-of-00001.parquet").unlink()
    result = invoke(
        "compile",
        "--only",
        "gsm8k",
        "--mirror",
        mirror,
        "--db",
        tmp_path / "x.db",
        "--json",
        check=False,
    )
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["written"] and report["path"] == str(tmp_path / "x.db")
    by_name = {(o["task"], o["subset"], o["split"]): o for o in report["outcomes"]}
    assert set(by_name) == {
        ("gsm8k", "main", "test"),
        ("gsm8k", "main", "train"),
        ("gsm8k", "socratic", "test"),
        ("gsm8k", "socratic", "train"),
    }
    written = by_name["gsm8k", "main", "train"]
    assert written["status"] == "written" and written["rows"] == 8
    assert written["seconds"] == round(written["seconds"], 3)
    failed = by_name["gsm8k", "socratic", "train"]
    assert failed["status"] == "failed" and "socratic/train" in failed["error"]


def test_only_customjson_adds_custom_files_and_fetches_nothing(sample_db, tmp_path):
    db = tmp_path / "with-custom.db"
    shutil.copyfile(sample_db, db)
    chats = tmp_path / "chats.jsonl"
    chats.write_text(
        '[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]\n'
    )
    # no --mirror and no network: only the custom file is read
    result = nanotasks(
        "compile",
        "--only",
        "customjson",
        "--custom",
        f"mine={chats}",
        "--db",
        db,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert "customjson mine/train" in result.stdout
    store = Store(db)
    assert len(store.splits()) == len(Store(sample_db).splits()) + 1
    assert (
        store.read(store.split("customjson", "mine", "train"), 0)["messages"][1]["content"]
        == "Hello!"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["info"],
        ["verify"],
        ["verify", "--quick"],
        ["overlap"],
        ["show", "gsm8k", "test", "0", "--subset", "main"],
        ["sql", "SELECT * FROM examples"],
        ["export", "gsm8k", "test", "--subset", "main"],
    ],
)
def test_stdout_on_a_full_disk_is_one_line(sample_db, command):
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [*NANOTASKS, *command, "--db", str(sample_db)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1:] == [
        "Error: cannot write standard output: No space left on device"
    ]
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def counting(rows):
    return f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "


@pytest.mark.parametrize(
    "command",
    [
        ["info", "--json"],
        ["sql", counting(200_000) + "SELECT i FROM n"],
        ["sql", "--json", counting(300) + "SELECT i FROM n"],
    ],
    ids=["info", "sql", "sql-json-flushed-at-exit"],
)
def test_a_reader_closing_the_pipe_early_ends_the_command_quietly(sample_db, command):
    """`nanotasks ... | head`: the reader takes a few bytes and closes the pipe; the output
    is larger than the pipe holds (one page), so the command writes to it after the close,
    while running or (sql --json's 6.5 kB, under the 8 kB buffer) at main()'s final flush."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    process = subprocess.Popen(
        [*NANOTASKS, *command, "--db", str(sample_db)],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},  # as in a shell
    )
    os.close(write_end)
    with open(read_end, "rb") as reader:
        assert reader.read(10)
    stderr = process.communicate(timeout=60)[1]
    assert (process.returncode, stderr) == (0, "")


def main_started(process):
    """Wait until `process` catches SIGTERM, which main() does on its first line (Python alone
    catches only SIGINT): from then on the command answers signals. Returns the time then."""
    caught = Path(f"/proc/{process.pid}/status")
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError, StopIteration):
            line = next(x for x in caught.read_text().splitlines() if x.startswith("SigCgt:"))
            if int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
                return time.monotonic()
        time.sleep(0.001)  # short: the time returned is when main() began
    if process.poll() is None:
        raise AssertionError("main() did not begin within 60 s")
    raise AssertionError(f"it ended before main() began: {process.communicate()}")


def exited(process):
    """Whether `process` has ended (a zombie not yet waited for): a signal sent now is lost."""
    return Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def signalled_compile(directory, previous, signum=None, offset=0.0):
    """A compile of the whole sample over a copy of `previous` in `directory`, sent `signum`
    `offset` seconds after main() began (unless it had ended by then). Returns the process,
    its output, whether the signal was sent, and the seconds from main() to the end."""
    directory.mkdir()
    shutil.copyfile(previous, directory / "e.db")
    command = ["compile", "--mirror", SAMPLE, "--jobs", "2", "--db", directory / "e.db"]
    process = subprocess.Popen(
        [*NANOTASKS, *map(str, command)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )
    try:
        began = main_started(process)
        sent = False
        if signum is not None:
            time.sleep(offset)  # the offset swept, not a wait for an event
            sent = not exited(process)
            if sent:
                process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    return process, stdout, stderr, sent, time.monotonic() - began


def said_wrote(stdout, db):
    """Whether a compile's output ends with its whole closing line, saying it wrote `db`."""
    return stdout.endswith("\n") and without_cost(stdout.splitlines()[-1]) == f"wrote {db}"


def test_a_signal_at_any_moment_of_a_compile_gives_its_status_and_a_true_line(tmp_path):
    """SIGINT and SIGTERM swept over a whole compile, from main()'s first line to past its end,
    at offsets spread over one observed run (whatever the machine's speed). Each ends in one
    of: 128 + the signal (130, 143), one line, and the previous file byte-identical; or, sent
    after the rename, the new file and a line saying it was written; or, after the command's
    output (which says "wrote"), death by the signal, which a shell reports as 128 + it too.
    Never a traceback, a lost signal, or a temporary or lock file left."""
    nanotasks("compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", tmp_path / "old.db")
    old = (tmp_path / "old.db").read_bytes()
    process, *_, took = signalled_compile(tmp_path / "observed", tmp_path / "old.db")
    assert process.returncode == 0
    new = (tmp_path / "observed" / "e.db").read_bytes()
    assert new != old
    runs = 8
    for run in range(runs):
        signum = (signal.SIGINT, signal.SIGTERM)[run % 2]
        directory = tmp_path / f"run{run}"
        offset = took * 1.1 * run / (runs - 1)
        process, stdout, stderr, sent, _ = signalled_compile(
            directory, tmp_path / "old.db", signum, offset
        )
        db = directory / "e.db"
        said = f"at {offset:.3f} s: {process.returncode}, {stderr!r}"
        assert "Traceback" not in stderr, said
        assert sorted(p.name for p in directory.iterdir()) == ["e.db"], said
        lines = stderr.strip().splitlines()
        if not sent or process.returncode == -signum:  # after the command's end
            assert process.returncode in (0, -signum) and lines == [], said
            assert said_wrote(stdout, db) and db.read_bytes() == new, said
            continue
        assert process.returncode == 128 + signum, said
        if said_wrote(stdout, db) or lines == [f"interrupted after writing {db}"]:
            # once the command said "wrote": at most one line, which says nothing else
            assert lines in ([], ["interrupted"], [f"interrupted after writing {db}"]), said
            assert db.read_bytes() == new, said
        else:
            assert lines in (
                ["interrupted"],
                [f"interrupted: nothing was written; {db} is as it was"],
            )
            assert db.read_bytes() == old and "wrote" not in stdout, said
