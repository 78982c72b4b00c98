"""One module per benchmark; each is everything about that benchmark and declares what the
compiler needs as `BENCHMARK` (tasks.common.Benchmark). Adding a benchmark is adding its
module and its name to NAMES."""

import importlib

from nanotasks.store.reader import NotInStore

# The benchmarks nanotasks knows, by module name: what `--only`, `show` and `export` take.
# The last two store what the compile names: customjson the `--custom NAME=FILE` files, chat
# the `--chat NAME=org/repo` datasets.
NAMES = ("arc", "mmlu", "gsm8k", "humaneval", "smoltalk", "spellingbee", "customjson", "chat")


class UnknownName(ValueError, LookupError):
    """A benchmark, subset or split nanotasks does not know, or the file does not hold."""


def benchmark(name):
    """The Benchmark declared by tasks/<name>.py; names are not case-sensitive."""
    if name.lower() not in NAMES:
        raise UnknownName(f"unknown benchmark {name!r}: choose from {', '.join(NAMES)}")
    return importlib.import_module(f"nanotasks.tasks.{name.lower()}").BENCHMARK


def aliases():
    """Other names stored splits are served under: {(task, subset, split): stored (subset, split)}."""
    return {(name, *alias): stored for name in NAMES for alias, stored in benchmark(name).aliases.items()}


def find_split(store, task, split, subset=None):
    """The stored split (a store.reader.Split) that TASK SPLIT [SUBSET] names, as `nanotasks show`
    and `export` take it: the split's only subset when none is given, and through the other
    names a benchmark serves its splits under (MMLU auxiliary_train/train)."""
    task = benchmark(task).name
    if subset is None:
        keys = [(s["task"], s["subset"], s["split"]) for s in store.splits()] + list(aliases())
        subsets = sorted({k_subset for k_task, k_subset, k_split in keys if (k_task, k_split) == (task, split)})
        if len(subsets) > 1:
            raise UnknownName(f"{task} {split} is stored for subsets {', '.join(subsets)}: pick one "
                              f"with --subset (subset= in Python)")
        if not subsets:
            raise NotInStore(f"{store.path} has no {task} {split}: `nanotasks info --db {store.path}` "
                              f"lists what it has")
        subset = subsets[0]
    return store.split(task, *aliases().get((task, subset, split), (subset, split)))
