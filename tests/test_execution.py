"""The execution sandbox, each test a real sandboxed run."""

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nanotasks.tasks.execution import OUTPUT_TAIL_BYTES, execute, execute_many

REPO = Path(__file__).resolve().parents[1]
HUMANEVAL = Path("openai") / "openai_humaneval" / "openai_humaneval" / "test-00000-of-00001.parquet"
# A wrong solution and its tests: only a trick can make this pass.
WRONG = "def add(a, b):\n    return a - b\n"
TESTS = "\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n\ncheck(add)\n"


def humaneval_rows():
    pq = pytest.importorskip("pyarrow.parquet")
    for root in (REPO.parent / "shared" / "hub", REPO / "data" / "sample"):
        if (root / HUMANEVAL).exists():
            return pq.read_table(root / HUMANEVAL).to_pylist()
    pytest.skip("no HumanEval data in ../shared/hub or data/sample")


def test_canonical_humaneval_solutions_all_pass():
    rows = humaneval_rows()
    programs = [row["prompt"] + row["canonical_solution"] + "\n\n" + row["test"] + "\n" + f"check({row['entry_point']})" for row in rows]
    failures = [(row["task_id"], result.reason) for row, result in zip(rows, execute_many(programs)) if not result.passed]
    assert failures == []


def test_wrong_solution_fails():
    result = execute(WRONG + TESTS)
    assert not result.passed and result.reason.startswith("AssertionError")


def test_right_solution_passes_and_output_is_captured():
    result = execute("import sys\nprint('out'); print('err', file=sys.stderr)\n" + WRONG.replace("-", "+") + TESTS)
    assert result.passed and result.reason == "passed"
    assert (result.stdout, result.stderr) == ("out\n", "err\n")


def test_batch_preserves_order():
    results = execute_many([f"assert {i} % 2 == 0" for i in range(6)], workers=3)
    assert [result.passed for result in results] == [True, False, True, False, True, False]


def test_syntax_error_fails_with_the_reason():
    result = execute("def add(a, b)\n    return a + b\n")
    assert not result.passed and result.reason.startswith("SyntaxError")


def test_infinite_loop_times_out():
    started = time.monotonic()
    result = execute("while True:\n    pass\n", timeout=1)
    assert not result.passed and result.timed_out
    assert time.monotonic() - started < 1 + 1


def test_memory_hog_fails():
    result = execute("hog = bytearray(1 << 30)\n", memory_mb=256)
    assert not result.passed and result.memory_exceeded


def processes_named(name):
    """Live (not zombie) processes whose command name is name."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if stat[stat.index("(") + 1:stat.rindex(")")] == name and stat[stat.rindex(")") + 2] != "Z":
            found.append(entry.name)
    return found


def test_fork_bomb_fails_and_leaves_no_process():
    # Every process renames itself, so survivors can be found whatever namespace they are in;
    # some also leave the session, out of reach of a process-group kill.
    name = "bomb" + secrets.token_hex(4)
    bomb = f"""
import ctypes, os
ctypes.CDLL(None).prctl(15, b"{name}", 0, 0, 0)
while True:
    try:
        if os.fork() == 0:
            os.setsid()
    except OSError:
        pass
"""
    started = time.monotonic()
    result = execute(bomb, timeout=1)
    assert not result.passed and time.monotonic() - started < 1 + 1
    assert processes_named(name) == []


def test_files_outside_the_working_directory_are_untouched(tmp_path):
    victim, intruder = tmp_path / "victim.txt", tmp_path / "intruder.txt"
    victim.write_text("precious")
    tmp_path.chmod(0o777)  # even a world-writable directory
    program = f"""
import os
for attempt in (lambda: os.remove({str(victim)!r}), lambda: open({str(victim)!r}, "w").write("gone"),
                lambda: open({str(intruder)!r}, "w").write("hi"), lambda: open("/etc/nanotasks-intruder", "w")):
    try:
        attempt()
    except OSError:
        pass
open("allowed.txt", "w").write("the working directory is writable")
"""
    assert execute(program).passed
    assert victim.read_text() == "precious" and not intruder.exists() and not Path("/etc/nanotasks-intruder").exists()


@pytest.fixture
def listener():
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


def test_localhost_is_unreachable_when_isolated(listener):
    result = execute(f"import socket\nsocket.create_connection(('127.0.0.1', {listener}), timeout=1)\n", timeout=2)
    if not result.network_isolated:
        pytest.skip("no network namespace on this machine")
    assert not result.passed and "unreachable" in result.reason


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_without_namespaces_isolation_is_reported_off_and_root_is_still_dropped(listener):
    # Without CAP_SYS_ADMIN, root cannot unshare: the network is open, and the result says so.
    program = f"import os, socket\nassert os.getuid() != 0\nsocket.create_connection(('127.0.0.1', {listener}), timeout=1)\n"
    harness = f"from nanotasks.tasks.execution import execute\nr = execute({program!r}, timeout=2)\nprint(r.network_isolated, r.passed, r.reason)"
    output = subprocess.run(["setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", sys.executable, "-c", harness],
                            cwd=REPO, capture_output=True, text=True, timeout=30).stdout
    assert output.split()[:2] == ["False", "True"], output


def test_gigabytes_of_output_are_capped():
    program = "import os\nblock = b'x' * (1 << 20)\nfor _ in range(2048):\n    os.write(1, block)\nprint('end')\n"
    result = execute(program, timeout=60)
    assert result.passed and len(result.stdout) <= OUTPUT_TAIL_BYTES and result.stdout.endswith("xend\n")


@pytest.mark.parametrize("trick", [
    "import sys\nsys.exit(0)",
    "import os\nos._exit(0)",
    "raise SystemExit",
    "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "import os, sys\nsys.stdout.close()\nos.close(1)\nos.close(2)",
    "import threading, os\nthreading.Thread(target=os._exit, args=(0,)).start()\nimport time\ntime.sleep(1)",
    "print('passed')\nprint('ExecutionResult(passed=True)')\nimport os\nos._exit(0)",
    "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'0' * 32 + b'passed')\n    except OSError:\n        pass\nos._exit(0)",
])
def test_early_exit_tricks_fail(trick):
    result = execute(WRONG + trick + TESTS, timeout=2)
    assert not result.passed and not result.timed_out, result


def test_benchmark_output_is_well_formed():
    humaneval_rows()
    output = subprocess.run([sys.executable, "benchmarks/humaneval_execution.py", "--count", "3", "--workers", "2"],
                            cwd=REPO, capture_output=True, text=True, timeout=60, check=True).stdout
    assert re.fullmatch(rf"3 canonical solutions from {re.escape(str(REPO / 'data' / 'sample'))}\n"
                        r"network isolation: (True|False)\n"
                        r"serial: [\d.]+ evaluations/s \(3 programs, 3 passed, [\d.]+ s\)\n"
                        r"batched \(2 workers\): [\d.]+ evaluations/s \(3 programs, 3 passed, [\d.]+ s\)\n", output), output
