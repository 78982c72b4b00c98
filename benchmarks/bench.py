"""
nanotasks against Hugging Face datasets and in-memory Arrow, on the same rows, in one run.

    python benchmarks/bench.py                      # synthetic SmolTalk at full scale (~3 min)
    python benchmarks/bench.py --train 20000 --test 2000 --mmlu 5000   # a quick run
    python benchmarks/bench.py --mirror ../shared/hub --json

Makes a synthetic snapshot in the hub mirror layout (benchmarks/synthetic.py; with --mirror,
the sources the mirror has are used instead), compiles it, and measures three ways of
serving SmolTalk's train split in task order (the order of `.shuffle(seed=42)`):
  nanotasks  SmolTalk("train") over the compiled file
  hf         datasets.load_dataset(<snapshot dir>, "default", split="train").shuffle(seed=42),
             read from its own cache (a second load; the first, converting, is timed apart)
  arrow      the split's parquet files read whole with pyarrow, indexed through the same
             permutation, each example converted to Python (as_py), as a loader over it would
Every process measured is a fresh one: its open time includes importing the library, and
its peak RSS is its own. No network is used.

A script rather than a `nanotasks` command: it measures libraries nanotasks does not depend
on (datasets) and writes test data, which is work for whoever checks the claims, not for
someone loading tasks.
"""

import argparse
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMOLTALK = "HuggingFaceTB/smol-smoltalk"
SYSTEMS = ("arrow", "hf", "nanotasks")
BASELINES = ("arrow", "hf")
MIXTURE_SPELLING = {"SimpleSpelling": 200_000, "SpellingBee": 80_000}


# ---------------------------------------------------------------------------------------------
# What runs in the measured processes. Only the standard library is imported before timing.

def peak_rss_mb():
    """This process's peak resident memory. Linux's ru_maxrss survives exec, so it would count
    the process that started this one: VmHWM does not."""
    status = Path("/proc/self/status")
    if status.exists():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # macOS: bytes


def open_split(system, config):
    """(length, get(i) -> conversation dict, sequential() -> iterator over all in order)."""
    if system == "nanotasks":
        from nanotasks.tasks.smoltalk import SmolTalk
        task = SmolTalk("train", db=config["db"])
        return len(task), task.__getitem__, lambda: (task[i] for i in range(len(task)))
    if system == "hf":
        ds = hf_load(config, SMOLTALK, "default", "train")
        return len(ds), ds.__getitem__, lambda: iter(ds)
    table, order = arrow_load(config, SMOLTALK, "default", "train")
    messages = table.column("messages")

    def get(i):
        return {"messages": messages[order[i]].as_py()}
    # (a batched take would be no faster: Arrow concatenates every chunk of a nested column on each take)
    return len(order), get, lambda: (get(i) for i in range(len(order)))


def hf_load(config, repo, name, split):
    import datasets
    datasets.disable_progress_bars()
    return datasets.load_dataset(str(Path(config["hub"]) / repo), name, split=split,
                                 cache_dir=config["hf_cache"]).shuffle(seed=42)


def arrow_load(config, repo, name, split):
    """The whole split as one in-memory Arrow table, and the permutation as a list."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from nanotasks.compiler.fetch import data_file_patterns
    directory = Path(config["hub"]) / repo
    files = sorted({p for pattern in data_file_patterns(directory, repo, name, split)
                    for p in directory.glob(pattern)})
    table = pa.concat_tables(pq.read_table(path) for path in files)
    return table, np.random.default_rng(42).permutation(table.num_rows).tolist()


def probe_reads(system, config):
    started = time.perf_counter()
    length, get, sequential = open_split(system, config)
    get(0)
    figures = {"open_s": time.perf_counter() - started, "rss_open_mb": peak_rss_mb()}
    rng = random.Random(1)
    indices = [rng.randrange(length) for _ in range(config["reads"])]
    clock, times = time.perf_counter_ns, []
    for i in indices:
        before = clock()
        get(i)
        times.append(clock() - before)
    times.sort()
    figures.update(random_mean_us=sum(times) / len(times) / 1000,
                   random_p99_us=times[int(len(times) * 0.99)] / 1000,
                   rss_reads_mb=peak_rss_mb())
    started = time.perf_counter()
    count = sum(1 for _ in sequential())
    figures["sequential_per_s"] = count / (time.perf_counter() - started)
    assert count == length, (count, length)
    return figures


def probe_parallel(system, config):
    """`workers` forked processes (as DataLoader workers are) read random examples of the
    opened split at once; examples per second over all of them."""
    import multiprocessing
    length, get, _ = open_split(system, config)
    get(0)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(config["workers"] + 1)
    results = context.Queue()

    def work(seed):
        rng = random.Random(seed)
        indices = [rng.randrange(length) for _ in range(config["reads"])]
        barrier.wait()
        for i in indices:
            get(i)
        results.put(time.perf_counter())

    processes = [context.Process(target=work, args=(seed,)) for seed in range(config["workers"])]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    finished = max(results.get() for _ in processes)
    for process in processes:
        process.join()
    return {"parallel_per_s": config["workers"] * config["reads"] / (finished - started)}


def probe_mixture(system, config):
    """nanochat's SFT mixture: SmolTalk train, MMLU auxiliary_train, GSM8K main train twice,
    SimpleSpelling 200K and SpellingBee 80K, ready to serve an example of each task."""
    started = time.perf_counter()
    if system == "nanotasks":
        from nanotasks.tasks.common import TaskMixture
        from nanotasks.tasks.gsm8k import GSM8K
        from nanotasks.tasks.mmlu import MMLU
        from nanotasks.tasks.smoltalk import SmolTalk
        from nanotasks.tasks.spellingbee import SimpleSpelling, SpellingBee
        db = config["db"]
        tasks = [SmolTalk("train", db=db), MMLU("auxiliary_train", "train", db=db),
                 GSM8K("main", "train", db=db), GSM8K("main", "train", db=db),
                 SimpleSpelling(size=MIXTURE_SPELLING["SimpleSpelling"], db=db),
                 SpellingBee(size=MIXTURE_SPELLING["SpellingBee"], db=db)]
        mixture = TaskMixture(tasks)
        for task in tasks:
            task[0]
        mixture[0]
    else:
        load = hf_load if system == "hf" else arrow_load
        splits = [(SMOLTALK, "default", "train"), ("cais/mmlu", "auxiliary_train", "train"),
                  ("openai/gsm8k", "main", "train")]
        loaded = {key: load(config, *key) for key in splits}
        lengths = [len(loaded[key] if system == "hf" else loaded[key][1]) for key in splits]
        lengths.insert(3, lengths[2])  # GSM8K twice
        words_path = Path(config["hub"]) / "dwyl" / "english-words" / "words_alpha.txt"
        for name, size in MIXTURE_SPELLING.items():  # each spelling task loads the list, as nanochat's do
            words = [w.strip() for w in words_path.read_text().splitlines() if w.strip()]
            if name == "SimpleSpelling":
                random.Random(42).shuffle(words)
            lengths.append(size)
        # nanochat's TaskMixture: every (task, index) pair in a list, shuffled
        index_map = [(task, i) for task, length in enumerate(lengths) for i in range(length)]
        random.Random(42).shuffle(index_map)
    return {"mixture_s": time.perf_counter() - started, "mixture_rss_mb": peak_rss_mb()}


PROBES = {"reads": probe_reads, "parallel": probe_parallel, "mixture": probe_mixture}


# ---------------------------------------------------------------------------------------------
# The driver: makes the data, compiles it, runs each probe in a fresh process.

def run(command, env, check=True):
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, command))}\n{result.stdout}\n{result.stderr}")
    return result, time.perf_counter() - started


def probe(kind, system, config, env):
    result, _ = run([sys.executable, __file__, "--probe", json.dumps([kind, system, config])], env)
    return json.loads(result.stdout.splitlines()[-1])


def directory_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and not p.is_symlink())


def measure(args, work):
    sys.path.insert(0, str(Path(__file__).parent))
    from size_vs_parquet import sizes
    from synthetic import make_snapshot
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HF_HOME=str(work / "hf-home"), TOKENIZERS_PARALLELISM="false")
    hub = work / "hub"
    words = next(p for p in (Path(args.mirror or REPO.parent / "shared" / "hub"), REPO / "data" / "sample")
                 if (p / "dwyl" / "english-words" / "words_alpha.txt").is_file())
    log(f"making the snapshot in {hub}")
    shutil.rmtree(hub, ignore_errors=True)
    started = time.perf_counter()
    origin = make_snapshot(hub, words / "dwyl" / "english-words" / "words_alpha.txt", args.train,
                           args.test, args.mmlu, args.gsm8k, mirror=args.mirror)
    report = {"machine": machine(), "origin": origin, "snapshot_s": time.perf_counter() - started,
              "options": {k: v for k, v in vars(args).items() if k != "json"}}

    log("compiling SmolTalk with 1 job, then all cores")
    compile_rows = args.train + args.test
    compiled = {}
    for jobs, name in ((1, "one.db"), (os.cpu_count(), "nanotasks.db")):
        _, seconds = run([sys.executable, "-m", "nanotasks", "compile", "--only", "smoltalk", "--mirror", hub,
                          "--db", work / name, "--jobs", str(jobs)], env)
        compiled[jobs] = seconds
    size = next(e for e in sizes(work / "one.db", hub) if e["name"] == "smoltalk default/train")
    report["compile"] = {"rows": compile_rows, "rows_per_s_1_job": compile_rows / compiled[1],
                         f"rows_per_s_{os.cpu_count()}_jobs": compile_rows / compiled[os.cpu_count()],
                         "train_stored_bytes": size["stored_bytes"], "train_parquet_zstd_bytes": size["parquet_bytes"],
                         "bytes_vs_parquet": size["stored_bytes"] / size["parquet_bytes"]}
    db = work / "nanotasks.db"
    result, _ = run([sys.executable, "-m", "nanotasks", "compile", "--only", "mmlu", "--only", "gsm8k",
                     "--only", "spellingbee", "--mirror", hub, "--db", db], env, check=False)
    if "wrote" not in result.stdout:  # the other MMLU and GSM8K splits are absent: expected
        sys.exit(f"compiling the mixture's sources failed:\n{result.stdout}\n{result.stderr}")

    config = {"db": str(db), "hub": str(hub), "hf_cache": str(work / "hf-cache"), "reads": args.reads,
              "workers": args.workers}
    log("datasets: first load of each split (converting parquet into its cache)")
    convert = ("import datasets, sys; datasets.disable_progress_bars(); "
               "datasets.load_dataset(sys.argv[1], sys.argv[2], split=sys.argv[3], cache_dir=sys.argv[4])")
    hf_first = {}
    for repo, name, split in ((SMOLTALK, "default", "train"), ("cais/mmlu", "auxiliary_train", "train"),
                              ("openai/gsm8k", "main", "train")):
        _, hf_first[repo] = run([sys.executable, "-c", convert, hub / repo, name, split, config["hf_cache"]], env)
    report["hf_first_load_s"] = hf_first[SMOLTALK]

    systems = {system: {} for system in SYSTEMS}
    for kind in PROBES:
        for system in SYSTEMS:
            log(f"{kind}: {system}")
            systems[system].update(probe(kind, system, config, env))
    systems["nanotasks"]["disk_bytes"] = (work / "one.db").stat().st_size
    systems["hf"]["disk_bytes"] = directory_bytes(Path(config["hf_cache"]) / SMOLTALK.split("/")[1])
    systems["arrow"]["disk_bytes"] = directory_bytes(Path(hub / SMOLTALK).resolve())
    report["systems"] = systems
    return report


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_average": [round(x, 1) for x in os.getloadavg()]}


# Each figure: (label, key, format, better when higher)
FIGURES = [("open SmolTalk train, fresh process (s)", "open_s", "{:.3f}", False),
           ("peak RSS after open (MB)", "rss_open_mb", "{:.0f}", False),
           ("peak RSS after open + random reads (MB)", "rss_reads_mb", "{:.0f}", False),
           ("random example, mean (us)", "random_mean_us", "{:.1f}", False),
           ("random example, p99 (us)", "random_p99_us", "{:.1f}", False),
           ("sequential pass (examples/s)", "sequential_per_s", "{:,.0f}", True),
           ("{workers} processes reading at random (examples/s)", "parallel_per_s", "{:,.0f}", True),
           ("build the SFT TaskMixture (s)", "mixture_s", "{:.2f}", False),
           ("peak RSS of the mixture (MB)", "mixture_rss_mb", "{:.0f}", False),
           ("bytes on disk (SmolTalk train+test)", "disk_bytes", "{:,}", False)]


def table(report):
    systems, options = report["systems"], report["options"]
    headers = ["figure", "in-memory Arrow", "HF datasets (cached)", "nanotasks", "vs Arrow", "vs HF"]
    rows = []
    for label, key, form, higher in FIGURES:
        values = [systems[s][key] for s in SYSTEMS]
        ratios = [_ratio(systems["nanotasks"][key], systems[b][key], higher) for b in BASELINES]
        rows.append([label.format(**options), *(form.format(v) for v in values), *ratios])
    c = report["compile"]
    jobs = report["machine"]["cores"]
    rows.append([f"compile, rows/s, 1 core / {jobs} cores", "-", "-",
                 f"{c['rows_per_s_1_job']:,.0f} / {c[f'rows_per_s_{jobs}_jobs']:,.0f}", "", ""])
    rows.append(["SmolTalk train bytes vs zstd parquet of the same rows", "-", "-",
                 f"{c['train_stored_bytes']:,} / {c['train_parquet_zstd_bytes']:,} = {c['bytes_vs_parquet']:.2f}x",
                 "", ""])
    rows.append(["first load (conversion into the cache) (s)", "-", f"{report['hf_first_load_s']:.1f}", "", "", ""])
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["| " + " | ".join(str(cell).ljust(w) for cell, w in zip(row, widths)) + " |"
             for row in [headers, ["-" * w for w in widths], *rows]]
    m = report["machine"]
    lines.append(f"\n{options['train']:,} train / {options['test']:,} test conversations ({report['origin']}); "
                 f"{options['reads']:,} random reads; {m['cores']} x {m['cpu']}, Python {m['python']}, "
                 f"load average at the end {m['load_average']}")
    lines.append("vs X: how many times better nanotasks is than X (above 1: nanotasks wins)")
    return "\n".join(lines)


def _ratio(ours, theirs, higher):
    if not ours or not theirs:
        return ""
    return f"{(ours / theirs if higher else theirs / ours):.1f}x"


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--train", type=int, default=460_000, help="SmolTalk train conversations")
    parser.add_argument("--test", type=int, default=24_000, help="SmolTalk test conversations")
    parser.add_argument("--mmlu", type=int, default=99_842, help="MMLU auxiliary_train rows")
    parser.add_argument("--gsm8k", type=int, default=7_473, help="GSM8K main train rows")
    parser.add_argument("--reads", type=int, default=20_000, help="random reads per process")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes reading at once")
    parser.add_argument("--mirror", help="use the sources this mirror has (e.g. ../shared/hub) instead "
                                         "of synthetic ones")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--keep", help="work in this directory and keep it (default: a temporary one)")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # internal: one measured process
    args = parser.parse_args()
    if args.probe:
        kind, system, config = json.loads(args.probe)
        print(json.dumps(PROBES[kind](system, config)))
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="nanotasks-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = measure(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
