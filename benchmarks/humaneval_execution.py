"""
Evaluations per second of the execution sandbox on HumanEval's canonical solutions, serial and batched.

    python benchmarks/humaneval_execution.py [--mirror DIR] [--count N] [--workers W]

--mirror is a directory in the hub's layout holding openai/openai_humaneval (the 164 real
problems are in ../shared/hub); without one it measures the 5 invented problems of
data/sample, and says so.
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


def canonical_programs(root):
    """The canonical solution of each problem with its tests, from the mirror at `root`."""
    rows = pq.read_table(root / HUMANEVAL).to_pylist()
    return [row["prompt"] + row["canonical_solution"] + "\n\n" + row["test"] + "\n" + f"check({row['entry_point']})" for row in rows]


def report(label, programs, run):
    started = time.perf_counter()
    results = run(programs)
    elapsed = time.perf_counter() - started
    passed = sum(result.passed for result in results)
    print(f"{label}: {len(programs) / elapsed:.1f} evaluations/s ({len(programs)} programs, {passed} passed, {elapsed:.2f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=REPO / "data" / "sample",
                        help="a hub-layout directory with openai/openai_humaneval (default: data/sample's 5 problems)")
    parser.add_argument("--count", type=int, default=None, help="use only the first N problems")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    if not (args.mirror / HUMANEVAL).exists():
        sys.exit(f"no HumanEval in {args.mirror}: expected {args.mirror / HUMANEVAL}")
    programs = canonical_programs(args.mirror)[:args.count]
    print(f"{len(programs)} canonical solutions from {args.mirror}")
    print(f"network isolation: {execute('pass').network_isolated}")
    report("serial", programs, lambda programs: [execute(program) for program in programs])
    report(f"batched ({args.workers} workers)", programs, lambda programs: execute_many(programs, workers=args.workers))
