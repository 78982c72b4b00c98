"""The Task API shared by every benchmark, as in nanochat's tasks/common.py.

A Task is a list of conversations with a view (start, stop, step) over it. Store-backed
tasks read their examples from the compiled file; TaskMixture and TaskSequence combine
tasks for training.
"""

import bisect
import math
import operator
import random
from array import array
from dataclasses import dataclass

from store import default_path
from store.reader import Store


@dataclass(frozen=True)
class Source:
    """Where one stored split comes from: `repo`'s `config`/`source_split` on the hub."""
    task: str
    subset: str
    split: str
    repo: str
    config: str
    source_split: str


@dataclass(frozen=True)
class SourceFile:
    """A whole file that tasks generate examples from, e.g. a word list."""
    name: str
    repo: str
    url: str
    mirror_path: str  # where it lies in a `--mirror` directory


class Task:
    """A view over a list of conversations: task[i] is example start + i * step."""

    def __init__(self, start=0, stop=None, step=1):
        if start < 0 or (stop is not None and stop < start) or step < 1:
            raise ValueError(f"invalid view start={start}, stop={stop}, step={step}: need "
                             f"0 <= start <= stop and step >= 1")
        self.start, self.stop, self.step = start, stop, step

    @property
    def eval_type(self):
        raise NotImplementedError  # 'categorical' or 'generative'

    def num_examples(self):
        raise NotImplementedError

    def get_example(self, index):
        raise NotImplementedError

    def evaluate(self, conversation, response):
        raise NotImplementedError

    def __len__(self):
        stop = self.num_examples() if self.stop is None else self.stop
        return max(0, math.ceil((stop - self.start) / self.step))

    def __getitem__(self, index):
        index = operator.index(index)  # TypeError for floats, strings, slices
        length = len(self)
        if index < 0:
            index += length
        if not 0 <= index < length:
            raise IndexError(f"index {index} out of range for a task of {length} examples")
        return self.get_example(self.start + index * self.step)


class StoredTask(Task):
    """A task whose examples are the rows of one split in the compiled file."""

    def __init__(self, task, subset, split, db=None, **kwargs):
        super().__init__(**kwargs)
        self.store = Store(db or default_path())
        self.rows = self.store.split(task, subset, split)

    def num_examples(self):
        return self.rows.rows

    def get_example(self, index):
        return self.store.read(self.rows, index)


def check_choice(what, value, valid):
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}: choose one of {', '.join(map(repr, valid))}")


def render_mc(question, letters, choices):
    """A multiple choice prompt. The letter comes after its choice, so a model that is unsure
    predicts the letter with the choice's text already in context; no space after '=' so the
    letter is a single token."""
    lines = "".join(f"- {choice}={letter}\n" for letter, choice in zip(letters, choices))
    return f"Multiple Choice question: {question}\n{lines}\nRespond only with the letter of the correct answer."


def shuffled_order(n, seed=42):
    """The permutation `random.Random(seed).shuffle` applies to a list of n items, as an array:
    shuffling list(range(n)) puts order[i] at i, whatever the list holds."""
    order = array("l", range(n))
    random.Random(seed).shuffle(order)
    return order


class TaskSequence(Task):
    """The tasks one after another."""

    def __init__(self, tasks, **kwargs):
        super().__init__(**kwargs)
        self.tasks = list(tasks)
        self.offsets = [0]
        for task in self.tasks:
            self.offsets.append(self.offsets[-1] + len(task))

    def num_examples(self):
        return self.offsets[-1]

    def get_example(self, index):
        position = bisect.bisect_right(self.offsets, index) - 1
        return self.tasks[position][index - self.offsets[position]]


class TaskMixture(TaskSequence):
    """Every example of every task, shuffled once with random.Random(42).

    Equal to building the list of (task_position, local_index) pairs task by task and
    shuffling it, without the list: the shuffle's permutation is applied to the index.
    Passing a task twice oversamples it.
    """

    def __init__(self, tasks, **kwargs):
        super().__init__(tasks, **kwargs)
        self.order = shuffled_order(self.offsets[-1])

    def get_example(self, index):
        return super().get_example(self.order[index])
