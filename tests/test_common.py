"""tasks/common.py: Task views, TaskSequence and TaskMixture, the shuffle order the mixture is
built on, render_mc, and what every Task does alike (errors naming the split and the command,
the default file, one indexed read, no network).

The mixture's order must equal nanochat's construction exactly (a list of (task, index) pairs
shuffled with random.Random(42)), so runs can be compared across tools: shuffled_order is
checked against random.Random(seed).shuffle itself, over many sizes and seeds, and the views
and the mixture against the reference's list of pairs with hypothesis."""

import json
import pickle
import random
import re
import shutil
import subprocess
import sys

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nanotasks.store.reader import NotInStore, StoreNotFound
from nanotasks.tasks.arc import ARC
from nanotasks.tasks.common import Task, TaskMixture, TaskSequence, render_mc, shuffled_order
from nanotasks.tasks.customjson import CustomJSON
from nanotasks.tasks.gsm8k import GSM8K
from nanotasks.tasks.humaneval import HumanEval
from nanotasks.tasks.mmlu import MMLU
from nanotasks.tasks.smoltalk import SmolTalk
from nanotasks.tasks.spellingbee import SimpleSpelling, SpellingBee
from tests.conftest import SAMPLE, invoke
from tests.helpers import CONVERSATIONS, write_jsonl
from tests.reference import multiple_choice
from tests.test_dataloader import small_tasks


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


@pytest.mark.parametrize(
    "start, stop, step",
    [
        (0, None, 1),
        (2, None, 1),
        (0, 7, 1),
        (1, 8, 3),
        (3, 3, 1),
        (0, None, 4),
        (9, None, 2),
        (5, 10, 10),
    ],
)
def test_view_arithmetic(start, stop, step):
    task = Numbers(10, start=start, stop=stop, step=step)
    expected = list(range(10))[start:stop:step]
    assert len(task) == len(expected)
    assert list(task) == expected  # iteration stops at IndexError
    assert [task[i] for i in range(-len(expected), 0)] == expected  # negative like a list


@pytest.mark.parametrize(
    "kwargs", [{"start": -1}, {"start": 5, "stop": 4}, {"step": 0}, {"step": -2}]
)
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
    tasks = [
        MMLU("all", "dev", db=sample_db),
        Numbers(0),
        ARC("ARC-Challenge", "test", db=sample_db, stop=4),
    ]
    sequence = TaskSequence(tasks)
    assert len(sequence) == len(tasks[0]) + 4
    assert list(sequence) == list(tasks[0]) + list(tasks[2])
    assert sequence[-1] == tasks[2][3]


def test_mixture_pickles(sample_db):
    mixture = TaskMixture([ARC("ARC-Easy", "test", db=sample_db), Numbers(9)])
    copy = pickle.loads(pickle.dumps(mixture))
    assert list(copy) == list(mixture)


def test_render_mc_exact_text():
    # pins the reference, tests/reference.py's multiple_choice, that every other test compares with
    expected = (
        "Multiple Choice question: 2+2?\n- 3=A\n- 4=B\n- x=y=C\n\n"
        "Respond only with the letter of the correct answer."
    )
    assert render_mc("2+2?", ["A", "B", "C"], ["3", "4", "x=y"]) == expected
    assert multiple_choice("2+2?", ["A", "B", "C"], ["3", "4", "x=y"]) == expected


@pytest.mark.parametrize(
    "make, valid",
    [
        (lambda db: ARC("ARC-easy", "train", db=db), ["ARC-Easy", "ARC-Challenge"]),
        (lambda db: ARC("ARC-Easy", "dev", db=db), ["train", "validation", "test"]),
        (lambda db: MMLU("astronomy", "test", db=db), ["all", "auxiliary_train"]),
        (lambda db: MMLU("all", "train", db=db), ["auxiliary_train", "validation", "dev", "test"]),
        (lambda db: MMLU("auxiliary_train", "test", db=db), ["train"]),
        (lambda db: GSM8K("mian", "train", db=db), ["main", "socratic"]),
        (lambda db: GSM8K("main", "validation", db=db), ["train", "test"]),
        (lambda db: SmolTalk("validation", db=db), ["train", "test"]),
        (lambda db: SpellingBee(split="validation", db=db), ["train", "test"]),
        (lambda db: SimpleSpelling(split="dev", db=db), ["train", "test"]),
    ],
)
def test_invalid_subset_or_split_lists_the_valid_ones(sample_db, make, valid):
    with pytest.raises(ValueError) as error:
        make(sample_db)
    assert all(repr(name) in str(error.value) for name in valid)


ALL_TASKS = [
    lambda db: ARC("ARC-Easy", "train", db=db),
    lambda db: MMLU("all", "test", db=db),
    lambda db: GSM8K("main", "test", db=db),
    lambda db: HumanEval(db=db),
    lambda db: SmolTalk("train", db=db),
    lambda db: SpellingBee(db=db),
    lambda db: SimpleSpelling(db=db),
    lambda db: CustomJSON(name="x", db=db),
]


@pytest.mark.parametrize("make", ALL_TASKS)
def test_missing_file_names_path_and_compile_command(tmp_path, make):
    db = tmp_path / "nowhere" / "nanotasks.db"
    with pytest.raises(StoreNotFound) as error:
        make(db)
    assert isinstance(error.value, FileNotFoundError)
    assert str(db) in str(error.value) and f"nanotasks compile --db {db}" in str(error.value)


def test_file_without_the_split_names_path_split_and_command(tmp_path):
    db = tmp_path / "gsm8k-only.db"
    invoke("compile", "--mirror", SAMPLE, "--only", "gsm8k", "--db", db, check=True)
    assert len(GSM8K("main", "test", db=db)) == 6
    cases = [
        (lambda: ARC("ARC-Challenge", "validation", db=db), "arc ARC-Challenge/validation", "arc"),
        (lambda: MMLU("auxiliary_train", "train", db=db), "mmlu all/auxiliary_train", "mmlu"),
        (lambda: HumanEval(db=db), "humaneval openai_humaneval/test", "humaneval"),
        (lambda: SmolTalk("test", db=db), "smoltalk default/test", "smoltalk"),
        (lambda: SpellingBee(db=db), "words_alpha.txt", "spellingbee"),
        (lambda: SimpleSpelling(db=db), "words_alpha.txt", "spellingbee"),
    ]
    for make, missing, module in cases:
        with pytest.raises(NotInStore) as error:
            make()
        message = str(error.value)
        assert message.startswith(f"{db} has no {missing}")
        assert message.endswith(f"Add it with `nanotasks compile --only {module} --db {db}`.")


def test_default_path_from_environment(sample_db, monkeypatch, tmp_path):
    monkeypatch.setenv("NANOTASKS_DB", str(sample_db))
    assert list(ARC("ARC-Easy", "test")) == list(ARC("ARC-Easy", "test", db=sample_db))
    monkeypatch.delenv("NANOTASKS_DB")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(
        StoreNotFound, match=re.escape(str(tmp_path / "nanotasks" / "nanotasks.db"))
    ):
        ARC("ARC-Easy", "test")


def test_get_example_is_one_indexed_read(sample_db):
    task = MMLU("all", "test", db=sample_db)
    task[0]
    statements = []
    task.store.connection.set_trace_callback(statements.append)
    try:
        task[5]
    finally:
        task.store.connection.set_trace_callback(None)
    assert len(statements) == 1 and re.fullmatch(
        r"SELECT body FROM example_data WHERE id = \d+", statements[0]
    )


OFFLINE = """
import socket, sys

def refuse(*args, **kwargs):
    raise OSError("network access attempted")

socket.socket = socket.create_connection = socket.getaddrinfo = socket.socketpair = refuse
socket.gethostbyname = socket.gethostbyname_ex = refuse

from nanotasks.tasks.arc import ARC
from nanotasks.tasks.common import TaskMixture, TaskSequence
from nanotasks.tasks.customjson import CustomJSON
from nanotasks.tasks.gsm8k import GSM8K
from nanotasks.tasks.humaneval import HumanEval
from nanotasks.tasks.mmlu import MMLU
from nanotasks.tasks.smoltalk import SmolTalk
from nanotasks.tasks.spellingbee import SimpleSpelling, SpellingBee

tasks = [ARC("ARC-Easy", "train"), ARC("ARC-Challenge", "test"), MMLU("all", "auxiliary_train"),
         MMLU("auxiliary_train", "train"), MMLU("all", "validation"), MMLU("all", "dev"),
         MMLU("all", "test"), GSM8K("main", "train"), GSM8K("socratic", "test"), HumanEval(),
         SmolTalk("train"), SmolTalk("test"),
         SpellingBee(size=20), SpellingBee(size=20, split="test"), SimpleSpelling(size=20),
         CustomJSON(name="mine"), CustomJSON(sys.argv[1])]
tasks += [TaskMixture(tasks), TaskSequence(tasks)]
print(sum(1 for task in tasks for example in task))
try:
    socket.create_connection(("127.0.0.1", 9))
except OSError as error:
    print(error)
"""


def test_every_task_reads_with_sockets_disabled(sample_db, tmp_path):
    db = tmp_path / "offline.db"
    shutil.copy(sample_db, db)
    chat = write_jsonl(tmp_path / "chat.jsonl", [json.dumps(c) for c in CONVERSATIONS])
    invoke(
        "compile",
        "--mirror",
        SAMPLE,
        "--only",
        "humaneval",
        "--custom",
        f"mine={chat}",
        "--db",
        db,
        check=True,
    )
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE, str(chat)],
        capture_output=True,
        text=True,
        env={"NANOTASKS_DB": str(db)},
    )
    assert result.returncode == 0, result.stderr
    total = 8 + 6 + 8 + 8 + 8 + 12 + 12 + 8 + 6 + 5 + 14 + 5 + 20 + 20 + 20 + 3 + 3
    assert result.stdout.split("\n", 1) == [str(3 * total), "network access attempted\n"]


class Items(Task):
    """n examples, example i being (name, i)."""

    def __init__(self, n, name="items", **kwargs):
        super().__init__(**kwargs)
        self.n, self.name = n, name

    def num_examples(self):
        return self.n

    def get_example(self, index):
        if not 0 <= index < self.n:
            raise IndexError(index)
        return (self.name, index)


@st.composite
def views(draw):
    """(n, start, stop, step) of a valid view; stop may be None or lie past the end."""
    n = draw(st.integers(0, 60))
    start = draw(st.integers(0, 70))
    stop = draw(st.none() | st.integers(start, 80))
    return n, start, stop, draw(st.integers(1, 12))


@given(views())
def test_a_view_indexes_like_range(view):
    n, start, stop, step = view
    task = Items(n, start=start, stop=stop, step=step)
    expected = range(start, n if stop is None else stop, step)
    assert len(task) == len(expected)
    for i in [*range(len(expected)), *range(-len(expected), 0)]:
        if expected[i] < n:
            assert task[i] == ("items", expected[i])
        else:  # a stop past the end is not clamped (as in nanochat): reading there fails
            with pytest.raises(IndexError):
                task[i]
    for i in (len(expected), -len(expected) - 1):
        with pytest.raises(IndexError):
            task[i]
    if stop is None or stop <= n:
        assert list(task) == [("items", i) for i in expected]


@given(st.integers(-5, 5), st.none() | st.integers(-5, 5), st.integers(-3, 3))
def test_an_invalid_view_is_refused(start, stop, step):
    assume(start < 0 or (stop is not None and stop < start) or step < 1)
    with pytest.raises(ValueError, match="invalid view"):
        Items(10, start=start, stop=stop, step=step)


@given(st.lists(st.integers(0, 40), max_size=8), st.booleans(), views())
def test_the_mixture_order_is_the_reference_shuffle_of_pairs(lengths, repeat_first, view):
    """nanochat builds the list of (task, index) pairs task by task and shuffles it with
    random.Random(42); passing a task twice oversamples it."""
    tasks = [Items(n, name=f"task{t}") for t, n in enumerate(lengths)]
    if repeat_first and tasks:
        tasks.append(tasks[0])
    pairs = [(t, i) for t, task in enumerate(tasks) for i in range(len(task))]
    random.Random(42).shuffle(pairs)
    expected = [tasks[t][i] for t, i in pairs]
    assert list(TaskMixture(tasks)) == expected
    assert list(TaskSequence(tasks)) == [task[i] for task in tasks for i in range(len(task))]
    _, start, stop, step = view
    if stop is not None:  # a view within the mixture's length
        stop = max(start, min(stop, len(expected)))
    assert list(TaskMixture(tasks, start=start, stop=stop, step=step)) == expected[start:stop:step]


line_text = st.text(st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)))


@given(
    line_text,
    st.lists(
        st.tuples(st.sampled_from("ABCDE12345"), line_text),
        min_size=1,
        max_size=5,
        unique_by=lambda pair: pair[0],
    ),
)
def test_render_mc_is_the_reference_for_any_question_and_choices(question, lettered):
    letters, choices = [pair[0] for pair in lettered], [pair[1] for pair in lettered]
    assert render_mc(question, letters, choices) == multiple_choice(question, letters, choices)


# --- task.__getitems__: a DataLoader's batch at once, exactly what task[i] gives -----------


def batches(task, seed=0):
    """Index lists as a loader would ask for them, with repeats, negative indices, and the ends."""
    rng = random.Random(seed)
    n = len(task)
    yield [rng.randrange(n) for _ in range(2 * n)]
    yield [n - 1, 0, -1, -n, 0]
    yield []


def test_each_task_mixture_and_view_gives_what_indexing_gives(sample_db):
    tasks = small_tasks(sample_db)
    views = [
        GSM8K("main", "train", db=sample_db, start=1, stop=9, step=3),
        TaskMixture(tasks),
        TaskSequence([TaskMixture(tasks[:3]), SmolTalk("test", db=sample_db, step=2)], start=5),
    ]
    for task in tasks + views:
        for indices in batches(task):
            assert task.__getitems__(indices) == [task[i] for i in indices], type(task).__name__


def test_mmlu_batches_carry_the_letters_tuple(sample_db):
    examples = MMLU("all", "test", db=sample_db).__getitems__([0, 1])
    assert [example["letters"] for example in examples] == [("A", "B", "C", "D")] * 2


@pytest.mark.parametrize(
    "index, error", [(10**6, IndexError), (1.0, TypeError), (slice(0, 2), TypeError)]
)
def test_a_bad_index_in_a_batch_is_refused_as_indexing_refuses_it(sample_db, index, error):
    task = GSM8K("main", "train", db=sample_db)
    with pytest.raises(error) as one:
        task[index]
    with pytest.raises(error) as batch:
        task.__getitems__([0, index])
    assert str(batch.value) == str(one.value)
