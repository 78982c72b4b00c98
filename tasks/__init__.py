"""One module per benchmark; each is everything about that benchmark and declares what the
compiler needs as `BENCHMARK` (tasks.common.Benchmark). Adding a benchmark is adding its
module and its name to NAMES."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from nanotasks.store.reader import Conversation, NotInStore, Split, Store

if TYPE_CHECKING:
    from nanotasks.tasks.common import Benchmark

# The benchmarks nanotasks knows, by module name: what `--only`, `show` and `export` take.
# The last two store what the compile names: customjson the `--custom NAME=FILE` files, chat
# the `--chat NAME=org/repo` datasets.
NAMES = (
    "arc",
    "mmlu",
    "gsm8k",
    "humaneval",
    "smoltalk",
    "spellingbee",
    "core",
    "customjson",
    "chat",
)


class UnknownName(ValueError, LookupError):
    """A benchmark, subset or split nanotasks does not know, or the file does not hold."""


def benchmark(name: str) -> Benchmark:
    """The Benchmark declared by tasks/<name>.py; names are not case-sensitive."""
    if name.lower() not in NAMES:
        raise UnknownName(f"unknown benchmark {name!r}: choose from {', '.join(NAMES)}")
    return importlib.import_module(f"nanotasks.tasks.{name.lower()}").BENCHMARK


def aliases() -> dict[tuple[str, str, str], tuple[str, str]]:
    """Other names stored splits are served under:
    {(task, subset, split): stored (subset, split)}."""
    return {
        (name, *alias): stored
        for name in NAMES
        for alias, stored in benchmark(name).aliases.items()
    }


def find_split(store: Store, task: str, split: str, subset: str | None = None) -> Split:
    """The stored split (a store.reader.Split) that TASK SPLIT [SUBSET] names, as `nanotasks show`
    and `export` take it: the split's only subset when none is given, and through the other
    names a benchmark serves its splits under (MMLU auxiliary_train/train)."""
    declared = benchmark(task)
    task = declared.name
    _check_declared(declared, subset, split)
    if subset is None:
        keys = [(s["task"], s["subset"], s["split"]) for s in store.splits()] + list(aliases())
        subsets = sorted(
            {k_subset for k_task, k_subset, k_split in keys if (k_task, k_split) == (task, split)}
        )
        if len(subsets) > 1:
            raise UnknownName(
                f"{task} {split} is stored for subsets {', '.join(subsets)}: pick one "
                f"with --subset (subset= in Python)"
            )
        if not subsets:
            raise NotInStore(
                f"{store.path} has no {task} {split}: `nanotasks info --db {store.path}` "
                f"lists what it has"
            )
        subset = subsets[0]
    return store.split(task, *aliases().get((task, subset, split), (subset, split)))


def _check_declared(declared, subset, split):
    """UnknownName for a split or subset the benchmark never has, which no compile could add."""
    if not declared.sources:  # customjson's subsets are the --custom NAMEs
        return
    known = {(s.subset, s.split) for s in declared.sources} | set(declared.aliases)
    splits = sorted({known_split for _, known_split in known})
    if split not in splits:
        raise UnknownName(
            f"{declared.name} has no split {split!r}: choose one of {', '.join(splits)}"
        )
    subsets = sorted({known_subset for known_subset, known_split in known if known_split == split})
    if subset is not None and subset not in subsets:
        raise UnknownName(
            f"{declared.name} {split} has no subset {subset!r}: choose one of {', '.join(subsets)}"
        )


def example(
    store: Store, task: str, split: str, index: int, subset: str | None = None
) -> Conversation:
    """The conversation `nanotasks show` prints: example `index` of TASK's SPLIT, counting from
    the end when negative, as task[-1] does. A generated task (the spelling tasks) is built
    with its defaults, its class named by `subset` (the first it declares when None)."""
    declared = benchmark(task)
    if declared.generated:
        classes = {name.lower(): cls for name, cls in declared.generated.items()}
        chosen = (subset or next(iter(declared.generated))).lower()
        if chosen not in classes:
            raise UnknownName(
                f"{declared.name} has no task {subset!r}: choose one of "
                f"{', '.join(declared.generated)} (with --subset)"
            )
        return classes[chosen](split=split, db=store.path)[index]
    stored = find_split(store, task, split, subset)
    if not -stored.rows <= index < stored.rows:
        valid = (
            f": give 0 to {stored.rows - 1}, or -{stored.rows} to -1 from the end"
            if stored.rows
            else ""
        )
        raise IndexError(
            f"{stored.task} {stored.subset}/{stored.split} has {stored.rows} examples, no index "
            f"{index}{valid}"
        )
    return store.read(stored, index + stored.rows if index < 0 else index)
