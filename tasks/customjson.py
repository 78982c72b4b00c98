"""CustomJSON: your own conversations, one per line of a JSONL file: either a JSON array of
messages, as nanochat writes them, or an object whose "messages" is that array, as
`nanotasks export` and most fine-tuning tools write them (its other keys are not kept).
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
                messages = _messages(json.loads(line))
                check_conversation(messages, system=False)  # as nanochat's CustomJSON
            except ValueError as error:
                raise ValueError(f"{path}, line {number}: {error}") from None
            conversations.append({"messages": messages})
    return conversations


def _messages(line):
    if isinstance(line, dict):
        if "messages" not in line:
            raise ValueError(f"an object without \"messages\" (it has {', '.join(map(repr, line)) or 'no keys'})")
        return line["messages"]
    return line


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
            except NotInStore:
                path = db or default_path()
                raise NotInStore(f"{path} has no custom task {name!r}. Add it with `nanotasks compile "
                                 f"--only customjson --custom {name}=FILE.jsonl --db {path}`.") from None

    def num_examples(self):
        return len(self.conversations)

    def get_example(self, index):
        return self.conversations[index]

    @property
    def eval_type(self):
        return "generative"
