"""Compiling the real data in ../shared/hub (skipped when it is absent): row counts, and content
hashes computed here from the parquet shards and also pinned, so that any change in how rows
are normalised or ordered shows up as a failing test, not as silently different training data."""

import hashlib
import shutil

import pytest

from nanotasks.store.reader import Store
from tests.conftest import nanotasks
from tests.reference import content_hash, expected, stored_columns

# sha256 of the normalised conversations in reference order (see tests/reference.py), per split
# present in ../shared/hub, and of the word list.
PINNED = {
    ("gsm8k", "main", "train"): (7473, "c5097ab1eb8b14c8680e66618ab7d26ee594407f8f9ce17478dcc24d7e595af1"),
    ("gsm8k", "main", "test"): (1319, "674bb69b9d6f0a8911b269cd447a55f1ff2fd2847d85f42c19a57ce4b64cb63e"),
    ("gsm8k", "socratic", "test"): (1319, "4e9ea76c1432dff8f0091b882265d219219cdc1e07e824833db2ac32b8c4783c"),
    ("mmlu", "all", "test"): (14080, "e4ee29c37476e09cf6ef8013bd620bdf76e509d54772a2a3f28008d283793145"),
    ("mmlu", "all", "dev"): (285, "57a1a26817ceb2dd0b6d216bd107d396797d550a57a8b68ee3a2c1f2df4815bc"),
    ("humaneval", "openai_humaneval", "test"): (164, "14ca50b3fa9f4db10c06cc3c56ee8153565ef61fb6ae480d7df032e813666604"),
}
WORDS = (370099, "2d8cf2326673fa0c179bdc3a58053872d16bff5352331580955ae62101f6a34d")


def test_exactly_the_splits_present_are_stored(real_db):
    store = Store(real_db)
    assert {(s["task"], s["subset"], s["split"]): s["rows"] for s in store.splits()} == \
        {key: rows for key, (rows, _) in PINNED.items()}
    assert all(s["revision"] is None for s in store.splits())  # read from a mirror


@pytest.mark.parametrize("key", PINNED, ids=" ".join)
def test_split_content_hash(real_db, shared_hub, key):
    rows, pinned = PINNED[key]
    source_rows, conversations = expected(shared_hub, key)
    assert len(conversations) == rows
    assert content_hash(conversations) == pinned
    store = Store(real_db)
    split = store.split(*key)
    assert next(s for s in store.splits() if s["id"] == split.id)["sha256"] == \
        content_hash(conversations, stored_columns(real_db, key))
    assert content_hash(store.read(split, i) for i in range(split.rows)) == pinned  # the stored bodies
    assert [row for row, in store.db.execute(
        "SELECT source_row FROM example_data WHERE id BETWEEN ? AND ? ORDER BY id",
        (split.first_example, split.first_example + split.rows - 1))] == source_rows


def test_word_list(real_db, shared_hub):
    count, pinned = WORDS
    content = Store(real_db).read_file("words_alpha.txt")
    assert content == (shared_hub / "dwyl/english-words/words_alpha.txt").read_bytes()
    assert hashlib.sha256(content).hexdigest() == pinned
    assert len(content.decode().split()) == count
    [words] = Store(real_db).files()
    assert words["sha256"] == pinned and words["size"] == len(content)


def test_dictionaries_are_trained_on_real_splits(real_db):
    """Real splits are big enough for a zstd dictionary, which the bodies need to be read."""
    store = Store(real_db)
    assert all(s["dictionary"] for s in store.splits())
    for split in store.splits():
        body, = store.db.execute("SELECT body FROM example_data WHERE id = ?", (split["first_example"],)).fetchone()
        assert body[:4] != b"\x28\xb5\x2f\xfd"  # magicless frames, as the format says


def test_sources_missing_from_the_mirror_are_named_and_the_file_kept(real_db, shared_hub, tmp_path):
    db = shutil.copy(real_db, tmp_path / "real.db")
    result = nanotasks("compile", "--only", "arc", "--only", "smoltalk", "--mirror", shared_hub, "--db", db, check=False)
    assert result.returncode == 1
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 2  # one line per repository, naming its splits
    for line in failed:
        repo = "allenai/ai2_arc" if line.startswith("failed: arc ") else "HuggingFaceTB/smol-smoltalk"
        assert line.endswith(f": mirror has no {repo} (looked for {shared_hub / repo})")
    assert failed[0].count(", arc ") == 5
    assert db.read_bytes() == real_db.read_bytes()  # every split copied as it was, to the byte
