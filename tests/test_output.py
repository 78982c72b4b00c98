"""How the CLI speaks: help, hints that lead somewhere, one JSON shape, one table style, colour
only on a terminal, and round trips between its commands. In process through click's
CliRunner where a subprocess adds nothing; real subprocesses for signals and pipes."""

import json
import os
import pty
import subprocess

import pytest

from nanotasks.output import table
from nanotasks.store.reader import Store
from nanotasks.tasks.arc import ARC
from nanotasks.tasks.customjson import CustomJSON
from tests.conftest import NANOTASKS, SAMPLE, invoke, nanotasks
from tests.helpers import without_cost


def test_bare_command_and_dash_h_print_help():
    bare = invoke()
    assert bare.returncode == 0 and bare.stdout.startswith("Usage: nanotasks [OPTIONS]")
    assert "show " in bare.stdout and "compile " in bare.stdout
    for args in (["-h"], ["show", "-h"], ["compile", "-h"]):
        result = invoke(*args)
        assert result.returncode == 0 and result.stdout.startswith("Usage: nanotasks"), args


def test_verify_on_a_missing_file_says_it_is_missing_not_damaged(tmp_path):
    result = invoke("verify", "--db", tmp_path / "absent.db")
    assert result.returncode == 1 and "DAMAGED" not in result.stdout + result.stderr
    assert result.stderr.startswith(f"Error: {tmp_path / 'absent.db'}: no such file.")


def test_verify_does_not_advise_running_verify(sample_db, tmp_path):
    cut = tmp_path / "cut.db"
    cut.write_bytes(sample_db.read_bytes()[:50_000])
    assert "nanotasks verify" in invoke("info", "--db", cut).stderr  # readers advise it
    result = invoke("verify", "--db", cut)
    assert result.returncode == 1 and "DAMAGED" in result.stdout
    assert "nanotasks verify" not in result.stdout


def test_a_compile_that_writes_nothing_says_whether_there_was_a_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    db = tmp_path / "never.db"
    result = invoke("compile", "--only", "gsm8k", "--mirror", empty, "--db", db)
    assert result.returncode == 1 and not db.exists()
    assert f"nothing was written (there was no {db} before, and there is none now)" in result.stdout
    assert "as it was" not in result.stdout


def test_a_compile_whose_sources_all_fail_says_so_on_their_rows(previous, tmp_path):
    """Over an existing file, from a mirror that holds nothing: the splits asked for are kept
    and say they failed, the others are kept as not asked for; nothing new was written, so it
    does not say "wrote"."""
    db, before = previous
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke(
        "compile", "--only", "gsm8k", "--only", "humaneval", "--mirror", empty, "--db", db
    )
    assert result.returncode == 1
    *table, last = result.stdout.splitlines()
    assert without_cost(last) == f"nothing was written; {db} is as it was"
    statuses = {row.split()[0]: row.split("  ")[-1] for row in table[2:]}
    assert statuses == {
        "arc": "kept",
        "core": "kept",
        "core_settings.json": "kept",
        "eval_bundle/core.yaml": "kept",
        "eval_bundle/eval_meta_data.csv": "kept",
        "gsm8k": "failed (kept previous)",
        "humaneval": "failed (kept previous)",
        "mmlu": "kept",
        "smoltalk": "kept",
        "words_alpha.txt": "kept",
    }
    assert "wrote" not in result.stdout
    assert db.read_bytes() == before


@pytest.mark.parametrize("given", ["--db", "NANOTASKS_DB"])
def test_compile_refuses_a_directory_that_does_not_exist(given, tmp_path):
    db = tmp_path / "typo" / "sub" / "x.db"
    where = ["--db", db] if given == "--db" else []
    env = {"NANOTASKS_DB": str(db)} if given == "NANOTASKS_DB" else None
    result = invoke("compile", "--only", "gsm8k", "--mirror", SAMPLE, *where, env=env)
    assert result.returncode == 1 and not (tmp_path / "typo").exists()
    assert (
        result.stderr
        == f"Error: nothing was written: {db.parent} does not exist: create it, or give "
        f"another path for the file\n"
    )


def test_default_directory_is_still_made(tmp_path):
    cache = tmp_path / "cache"
    result = invoke(
        "compile",
        "--only",
        "humaneval",
        "--mirror",
        SAMPLE,
        env={"XDG_CACHE_HOME": str(cache), "NANOTASKS_DB": None},
    )
    assert result.returncode == 0 and (cache / "nanotasks" / "nanotasks.db").is_file()


def test_names_are_not_case_sensitive(sample_db):
    assert (
        invoke("show", "GSM8K", "test", "0", "--subset", "main", "--db", sample_db).returncode == 0
    )


def test_an_export_compiles_back_as_a_custom_file(sample_db, tmp_path):
    exported = tmp_path / "arc.jsonl"
    result = invoke(
        "export", "arc", "test", "--subset", "ARC-Easy", "-o", exported, "--db", sample_db
    )
    assert result.stderr == f"wrote 6 conversations of arc ARC-Easy/test to {exported}\n"
    db = tmp_path / "again.db"
    assert (
        invoke(
            "compile", "--only", "customjson", "--custom", f"again={exported}", "--db", db
        ).returncode
        == 0
    )
    expected = [
        {"messages": example["messages"]} for example in ARC("ARC-Easy", "test", db=sample_db)
    ]
    assert list(CustomJSON(name="again", db=db)) == expected == list(CustomJSON(filepath=exported))


def test_info_names_a_custom_files_absolute_path_and_no_mirror(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chats.jsonl").write_text(
        '[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]\n'
    )
    invoke("compile", "--only", "customjson", "--custom", "mine=chats.jsonl", "--db", "x.db")
    [custom] = [
        line
        for line in invoke("info", "--db", "x.db").stdout.splitlines()
        if line.startswith("customjson")
    ]
    assert custom.split()[-2:] == [
        str(tmp_path / "chats.jsonl"),
        Store("x.db").splits()[0]["sha256"][:12],
    ]


# sqlite3 also hands the function's exception to sys.unraisablehook once a library in this
# process has turned callback tracebacks on; that report is expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_conversation_functions_say_what_they_take(sample_db):
    result = invoke("sql", "--db", sample_db, "SELECT conversation_text('abc')")
    assert result.returncode == 1 and result.stderr == (
        "Error: SQL error: user-defined function raised exception: "
        "conversation(id) and conversation_text(id) "
        "take the integer `id` column of examples, not 'abc'\n"
    )


def test_json_names_splits_by_task_subset_split_everywhere(sample_db):
    info = json.loads(invoke("info", "--json", "--db", sample_db).stdout)
    verify = json.loads(invoke("verify", "--quick", "--json", "--db", sample_db).stdout)
    overlap = json.loads(invoke("overlap", "--json", "--db", sample_db).stdout)
    for report in (info, verify, overlap):
        assert report["path"] == str(sample_db)
    keys = {(s["task"], s["subset"], s["split"]) for s in info["splits"]}
    assert {(c["task"], c["subset"], c["split"]) for c in verify["checks"] if "task" in c} == keys
    assert {c["file"] for c in verify["checks"] if "file" in c} == {
        f["file"] for f in info["files"]
    }
    assert {(s["task"], s["subset"], s["split"]) for s in overlap["splits"]} < keys


def test_tables_right_align_numbers_and_cut_wide_cells_to_the_terminal():
    rows = [["a", 5, "1,234", "x" * 50], ["bb", 12, "", "y"]]
    assert table(["name", "n", "bytes", "text"], rows).splitlines() == [
        "name   n  bytes  text",
        "----  --  -----  --------------------------------------------------",
        "a      5  1,234  " + "x" * 50,
        "bb    12         y",
    ]
    cut = table(["name", "n", "bytes", "text"], rows, width=30).splitlines()
    assert max(map(len, cut)) == 30 and cut[2].endswith("x" * 12 + "…")


@pytest.mark.parametrize(
    "command",
    [
        "show humaneval test 0",
        # megabytes: the pipe fills
        "sql 'SELECT conversation_text(a.id) FROM examples AS a, examples AS b'",
    ],
)
def test_output_into_a_closed_pipe_exits_quietly(sample_db, command):
    """`nanotasks show ... | head -1`: the reader had all it wanted, which is no failure."""
    piped = subprocess.run(
        [
            "bash",
            "-c",
            f"set -o pipefail; {' '.join(NANOTASKS)} {command} --db {sample_db} | head -1",
        ],
        capture_output=True,
        text=True,
    )
    assert piped.returncode == 0 and piped.stderr == "" and len(piped.stdout.splitlines()) == 1


def run_on_a_terminal(*args, env=None):
    """A command with its standard output and error on a pseudo-terminal: what a person sees."""
    parent, child = pty.openpty()
    process = subprocess.Popen(
        [*NANOTASKS, *map(str, args)], stdout=child, stderr=child, env={**os.environ, **(env or {})}
    )
    os.close(child)
    output = b""
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:  # EIO once the command has exited
            break
        if not chunk:
            break
        output += chunk
    os.close(parent)
    return process.wait(), output.decode()


@pytest.mark.parametrize("no_color", [False, True])
def test_damage_and_errors_are_red_on_a_terminal_unless_no_color(sample_db, tmp_path, no_color):
    cut = tmp_path / "cut.db"
    cut.write_bytes(sample_db.read_bytes()[:50_000])
    env = {"NO_COLOR": "1"} if no_color else {"NO_COLOR": ""}
    status, output = run_on_a_terminal("verify", "--db", cut, env=env)
    assert status == 1 and ("\x1b[31m" in output) != no_color and "DAMAGED" in output
    status, output = run_on_a_terminal("info", "--db", tmp_path / "absent.db", env=env)
    assert status == 1 and ("\x1b[31m" in output) != no_color
    piped = invoke("verify", "--db", cut)  # not a terminal: never colour
    assert "\x1b[" not in piped.stdout + piped.stderr


def test_progress_only_on_a_terminal_and_never_with_json(tmp_path):
    status, output = run_on_a_terminal(
        "compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", tmp_path / "a.db"
    )
    assert status == 0 and "[0 done] gsm8k main/test: checking  0/" in output
    assert "[1 done] gsm8k main/test  0/" in output  # then the rows are compressed
    status, output = run_on_a_terminal(
        "compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", tmp_path / "b.db", "--json"
    )
    assert status == 0 and "done]" not in output
    piped = nanotasks("compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", tmp_path / "c.db")
    assert piped.stderr == ""
