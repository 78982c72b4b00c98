"""CustomJSON: your own conversations, one per line of a JSONL file: either a JSON array of
messages, as nanochat writes them, or an object whose "messages" is that array, as
`nanotasks export` and most fine-tuning tools write them (its other keys are not kept).
Messages are an optional system message, then user and assistant alternating from user;
each content is a string, or for an assistant a list of parts as GSM8K's replies are (see
tasks.common.check_conversation), both of which nanochat's tokenizer renders.
CustomJSON(filepath) reads the file directly; `nanotasks compile --custom NAME=FILE.jsonl`
stores it in the compiled file so it travels with everything else, and
CustomJSON(name=NAME) reads it from there.
"""

import json
import re
import stat
from pathlib import Path

from nanotasks.store import Example, default_path
from nanotasks.store.reader import Conversation, NotInStore, StrPath, not_in_store
from nanotasks.store.schema import MAX_BODY_BYTES
from nanotasks.tasks.common import Benchmark, StoredTask, Task, check_conversation

# Each `--custom NAME=FILE` is stored as task customjson, subset NAME, this split.
SPLIT = "train"
MAX_LINE_BYTES = MAX_BODY_BYTES  # a line is one conversation: the file holds none bigger
BENCHMARK = Benchmark("customjson")


def read_conversations(path):
    """The conversations of a JSONL file, in file order; ValueError names the file and the bad
    line. Only a regular file is read (not /dev/zero, not a pipe), each line at most
    MAX_LINE_BYTES: whatever the file, reading it is bounded."""
    path = Path(path)
    if not stat.S_ISREG(path.stat().st_mode):  # FileNotFoundError for a missing file
        raise ValueError(f"{path}: not a regular file: give a JSONL file")
    conversations = []
    with open(path, "rb") as f:
        for number, line in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
            try:
                if len(line) > MAX_LINE_BYTES:
                    raise ValueError(f"longer than {MAX_LINE_BYTES:,} bytes")
                text = line.decode()
                if not text.strip():
                    continue
                messages = _messages(json.loads(text))
                check_conversation(messages, parts=True)  # whatever `nanotasks export` writes
                json.dumps(
                    messages, ensure_ascii=False
                ).encode()  # a lone surrogate escape ("\\ud800") fails
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}, line {number}: not UTF-8 (byte {error.start + 1} of the line)"
                ) from None
            except UnicodeEncodeError:
                raise ValueError(
                    f"{path}, line {number}: a lone surrogate escape such as \\ud800, which "
                    f"is no character: text must be valid Unicode"
                ) from None
            except RecursionError:
                raise ValueError(f"{path}, line {number}: JSON nested too deeply") from None
            except ValueError as error:
                raise ValueError(f"{path}, line {number}: {error}") from None
            conversations.append({"messages": messages})
    if not conversations:
        raise ValueError(f"{path}: no conversations (the file is empty, or only blank lines)")
    return conversations


def _messages(line):
    if isinstance(line, dict):
        if "messages" not in line:
            raise ValueError(
                f'an object without "messages" (it has {", ".join(map(repr, line)) or "no keys"})'
            )
        return line["messages"]
    return line


def check_name(name):
    """ValueError unless `name` is a plain short name: what CustomJSON(name=...) and SQL take."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise ValueError(
            f"custom name {name[:80]!r}: use up to 64 letters, digits, '_', '.' and '-', "
            f"starting with a letter or digit"
        )


def examples(path):
    """The rows `nanotasks compile --custom` stores, in file order."""
    return [
        Example(conversation, source_row=i)
        for i, conversation in enumerate(read_conversations(path))
    ]


class CustomJSON(Task):
    def __init__(
        self,
        filepath: StrPath | None = None,
        name: str | None = None,
        db: StrPath | None = None,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
    ) -> None:

        if (filepath is None) == (name is None):
            raise ValueError(
                "give CustomJSON either filepath= (a JSONL file) or name= (stored by "
                "`nanotasks compile --custom NAME=FILE`)"
            )
        super().__init__(start, stop, step)
        self.conversations: list[Conversation] | StoredTask
        if name is None:
            self.conversations = read_conversations(filepath)
        else:
            try:
                self.conversations = StoredTask("customjson", name, SPLIT, db)
            except NotInStore:
                raise not_in_store(
                    db or default_path(),
                    f"custom task {name!r}",
                    f"--only customjson --custom {name}=FILE.jsonl",
                ) from None

    def num_examples(self) -> int:
        return len(self.conversations)

    def get_example(self, index: int) -> Conversation:
        return self.conversations[index]

    @property
    def eval_type(self) -> str:
        return "generative"
