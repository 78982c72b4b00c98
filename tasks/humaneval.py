"""HumanEval: 164 hand-written Python problems, each a signature and docstring to complete,
checked by unit tests. https://huggingface.co/datasets/openai/openai_humaneval.
evaluate runs the model's code in tasks.execution's sandbox and the problem's test in the
sandbox's checker, which sees only plain-data copies of what the code returns.
"""

import re

from nanotasks.store import Example
from nanotasks.store.reader import Conversation, StrPath
from nanotasks.tasks.common import Benchmark, Source, StoredTask, check_type
from nanotasks.tasks.execution import execute

REPO = "openai/openai_humaneval"

FENCED_CODE = re.compile(r"```(?:python)?\s*\n(.*?)\n```", re.DOTALL)


def normalise(row, source):
    for field in ("task_id", "prompt", "canonical_solution", "test", "entry_point"):
        check_type(field, row[field], str)
    messages = [
        {"role": "user", "content": row["prompt"]},
        {"role": "assistant", "content": f"{row['prompt']}\n{row['canonical_solution']}"},
    ]
    conversation = {"messages": messages, "entry_point": row["entry_point"], "test": row["test"]}
    return Example(conversation, subject=row["task_id"])


BENCHMARK = Benchmark(
    "humaneval",
    normalise=normalise,
    sources=(Source("humaneval", "openai_humaneval", "test", REPO, "openai_humaneval", "test"),),
)


def leading_imports(prompt):
    """The prompt's import lines from the top, passing over blanks and comments: a completion
    that rewrites the function often drops them."""
    imports = []
    for line in prompt.split("\n"):
        stripped = line.strip()
        if stripped.startswith(("import ", "from ")):
            imports.append(stripped)
        elif stripped and not stripped.startswith("#"):
            break
    return "\n".join(imports)


def code_of(response):
    """The first fenced code block of a response, else the whole response."""
    match = FENCED_CODE.search(response)
    return (match.group(1) if match else response).strip()


def program_for(conversation, response):
    return f"{leading_imports(conversation['messages'][0]['content'])}\n\n{code_of(response)}\n"


def problem_test(conversation):
    """The problem's test as the checker runs it: after the prompt, whose helpers some tests call
    (HumanEval/32's poly), with the entry point, which some tests also call by name
    (HumanEval/33), standing for the program's."""
    entry_point = conversation["entry_point"]
    return (
        f"{conversation['messages'][0]['content']}\n{conversation['test']}\n"
        f"{entry_point} = program.{entry_point}\ncheck({entry_point})\n"
    )


class HumanEval(StoredTask):
    def __init__(
        self,
        db: StrPath | None = None,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
    ) -> None:
        super().__init__("humaneval", "openai_humaneval", "test", db, start, stop, step)

    @property
    def eval_type(self) -> str:
        return "generative"

    def evaluate(self, conversation: Conversation, response: str) -> bool:
        return execute(program_for(conversation, response), test=problem_test(conversation)).passed
