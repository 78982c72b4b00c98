"""ARC, the AI2 Reasoning Challenge: grade-school science questions with 3 to 5 choices.
https://huggingface.co/datasets/allenai/ai2_arc (configs ARC-Easy and ARC-Challenge).
Labels are whatever the row has: mostly "A".."E", in some rows "1".."5".
"""

from nanotasks.store import Example
from nanotasks.tasks.common import (
    Benchmark,
    Source,
    StoredTask,
    check_choice,
    check_type,
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
    def __init__(self, subset, split, db=None, **kwargs):
        check_choice("ARC subset", subset, SUBSETS)
        check_choice("ARC split", split, SPLITS)
        super().__init__("arc", subset, split, db=db, **kwargs)

    @property
    def eval_type(self):
        return "categorical"

    def evaluate(self, conversation, response):
        return evaluate_letter(conversation, response)


def evaluate_letter(conversation, response):
    """Whether the response is the gold letter; a response that is no letter at all is an error."""
    if response not in conversation["letters"]:
        raise ValueError(
            f"response {response!r} is not one of the letters {list(conversation['letters'])}"
        )
    return response == conversation["messages"][-1]["content"]
