"""Shared fixtures: the sample snapshot compiled once per session, and the real data beside
the repo in ../shared/hub when it is there."""

import contextlib
import fcntl
import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nanotasks.cli import cli

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
# A git worktree elsewhere can point at the real data with NANOTASKS_SHARED_HUB.
SHARED_HUB = Path(os.environ.get("NANOTASKS_SHARED_HUB", REPO.parent / "shared" / "hub"))
NANOTASKS = [sys.executable, "-m", "nanotasks"]

# The commands the tests start take Ctrl-C as from a terminal, even when the suite runs as a
# background job, which starts with SIGINT ignored (a command keeps a signal it was started
# ignoring): a Python handler here is reset to the default in every program the tests exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def nanotasks(*args, check=True, **kwargs):
    """Run the real CLI in a subprocess; returns the CompletedProcess."""
    result = subprocess.run([*NANOTASKS, *map(str, args)], capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(
            f"nanotasks {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


EACH_COMMAND = """
import contextlib, io, json, sys
from nanotasks.cli import main
results = []
for command in json.loads(sys.argv[1]):
    sys.argv, out, err, status = ["nanotasks", *command], io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exit:
            status = exit.code or 0
    results.append([status, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def nanotasks_each(*commands, timeout=60):
    """Run each command through the real entry point (main, as `nanotasks` does), one after
    another in one subprocess: one interpreter start-up for all, and a hang still fails at the
    timeout. Returns a CompletedProcess per command; anything main lets through is a traceback
    that fails here."""
    process = subprocess.run(
        [sys.executable, "-c", EACH_COMMAND, json.dumps([list(map(str, c)) for c in commands])],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert process.returncode == 0 and process.stderr == "", process.stderr
    return [
        subprocess.CompletedProcess(c, *result)
        for c, result in zip(commands, json.loads(process.stdout), strict=True)
    ]


def invoke(*args, env=None, check=False):
    """Run the CLI in this process with click's CliRunner: the same commands without a new
    interpreter importing pyarrow (a compile in a subprocess costs ~0.9 s of CPU, most of it
    imports). Returns a CompletedProcess like nanotasks(...). What needs a process of its own
    stays with nanotasks(...): signals, timeouts, the hub's environment variables (read when
    huggingface_hub is imported), a terminal. Mostly used for errors, so a failure is
    returned, not raised, unless `check`."""
    result = CliRunner().invoke(cli, list(map(str, args)), env=env, prog_name="nanotasks")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback the user would have seen
    if check and result.exit_code != 0:
        raise AssertionError(
            f"nanotasks {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
        )
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def require_plugin(group, name, module):
    """A plugin is found through the entry points of nanotasks' installed metadata: an
    environment where nanotasks was installed from an older tree does not have them."""
    modules = [e.value for e in importlib.metadata.entry_points(group=group) if e.name == name]
    assert modules == [module], (
        f"nanotasks' {group} entry point {name} is not installed here; reinstall: pip install -e ."
    )


# The tests that compile the real data in ../shared/hub (minutes of CPU in all) or build a
# wheel and install it into fresh venvs are marked `slow`: the default run leaves them out,
# `python -m pytest -q -n auto -m slow` runs them, and .ci/run runs both.
SLOW_FIXTURES = {"real_db", "shared_hub", "wheel"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


def built_once(tmp_path_factory, name, build):
    """A directory that `build(directory)` fills once per test run, also when pytest-xdist runs
    the tests in several workers: the first to ask builds it under a lock and the others wait
    for it, instead of each compiling the same file again (seconds each, minutes for the real
    data). Built aside and renamed, so a failed build leaves nothing half-made to reuse."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's directory, shared by its workers
    directory = root / "built-once" / name
    directory.parent.mkdir(exist_ok=True)
    with open(directory.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not directory.is_dir():
            building = directory.parent / f"{name}.building"
            shutil.rmtree(building, ignore_errors=True)
            building.mkdir()
            build(building)
            building.rename(directory)
    return directory


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory):
    """data/sample compiled with the real CLI; read-only for the tests that use it. What the
    compile printed is kept beside it, in compile.out (tests/test_docs.py shows it)."""

    def build(directory):
        compiled = nanotasks("compile", "--mirror", SAMPLE, "--db", "sample.db", cwd=directory)
        (directory / "compile.out").write_text(compiled.stdout + compiled.stderr)

    return built_once(tmp_path_factory, "sample", build) / "sample.db"


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory):
    """The demo file of docs/sql.md: the sample plus data/mychats.jsonl, which holds two GSM8K
    test questions; what the compile printed beside it, in compile.out."""

    def build(directory):
        compiled = nanotasks(
            "compile",
            "--mirror",
            SAMPLE,
            "--custom",
            f"mychats={REPO / 'data' / 'mychats.jsonl'}",
            "--db",
            "demo.db",
            cwd=directory,
        )
        (directory / "compile.out").write_text(compiled.stdout + compiled.stderr)

    return built_once(tmp_path_factory, "demo", build) / "demo.db"


@pytest.fixture
def copy(sample_db, tmp_path):
    """A writable copy of the sample file."""
    path = tmp_path / "copy.db"
    shutil.copyfile(sample_db, path)
    return path


@pytest.fixture
def previous(sample_db, tmp_path):
    """A compiled file in a directory of its own, and its bytes as they were."""
    db = tmp_path / "out" / "tasks.db"
    db.parent.mkdir()
    shutil.copyfile(sample_db, db)
    return db, db.read_bytes()


@pytest.fixture(scope="session")
def shared_hub():
    if not SHARED_HUB.is_dir():
        pytest.skip(f"real data not present at {SHARED_HUB}")
    return SHARED_HUB


@pytest.fixture(scope="session")
def real_db(shared_hub, tmp_path_factory):
    """../shared/hub compiled (it lacks some sources, so compile exits 1 and names them)."""

    def build(directory):
        result = nanotasks(
            "compile", "--mirror", shared_hub, "--db", directory / "real.db", check=False
        )
        assert result.returncode == 1, result.stderr

    return built_once(tmp_path_factory, "real", build) / "real.db"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    """nanotasks built as a wheel from a copy of this tree, as `pip install .` builds it. A
    copy, because a build in place leaves build/ and nanotasks.egg-info/ in the repository,
    whose metadata would then shadow the installed entry points for tests run from there."""

    def build(out):
        tree = out / "tree"
        shutil.copytree(
            REPO,
            tree,
            ignore=shutil.ignore_patterns(
                ".git",
                ".venv*",
                "build",
                "*.egg-info",
                "__pycache__",
                ".pytest_cache",
                ".hypothesis",
                ".mypy_cache",
                ".ruff_cache",
                ".typecheck",  # a link to the tree itself, for mypy (pyproject.toml)
                "*.db",
            ),
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(out),
                str(tree),
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0 and "warning" not in result.stderr.lower(), result.stderr

    return next(built_once(tmp_path_factory, "wheel", build).glob("nanotasks-*.whl"))


@contextlib.contextmanager
def small_tmpfs(directory, size):
    """A tmpfs of `size` (e.g. "64k") mounted at a new `directory`, for running out of disk
    for real: needs root (mount), so the test is skipped elsewhere."""
    directory.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", directory],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "--lazy", directory], check=True)
