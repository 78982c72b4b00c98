"""How long TaskMixture's order takes to build: tasks.common.shuffled_order against shuffling
a list of n items with random.Random(42).shuffle, which it must equal.

Run: python benchmarks/mixture_order.py [n ...]   (default: 10K, 100K, 1M, 5M)
"""

import random
import sys
import time
import tracemalloc
from array import array

from nanotasks.tasks.common import shuffled_order


def best_of(repeats, function, *args):
    seconds = []
    for _ in range(repeats):
        started = time.process_time()  # CPU time: the machine may be shared
        function(*args)
        seconds.append(time.process_time() - started)
    return min(seconds)


def shuffle_array(n):
    order = array("l", range(n))
    random.Random(42).shuffle(order)
    return order


def peak_mb(function, *args):
    tracemalloc.start()
    function(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def main(sizes):
    print(
        f"{'n':>10}  {'shuffled_order s':>16}  {'Random.shuffle s':>16}  "
        f"{'speed-up':>8}  {'peak MB':>7}"
    )
    for n in sizes:
        repeats = 5 if n <= 1_000_000 else 2
        fast, reference = best_of(repeats, shuffled_order, n), best_of(repeats, shuffle_array, n)
        print(
            f"{n:>10,}  {fast:>16.3f}  {reference:>16.3f}  {reference / fast:>7.1f}x  "
            f"{peak_mb(shuffled_order, n):>7.1f}"
        )


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [10_000, 100_000, 1_000_000, 5_000_000])
