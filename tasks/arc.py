"""ARC, the AI2 Reasoning Challenge: grade-school science questions with 3 to 5 choices.
https://huggingface.co/datasets/allenai/ai2_arc (configs ARC-Easy and ARC-Challenge).
Labels are whatever the row has: mostly "A".."E", in some rows "1".."5".
"""

from nanotasks.store import Example
from nanotasks.store.reader import Conversation, StrPath
from nanotasks.tasks.common import (
    Benchmark,
    Source,
    StoredTask,
    check_choice,
    check_type,
    evaluate_letter,
    render_mc,
)

REPO = "allenai/ai2_arc"
SUBSETS = ("ARC-Easy", "ARC-Challenge")
SPLITS = ("train", "validation", "test")


def normalise(row, source):
    check_type("question", row["question"], str)
    check_type("choices.text", row["choices"]["text"], list, str)
    check_type("choices.label", row["choices"]["label"], list, str)
    check_type("answerKey", row["answerKey"], str)
    letters = row["choices"]["label"]
    answer = row["answerKey"]
    if len(letters) != len(row["choices"]["text"]):
        raise ValueError(f"{len(letters)} labels for {len(row['choices']['text'])} choices")
    if answer not in letters:
        raise ValueError(f"answerKey {answer!r} is not one of the labels {letters}")
    user = render_mc(row["question"], letters, row["choices"]["text"])
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return Example({"messages": messages, "letters": letters}, answer=answer)


BENCHMARK = Benchmark(
    "arc",
    normalise=normalise,
    sources=tuple(
        Source("arc", subset, split, REPO, subset, split) for subset in SUBSETS for split in SPLITS
    ),
)


class ARC(StoredTask):
    def __init__(
        self,
        subset: str,
        split: str,
        db: StrPath | None = None,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
    ) -> None:
        check_choice("ARC subset", subset, SUBSETS)
        check_choice("ARC split", split, SPLITS)
        super().__init__("arc", subset, split, db, start, stop, step)

    @property
    def eval_type(self) -> str:
        return "categorical"

    def evaluate(self, conversation: Conversation, response: str) -> bool:
        return evaluate_letter(conversation, response)
