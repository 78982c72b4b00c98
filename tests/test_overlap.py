"""The overlaps table: planted duplicates are found (exact and 13-gram), nothing else is, and
`nanotasks overlap` reports them."""

import json
import shutil
import sqlite3

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nanotasks.compiler.overlap import BREAK, _words, find_overlaps
from nanotasks.store import Example, Provenance
from nanotasks.store.text import LINE_BREAKS, normalise_text, tokens
from nanotasks.store.writer import Writer
from tests.conftest import SAMPLE, built_once, invoke, nanotasks

GSM8K_TRAIN = "openai/gsm8k/main/train-00000-of-00001.parquet"
SMOLTALK_TRAIN = "HuggingFaceTB/smol-smoltalk/data/train-00000-of-00001.parquet"


def overlaps(db):
    """{(eval task/subset/split, position, train task/subset/split, position, kind)}"""
    query = """SELECT e.task || ' ' || e.subset || '/' || e.split, e.position,
                      t.task || ' ' || t.subset || '/' || t.split, t.source_row, o.kind
               FROM overlaps o JOIN examples e ON e.id = o.eval_id
               JOIN examples t ON t.id = o.train_id"""
    with sqlite3.connect(db) as connection:
        return set(connection.execute(query).fetchall())


def append_rows(path, rows):
    table = pq.read_table(path)
    pq.write_table(pa.concat_tables([table, pa.Table.from_pylist(rows, schema=table.schema)]), path)
    return table.num_rows  # the source row of the first appended row


@pytest.fixture(scope="session")
def planted(tmp_path_factory):
    """The sample with GSM8K test questions planted in training data: one verbatim as a GSM8K
    main/train question, and 15 words of another inside the second user turn of a SmolTalk
    train chat. Returns the compiled file and the planted rows' source_row."""

    def build(root):
        (root / "planted.json").write_text(json.dumps(plant(root)))

    root = built_once(tmp_path_factory, "planted", build)
    test, gsm8k_row, smoltalk_row = json.loads((root / "planted.json").read_text())
    return root / "planted.db", test, gsm8k_row, smoltalk_row


def plant(root):
    """Writes root/planted.db; returns the GSM8K test rows and the planted rows' source_row."""
    mirror = root / "mirror"
    shutil.copytree(SAMPLE, mirror)
    test = pq.read_table(mirror / "openai/gsm8k/main/test-00000-of-00001.parquet").to_pylist()
    exact = test[0]["question"]  # "A bus leaves the depot with 42 passengers. ..."
    span = " ".join(test[1]["question"].split()[:15])
    assert len(normalise_text(span).split()) >= 13
    gsm8k_row = append_rows(
        mirror / GSM8K_TRAIN, [{"question": exact.upper(), "answer": "36\n#### 36"}]
    )
    chat = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": f"My teacher asked: «{span}» — how do I start?"},
        {"role": "assistant", "content": "Work out the percentage first."},
    ]
    smoltalk_row = append_rows(mirror / SMOLTALK_TRAIN, [{"messages": chat, "source": "planted"}])
    invoke("compile", "--mirror", mirror, "--db", root / "planted.db", check=True)
    return test, gsm8k_row, smoltalk_row


def position_of(db, task, subset, split, question):
    with sqlite3.connect(db) as connection:
        from nanotasks.store.sqlfunctions import register

        register(connection)
        return connection.execute(
            "SELECT position FROM examples WHERE task = ? AND subset = ? AND split = ? "
            "AND json_extract(conversation(id), '$.messages[0].content') = ?",
            (task, subset, split, question),
        ).fetchone()[0]


def test_planted_duplicates_are_found_and_nothing_else(planted):
    db, test, gsm8k_row, smoltalk_row = planted
    expected = {CORE_IN_ARC}
    for subset in ("main", "socratic"):  # the sample's socratic test has the same questions
        bus = position_of(db, "gsm8k", subset, "test", test[0]["question"])
        books = position_of(db, "gsm8k", subset, "test", test[1]["question"])
        expected.add((f"gsm8k {subset}/test", bus, "gsm8k main/train", gsm8k_row, "exact"))
        expected.add(
            (f"gsm8k {subset}/test", books, "smoltalk default/train", smoltalk_row, "ngram")
        )
    assert overlaps(db) == expected


# The one overlap of the sample itself: its CORE bundle's first multiple choice query is an
# ARC-Easy train question (data/make_sample.py)
CORE_IN_ARC = (
    "core world_knowledge/science_mc.jsonl/test",
    0,
    "arc ARC-Easy/train",
    1,
    "ngram",
)


def test_only_the_planted_core_row_overlaps_in_the_plain_sample(sample_db):
    assert overlaps(sample_db) == {CORE_IN_ARC}


def test_overlap_command(planted):
    db = planted[0]
    summary = {
        f"{s['task']} {s['subset']}/{s['split']}": s
        for s in json.loads(nanotasks("overlap", "--db", db, "--json").stdout)["splits"]
    }
    assert summary["gsm8k main/test"] == {
        "task": "gsm8k",
        "subset": "main",
        "split": "test",
        "examples": 6,
        "overlapping": 2,
        "found_in": [
            {"task": "gsm8k", "subset": "main", "split": "train", "exact": 1, "ngram": 0},
            {"task": "smoltalk", "subset": "default", "split": "train", "exact": 0, "ngram": 1},
        ],
    }
    assert (
        summary["mmlu all/test"]["overlapping"] == 0 and summary["mmlu all/test"]["found_in"] == []
    )
    assert "gsm8k main/train" not in summary  # training splits are not evaluation splits
    table = nanotasks("overlap", "--db", db).stdout
    assert "gsm8k socratic/test" in table and "smoltalk default/train" in table


def test_a_recompile_that_keeps_every_split_recomputes_the_same_overlaps(planted, tmp_path):
    db = planted[0]
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    with sqlite3.connect(copy) as connection:  # so that only a recompile can bring them back
        connection.execute("DELETE FROM overlaps")
    connection.close()
    assert overlaps(copy) == set()
    # the word list is not in tmp_path: it fails and is kept, like every split
    invoke("compile", "--mirror", tmp_path, "--only", "spellingbee", "--db", copy, check=False)
    assert overlaps(copy) == overlaps(db) != set()


def build(path, evaluation, training):
    """A small file with a test split and a train split of single-turn chats."""

    def chats(prompts):
        return [
            Example(
                {
                    "messages": [
                        {"role": "user", "content": p},
                        {"role": "assistant", "content": "ok"},
                    ]
                },
                source_row=i,
            )
            for i, p in enumerate(prompts)
        ]

    with Writer(path) as writer:
        writer.write_split("t", "s", "test", Provenance(), chats(evaluation))
        writer.write_split("t", "s", "train", Provenance(), chats(training))
        writer.commit()
    with sqlite3.connect(path) as connection:
        return [(e - 1, t - 1 - len(evaluation), kind) for e, t, kind in find_overlaps(connection)]


QUESTION = "the quick brown fox jumps over the lazy dog while seven tall sailors sing about the sea"
INSTRUCTION = (
    "Answer in one sentence and make sure every word of it starts with a capital letter please."
)


def test_short_prompts_and_line_breaks_do_not_match(tmp_path):
    words = QUESTION.split()
    assert (
        build(
            tmp_path / "a.db",
            ["What is two plus two?", "\n".join([" ".join(words[:8]), " ".join(words[8:])])],
            ["what is two plus two", f"Look: {QUESTION}"],
        )
        == []
    )


def test_a_run_anywhere_in_a_line_matches(tmp_path):
    assert build(
        tmp_path / "b.db", [f"Puzzle: {QUESTION}!"], [f"Note.\nSo, {QUESTION.upper()} -- right?"]
    ) == [(0, 0, "ngram")]


def test_boilerplate_shared_by_many_prompts_is_cut_out(tmp_path):
    # Eleven test prompts end with the same instruction; a training prompt that shares the
    # instruction and the two words before it is no copy of any of them.
    evaluation = [f"Topic {i} concerns item{i} and the weather. {INSTRUCTION}" for i in range(11)]
    assert build(tmp_path / "c.db", evaluation, [f"Describe the weather. {INSTRUCTION}"]) == []
    # With ten it is not boilerplate yet, and the shared run counts.
    assert build(tmp_path / "d.db", evaluation[:10], [f"Describe the weather. {INSTRUCTION}"]) != []


@given(st.text())
def test_tokens_are_the_words_of_normalise_text(text):
    assert " ".join(t for t in tokens(text) if t not in LINE_BREAKS) == normalise_text(text)


@given(st.text(st.characters(max_codepoint=127)) | st.text())
def test_the_fast_words_of_ascii_text_are_its_tokens(text):
    assert _words(text).decode().split() == [BREAK if t in LINE_BREAKS else t for t in tokens(text)]
