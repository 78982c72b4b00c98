"""The nanotasks file format: schema, writer, reader. No network, no benchmark knowledge."""

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Example:
    """One normalised source row: the conversation a Task returns, and what SQL users query."""
    conversation: dict
    answer: str | None = None
    subject: str | None = None
    source_row: int | None = None  # set by the compiler, which knows where the row came from


@dataclass(frozen=True)
class Provenance:
    """Where a split or file came from."""
    repo: str | None = None
    config: str | None = None
    source_split: str | None = None
    revision: str | None = None


def default_path():
    """Where the file lives unless told otherwise: $NANOTASKS_DB, else the user's cache dir."""
    if os.environ.get("NANOTASKS_DB"):
        return Path(os.environ["NANOTASKS_DB"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "nanotasks" / "nanotasks.db"
