"""nanotasks: chat-model training and evaluation data compiled into one SQLite file, and
nanochat's Task API served from it offline.

The `nanotasks` command is a thin layer over these functions:

    import nanotasks
    nanotasks.compile("demo.db", mirror="data/sample")      # needs nanotasks[compile]
    store = nanotasks.open("demo.db")
    print(nanotasks.info("demo.db").splits)                  # what `nanotasks info` lists
    split = nanotasks.find_split(store, "gsm8k", "test", subset="main")
    conversation = store.read(split, 3)
    nanotasks.export(store, "gsm8k", "test", "gsm8k-test.jsonl", subset="main")
    assert all(check.ok for check in nanotasks.verify("demo.db"))

The Tasks themselves are in nanotasks.tasks: `from nanotasks.tasks.arc import ARC`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from nanotasks.store import cache_path, default_path
from nanotasks.store.reader import (
    FileDamaged,
    FileReplaced,
    FormatVersionError,
    NotInStore,
    Split,
    Store,
    StoreError,
    StoreNotFound,
    StrPath,
)
from nanotasks.tasks import NAMES, UnknownName, aliases, find_split

if TYPE_CHECKING:
    from nanotasks.compiler.build import Outcome
    from nanotasks.store.verify import Check

log = logging.getLogger("nanotasks")

__all__ = [
    "compile",
    "open",
    "info",
    "Info",
    "Alias",
    "overlap",
    "verify",
    "export",
    "find_split",
    "default_path",
    "Store",
    "NAMES",
    "StoreError",
    "StoreNotFound",
    "NotInStore",
    "FileDamaged",
    "FileReplaced",
    "FormatVersionError",
    "UnknownName",
]


def compile(
    db: StrPath | None = None,
    only: Iterable[str] = (),
    mirror: StrPath | None = None,
    revisions: Mapping[str, str] | None = None,
    custom: Mapping[str, StrPath] | None = None,
    jobs: int | None = None,
    progress: Callable[..., Any] | None = None,
    chat: Mapping[str, str] | None = None,
    chat_shuffle: bool = False,
    max_wait: float = 300,
) -> list[Outcome]:
    """Compile the benchmarks named in `only` (all of NAMES when empty), the `custom` JSONL
    files ({name: path}) and the `chat` datasets ({name: "org/repo[:config]"}, every split, in
    source order unless `chat_shuffle`) into `db` (default_path() when None), from the Hugging
    Face Hub at `revisions` ({repo: commit}) or from a `mirror` directory laid out like the
    hub; see nanotasks.compiler.build.compile_file. Hub requests that fail transiently (429,
    5xx, a reset connection) are retried, waiting `max_wait` seconds at most in all; the waits
    are logged as warnings on the "nanotasks" logger. Returns one Outcome per split and file.

    Compiles of one file run one after the other: one that finds another under way logs a
    warning and waits for it, then starts from the file it wrote. A symbolic link at `db` is
    followed: the file it names is replaced. ImportError when the compile extra is missing."""
    try:
        from nanotasks.compiler.build import compile_file, import_pandas
    except ImportError as error:
        raise ImportError(
            f"compiling needs the compile extra ({error.name} is missing): "
            f"pip install 'nanotasks[compile]'",
            name=error.name,
        ) from None
    from nanotasks.store.writer import exclusive

    path = Path(db or default_path())
    if path == cache_path():
        path.parent.mkdir(parents=True, exist_ok=True)
    path = Path(os.path.realpath(path))  # through a symbolic link: the file it names is replaced
    if not path.parent.is_dir():  # a typo (in --db or $NANOTASKS_DB) should not grow directories
        raise FileNotFoundError(
            f"{path.parent} does not exist: create it, or give another path for the file"
        )
    import_pandas()
    with exclusive(path, lambda: log.warning(f"{path}: another compile is writing it; waiting")):
        return compile_file(
            path, only, mirror, revisions, custom, progress, jobs, chat, chat_shuffle, max_wait
        )


def open(db: StrPath | None = None) -> Store:
    """The compiled file at `db` (default_path() when None), checked and ready to read."""
    return Store(db or default_path())


class Alias(NamedTuple):
    """Another name a stored split is served under: MMLU's auxiliary_train/train is the rows
    stored as all/auxiliary_train."""

    task: str
    subset: str
    split: str
    rows: int
    stored_subset: str
    stored_split: str


class Info(NamedTuple):
    """What `nanotasks info` lists: the file's `path` as given; its `splits`, each a dict of
    Store.splits() without the zstd dictionary (id, task, subset, split, first_example, rows,
    repo, config, source_split, revision, sha256, stored_bytes); the other names they are
    served under (`aliases`); and its stored `files`, dicts of file (the name), repo,
    revision, sha256, size and stored_bytes."""

    path: str
    splits: list[dict[str, Any]]
    aliases: list[Alias]
    files: list[dict[str, Any]]


def info(db: StrPath | None = None) -> Info:
    """The splits and stored files of the compiled file at `db` (default_path() when None),
    with their provenance."""
    path = db or default_path()
    store = Store(path)
    splits = [{k: v for k, v in s.items() if k != "dictionary"} for s in store.splits()]
    stored = {(s["task"], s["subset"], s["split"]): s["rows"] for s in splits}
    served = [
        Alias(task, subset, split, stored[(task, *target)], *target)
        for (task, subset, split), target in aliases().items()
        if (task, *target) in stored
    ]
    files = [{"file": f.pop("name"), **f} for f in store.files()]
    return Info(str(path), splits, served, files)


def overlap(db: StrPath | None = None) -> list[dict[str, Any]]:
    """What `nanotasks overlap` lists: per evaluation split, its examples, how many are also in
    training splits, and where; see Store.overlap_summary."""
    return open(db).overlap_summary()


def verify(
    db: StrPath | None = None, quick: bool = False, progress: Callable[..., Any] | None = None
) -> list[Check]:
    """The checks `nanotasks verify` prints, as a list of store.verify.Check."""
    from nanotasks.store.verify import verify as verify_file

    return verify_file(db or default_path(), quick=quick, progress=progress)


def export(
    store: Store | StrPath,
    task: str,
    split: str,
    output: StrPath | IO,
    subset: str | None = None,
    format: str = "jsonl",
) -> Split:
    """Write every conversation of TASK's SPLIT, in Task order, to `output`: jsonl, one
    conversation object per line, or parquet (needs pyarrow). `store` is a Store or a path.
    `output` is a path, whose regular file is replaced only once the whole output is written
    (see output_file), or an open file (text for jsonl, binary for parquet), e.g. sys.stdout.
    Returns the split written (a store.reader.Split: its rows is how many)."""
    # imported here: what it imports (tempfile, shutil) would add to every reader's start-up
    from nanotasks.store.export import FORMATS, output_file, write_jsonl, write_parquet

    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}: choose one of {', '.join(FORMATS)}")
    store = store if isinstance(store, Store) else Store(store)
    stored = find_split(store, task, split, subset)
    write = write_jsonl if format == "jsonl" else write_parquet
    if hasattr(output, "write"):
        write(store, stored, output)
        return stored
    with output_file(output, binary=format != "jsonl", never=store.path) as f:
        write(store, stored, f)
    return stored
