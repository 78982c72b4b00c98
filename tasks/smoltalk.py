"""SmolTalk: general chat conversations for supervised fine-tuning of small models.
https://huggingface.co/datasets/HuggingFaceTB/smol-smoltalk (~460K train, ~24K test).
Rows are checked at compile time, so a malformed conversation never reaches training.
"""

from nanotasks.store import Example
from nanotasks.store.reader import StrPath
from nanotasks.tasks.common import (
    Benchmark,
    Source,
    StoredTask,
    check_choice,
    check_conversation,
    check_type,
)

REPO = "HuggingFaceTB/smol-smoltalk"
SPLITS = ("train", "test")


def normalise(row, source):
    messages = row["messages"]
    check_conversation(messages)
    check_type("source", row.get("source", ""), str)
    messages = [{"role": m["role"], "content": m["content"]} for m in messages]
    return Example({"messages": messages}, subject=row.get("source"))


BENCHMARK = Benchmark(
    "smoltalk",
    normalise=normalise,
    sources=tuple(Source("smoltalk", "default", split, REPO, "default", split) for split in SPLITS),
)


class SmolTalk(StoredTask):
    def __init__(
        self,
        split: str,
        db: StrPath | None = None,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
    ) -> None:
        check_choice("SmolTalk split", split, SPLITS)
        super().__init__("smoltalk", "default", split, db, start, stop, step)

    @property
    def eval_type(self) -> str:
        return "generative"
