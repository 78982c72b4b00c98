"""
Run model-written Python in a sandbox it cannot escape, hang, or fool.

HumanEval-style evaluation executes code a language model wrote, thousands of times,
sometimes as an RL reward. A reward with holes gets learned, so:

- Each program runs in a fresh `python -I -S` (standard library only), in its own session,
  with limits on address space, CPU time, file size, open files and processes, stdin
  closed, a scrubbed environment and a temporary working directory removed afterwards.
- As root, the program runs as a uid of its own, so it cannot write system files and the
  process limit counts only its own processes.
- Where the kernel allows (Linux >= 5.12; as root, or as a user via a user namespace) it
  also gets its own network namespace (no network, not even 127.0.0.1), PID namespace
  (when it ends, every process it started dies with it) and mount namespace (everything
  read-only except a small tmpfs working directory). `ExecutionResult.network_isolated`
  says whether this happened. Without it, the guarantees above still hold except that the
  network is open and world-writable places such as /tmp can be written; as root, leftover
  processes are killed by uid, but under a non-root harness a process that leaves the
  session can outlive the call and the program has its user's file permissions.

Pass means the program ran to its end. The verdict travels on its own pipe and must be a
random nonce sent on stdin, which the sandbox reads and closes before the program starts
(never argv, environment or files); the program's text cannot contain it, so printing, exiting early with status 0,
raising SystemExit, killing itself or closing stdout all fail. Python has no boundary
inside a process, so code that deliberately digs the nonce out of the interpreter's
memory could still forge a pass; that takes targeting this harness, not a lucky exit.
It also cannot catch weak tests (e.g. a return value whose __eq__ is always True).

This file is also the script the sandboxed interpreter runs, so its first half imports
only what that side needs, to keep the per-program startup cost low.
"""

import ctypes
import os
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_PRIVATE = 0x2, 0x4, 1 << 18
MOUNT_ATTR_RDONLY, AT_FDCWD, AT_RECURSIVE, SYS_MOUNT_SETATTR = 0x1, -100, 0x8000, 442
PR_SET_NO_NEW_PRIVS = 38
# As root, the program runs as SANDBOX_UID_BASE + the sandbox's pid: a uid no account owns,
# distinct for every concurrent sandbox, so RLIMIT_NPROC (counted per uid) is per program.
SANDBOX_UID_BASE = 0x7F000000
MAX_PROCESSES = 32
MAX_OPEN_FILES = 64
MAX_FILE_MB = 16
WORKDIR_TMPFS_MB = 64

libc = ctypes.CDLL(None, use_errno=True)


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def check(result):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def enter_namespaces(workdir):
    """Unshare network, PID and mount namespaces; make everything read-only but a tmpfs at workdir. False if unavailable."""
    flags = CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS | (0 if os.geteuid() == 0 else CLONE_NEWUSER)
    # mount_setattr (5.12) is probed first: once unshared there is no going back.
    ctypes.set_errno(0)
    libc.syscall(SYS_MOUNT_SETATTR, -1, None, 0, None, 0)
    if ctypes.get_errno() == 38 or libc.unshare(flags) != 0:  # 38: ENOSYS
        return False
    if flags & CLONE_NEWUSER:  # files on the tmpfs need an owner the new namespace can name: ourselves
        uid, gid = os.getuid(), os.getgid()
        for name, line in [("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")]:
            with open(f"/proc/self/{name}", "w") as file:
                file.write(line)
    readonly_and_private = MountAttr(attr_set=MOUNT_ATTR_RDONLY, propagation=MS_PRIVATE)
    check(libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE,
                       ctypes.byref(readonly_and_private), ctypes.sizeof(readonly_and_private)))
    check(libc.mount(b"tmpfs", workdir.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                     f"size={WORKDIR_TMPFS_MB}m,mode=0700".encode()))
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
        for module in list(sys.modules.values()):  # packages already imported find submodules by __path__
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
            return new + path[len(old):]
    return path


def limit_resources(cpu_seconds, memory_mb):
    for limit, value in [(resource.RLIMIT_AS, memory_mb << 20), (resource.RLIMIT_CPU, cpu_seconds),
                         (resource.RLIMIT_FSIZE, MAX_FILE_MB << 20), (resource.RLIMIT_NOFILE, MAX_OPEN_FILES),
                         (resource.RLIMIT_NPROC, MAX_PROCESSES), (resource.RLIMIT_CORE, 0)]:
        resource.setrlimit(limit, (value, value))


def run_program(source, nonce, verdict_fd):
    """Runs in the sandboxed process: the nonce is written only if the program returns normally."""
    try:
        exec(compile(source, "<program>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        verdict = nonce
    except BaseException as error:  # SystemExit included: exiting is not finishing
        verdict = f"{type(error).__name__}: {error}"[:500]
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os.write(verdict_fd, verdict.encode(errors="replace"))
    os._exit(0)


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
    """The sandboxed interpreter's entry point: set up, fork an init and the program, enforce the timeout."""
    message = sys.stdin.buffer.read()
    nonce, source = message[:32].decode(), message[32:].decode()
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    isolated = enter_namespaces(workdir)
    os.chdir(workdir)  # after the tmpfs is mounted over it
    uid = SANDBOX_UID_BASE + os.getpid()
    if os.geteuid() == 0:
        os.chown(workdir, uid, uid)
    os.write(verdict_fd, b"1" if isolated else b"0")
    init = os.fork()
    if init == 0:
        # Trusted code only, so the program cannot move it out of the process group the harness
        # kills; as PID 1 of the namespace, when it exits the kernel kills everything left.
        program = os.fork()
        if program == 0:
            limit_resources(int(timeout) + 1, memory_mb)
            drop_privileges(uid)
            run_program(source, nonce, verdict_fd)
        os._exit(wait_exit_code(program))
    # Killing init from outside its namespace always works, and waitpid returns only once the namespace is empty.
    signal.signal(signal.SIGALRM, lambda *_: os.kill(init, signal.SIGKILL))
    signal.setitimer(signal.ITIMER_REAL, timeout)
    exit_code = wait_exit_code(init)
    signal.setitimer(signal.ITIMER_REAL, 0)
    if not isolated and os.geteuid() == 0:
        kill_every_process_of(uid)  # no PID namespace did it for us
    os._exit(exit_code)


if __name__ == "__main__":
    sandbox_main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))


# The harness side.
import secrets  # noqa: E402
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
    passed: bool  # the program ran to its end
    reason: str  # "passed", the exception, or how it ended early
    timed_out: bool
    memory_exceeded: bool
    network_isolated: bool  # own network, PID and mount namespaces
    stdout: str  # the last OUTPUT_TAIL_BYTES of each
    stderr: str


def execute(program: str, timeout: float = 5.0, memory_mb: int = 256) -> ExecutionResult:
    """Run program in a fresh sandboxed interpreter; passed only if it runs to its end within timeout seconds."""
    nonce = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="nanotasks-exec-") as workdir:
        verdict_read, verdict_write = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), workdir, str(verdict_write), str(timeout), str(memory_mb)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(verdict_write,),
                cwd=workdir, env={"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"},
                start_new_session=True)
        finally:
            os.close(verdict_write)
        started = time.monotonic()
        try:
            process.stdin.write(nonce.encode() + program.encode())
            process.stdin.close()
        except BrokenPipeError:
            pass
        deadline = started + timeout + GRACE_SECONDS
        outputs = read_tails({process.stdout: bytearray(), process.stderr: bytearray(), verdict_read: bytearray()}, deadline)
        if time.monotonic() < deadline:  # every pipe reached EOF: the sandbox has exited or is exiting
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        # Kill whatever is left of the session before reaping its leader, so the id cannot have been reused.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        exit_code = process.wait()
        elapsed = time.monotonic() - started
    stdout, stderr, verdict = (outputs[key].decode(errors="replace") for key in (process.stdout, process.stderr, verdict_read))
    isolated, verdict = verdict[:1] == "1", verdict[1:]
    passed = verdict == nonce
    timed_out = not passed and elapsed >= timeout
    if passed:
        reason = "passed"
    elif timed_out:
        reason = f"timed out after {timeout:g} s"
    elif verdict:
        reason = verdict
    else:
        reason = f"ended before the program finished ({describe_exit(exit_code)})"
    return ExecutionResult(passed, reason, timed_out, reason.startswith("MemoryError"), isolated, stdout, stderr)


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


def execute_many(programs: list[str], timeout: float = 5.0, memory_mb: int = 256, workers: int | None = None) -> list[ExecutionResult]:
    """execute() each program, up to workers (default: the number of cores) at a time; results in order."""
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        return list(pool.map(lambda program: execute(program, timeout, memory_mb), programs))
