"""compiler/nanochat.py: `nanotasks switch-nanochat` on a stand-in nanochat checkout, with the
editable install and with a wheel in a fresh venv, and its refusal of what is not a checkout."""

import json
import sys

import pytest

from tests.conftest import nanotasks as run_nanotasks
from tests.test_packaging import fresh_venv, run

STAND_IN = """class {cls}:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("nanochat's own {cls}: it would download from the hub")
"""
CHECKOUT_MODULES = {
    "common": ["Task", "TaskMixture", "TaskSequence"],
    "arc": ["ARC"],
    "mmlu": ["MMLU"],
    "gsm8k": ["GSM8K"],
    "humaneval": ["HumanEval"],
    "smoltalk": ["SmolTalk"],
    "spellingbee": ["SpellingBee", "SimpleSpelling"],
    "customjson": ["CustomJSON"],
    "lmarena": ["LMArena"],
}

# What nanochat's scripts do: build the SFT mixture and the evaluation tasks, then look at them.
SFT_SCRIPT = """
import json
from tasks.common import TaskMixture
from tasks.arc import ARC
from tasks.gsm8k import GSM8K
from tasks.mmlu import MMLU
from tasks.smoltalk import SmolTalk
from tasks.spellingbee import SimpleSpelling, SpellingBee
from tasks.humaneval import HumanEval

train = TaskMixture([SmolTalk(split="train"), MMLU(subset="auxiliary_train", split="train"),
                     GSM8K(subset="main", split="train"), GSM8K(subset="main", split="train"),
                     SimpleSpelling(size=300, split="train"), SpellingBee(size=300, split="train")])
evals = [ARC(subset="ARC-Easy", split="test"), ARC(subset="ARC-Challenge", split="test"),
         MMLU(subset="all", split="test"), GSM8K(subset="main", split="test"), HumanEval()]
print(json.dumps({"train": [train[i] for i in range(0, len(train), 7)],
                  "evals": [[task[i] for i in range(len(task))] for task in evals],
                  "types": [type(task).__module__ for task in evals]}))
"""
OFFLINE = """
import runpy, socket
def refuse(*args, **kwargs):
    raise OSError("network access attempted")
socket.socket = socket.create_connection = socket.getaddrinfo = refuse
runpy.run_module("scripts.chat_sft", run_name="__main__", alter_sys=True)
"""


def expected_sft_output():
    namespace = {}
    exec(
        SFT_SCRIPT.replace("from tasks.", "from nanotasks.tasks.").replace("print(", "result = ("),
        namespace,
    )
    return json.loads(namespace["result"])


@pytest.fixture
def checkout(tmp_path):
    """A stand-in nanochat checkout: its own tasks/ whose classes would download, and a script
    that imports from it as nanochat's do; a git repository, as a clone is."""
    root = tmp_path / "nanochat-checkout"
    for folder in ("nanochat", "tasks", "scripts"):
        (root / folder).mkdir(parents=True)
    (root / "nanochat" / "__init__.py").write_text("")
    for module, classes in CHECKOUT_MODULES.items():
        (root / "tasks" / f"{module}.py").write_text(
            "\n".join(STAND_IN.format(cls=c) for c in classes)
        )
    (root / "scripts" / "chat_sft.py").write_text(SFT_SCRIPT)
    (root / ".gitignore").write_text("__pycache__/\n")
    run("git", "init", "-q", root)
    run("git", "-C", root, "add", ".")
    run(
        "git",
        "-C",
        root,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "-m",
        "checkout",
    )
    return root


def run_script(python, root, db):
    return run(
        python,
        "-c",
        OFFLINE,
        cwd=root,
        check=False,
        env={"NANOTASKS_DB": str(db), "HOME": str(root)},
    )


def check_switch(python, command, root, db):
    before = run_script(python, root, db)
    assert before.returncode == 1 and "nanochat's own SmolTalk: it would download" in before.stderr
    switched = run(*command, "switch-nanochat", root).stdout
    assert switched.count("switched  tasks/") == 8 and "untouched tasks/lmarena.py" in switched
    assert f"Undo: cd {root} && git checkout tasks/" in switched
    changed = run("git", "-C", root, "status", "--porcelain").stdout.split("\n")
    assert sorted(line.split()[-1] for line in changed if line) == sorted(
        f"tasks/{m}.py" for m in CHECKOUT_MODULES if m != "lmarena"
    )
    again = run(*command, "switch-nanochat", root).stdout
    assert again.count("already   tasks/") == 8 and "switched" not in again.split("\n")[0]
    after = run_script(python, root, db)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == expected_sft_output()
    run("git", "-C", root, "checkout", "tasks/")
    assert run_script(python, root, db).returncode == 1


def test_switch_with_the_editable_install(checkout, sample_db, monkeypatch):
    monkeypatch.setenv("NANOTASKS_DB", str(sample_db))
    check_switch(sys.executable, [sys.executable, "-m", "nanotasks"], checkout, sample_db)


def test_switch_with_a_wheel_install(checkout, sample_db, wheel, tmp_path, monkeypatch):
    monkeypatch.setenv("NANOTASKS_DB", str(sample_db))
    python, _ = fresh_venv(tmp_path / "venv", wheel)
    check_switch(python, [tmp_path / "venv" / "bin" / "nanotasks"], checkout, sample_db)


def test_switch_refuses_what_is_not_a_nanochat_checkout(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "arc.py").write_text("mine\n")
    result = run_nanotasks("switch-nanochat", tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: {tmp_path} does not look like a nanochat checkout: it has no nanochat, "
        f"tasks/common.py. Give the directory that holds nanochat/ and tasks/.\n"
    )
    assert (tmp_path / "tasks" / "arc.py").read_text() == "mine\n"
