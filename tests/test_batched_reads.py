"""task.__getitems__, which a torch DataLoader calls for a whole batch: one query per batch
rather than one per example, and exactly the examples task[i] gives, in the order asked."""

import random
import shutil
import sqlite3

import pytest

from nanotasks.store import reader
from nanotasks.store.reader import FileDamaged
from nanotasks.tasks.common import TaskMixture, TaskSequence
from nanotasks.tasks.gsm8k import GSM8K
from nanotasks.tasks.mmlu import MMLU
from nanotasks.tasks.smoltalk import SmolTalk
from tests.test_dataloader import small_tasks


def batches(task, seed=0):
    """Index lists as a loader would ask for them, with repeats, negative indices, and the ends."""
    rng = random.Random(seed)
    n = len(task)
    yield [rng.randrange(n) for _ in range(2 * n)]
    yield [n - 1, 0, -1, -n, 0]
    yield []


def test_each_task_mixture_and_view_gives_what_indexing_gives(sample_db):
    tasks = small_tasks(sample_db)
    views = [GSM8K("main", "train", db=sample_db, start=1, stop=9, step=3), TaskMixture(tasks),
             TaskSequence([TaskMixture(tasks[:3]), SmolTalk("test", db=sample_db, step=2)], start=5)]
    for task in tasks + views:
        for indices in batches(task):
            assert task.__getitems__(indices) == [task[i] for i in indices], type(task).__name__


def test_mmlu_batches_carry_the_letters_tuple(sample_db):
    examples = MMLU("all", "test", db=sample_db).__getitems__([0, 1])
    assert [example["letters"] for example in examples] == [("A", "B", "C", "D")] * 2


def test_batches_of_more_rows_than_one_query_binds(sample_db, monkeypatch):
    monkeypatch.setattr(reader, "BATCH_ROWS", 3)
    task = GSM8K("main", "train", db=sample_db)
    indices = list(range(len(task)))[::-1]
    assert task.__getitems__(indices) == [task[i] for i in indices]


@pytest.mark.parametrize("index, error", [(10**6, IndexError), (1.0, TypeError), (slice(0, 2), TypeError)])
def test_a_bad_index_in_a_batch_is_refused_as_indexing_refuses_it(sample_db, index, error):
    task = GSM8K("main", "train", db=sample_db)
    with pytest.raises(error) as one:
        task[index]
    with pytest.raises(error) as batch:
        task.__getitems__([0, index])
    assert str(batch.value) == str(one.value)


def test_a_row_missing_from_a_split_is_reported_by_both_reads(sample_db, tmp_path):
    copy = tmp_path / "missing.db"
    shutil.copyfile(sample_db, copy)
    task = GSM8K("main", "train", db=sample_db)
    with sqlite3.connect(copy) as db:
        db.execute("DELETE FROM example_data WHERE id = ?", (task.rows.first_example + 2,))
    db.close()
    damaged = GSM8K("main", "train", db=copy)
    expected = f"{copy}: example 2 of gsm8k main/train is missing"
    with pytest.raises(FileDamaged, match=expected):
        damaged[2]
    with pytest.raises(FileDamaged, match=expected):
        damaged.__getitems__([0, 1, 2])
    assert damaged.__getitems__([0, 1, 3]) == [task[0], task[1], task[3]]
