"""kill -9 of a compile (what a batch scheduler does at a time limit) leaves no process behind."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import NANOTASKS

ROWS = 20_000  # a split of more than one chunk goes to the worker pool, at the slow level 19


def session_processes(session):
    """Live (not zombie) processes of that session, whoever their parent is now."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == session:
            found.append(int(entry.name))
    return found


def wait_for(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_workers_die_with_a_killed_compile(tmp_path):
    chats = tmp_path / "chats.jsonl"
    with chats.open("w") as file:
        for i in range(ROWS):
            file.write(json.dumps([{"role": "user", "content": f"Question {i}: " + "why is the sky blue? " * (i % 13)},
                                   {"role": "assistant", "content": f"Answer {i}: " + "light scatters. " * (i % 29)}]) + "\n")
    command = [*NANOTASKS, "compile", "--only", "customjson", "--custom", f"chats={chats}", "--jobs", "2", "--db", tmp_path / "x.db"]
    compile = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # the compile, its two workers and multiprocessing's resource tracker
        assert wait_for(lambda: len(session_processes(compile.pid)) >= 4), "the worker pool never started"
        compile.kill()
        compile.wait()
        assert wait_for(lambda: session_processes(compile.pid) == []), session_processes(compile.pid)
    finally:
        for pid in session_processes(compile.pid):
            os.kill(pid, signal.SIGKILL)
