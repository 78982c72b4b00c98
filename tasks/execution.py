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
  The verdict pipe is held by the checker and the sandbox's own trusted processes, never the program.
  The program's process is forked before the sandbox reads the test from the harness, so
  nothing in its frames, objects or memory holds the test or its expected values.
- Each sandbox is a fresh `python -I -S` (standard library only) in its own session; the
  program and the checker each get limits on address space, CPU time, file size, open files
  and processes, /dev/null as stdin, a scrubbed environment, no capabilities, and a seccomp
  filter that refuses Unix sockets (so no socket file on the host can be connected to).
  As root, each runs as a uid of its own, so it cannot write system files and the process
  limit counts only its own processes.
- Where the kernel allows (Linux >= 5.12; as root, or as a user via a user namespace) the
  sandbox also gets its own network namespace (no network, not even 127.0.0.1), IPC namespace
  (System V and POSIX IPC objects die with it), PID namespace (when it ends, every process it
  started dies with it, and its /proc lists only its own processes) and mount namespace
  (everything read-only except a small tmpfs working directory; /dev/shm empty).
  `ExecutionResult.network_isolated` says whether this happened. Without it, the guarantees
  above still hold except that the network is open and world-writable places such as /tmp
  can be written; as root, leftover processes are killed by uid, but under a non-root harness
  a process that leaves the session can outlive the call and the program has its user's
  file permissions.

The test is trusted code (the dataset's, from the compiled file) but it runs with the same
limits, namespaces and filter as the program, as its own unprivileged uid, so a crafted file's
test is confined like a program. Without a test, pass means the program ran to its end, as
the program's own process reports it: printing, exiting early, raising SystemExit, killing
itself or closing stdout all fail, but code written to target this harness can claim it.

This file is also the script the sandboxed interpreter runs, so its first half imports
only what that side needs, to keep the per-program startup cost low.
"""

import ctypes
import errno
import json
import os
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (
    0x00020000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_PRIVATE = 0x1, 0x2, 0x4, 0x8, 1 << 18
MOUNT_ATTR_RDONLY, AT_FDCWD, AT_RECURSIVE, SYS_MOUNT_SETATTR = 0x1, -100, 0x8000, 442
PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS, SECCOMP_MODE_FILTER = 4, 22, 38, 2
# As root, the program runs as SANDBOX_UID_BASE + the sandbox's pid and the checker as that plus
# 2**22 (above any pid): uids no account owns, distinct for every concurrent sandbox, so
# RLIMIT_NPROC (counted per uid) is per process tree and neither can signal or trace the other.
SANDBOX_UID_BASE = 0x7F000000
CHECKER_UID_OFFSET = 1 << 22
MAX_PROCESSES = 32
MAX_OPEN_FILES = 64
MAX_FILE_MB = 16
WORKDIR_TMPFS_MB = 64
MAX_ANSWER_BYTES = 16 << 20
# The seccomp filter's syscall numbers: machine -> (AUDIT_ARCH_*, socket, socketpair).
SECCOMP_MACHINES = {"x86_64": (0xC000003E, 41, 53), "aarch64": (0xC00000B7, 198, 199)}
SYS_IO_URING_SETUP, X32_SYSCALL_BIT, AF_UNIX, SOCK_STREAM = 425, 0x40000000, 1, 1

libc = ctypes.CDLL(None, use_errno=True)


class MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


class SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def check(result):
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def enter_namespaces(workdir):
    """Unshare network, IPC, PID and mount namespaces; make everything read-only but a tmpfs at workdir. False if unavailable."""
    flags = (
        CLONE_NEWNET
        | CLONE_NEWIPC
        | CLONE_NEWPID
        | CLONE_NEWNS
        | (0 if os.geteuid() == 0 else CLONE_NEWUSER)
    )
    uid, gid = os.getuid(), os.getgid()  # read before: a new user namespace maps no one until told
    # mount_setattr (5.12) is probed first: once unshared there is no going back.
    ctypes.set_errno(0)
    libc.syscall(SYS_MOUNT_SETATTR, -1, None, 0, None, 0)
    if ctypes.get_errno() == 38 or libc.unshare(flags) != 0:  # 38: ENOSYS
        return False
    if (
        flags & CLONE_NEWUSER
    ):  # files on the tmpfs need an owner the new namespace can name: ourselves
        for name, line in [
            ("uid_map", f"{uid} {uid} 1"),
            ("setgroups", "deny"),
            ("gid_map", f"{gid} {gid} 1"),
        ]:
            with open(f"/proc/self/{name}", "w") as file:
                file.write(line)
    readonly_and_private = MountAttr(attr_set=MOUNT_ATTR_RDONLY, propagation=MS_PRIVATE)
    check(
        libc.syscall(
            SYS_MOUNT_SETATTR,
            AT_FDCWD,
            b"/",
            AT_RECURSIVE,
            ctypes.byref(readonly_and_private),
            ctypes.sizeof(readonly_and_private),
        )
    )
    check(
        libc.mount(
            b"tmpfs",
            workdir.encode(),
            b"tmpfs",
            MS_NOSUID | MS_NODEV,
            f"size={WORKDIR_TMPFS_MB}m,mode=0700".encode(),
        )
    )
    if os.path.isdir("/dev/shm"):  # the host's POSIX shared memory objects are files there
        check(
            libc.mount(
                b"tmpfs", b"/dev/shm", b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, None
            )
        )
    return True


def drop_privileges(uid):
    """Become uid (when root), give up every capability, and never regain any through exec."""
    if os.geteuid() == 0:
        # The interpreter may live somewhere uid cannot read (e.g. /root/.pyenv): keep importing
        # the standard library through directory descriptors opened while still root.
        moved = {}
        for path in sys.path:
            try:
                moved[path] = f"/proc/self/fd/{os.open(path, os.O_RDONLY | os.O_DIRECTORY)}"
            except OSError:
                pass
        sys.path[:] = moved.values()
        for module in list(
            sys.modules.values()
        ):  # packages already imported find submodules by __path__
            if isinstance(getattr(module, "__path__", None), list):
                module.__path__[:] = [relocate(path, moved) for path in module.__path__]
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    # Without root a user namespace gave us capabilities inside it (enough to undo the read-only mounts).
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    check(libc.capset(header, (ctypes.c_uint32 * 6)()))
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))


def relocate(path, moved):
    for old, new in moved.items():
        if path.startswith(old + "/"):
            return new + path[len(old) :]
    return path


def forbid_unix_sockets():
    """A seccomp filter so that no socket file on the host can be connected to: socket(AF_UNIX),
    datagram socketpairs (which can sendto a path) and io_uring (which can make sockets) fail
    with EPERM; stream socketpairs, which asyncio uses, still work. Another ABI of the same
    machine (32-bit x86 has its own socket calls) kills the process. Other machines: no filter."""
    if os.uname().machine not in SECCOMP_MACHINES:
        return
    arch, socket, socketpair = SECCOMP_MACHINES[os.uname().machine]
    load, jump_equal, jump_at_least, bitwise_and, give = 0x20, 0x15, 0x35, 0x54, 0x06
    allow, refuse, kill = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x80000000
    nr, architecture, first_argument, second_argument = (
        0,
        4,
        16,
        24,
    )  # offsets in struct seccomp_data
    instructions = [  # (code, jump if true, jump if false, constant); jumps skip that many instructions
        (load, 0, 0, architecture),
        (jump_equal, 1, 0, arch),
        (give, 0, 0, kill),
        (load, 0, 0, nr),
        (jump_at_least, 10, 0, X32_SYSCALL_BIT),
        (jump_equal, 9, 0, SYS_IO_URING_SETUP),
        (jump_equal, 2, 0, socket),
        (jump_equal, 3, 0, socketpair),
        (give, 0, 0, allow),
        (load, 0, 0, first_argument),
        (jump_equal, 4, 3, AF_UNIX),  # socket(family, ...)
        (load, 0, 0, second_argument),
        (bitwise_and, 0, 0, 0xF),
        (jump_equal, 0, 1, SOCK_STREAM),  # socketpair(family, type, ...)
        (give, 0, 0, allow),
        (give, 0, 0, refuse),
    ]
    program = (SockFilter * len(instructions))(*instructions)
    check(
        libc.prctl(
            PR_SET_SECCOMP,
            SECCOMP_MODE_FILTER,
            ctypes.byref(SockFprog(len(instructions), program)),
            0,
            0,
        )
    )


def limit_resources(cpu_seconds, memory_mb):
    for limit, value in [
        (resource.RLIMIT_AS, memory_mb << 20),
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_FSIZE, MAX_FILE_MB << 20),
        (resource.RLIMIT_NOFILE, MAX_OPEN_FILES),
        (resource.RLIMIT_NPROC, MAX_PROCESSES),
        (resource.RLIMIT_CORE, 0),
    ]:
        resource.setrlimit(limit, (value, value))


def to_json(value):
    """One line of JSON for plain data; TypeError for anything else."""
    return json.dumps(tagged(value)).encode() + b"\n"


def tagged(value):
    """value as JSON data, tuples, sets and dicts tagged so that they come back as themselves."""
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [tagged(item) for item in value]
    if kind in (tuple, set):
        return {kind.__name__: [tagged(item) for item in value]}
    if kind is dict:
        return {"dict": [[tagged(key), tagged(item)] for key, item in value.items()]}
    raise TypeError(
        f"{kind.__name__} is not plain data (None, bool, int, float, str, list, tuple, set, dict)"
    )


def from_json(line):
    return json.loads(line, object_hook=untagged)


def untagged(tagged_object):
    ((tag, items),) = tagged_object.items()
    if type(items) is not list:
        raise ValueError(f"{tag} of {type(items).__name__}")
    return {"tuple": tuple, "set": set, "dict": dict}[tag](items)


def receive(fd):
    """One value the harness sent on fd, framed: its JSON's length as 8 bytes, then the JSON.
    Reads nothing past it, so what follows stays in the pipe, out of this process's memory."""
    size = int.from_bytes(read_exactly(fd, 8), "big")
    return json.loads(read_exactly(fd, size))


def read_exactly(fd, size):
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("the harness hung up")
        data += chunk
    return bytes(data)


def describe(error):
    return f"{type(error).__name__}: {error}"[:500]


def serve(source, calls_fd, answers_fd):
    """The program's process: run the program, answer how that went, then run each call the
    checker sends and answer with its result, until the checker hangs up."""
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    with open(calls_fd, "rb") as calls, open(answers_fd, "wb") as answers:
        answer(answers, lambda: exec(compile(source, "<program>", "exec"), namespace))
        for call in calls:
            name, args, kwargs = from_json(call)
            answer(answers, lambda: namespace[name](*args, **kwargs))
    for stream in (sys.stdout, sys.stderr):
        stream.flush()


def answer(answers, call):
    try:
        line = to_json(["returned", call()])
    except BaseException as error:  # SystemExit included: exiting is not finishing
        line = to_json(["raised", describe(error)])
    answers.write(line)
    answers.flush()


class ProgramError(Exception):
    """In the checker: the program's function raised, the program ended, or it answered with something else than plain data."""


class Program:
    """The sandboxed program as the test sees it: program.f(*args, **kwargs) runs f in the
    program's process and returns a plain-data copy of its result."""

    def __init__(self, calls, answers):
        self._calls, self._answers = calls, answers

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            try:
                self._calls.write(to_json([name, args, kwargs]))
                self._calls.flush()
            except BrokenPipeError:
                raise ProgramError("the program ended before answering") from None
            return self.answer()

        return call

    def answer(self):
        line = self._answers.readline(MAX_ANSWER_BYTES + 1)
        if not line.endswith(b"\n"):
            raise ProgramError(
                f"an answer longer than {MAX_ANSWER_BYTES >> 20} MiB"
                if line
                else "the program ended before answering"
            )
        try:
            kind, value = from_json(line)
        except Exception:
            raise ProgramError(
                "the program answered with something other than plain data"
            ) from None
        if kind == "returned":
            return value
        raise ProgramError(str(value)[:500])


def run_test(test, calls_fd, answers_fd, verdict_fd):
    """The checker's process: passed only if the program ran to its end and then the test, with
    `program` standing for it, ran to its end."""
    os.chdir("/")
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    program = Program(open(calls_fd, "wb"), open(answers_fd, "rb"))
    try:
        program.answer()  # how the program's own run went
        if test is not None:
            exec(compile(test, "<test>", "exec"), {"__name__": "__main__", "program": program})
        verdict = [True, "passed"]
    except BaseException as error:
        verdict = [False, str(error)[:500] if isinstance(error, ProgramError) else describe(error)]
    os.write(verdict_fd, json.dumps(verdict).encode())


def spawn(uid, cpu_seconds, memory_mb, closing, role):
    """Fork a process that closes the descriptors it must not have, confines itself, runs role and exits."""
    pid = os.fork()
    if pid == 0:
        try:
            for fd in closing:
                os.close(fd)
            limit_resources(cpu_seconds, memory_mb)
            drop_privileges(uid)
            forbid_unix_sockets()
            role()
        finally:
            os._exit(0)
    return pid


def wait_exit_code(pid):
    status = os.waitpid(pid, 0)[1]
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def kill_every_process_of(uid):
    """kill(-1) as uid reaches every process of that uid, including any that left the session."""
    killer = os.fork()
    if killer == 0:
        os.setuid(uid)
        try:
            os.kill(-1, signal.SIGKILL)  # atomic with respect to fork: no child slips through
        finally:
            os._exit(0)
    os.waitpid(killer, 0)


def sandbox_main(workdir, verdict_fd, timeout, memory_mb):
    """The sandboxed interpreter's entry point: set up, fork an init that starts the program and
    the checker, enforce the timeout."""
    # Only the program is read now; the test stays in the pipe until the program's process is
    # forked, so that process is a copy of one that never held the test.
    program = receive(0)
    test_source = os.dup(0)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    isolated = enter_namespaces(workdir)
    # Neither this process nor anything forked from it can then be traced, or read through
    # /proc/<pid>/mem or /fd, by a process without capabilities, even one of the same uid.
    check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
    os.chdir(workdir)  # after the tmpfs is mounted over it
    program_uid = SANDBOX_UID_BASE + os.getpid()
    checker_uid = program_uid + CHECKER_UID_OFFSET
    if os.geteuid() == 0:
        os.chown(workdir, program_uid, program_uid)
    os.write(verdict_fd, b"1" if isolated else b"0")
    (calls_in, calls_out), (answers_in, answers_out) = os.pipe(), os.pipe()
    limits = int(timeout) + 1, memory_mb
    init = os.fork()
    if init == 0:
        # Trusted code only, so the program cannot move it out of the process group the harness
        # kills; as PID 1 of the namespace, when it exits the kernel kills everything left.
        if isolated:  # a /proc of this PID namespace: the host's processes are not listed (kept where the kernel refuses)
            libc.mount(
                b"proc", b"/proc", b"proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, None
            )
        program_pid = spawn(
            program_uid,
            *limits,
            (verdict_fd, calls_out, answers_in, test_source),
            lambda: serve(program, calls_in, answers_out),
        )
        test = receive(test_source)
        os.close(test_source)
        checker_pid = spawn(
            checker_uid,
            *limits,
            (calls_in, answers_out),
            lambda: run_test(test, calls_out, answers_in, verdict_fd),
        )
        for fd in (calls_in, calls_out, answers_in, answers_out):
            os.close(fd)
        os.waitpid(checker_pid, 0)
        os.waitpid(program_pid, 0)  # for its last output once the checker hangs up
        os._exit(0)
    for fd in (calls_in, calls_out, answers_in, answers_out, test_source):
        os.close(fd)
    # Killing init from outside its namespace always works, and waitpid returns only once the namespace is empty.
    signal.signal(signal.SIGALRM, lambda *_: os.kill(init, signal.SIGKILL))
    signal.setitimer(signal.ITIMER_REAL, timeout)
    exit_code = wait_exit_code(init)
    signal.setitimer(signal.ITIMER_REAL, 0)
    if not isolated and os.geteuid() == 0:  # no PID namespace did it for us
        kill_every_process_of(program_uid)
        kill_every_process_of(checker_uid)
    os._exit(exit_code)


if __name__ == "__main__":
    sandbox_main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))


# The harness side.
import selectors  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402

OUTPUT_TAIL_BYTES = 16 << 10
# The sandbox enforces the timeout itself; this is the harness's backstop beyond it.
GRACE_SECONDS = 0.5


@dataclass
class ExecutionResult:
    passed: bool  # the test ran to its end (without a test: the program ran to its end)
    reason: str  # "passed", the exception, or how it ended early
    timed_out: bool
    memory_exceeded: bool
    network_isolated: bool  # own network, IPC, PID and mount namespaces
    stdout: str  # the program's, the last OUTPUT_TAIL_BYTES of each
    stderr: str


def execute(
    program: str, timeout: float = 5.0, memory_mb: int = 256, test: str | None = None
) -> ExecutionResult:
    """Run program in a fresh sandbox, then test in the sandbox's checker, where `program.f(*args)`
    calls the program's f and returns a plain-data copy of its result. Passed only if the test
    (or without one, the program) runs to its end within timeout seconds in all."""
    # ASCII JSON: even lone surrogates travel, to fail in compile()
    message = b"".join(
        len(data).to_bytes(8, "big") + data
        for data in (json.dumps(program).encode(), json.dumps(test).encode())
    )
    with tempfile.TemporaryDirectory(prefix="nanotasks-exec-") as workdir:
        verdict_read, verdict_write = os.pipe()
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    os.path.abspath(__file__),
                    workdir,
                    str(verdict_write),
                    str(timeout),
                    str(memory_mb),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(verdict_write,),
                cwd=workdir,
                env={
                    "PATH": "/usr/bin:/bin",
                    "HOME": workdir,
                    "TMPDIR": workdir,
                    "LANG": "C.UTF-8",
                },
                start_new_session=True,
            )
        except BaseException:
            os.close(verdict_read)
            raise
        finally:
            os.close(verdict_write)
        started = time.monotonic()
        try:
            process.stdin.write(message)
            process.stdin.close()
        except BrokenPipeError:
            pass
        deadline = started + timeout + GRACE_SECONDS
        outputs = read_tails(
            {process.stdout: bytearray(), process.stderr: bytearray(), verdict_read: bytearray()},
            deadline,
        )
        if (
            time.monotonic() < deadline
        ):  # every pipe reached EOF: the sandbox has exited or is exiting
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        # Kill whatever is left of the session before reaping its leader, so the id cannot have been reused.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        exit_code = process.wait()
        elapsed = time.monotonic() - started
    stdout, stderr = (
        outputs[pipe].decode(errors="replace") for pipe in (process.stdout, process.stderr)
    )
    isolated, verdict = outputs[verdict_read][:1] == b"1", outputs[verdict_read][1:]
    try:
        passed, reason = json.loads(verdict)  # written only by the checker
    except ValueError:  # none, or cut short by the timeout
        passed, reason = False, ""
    timed_out = not passed and elapsed >= timeout
    if timed_out:
        reason = f"timed out after {timeout:g} s"
    elif not reason:
        reason = f"the sandbox ended without a verdict ({describe_exit(exit_code)})"
    return ExecutionResult(
        passed, reason, timed_out, reason.startswith("MemoryError"), isolated, stdout, stderr
    )


def read_tails(tails, deadline):
    """Read each pipe (file object or fd) to EOF or until deadline, keeping only its last OUTPUT_TAIL_BYTES."""
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
