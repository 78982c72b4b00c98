"""The peak memory of a command and every process it starts (a compile and its workers).

Resident memory (RSS) of the whole process tree, summed and sampled every 50 ms from /proc
(Linux: nanotasks.compiler.memory). Not the kernel's ru_maxrss (`/usr/bin/time -f %M`): it is
one process's, not the tree's, and it survives exec, so a command started by a large process
(a benchmark that has just made its data) would be charged the parent's memory.
The sum counts the pages the processes share (the interpreter's libraries) once per process:
it is what the tree costs at most, never less.

    python benchmarks/peak.py -- nanotasks compile --only smoltalk --mirror DIR --db X.db
"""

import os
import subprocess
import sys
import tempfile
import threading
import time

from nanotasks.compiler.memory import tree_rss_bytes

SAMPLE_SECONDS = 0.05


def run_with_peak(command, env=None):
    """Run `command` to its end, its output captured: (CompletedProcess, wall seconds,
    figures), the figures the peak of the tree's summed RSS in MB."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        peak, done = [0], threading.Event()

        def sample():
            while not done.wait(SAMPLE_SECONDS):
                peak[0] = max(peak[0], tree_rss_bytes(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status = os.waitpid(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        completed = subprocess.CompletedProcess(
            command, process.returncode, out.read().decode(), err.read().decode()
        )
    figures = {"peak_tree_mb": peak[0] / 2**20}
    return completed, wall, figures


def main():
    command = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    completed, wall, figures = run_with_peak(command)
    sys.stdout.write(completed.stdout), sys.stderr.write(completed.stderr)
    print(
        f"{wall:.1f} s wall, peak {figures['peak_tree_mb']:,.0f} MB for the process tree "
        f"(RSS summed); exit status {completed.returncode}; load average "
        f"{os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
    sys.exit(completed.returncode)


if __name__ == "__main__":
    main()
