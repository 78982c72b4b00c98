"""Chat: any chat dataset on the hub, compiled by name for supervised fine-tuning.

`nanotasks compile --chat NAME=org/repo[:config]` stores every split of that config as task
chat, subset NAME, and Chat(name=NAME, split=...) reads it back. The layout is recognised
from the columns, with no mapping to write:

- OpenAI style: a `messages` column, a list of {role, content}, an optional system first;
- ShareGPT style: a `conversations` column, a list of {from, value}, from human, gpt or system.

Other fields of the messages, and other columns, are dropped, except that when exactly one of
the columns SUBJECT_COLUMNS is there, it becomes each row's subject (empty or null: none).
"""

from nanotasks.store import Example, default_path
from nanotasks.store.reader import NotInStore, StrPath, not_in_store
from nanotasks.tasks.common import (
    Benchmark,
    StoredTask,
    UnknownLayout,
    check_conversation,
    check_type,
)

SUBJECT_COLUMNS = ("source", "category", "subject")
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
LAYOUTS = (
    "the OpenAI style (a `messages` column: a list of {role, content}) or the ShareGPT style "
    "(a `conversations` column: a list of {from, value})"
)


def columns(names, source):
    """The columns (and message fields) normalise reads, for Benchmark.columns."""
    layouts = [name for name in ("messages", "conversations") if name in names]
    if len(layouts) != 1:
        raise UnknownLayout(
            f"{source.repo} {source.config}/{source.source_split} has columns "
            f"{', '.join(names)}: nanotasks reads chat datasets laid out in exactly "
            f"one of {LAYOUTS}"
        )
    fields = ("role", "content") if layouts[0] == "messages" else ("from", "value")
    wanted: dict[str, tuple[str, str] | None] = {layouts[0]: fields}
    subjects = [name for name in SUBJECT_COLUMNS if name in names]
    if len(subjects) == 1:  # with several, none is the obvious one
        wanted[subjects[0]] = None
    return wanted


def normalise(row, source):
    if "conversations" in row:
        messages = [
            {"role": SHAREGPT_ROLES.get(m["from"], m["from"]), "content": m["value"]}
            for m in row["conversations"]
        ]
    else:
        messages = row["messages"]
    check_conversation(messages)
    subject = None
    for name in SUBJECT_COLUMNS:
        if name in row:  # the one columns() kept
            check_type(name, row[name], str)
            subject = row[name] or None
    return Example({"messages": messages}, subject=subject)


BENCHMARK = Benchmark("chat", normalise=normalise, columns=columns)


def parse(spec):
    """'org/repo[:config]' -> (repo, config or None)."""
    repo, colon, config = spec.partition(":")
    if repo.count("/") != 1 or not all(repo.split("/")) or (colon and not config):
        raise ValueError(f"{spec!r} is not of the form org/repo[:config]")
    return repo, config or None


class Chat(StoredTask):
    """One split of the chat dataset stored by `nanotasks compile --chat NAME=org/repo[:config]`:
    its conversations in the order compile stored them (source order, or with --chat-shuffle
    the seed-42 order of `Dataset.shuffle`)."""

    def __init__(
        self,
        name: str,
        split: str = "train",
        db: StrPath | None = None,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
    ) -> None:
        try:
            super().__init__("chat", name, split, db, start, stop, step)
        except NotInStore:  # its hint, `--only chat`, needs the --chat it does not say
            path = db or default_path()
            raise not_in_store(
                path,
                f"chat dataset {name!r} with a split {split!r}",
                f"--only chat --chat {name}=org/repo[:config]",
                f"; `nanotasks info --db {path}` lists what it has.",
            ) from None

    @property
    def eval_type(self) -> str:
        return "generative"
