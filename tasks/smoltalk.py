"""SmolTalk: general chat conversations for supervised fine-tuning of small models.
https://huggingface.co/datasets/HuggingFaceTB/smol-smoltalk (~460K train, ~24K test).
An OpenAI-style chat dataset, read as `--chat` reads one (tasks/chat.py): only each message's
role and content are kept, and the `source` column is the subject. Rows are checked at compile
time, so a malformed conversation never reaches training.
"""

from nanotasks.store.reader import StrPath
from nanotasks.tasks import chat
from nanotasks.tasks.common import Benchmark, Source, StoredTask, check_choice

REPO = "HuggingFaceTB/smol-smoltalk"
SPLITS = ("train", "test")


BENCHMARK = Benchmark(
    "smoltalk",
    normalise=chat.normalise,
    columns=chat.columns,
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
