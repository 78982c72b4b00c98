"""
Evaluations per second of the execution sandbox on HumanEval's canonical solutions, serial and batched.

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

HUMANEVAL = Path("openai") / "openai_humaneval" / "openai_humaneval" / "test-00000-of-00001.parquet"


def canonical_programs():
    """The canonical solution of each problem with its tests, from ../shared/hub or else data/sample."""
    for root in (REPO.parent / "shared" / "hub", REPO / "data" / "sample"):
        if (root / HUMANEVAL).exists():
            rows = pq.read_table(root / HUMANEVAL).to_pylist()
            return [row["prompt"] + row["canonical_solution"] + "\n\n" + row["test"] + "\n" + f"check({row['entry_point']})" for row in rows]
    return []


def report(label, programs, run):
    started = time.perf_counter()
    results = run(programs)
    elapsed = time.perf_counter() - started
    passed = sum(result.passed for result in results)
    print(f"{label}: {len(programs) / elapsed:.1f} evaluations/s ({len(programs)} programs, {passed} passed, {elapsed:.2f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--count", type=int, default=None, help="use only the first N problems")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    programs = canonical_programs()[:args.count]
    if not programs:
        sys.exit("no HumanEval data found in ../shared/hub or data/sample")
    print(f"network isolation: {execute('pass').network_isolated}")
    report("serial", programs, lambda programs: [execute(program) for program in programs])
    report(f"batched ({args.workers} workers)", programs, lambda programs: execute_many(programs, workers=args.workers))
