"""
Evaluations per second of the execution sandbox on HumanEval's canonical solutions, serial and
batched, each evaluated as HumanEval.evaluate does: the solution as the program, the test in the
checker.

    python benchmarks/humaneval_execution.py [--mirror DIR] [--count N] [--workers W]

--mirror is a directory in the hub's layout holding openai/openai_humaneval (the 164 real
problems are in ../shared/hub); without one it measures the 5 invented problems of
data/sample, and says so.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from nanotasks.tasks.execution import execute, execute_many
from nanotasks.tasks.humaneval import normalise, problem_test, program_for

REPO = Path(__file__).resolve().parents[1]
HUMANEVAL = Path("openai") / "openai_humaneval" / "openai_humaneval" / "test-00000-of-00001.parquet"


def canonical_solutions(root):
    """(program, test) for the canonical solution of each problem, from the mirror at `root`."""
    conversations = [
        normalise(row, None).conversation for row in pq.read_table(root / HUMANEVAL).to_pylist()
    ]
    return [
        (
            program_for(conversation, conversation["messages"][1]["content"]),
            problem_test(conversation),
        )
        for conversation in conversations
    ]


def children_cpu_seconds():
    """CPU time of every process this one has waited for, and theirs: all the sandboxes' work."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def report(label, solutions, run):
    """Evaluations per second, and CPU time per evaluation, which other jobs on the machine
    disturb far less than the wall time."""
    started, cpu_before = time.perf_counter(), children_cpu_seconds()
    results = run([program for program, _ in solutions], [test for _, test in solutions])
    elapsed = time.perf_counter() - started
    cpu_ms = (children_cpu_seconds() - cpu_before) * 1000 / len(solutions)
    passed = sum(result.passed for result in results)
    print(
        f"{label}: {len(solutions) / elapsed:.1f} evaluations/s "
        f"({len(solutions)} programs, {passed} passed, {elapsed:.2f} s, {cpu_ms:.1f} ms CPU each)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "--mirror",
        type=Path,
        default=REPO / "data" / "sample",
        help="a hub-layout directory with openai/openai_humaneval "
        "(default: data/sample's 5 problems)",
    )
    parser.add_argument("--count", type=int, default=None, help="use only the first N problems")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    if not (args.mirror / HUMANEVAL).exists():
        sys.exit(f"no HumanEval in {args.mirror}: expected {args.mirror / HUMANEVAL}")
    solutions = canonical_solutions(args.mirror)[: args.count]
    print(f"{len(solutions)} canonical solutions from {args.mirror}")
    print(f"network isolation: {execute('pass').network_isolated}")
    report(
        "serial",
        solutions,
        lambda programs, tests: [
            execute(program, test=test) for program, test in zip(programs, tests, strict=True)
        ],
    )
    report(
        f"batched ({args.workers} workers)",
        solutions,
        lambda programs, tests: execute_many(programs, workers=args.workers, tests=tests),
    )
