"""tasks/humaneval.py: the conversation, the program and test assembled from a row, and evaluate
through the sandbox; the real canonical solutions pass where ../shared/hub is present."""

from nanotasks.tasks.execution import execute_many
from nanotasks.tasks.humaneval import HumanEval, problem_test, program_for
from tests.conftest import SAMPLE
from tests.helpers import assistant, find, source_rows, stored, user


def test_humaneval_conversations(sample_db):
    task = HumanEval(db=sample_db)
    rows = source_rows(SAMPLE, "openai/openai_humaneval", "openai_humaneval", "test")
    assert task.eval_type == "generative" and len(task) == len(rows) == 5
    for example, row in zip(task, rows, strict=True):
        assert example == {
            "messages": [
                user(row["prompt"]),
                assistant(row["prompt"] + "\n" + row["canonical_solution"]),
            ],
            "entry_point": row["entry_point"],
            "test": row["test"],
        }


def test_humaneval_program_and_test_are_assembled(sample_db):
    example = next(e for e in HumanEval(db=sample_db) if e["entry_point"] == "merge_touching")
    body = "def merge_touching(intervals):\n    return sorted(intervals)"
    # imports from the prompt's top, past a comment; code from the first fenced block, stripped
    response = f"Here:\n```python\n\n{body}\n```\nand another:\n```\nprint(1)\n```"
    assert program_for(example, response) == f"from typing import List, Tuple\n\n{body}\n"
    assert problem_test(example) == (
        f"{example['messages'][0]['content']}\n{example['test']}\n"
        "merge_touching = program.merge_touching\ncheck(merge_touching)\n"
    )
    assert program_for(example, f"```\n{body}\n```") == program_for(example, response)
    assert program_for(example, f"  {body}\n\n") == program_for(
        example, response
    )  # no fence: all of it


def test_humaneval_evaluate(sample_db):
    task = HumanEval(db=sample_db)
    square = next(e for e in task if e["entry_point"] == "is_perfect_square")
    canonical = square["messages"][1]["content"]
    assert task.evaluate(square, canonical) is True
    assert task.evaluate(square, f"Sure!\n```python\n{canonical}\n```\nDone.") is True
    # the completion may drop the prompt's `import math`: evaluate puts it back
    assert (
        task.evaluate(
            square, "def is_perfect_square(n):\n    return n >= 0 and math.isqrt(n) ** 2 == n"
        )
        is True
    )
    assert task.evaluate(square, "def is_perfect_square(n):\n    return True") is False
    assert task.evaluate(square, "I don't know.") is False
    assert task.evaluate(square, "import sys\nsys.exit(0)") is False


def test_real_humaneval_canonical_solutions_pass(real_db):
    task = HumanEval(db=real_db)
    examples = list(task)
    results = execute_many(
        [program_for(e, e["messages"][1]["content"]) for e in examples],
        tests=list(map(problem_test, examples)),
    )
    assert [r.reason for r in results if not r.passed] == []
    wrong = execute_many(
        [program_for(e, "def nothing():\n    pass") for e in examples[:8]],
        tests=list(map(problem_test, examples[:8])),
    )
    assert not any(r.passed for r in wrong)


def test_humaneval_conversation(sample_db):
    conversation = find(
        stored(sample_db, ("humaneval", "openai_humaneval", "test")), "def caesar_shift"
    )
    prompt = conversation["messages"][0]["content"]
    assert conversation["messages"][1]["content"].startswith(prompt + "\n    out = []")
    assert (
        conversation["entry_point"] == "caesar_shift"
        and "def check(candidate)" in conversation["test"]
    )
