"""tasks/mmlu.py: MMLU's configs and splits (auxiliary_train under both spellings), served in the
reference order and evaluated; against the real data in ../shared/hub where it is present.
Expected conversations are rebuilt from the parquet rows by tests/reference.py."""

import pyarrow.parquet as pq
import pytest

from nanotasks.tasks.mmlu import MMLU
from tests.conftest import SAMPLE
from tests.helpers import assistant, column, find, source_rows, stored, user
from tests.reference import multiple_choice, shard


@pytest.mark.parametrize(
    "split, config, source_split",
    [
        ("auxiliary_train", "auxiliary_train", "train"),
        ("validation", "all", "validation"),
        ("dev", "all", "dev"),
        ("test", "all", "test"),
    ],
)
def test_mmlu_conversations_in_reference_order(sample_db, split, config, source_split):
    task = MMLU("all", split, db=sample_db)
    rows = source_rows(SAMPLE, "cais/mmlu", config, source_split)
    assert task.eval_type == "categorical" and len(task) == len(rows)
    for example, row in zip(task, rows, strict=True):
        row = row.get("train", row)  # the auxiliary_train config nests its rows
        assert example == {
            "messages": [
                user(multiple_choice(row["question"], "ABCD", row["choices"])),
                assistant("ABCD"[row["answer"]]),
            ],
            "subject": row["subject"],
            "letters": ("A", "B", "C", "D"),
        }
        assert type(example["letters"]) is tuple  # as nanochat's MMLU.letters


def test_mmlu_both_auxiliary_train_spellings_equal_at_every_index(sample_db):
    new, old = (
        MMLU("all", "auxiliary_train", db=sample_db),
        MMLU("auxiliary_train", "train", db=sample_db),
    )
    assert len(new) == len(old) == 8
    assert [new[i] for i in range(len(new))] == [old[i] for i in range(len(old))]
    assert MMLU("auxiliary_train", "train", db=sample_db, start=3, step=2)[1] == new[5]


def test_mmlu_evaluate(sample_db):
    task = MMLU("all", "dev", db=sample_db)
    for example in task:
        gold = example["messages"][-1]["content"]
        assert task.evaluate(example, gold) is True
        assert task.evaluate(example, "ABCD"[("ABCD".index(gold) + 1) % 4]) is False
        for malformed in ("E", "a", " A", "The answer is A"):
            with pytest.raises(ValueError):
                task.evaluate(example, malformed)


def test_real_mmlu(real_db, shared_hub):
    task = MMLU("all", "test", db=real_db)
    rows = source_rows(shared_hub, "cais/mmlu", "all", "test")
    for i in [0, 1, 2, 777, 5000, 14079]:
        row = rows[i]
        assert task[i] == {
            "messages": [
                user(multiple_choice(row["question"], "ABCD", row["choices"])),
                assistant("ABCD"[row["answer"]]),
            ],
            "subject": row["subject"],
            "letters": ("A", "B", "C", "D"),
        }
    assert len({task[i]["subject"] for i in range(0, 14080, 50)}) > 40


def test_mmlu_auxiliary_train_is_read_from_its_nested_config(sample_db):
    key = ("mmlu", "all", "auxiliary_train")
    assert pq.read_schema(shard(SAMPLE, key)).names == ["train"]  # the nesting is really there
    sound = find(stored(sample_db, key), "Sound travels fastest")
    assert (
        sound["messages"][1]["content"] == "D"
        and sound["subject"] == ""
        and sound["letters"] == list("ABCD")
    )
    assert set(column(sample_db, "subject", ("mmlu", "all", "test"))) == {
        "abstract_algebra",
        "college_computer_science",
        "high_school_biology",
        "world_religions",
    }
