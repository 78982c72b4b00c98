"""Task views, TaskSequence and TaskMixture, and the shuffle order the mixture is built on.

The mixture's order must equal nanochat's construction exactly (a list of (task, index) pairs
shuffled with random.Random(42)), so runs can be compared across tools: shuffled_order is
checked against random.Random(seed).shuffle itself, over many sizes and seeds.
"""

import pickle
import random

import pytest

from nanotasks.tasks.arc import ARC
from nanotasks.tasks.common import Task, TaskMixture, TaskSequence, shuffled_order
from nanotasks.tasks.gsm8k import GSM8K
from nanotasks.tasks.mmlu import MMLU
from nanotasks.tasks.spellingbee import SimpleSpelling


class Numbers(Task):
    """A task whose example i is i: what a view and a mixture do to indices, with no file."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = n

    def num_examples(self):
        return self.n

    def get_example(self, index):
        return index


def python_shuffle(n, seed):
    items = list(range(n))
    random.Random(seed).shuffle(items)
    return items


POWERS = sorted({2**k + d for k in range(1, 17) for d in (-1, 0, 1)})
RANDOM_SIZES = random.Random(2024).sample(range(3, 100_000), 8)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 6, 7, 10, 100, 1000, *POWERS, *RANDOM_SIZES])
def test_shuffled_order_equals_random_shuffle(n):
    for seed in (42, 2**40 + 7) if n > 1000 else (42, 0, 1, 2**40 + 7):
        assert shuffled_order(n, seed).tolist() == python_shuffle(n, seed), (n, seed)


def test_shuffled_order_of_a_million_equals_random_shuffle():
    # the size of nanochat's SFT mixture: a long run crosses many refills of random words
    assert shuffled_order(1_000_003).tolist() == python_shuffle(1_000_003, 42)


def test_shuffled_order_is_a_compact_array():
    order = shuffled_order(1000)
    assert order.typecode == "l" and sorted(order) == list(range(1000))


@pytest.mark.parametrize("start, stop, step", [(0, None, 1), (2, None, 1), (0, 7, 1), (1, 8, 3),
                                               (3, 3, 1), (0, None, 4), (9, None, 2), (5, 10, 10)])
def test_view_arithmetic(start, stop, step):
    task = Numbers(10, start=start, stop=stop, step=step)
    expected = list(range(10))[start:stop:step]
    assert len(task) == len(expected)
    assert list(task) == expected  # iteration stops at IndexError
    assert [task[i] for i in range(-len(expected), 0)] == expected  # negative like a list


@pytest.mark.parametrize("kwargs", [{"start": -1}, {"start": 5, "stop": 4}, {"step": 0}, {"step": -2}])
def test_invalid_view_names_its_values(kwargs):
    with pytest.raises(ValueError) as error:
        Numbers(10, **kwargs)
    for value in kwargs.values():
        assert str(value) in str(error.value)


def test_index_out_of_range_and_wrong_type():
    task = Numbers(10, start=2, step=3)  # 2, 5, 8
    for index in (3, -4, 100):
        with pytest.raises(IndexError):
            task[index]
    for index in (1.0, "1", slice(0, 2), None):
        with pytest.raises(TypeError):
            task[index]


def nanochat_mixture(tasks):
    """nanochat's TaskMixture, literally: every (task, index) pair, then one shuffle."""
    pairs = [(t, i) for t, task in enumerate(tasks) for i in range(len(task))]
    random.Random(42).shuffle(pairs)
    return [tasks[t][i] for t, i in pairs]


def test_mixture_order_equals_list_of_pairs_construction():
    tasks = [Numbers(5), Numbers(0), Numbers(13, start=1, step=2), Numbers(40)]
    mixture = TaskMixture(tasks)
    assert len(mixture) == 5 + 0 + 6 + 40
    labelled = [Labelled(t, task) for t, task in enumerate(tasks)]
    assert list(TaskMixture(labelled)) == nanochat_mixture(labelled)


class Labelled(Task):
    """Example i of task t is (t, task[i]): tells which task an example came from."""

    def __init__(self, label, task):
        super().__init__()
        self.label, self.task = label, task

    def num_examples(self):
        return len(self.task)

    def get_example(self, index):
        return (self.label, self.task[index])


def test_mixture_of_stored_tasks_equals_list_of_pairs_construction(sample_db):
    arc, gsm8k = ARC("ARC-Easy", "train", db=sample_db), GSM8K("main", "train", db=sample_db)
    tasks = [arc, gsm8k, arc, SimpleSpelling(size=30, db=sample_db)]  # arc twice: oversampled
    mixture = TaskMixture(tasks)
    assert len(mixture) == 2 * len(arc) + len(gsm8k) + 30
    assert list(mixture) == nanochat_mixture(tasks)
    examples = list(mixture)
    assert sum(example in list(arc) for example in examples) == 2 * len(arc)


def test_mixture_and_sequence_take_views():
    tasks = [Numbers(7), Numbers(4)]
    full = list(TaskMixture(tasks))
    assert list(TaskMixture(tasks, start=3, stop=9, step=2)) == full[3:9:2]
    assert list(TaskSequence(tasks, start=1, step=3)) == [*range(7), *range(4)][1::3]


def test_sequence_is_tasks_one_after_another(sample_db):
    tasks = [MMLU("all", "dev", db=sample_db), Numbers(0), ARC("ARC-Challenge", "test", db=sample_db, stop=4)]
    sequence = TaskSequence(tasks)
    assert len(sequence) == len(tasks[0]) + 4
    assert list(sequence) == list(tasks[0]) + list(tasks[2])
    assert sequence[-1] == tasks[2][3]


def test_mixture_pickles(sample_db):
    mixture = TaskMixture([ARC("ARC-Easy", "test", db=sample_db), Numbers(9)])
    copy = pickle.loads(pickle.dumps(mixture))
    assert list(copy) == list(mixture)
