"""nanotasks: chat-model training and evaluation data compiled into one SQLite file, and
nanochat's Task API served from it offline.

The `nanotasks` command is a thin layer over these functions:

    import nanotasks
    nanotasks.compile("demo.db", mirror="data/sample")      # needs nanotasks[compile]
    store = nanotasks.open("demo.db")
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
from typing import TYPE_CHECKING, Any

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
from nanotasks.tasks import NAMES, UnknownName, find_split

if TYPE_CHECKING:
    from nanotasks.compiler.build import Outcome
    from nanotasks.store.verify import Check

log = logging.getLogger("nanotasks")

__all__ = [
    "compile",
    "open",
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
    output: StrPath,
    subset: str | None = None,
    format: str = "jsonl",
) -> Split:
    """Write every conversation of TASK's SPLIT, in Task order, to the file `output`: jsonl, one
    conversation object per line, or parquet (needs pyarrow). `store` is a Store or a path.
    A regular file is replaced only once the whole output is written (see output_file).
    Returns the split written (a store.reader.Split: its rows is how many)."""
    # imported here: what it imports (tempfile, shutil) would add to every reader's start-up
    from nanotasks.store.export import FORMATS, output_file, write_jsonl, write_parquet

    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}: choose one of {', '.join(FORMATS)}")
    store = store if isinstance(store, Store) else Store(store)
    stored = find_split(store, task, split, subset)
    write = write_jsonl if format == "jsonl" else write_parquet
    with output_file(output, binary=format != "jsonl", never=store.path) as f:
        write(store, stored, f)
    return stored
