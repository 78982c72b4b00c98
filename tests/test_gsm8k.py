"""tasks/gsm8k.py: GSM8K's calculator spans and answer parts (also as properties, with
hypothesis), the reference order, evaluate and reward; against the real data in ../shared/hub
where it is present. Expected conversations are rebuilt from the parquet rows by
tests/reference.py."""

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nanotasks.tasks.gsm8k import CALCULATOR_SPAN, GSM8K, answer_parts
from tests.conftest import SAMPLE
from tests.helpers import assistant, column, find, source_rows, stored, user


def test_gsm8k_parts_with_several_calculator_spans(sample_db):
    task = GSM8K("main", "train", db=sample_db)
    by_question = {example["messages"][0]["content"]: example for example in task}
    lena = by_question[
        "Lena buys 3 notebooks at $4 each and a pen for $2. She pays with a $20 bill. "
        "How much change does she get?"
    ]
    assert lena["messages"][1] == assistant(
        [
            {"type": "text", "text": "The notebooks cost 3*4 = $"},
            {"type": "python", "text": "3*4"},
            {"type": "python_output", "text": "12"},
            {"type": "text", "text": "12.\nShe spends 12+2 = $"},
            {"type": "python", "text": "12+2"},
            {"type": "python_output", "text": "14"},
            {"type": "text", "text": "14 in total.\nHer change is 20-14 = $"},
            {"type": "python", "text": "20-14"},
            {"type": "python_output", "text": "6"},
            {"type": "text", "text": "6.\n#### 6"},
        ]
    )
    # the expression keeps everything before the LAST '='; a span without '=' has no output
    marbles = next(e for q, e in by_question.items() if q.startswith("A jar has"))
    assert marbles["messages"][1]["content"][1:3] == [
        {"type": "python", "text": "b=2*15"},
        {"type": "python_output", "text": "30"},
    ]
    muffins = next(e for q, e in by_question.items() if q.startswith("Each box holds"))
    assert muffins["messages"][1]["content"][1:3] == [
        {"type": "python", "text": "3*4"},
        {"type": "python_output", "text": ""},
    ]


@pytest.mark.parametrize("subset", ["main", "socratic"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_gsm8k_conversations_in_reference_order(sample_db, subset, split):
    task = GSM8K(subset, split, db=sample_db)
    rows = source_rows(SAMPLE, "openai/gsm8k", subset, split)
    assert task.eval_type == "generative" and len(task) == len(rows)
    for example, row in zip(task, rows, strict=True):
        check_gsm8k(example, row)


def check_gsm8k(example, row):
    """Question as the user turn; the parts, put back together, are the source answer."""
    question, answer = example["messages"]
    assert question == user(row["question"]) and answer["role"] == "assistant"
    parts = answer["content"]
    rebuilt, spans = "", 0
    for i, part in enumerate(parts):
        if part["type"] == "text":
            rebuilt += part["text"]
        elif part["type"] == "python":
            assert parts[i + 1]["type"] == "python_output"
            output = parts[i + 1]["text"]
            rebuilt += (
                f"<<{part['text']}={output}>>"
                if output or "=" in part["text"]
                else f"<<{part['text']}>>"
            )
            spans += 1
    assert rebuilt == row["answer"]
    assert spans == row["answer"].count("<<")
    assert parts[-1]["type"] == "text"


def test_gsm8k_evaluate_and_reward(sample_db):
    task = GSM8K("main", "test", db=sample_db)
    for example in task:
        gold = re.search(
            r"#### (\-?[0-9\.\,]+)", example["messages"][1]["content"][-1]["text"]
        ).group(1)
        assert task.evaluate(example, f"So the answer is\n#### {gold}") == 1
        assert (
            task.reward(example, f"#### {gold}") == 1.0 and type(task.reward(example, "")) is float
        )
        assert task.evaluate(example, f"#### {gold}1") == 0
        for malformed in ("", gold, f"###{gold}", f"####{gold}", f"The answer is {gold}"):
            assert task.evaluate(example, malformed) == 0
            assert task.reward(example, malformed) == 0.0
    thousands = next(
        e for e in task if e["messages"][1]["content"][-1]["text"].endswith("#### 1,620")
    )
    assert task.evaluate(thousands, "#### 1620") == 1  # commas are ignored on both sides
    assert task.evaluate(thousands, "#### 1,6,2,0 dollars") == 1
    assert type(task.evaluate(thousands, "#### 1620")) is int
    negative = next(e for e in task if e["messages"][1]["content"][-1]["text"].endswith("#### -25"))
    assert task.evaluate(negative, "#### -25") == 1 and task.evaluate(negative, "#### 25") == 0


def test_real_gsm8k(real_db, shared_hub):
    for subset, split in [("main", "test"), ("socratic", "test")]:
        task = GSM8K(subset, split, db=real_db)
        rows = source_rows(shared_hub, "openai/gsm8k", subset, split)
        indices = range(0, len(rows), 7)
        for i in indices:
            example = task[i]
            check_gsm8k(example, rows[i])
            gold = example["messages"][1]["content"][-1]["text"].rsplit("#### ", 1)[1]
            assert task.evaluate(example, f"#### {gold}") == 1
            assert task.evaluate(example, "no idea") == 0
    several = [
        e
        for e in GSM8K("main", "train", db=real_db, stop=200)
        if sum(p["type"] == "python" for p in e["messages"][1]["content"]) >= 4
    ]
    assert several


def test_gsm8k_calculator_spans(sample_db):
    train = stored(sample_db, ("gsm8k", "main", "train"))
    no_equals = find(train, "3 rows of 4 muffins")["messages"][1]["content"]
    assert no_equals[:3] == [
        {"type": "text", "text": "One box holds 3*4 = "},
        {"type": "python", "text": "3*4"},
        {"type": "python_output", "text": ""},
    ]
    two_equals = find(train, "15 red marbles")["messages"][1]["content"]
    assert {"type": "python", "text": "b=2*15"} in two_equals
    assert two_equals[two_equals.index({"type": "python", "text": "b=2*15"}) + 1] == {
        "type": "python_output",
        "text": "30",
    }
    negative = find(train, "fallen by 12 degrees")["messages"][1]["content"]
    assert negative[-1] == {"type": "text", "text": "-5 degrees.\n#### -5"}
    adjacent = find(train, "bake sale")["messages"][1]["content"]
    assert {"type": "text", "text": "250."} not in adjacent and adjacent[-1]["text"].endswith(
        "#### 1,250"
    )
    answers = dict(
        zip(
            (c["messages"][0]["content"] for c in train),
            column(sample_db, "answer", ("gsm8k", "main", "train")),
            strict=True,
        )
    )
    assert (
        answers[find(train, "bake sale")["messages"][0]["content"]] == "1250"
    )  # thousands separator dropped
    assert answers[find(train, "fallen by 12 degrees")["messages"][0]["content"]] == "-5"
    socratic = find(stored(sample_db, ("gsm8k", "socratic", "test")), "1,200 books")["messages"][1][
        "content"
    ]
    assert socratic[0]["text"].startswith("How many more books did it sell in February? ** ")


def joined(parts):
    """The answer text back from its parts: a calculator call as <<expression=result>>, or
    <<expression>> where it had no result."""
    text = []
    parts = iter(parts)
    for part in parts:
        if part["type"] == "text":
            text.append(part["text"])
            continue
        assert part["type"] == "python"
        output = next(parts)
        assert output["type"] == "python_output"
        result = f"={output['text']}" if output["text"] else ""
        text.append(f"<<{part['text']}{result}>>")
    return "".join(text)


SPAN_CHARACTERS = "ab1 +*=.<#\n"
spans = st.builds(lambda inside: f"<<{inside}>>", st.text(SPAN_CHARACTERS, min_size=1, max_size=12))
answers = st.lists(st.text(SPAN_CHARACTERS + ">", max_size=12) | spans, max_size=8).map("".join)


@given(answers)
def test_gsm8k_answer_parts_join_back_to_the_answer(answer):
    assume("=>>" not in answer)  # '<<e=>>' and '<<e>>' give the same parts (as in nanochat)
    parts = answer_parts(answer)
    assert joined(parts) == answer
    assert not any(CALCULATOR_SPAN.search(part["text"]) for part in parts if part["type"] == "text")


def test_gsm8k_a_call_with_an_empty_result_and_one_without_give_the_same_parts():
    assert answer_parts("x <<2+2=>> y") == answer_parts("x <<2+2>> y")
