"""tasks/core.py: nanochat's CORE eval bundle compiled line for line, read back as base_eval reads
the unzipped bundle; a bundle missing a file core.yaml names, a bad line, no zip at all; and the
real reconstruction in ../shared/hub."""

import csv
import hashlib
import io
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import zipfile

import pytest
import yaml

from nanotasks.store.reader import NotInStore, Store
from nanotasks.tasks import core
from tests.conftest import SAMPLE, invoke
from tests.fakehub import FakeHub
from tests.helpers import assert_one_clear_line, failures, mirror_copy

BUNDLE = SAMPLE / "karpathy-public" / "eval_bundle.zip"
DATA = "eval_bundle/eval_data/"


def data_files(bundle=BUNDLE):
    """{dataset_uri: the file's bytes} of every data file in a bundle."""
    with zipfile.ZipFile(bundle) as z:
        return {n.removeprefix(DATA): z.read(n) for n in z.namelist() if n.startswith(DATA)}


def base_eval_reading(directory):
    """What base_eval hands evaluate_task from an unzipped bundle in `directory`: per core.yaml
    task, its label, settings, random baseline and rows, shuffled with Random(1337) (written here
    from what base_eval does, reading files as it does: text mode, json.loads of each stripped
    line)."""
    bundle = directory / "eval_bundle"
    config = yaml.safe_load((bundle / "core.yaml").read_text(encoding="utf-8"))
    with open(bundle / "eval_meta_data.csv", encoding="utf-8") as f:
        baselines = {row["Eval Task"]: float(row["Random baseline"]) for row in csv.DictReader(f)}
    tasks = []
    for entry in config["icl_tasks"]:
        with open(bundle / "eval_data" / entry["dataset_uri"], encoding="utf-8") as f:
            rows = [json.loads(line.strip()) for line in f]
        random.Random(1337).shuffle(rows)
        meta = {
            "task_type": entry["icl_task_type"],
            "dataset_uri": entry["dataset_uri"],
            "num_fewshot": entry["num_fewshot"][0],
            "continuation_delimiter": entry.get("continuation_delimiter", " "),
        }
        tasks.append((entry["label"], meta, baselines[entry["label"]], rows))
    return tasks


def test_every_line_is_stored_as_it_is(sample_db):
    store = Store(sample_db)
    files = data_files()
    assert len(files) == 4
    for uri, data in files.items():
        lines = core.stored_lines(uri, sample_db)
        assert "".join(lines).encode() == data  # CRLF, a last line without a break, raw UTF-8
        assert len(lines) == len(data.decode().splitlines())
        assert store.split("core", uri, "test").rows == len(lines)
    with zipfile.ZipFile(BUNDLE) as bundle:
        for name in ("eval_bundle/core.yaml", "eval_bundle/eval_meta_data.csv"):
            assert store.read_file(name) == bundle.read(name)


def test_info_lists_a_split_per_data_file_with_its_lines(sample_db):
    info = json.loads(invoke("info", "--json", "--db", sample_db, check=True).stdout)
    splits = {s["subset"]: s for s in info["splits"] if s["task"] == "core"}
    assert {uri: s["rows"] for uri, s in splits.items()} == {
        uri: data.count(b"\n") + (not data.endswith(b"\n")) for uri, data in data_files().items()
    }
    assert {(s["split"], s["repo"], s["revision"]) for s in splits.values()} == {
        ("test", "karpathy-public/eval_bundle.zip", None)
    }
    files = {f["file"]: f for f in info["files"]}
    assert files["eval_bundle/core.yaml"]["repo"] == "karpathy-public/eval_bundle.zip"


def test_tasks_and_rows_are_what_base_eval_reads(sample_db, tmp_path):
    with zipfile.ZipFile(BUNDLE) as bundle:
        bundle.extractall(tmp_path)
    expected = base_eval_reading(tmp_path)
    tasks = core.tasks(sample_db)
    assert [
        (t.label, t.meta(), t.random_baseline, core.eval_rows(t, sample_db)) for t in tasks
    ] == (expected)
    # the awkward cases are there: a delimiter with a line break, one file for two tasks
    assert tasks[1].continuation_delimiter == "\nAnswer: "
    assert tasks[0].dataset_uri == tasks[1].dataset_uri
    assert core.eval_rows(tasks[0], sample_db, max_per_task=2) == expected[0][3][:2]
    # key order too, as json.loads keeps it
    assert [list(row) for row in core.rows(tasks[0].dataset_uri, sample_db)][1] == [
        "gold",
        "query",
        "choices",
    ]


# Reading a compiled file needs none of the compile's extras: each import of them fails here.
READ_WITHOUT_COMPILE_EXTRAS = """
import hashlib, io, json, sys, zipfile
for name in ("yaml", "datasets", "huggingface_hub", "pyarrow", "numpy"):
    sys.modules[name] = None
from nanotasks.tasks import core
db = sys.argv[1]
tasks = [[t.label, t.meta(), t.random_baseline, core.eval_rows(t, db)] for t in core.tasks(db)]
rebuilt = zipfile.ZipFile(io.BytesIO(core.bundle_zip(db)))
files = {name: hashlib.sha256(rebuilt.read(name)).hexdigest() for name in rebuilt.namelist()}
print(json.dumps([tasks, files]))
"""


def test_reading_needs_no_yaml(sample_db, tmp_path):
    """The settings come from what the compile parsed of core.yaml (PyYAML is the compile's
    extra), and equal what base_eval parses of it."""
    result = subprocess.run(
        [sys.executable, "-c", READ_WITHOUT_COMPILE_EXTRAS, sample_db],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    tasks, files = json.loads(result.stdout)
    with zipfile.ZipFile(BUNDLE) as bundle:
        bundle.extractall(tmp_path)
        assert files == {n: hashlib.sha256(bundle.read(n)).hexdigest() for n in bundle.namelist()}
    assert tasks == json.loads(json.dumps(base_eval_reading(tmp_path)))


def test_the_bundle_comes_back_byte_for_byte(sample_db):
    rebuilt = zipfile.ZipFile(io.BytesIO(core.bundle_zip(sample_db)))
    with zipfile.ZipFile(BUNDLE) as bundle:
        assert sorted(rebuilt.namelist()) == sorted(bundle.namelist())
        assert all(rebuilt.read(name) == bundle.read(name) for name in bundle.namelist())


@pytest.mark.parametrize(
    "line, messages, letters, answer",
    [
        (
            '{"query": "Q: 2+2?\\n", "choices": ["3", "4"], "gold": 1}\n',
            ["Q: 2+2?\n- 3=0\n- 4=1", "1"],
            ["0", "1"],
            "1",
        ),
        (
            '{"context_options": ["Ann thanked Bo because Ann", "Ann thanked Bo because Bo"], '
            '"continuation": "helped.", "gold": 1}',
            ["- Ann thanked Bo because Ann helped.=0\n- Ann thanked Bo because Bo helped.=1", "1"],
            ["0", "1"],
            "1",
        ),
        (
            '{"context": "Snow is", "continuation": "white"}\r\n',
            ["Snow is", "white"],
            None,
            "white",
        ),
    ],
    ids=["multiple_choice", "schema", "language_modeling"],
)
def test_a_row_reads_as_a_conversation(line, messages, letters, answer):
    example = core.example(line)
    assert [m["content"] for m in example.conversation["messages"]] == messages
    assert example.conversation.get("letters") == letters and example.answer == answer
    assert example.conversation["line"] == line


@pytest.mark.parametrize(
    "line, reason",
    [
        ("", "Expecting value"),
        ("[1, 2]", "a JSON list, not an object"),
        ('{"query": "Q", "choices": ["a"], "gold": 3}', "gold 3 is not the number of one of 1"),
        ('{"query": "Q", "choices": ["a", 2], "gold": 0}', "expected list of str"),
        ('{"context": "Snow is"}', "no field 'continuation'"),
    ],
)
def test_a_bad_line_stops_the_compile_naming_it(line, reason, previous):
    db, before = previous
    mirror = db.parent / "mirror"
    with zipfile.ZipFile(BUNDLE) as bundle, zipfile.ZipFile(bundle_path(mirror), "w") as out:
        for name in bundle.namelist():
            data = bundle.read(name)
            if name.endswith("last_word.jsonl"):
                data = data.replace(b"\n", f"\n{line}\n".encode(), 1)
            out.writestr(name, data)
    result = invoke("compile", "--only", "core", "--mirror", mirror, "--db", db)
    assert_one_clear_line(
        result, "karpathy-public/eval_bundle.zip", "language_understanding/last_word.jsonl line 2"
    )
    assert reason in result.stderr and db.read_bytes() == before


def bundle_path(mirror):
    path = mirror / "karpathy-public" / "eval_bundle.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_a_file_core_yaml_names_but_the_bundle_lacks_fails_by_name(tmp_path):
    mirror = tmp_path / "mirror"
    with zipfile.ZipFile(BUNDLE) as bundle, zipfile.ZipFile(bundle_path(mirror), "w") as out:
        for name in bundle.namelist():
            data = bundle.read(name)
            if name.endswith("core.yaml"):
                data += b"- label: gone\n  dataset_uri: gone/away.jsonl\n  num_fewshot: [0]\n"
                data += b"  icl_task_type: language_modeling\n"
            if not name.endswith("quiz_show.jsonl"):
                out.writestr(name, data)
    db = tmp_path / "core.db"
    result = invoke("compile", "--only", "core", "--mirror", mirror, "--db", db)
    assert result.returncode == 1
    assert failures(result.stderr) == [
        "failed: core gone/away.jsonl/test: karpathy-public/eval_bundle.zip: the bundle has no "
        "eval_bundle/eval_data/gone/away.jsonl (core.yaml names it for gone)",
        "failed: core world_knowledge/quiz_show.jsonl/test: karpathy-public/eval_bundle.zip: the "
        "bundle has no eval_bundle/eval_data/world_knowledge/quiz_show.jsonl (core.yaml names it "
        "for quiz_show)",
    ]
    stored = {s["subset"] for s in Store(db).splits()}
    assert stored == set(data_files()) - {"world_knowledge/quiz_show.jsonl"}
    with pytest.raises(NotInStore, match="has no world_knowledge/quiz_show.jsonl, gone/away.jsonl"):
        core.bundle_zip(db)


def test_only_core_keeps_the_rest_and_a_failing_bundle_keeps_its_splits(previous):
    db, before = previous
    mirror = db.parent / "mirror"
    bundle_path(mirror).write_bytes(b"not a zip")
    result = invoke("compile", "--only", "core", "--mirror", mirror, "--db", db)
    assert result.returncode == 1
    [line] = failures(result.stderr)
    assert line.startswith("failed: core language_understanding/last_word.jsonl/test, ")
    assert line.endswith(
        "(kept the previous copy): karpathy-public/eval_bundle.zip: not a CORE eval bundle with "
        "a readable eval_bundle/core.yaml (File is not a zip file)"
    )
    assert db.read_bytes() == before
    shutil.copy(BUNDLE, bundle_path(mirror))
    status = compiled(invoke("compile", "--only", "core", "--json", "--mirror", mirror, "--db", db))
    assert {name for name, s in status.items() if s == "written"} == {
        *(f"core {uri}/test" for uri in data_files()),
        "eval_bundle/core.yaml",
        "eval_bundle/eval_meta_data.csv",
        "core_settings.json",
    }
    assert all(s == "kept" for name, s in status.items() if not name.startswith(("core", "eval")))


def compiled(result):
    assert result.returncode == 0, result.stderr
    outcomes = json.loads(result.stdout)["outcomes"]
    return {
        (f"{o['task']} {o['subset']}/{o['split']}" if "task" in o else o["file"]): o["status"]
        for o in outcomes
    }


def test_from_the_network_the_bundle_is_retried_and_its_hash_recorded(tmp_path, monkeypatch):
    """Fetched as the word list is (compiler/fetch.py's Fetcher.file), here from a fake server
    that fails twice first: its sha256 is the revision of every split and file of it."""
    hub = FakeHub.start(SAMPLE)
    try:
        hub.fail(2, status=503, prefix="/raw/")
        served = core.BUNDLE._replace(url=f"{hub.endpoint}/raw/karpathy-public/eval_bundle.zip")
        archive = core.BENCHMARK.archive._replace(file=served)
        monkeypatch.setattr(core, "BENCHMARK", core.BENCHMARK._replace(archive=archive))
        result = invoke("compile", "--only", "core", "--db", tmp_path / "core.db")
    finally:
        hub.stop()
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("unavailable (503)") == 2
    revision = "sha256:" + hashlib.sha256(BUNDLE.read_bytes()).hexdigest()
    store = Store(tmp_path / "core.db")
    assert {part["revision"] for part in [*store.splits(), *store.files()]} == {revision}


def test_without_a_bundle_the_mirror_compile_names_it(tmp_path):
    mirror = mirror_copy(tmp_path)
    (mirror / "karpathy-public" / "eval_bundle.zip").unlink()
    result = invoke("compile", "--mirror", mirror, "--db", tmp_path / "x.db")
    assert result.returncode == 1
    assert failures(result.stderr) == [
        f"failed: core: mirror has no karpathy-public/eval_bundle.zip (looked for "
        f"{mirror / 'karpathy-public' / 'eval_bundle.zip'})"
    ]


def test_the_reading_api_says_what_is_missing(tmp_path, sample_db):
    db = tmp_path / "no-core.db"
    invoke("compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", db, check=True)
    with pytest.raises(NotInStore, match=r"no core_settings.json .* --only core"):
        core.tasks(db)
    with pytest.raises(NotInStore, match="has no core nope.jsonl/test"):
        core.rows("nope.jsonl", sample_db)


def test_show_and_export_give_a_row_with_its_line(sample_db, tmp_path):
    subset = "language_understanding/last_word.jsonl"
    shown = invoke("show", "core", "test", "-1", "--subset", subset, "--db", sample_db, check=True)
    line = '{"context": "After the long winter the river finally began to", "continuation": "thaw"}'
    assert shown.stdout == (
        "[user]\nAfter the long winter the river finally began to\n\n[assistant]\nthaw\n\n"
        + json.dumps({"line": line}, ensure_ascii=False)
        + "\n"
    )
    out = tmp_path / "last_word.jsonl"
    invoke("export", "core", "test", "--subset", subset, "-o", out, "--db", sample_db, check=True)
    exported = [json.loads(row)["line"] for row in out.read_text().splitlines()]
    assert "".join(exported).encode() == data_files()[subset]


def test_full_verify_reads_every_core_row(sample_db):
    report = json.loads(invoke("verify", "--json", "--db", sample_db).stdout)
    checked = {c["subset"]: c for c in report["checks"] if c.get("task") == "core"}
    assert set(checked) == set(data_files()) and all(c["ok"] for c in checked.values())
    files = {c["file"] for c in report["checks"] if "file" in c}
    assert {"eval_bundle/core.yaml", "eval_bundle/eval_meta_data.csv"} <= files


def test_sql_over_core_rows(sample_db):
    with sqlite3.connect(sample_db) as db:
        counts = dict(
            db.execute("SELECT subset, count(*) FROM examples WHERE task = 'core' GROUP BY 1")
        )
    assert counts == {uri: len(data.decode().splitlines()) for uri, data in data_files().items()}


def test_the_real_reconstruction(shared_hub, tmp_path):
    """../shared/hub's bundle lacks three files core.yaml names: each is named, the rest written."""
    db = tmp_path / "core.db"
    result = invoke("compile", "--only", "core", "--mirror", shared_hub, "--db", db)
    assert result.returncode == 1
    missing = [
        "language_understanding/hellaswag.jsonl",
        "reading_comprehension/coqa.jsonl",
        "reading_comprehension/squad.jsonl",
    ]
    assert [line.split(":")[1].strip() for line in failures(result.stderr)] == [
        f"core {uri}/test" for uri in missing
    ]
    files = data_files(shared_hub / "karpathy-public" / "eval_bundle.zip")
    store = Store(db)
    assert {s["subset"]: s["rows"] for s in store.splits()} == {
        uri: data.count(b"\n") for uri, data in files.items()
    }
    assert len(files) == 18 and sum(s["rows"] for s in store.splits()) == 52_400
    assert len(core.tasks(db)) == 22
    for uri, data in files.items():
        assert "".join(core.stored_lines(uri, db)).encode() == data


def test_json_names_a_bundle_that_fails_before_naming_any_split(tmp_path):
    mirror = mirror_copy(tmp_path)
    bundle_path(mirror).write_bytes(b"not a zip")
    result = invoke(
        "compile", "--only", "core", "--json", "--mirror", mirror, "--db", tmp_path / "a.db"
    )
    [outcome] = json.loads(result.stdout)["outcomes"]
    assert result.returncode == 1 and outcome["benchmark"] == "core"
    assert outcome["status"] == "failed" and "not a CORE eval bundle" in outcome["error"]
    assert "task" not in outcome and "file" not in outcome
