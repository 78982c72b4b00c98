"""Installing nanotasks: one top-level name, packages called store/tasks/compiler beside it,
the library API, and the switch of a nanochat checkout. Real wheels, real venvs, real
subprocesses; nothing downloaded (the fresh venvs borrow this environment's dependencies)."""

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import nanotasks
from conftest import REPO, SAMPLE, built_once, nanotasks as run_nanotasks
from nanotasks.compiler.build import BadRequest
from nanotasks.tasks import UnknownName

GENERIC = ("compiler", "store", "tasks")


def run(*command, cwd=None, check=True, env=None):
    result = subprocess.run([*map(str, command)], capture_output=True, text=True, cwd=cwd, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    """nanotasks built as a wheel from a copy of this tree, as `pip install .` builds it. A
    copy, because a build in place leaves build/ and nanotasks.egg-info/ in the repository,
    whose metadata would then shadow the installed entry points for tests run from there."""
    def build(out):
        tree = out / "tree"
        shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns(
            ".git", ".venv*", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "*.db"))
        result = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, tree)
        assert "warning" not in result.stderr.lower(), result.stderr
    return next(built_once(tmp_path_factory, "wheel", build).glob("nanotasks-*.whl"))


def other_wheel(directory, name):
    """A tiny wheel of a package called `name`, like the unrelated ones of that name on PyPI."""
    path = directory / f"{name}-1.0-py3-none-any.whl"
    info = f"{name}-1.0.dist-info"
    files = {f"{name}/__init__.py": f"WHO = 'the other {name}'\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{f},,\n" for f in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for name_in_zip, text in files.items():
            archive.writestr(name_in_zip, text)
    return path


def fresh_venv(directory, *wheels):
    """A new virtual environment with `wheels` installed; nanotasks' dependencies come from this
    environment's site-packages through a .pth line, after the venv's own packages."""
    run(sys.executable, "-m", "venv", "--without-pip", directory)
    python = directory / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip(python, "install", "--no-index", "--no-deps", *wheels)
    return python, site


def pip(python, *args):
    return run(sys.executable, "-m", "pip", "--python", python, *args)


def test_the_wheel_holds_only_nanotasks(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"nanotasks", wheel.name.split("-py3")[0] + ".dist-info"}
    for package in GENERIC:
        assert f"nanotasks/{package}/__init__.py" in names
    assert not [name for name in names if name.startswith(("nanotasks/tests", "nanotasks/data", "nanotasks/benchmarks"))]


def test_the_wheel_carries_the_browse_pages(wheel):
    """`nanotasks browse` serves its templates and CSS from the installed package."""
    names = zipfile.ZipFile(wheel).namelist()
    pages = REPO / "store" / "browse"
    files = [*pages.glob("templates/*.html"), *pages.glob("static/*.css")]
    assert len(files) > 5 and [f for f in files if f"nanotasks/store/browse/{f.relative_to(pages)}" not in names] == []


def test_editable_install_puts_no_generic_name_on_the_path(tmp_path):
    for package in GENERIC:  # from outside the repository, as a user's script runs
        result = run(sys.executable, "-c", f"import {package}", cwd=tmp_path, check=False)
        assert f"No module named '{package}'" in result.stderr
    assert run(sys.executable, "-c", "import nanotasks; print(nanotasks.__file__)",
               cwd=tmp_path).stdout.strip() == str(REPO / "__init__.py")


def test_packages_named_store_tasks_compiler_beside_it(wheel, tmp_path, sample_db):
    others = [other_wheel(tmp_path, name) for name in GENERIC]
    python, site = fresh_venv(tmp_path / "venv", wheel, *others)
    command = tmp_path / "venv" / "bin" / "nanotasks"
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "tasks.py").write_text("raise SystemExit('the tasks.py of the working directory')\n")

    def every_command_works():
        db = tmp_path / "demo.db"
        db.unlink(missing_ok=True)
        run(command, "compile", "--mirror", SAMPLE, "--db", db, cwd=tmp_path / "work")
        assert "gsm8k" in run(command, "info", "--db", db, cwd=tmp_path / "work").stdout
        assert "[assistant]" in run(python, "-m", "nanotasks", "show", "gsm8k", "test", "3", "--subset", "main",
                                    "--db", db, cwd=tmp_path / "work").stdout
        assert "whole" in run(command, "verify", "--db", db, cwd=tmp_path / "work").stdout
        assert "12" in run(command, "sql", "--db", db, "SELECT count(*) FROM examples WHERE task = 'mmlu' "
                           "AND split = 'test'", cwd=tmp_path / "work").stdout
        assert len(run(command, "export", "--db", db, "arc", "test", "--subset", "ARC-Easy",
                       cwd=tmp_path / "work").stdout.splitlines()) == 6
        assert "gsm8k main/test" in run(command, "overlap", "--db", db, cwd=tmp_path / "work").stdout
        code = "import nanotasks, store, tasks, compiler; print(nanotasks.__file__, store.WHO)"
        return run(python, "-c", code, cwd=tmp_path / "work", check=False)

    found = every_command_works()
    assert found.returncode == 1 and "the tasks.py of the working directory" in found.stderr
    assert "the other store" in run(python, "-c", "import store; print(store.WHO)", cwd=tmp_path).stdout
    assert run(python, "-c", "import nanotasks; print(nanotasks.__file__)", cwd=tmp_path).stdout.startswith(str(site))
    pip(python, "uninstall", "--yes", *GENERIC)
    every_command_works()
    for package in GENERIC:
        assert (site / "nanotasks" / package / "__init__.py").is_file()
        assert not (site / package).exists()


# --- the library API raises what the CLI reports -----------------------------------------------

@pytest.mark.parametrize("arguments, library_call, error", [
    (["--only", "bogus"], dict(only=["bogus"]), UnknownName),
    (["--only", "gsm8k", "--revision", "openai/gsm8kk=abc"], dict(only=["gsm8k"], revisions={"openai/gsm8kk": "abc"}),
     BadRequest),
    (["--revision", "openai/gsm8k=abc", "--mirror", SAMPLE], dict(revisions={"openai/gsm8k": "abc"}, mirror=SAMPLE),
     BadRequest),
])
def test_compile_mistakes_are_the_same_in_python_and_the_cli(arguments, library_call, error, tmp_path):
    with pytest.raises(error) as raised:
        nanotasks.compile(tmp_path / "x.db", **library_call)
    result = run_nanotasks("compile", *arguments, "--db", tmp_path / "x.db", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"Error: {raised.value}"
    assert not list(tmp_path.iterdir())


def test_library_reads_exports_and_verifies(sample_db, tmp_path):
    store = nanotasks.open(sample_db)
    rows = nanotasks.find_split(store, "gsm8k", "test", subset="main")
    assert nanotasks.find_split(store, "MMLU", "train", "auxiliary_train") == store.split("mmlu", "all", "auxiliary_train")
    with pytest.raises(UnknownName, match="subsets main, socratic"):
        nanotasks.find_split(store, "gsm8k", "test")
    nanotasks.export(sample_db, "gsm8k", "test", tmp_path / "out.jsonl", subset="main")
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [store.read(rows, i) for i in range(rows.rows)]
    assert lines == run_nanotasks("export", "gsm8k", "test", "--subset", "main", "--db", sample_db).stdout.splitlines()
    assert all(check.ok for check in nanotasks.verify(sample_db))


# --- nanotasks switch-nanochat --------------------------------------------------------------------

STAND_IN = """class {cls}:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("nanochat's own {cls}: it would download from the hub")
"""
CHECKOUT_MODULES = {
    "common": ["Task", "TaskMixture", "TaskSequence"], "arc": ["ARC"], "mmlu": ["MMLU"], "gsm8k": ["GSM8K"],
    "humaneval": ["HumanEval"], "smoltalk": ["SmolTalk"], "spellingbee": ["SpellingBee", "SimpleSpelling"],
    "customjson": ["CustomJSON"], "lmarena": ["LMArena"]}

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
    exec(SFT_SCRIPT.replace("from tasks.", "from nanotasks.tasks.").replace("print(", "result = ("), namespace)
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
        (root / "tasks" / f"{module}.py").write_text("\n".join(STAND_IN.format(cls=c) for c in classes))
    (root / "scripts" / "chat_sft.py").write_text(SFT_SCRIPT)
    (root / ".gitignore").write_text("__pycache__/\n")
    run("git", "init", "-q", root)
    run("git", "-C", root, "add", ".")
    run("git", "-C", root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "checkout")
    return root


def run_script(python, root, db):
    return run(python, "-c", OFFLINE, cwd=root, check=False, env={"NANOTASKS_DB": str(db), "HOME": str(root)})


def check_switch(python, command, root, db):
    before = run_script(python, root, db)
    assert before.returncode == 1 and "nanochat's own SmolTalk: it would download" in before.stderr
    switched = run(*command, "switch-nanochat", root).stdout
    assert switched.count("switched  tasks/") == 8 and "untouched tasks/lmarena.py" in switched
    assert f"Undo: cd {root} && git checkout tasks/" in switched
    changed = run("git", "-C", root, "status", "--porcelain").stdout.split("\n")
    assert sorted(line.split()[-1] for line in changed if line) == sorted(
        f"tasks/{m}.py" for m in CHECKOUT_MODULES if m != "lmarena")
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
    assert result.stderr == (f"Error: {tmp_path} does not look like a nanochat checkout: it has no nanochat, "
                             f"tasks/common.py. Give the directory that holds nanochat/ and tasks/.\n")
    assert (tmp_path / "tasks" / "arc.py").read_text() == "mine\n"
