"""Property-based tests (hypothesis) of the pure functions: a Task's view against Python's
own range, the mixture order against the reference's list of pairs, GSM8K's answer parts,
and the multiple choice prompt."""

import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nanotasks.tasks.common import Task, TaskMixture, TaskSequence, render_mc
from nanotasks.tasks.gsm8k import CALCULATOR_SPAN, answer_parts
from tests.reference import multiple_choice


class Items(Task):
    """n examples, example i being (name, i)."""

    def __init__(self, n, name="items", **kwargs):
        super().__init__(**kwargs)
        self.n, self.name = n, name

    def num_examples(self):
        return self.n

    def get_example(self, index):
        if not 0 <= index < self.n:
            raise IndexError(index)
        return (self.name, index)


@st.composite
def views(draw):
    """(n, start, stop, step) of a valid view; stop may be None or lie past the end."""
    n = draw(st.integers(0, 60))
    start = draw(st.integers(0, 70))
    stop = draw(st.none() | st.integers(start, 80))
    return n, start, stop, draw(st.integers(1, 12))


@given(views())
def test_a_view_indexes_like_range(view):
    n, start, stop, step = view
    task = Items(n, start=start, stop=stop, step=step)
    expected = range(start, n if stop is None else stop, step)
    assert len(task) == len(expected)
    for i in [*range(len(expected)), *range(-len(expected), 0)]:
        if expected[i] < n:
            assert task[i] == ("items", expected[i])
        else:  # a stop past the end is not clamped (as in nanochat): reading there fails
            with pytest.raises(IndexError):
                task[i]
    for i in (len(expected), -len(expected) - 1):
        with pytest.raises(IndexError):
            task[i]
    if stop is None or stop <= n:
        assert list(task) == [("items", i) for i in expected]


@given(st.integers(-5, 5), st.none() | st.integers(-5, 5), st.integers(-3, 3))
def test_an_invalid_view_is_refused(start, stop, step):
    assume(start < 0 or (stop is not None and stop < start) or step < 1)
    with pytest.raises(ValueError, match="invalid view"):
        Items(10, start=start, stop=stop, step=step)


@given(st.lists(st.integers(0, 40), max_size=8), st.booleans(), views())
def test_the_mixture_order_is_the_reference_shuffle_of_pairs(lengths, repeat_first, view):
    """nanochat builds the list of (task, index) pairs task by task and shuffles it with
    random.Random(42); passing a task twice oversamples it."""
    tasks = [Items(n, name=f"task{t}") for t, n in enumerate(lengths)]
    if repeat_first and tasks:
        tasks.append(tasks[0])
    pairs = [(t, i) for t, task in enumerate(tasks) for i in range(len(task))]
    random.Random(42).shuffle(pairs)
    expected = [tasks[t][i] for t, i in pairs]
    assert list(TaskMixture(tasks)) == expected
    assert list(TaskSequence(tasks)) == [task[i] for task in tasks for i in range(len(task))]
    _, start, stop, step = view
    if stop is not None:  # a view within the mixture's length
        stop = max(start, min(stop, len(expected)))
    assert list(TaskMixture(tasks, start=start, stop=stop, step=step)) == expected[start:stop:step]


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


line_text = st.text(st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)))


@given(line_text, st.lists(st.tuples(st.sampled_from("ABCDE12345"), line_text), min_size=1,
                           max_size=5, unique_by=lambda pair: pair[0]))
def test_render_mc_is_the_reference_for_any_question_and_choices(question, lettered):
    letters, choices = [pair[0] for pair in lettered], [pair[1] for pair in lettered]
    assert render_mc(question, letters, choices) == multiple_choice(question, letters, choices)
