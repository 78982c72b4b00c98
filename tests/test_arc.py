"""tasks/arc.py: ARC's rows normalised as nanochat's ARC task builds them, served in the
reference order, and evaluated. Expected conversations are rebuilt here from the parquet rows
by tests/reference.py, not with the normaliser under test."""

import pytest

from nanotasks.tasks.arc import ARC
from tests.conftest import SAMPLE
from tests.helpers import assistant, column, find, source_rows, stored, user
from tests.reference import multiple_choice


@pytest.mark.parametrize("subset", ["ARC-Easy", "ARC-Challenge"])
@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_arc_conversations_in_reference_order(sample_db, subset, split):
    task = ARC(subset, split, db=sample_db)
    rows = source_rows(SAMPLE, "allenai/ai2_arc", subset, split)
    assert task.eval_type == "categorical"
    assert len(task) == task.num_examples() == len(rows)
    for example, row in zip(task, rows, strict=True):
        labels, texts = row["choices"]["label"], row["choices"]["text"]
        prompt = multiple_choice(row["question"], labels, texts)
        assert example == {
            "messages": [user(prompt), assistant(row["answerKey"])],
            "letters": labels,
        }


def test_arc_evaluate(sample_db):
    examples = list(ARC("ARC-Easy", "test", db=sample_db)) + list(
        ARC("ARC-Easy", "train", db=sample_db)
    )
    numeric = [e for e in examples if e["letters"][0] == "1"]
    assert numeric, "the sample has ARC items labelled 1..n"
    task = ARC("ARC-Easy", "test", db=sample_db)
    for example in examples:
        gold = example["messages"][-1]["content"]
        assert task.evaluate(example, gold) is True
        wrong = next(letter for letter in example["letters"] if letter != gold)
        assert task.evaluate(example, wrong) is False
        for malformed in ("", f"{gold}.", "Z", gold.lower() if gold.isalpha() else "A"):
            with pytest.raises(ValueError, match="letters"):
                task.evaluate(example, malformed)


def test_arc_keeps_numeric_labels_and_three_or_five_choices(sample_db):
    easy = stored(sample_db, ("arc", "ARC-Easy", "train"))
    numeric = find(easy, "measuring the mass of a rock")
    assert numeric["letters"] == ["1", "2", "3", "4"]
    assert "- balance=3\n" in numeric["messages"][0]["content"]
    assert numeric["messages"][1] == {"role": "assistant", "content": "3"}
    assert find(easy, "when it freezes")["letters"] == ["A", "B", "C"]
    five = find(easy, "pumps blood")
    assert five["letters"] == list("ABCDE")
    assert five["messages"][0]["content"].endswith(
        "- liver=C\n- stomach=D\n- kidney=E\n\nRespond only with the letter of the correct answer."
    )
    assert set(column(sample_db, "answer", ("arc", "ARC-Easy", "train"))) == {"A", "B", "C", "3"}
