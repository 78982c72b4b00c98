"""GSM8K: 8.5K grade-school math word problems with worked answers.
https://huggingface.co/datasets/openai/gsm8k (configs main and socratic).
Answers mark calculator use as <<expression=result>> and end in "#### <number>"; the
assistant turn becomes text parts with python / python_output parts for the calculator,
so a model learns to call a tool and read its output.
"""

import re

from nanotasks.store import Example
from nanotasks.store.reader import Conversation, StrPath
from nanotasks.tasks.common import (
    Benchmark,
    Source,
    StoredTask,
    check_choice,
    check_type,
    evaluate_number,
    extract_answer,
)

REPO = "openai/gsm8k"
SUBSETS = ("main", "socratic")
SPLITS = ("train", "test")

CALCULATOR_SPAN = re.compile(r"(<<[^>]+>>)")


def answer_parts(answer):
    """Split an answer at its <<...>> spans. Text between spans is kept even when empty; each
    span's inside is split at its last '=' into the expression and its result."""
    parts = []
    for piece in CALCULATOR_SPAN.split(answer):
        if piece.startswith("<<") and piece.endswith(">>"):
            expression, equals, result = piece[2:-2].rpartition("=")
            if not equals:  # no '=': the whole inside is the expression
                expression, result = result, ""
            parts.append({"type": "python", "text": expression})
            parts.append({"type": "python_output", "text": result})
        else:
            parts.append({"type": "text", "text": piece})
    return parts


def normalise(row, source):
    check_type("question", row["question"], str)
    check_type("answer", row["answer"], str)
    messages = [
        {"role": "user", "content": row["question"]},
        {"role": "assistant", "content": answer_parts(row["answer"])},
    ]
    return Example({"messages": messages}, answer=extract_answer(row["answer"]))


BENCHMARK = Benchmark(
    "gsm8k",
    normalise=normalise,
    sources=tuple(
        Source("gsm8k", subset, split, REPO, subset, split)
        for subset in SUBSETS
        for split in SPLITS
    ),
)


class GSM8K(StoredTask):
    def __init__(
        self,
        subset: str,
        split: str,
        db: StrPath | None = None,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
    ) -> None:
        check_choice("GSM8K subset", subset, SUBSETS)
        check_choice("GSM8K split", split, SPLITS)
        super().__init__("gsm8k", subset, split, db, start, stop, step)

    @property
    def eval_type(self) -> str:
        return "generative"

    def evaluate(self, conversation: Conversation, response: str) -> int:
        return evaluate_number(conversation, response)
