"""MMLU: 57 subjects of multiple choice questions, from elementary mathematics to law.
https://huggingface.co/datasets/cais/mmlu. The auxiliary_train rows come once, from the
`auxiliary_train` config (where each row is nested under a "train" key), and are served
under both spellings: MMLU("all", "auxiliary_train") and MMLU("auxiliary_train", "train").
"""

from collections.abc import Sequence

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

REPO = "cais/mmlu"
LETTERS = ("A", "B", "C", "D")
SPLITS = ("auxiliary_train", "validation", "dev", "test")
# The older spelling, served from the same stored rows: (subset, split) -> stored (subset, split)
ALIASES = {("auxiliary_train", "train"): ("all", "auxiliary_train")}


def normalise(row, source):
    row = row.get("train", row)  # the auxiliary_train config nests each row
    check_type("question", row["question"], str)
    check_type("choices", row["choices"], list, str)
    check_type("answer", row["answer"], int)
    check_type("subject", row["subject"], str)
    choices = row["choices"]
    if len(choices) != 4:
        raise ValueError(f"{len(choices)} choices, MMLU has exactly 4")
    if row["answer"] not in range(4):
        raise ValueError(f"answer {row['answer']!r} is not an index 0-3")
    answer = LETTERS[row["answer"]]
    messages = [
        {"role": "user", "content": render_mc(row["question"], LETTERS, choices)},
        {"role": "assistant", "content": answer},
    ]
    conversation = {"messages": messages, "subject": row["subject"], "letters": LETTERS}
    return Example(conversation, answer=answer, subject=row["subject"])


BENCHMARK = Benchmark(
    "mmlu",
    normalise=normalise,
    aliases=ALIASES,
    sources=(
        Source("mmlu", "all", "auxiliary_train", REPO, "auxiliary_train", "train"),
        *(Source("mmlu", "all", split, REPO, "all", split) for split in SPLITS[1:]),
    ),
)


def with_letters(conversation):
    conversation["letters"] = LETTERS  # a tuple, as the reference returns it
    return conversation


class MMLU(StoredTask):
    def __init__(
        self,
        subset: str,
        split: str,
        db: StrPath | None = None,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
    ) -> None:

        check_choice("MMLU subset", subset, ("all", "auxiliary_train"))
        if subset == "auxiliary_train":
            check_choice("split of MMLU subset 'auxiliary_train'", split, ("train",))
            subset, split = ALIASES[subset, split]
        check_choice("MMLU split", split, SPLITS)
        super().__init__("mmlu", subset, split, db, start, stop, step)

    @property
    def eval_type(self) -> str:
        return "categorical"

    def get_example(self, index: int) -> Conversation:
        return with_letters(super().get_example(index))

    def get_examples(self, positions: Sequence[int]) -> list[Conversation]:
        return [with_letters(conversation) for conversation in super().get_examples(positions)]

    def evaluate(self, conversation: Conversation, response: str) -> bool:
        return evaluate_letter(conversation, response)
