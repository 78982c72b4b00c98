"""compiler/nanochat.py: `nanotasks switch-nanochat` on a stand-in nanochat checkout, with the
editable install and with a wheel in a fresh venv, and its refusal of what is not a checkout.
The checkout's scripts/base_eval.py then runs CORE from the compiled file with no network."""

import json
import sys
import zipfile

import pytest

from tests.conftest import SAMPLE
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


# Stand-ins for the parts of nanochat that base_eval's CORE evaluation loads its data with:
# nanochat.common's download (urllib, as nanochat's) and base directory, an evaluate_task that
# needs a model, and scripts/base_eval.py's imports and loading (download and unzip the bundle
# unless it is there, read core.yaml, eval_meta_data.csv and each task's lines, shuffle them
# with Random(1337)), as nanochat's do them.
NANOCHAT_COMMON = """
import os
import urllib.request


def get_base_dir():
    base = os.environ.get("NANOCHAT_BASE_DIR") or os.path.expanduser("~/.cache/nanochat")
    os.makedirs(base, exist_ok=True)
    return base


def download_file_with_lock(url, filename, postprocess_fn=None):
    path = os.path.join(get_base_dir(), filename)
    if not os.path.exists(path):
        with urllib.request.urlopen(url) as response:
            content = response.read()
        with open(path, "wb") as f:
            f.write(content)
        if postprocess_fn is not None:
            postprocess_fn(path)
    return path
"""
NANOCHAT_CORE_EVAL = """
def evaluate_task(model, tokenizer, data, device, task_meta):
    raise RuntimeError("nanochat's evaluate_task: it needs a model")
"""
BASE_EVAL = """\"\"\"Evaluates a base model: here only its CORE tasks' loading.\"\"\"
import csv
import json
import os
import random
import shutil
import tempfile
import zipfile

import yaml

from nanochat.common import download_file_with_lock, get_base_dir
from nanochat.core_eval import evaluate_task

EVAL_BUNDLE_URL = "https://karpathy-public.s3.us-west-2.amazonaws.com/eval_bundle.zip"


def place_eval_bundle(file_path):
    with tempfile.TemporaryDirectory() as unzipped:
        with zipfile.ZipFile(file_path) as bundle:
            bundle.extractall(unzipped)
        target = os.path.join(get_base_dir(), "eval_bundle")
        shutil.move(os.path.join(unzipped, "eval_bundle"), target)


def evaluate_core(model, tokenizer, device, max_per_task=-1):
    bundle = os.path.join(get_base_dir(), "eval_bundle")
    if not os.path.exists(bundle):
        download_file_with_lock(
            EVAL_BUNDLE_URL, "eval_bundle.zip", postprocess_fn=place_eval_bundle
        )
    with open(os.path.join(bundle, "core.yaml"), encoding="utf-8") as f:
        tasks = yaml.safe_load(f)["icl_tasks"]
    with open(os.path.join(bundle, "eval_meta_data.csv"), encoding="utf-8") as f:
        baselines = {row["Eval Task"]: float(row["Random baseline"]) for row in csv.DictReader(f)}
    centered = {}
    for task in tasks:
        meta = {
            "task_type": task["icl_task_type"],
            "dataset_uri": task["dataset_uri"],
            "num_fewshot": task["num_fewshot"][0],
            "continuation_delimiter": task.get("continuation_delimiter", " "),
        }
        with open(os.path.join(bundle, "eval_data", meta["dataset_uri"]), encoding="utf-8") as f:
            data = [json.loads(line.strip()) for line in f]
        random.Random(1337).shuffle(data)
        if max_per_task > 0:
            data = data[:max_per_task]
        accuracy = evaluate_task(model, tokenizer, data, device, meta)
        baseline = 0.01 * baselines[task["label"]]
        centered[task["label"]] = (accuracy - baseline) / (1.0 - baseline)
    return centered
"""
# base_eval's CORE evaluation with sockets refused and evaluate_task recording what it is given
CORE_OFFLINE = """
import json, socket
def refuse(*args, **kwargs):
    raise OSError("network access attempted")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
import scripts.base_eval as base_eval
calls = []
def record(model, tokenizer, data, device, task_meta):
    calls.append([task_meta, data])
    return 0.5
base_eval.evaluate_task = record
print(json.dumps({"calls": calls, "centered": base_eval.evaluate_core(None, None, "cpu")}))
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
    (root / "scripts" / "base_eval.py").write_text(BASE_EVAL)
    (root / "nanochat" / "common.py").write_text(NANOCHAT_COMMON)
    (root / "nanochat" / "core_eval.py").write_text(NANOCHAT_CORE_EVAL)
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


def run_base_eval(python, root, db, base_dir):
    return run(
        python,
        "-c",
        CORE_OFFLINE,
        cwd=root,
        check=False,
        env={"NANOTASKS_DB": str(db), "HOME": str(root), "NANOCHAT_BASE_DIR": str(base_dir)},
    )


def check_switch(python, command, root, db):
    before = run_script(python, root, db)
    assert before.returncode == 1 and "nanochat's own SmolTalk: it would download" in before.stderr
    downloading = run_base_eval(python, root, db, root / "base-before")
    assert downloading.returncode == 1 and "network access attempted" in downloading.stderr
    with zipfile.ZipFile(SAMPLE / "karpathy-public" / "eval_bundle.zip") as bundle:
        bundle.extractall(root / "base-unzipped")  # as base_eval leaves a downloaded bundle
    unzipped = run_base_eval(python, root, db, root / "base-unzipped")
    assert unzipped.returncode == 0, unzipped.stderr
    switched = run(*command, "switch-nanochat", root).stdout
    assert switched.count("switched  tasks/") == 8 and "untouched tasks/lmarena.py" in switched
    assert "switched  scripts/base_eval.py (its CORE eval bundle comes from" in switched
    assert f"Undo: cd {root} && git checkout tasks/ scripts/base_eval.py" in switched
    changed = run("git", "-C", root, "status", "--porcelain").stdout.split("\n")
    assert sorted(line.split()[-1] for line in changed if line and "base-" not in line) == sorted(
        [*(f"tasks/{m}.py" for m in CHECKOUT_MODULES if m != "lmarena"), "scripts/base_eval.py"]
    )
    again = run(*command, "switch-nanochat", root).stdout
    assert again.count("already   tasks/") == 8 and "switched" not in again
    after = run_script(python, root, db)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == expected_sft_output()
    offline = run_base_eval(python, root, db, root / "base-after")
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout) == json.loads(unzipped.stdout)
    placed, downloaded = root / "base-after" / "eval_bundle", root / "base-unzipped" / "eval_bundle"
    files = sorted(p.relative_to(downloaded) for p in downloaded.rglob("*") if p.is_file())
    assert sorted(p.relative_to(placed) for p in placed.rglob("*") if p.is_file()) == files
    assert all((placed / f).read_bytes() == (downloaded / f).read_bytes() for f in files)
    run("git", "-C", root, "checkout", "tasks/", "scripts/base_eval.py")
    assert run_script(python, root, db).returncode == 1
    assert run_base_eval(python, root, db, root / "base-undone").returncode == 1


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


def test_a_base_eval_that_downloads_otherwise_is_left_alone(checkout):
    script = checkout / "scripts" / "base_eval.py"
    script.write_text(BASE_EVAL.replace("download_file_with_lock", "fetch_bundle"))
    result = run_nanotasks("switch-nanochat", checkout)
    assert (
        "untouched scripts/base_eval.py (it imports no download_file_with_lock to take the place "
        "of)" in result.stdout
    )
    assert result.stdout.endswith(f"Undo: cd {checkout} && git checkout tasks/\n")
    assert script.read_text() == BASE_EVAL.replace("download_file_with_lock", "fetch_bundle")
