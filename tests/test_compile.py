"""`nanotasks compile` on data/sample and mirrors made from it: every source normalised as the
spec says, the reference order, O(1) lookup, deterministic bytes, partial recompile, atomic
replace under SIGKILL, and clear failures. Each compile is a real CLI subprocess."""

import hashlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nanotasks.store.reader import Store
from tests.conftest import NANOTASKS, SAMPLE, nanotasks
from tests.reference import SPLITS, content_hash, expected, order, shard, stored_columns

SPLIT_NAMES = {key: f"{key[0]} {key[1]}/{key[2]}" for key in SPLITS}


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored(db, key):
    store = Store(db)
    split = store.split(*key)
    return [store.read(split, i) for i in range(split.rows)]


def column(db, name, key):
    """A plain column of a split's rows, in stored order."""
    with sqlite3.connect(db) as connection:
        return [value for value, in connection.execute(
            f"SELECT {name} FROM examples WHERE task = ? AND subset = ? AND split = ? ORDER BY position", key)]


def mirror_copy(tmp_path, name="mirror"):
    return shutil.copytree(SAMPLE, tmp_path / name)


def rewrite(path, change):
    """Replace a parquet shard's rows with change(rows), keeping its schema."""
    table = pq.read_table(path)
    pq.write_table(pa.Table.from_pylist(change(table.to_pylist()), schema=table.schema), path)


def failures(stderr):
    return sorted(line for line in stderr.splitlines() if line.startswith("failed: "))


# ------------------------------------------------------------------------------------------------
# What is stored


def test_every_sample_split_and_the_word_list_are_stored(sample_db):
    store = Store(sample_db)
    assert {(s["task"], s["subset"], s["split"]) for s in store.splits()} == set(SPLITS)
    assert store.read_file("words_alpha.txt") == (SAMPLE / "dwyl/english-words/words_alpha.txt").read_bytes()


@pytest.mark.parametrize("key", SPLITS, ids=SPLIT_NAMES.get)
def test_split_holds_its_source_rows_normalised_in_reference_order(sample_db, key):
    source_rows, conversations = expected(SAMPLE, key)
    assert stored(sample_db, key) == conversations
    assert column(sample_db, "source_row", key) == source_rows
    info = next(s for s in Store(sample_db).splits() if (s["task"], s["subset"], s["split"]) == key)
    repo, config, source_split, _ = SPLITS[key]
    assert (info["repo"], info["config"], info["source_split"], info["revision"]) == (repo, config, source_split, None)
    assert info["rows"] == len(conversations)
    assert info["sha256"] == content_hash(conversations, stored_columns(sample_db, key))


def find(conversations, text):
    """The one conversation whose first message contains text."""
    [found] = [c for c in conversations if text in str(c["messages"][0]["content"])]
    return found


def test_arc_keeps_numeric_labels_and_three_or_five_choices(sample_db):
    easy = stored(sample_db, ("arc", "ARC-Easy", "train"))
    numeric = find(easy, "measuring the mass of a rock")
    assert numeric["letters"] == ["1", "2", "3", "4"]
    assert "- balance=3\n" in numeric["messages"][0]["content"]
    assert numeric["messages"][1] == {"role": "assistant", "content": "3"}
    assert find(easy, "when it freezes")["letters"] == ["A", "B", "C"]
    five = find(easy, "pumps blood")
    assert five["letters"] == list("ABCDE")
    assert five["messages"][0]["content"].endswith(
        "- liver=C\n- stomach=D\n- kidney=E\n\nRespond only with the letter of the correct answer.")
    assert set(column(sample_db, "answer", ("arc", "ARC-Easy", "train"))) == {"A", "B", "C", "3"}


def test_mmlu_auxiliary_train_is_read_from_its_nested_config(sample_db):
    key = ("mmlu", "all", "auxiliary_train")
    assert pq.read_schema(shard(SAMPLE, key)).names == ["train"]  # the nesting is really there
    sound = find(stored(sample_db, key), "Sound travels fastest")
    assert sound["messages"][1]["content"] == "D" and sound["subject"] == "" and sound["letters"] == list("ABCD")
    assert set(column(sample_db, "subject", ("mmlu", "all", "test"))) == {
        "abstract_algebra", "college_computer_science", "high_school_biology", "world_religions"}


def test_gsm8k_calculator_spans(sample_db):
    train = stored(sample_db, ("gsm8k", "main", "train"))
    no_equals = find(train, "3 rows of 4 muffins")["messages"][1]["content"]
    assert no_equals[:3] == [{"type": "text", "text": "One box holds 3*4 = "}, {"type": "python", "text": "3*4"},
                             {"type": "python_output", "text": ""}]
    two_equals = find(train, "15 red marbles")["messages"][1]["content"]
    assert {"type": "python", "text": "b=2*15"} in two_equals
    assert two_equals[two_equals.index({"type": "python", "text": "b=2*15"}) + 1] == {"type": "python_output", "text": "30"}
    negative = find(train, "fallen by 12 degrees")["messages"][1]["content"]
    assert negative[-1] == {"type": "text", "text": "-5 degrees.\n#### -5"}
    adjacent = find(train, "bake sale")["messages"][1]["content"]
    assert {"type": "text", "text": "250."} not in adjacent and adjacent[-1]["text"].endswith("#### 1,250")
    answers = dict(zip((c["messages"][0]["content"] for c in train), column(sample_db, "answer", ("gsm8k", "main", "train"))))
    assert answers[find(train, "bake sale")["messages"][0]["content"]] == "1250"  # thousands separator dropped
    assert answers[find(train, "fallen by 12 degrees")["messages"][0]["content"]] == "-5"
    socratic = find(stored(sample_db, ("gsm8k", "socratic", "test")), "1,200 books")["messages"][1]["content"]
    assert socratic[0]["text"].startswith("How many more books did it sell in February? ** ")


def test_smoltalk_with_and_without_system_message(sample_db):
    train = stored(sample_db, ("smoltalk", "default", "train"))
    roles = [[m["role"] for m in c["messages"]] for c in train]
    assert ["system", "user", "assistant"] in roles and ["user", "assistant"] in roles
    assert any(len(r) > 3 for r in roles)  # multi-turn
    assert all(list(m) == ["role", "content"] for c in train for m in c["messages"])
    test = stored(sample_db, ("smoltalk", "default", "test"))
    assert any("おはようございます" in m["content"] for c in test for m in c["messages"])


def test_humaneval_conversation(sample_db):
    conversation = find(stored(sample_db, ("humaneval", "openai_humaneval", "test")), "def caesar_shift")
    prompt = conversation["messages"][0]["content"]
    assert conversation["messages"][1]["content"].startswith(prompt + "\n    out = []")
    assert conversation["entry_point"] == "caesar_shift" and "def check(candidate)" in conversation["test"]


# ------------------------------------------------------------------------------------------------
# Reference order and lookup


@pytest.mark.parametrize("n", [1, 2, 8, 14, 1000, 7473])
def test_reference_order_is_what_datasets_shuffle_does(n, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    datasets = pytest.importorskip("datasets")
    from nanotasks.compiler.build import reference_order
    shuffled = datasets.Dataset.from_dict({"row": list(range(n))}).shuffle(seed=42)["row"]
    assert list(shuffled) == order(n) == reference_order(n).tolist()


@pytest.mark.parametrize("key", [("gsm8k", "main", "train"), ("smoltalk", "default", "train")], ids=SPLIT_NAMES.get)
def test_stored_order_is_the_reference_tasks_order(sample_db, key, tmp_path):
    """The reference Tasks index load_dataset(...).shuffle(seed=42): example i must be its row i."""
    datasets = pytest.importorskip("datasets")
    rows = datasets.load_dataset("parquet", data_files=str(shard(SAMPLE, key)), split="train",
                                 cache_dir=str(tmp_path)).shuffle(seed=42)
    conversation = SPLITS[key][3]
    assert stored(sample_db, key) == [conversation(row) for row in rows]


def test_example_lookup_is_one_primary_key_search(sample_db):
    store = Store(sample_db)
    statements = []
    store.db.set_trace_callback(statements.append)
    split = store.split("mmlu", "all", "test")
    store.read(split, 7)
    store.db.set_trace_callback(None)
    assert len(statements) == 2
    plans = [[row[3] for row in store.db.execute(f"EXPLAIN QUERY PLAN {sql}")] for sql in statements]
    assert plans[0] == ["SEARCH splits USING INDEX sqlite_autoindex_splits_1 (task=? AND subset=? AND split=?)"]
    assert plans[1] == ["SEARCH example_data USING INTEGER PRIMARY KEY (rowid=?)"]


def test_examples_view_finds_a_split_by_rowid_range(sample_db):
    with sqlite3.connect(sample_db) as connection:
        plan = [row[3] for row in connection.execute(
            "EXPLAIN QUERY PLAN SELECT body FROM examples WHERE task = ? AND subset = ? AND split = ? "
            "AND position = ?", ("gsm8k", "main", "test", 3))]
    assert "SEARCH example_data USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in plan
    assert not [step for step in plan if step.startswith("SCAN")]


# ------------------------------------------------------------------------------------------------
# Bytes: deterministic, partial recompile, atomic replace


def test_compiling_twice_gives_the_same_bytes(sample_db, tmp_path):
    db = tmp_path / "again.db"
    nanotasks("compile", "--mirror", SAMPLE, "--db", db)
    assert sha256(db) == sha256(sample_db)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.db"]  # no temporary or side files


def changed_gsm8k(tmp_path):
    """A mirror whose GSM8K main/test differs from the sample's: rows reversed, one edited."""
    mirror = mirror_copy(tmp_path, "changed")

    def change(rows):
        rows[0]["question"] += " (edited)"
        return rows[::-1]
    rewrite(shard(mirror, ("gsm8k", "main", "test")), change)
    return mirror


def test_only_replaces_those_splits_and_keeps_the_rest(sample_db, tmp_path):
    mirror = changed_gsm8k(tmp_path)
    full = tmp_path / "full.db"
    nanotasks("compile", "--mirror", mirror, "--db", full)
    partial = shutil.copy(sample_db, tmp_path / "partial.db")
    result = nanotasks("compile", "--only", "gsm8k", "--mirror", mirror, "--db", partial)
    assert sha256(partial) == sha256(full)  # as if everything had been compiled from this mirror
    key = ("gsm8k", "main", "test")
    assert stored(partial, key) == expected(mirror, key)[1] != stored(sample_db, key)
    for other in SPLITS:
        if other[0] != "gsm8k":
            assert stored(partial, other) == stored(sample_db, other)
    status = {line.split("  ")[0]: line.split()[-1] for line in result.stdout.splitlines()[2:] if "  " in line}
    assert status["gsm8k main/test"] == "written" and status["arc ARC-Easy/train"] == "kept"
    assert status["words_alpha.txt"] == "kept"


def test_two_mirrors_with_the_same_repo_names_give_their_own_rows(tmp_path, monkeypatch):
    """The datasets cache keys local snapshots by repository name; compile must not care."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))  # shared by both runs
    first, second = mirror_copy(tmp_path, "first"), changed_gsm8k(tmp_path)
    key = ("gsm8k", "main", "test")
    for mirror in (first, second):
        db = tmp_path / f"{mirror.name}.db"
        nanotasks("compile", "--only", "gsm8k", "--mirror", mirror, "--db", db)
        assert stored(db, key) == expected(mirror, key)[1]
    assert stored(tmp_path / "first.db", key) != stored(tmp_path / "changed.db", key)


def big_smoltalk_mirror(tmp_path, rows=3000):
    """The sample with a SmolTalk train split big enough to take seconds to compress."""
    mirror = mirror_copy(tmp_path, "big")
    words = (SAMPLE / "dwyl/english-words/words_alpha.txt").read_text().split()
    rng = np.random.default_rng(0)

    def text(n):
        return " ".join(rng.choice(words, n))
    rewrite(shard(mirror, ("smoltalk", "default", "train")), lambda _: [
        {"messages": [{"content": text(30), "role": "user"}, {"content": text(150), "role": "assistant"}],
         "source": "generated"} for _ in range(rows)])
    return mirror


def test_killed_compile_leaves_the_previous_file_intact(sample_db, tmp_path):
    mirror = big_smoltalk_mirror(tmp_path)
    db = shutil.copy(sample_db, tmp_path / "nanotasks.db")
    before = sha256(db)
    compile_ = subprocess.Popen([*NANOTASKS, "compile", "--only", "smoltalk", "--mirror", mirror, "--db", db],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = tmp_path / f"nanotasks.db.tmp-{compile_.pid}"
    deadline = time.monotonic() + 60
    # Wait until the new file holds the splits kept from the old one and SmolTalk is being written.
    while compile_.poll() is None and time.monotonic() < deadline:
        if tmp.exists() and tmp.stat().st_size > 40_000:
            break
        time.sleep(0.005)
    time.sleep(0.3)
    assert compile_.poll() is None, "compile finished before it could be killed: make the source bigger"
    compile_.send_signal(signal.SIGKILL)
    compile_.wait()
    assert tmp.exists()  # nothing can clean up after SIGKILL
    assert sha256(db) == before
    assert "smoltalk" in nanotasks("info", "--db", db).stdout
    assert nanotasks("show", "smoltalk", "train", "0", "--db", db).stdout.startswith("[")
    # The next compile removes what the killed one left behind.
    nanotasks("compile", "--only", "humaneval", "--mirror", SAMPLE, "--db", db)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["nanotasks.db"]
    assert sha256(db) == before


def test_a_running_compiles_temporary_file_is_left_alone(sample_db, tmp_path):
    db = tmp_path / "nanotasks.db"
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        running = tmp_path / f"nanotasks.db.tmp-{sleeper.pid}"
        running.write_bytes(b"another compile's work")
        nanotasks("compile", "--only", "humaneval", "--mirror", SAMPLE, "--db", db)
        assert running.read_bytes() == b"another compile's work"
    finally:
        sleeper.kill()
        sleeper.wait()


# ------------------------------------------------------------------------------------------------
# Failures


@pytest.fixture(scope="module")
def broken_mirror(tmp_path_factory):
    """The sample with three sources broken in the ways mirrors break. (A source whose rows
    are not what its benchmark expects stops the whole compile: tests/test_bad_sources.py.)"""
    mirror = shutil.copytree(SAMPLE, tmp_path_factory.mktemp("broken") / "mirror")
    shard(mirror, ("gsm8k", "socratic", "train")).unlink()
    readme = mirror / "cais/mmlu/README.md"
    entry = "  - split: validation\n    path: all/validation-*\n"
    assert entry in readme.read_text()
    readme.write_text(readme.read_text().replace(entry, ""))
    shard(mirror, ("humaneval", "openai_humaneval", "test")).write_bytes(b"not parquet")
    return mirror


BROKEN = {("gsm8k", "socratic", "train"), ("mmlu", "all", "validation"), ("humaneval", "openai_humaneval", "test")}


def test_failing_sources_are_named_with_their_reason_and_the_rest_is_written(broken_mirror, sample_db, tmp_path):
    db = tmp_path / "nanotasks.db"
    result = nanotasks("compile", "--mirror", broken_mirror, "--db", db, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    gsm8k, humaneval, mmlu = failures(result.stderr)
    assert gsm8k == (f"failed: gsm8k socratic/train: openai/gsm8k: no files match ['socratic/train-*'] for "
                     f"socratic/train in {broken_mirror / 'openai/gsm8k'}")
    assert humaneval.startswith("failed: humaneval openai_humaneval/test: openai/openai_humaneval: cannot read "
                                "openai_humaneval/test-00000-of-00001.parquet (for openai_humaneval/test): ")
    assert "Parquet magic bytes not found" in humaneval
    assert mmlu == "failed: mmlu all/validation: cais/mmlu: config 'all' has no split 'validation' (has auxiliary_train, dev, test)"
    assert {(s["task"], s["subset"], s["split"]) for s in Store(db).splits()} == set(SPLITS) - BROKEN
    # A rerun with --only fills in the rest: the same file as one full compile.
    nanotasks("compile", *(f"--only={task}" for task, _, _ in BROKEN), "--mirror", SAMPLE, "--db", db)
    assert sha256(db) == sha256(sample_db)


def test_a_failing_source_keeps_its_previous_copy(broken_mirror, sample_db, tmp_path):
    db = shutil.copy(sample_db, tmp_path / "nanotasks.db")
    result = nanotasks("compile", "--mirror", broken_mirror, "--db", db, check=False)
    assert result.returncode == 1
    assert len(failures(result.stderr)) == len(BROKEN)
    assert all(" (kept the previous copy): " in line for line in failures(result.stderr))
    assert sha256(db) == sha256(sample_db)


@pytest.fixture
def offline(tmp_path):
    """Environment for a compile that reaches no network: the hub endpoint and any proxy are a
    local port nothing listens on (refused at once), and no cache to fall back on."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_") and "proxy" not in k.lower()}
        env.update(HF_ENDPOINT=url, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_ETAG_TIMEOUT="5",
                   HF_HUB_DOWNLOAD_TIMEOUT="5", http_proxy=url, https_proxy=url, HTTP_PROXY=url, HTTPS_PROXY=url)
        yield env


def test_unreachable_hub_fails_each_source_by_name(offline, tmp_path):
    db = tmp_path / "nanotasks.db"
    result = nanotasks("compile", "--db", db, check=False, env=offline, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = failures(result.stderr)
    repos = {repo for repo, *_ in SPLITS.values()}
    assert len(lines) == len(repos) + 1  # one line per repository, not one per split
    for repo in repos:
        names = ", ".join(name for key, name in sorted(SPLIT_NAMES.items()) if SPLITS[key][0] == repo)
        assert f"failed: {names}: cannot download {repo} from the Hugging Face Hub: " in result.stderr, repo
    assert any(line.startswith("failed: words_alpha.txt: cannot download https://raw.githubusercontent.com/")
               for line in lines)
    assert "nothing was written" in result.stdout
    assert not db.exists() and list(tmp_path.glob("nanotasks.db*")) == []


def test_unreachable_hub_keeps_the_previous_file(offline, sample_db, tmp_path):
    db = shutil.copy(sample_db, tmp_path / "nanotasks.db")
    result = nanotasks("compile", "--only", "humaneval", "--revision", "openai/openai_humaneval=0123abc",
                       "--db", db, check=False, env=offline, timeout=120)
    assert result.returncode == 1
    assert failures(result.stderr) == [
        line for line in failures(result.stderr)
        if line.startswith("failed: humaneval openai_humaneval/test (kept the previous copy): "
                           "cannot download openai/openai_humaneval from the Hugging Face Hub")]
    assert len(failures(result.stderr)) == 1
    assert sha256(db) == sha256(sample_db)


@pytest.mark.parametrize("value", ["openai/gsm8k", "=abc"])
def test_revision_must_be_repo_equals_sha(value, tmp_path):
    result = nanotasks("compile", "--revision", value, "--mirror", SAMPLE, "--db", tmp_path / "x.db", check=False)
    assert result.returncode == 2
    assert f"Invalid value for --revision: {value!r} is not of the form REPO=SHA" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_revision_of_a_repo_nothing_comes_from_is_refused(tmp_path):
    result = nanotasks("compile", "--only", "gsm8k", "--revision", "openai/gsm8kk=abc", "--db", tmp_path / "x.db",
                       check=False)
    assert result.returncode == 2
    assert ("Error: no source compiled here comes from openai/gsm8kk; "
            "they come from openai/gsm8k") in result.stderr


def test_revision_with_a_mirror_is_refused(tmp_path):
    result = nanotasks("compile", "--revision", "openai/gsm8k=abc", "--mirror", SAMPLE, "--db", tmp_path / "x.db",
                       check=False)
    assert result.returncode == 2
    assert "Error: a revision pins a commit on the hub; a mirror has no commits to pick from" in result.stderr
