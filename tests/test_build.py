"""compiler/build.py: `nanotasks compile` on data/sample, mirrors made from it and the real data
in ../shared/hub (skipped when absent): the reference order, deterministic bytes, partial
recompile, content hashes computed from the parquet shards and also pinned, a bad source row
named with its source, split and row, and clear failures. Each compile is a real CLI subprocess."""

import hashlib
import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from nanotasks.compiler.build import reference_order
from nanotasks.store.reader import NotInStore, Store
from nanotasks.store.verify import verify
from nanotasks.tasks.gsm8k import GSM8K
from nanotasks.tasks.humaneval import HumanEval
from nanotasks.tasks.mmlu import MMLU
from tests.conftest import SAMPLE, invoke, nanotasks
from tests.helpers import (
    ENDLESS,
    NOT_OURS,
    SPLIT_NAMES,
    assert_one_clear_line,
    assert_untouched,
    column,
    edit,
    failures,
    mirror_copy,
    rewrite,
    sha256,
    stored,
)
from tests.reference import SPLITS, content_hash, expected, order, shard, stored_columns


def test_every_sample_split_and_the_word_list_are_stored(sample_db):
    store = Store(sample_db)
    keys = {(s["task"], s["subset"], s["split"]) for s in store.splits()}
    assert {key for key in keys if key[0] != "core"} == set(SPLITS)  # core: tests/test_core.py
    assert (
        store.read_file("words_alpha.txt")
        == (SAMPLE / "dwyl/english-words/words_alpha.txt").read_bytes()
    )


@pytest.mark.parametrize("key", SPLITS, ids=SPLIT_NAMES.get)
def test_split_holds_its_source_rows_normalised_in_reference_order(sample_db, key):
    source_rows, conversations = expected(SAMPLE, key)
    assert stored(sample_db, key) == conversations
    assert column(sample_db, "source_row", key) == source_rows
    info = next(s for s in Store(sample_db).splits() if (s["task"], s["subset"], s["split"]) == key)
    repo, config, source_split, _ = SPLITS[key]
    assert (info["repo"], info["config"], info["source_split"], info["revision"]) == (
        repo,
        config,
        source_split,
        None,
    )
    assert info["rows"] == len(conversations)
    assert info["sha256"] == content_hash(conversations, stored_columns(sample_db, key))


@pytest.mark.parametrize("n", [1, 2, 8, 14, 1000, 7473])
def test_reference_order_is_what_datasets_shuffle_does(n, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    datasets = pytest.importorskip("datasets")
    from nanotasks.compiler.build import reference_order

    shuffled = datasets.Dataset.from_dict({"row": list(range(n))}).shuffle(seed=42)["row"]
    assert list(shuffled) == order(n) == reference_order(n).tolist()


@pytest.mark.parametrize(
    "key", [("gsm8k", "main", "train"), ("smoltalk", "default", "train")], ids=SPLIT_NAMES.get
)
def test_stored_order_is_the_reference_tasks_order(sample_db, key, tmp_path):
    """The reference Tasks index load_dataset(...).shuffle(seed=42): example i must be its row i."""
    datasets = pytest.importorskip("datasets")
    rows = datasets.load_dataset(
        "parquet", data_files=str(shard(SAMPLE, key)), split="train", cache_dir=str(tmp_path)
    ).shuffle(seed=42)
    conversation = SPLITS[key][3]
    assert stored(sample_db, key) == [conversation(row) for row in rows]


# The bytes of data/sample's file: the same sources give the same file, whatever the number of
# compressing processes and however the compile holds its rows on the way. The file holds
# nothing of the time or the machine it was compiled on, so the whole file is compared (it
# changes with data/sample).
SAMPLE_SHA256 = "710fb31115e8c588b88a84d1dd1c9902d310f245d61ce82e01b3480f3a3a9b22"


def test_compiling_twice_gives_the_same_bytes(sample_db, tmp_path):
    db = tmp_path / "again.db"
    invoke("compile", "--mirror", SAMPLE, "--db", db, "--jobs", "1", check=True)
    assert sha256(db) == sha256(sample_db) == SAMPLE_SHA256
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
    invoke("compile", "--mirror", mirror, "--db", full, check=True)
    partial = shutil.copy(sample_db, tmp_path / "partial.db")
    result = invoke("compile", "--only", "gsm8k", "--mirror", mirror, "--db", partial, check=True)
    assert sha256(partial) == sha256(full)  # as if everything had been compiled from this mirror
    key = ("gsm8k", "main", "test")
    assert stored(partial, key) == expected(mirror, key)[1] != stored(sample_db, key)
    for other in SPLITS:
        if other[0] != "gsm8k":
            assert stored(partial, other) == stored(sample_db, other)
    status = {
        line.split("  ")[0]: line.split()[-1]
        for line in result.stdout.splitlines()[2:]
        if "  " in line
    }
    assert status["gsm8k main/test"] == "written" and status["arc ARC-Easy/train"] == "kept"
    assert status["words_alpha.txt"] == "kept"


def test_two_mirrors_with_the_same_repo_names_give_their_own_rows(tmp_path, monkeypatch):
    """The datasets cache keys local snapshots by repository name; compile must not care."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))  # shared by both runs
    first, second = mirror_copy(tmp_path, "first"), changed_gsm8k(tmp_path)
    key = ("gsm8k", "main", "test")
    for mirror in (first, second):
        db = tmp_path / f"{mirror.name}.db"
        invoke("compile", "--only", "gsm8k", "--mirror", mirror, "--db", db, check=True)
        assert stored(db, key) == expected(mirror, key)[1]
    assert stored(tmp_path / "first.db", key) != stored(tmp_path / "changed.db", key)


@pytest.fixture(scope="module")
def broken_mirror(tmp_path_factory):
    """The sample with three sources broken in the ways mirrors break. (A source whose rows
    are not what its benchmark expects stops the whole compile: the bad source rows below.)"""
    mirror = shutil.copytree(SAMPLE, tmp_path_factory.mktemp("broken") / "mirror")
    shard(mirror, ("gsm8k", "socratic", "train")).unlink()
    readme = mirror / "cais/mmlu/README.md"
    entry = "  - split: validation\n    path: all/validation-*\n"
    assert entry in readme.read_text()
    readme.write_text(readme.read_text().replace(entry, ""))
    shard(mirror, ("humaneval", "openai_humaneval", "test")).write_bytes(b"not parquet")
    return mirror


BROKEN = {
    ("gsm8k", "socratic", "train"),
    ("mmlu", "all", "validation"),
    ("humaneval", "openai_humaneval", "test"),
}


def test_failing_sources_are_named_with_their_reason_and_the_rest_is_written(
    broken_mirror, sample_db, tmp_path
):
    db = tmp_path / "nanotasks.db"
    result = invoke("compile", "--mirror", broken_mirror, "--db", db, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    gsm8k, humaneval, mmlu = failures(result.stderr)
    assert gsm8k == (
        f"failed: gsm8k socratic/train: openai/gsm8k: no files match ['socratic/train-*'] for "
        f"socratic/train in {broken_mirror / 'openai/gsm8k'}"
    )
    assert humaneval.startswith(
        "failed: humaneval openai_humaneval/test: openai/openai_humaneval: cannot read "
        "openai_humaneval/test-00000-of-00001.parquet (for openai_humaneval/test): "
    )
    assert "Parquet magic bytes not found" in humaneval
    assert (
        mmlu == "failed: mmlu all/validation: cais/mmlu: config 'all' has no split 'validation' "
        "(has auxiliary_train, dev, test)"
    )
    keys = {(s["task"], s["subset"], s["split"]) for s in Store(db).splits()}
    assert {key for key in keys if key[0] != "core"} == set(SPLITS) - BROKEN
    # A rerun with --only fills in the rest: the same file as one full compile.
    invoke(
        "compile",
        *(f"--only={task}" for task, _, _ in BROKEN),
        "--mirror",
        SAMPLE,
        "--db",
        db,
        check=True,
    )
    assert sha256(db) == sha256(sample_db)


def test_a_failing_source_keeps_its_previous_copy(broken_mirror, sample_db, tmp_path):
    db = shutil.copy(sample_db, tmp_path / "nanotasks.db")
    result = invoke("compile", "--mirror", broken_mirror, "--db", db, check=False)
    assert result.returncode == 1
    assert len(failures(result.stderr)) == len(BROKEN)
    assert all(" (kept the previous copy): " in line for line in failures(result.stderr))
    assert sha256(db) == sha256(sample_db)


@pytest.mark.parametrize("value", ["openai/gsm8k", "=abc"])
def test_revision_must_be_repo_equals_sha(value, tmp_path):
    result = invoke(
        "compile", "--revision", value, "--mirror", SAMPLE, "--db", tmp_path / "x.db", check=False
    )
    assert result.returncode == 2
    assert f"Invalid value for --revision: {value!r} is not of the form REPO=SHA" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_revision_of_a_repo_nothing_comes_from_is_refused(tmp_path):
    result = invoke(
        "compile",
        "--only",
        "gsm8k",
        "--revision",
        "openai/gsm8kk=abc",
        "--db",
        tmp_path / "x.db",
        check=False,
    )
    assert result.returncode == 2
    assert (
        "Error: no source compiled here comes from openai/gsm8kk; they come from openai/gsm8k"
    ) in result.stderr


def test_revision_with_a_mirror_is_refused(tmp_path):
    result = invoke(
        "compile",
        "--revision",
        "openai/gsm8k=abc",
        "--mirror",
        SAMPLE,
        "--db",
        tmp_path / "x.db",
        check=False,
    )
    assert result.returncode == 2
    assert (
        "Error: a revision pins a commit on the hub; a mirror has no commits to pick from"
        in result.stderr
    )


def test_real_counts(real_db):
    counts = {("main", "train"): 7473, ("main", "test"): 1319, ("socratic", "test"): 1319}
    for (subset, split), n in counts.items():
        assert len(GSM8K(subset, split, db=real_db)) == n
    assert len(MMLU("all", "test", db=real_db)) == 14080
    assert len(MMLU("all", "dev", db=real_db)) == 285
    assert len(HumanEval(db=real_db)) == 164
    with pytest.raises(NotInStore, match="nanotasks compile --only mmlu"):
        MMLU("auxiliary_train", "train", db=real_db)


# sha256 of the normalised conversations in reference order (see tests/reference.py), per split
# present in ../shared/hub, and of the word list.
PINNED = {
    ("gsm8k", "main", "train"): (
        7473,
        "c5097ab1eb8b14c8680e66618ab7d26ee594407f8f9ce17478dcc24d7e595af1",
    ),
    ("gsm8k", "main", "test"): (
        1319,
        "674bb69b9d6f0a8911b269cd447a55f1ff2fd2847d85f42c19a57ce4b64cb63e",
    ),
    ("gsm8k", "socratic", "test"): (
        1319,
        "4e9ea76c1432dff8f0091b882265d219219cdc1e07e824833db2ac32b8c4783c",
    ),
    ("mmlu", "all", "test"): (
        14080,
        "e4ee29c37476e09cf6ef8013bd620bdf76e509d54772a2a3f28008d283793145",
    ),
    ("mmlu", "all", "dev"): (
        285,
        "57a1a26817ceb2dd0b6d216bd107d396797d550a57a8b68ee3a2c1f2df4815bc",
    ),
    ("humaneval", "openai_humaneval", "test"): (
        164,
        "14ca50b3fa9f4db10c06cc3c56ee8153565ef61fb6ae480d7df032e813666604",
    ),
}
WORDS = (370099, "2d8cf2326673fa0c179bdc3a58053872d16bff5352331580955ae62101f6a34d")


def test_exactly_the_splits_present_are_stored(real_db):
    store = Store(real_db)
    splits = {(s["task"], s["subset"], s["split"]): s["rows"] for s in store.splits()}
    assert {key: rows for key, rows in splits.items() if key[0] != "core"} == {
        key: rows for key, (rows, _) in PINNED.items()
    }  # core: tests/test_core.py
    assert all(s["revision"] is None for s in store.splits())  # read from a mirror


@pytest.mark.parametrize("key", PINNED, ids=" ".join)
def test_split_content_hash(real_db, shared_hub, key):
    rows, pinned = PINNED[key]
    source_rows, conversations = expected(shared_hub, key)
    assert len(conversations) == rows
    assert content_hash(conversations) == pinned
    store = Store(real_db)
    split = store.split(*key)
    assert next(s for s in store.splits() if s["id"] == split.id)["sha256"] == content_hash(
        conversations, stored_columns(real_db, key)
    )
    assert (
        content_hash(store.read(split, i) for i in range(split.rows)) == pinned
    )  # the stored bodies
    assert [
        row
        for (row,) in store.connection.execute(
            "SELECT source_row FROM example_data WHERE id BETWEEN ? AND ? ORDER BY id",
            (split.first_example, split.first_example + split.rows - 1),
        )
    ] == source_rows


def test_word_list(real_db, shared_hub):
    count, pinned = WORDS
    content = Store(real_db).read_file("words_alpha.txt")
    assert content == (shared_hub / "dwyl/english-words/words_alpha.txt").read_bytes()
    assert hashlib.sha256(content).hexdigest() == pinned
    assert len(content.decode().split()) == count
    [words] = [f for f in Store(real_db).files() if f["name"] == "words_alpha.txt"]
    assert words["sha256"] == pinned and words["size"] == len(content)


def test_dictionaries_are_trained_on_real_splits(real_db):
    """Real splits are big enough for a zstd dictionary, which the bodies need to be read (not
    all of CORE's files: one has 32 rows)."""
    store = Store(real_db)
    assert all(s["dictionary"] for s in store.splits() if s["task"] != "core")
    for split in store.splits():
        (body,) = store.connection.execute(
            "SELECT body FROM example_data WHERE id = ?", (split["first_example"],)
        ).fetchone()
        assert body[:4] != b"\x28\xb5\x2f\xfd"  # magicless frames, as the format says


def test_sources_missing_from_the_mirror_are_named_and_the_file_kept(real_db, shared_hub, tmp_path):
    db = shutil.copy(real_db, tmp_path / "real.db")
    result = invoke(
        "compile",
        "--only",
        "arc",
        "--only",
        "smoltalk",
        "--mirror",
        shared_hub,
        "--db",
        db,
        check=False,
    )
    assert result.returncode == 1
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 2  # one line per repository, naming its splits
    for line in failed:
        repo = (
            "allenai/ai2_arc" if line.startswith("failed: arc ") else "HuggingFaceTB/smol-smoltalk"
        )
        assert line.endswith(f": mirror has no {repo} (looked for {shared_hub / repo})")
    assert failed[0].count(", arc ") == 5
    assert db.read_bytes() == real_db.read_bytes()  # every split copied as it was, to the byte


def mirror_with(tmp_path, relative, change):
    """data/sample copied, with the parquet file at `relative` rewritten by change(table)."""
    mirror = tmp_path / "mirror"
    shutil.copytree(SAMPLE, mirror)
    path = mirror / relative
    pq.write_table(change(pq.read_table(path)), path)
    return mirror


def with_row(position, update):
    """change(table) that applies update(row) to the source row at `position`."""

    def change(table):
        rows = table.to_pylist()
        update(rows[position])
        return pa.Table.from_pylist(rows, schema=table.schema)

    return change


def set_field(field, value):
    return lambda row: row.__setitem__(field, value)


def swap_first_two_messages(row):
    row["messages"][0], row["messages"][1] = row["messages"][1], row["messages"][0]


def string_column(name):
    def change(table):
        index = table.schema.get_field_index(name)
        return table.set_column(index, name, pc.cast(table[name], pa.string()))

    return change


ARC_EASY_TRAIN = "allenai/ai2_arc/ARC-Easy/train-00000-of-00001.parquet"
GSM8K_MAIN_TRAIN = "openai/gsm8k/main/train-00000-of-00001.parquet"
MMLU_TEST = "cais/mmlu/all/test-00000-of-00001.parquet"
SMOLTALK_TRAIN = "HuggingFaceTB/smol-smoltalk/data/train-00000-of-00001.parquet"

# (task, file, change, the source split as named, the bad row or None for "the first row
# read", what the message says about it)
BAD_ROWS = {
    "missing field": (
        "gsm8k",
        GSM8K_MAIN_TRAIN,
        lambda t: t.drop_columns(["answer"]),
        "openai/gsm8k main/train",
        None,
        "it has no field 'answer'",
    ),
    "wrong type": (
        "mmlu",
        MMLU_TEST,
        string_column("answer"),
        "cais/mmlu all/test",
        None,
        "expected int",
    ),
    "null": (
        "gsm8k",
        GSM8K_MAIN_TRAIN,
        with_row(3, set_field("answer", None)),
        "openai/gsm8k main/train",
        3,
        "answer is null",
    ),
    "answer index out of range": (
        "mmlu",
        MMLU_TEST,
        with_row(5, set_field("answer", 7)),
        "cais/mmlu all/test",
        5,
        "answer 7 is not an index 0-3",
    ),
    "ARC answer not a label": (
        "arc",
        ARC_EASY_TRAIN,
        with_row(2, set_field("answerKey", "Z")),
        "allenai/ai2_arc ARC-Easy/train",
        2,
        "answerKey 'Z' is not one of the labels",
    ),
    "SmolTalk turns out of order": (
        "smoltalk",
        SMOLTALK_TRAIN,
        with_row(4, swap_first_two_messages),
        "HuggingFaceTB/smol-smoltalk default/train",
        4,
        "expected 'user'",
    ),
}


@pytest.mark.parametrize("case", BAD_ROWS)
def test_a_bad_source_row_stops_the_compile_and_is_named(case, previous, tmp_path):
    task, relative, change, source, row, reason = BAD_ROWS[case]
    mirror = mirror_with(tmp_path, relative, change)
    if row is None:  # every row is bad: the one named is the first the compile reads
        row = reference_order(pq.read_table(mirror / relative).num_rows)[0]
    db, before = previous
    result = invoke("compile", "--mirror", mirror, "--db", db, check=False)
    assert_one_clear_line(result, f"bad source row: {source} row {row} ", reason)
    assert_untouched(db, before)


def test_a_bad_row_stops_the_compile_also_when_the_task_is_not_asked_for_first(previous, tmp_path):
    """The bad row is in the last split written (smoltalk): the splits already written to the
    temporary file before it are thrown away with it."""
    mirror = mirror_with(tmp_path, SMOLTALK_TRAIN, with_row(4, swap_first_two_messages))
    db, before = previous
    result = invoke("compile", "--mirror", mirror, "--db", db, check=False)
    assert result.returncode == 1 and "smol-smoltalk default/train row 4 " in result.stderr
    assert_untouched(db, before)


def test_a_shard_that_is_not_parquet_fails_its_source_by_name(previous, tmp_path):
    """An unreadable shard is like an unreachable source: reported by name, the rest written,
    the split kept from the previous file."""
    mirror = tmp_path / "mirror"
    shutil.copytree(SAMPLE, mirror)
    (mirror / GSM8K_MAIN_TRAIN).write_bytes(b"this is not parquet")
    db, _ = previous
    result = invoke("compile", "--only", "gsm8k", "--mirror", mirror, "--db", db, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "failed: gsm8k main/train (kept the previous copy): openai/gsm8k: cannot read "
        "main/train-00000-of-00001.parquet (for main/train): "
    ) in result.stderr
    assert nanotasks("verify", "--db", db).returncode == 0


def test_compile_will_not_start_from_a_damaged_previous_file(copy):
    """compile keeps the splits it is not asked to rebuild from the file it replaces: from a
    cut-short one it stops, says how to start afresh, and leaves the file for inspection."""
    with open(copy, "r+b") as f:
        f.truncate(40_000)
    before = copy.read_bytes()
    result = invoke("compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", copy, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(
        f"Error: nothing was written: {copy}: damaged: "
    ) and message.endswith("move it away to compile afresh)")
    assert copy.read_bytes() == before and [p.name for p in copy.parent.iterdir()] == [copy.name]


def test_compile_replaces_a_file_of_another_schema_only_when_compiling_everything(copy):
    """Nothing of a file with another schema is kept (its splits would be copied through its
    own SQL): `--only` refuses it, a full compile replaces it."""
    edit(copy, "DROP VIEW examples", f"CREATE VIEW examples AS {ENDLESS}")
    result = nanotasks(
        "compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", copy, check=False, timeout=120
    )
    assert result.returncode == 1 and NOT_OURS in result.stderr.strip().splitlines()[-1]
    nanotasks("compile", "--mirror", SAMPLE, "--db", copy, timeout=300)
    assert all(check.ok for check in verify(copy))
