"""Tasks in real PyTorch DataLoader worker processes, started with fork and with spawn: each
process opens its own connection, and the workers return exactly the examples of a serial pass."""

import pickle
import subprocess
import sys

import pytest

from nanotasks.tasks.arc import ARC
from nanotasks.tasks.common import TaskMixture, TaskSequence
from nanotasks.tasks.gsm8k import GSM8K
from nanotasks.tasks.humaneval import HumanEval
from nanotasks.tasks.mmlu import MMLU
from nanotasks.tasks.smoltalk import SmolTalk
from nanotasks.tasks.spellingbee import SimpleSpelling, SpellingBee
from tests.conftest import REPO


@pytest.fixture
def torch():
    """Only the DataLoader tests need torch; the others run without it."""
    return pytest.importorskip("torch")


def unchanged(example):
    """The loader's collate_fn: torch's default would turn MMLU's letters tuple into a list."""
    return example


def small_tasks(db):
    return [
        ARC("ARC-Challenge", "train", db=db),
        MMLU("all", "test", db=db),
        MMLU("auxiliary_train", "train", db=db),
        GSM8K("socratic", "train", db=db),
        HumanEval(db=db),
        SmolTalk("train", db=db),
        SpellingBee(size=25, split="test", db=db),
        SimpleSpelling(size=25, db=db),
    ]


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_return_the_serial_examples(torch, sample_db, context):
    tasks = small_tasks(sample_db)
    mixture = TaskMixture(tasks)
    dataset = TaskSequence(
        [mixture, TaskSequence(tasks, start=1, step=2)]
    )  # one loader: spawn is slow
    serial = list(dataset)  # the parent has its connection open before the workers start
    assert len(serial) == 104 + 52  # the mixture, then every other example of the tasks
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        num_workers=2,
        collate_fn=unchanged,
        multiprocessing_context=context,
    )
    assert list(loader) == serial


def test_dataloader_shuffled_batches_cover_every_example(torch, sample_db):
    task = GSM8K("main", "train", db=sample_db)
    loader = torch.utils.data.DataLoader(
        task,
        batch_size=3,
        shuffle=True,
        num_workers=2,
        collate_fn=unchanged,
        multiprocessing_context="fork",
        generator=torch.Generator().manual_seed(0),
    )
    loaded = [example for batch in loader for example in batch]
    assert sorted(map(repr, loaded)) == sorted(map(repr, task))


FORKED_CHILD = """
import multiprocessing, sys
from nanotasks.tasks.arc import ARC

def check_own_connection(task, inherited):
    # runs in the forked child: it may use what it inherited only to notice it is not its own
    raise SystemExit(0 if task.store.connection is not inherited and task[0] == task[0] else 3)

task = ARC("ARC-Easy", "test", db=sys.argv[1])
inherited = task.store.connection
fork = multiprocessing.get_context("fork")
child = fork.Process(target=check_own_connection, args=(task, inherited))
child.start()
child.join()
# the parent keeps its own
sys.exit(child.exitcode or (4 if task.store.connection is not inherited else 0))
"""


def test_forked_child_opens_its_own_connection(sample_db):
    # from a fresh interpreter: forking a pytest-xdist worker, which runs threads, can deadlock
    forked = subprocess.run(
        [sys.executable, "-c", FORKED_CHILD, sample_db], capture_output=True, text=True, cwd=REPO
    )
    assert forked.returncode == 0, forked.stderr


FROZEN_CHILD = """
import gc, multiprocessing, sys
from nanotasks.tasks.arc import ARC

def check_inherited_objects_frozen(parent_frozen):
    # runs in the forked child: what it inherited is out of the garbage collector's reach, so
    # collections there do not copy the pages it shares with its parent
    raise SystemExit(0 if gc.get_freeze_count() > parent_frozen else 3)

task = ARC("ARC-Easy", "test", db=sys.argv[1])
task[0]
child = multiprocessing.get_context("fork").Process(target=check_inherited_objects_frozen,
                                                     args=(gc.get_freeze_count(),))
child.start()
child.join()
sys.exit(child.exitcode)
"""


def test_forked_child_freezes_what_it_inherited(sample_db):
    # from a fresh interpreter, as above
    forked = subprocess.run(
        [sys.executable, "-c", FROZEN_CHILD, sample_db], capture_output=True, text=True, cwd=REPO
    )
    assert forked.returncode == 0, forked.stderr


def test_pickled_task_carries_no_connection_or_word_list(sample_db):
    task = SpellingBee(size=5, db=sample_db)
    task[0]  # loads the word list and opens the connection
    state = pickle.dumps(task)
    assert b"trip" not in state and len(state) < 1000
    assert list(pickle.loads(state)) == list(task)
