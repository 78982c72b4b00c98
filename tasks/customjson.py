"""CustomJSON: your own conversations, one JSON array of messages per line of a JSONL file.
CustomJSON(filepath) reads the file directly; `nanotasks compile --custom NAME=FILE.jsonl`
stores it in the compiled file so it travels with everything else, and
CustomJSON(name=NAME) reads it from there.
"""

import json
from pathlib import Path

from nanotasks.store import Example, default_path
from nanotasks.store.reader import NotInStore
from nanotasks.tasks.common import Benchmark, StoredTask, Task, check_conversation

# Each `--custom NAME=FILE` is stored as task customjson, subset NAME, this split.
SPLIT = "train"
BENCHMARK = Benchmark("customjson")


def read_conversations(path):
    """The conversations of a JSONL file, in file order; ValueError names the bad line."""
    path = Path(path)
    conversations = []
    with open(path, encoding="utf-8") as f:  # FileNotFoundError for a missing file, never empty
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                messages = json.loads(line)
                check_conversation(messages, system=False)  # as nanochat's CustomJSON
            except ValueError as error:
                raise ValueError(f"{path}, line {number}: {error}") from None
            conversations.append({"messages": messages})
    return conversations


def examples(path):
    """The rows `nanotasks compile --custom` stores, in file order."""
    return [Example(conversation, source_row=i) for i, conversation in enumerate(read_conversations(path))]


class CustomJSON(Task):

    def __init__(self, filepath=None, name=None, db=None, **kwargs):
        if (filepath is None) == (name is None):
            raise ValueError("give CustomJSON either filepath= (a JSONL file) or name= (stored by "
                             "`nanotasks compile --custom NAME=FILE`)")
        super().__init__(**kwargs)
        if filepath is not None:
            self.conversations = read_conversations(filepath)
        else:
            try:
                self.conversations = StoredTask("customjson", name, SPLIT, db=db)
            except NotInStore:  # its hint, `--only customjson`, is no command that works
                path = db or default_path()
                raise NotInStore(f"{path} has no custom task {name!r}. Add it with "
                                 f"`nanotasks compile --custom {name}=FILE.jsonl --db {path}`.") from None

    def num_examples(self):
        return len(self.conversations)

    def get_example(self, index):
        return self.conversations[index]

    @property
    def eval_type(self):
        return "generative"
