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
its peak RSS is its own. Each figure is printed with the ratio between the systems measured
in the same run and the machine's load average when it was taken: on a shared machine only
the ratios compare across runs. No network is used.

Memory is reported twice: RSS, and the anonymous memory (`Anonymous:` in
/proc/self/smaps_rollup) the process allocated itself. nanotasks reads its file through a
memory map, so the pages it touched count in its RSS although they are the page cache, shared
with every other process reading the file.

A script rather than a `nanotasks` command: it measures libraries nanotasks does not depend
on (datasets) and writes test data, which is work for whoever checks the claims, not for
someone loading tasks.
"""

import argparse
import importlib
import importlib.util
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
SCALE_TEST = 2_000  # SmolTalk test rows beside each scale's train split
ARROW_MAX_ROWS = 2_000_000  # the largest scale whose split in-memory Arrow is measured on
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


def memory_mb():
    """This process's resident memory now, and the part of it that is anonymous: what it
    allocated itself, as opposed to pages of files it maps (shared page cache)."""
    rollup = Path("/proc/self/smaps_rollup")
    if not rollup.exists():
        return {}
    fields = dict(line.split(":", 1) for line in rollup.read_text().splitlines()[1:])
    return {
        key: int(fields[field].split()[0]) / 1024
        for key, field in (("rss_now_mb", "Rss"), ("anonymous_mb", "Anonymous"))
    }


def open_split(system, config):
    """(dataset, sequential() -> iterator over all in order): dataset[i] is the conversation
    at i, as a DataLoader indexes it."""
    if system == "nanotasks":
        from nanotasks.tasks.smoltalk import SmolTalk

        task = SmolTalk("train", db=config["db"])
        return task, lambda: (task[i] for i in range(len(task)))
    if system == "hf":
        ds = hf_load(config, SMOLTALK, "default", "train")
        return ds, lambda: iter(ds)
    table, order = arrow_load(config, SMOLTALK, "default", "train")
    split = ArrowSplit(table.column("messages"), order)
    return split, lambda: (split[i] for i in range(len(split)))


class ArrowSplit:
    """nanochat's SmolTalk over an in-memory Arrow column, through the permutation."""

    def __init__(self, messages, order):
        self.messages, self.order = messages, order

    def __len__(self):
        return len(self.order)

    def __getitem__(self, i):
        # (a batched take would be no faster: Arrow concatenates every chunk of a nested column
        # on each take)
        return {"messages": self.messages[self.order[i]].as_py()}


def hf_load(config, repo, name, split):
    import datasets

    datasets.disable_progress_bars()
    return datasets.load_dataset(
        str(Path(config["hub"]) / repo), name, split=split, cache_dir=config["hf_cache"]
    ).shuffle(seed=42)


def arrow_load(config, repo, name, split):
    """The whole split as one in-memory Arrow table, and the permutation as a list."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nanotasks.compiler.fetch import data_file_patterns

    directory = Path(config["hub"]) / repo
    files = sorted(
        {
            p
            for pattern in data_file_patterns(directory, repo, name, split)
            for p in directory.glob(pattern)
        }
    )
    table = pa.concat_tables(pq.read_table(path) for path in files)
    return table, np.random.default_rng(42).permutation(table.num_rows).tolist()


def timed_reads(get, length, reads, seed=1, passes=3):
    """Of `passes` rounds of `reads` random get(i) (other indices each round), in microseconds:
    the best round's mean CPU time, and the mean and the p99 of all the wall times. On a
    shared machine the wall-clock mean counts the time other processes held the core, which
    differs between the systems' turns; CPU time does not (but misses waiting for the disk),
    and the best of three rounds leaves out a round another process disturbed."""
    clock, times, cpu = time.perf_counter_ns, [], []
    for round_seed in range(seed, seed + passes):
        rng = random.Random(round_seed)
        indices = [rng.randrange(length) for _ in range(reads)]
        started = time.process_time()
        for i in indices:
            before = clock()
            get(i)
            times.append(clock() - before)
        cpu.append(time.process_time() - started)
    times.sort()
    return (
        min(cpu) / reads * 1e6,
        sum(times) / len(times) / 1000,
        times[int(len(times) * 0.99)] / 1000,
    )


def probe_reads(system, config):
    started = time.perf_counter()
    dataset, sequential = open_split(system, config)
    dataset[0]
    figures = {"open_ms": (time.perf_counter() - started) * 1000, "rss_open_mb": peak_rss_mb()}
    mean, _, p99 = timed_reads(dataset.__getitem__, len(dataset), config["reads"])
    figures.update(
        random_mean_us=mean, random_p99_us=p99, rss_reads_mb=peak_rss_mb(), **memory_mb()
    )
    if not config.get("sequential", True):
        return figures
    started = time.perf_counter()
    count = sum(1 for _ in sequential())
    figures["sequential_per_s"] = count / (time.perf_counter() - started)
    assert count == len(dataset), (count, len(dataset))
    return figures


# What each system reads with, imported before the clock starts in probe_open_imported
LIBRARIES = {
    "nanotasks": ("orjson", "sqlite3", "zstandard"),
    "hf": ("datasets",),
    "arrow": ("numpy", "pyarrow.parquet"),
}


def probe_open_imported(system, config):
    """Open plus the first example in a process that has already imported the libraries the
    system reads with, as a trainer's process has (torch imports most of what they import):
    what opening itself costs."""
    for name in LIBRARIES[system]:
        importlib.import_module(name)
    started = time.perf_counter()
    dataset, _ = open_split(system, config)
    dataset[0]
    return {"open_imported_ms": (time.perf_counter() - started) * 1000}


def probe_cold(system, config):
    """Random reads with the page cache of the files read evicted first: what the first pass
    after a reboot (or on a machine short of memory) costs. In-memory Arrow has nothing to
    evict once loaded: its cold cost is its open time."""
    if system == "arrow":
        return {}
    files = (
        [config["db"]]
        if system == "nanotasks"
        else [p for p in Path(config["hf_cache"]).rglob("*.arrow")]
    )
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(
            fd, 0, 0, os.POSIX_FADV_DONTNEED
        )  # only this file's clean pages: no root needed
        os.close(fd)
    dataset, _ = open_split(system, config)
    _, wall, _ = timed_reads(
        dataset.__getitem__, len(dataset), config["cold_reads"], seed=10, passes=1
    )
    return {"random_cold_us": wall}


def probe_parallel(system, config):
    """`workers` forked processes (as DataLoader workers are) read random examples of the
    opened split at once; examples per second over all of them."""
    import multiprocessing

    dataset, _ = open_split(system, config)
    get, length = dataset.__getitem__, len(dataset)
    get(0)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(config["workers"] + 1)
    results = context.Queue()

    def work(seed):
        rng = random.Random(seed)
        indices = [rng.randrange(length) for _ in range(config["reads"])]
        barrier.wait()
        started = time.perf_counter()
        for i in indices:
            get(i)
        results.put((started, time.perf_counter()))

    processes = [context.Process(target=work, args=(seed,)) for seed in range(config["workers"])]
    for process in processes:
        process.start()
    barrier.wait()
    # The workers' own clocks: the parent may be descheduled past the barrier until after
    # fast workers have finished, which once made this rate negative.
    spans = [results.get() for _ in processes]
    for process in processes:
        process.join()
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    return {"parallel_per_s": config["workers"] * config["reads"] / elapsed}


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
        tasks = [
            SmolTalk("train", db=db),
            MMLU("auxiliary_train", "train", db=db),
            GSM8K("main", "train", db=db),
            GSM8K("main", "train", db=db),
            SimpleSpelling(size=MIXTURE_SPELLING["SimpleSpelling"], db=db),
            SpellingBee(size=MIXTURE_SPELLING["SpellingBee"], db=db),
        ]
        mixture = TaskMixture(tasks)
        for task in tasks:
            task[0]
        mixture[0]
    else:
        load = hf_load if system == "hf" else arrow_load
        splits = [
            (SMOLTALK, "default", "train"),
            ("cais/mmlu", "auxiliary_train", "train"),
            ("openai/gsm8k", "main", "train"),
        ]
        loaded = {key: load(config, *key) for key in splits}
        lengths = [len(loaded[key] if system == "hf" else loaded[key][1]) for key in splits]
        lengths.insert(3, lengths[2])  # GSM8K twice
        words_path = Path(config["hub"]) / "dwyl" / "english-words" / "words_alpha.txt"
        for (
            name,
            size,
        ) in MIXTURE_SPELLING.items():  # each spelling task loads the list, as nanochat's do
            words = [w.strip() for w in words_path.read_text().splitlines() if w.strip()]
            if name == "SimpleSpelling":
                random.Random(42).shuffle(words)
            lengths.append(size)
        # nanochat's TaskMixture: every (task, index) pair in a list, shuffled
        index_map = [(task, i) for task, length in enumerate(lengths) for i in range(length)]
        random.Random(42).shuffle(index_map)
    return {"mixture_s": time.perf_counter() - started, "mixture_rss_mb": peak_rss_mb()}


def unchanged(batch):
    return batch


def probe_loader(system, config):
    """A torch DataLoader over the split, as a trainer runs it: 2 workers, batches of 64 drawn
    at random, under fork and under spawn. Time to the first batch (workers started, the
    dataset sent to them under spawn) and examples/s over the batches after it."""
    import itertools

    import torch

    dataset, _ = open_split(system, config)
    dataset[0]
    figures = {}
    for context in ("fork", "spawn"):
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=64,
            shuffle=True,
            num_workers=2,
            collate_fn=unchanged,
            multiprocessing_context=context,
            generator=torch.Generator().manual_seed(0),
        )
        started = time.perf_counter()
        batches = iter(loader)
        next(batches)
        figures[f"loader_{context}_first_s"] = time.perf_counter() - started
        started = time.perf_counter()
        count = sum(len(batch) for batch in itertools.islice(batches, config["reads"] // 64))
        figures[f"loader_{context}_per_s"] = count / (time.perf_counter() - started)
        del batches  # stops its workers
    return figures


# The small evaluation splits, read from the real sources in ../shared/hub when it is there:
# (nanotasks Task, its arguments, hub repo, config, split)
SMALL = [
    ("gsm8k.GSM8K", ("main", "test"), "openai/gsm8k", "main", "test"),
    ("mmlu.MMLU", ("all", "test"), "cais/mmlu", "all", "test"),
    ("humaneval.HumanEval", (), "openai/openai_humaneval", "openai_humaneval", "test"),
]


def probe_small(system, config):
    """Random reads of each small split: nanotasks' Task, or what nanochat's Task does per
    example over an in-memory Arrow table: the row as a dict, made into the conversation by
    the same conversion (the benchmark's normalise, which nanotasks runs at compile time)."""
    from nanotasks.tasks import benchmark

    figures = {}
    for task_name, arguments, repo, name, split in SMALL:
        module, cls = task_name.rsplit(".", 1)
        if system == "nanotasks":
            task = getattr(importlib.import_module(f"nanotasks.tasks.{module}"), cls)(
                *arguments, db=config["small_db"]
            )
            get, length = task.__getitem__, len(task)
        else:
            table, order = arrow_load(dict(config, hub=config["small_hub"]), repo, name, split)
            columns = {column: table.column(column) for column in table.column_names}
            normalise = benchmark(module).normalise
            source = next(
                s for s in benchmark(module).sources if (s.config, s.source_split) == (name, split)
            )

            def get(i, columns=columns, order=order, normalise=normalise, source=source):
                row = {column: values[order[i]].as_py() for column, values in columns.items()}
                return normalise(row, source).conversation

            length = len(order)
        get(0)
        figures[f"small_{repo}_us"] = timed_reads(get, length, config["reads"])[0]
    return figures


PROBES = {
    "reads": probe_reads,
    "open": probe_open_imported,
    "cold": probe_cold,
    "parallel": probe_parallel,
    "loader": probe_loader,
    "mixture": probe_mixture,
    "small": probe_small,
}


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
    return sum(
        p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and not p.is_symlink()
    )


def measure(args, work):
    sys.path.insert(0, str(Path(__file__).parent))
    from size_vs_parquet import sizes
    from synthetic import make_snapshot

    env, words = prepared(args, work)
    hub = work / "hub"
    log(f"making the snapshot in {hub}")
    shutil.rmtree(hub, ignore_errors=True)
    started = time.perf_counter()
    origin = make_snapshot(
        hub, words, args.train, args.test, args.mmlu, args.gsm8k, mirror=args.mirror
    )
    report = {
        "machine": machine(),
        "origin": origin,
        "snapshot_s": time.perf_counter() - started,
        "options": {k: v for k, v in vars(args).items() if k != "json"},
    }

    log("compiling SmolTalk with 1 job, then all cores")
    compile_rows = args.train + args.test
    compiled, loads = {}, {}
    for jobs, name in ((1, "one.db"), (os.cpu_count(), "nanotasks.db")):
        _, seconds = run(
            [
                sys.executable,
                "-m",
                "nanotasks",
                "compile",
                "--only",
                "smoltalk",
                "--mirror",
                hub,
                "--db",
                work / name,
                "--jobs",
                str(jobs),
            ],
            env,
        )
        compiled[jobs], loads[jobs] = seconds, os.getloadavg()[0]
    same_bytes = (work / "one.db").read_bytes() == (work / "nanotasks.db").read_bytes()
    log("timing the overlaps pass alone")
    overlaps, _ = run([sys.executable, "-c", OVERLAPS, work / "one.db"], env)
    entries = {e["name"]: e for e in sizes(work / "one.db", hub)}
    size, whole = entries["smoltalk default/train"], entries["whole file"]
    overlaps_s = float(overlaps.stdout)
    report["compile"] = {
        "rows": compile_rows,
        "rows_per_s_1_job": compile_rows / compiled[1],
        f"rows_per_s_{os.cpu_count()}_jobs": compile_rows / compiled[os.cpu_count()],
        f"rows_per_s_{os.cpu_count()}_jobs_without_overlaps": compile_rows
        / max(compiled[os.cpu_count()] - overlaps_s, 1e-3),
        "load_1_job": loads[1],
        f"load_{os.cpu_count()}_jobs": loads[os.cpu_count()],
        "overlaps_s": overlaps_s,
        "same_bytes_whatever_jobs": same_bytes,
        "train_stored_bytes": size["stored_bytes"],
        "train_parquet_zstd_bytes": size["parquet_bytes"],
        "bytes_vs_parquet": size["stored_bytes"] / size["parquet_bytes"],
        "file_bytes": whole["stored_bytes"],
        "file_parquet_zstd_bytes": whole["parquet_bytes"],
        "file_vs_parquet": whole["stored_bytes"] / whole["parquet_bytes"],
    }
    db = work / "nanotasks.db"
    result, _ = run(
        [
            sys.executable,
            "-m",
            "nanotasks",
            "compile",
            "--only",
            "mmlu",
            "--only",
            "gsm8k",
            "--only",
            "spellingbee",
            "--mirror",
            hub,
            "--db",
            db,
        ],
        env,
        check=False,
    )
    if "wrote" not in result.stdout:  # the other MMLU and GSM8K splits are absent: expected
        sys.exit(f"compiling the mixture's sources failed:\n{result.stdout}\n{result.stderr}")

    config = {
        "db": str(db),
        "hub": str(hub),
        "hf_cache": str(work / "hf-cache"),
        "reads": args.reads,
        "cold_reads": max(args.reads // 10, 100),
        "workers": args.workers,
    }
    real = Path(args.mirror or REPO.parent / "shared" / "hub")
    if all((real / repo).is_dir() for _, _, repo, _, _ in SMALL):
        log(f"compiling the small splits from {real}")
        config.update(small_db=str(work / "small.db"), small_hub=str(real))
        run(
            [
                sys.executable,
                "-m",
                "nanotasks",
                "compile",
                "--only",
                "gsm8k",
                "--only",
                "mmlu",
                "--only",
                "humaneval",
                "--mirror",
                real,
                "--db",
                config["small_db"],
            ],
            env,
            check=False,
        )
    log("datasets: first load of each split (converting parquet into its cache)")
    convert = (
        "import datasets, sys; datasets.disable_progress_bars(); "
        "datasets.load_dataset(sys.argv[1], sys.argv[2], split=sys.argv[3], cache_dir=sys.argv[4])"
    )
    hf_first = {}
    for repo, name, split in (
        (SMOLTALK, "default", "train"),
        ("cais/mmlu", "auxiliary_train", "train"),
        ("openai/gsm8k", "main", "train"),
    ):
        _, hf_first[repo] = run(
            [sys.executable, "-c", convert, hub / repo, name, split, config["hf_cache"]], env
        )
    report["hf_first_load_s"] = hf_first[SMOLTALK]

    systems = {system: {} for system in SYSTEMS}
    report["loads"] = {}  # probe kind -> system -> the 1-minute load average as it ended
    for kind in PROBES:
        for system in SYSTEMS:
            if kind == "small" and (system == "hf" or "small_db" not in config):
                continue
            log(f"{kind}: {system}")
            systems[system].update(probe(kind, system, config, env))
            report["loads"].setdefault(kind, {})[system] = os.getloadavg()[0]
    systems["nanotasks"]["disk_bytes"] = (work / "one.db").stat().st_size
    systems["hf"]["disk_bytes"] = directory_bytes(Path(config["hf_cache"]) / SMOLTALK.split("/")[1])
    systems["arrow"]["disk_bytes"] = directory_bytes(Path(hub / SMOLTALK).resolve())
    report["systems"] = systems
    return report


def prepared(args, work):
    """The environment of the measured processes (offline, with nanotasks' bytecode written),
    and the word list the synthetic text is drawn from: the mirror's, ../shared/hub's or the
    sample's."""
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HOME=str(work / "hf-home"),
        TOKENIZERS_PARALLELISM="false",
    )
    write_bytecode(env)
    words = Path("dwyl") / "english-words" / "words_alpha.txt"
    return env, next(
        p / words
        for p in (Path(args.mirror or REPO.parent / "shared" / "hub"), REPO / "data" / "sample")
        if (p / words).is_file()
    )


def write_bytecode(env):
    """Bytecode of nanotasks' modules, as installing a wheel writes it. Without it (an edited
    editable install, or PYTHONDONTWRITEBYTECODE set) each measured process would compile the
    modules from source first, which costs more than opening the file."""
    package = importlib.util.find_spec("nanotasks").submodule_search_locations[0]
    run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-x",
            r"[/\\](tests|benchmarks|data|build|\.venv)",
            package,
        ],
        env,
    )


def measure_scales(args, work):
    """At each of `args.scales` synthetic SmolTalk train sizes (with SCALE_TEST test rows): the
    compile's time with all cores, the overlaps pass alone, the size against zstd parquet, and
    random reads of nanotasks and in-memory Arrow in fresh processes, warm and (nanotasks)
    cold. Each size's snapshot and file are deleted before the next is made."""
    sys.path.insert(0, str(Path(__file__).parent))
    from peak import run_with_peak
    from size_vs_parquet import sizes
    from synthetic import make_snapshot

    env, words = prepared(args, work)
    scales = []
    for rows in args.scales:
        hub, db = work / f"hub-{rows}", work / f"scale-{rows}.db"
        log(f"{rows:,} rows: making the snapshot")
        make_snapshot(hub, words, rows, SCALE_TEST, 100, 100)
        log(f"{rows:,} rows: compiling")
        command = [sys.executable, "-m", "nanotasks", "compile", "--only", "smoltalk"]
        compiled, compile_s, peak = run_with_peak(
            [*command, "--mirror", hub, "--db", db, "--jobs", str(args.jobs), "--json"], env
        )
        if compiled.returncode != 0:
            sys.exit(f"failed: compile\n{compiled.stdout}\n{compiled.stderr}")
        report = json.loads(compiled.stdout)
        figures = {
            "rows": rows + SCALE_TEST,
            "compile_s": compile_s,
            "split_s": sum(o["seconds"] for o in report["outcomes"]),
            "reported_peak_mb": report["peak_memory_bytes"] / 2**20,
            **peak,
            "load_compile": os.getloadavg()[0],
        }
        overlaps, _ = run([sys.executable, "-c", OVERLAPS, db], env)
        figures["overlaps_s"] = float(overlaps.stdout)
        figures["file_vs_parquet"] = (
            None  # the size takes the split whole: not beyond ARROW_MAX_ROWS
        )
        if rows <= ARROW_MAX_ROWS:
            whole = next(e for e in sizes(db, hub) if e["name"] == "whole file")
            figures["file_vs_parquet"] = whole["stored_bytes"] / whole["parquet_bytes"]
        config = {
            "db": str(db),
            "hub": str(hub),
            "reads": args.reads,
            "cold_reads": max(args.reads // 10, 100),
            "sequential": False,
        }
        # in-memory Arrow needs ~3.5 GB a million rows: not beyond ARROW_MAX_ROWS
        for system in ("arrow", "nanotasks") if rows <= ARROW_MAX_ROWS else ("nanotasks",):
            if (
                system == "nanotasks"
            ):  # warm: the file in the page cache, which the sizes and Arrow's load evict
                with open(db, "rb") as f:
                    while f.read(1 << 24):
                        pass
            log(f"{rows:,} rows: reads, {system}")
            figures[system] = probe("reads", system, config, env)
            figures[f"load_{system}"] = os.getloadavg()[0]
        figures["nanotasks"].update(probe("cold", "nanotasks", config, env))
        log(json.dumps(figures))  # a long run's sizes so far survive a failure at the next
        scales.append(figures)
        shutil.rmtree(hub)
        db.unlink()
    return {
        "machine": machine(),
        "options": {k: v for k, v in vars(args).items() if k != "json"},
        "scales": scales,
    }


def scale_table(report):
    headers = [
        "rows",
        "compile peak (MB)",
        "split rows/s",
        "overlaps (s)",
        "compile wall (s)",
        "file vs parquet",
        "open (ms)",
        "nanotasks read (us)",
        "Arrow read (us)",
        "vs Arrow",
        "cold read (us)",
        "anonymous (MB)",
        "load (compile / Arrow / nanotasks)",
    ]
    rows = []
    for f in report["scales"]:
        ours, arrow = f["nanotasks"], f.get("arrow")
        rows.append(
            [
                f"{f['rows']:,}",
                f"{f['peak_tree_mb']:,.0f}",
                f"{f['rows'] / f['split_s']:,.0f}",
                f"{f['overlaps_s']:.1f}",
                f"{f['compile_s']:.1f}",
                f"{f['file_vs_parquet']:.2f}x" if f["file_vs_parquet"] else "-",
                f"{ours['open_ms']:.0f}",
                f"{ours['random_mean_us']:.1f}",
                f"{arrow['random_mean_us']:.1f}" if arrow else "-",
                _ratio(ours["random_mean_us"], arrow["random_mean_us"], False) if arrow else "-",
                f"{ours['random_cold_us']:.0f}",
                f"{ours['anonymous_mb']:.0f}",
                f"{f['load_compile']:.1f} / {f.get('load_arrow', 0):.1f} / "
                f"{f['load_nanotasks']:.1f}",
            ]
        )
    m = report["machine"]
    return "\n".join(
        markdown(headers, rows)
        + [
            f"\nSmolTalk train, synthetic, plus {SCALE_TEST:,} test rows; compiled with --jobs "
            f"{report['options']['jobs']}, its peak the resident memory of the compile and its "
            f"workers summed (benchmarks/peak.py), split rows/s without the overlaps pass, "
            f"which the wall time includes; {report['options']['reads']:,} random reads "
            f"(mean CPU time; cold: wall time, page cache evicted); in-memory Arrow only up to "
            f"{ARROW_MAX_ROWS:,} rows; {m['cores']} x {m['cpu']}, Python {m['python']}"
        ]
    )


def markdown(headers, rows):
    """A table in Markdown, as benchmarks/README.md shows it: labels in the first column, the
    figures after it right-aligned."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def cell(column, value):
        value = str(value)
        return (
            value.rjust(widths[column])
            if column and value[:1].isdigit()
            else value.ljust(widths[column])
        )

    return [
        "| " + " | ".join(cell(column, value) for column, value in enumerate(row)) + " |"
        for row in [headers, ["-" * w for w in widths], *rows]
    ]


OVERLAPS = """
import sqlite3, sys, time
from nanotasks.compiler.overlap import find_overlaps
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro&immutable=1", uri=True)
started = time.perf_counter()
find_overlaps(db)
print(time.perf_counter() - started)
"""


def machine():
    model = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in open("/proc/cpuinfo")
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }


# Each figure: (label, key, format, better when higher, the probe that measures it)
FIGURES = [
    ("open + first example, fresh process (ms)", "open_ms", "{:.0f}", False, "reads"),
    (
        "open + first example, libraries already imported (ms)",
        "open_imported_ms",
        "{:.1f}",
        False,
        "open",
    ),
    ("peak RSS after open (MB)", "rss_open_mb", "{:.0f}", False, "reads"),
    ("peak RSS after open + random reads (MB)", "rss_reads_mb", "{:.0f}", False, "reads"),
    ("RSS after open + random reads (MB)", "rss_now_mb", "{:.0f}", False, "reads"),
    ("anonymous memory after open + random reads (MB)", "anonymous_mb", "{:.0f}", False, "reads"),
    ("random example, warm, mean CPU time (us)", "random_mean_us", "{:.1f}", False, "reads"),
    ("random example, warm, p99 (us)", "random_p99_us", "{:.1f}", False, "reads"),
    (
        "random example, cold page cache, mean wall time (us)",
        "random_cold_us",
        "{:.1f}",
        False,
        "cold",
    ),
    ("sequential pass (examples/s)", "sequential_per_s", "{:,.0f}", True, "reads"),
    (
        "{workers} processes reading at random (examples/s)",
        "parallel_per_s",
        "{:,.0f}",
        True,
        "parallel",
    ),
    (
        "DataLoader, 2 workers, fork: first batch (s)",
        "loader_fork_first_s",
        "{:.2f}",
        False,
        "loader",
    ),
    ("DataLoader, 2 workers, fork (examples/s)", "loader_fork_per_s", "{:,.0f}", True, "loader"),
    (
        "DataLoader, 2 workers, spawn: first batch (s)",
        "loader_spawn_first_s",
        "{:.2f}",
        False,
        "loader",
    ),
    ("DataLoader, 2 workers, spawn (examples/s)", "loader_spawn_per_s", "{:,.0f}", True, "loader"),
    ("build the SFT TaskMixture (s)", "mixture_s", "{:.2f}", False, "mixture"),
    ("peak RSS of the mixture (MB)", "mixture_rss_mb", "{:.0f}", False, "mixture"),
    ("bytes on disk (SmolTalk train+test)", "disk_bytes", "{:,}", False, None),
]
FIGURES += [
    (
        f"random example, {repo} {name}/{split}, mean CPU time (us)",
        f"small_{repo}_us",
        "{:.1f}",
        False,
        "small",
    )
    for _, _, repo, name, split in SMALL
]


def table(report):
    systems, options, loads = report["systems"], report["options"], report["loads"]
    headers = [
        "figure",
        "in-memory Arrow",
        "HF datasets (cached)",
        "nanotasks",
        "vs Arrow",
        "vs HF",
        "load (Arrow / HF / nanotasks)",
    ]
    rows = []
    for label, key, form, higher, kind in FIGURES:
        if key not in systems["nanotasks"]:
            continue  # the small splits, without ../shared/hub
        values = [systems[s].get(key) for s in SYSTEMS]
        ratios = [_ratio(systems["nanotasks"][key], systems[b].get(key), higher) for b in BASELINES]
        load = " / ".join(
            f"{loads[kind][s]:.1f}" if s in loads.get(kind, {}) else "-" for s in SYSTEMS
        )
        rows.append(
            [
                label.format(**options),
                *("-" if v is None else form.format(v) for v in values),
                *ratios,
                load,
            ]
        )
    c = report["compile"]
    jobs = report["machine"]["cores"]
    rows.append(
        [
            f"compile SmolTalk, rows/s, 1 job / {jobs} jobs (overlaps pass included)",
            "-",
            "-",
            f"{c['rows_per_s_1_job']:,.0f} / {c[f'rows_per_s_{jobs}_jobs']:,.0f}",
            "",
            "",
            f"{c['load_1_job']:.1f} / {c[f'load_{jobs}_jobs']:.1f}",
        ]
    )
    rows.append(
        [
            f"compile SmolTalk, rows/s, {jobs} jobs, without the overlaps pass",
            "-",
            "-",
            f"{c[f'rows_per_s_{jobs}_jobs_without_overlaps']:,.0f}",
            "",
            "",
            "",
        ]
    )
    rows.append(["the overlaps pass alone (s)", "-", "-", f"{c['overlaps_s']:.1f}", "", "", ""])
    rows.append(
        [
            f"the same bytes with 1 and {jobs} jobs",
            "-",
            "-",
            "yes" if c["same_bytes_whatever_jobs"] else "NO",
            "",
            "",
            "",
        ]
    )
    rows.append(
        [
            "SmolTalk train bytes (rows + dictionary) vs zstd parquet of the same rows",
            "-",
            "-",
            f"{c['train_stored_bytes']:,} / {c['train_parquet_zstd_bytes']:,} "
            f"= {c['bytes_vs_parquet']:.2f}x",
            "",
            "",
            "",
        ]
    )
    rows.append(
        [
            "the whole file vs zstd parquet of its rows",
            "-",
            "-",
            f"{c['file_bytes']:,} / {c['file_parquet_zstd_bytes']:,} = {c['file_vs_parquet']:.2f}x",
            "",
            "",
            "",
        ]
    )
    rows.append(
        [
            "first load (conversion into the cache) (s)",
            "-",
            f"{report['hf_first_load_s']:.1f}",
            "",
            "",
            "",
            "",
        ]
    )
    lines = markdown(headers, rows)
    m = report["machine"]
    lines.append(
        f"\n{options['train']:,} train / {options['test']:,} test conversations "
        f"({report['origin']}); "
        f"{options['reads']:,} random reads; {m['cores']} x {m['cpu']}, Python {m['python']}, "
        f"load average at the end {m['load_average']}"
    )
    lines.append(
        "vs X: how many times better nanotasks is than X (above 1: nanotasks wins; 1.7x for a time "
        "is 0.6x of X's). load: the 1-minute load average as each measured process ended."
    )
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
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count(), help="processes reading at once"
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count(), help="--scales: the compile's processes"
    )
    parser.add_argument(
        "--mirror",
        help="use the sources this mirror has (e.g. ../shared/hub) instead of synthetic ones",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--keep", help="work in this directory and keep it (default: a temporary one)"
    )
    parser.add_argument(
        "--scales",
        type=int,
        nargs="+",
        metavar="ROWS",
        help="instead: compile and random reads at each of these train sizes, e.g. "
        "50000 460000 2000000 (nanotasks and in-memory Arrow only)",
    )
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # internal: one measured process
    args = parser.parse_args()
    if args.probe:
        kind, system, config = json.loads(args.probe)
        print(json.dumps(PROBES[kind](system, config)))
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="nanotasks-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = measure_scales(args, work) if args.scales else measure(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(scale_table(report) if args.scales else table(report))


if __name__ == "__main__":
    main()
