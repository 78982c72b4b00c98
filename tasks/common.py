"""The Task API shared by every benchmark, as in nanochat's tasks/common.py.

A Task is a list of conversations with a view (start, stop, step) over it. Store-backed
tasks read their examples from the compiled file; TaskMixture and TaskSequence combine
tasks for training.
"""

import bisect
import operator
import random
import re
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain, repeat
from types import MappingProxyType
from typing import Any, NamedTuple

from nanotasks.store import default_path
from nanotasks.store.reader import Conversation, Store, StrPath

ANSWER = re.compile(r"#### (\-?[0-9\.\,]+)")  # the final answer of GSM8K and the spelling tasks


class Source(NamedTuple):
    """Where one stored split comes from: `repo`'s `config`/`source_split` on the hub."""

    task: str
    subset: str
    split: str
    repo: str
    config: str
    source_split: str
    # Stored in the seed-42 order of `Dataset.shuffle`, as nanochat reads it; else in source order.
    shuffle: bool = True


class SourceFile(NamedTuple):
    """A whole file that tasks generate examples from, e.g. a word list."""

    name: str
    repo: str
    url: str
    mirror_path: str  # where it lies in a `--mirror` directory


class Archive(NamedTuple):
    """A file holding several splits and files, stored apart (nanochat's CORE eval bundle):
    `unpack(its bytes)` -> ({(subset, split): a function giving the split's Examples},
    {file name: its bytes}), an exception in place of a part the archive cannot give."""

    file: SourceFile
    unpack: Callable


class Benchmark(NamedTuple):
    """What `nanotasks compile`, `show` and `export` need to know about one benchmark. Each
    tasks/<name>.py declares one as BENCHMARK, and tasks/__init__.py lists the modules."""

    name: str  # the module's name: what --only, show and export take
    sources: tuple[Source, ...] = ()  # the hub splits it stores, one per stored split
    normalise: Callable | None = None  # (source row as a dict, its Source) -> store.Example
    files: tuple[SourceFile, ...] = ()  # whole files its tasks generate examples from
    # Other names its stored splits are served under: (subset, split) -> stored (subset, split).
    # The defaults are read-only, so the benchmarks that share them cannot change them.
    aliases: Mapping[tuple[str, str], tuple[str, str]] = MappingProxyType({})
    # Tasks generated at read time from its files, by class name: `show`'s subsets.
    generated: Mapping[str, type] = MappingProxyType({})
    # For sources whose columns are only known once fetched (chat datasets): (column names, Source)
    # -> {column: the fields normalise reads of each item of that list of structs, or None for a
    # plain column, where a null string reads as ""}; normalise sees only these. Raises
    # UnknownLayout.
    columns: Callable | None = None
    archive: Archive | None = None  # an archive whose parts it stores as splits and files


class UnknownLayout(ValueError):
    """A source whose columns are not laid out as its benchmark reads them."""


class Task:
    """A view over a list of conversations: task[i] is example start + i * step."""

    def __init__(self, start: int = 0, stop: int | None = None, step: int = 1) -> None:
        if start < 0 or (stop is not None and stop < start) or step < 1:
            raise ValueError(
                f"invalid view start={start}, stop={stop}, step={step}: need "
                f"0 <= start <= stop and step >= 1"
            )
        self.start, self.stop, self.step = start, stop, step

    @property
    def eval_type(self) -> str:
        raise NotImplementedError  # 'categorical' or 'generative'

    def num_examples(self) -> int:
        raise NotImplementedError

    def get_example(self, index: int) -> Conversation:
        raise NotImplementedError

    def evaluate(self, conversation: Conversation, response: str) -> bool | int:
        raise NotImplementedError

    def reward(self, conversation: Conversation, response: str) -> float:
        """evaluate as a float, for reinforcement learning."""
        return float(self.evaluate(conversation, response))

    def positions(self) -> range:
        """The examples this view serves, as a range: indexing it is the view arithmetic, in C."""
        return range(self.start, self.num_examples() if self.stop is None else self.stop, self.step)

    def __len__(self) -> int:
        return len(self.positions())

    def get_examples(self, positions: Sequence[int]) -> list[Conversation]:
        """get_example of each position: tasks that read a batch faster than one by one
        override it."""
        return [self.get_example(position) for position in positions]

    def __getitem__(self, index: int) -> Conversation:
        return self.get_example(self._position(self.positions(), index))

    def __iter__(self) -> Iterator[Conversation]:
        return (self[i] for i in range(len(self)))

    def __getitems__(self, indices: Iterable[int]) -> list[Conversation]:
        """task[i] for each of `indices`, in one batch: a torch DataLoader asks for a whole
        batch this way when the dataset has this method."""
        positions = self.positions()
        return self.get_examples([self._position(positions, index) for index in indices])

    @staticmethod
    def _position(positions: range, index: int) -> int:
        try:
            return positions[operator.index(index)]  # TypeError for floats, strings, slices
        except IndexError:
            raise IndexError(
                f"index {index} out of range for a task of {len(positions)} examples"
            ) from None


class StoredTask(Task):
    """A task whose examples are the rows of one split in the compiled file at `db`
    (default_path() when None)."""

    def __init__(
        self,
        task: str,
        subset: str,
        split: str,
        db: StrPath | None = None,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
    ) -> None:
        super().__init__(start, stop, step)
        self.store = Store(db or default_path())
        self.stored_split = self.store.split(task, subset, split)
        self._positions = super().positions()

    def positions(self) -> range:
        return self._positions  # a split's rows never change

    def num_examples(self) -> int:
        return self.stored_split.rows

    def get_example(self, index: int) -> Conversation:
        return self.store.read(self.stored_split, index)

    def get_examples(self, positions: Sequence[int]) -> list[Conversation]:
        return self.store.read_many(self.stored_split, positions)


def extract_answer(text: str) -> str | None:
    """The number after '#### ', without thousands separators; None when there is none."""
    match = ANSWER.search(text)
    return match.group(1).strip().replace(",", "") if match else None


def evaluate_number(conversation: Conversation, response: str) -> int:
    """1 when the response's '#### N' equals the gold one (the last part of the last
    message), else 0: GSM8K's and the spelling tasks' evaluation."""
    gold = extract_answer(conversation["messages"][-1]["content"][-1]["text"])
    return int(extract_answer(response) == gold)


def evaluate_letter(conversation: Conversation, response: str) -> bool:
    """Whether the response is the gold letter; a response that is no letter at all is an
    error. The multiple choice tasks' (ARC's, MMLU's) evaluation."""
    if response not in conversation["letters"]:
        raise ValueError(
            f"response {response!r} is not one of the letters {list(conversation['letters'])}"
        )
    return response == conversation["messages"][-1]["content"]


def check_choice(what, value, valid):
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}: choose one of {', '.join(map(repr, valid))}")


def check_type(what, value, kind, items=None):
    """TypeError unless `value` is exactly a `kind` (so True is no int), and with `items`,
    a list of exactly `items`: the compiler names the row that fails."""
    if type(value) is not kind or (items and any(type(item) is not items for item in value)):
        expected = kind.__name__ + (f" of {items.__name__}" if items else "")
        raise TypeError(f"{what} is {value!r:.80}, expected {expected}")


# The kinds of part an assistant's content may be a list of, as nanochat's tokenizer renders
# them: text, a calculator call (python) and its result (python_output).
PART_TYPES = ("text", "python", "python_output")


def check_conversation(messages, system=True, parts=False):
    """An optional leading system message (when `system`), then user and assistant messages
    alternating from user, at least two of them, each an object with a string content, or
    (when `parts`) an assistant's content a list of parts {"type": one of PART_TYPES,
    "text": a string}, as GSM8K's replies are."""
    if not isinstance(messages, list):
        raise ValueError(f"messages must be a list (a JSON array), got {type(messages).__name__}")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"message {i} is not an object")
    first = 1 if system and messages and messages[0].get("role") == "system" else 0
    turns = messages[first:]
    if len(turns) < 2:
        raise ValueError(f"{len(turns)} user/assistant message(s), need at least 2")
    for i, message in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if message.get("role") != expected:
            raise ValueError(
                f"message {first + i} has role {message.get('role')!r}, expected {expected!r}"
            )
    for i, message in enumerate(messages):
        content = message.get("content")
        if parts and message.get("role") == "assistant" and isinstance(content, list):
            _check_parts(content, i)
        elif not isinstance(content, str):
            raise ValueError(f"message {i} has no string content")


def _check_parts(content, i):
    for j, part in enumerate(content):
        if not (
            isinstance(part, dict)
            and part.get("type") in PART_TYPES
            and isinstance(part.get("text"), str)
        ):
            raise ValueError(
                f'message {i}, part {j} is not an object with "type" ({", ".join(PART_TYPES)}) '
                f'and "text" (a string)'
            )


def render_mc(question, letters, choices):
    """A multiple choice prompt. The letter comes after its choice, so a model that is unsure
    predicts the letter with the choice's text already in context; no space after '=' so the
    letter is a single token."""
    lines = "".join(
        f"- {choice}={letter}\n" for letter, choice in zip(letters, choices, strict=True)
    )
    return (
        f"Multiple Choice question: {question}\n{lines}\n"
        "Respond only with the letter of the correct answer."
    )


WORD = "I" if array("I").itemsize == 4 else "L"  # 32-bit unsigned


def shuffled_order(n, seed=42):
    """The permutation `random.Random(seed).shuffle` applies to a list of n items, as an array:
    shuffling list(range(n)) puts order[i] at i, whatever the list holds.

    It replays CPython's shuffle (3.2+) exactly, with less work per item: for i from n-1 down
    to 1, swap i with j = randbelow(i + 1), where randbelow draws getrandbits(k) with
    k = (i + 1).bit_length() until the draw is <= i, and getrandbits(k <= 32) is one 32-bit
    Mersenne Twister output shifted right by 32 - k. The outputs are drawn in bulk (one
    getrandbits(32 * m) is m consecutive outputs, the first in the lowest 32 bits), and k is
    constant over each run of i between powers of two, so the shifts run in C.
    """
    order = array("l", range(n))
    if n > 2**32:  # randbelow would need more than one output per draw
        random.Random(seed).shuffle(order)
        return order
    words = chain.from_iterable(_mersenne_outputs(random.Random(seed)))
    i = n - 1
    while i >= 1:
        bits = (i + 1).bit_length()
        last = max((1 << (bits - 1)) - 1, 1)  # the smallest i with this bit length of i + 1
        for j in map(operator.rshift, words, repeat(32 - bits)):
            if j <= i:
                order[i], order[j] = order[j], order[i]
                if i == last:
                    break
                i -= 1
        i -= 1
    return order


def _mersenne_outputs(rng, count=1 << 16):
    """rng's 32-bit outputs in order, `count` at a time (one getrandbits call per array)."""
    while True:
        words = array(WORD, rng.getrandbits(32 * count).to_bytes(4 * count, "little"))
        if sys.byteorder == "big":
            words.byteswap()
        yield words


class TaskSequence(Task):
    """The tasks one after another."""

    def __init__(
        self, tasks: Iterable[Task], start: int = 0, stop: int | None = None, step: int = 1
    ) -> None:
        super().__init__(start, stop, step)
        self.tasks = list(tasks)
        self.offsets = [0]
        for task in self.tasks:
            self.offsets.append(self.offsets[-1] + len(task))

    def num_examples(self) -> int:
        return self.offsets[-1]

    def get_example(self, index: int) -> Conversation:
        position = bisect.bisect_right(self.offsets, index) - 1
        return self.tasks[position][index - self.offsets[position]]

    def get_examples(self, positions: Sequence[int]) -> list[Conversation]:
        """Each task reads its share of the batch in one go; the examples come back in order."""
        shares: dict[int, list[tuple[int, int]]] = {}  # task number -> [(slot, index in task)]
        for slot, position in enumerate(positions):
            number = bisect.bisect_right(self.offsets, position) - 1
            shares.setdefault(number, []).append((slot, position - self.offsets[number]))
        examples: list[Any] = [None] * len(positions)
        for number, share in shares.items():
            slots, indices = zip(*share, strict=True)
            for slot, example in zip(slots, self.tasks[number].__getitems__(indices), strict=True):
                examples[slot] = example
        return examples


class TaskMixture(TaskSequence):
    """Every example of every task, shuffled once with random.Random(42).

    Equal to building the list of (task_position, local_index) pairs task by task and
    shuffling it, without the list: the shuffle's permutation is applied to the index.
    Passing a task twice oversamples it.
    """

    def __init__(
        self, tasks: Iterable[Task], start: int = 0, stop: int | None = None, step: int = 1
    ) -> None:
        super().__init__(tasks, start, stop, step)
        self.order = shuffled_order(self.offsets[-1])

    def get_example(self, index: int) -> Conversation:
        return super().get_example(self.order[index])

    def get_examples(self, positions: Sequence[int]) -> list[Conversation]:
        return super().get_examples([self.order[position] for position in positions])
