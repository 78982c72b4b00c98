"""
Run model-written Python in a sandbox it cannot escape, hang, or fool.

HumanEval-style evaluation executes code a language model wrote, thousands of times,
sometimes as an RL reward. A reward with holes gets learned, so the verdict is never
produced where the program runs:

- The program runs in one process; the test runs in another, the checker, which the program
  cannot trace, read or write (a different uid as root; without root, the same uid but no
  capabilities and a non-dumpable checker). The test reaches the program only through
  `program.f(*args)`: the call goes over a pipe, f runs in the program's process, and what
  comes back is parsed from JSON into plain data (None, bool, int, float, str and lists,
  tuples, sets and dicts of them), or an exception. So whatever the program does to its own
  interpreter (frames, tracing, /proc/self/mem, its own sys.stdout, objects whose __eq__ is
  always True) changes only values it returns; the test passes only if those values pass it.
  The verdict pipe is held by the checker and the sandbox's own trusted processes, never the
  program. The program's process is forked before the sandbox reads the test, so nothing in
  its frames, objects or memory holds the test or its expected values.
- Each sandbox is a fresh `python -I -S` (standard library only) in its own session running
  tasks/sandbox.py; the program and the checker each get limits on address space, CPU time,
  file size, open files and processes, /dev/null as stdin, a scrubbed environment, no
  capabilities, and a seccomp filter that refuses Unix sockets (so no socket file on the host
  can be connected to). As root, each runs as a uid of its own, so it cannot write system
  files and the process limit counts only its own processes.
- Where the kernel allows (Linux >= 5.12; as root, or as a user via a user namespace) the
  sandbox also gets its own network namespace (no network, not even 127.0.0.1), IPC namespace
  (System V and POSIX IPC objects die with it), PID namespace (when it ends, every process it
  started dies with it) and mount namespace whose root filesystem holds only the system's
  programs and libraries and Python's installation (read-only), /dev/null, zero, full, random
  and urandom, a /proc listing only its own processes, and a 64 MB tmpfs working directory
  (also HOME and TMPDIR), the only writable place: no home directory, no other user's files,
  no compiled .db. `ExecutionResult.network_isolated` says whether this happened. Without it,
  the guarantees above still hold except that the network is open, the program sees the
  host's files (as its own uid when root, else with its user's permissions) and can write
  world-writable places such as /tmp, and under a non-root harness a process that leaves the
  session can outlive the call.

The test is trusted code (the dataset's, from the compiled file) but it runs with the same
limits, namespaces and filter as the program, as its own unprivileged uid, so a crafted file's
test is confined like a program. Without a test, pass means the program ran to its end, as
the program's own process reports it: printing, exiting early, raising SystemExit, killing
itself or closing stdout all fail, but code written to target this harness can claim it.
"""

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

SANDBOX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox.py")
OUTPUT_TAIL_BYTES = 16 << 10
# The sandbox enforces the timeout itself; this is the harness's backstop beyond it.
GRACE_SECONDS = 0.5


@dataclass
class ExecutionResult:
    passed: bool  # the test ran to its end (without a test: the program ran to its end)
    reason: str  # "passed", the exception, or how it ended early
    timed_out: bool
    memory_exceeded: bool
    network_isolated: bool  # own network, IPC, PID and mount namespaces, its own root filesystem
    stdout: str  # the program's, the last OUTPUT_TAIL_BYTES of each
    stderr: str


def execute(
    program: str, timeout: float = 5.0, memory_mb: int = 256, test: str | None = None
) -> ExecutionResult:
    """Run program in a fresh sandbox, then test in the sandbox's checker, where `program.f(*args)`
    calls the program's f and returns a plain-data copy of its result. Passed only if the test
    (or without one, the program) runs to its end within timeout seconds in all."""
    with tempfile.TemporaryDirectory(prefix="nanotasks-exec-") as workdir:
        process, verdict = start_sandbox(workdir, program, test, timeout, memory_mb)
        started = time.monotonic()
        deadline = started + timeout + GRACE_SECONDS
        outputs = read_tails(
            {process.stdout: bytearray(), process.stderr: bytearray(), verdict: bytearray()},
            deadline,
        )
        if time.monotonic() < deadline:  # every pipe reached EOF: the sandbox is exiting
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        # Kill whatever is left of the session before reaping its leader, so the id cannot have
        # been reused.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        exit_code = process.wait()
        elapsed = time.monotonic() - started
    stdout, stderr = (
        outputs[pipe].decode(errors="replace") for pipe in (process.stdout, process.stderr)
    )
    isolated, verdict_json = outputs[verdict][:1] == b"1", outputs[verdict][1:]
    try:
        passed, reason = json.loads(verdict_json)  # written only by the checker
    except ValueError:  # none, or cut short by the timeout
        passed, reason = False, ""
    timed_out = not passed and elapsed >= timeout
    if timed_out:
        reason = f"timed out after {timeout:g} s"
    elif not reason:
        reason = f"the sandbox ended without a verdict ({describe_exit(exit_code)})"
    memory_exceeded = reason.startswith("MemoryError")
    return ExecutionResult(passed, reason, timed_out, memory_exceeded, isolated, stdout, stderr)


def start_sandbox(workdir, program, test, timeout, memory_mb):
    """Start tasks/sandbox.py in a session of its own and hand it the program on stdin and the
    test on a pipe of its own, which it reads only once the program's process is forked.
    Returns the process and the read end of the verdict pipe."""
    verdict_read, verdict_write = os.pipe()
    test_read, test_write = os.pipe()
    arguments = [workdir, verdict_write, test_read, timeout, memory_mb]
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", SANDBOX, *map(str, arguments)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(verdict_write, test_read),
            cwd=workdir,
            env={"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"},
            start_new_session=True,
        )
    except BaseException:
        for fd in (verdict_read, test_write):
            os.close(fd)
        raise
    finally:
        for fd in (verdict_write, test_read):
            os.close(fd)
    assert process.stdin is not None  # stdin=PIPE
    # ASCII JSON: even lone surrogates travel, to fail in compile()
    for pipe, value in ((process.stdin, program), (open(test_write, "wb"), test)):
        try:
            with pipe:
                pipe.write(json.dumps(value).encode())
        except BrokenPipeError:
            pass
    return process, verdict_read


def read_tails(tails, deadline):
    """Read each pipe (file object or fd) to EOF or until deadline, keeping only its last
    OUTPUT_TAIL_BYTES."""
    with selectors.DefaultSelector() as selector:
        for pipe in tails:
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map() and (remaining := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fileobj)
                tail = tails[key.fileobj]
                tail += chunk
                del tail[:-OUTPUT_TAIL_BYTES]
    for pipe in tails:
        os.close(pipe) if isinstance(pipe, int) else pipe.close()
    return tails


def describe_exit(exit_code):
    if exit_code > 128:
        try:
            return f"killed by {signal.Signals(exit_code - 128).name}"
        except ValueError:
            pass
    return f"exit status {exit_code}"


def execute_many(
    programs: list[str],
    timeout: float = 5.0,
    memory_mb: int = 256,
    workers: int | None = None,
    tests: list[str] | None = None,
) -> list[ExecutionResult]:
    """execute() each program (with its test, when tests are given), up to workers (default: the
    number of cores) at a time; results in order."""
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        return list(
            pool.map(
                lambda program, test: execute(program, timeout, memory_mb, test),
                programs,
                tests or [None] * len(programs),
            )
        )
