"""
The sandbox's side of tasks/execution.py: the script the harness starts, as
`python -I -S sandbox.py WORKDIR VERDICT_FD TEST_FD TIMEOUT MEMORY_MB`, for each program.
It imports only the standard library modules it needs, to keep the start-up cost low.

It reads the program (JSON) from stdin, enters its namespaces and forks init, the first process
of its PID namespace. Init makes the root filesystem (when isolated), forks the program's
process, and only then reads the test (JSON) from TEST_FD and forks the checker: the program's
process is a copy of one that never held the test, so no frame, object or byte of its memory
has the test or its expected values. The checker writes the verdict to VERDICT_FD, after the
one byte this process writes there first: whether the namespaces were entered. This process
kills init at the timeout.
"""

import ctypes
import errno
import json
import os
import resource
import signal
import sys
from typing import Any

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (
    0x00020000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_BIND, MS_REC, MS_PRIVATE, MNT_DETACH = 0x1000, 0x4000, 1 << 18, 0x2
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
# What the root filesystem of an isolated sandbox holds of the host's, read-only: the system's
# programs and libraries (with ld.so's cache, which finds those outside the default paths),
# the devices a program may open, and Python's installation (sys.base_prefix, added where used).
SYSTEM_PATHS = ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
ROOT_TMPFS = "size=1m,mode=0755"  # holds only directories, empty files and symbolic links
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


def enter_namespaces():
    """Unshare network, IPC, PID and mount namespaces (without root, in a user namespace that
    maps only ourselves), no mount propagating to or from the host. False if unavailable."""
    user_namespace = os.geteuid() != 0
    flags = CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNS
    flags |= CLONE_NEWUSER if user_namespace else 0
    uid, gid = os.getuid(), os.getgid()  # read before: a new user namespace maps no one until told
    # mount_setattr (5.12) is probed first: once unshared there is no going back.
    ctypes.set_errno(0)
    libc.syscall(SYS_MOUNT_SETATTR, -1, None, 0, None, 0)
    if ctypes.get_errno() == errno.ENOSYS or libc.unshare(flags) != 0:
        return False
    if user_namespace:  # files on the tmpfs need an owner the new namespace can name: ourselves
        for name, line in [
            ("uid_map", f"{uid} {uid} 1"),
            ("setgroups", "deny"),
            ("gid_map", f"{gid} {gid} 1"),
        ]:
            with open(f"/proc/self/{name}", "w") as file:
                file.write(line)
    set_mount_attributes(b"/", MountAttr(propagation=MS_PRIVATE))
    return True


def set_mount_attributes(path, attributes):
    """mount_setattr on path and every mount below it."""
    size = ctypes.sizeof(attributes)
    check(
        libc.syscall(
            SYS_MOUNT_SETATTR, AT_FDCWD, path, AT_RECURSIVE, ctypes.byref(attributes), size
        )
    )


def mount_tmpfs(path, options):
    check(libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options.encode()))


def build_root(workdir):
    """Make / a new tree holding only what a program needs: the system's programs and libraries,
    Python's installation and a few devices, read-only, a /proc of this PID namespace, and a
    tmpfs at workdir, the one writable place. Built in a tmpfs mounted over workdir, in init:
    a new /proc must be mounted from inside the PID namespace and, in a user namespace, while
    the host's is still visible."""
    mount_tmpfs(workdir, ROOT_TMPFS)
    os.chdir(workdir)
    os.mkdir("proc")
    # Where the kernel refuses a new /proc (e.g. the host's is partly hidden), it stays empty.
    libc.mount(b"proc", b"proc", b"proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    paths = sorted({*SYSTEM_PATHS, *DEVICES, sys.base_prefix, sys.base_exec_prefix})
    placed: list[str] = []
    for path in paths:
        if os.path.lexists(path) and not any(path.startswith(p + "/") for p in placed):
            place(path)
            placed.append(path)
    os.makedirs(workdir.lstrip("/"))
    check(libc.pivot_root(b".", b"."))  # the host's root is stacked on the new one: detach it
    check(libc.umount2(b".", MNT_DETACH))
    os.chdir("/")
    set_mount_attributes(b"/", MountAttr(attr_set=MOUNT_ATTR_RDONLY))
    mount_tmpfs(workdir, f"size={WORKDIR_TMPFS_MB}m,mode=0700")


def place(path):
    """Put the host's path (a directory, file or symbolic link) at the same place in the tree
    being built in the working directory: directories and files as bind mounts of the host's."""
    target = path.lstrip("/")
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    if os.path.islink(path):
        os.symlink(os.readlink(path), target)
        return
    if os.path.isdir(path):
        os.mkdir(target)
    else:
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    check(libc.mount(path.encode(), target.encode(), None, MS_BIND | MS_REC, None))


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
        for module in list(sys.modules.values()):  # packages find submodules by __path__
            if isinstance(getattr(module, "__path__", None), list):
                module.__path__[:] = [relocate(path, moved) for path in module.__path__]
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    # Without root a user namespace gave us capabilities in it (enough to undo read-only mounts).
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
    nr, architecture, first_argument, second_argument = 0, 4, 16, 24  # in struct seccomp_data
    # (code, jump if true, jump if false, constant); jumps skip that many instructions
    instructions = [
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
    program = (SockFilter * len(instructions))(*(SockFilter(*i) for i in instructions))
    filter_program = SockFprog(len(instructions), program)
    check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(filter_program), 0, 0))


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


def describe(error):
    return f"{type(error).__name__}: {error}"[:500]


def serve(source, calls_fd, answers_fd):
    """The program's process: run the program, answer how that went, then run each call the
    checker sends and answer with its result, until the checker hangs up."""
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}

    def call(name, args, kwargs):
        return namespace[name](*args, **kwargs)

    with open(calls_fd, "rb") as calls, open(answers_fd, "wb") as answers:
        answer(answers, lambda: exec(compile(source, "<program>", "exec"), namespace))
        for line in calls:
            answer(answers, call, *from_json(line))
    for stream in (sys.stdout, sys.stderr):
        stream.flush()


def answer(answers, function, *args):
    try:
        line = to_json(["returned", function(*args)])
    except BaseException as error:  # SystemExit included: exiting is not finishing
        line = to_json(["raised", describe(error)])
    answers.write(line)
    answers.flush()


class ProgramError(Exception):
    """In the checker: the program's function raised, the program ended, or it answered with
    something else than plain data."""


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


def spawn(uid, limits, closing, role):
    """Fork a process that closes the descriptors it must not have, confines itself (limits:
    CPU seconds and MB of address space), runs role and exits."""
    pid = os.fork()
    if pid == 0:
        try:
            for fd in closing:
                os.close(fd)
            limit_resources(*limits)
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


def run_init(program, test_fd, verdict_fd, workdir, isolated, program_uid, limits):
    """Init: trusted code only, so the program cannot move it out of the process group the
    harness kills; as PID 1 of the namespace, when it exits the kernel kills everything left.
    Starts the program's process, then reads the test and starts the checker."""
    if isolated:
        build_root(workdir)
    os.chdir(workdir)
    if os.geteuid() == 0:
        os.chown(workdir, program_uid, program_uid)
    (calls_in, calls_out), (answers_in, answers_out) = os.pipe(), os.pipe()
    program_pid = spawn(
        program_uid,
        limits,
        (verdict_fd, test_fd, calls_out, answers_in),
        lambda: serve(program, calls_in, answers_out),
    )
    with open(test_fd, "rb") as source:  # only now: see the module's docstring
        test = json.load(source)
    checker_pid = spawn(
        program_uid + CHECKER_UID_OFFSET,
        limits,
        (calls_in, answers_out),
        lambda: run_test(test, calls_out, answers_in, verdict_fd),
    )
    for fd in (calls_in, calls_out, answers_in, answers_out):
        os.close(fd)
    os.waitpid(checker_pid, 0)
    os.waitpid(program_pid, 0)  # for its last output once the checker hangs up


def main(workdir, verdict_fd, test_fd, timeout, memory_mb):
    """The sandbox's first process: set up, fork init, enforce the timeout."""
    program = json.load(sys.stdin.buffer)  # stdin holds the program only
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    isolated = enter_namespaces()
    # Neither this process nor anything forked from it can then be traced, or read through
    # /proc/<pid>/mem or /fd, by a process without capabilities, even one of the same uid.
    check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
    program_uid = SANDBOX_UID_BASE + os.getpid()
    os.write(verdict_fd, b"1" if isolated else b"0")
    limits = int(timeout) + 1, memory_mb
    init = os.fork()
    if init == 0:
        try:
            run_init(program, test_fd, verdict_fd, workdir, isolated, program_uid, limits)
            os._exit(0)
        except BaseException:
            sys.excepthook(*sys.exc_info())
            os._exit(1)
    os.close(test_fd)
    # Killing init from outside its namespace always works, and waitpid returns only once the
    # namespace is empty.
    signal.signal(signal.SIGALRM, lambda *_: os.kill(init, signal.SIGKILL))
    signal.setitimer(signal.ITIMER_REAL, timeout)
    exit_code = wait_exit_code(init)
    signal.setitimer(signal.ITIMER_REAL, 0)
    if not isolated and os.geteuid() == 0:  # no PID namespace did it for us
        kill_every_process_of(program_uid)
        kill_every_process_of(program_uid + CHECKER_UID_OFFSET)
    os._exit(exit_code)


if __name__ == "__main__":
    workdir, verdict_fd, test_fd, timeout, memory_mb = sys.argv[1:]
    main(workdir, int(verdict_fd), int(test_fd), float(timeout), int(memory_mb))
