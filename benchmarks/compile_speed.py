"""How fast `nanotasks compile` turns a mirror of SmolTalk into a file, download excluded.

Writes a synthetic SmolTalk snapshot (benchmarks/synthetic.py) unless one is given, compiles
`--only smoltalk` from it in this process, and prints the wall time and the CPU time of this
process and of its compressing workers, with the load average before and after: on a shared
machine the wall time counts the other processes' turns, the CPU time much less. And the peak
memory of this process and its workers, summed (nanotasks.compiler.memory). The
overlaps pass is timed on its own and left out of the rows/s. Then the file's bytes against
the same rows as zstd parquet (benchmarks/size_vs_parquet.py).

    python benchmarks/compile_speed.py [--train 460000] [--test 24000] [--jobs N] [--keep DIR]
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from size_vs_parquet import sizes
from synthetic import WORDS_PATH, make_snapshot

from nanotasks.compiler import build
from nanotasks.compiler.memory import PeakMemory

REPO = Path(__file__).resolve().parents[1]


def compile_timed(hub, db, jobs):
    """compile_file(--only smoltalk), with the seconds its overlaps pass took (from its first
    pair asked for to its last, as the compile stores them)."""
    overlap_rows, spent = build.overlap_rows, []

    def timed(*args):
        started = time.perf_counter()
        yield from overlap_rows(*args)
        spent.append(time.perf_counter() - started)

    build.overlap_rows = timed
    try:
        return build.compile_file(db, only=["smoltalk"], mirror=hub, jobs=jobs), spent[0]
    finally:
        build.overlap_rows = overlap_rows


def cpu_seconds(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=460_000, help="SmolTalk train conversations")
    parser.add_argument("--test", type=int, default=24_000, help="SmolTalk test conversations")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="compressing processes")
    parser.add_argument(
        "--keep", help="work in this directory and keep it; a snapshot already there is reused"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measure(Path(args.keep or tmp), args)


def measure(work, args):
    hub, db = work / "hub", work / "smoltalk.db"
    if not (hub / "HuggingFaceTB" / "smol-smoltalk").is_dir():
        words = next(
            p / WORDS_PATH
            for p in (REPO.parent / "shared" / "hub", REPO / "data" / "sample")
            if (p / WORDS_PATH).is_file()
        )
        make_snapshot(hub, words, args.train, args.test, mmlu_train=100, gsm8k_train=100)
    db.unlink(missing_ok=True)
    load, before = os.getloadavg()[0], cpu_seconds(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with PeakMemory() as memory:
        outcomes, overlaps = compile_timed(hub, db, args.jobs)
    wall = time.perf_counter() - started
    parent, workers = (
        cpu_seconds(resource.RUSAGE_SELF) - before,
        cpu_seconds(resource.RUSAGE_CHILDREN),
    )
    rows = sum(o.rows for o in outcomes)
    print(
        f"compile --only smoltalk --jobs {args.jobs}: {rows:,} rows, "
        f"load average {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    for o in outcomes:
        print(
            f"  {o.name}: {o.rows:,} rows in {o.seconds:.1f} s ({o.rows / o.seconds:,.0f} rows/s)"
        )
    print(f"  overlaps pass: {overlaps:.1f} s")
    print(f"peak memory (this process and its workers, summed): {memory.peak / 2**20:,.0f} MB")
    print(
        f"without the overlaps pass: {wall - overlaps:.1f} s wall, "
        f"{rows / (wall - overlaps):,.0f} rows/s"
    )
    print(
        f"CPU, overlaps pass included: {parent:.1f} s here + {workers:.1f} s in the workers "
        f"= {(parent + workers) / rows * 1e6:.0f} us a row"
    )
    whole = sizes(db, hub)[-1]
    print(
        f"file {whole['stored_bytes']:,} bytes, "
        f"zstd parquet of the same rows {whole['parquet_bytes']:,}: "
        f"{whole['ratio']}x"
    )


if __name__ == "__main__":
    main()
