"""The execution sandbox, each test a real sandboxed run."""

import ctypes
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nanotasks.tasks.execution import OUTPUT_TAIL_BYTES, execute, execute_many
from nanotasks.tasks.humaneval import HumanEval, normalise, problem_test, program_for

REPO = Path(__file__).resolve().parents[1]
HUMANEVAL = Path("openai") / "openai_humaneval" / "openai_humaneval" / "test-00000-of-00001.parquet"
# A wrong solution and its tests: only a trick can make this pass.
WRONG = "def add(a, b):\n    return a - b\n"
TESTS = "\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n\ncheck(add)\n"


def humaneval_rows():
    """The sample's HumanEval rows. All 164 of the real ones pass from the compiled file in
    tests/test_humaneval.py, where ../shared/hub is present."""
    pq = pytest.importorskip("pyarrow.parquet")
    return pq.read_table(REPO / "data" / "sample" / HUMANEVAL).to_pylist()


def test_canonical_humaneval_solutions_all_pass():
    # As HumanEval.evaluate runs them: the solution in the sandbox, the test in its checker.
    rows = humaneval_rows()
    conversations = [normalise(row, None).conversation for row in rows]
    results = execute_many(
        [
            program_for(conversation, conversation["messages"][1]["content"])
            for conversation in conversations
        ],
        tests=[problem_test(conversation) for conversation in conversations],
    )
    failures = [
        (row["task_id"], result.reason)
        for row, result in zip(rows, results, strict=True)
        if not result.passed
    ]
    assert failures == []


def test_wrong_solution_fails():
    result = execute(WRONG + TESTS)
    assert not result.passed and result.reason.startswith("AssertionError")


def test_right_solution_passes_and_output_is_captured():
    result = execute(
        "import sys\nprint('out'); print('err', file=sys.stderr)\n"
        + WRONG.replace("-", "+")
        + TESTS
    )
    assert result.passed and result.reason == "passed"
    assert (result.stdout, result.stderr) == ("out\n", "err\n")


def test_batch_preserves_order():
    results = execute_many([f"assert {i} % 2 == 0" for i in range(6)], workers=3)
    assert [result.passed for result in results] == [True, False, True, False, True, False]


def test_syntax_error_fails_with_the_reason():
    result = execute("def add(a, b)\n    return a + b\n")
    assert not result.passed and result.reason.startswith("SyntaxError")


def test_infinite_loop_times_out_and_leaves_no_process():
    name = "loop" + secrets.token_hex(4)
    result = execute(
        f"import ctypes\nctypes.CDLL(None).prctl(15, b'{name}', 0, 0, 0)\nwhile True:\n    pass\n",
        timeout=1,
    )
    assert (result.passed, result.timed_out, result.reason) == (False, True, "timed out after 1 s")
    assert processes_named(name) == []


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
        if (
            stat[stat.index("(") + 1 : stat.rindex(")")] == name
            and stat[stat.rindex(")") + 2] != "Z"
        ):
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
    result = execute(bomb, timeout=1)
    assert (result.passed, result.timed_out, result.reason) == (False, True, "timed out after 1 s")
    assert processes_named(name) == []


def test_files_outside_the_working_directory_are_untouched(tmp_path):
    victim, intruder = tmp_path / "victim.txt", tmp_path / "intruder.txt"
    victim.write_text("precious")
    tmp_path.chmod(0o777)  # even a world-writable directory
    program = f"""
import os
for attempt in (
    lambda: os.remove({str(victim)!r}),
    lambda: open({str(victim)!r}, "w").write("gone"),
    lambda: open({str(intruder)!r}, "w").write("hi"),
    lambda: open("/etc/nanotasks-intruder", "w"),
):
    try:
        attempt()
    except OSError:
        pass
open("allowed.txt", "w").write("the working directory is writable")
"""
    assert execute(program).passed
    assert (
        victim.read_text() == "precious"
        and not intruder.exists()
        and not Path("/etc/nanotasks-intruder").exists()
    )


@pytest.fixture
def listener():
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


def test_localhost_is_unreachable_when_isolated(listener):
    result = execute(
        f"import socket\nsocket.create_connection(('127.0.0.1', {listener}), timeout=1)\n",
        timeout=2,
    )
    if not result.network_isolated:
        pytest.skip("no network namespace on this machine")
    assert not result.passed and "unreachable" in result.reason


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv"
)
def test_without_namespaces_isolation_is_reported_off_and_root_is_still_dropped(listener):
    # Without CAP_SYS_ADMIN, root cannot unshare: the network is open, and the result says so.
    program = (
        "import os, socket\nassert os.getuid() != 0\n"
        f"socket.create_connection(('127.0.0.1', {listener}), timeout=1)\n"
    )
    harness = (
        "from nanotasks.tasks.execution import execute\n"
        f"r = execute({program!r}, timeout=2)\nprint(r.network_isolated, r.passed, r.reason)"
    )
    output = subprocess.run(
        [
            "setpriv",
            "--bounding-set",
            "-sys_admin",
            "--inh-caps",
            "-sys_admin",
            sys.executable,
            "-c",
            harness,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert output.split()[:2] == ["False", "True"], output


def test_gigabytes_of_output_are_capped():
    program = (
        "import os\nblock = b'x' * (1 << 20)\n"
        "for _ in range(2048):\n    os.write(1, block)\nprint('end')\n"
    )
    result = execute(program, timeout=60)
    assert (
        result.passed
        and len(result.stdout) <= OUTPUT_TAIL_BYTES
        and result.stdout.endswith("xend\n")
    )


@pytest.mark.parametrize(
    "trick",
    [
        "import sys\nsys.exit(0)",
        "import os\nos._exit(0)",
        "raise SystemExit",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "import os, sys\nsys.stdout.close()\nos.close(1)\nos.close(2)",
        "import threading, os\nthreading.Thread(target=os._exit, args=(0,)).start()\n"
        "import time\ntime.sleep(1)",
        "print('passed')\nprint('ExecutionResult(passed=True)')\nimport os\nos._exit(0)",
        "import os\nfor fd in range(3, 64):\n    try:\n"
        "        os.write(fd, b'0' * 32 + b'passed')\n"
        "    except OSError:\n        pass\nos._exit(0)",
    ],
)
def test_early_exit_tricks_fail(trick):
    result = execute(WRONG + trick + TESTS, timeout=2)
    assert not result.passed and not result.timed_out, result


def test_benchmark_output_is_well_formed():
    humaneval_rows()
    output = subprocess.run(
        [sys.executable, "benchmarks/humaneval_execution.py", "--count", "3", "--workers", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert re.fullmatch(
        rf"3 canonical solutions from {re.escape(str(REPO / 'data' / 'sample'))}\n"
        r"network isolation: (True|False)\n"
        r"serial: [\d.]+ evaluations/s \(3 programs, 3 passed, [\d.]+ s, [\d.]+ ms CPU each\)\n"
        r"batched \(2 workers\): [\d.]+ evaluations/s "
        r"\(3 programs, 3 passed, [\d.]+ s, [\d.]+ ms CPU each\)\n",
        output,
    ), output


# A HumanEval-shaped problem. Its test ends, like many of HumanEval's, on a line that always holds.
ADD_PROBLEM = {
    "messages": [{"role": "user", "content": 'def add(a, b):\n    """The sum of a and b."""\n'}],
    "entry_point": "add",
    "test": "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n"
    "    assert candidate(1, 1) == 2\n    assert True\n",
}
# Each of these made HumanEval.evaluate pass a wrong answer when the test ran in the program's
# own interpreter and the verdict was a nonce written from there.
FORGERIES = {
    "caller's frame": r"""
import os, sys
frame = sys._getframe(1)
while frame:
    found = frame.f_locals
    if "nonce" in found and "verdict_fd" in found:
        os.write(found["verdict_fd"], found["nonce"].encode())
        os._exit(0)
    frame = frame.f_back
""",
    "/proc/self/mem": r"""
import ctypes, os, re, sys
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
    for line in maps:
        span, permissions = line.split()[:2]
        start, end = (int(part, 16) for part in span.split("-"))
        if permissions.startswith("rw"):
            try:
                mem.seek(start)
                found = re.search(rb"([0-9a-f]{32})\n*# forgery", mem.read(end - start))
            except (OSError, OverflowError, ValueError):
                continue
            if found:
                os.write(int(sys.argv[2]), found.group(1))
                os._exit(0)
""",
    "sys.stdout's flush": r"""
import os, sys
class Leaky:
    def __init__(self, stream):
        self.stream = stream
    def write(self, text):
        return self.stream.write(text)
    def flush(self):
        found = sys._getframe(1).f_locals
        if "nonce" in found:
            os.write(found["verdict_fd"], found["nonce"].encode())
            os._exit(0)
        self.stream.flush()
sys.stdout = Leaky(sys.stdout)
""",
    "sys.settrace": r"""
import sys
def jump_to_the_end(frame, event, arg):
    if event == "line" and frame.f_lineno != frame.f_code.co_firstlineno + 3:
        frame.f_lineno = frame.f_code.co_firstlineno + 3
    return jump_to_the_end
sys.settrace(lambda frame, event, arg: jump_to_the_end if frame.f_code.co_name == "check" else None)
""",
    "an answer equal to anything": """
class Anything:
    def __eq__(self, other):
        return True
def add(a, b):
    return Anything()
""",
}


@pytest.fixture(scope="module")
def humaneval(sample_db):
    return HumanEval(db=sample_db)


def test_right_answer_passes_through_humaneval_evaluate(humaneval):
    assert humaneval.evaluate(ADD_PROBLEM, "```python\ndef add(a, b):\n    return a + b\n```")


@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_verdicts_fail(humaneval, forgery):
    assert not humaneval.evaluate(ADD_PROBLEM, f"# forgery\n{WRONG}{forgery}")


def test_the_test_sees_plain_data_of_the_same_types():
    values = "[(1, 2.5), {3: 'x', (4,): None}, {True}, -0.0, float('inf'), '\\ud800']"
    program = f"def values():\n    return {values}\n"
    test = (
        f"got = program.values()\nassert got == {values}\n"
        "assert [type(value) for value in got] == [tuple, dict, set, float, float, str]\n"
        "assert program.values() is not got\n"
    )
    result = execute(program, test=test)
    assert result.passed, result.reason


@pytest.mark.parametrize(
    "program, reason",
    [
        ("def add(a, b):\n    return a / 0\n", "ZeroDivisionError: division by zero"),
        ("def add(a, b):\n    return object()\n", "TypeError: object is not plain data"),
        ("import os\ndef add(a, b):\n    os._exit(0)\n", "the program ended before answering"),
        ("def add(a, b)\n", "SyntaxError"),
    ],
)
def test_a_failing_program_gives_its_reason(program, reason):
    result = execute(program, test=problem_test(ADD_PROBLEM))
    assert not result.passed and result.reason.startswith(reason), result.reason


def test_a_lone_surrogate_fails_and_leaves_nothing():
    # In a process of its own, so that no other test's objects open or close files meanwhile.
    harness = """
import os
from pathlib import Path
from nanotasks.tasks.execution import execute
fds = sorted(os.listdir("/proc/self/fd"))
children = Path(f"/proc/self/task/{os.getpid()}/children")
result = execute("print('\\ud800')")
assert not result.passed and not result.timed_out, result
assert "surrogates not allowed" in result.reason, result
assert sorted(os.listdir("/proc/self/fd")) == fds, fds
assert children.read_text() == "", children.read_text()
"""
    subprocess.run(
        [sys.executable, "-c", harness],
        cwd=REPO.parent,
        env={**os.environ, "PYTHONPATH": str(REPO.parent)},
        check=True,
        timeout=30,
    )


def test_ipc_objects_are_not_shared_and_die_with_the_sandbox(tmp_path):
    libc = ctypes.CDLL(None, use_errno=True)
    key, queue = (
        int.from_bytes(secrets.token_bytes(3), "big") + 1,
        f"/nanotasks-{secrets.token_hex(4)}".encode(),
    )
    host_shared_memory = Path("/dev/shm") / f"nanotasks-{secrets.token_hex(4)}"
    program = f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
assert libc.shmget({key}, 1 << 20, 0o1666) >= 0  # IPC_CREAT | 0666
assert libc.mq_open({queue!r}, 0o100 | 0o2, 0o666, None) >= 0  # O_CREAT | O_RDWR
print(os.path.exists({str(host_shared_memory)!r}))
"""
    host_shared_memory.write_text("the host's")
    try:
        result = execute(program)
    finally:
        host_shared_memory.unlink()
    assert result.passed, result.reason
    if not result.network_isolated:
        pytest.skip("no IPC namespace on this machine")
    left = libc.shmget(key, 0, 0), libc.mq_open(queue, 0o2, 0, None)
    if left[0] >= 0:
        libc.shmctl(left[0], 0, None)  # IPC_RMID
    if left[1] >= 0:
        libc.mq_unlink(queue)
    assert left == (-1, -1) and result.stdout == "False\n"


@pytest.fixture
def host_socket():
    """A world-writable Unix socket in a world-writable directory, listening."""
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o777)
        path = os.path.join(directory, "socket")
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(path)
            os.chmod(path, 0o777)
            server.listen()
            yield path


def test_host_unix_sockets_cannot_be_reached(host_socket):
    for attempt in (
        f"socket.socket(socket.AF_UNIX).connect({host_socket!r})",
        f"socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)[0].sendto(b'hi', {host_socket!r})",
    ):
        result = execute(f"import socket\n{attempt}\n")
        assert not result.passed and result.reason.startswith("PermissionError"), result.reason
    assert execute(
        "import socket\na, b = socket.socketpair()\na.send(b'hi')\nassert b.recv(2) == b'hi'\n"
    ).passed


def test_the_host_processes_are_not_listed():
    # Listed when the test calls, so while the checker runs: the program starts before init
    # forks the checker, so a listing at its start may not have it yet.
    program = (
        "import os\ndef listing():\n    print(*(n for n in os.listdir('/proc') if n.isdigit()))\n"
    )
    result = execute(program, test="program.listing()")
    if not result.network_isolated:
        pytest.skip("no PID namespace on this machine")
    assert result.passed and sorted(map(int, result.stdout.split())) == [1, 2, 3], (
        result.stdout
    )  # init, the program, the checker


# When called, and so while the checker runs the test, prints what it could reach of every
# other process (memory, descriptors such as the verdict pipe, ptrace), then answers wrong.
REACH_THE_CHECKER = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def add(a, b):
    reached = []
    pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    for pid in [pid for pid in pids if pid != os.getpid()]:
        attempts = [
            (f"mem of {pid}", lambda: open(f"/proc/{pid}/mem", "rb").close()),
            (f"ptrace of {pid}", lambda: libc.ptrace(16, pid, None, None) == 0 or 0 / 0),  # ATTACH
        ]
        attempts += [
            (f"fd {fd} of {pid}", lambda: os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY))
            for fd in range(20)
        ]
        for what, attempt in attempts:
            try:
                attempt()
                reached.append(what)
            except (OSError, ZeroDivisionError):
                pass
    print(reached, flush=True)
    return a - b
"""


@pytest.mark.parametrize("harness", ["root", "user namespace"])
def test_the_checker_is_out_of_the_programs_reach(harness):
    # Without root the checker shares the program's uid: it is non-dumpable and the program has
    # no capabilities.
    code = (
        "from nanotasks.tasks.execution import execute\n"
        f"r = execute({REACH_THE_CHECKER!r}, test='assert program.add(2, 3) == 5')\n"
        "print(r.passed, r.network_isolated, r.stdout, end='')"
    )
    command = [sys.executable, "-c", code]
    if harness == "user namespace":
        if os.geteuid() != 0 or not shutil.which("unshare"):
            pytest.skip("needs root and unshare to make a non-root harness")
        command = ["unshare", "--user", "--map-user=1000", "--map-group=1000", *command]
    output = subprocess.run(
        command,
        cwd=REPO.parent,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO.parent)},
    )
    assert output.stdout.split("\n")[0].split(" ", 2) == ["False", "True", "[]"], output


# A completion that knows no answer: when called, it looks for the test's
# `candidate(<args>) == <expected>` lines in every string this process can reach (the frames
# of every thread up to their callers, every container the garbage collector tracks) and
# returns the expected value of the line whose arguments match the call's.
STEAL_THE_EXPECTED_VALUES = r"""
import gc, re, sys

def reachable_strings():
    found, frames = [], list(sys._current_frames().values())
    while frames:
        frame = frames.pop()
        found += [*frame.f_locals.values(), *frame.f_globals.values(), *frame.f_code.co_consts]
        frames += [frame.f_back] if frame.f_back else []
    for thing in gc.get_objects():
        if isinstance(thing, dict):
            found += [*thing.keys(), *thing.values()]
        elif isinstance(thing, (list, tuple, set, frozenset)):
            found += list(thing)
        elif hasattr(thing, "__code__"):
            found += list(thing.__code__.co_consts)
    return [text for text in found if isinstance(text, str) and "candidate(" in text]

def steal(args):
    for text in reachable_strings():
        for line in text.splitlines():
            match = re.search(r"candidate\((.*)\) (?:==|is) (.*?)(?:, '[^']*')?$", line)
            try:
                if match and eval(f"({match.group(1)},)") == args:
                    return eval(match.group(2))
            except Exception:
                pass
    raise LookupError("no expected value found")
"""


def test_a_completion_that_steals_the_expected_values_passes_nothing(humaneval):
    examples = list(humaneval)
    thief = [
        f"{STEAL_THE_EXPECTED_VALUES}\ndef {e['entry_point']}(*args):\n    return steal(args)\n"
        for e in examples
    ]
    assert [humaneval.evaluate(e, code) for e, code in zip(examples, thief, strict=True)] == [
        False
    ] * 5
    assert all(humaneval.evaluate(e, e["messages"][1]["content"]) for e in examples)


# Looks for a value of the test in every frame, every object the garbage collector tracks and
# every byte of its own memory, while the checker runs that test.
FIND_THE_SECRET = r"""
import ctypes, gc, re, sys
PATTERN = "nanotasks-secret-" + "[0-9a-f]{32}"

def in_memory():
    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE, to read /proc/self/mem
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as memory:
        for line in maps:
            span, permissions = line.split()[:2]
            start, end = (int(part, 16) for part in span.split("-"))
            for offset in range(start, end, 1 << 20) if permissions[0] == "r" else ():
                try:
                    memory.seek(offset)
                    chunk = memory.read(min(end - offset, (1 << 20) + 64))
                except (OSError, OverflowError, ValueError):
                    continue
                yield from (m.decode() for m in re.findall(PATTERN.encode(), chunk))

def in_objects():
    frames = list(sys._current_frames().values())
    while frames:
        frame = frames.pop()
        yield from map(repr, [frame.f_locals, frame.f_globals, frame.f_code.co_consts])
        frames += [frame.f_back] if frame.f_back else []
    yield from map(repr, gc.get_objects())

def secret():
    found = {m for text in in_objects() for m in re.findall(PATTERN, text)}
    found |= set(in_memory())
    print(sorted(found))
    return found.pop() if found else "nothing found"
"""


def test_the_program_finds_no_trace_of_the_test():
    value = "nanotasks-secret-" + secrets.token_hex(16)
    result = execute(FIND_THE_SECRET, test=f"assert program.secret() == {value!r}", timeout=20)
    assert (result.reason, result.stdout) == (
        "AssertionError: ",
        "[]\n",
    ), result


@pytest.fixture
def planted_secrets(sample_db):
    """plant(owner) puts secrets where a user keeps them and returns their paths: the Hugging
    Face token and an SSH key in a home directory (only the owner can read them), a
    world-readable note and a world-readable copy of a compiled .db elsewhere. Owned by the
    tests' user, or by owner."""

    def plant(owner=None):
        top = Path(tempfile.mkdtemp(prefix="nanotasks-secrets-"))
        top.chmod(0o755)
        home, elsewhere = top / "home", top / "elsewhere"
        files = {
            home / ".cache" / "huggingface" / "token": 0o600,
            home / ".ssh" / "id_ed25519": 0o600,
            elsewhere / "notes.txt": 0o644,
            elsewhere / "copy.db": 0o644,
        }
        for path, mode in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".db":
                shutil.copyfile(sample_db, path)
            else:
                path.write_text("secret " + secrets.token_hex(8))
            path.chmod(mode)
        for path in [home, *home.rglob("*"), elsewhere, *elsewhere.rglob("*")] * (
            owner is not None
        ):
            os.chown(path, owner, owner)
        home.chmod(0o700)
        cleanup.append(top)
        return [str(path) for path in files]

    cleanup = []
    yield plant
    for top in cleanup:
        shutil.rmtree(top)


# Prints what it could read of each of PATHS.
READ_THE_SECRETS = """
for path in PATHS:
    try:
        print(path, open(path, "rb").read(16))
    except OSError as error:
        assert error.errno == 2, error  # ENOENT: not even there
print("done")
"""


def test_the_program_sees_none_of_the_hosts_files(planted_secrets):
    paths = planted_secrets()
    result = execute(f"PATHS = {paths!r}\n{READ_THE_SECRETS}")
    if not result.network_isolated:
        pytest.skip("no mount namespace on this machine: the program sees the host's files")
    assert (result.passed, result.stdout) == (True, "done\n"), result


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def python_for_nobody():
    """An interpreter (>= 3.11) the user nobody can run, or None."""
    for python in (os.path.realpath(sys.executable), "/usr/bin/python3"):
        check = (
            "import os, sys; assert sys.version_info >= (3, 11) and os.access(sys.executable, 1)"
        )
        command = [*AS_NOBODY, python, "-c", check]
        if subprocess.run(command, capture_output=True).returncode == 0:
            return python
    return None


# Run by nobody: reads the secrets itself (they are its own, or world-readable), then has the
# sandbox try. tasks/execution.py is loaded by path: it needs only the standard library.
NOBODYS_HARNESS = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("execution", sys.argv[1])
execution = sys.modules["execution"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(execution)
paths = json.loads(sys.argv[2])
assert all(open(path, "rb").read(1) for path in paths)
result = execution.execute(f"PATHS = {paths!r}\\n" + sys.argv[3])
print(json.dumps([result.network_isolated, result.passed, result.reason, result.stdout]))
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to be nobody"
)
def test_under_a_non_root_user_the_program_cannot_read_the_users_secrets(planted_secrets):
    python = python_for_nobody()
    if python is None:
        pytest.skip("no Python 3.11+ that the user nobody can run")
    paths = planted_secrets(owner=65534)
    execution = str(REPO / "tasks" / "execution.py")
    output = subprocess.run(
        [*AS_NOBODY, python, "-c", NOBODYS_HARNESS, execution, json.dumps(paths), READ_THE_SECRETS],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert output.returncode == 0, output.stderr
    isolated, passed, reason, stdout = json.loads(output.stdout)
    if not isolated:
        pytest.skip("the kernel refuses unprivileged user namespaces: the program has nobody's")
    assert (passed, stdout) == (True, "done\n"), reason
