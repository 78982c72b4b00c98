"""
Evaluations per second of the execution sandbox on HumanEval's canonical solutions, serial and
batched, each evaluated as HumanEval.evaluate does: the solution as the program, the test in the checker.

    python benchmarks/humaneval_execution.py [--count N] [--workers W]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
from nanotasks.tasks.execution import execute, execute_many
from nanotasks.tasks.humaneval import normalise, program_for, problem_test

HUMANEVAL = Path("openai") / "openai_humaneval" / "openai_humaneval" / "test-00000-of-00001.parquet"


def canonical_solutions():
    """(program, test) for the canonical solution of each problem, from ../shared/hub or else data/sample."""
    for root in (REPO.parent / "shared" / "hub", REPO / "data" / "sample"):
        if (root / HUMANEVAL).exists():
            conversations = [normalise(row, None).conversation for row in pq.read_table(root / HUMANEVAL).to_pylist()]
            return [(program_for(conversation, conversation["messages"][1]["content"]), problem_test(conversation))
                    for conversation in conversations]
    return []


def report(label, solutions, run):
    started = time.perf_counter()
    results = run([program for program, _ in solutions], [test for _, test in solutions])
    elapsed = time.perf_counter() - started
    passed = sum(result.passed for result in results)
    print(f"{label}: {len(solutions) / elapsed:.1f} evaluations/s ({len(solutions)} programs, {passed} passed, {elapsed:.2f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--count", type=int, default=None, help="use only the first N problems")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    solutions = canonical_solutions()[:args.count]
    if not solutions:
        sys.exit("no HumanEval data found in ../shared/hub or data/sample")
    print(f"network isolation: {execute('pass').network_isolated}")
    report("serial", solutions, lambda programs, tests: [execute(program, test=test) for program, test in zip(programs, tests)])
    report(f"batched ({args.workers} workers)", solutions,
           lambda programs, tests: execute_many(programs, workers=args.workers, tests=tests))
