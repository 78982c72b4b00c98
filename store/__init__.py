"""The nanotasks file format: schema, writer, reader. No network, no benchmark knowledge."""

import os
from pathlib import Path
from typing import NamedTuple

# Plain classes and NamedTuples rather than dataclasses: these are imported by every reader,
# and dataclasses (with inspect, ast, ...) and building one cost more than the rest of opening.


class Example:
    """One normalised source row: the conversation a Task returns, and what SQL users query."""

    def __init__(self, conversation, answer=None, subject=None, source_row=None):
        self.conversation = conversation
        self.answer = answer
        self.subject = subject
        self.source_row = source_row  # set by the compiler, which knows where the row came from


class Provenance(NamedTuple):
    """Where a split or file came from."""

    repo: str | None = None
    config: str | None = None
    source_split: str | None = None
    revision: str | None = None


class NoProgress:
    """A progress bar that shows nothing, for a `progress` argument left out: `progress` is
    called as progress(length=..., label=...) and gives a context manager with update(n)."""

    def __init__(self, length=None, label=None):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def update(self, n):
        pass


def default_path():
    """Where the file lives unless told otherwise: $NANOTASKS_DB, else cache_path()."""
    if os.environ.get("NANOTASKS_DB"):
        return Path(os.environ["NANOTASKS_DB"])
    return cache_path()


def cache_path():
    """The file's place in the user's cache directory, the one directory compile creates."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "nanotasks" / "nanotasks.db"
