"""SmolTalk: general chat conversations for supervised fine-tuning of small models.
https://huggingface.co/datasets/HuggingFaceTB/smol-smoltalk (~460K train, ~24K test).
Rows are checked at compile time, so a malformed conversation never reaches training.
"""

from nanotasks.store import Example
from nanotasks.tasks.common import Benchmark, Source, StoredTask, check_choice, check_type

REPO = "HuggingFaceTB/smol-smoltalk"
SPLITS = ("train", "test")


def check_conversation(messages):
    """An optional leading system message, then user/assistant alternating from user, at least
    two of them, all with string contents."""
    if not isinstance(messages, list):
        raise ValueError("messages must be a list")
    first = 1 if messages and messages[0].get("role") == "system" else 0
    turns = messages[first:]
    if len(turns) < 2:
        raise ValueError(f"{len(turns)} user/assistant messages, need at least 2")
    for i, message in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if message.get("role") != expected:
            raise ValueError(f"message {first + i} has role {message.get('role')!r}, "
                             f"expected {expected!r}")
    for i, message in enumerate(messages):
        if not isinstance(message.get("content"), str):
            raise ValueError(f"message {i} has no string content")


def normalise(row, source):
    messages = row["messages"]
    check_conversation(messages)
    check_type("source", row.get("source", ""), str)
    messages = [{"role": m["role"], "content": m["content"]} for m in messages]
    return Example({"messages": messages}, subject=row.get("source"))


BENCHMARK = Benchmark("smoltalk", normalise=normalise, sources=tuple(
    Source("smoltalk", "default", split, REPO, "default", split) for split in SPLITS))


class SmolTalk(StoredTask):

    def __init__(self, split, db=None, **kwargs):
        check_choice("SmolTalk split", split, SPLITS)
        super().__init__("smoltalk", "default", split, db=db, **kwargs)

    @property
    def eval_type(self):
        return "generative"
