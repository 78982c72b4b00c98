"""A conversation as the pages show it: its messages cut into segments, runs of text with the
classes that style them (templates/_nanotasks_transcript.html draws them).

Everything marked comes from the file, not from knowing a benchmark: the gold answer is the
`answer` column, marked where the last assistant message gives it; a conversation that lists
its `letters` has choice lines ending in `=<letter>` in its prompt, and the gold one is marked;
tool calls are parts of type python and python_output.
"""

import itertools
import re
from dataclasses import dataclass

from nanotasks.store.text import RUN, message_text, prompt_of, runs, token_spans

PREVIEW = 120  # characters of a folded message shown before it is opened
PIECE_CLASSES = {"text": "", "python": "call", "python_output": "result"}


@dataclass
class Message:
    role: str
    segments: list  # [(text, classes)]: classes a space-separated string, "" for plain text
    characters: int
    folded: bool
    preview: str


def transcript(conversation, answer=None, shared=frozenset(), exact=False, fold_at=None):
    """The messages of `conversation`. answer: the gold answer; shared: 13-word runs (tuples of
    tokens) to mark in user messages; exact: mark the whole prompt; fold_at: fold messages of
    more characters than this."""
    messages = conversation["messages"]
    last_assistant = max(
        (i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None
    )
    first_user = next((i for i, m in enumerate(messages) if m["role"] == "user"), None)
    choices = _choice_line(conversation.get("letters"))
    result = []
    for index, message in enumerate(messages):
        pieces = _pieces(message)
        marks = []
        if message["role"] == "user":
            if choices:
                marks += [
                    (p, m.start(), m.end(), "choice gold" if m.group(1) == answer else "choice")
                    for p, (text, kind) in enumerate(pieces)
                    if not kind
                    for m in choices.finditer(text)
                ]
            marks += _shared_marks(pieces, shared)
            if exact and index == first_user:
                marks += [
                    (p, 0, len(text), "shared") for p, (text, kind) in enumerate(pieces) if not kind
                ]
        if index == last_assistant and answer:
            marks += _gold_mark(pieces, answer)
        text = message_text(message)
        folded = fold_at is not None and len(text) > fold_at
        result.append(
            Message(
                message["role"],
                _segments(pieces, marks),
                len(text),
                folded,
                text[:PREVIEW] + "…" if folded else "",
            )
        )
    return result


def _pieces(message):
    """(text, class) of each part of a message: a tool call's expression and its result are
    shown apart from the text, "=" before the result."""
    content = message["content"]
    if isinstance(content, str):
        return [(content, "")]
    return [
        (
            "=" + part["text"] if part["type"] == "python_output" else part["text"],
            PIECE_CLASSES[part["type"]],
        )
        for part in content
    ]


def _choice_line(letters):
    if not letters:
        return None
    return re.compile(rf"^.*=({'|'.join(map(re.escape, letters))})[ \t]*$", re.MULTILINE)


def _gold_mark(pieces, answer):
    """The last place the message gives the answer as a word of its own; a number may have
    thousands separators there (1,620 for 1620)."""
    written = ",?".join(map(re.escape, answer)) if answer.isdigit() else re.escape(answer)
    pattern = re.compile(rf"(?<![\w,.]){written}(?![\w,]|\.\d)")
    for p in reversed(range(len(pieces))):
        found = list(pattern.finditer(pieces[p][0]))
        if found and not pieces[p][1]:
            return [(p, found[-1].start(), found[-1].end(), "gold")]
    return []


def _shared_marks(pieces, shared):
    """Marks over every run of RUN words of the message that is in `shared`."""
    if not shared:
        return []
    spans = [
        (p, start, end, token)
        for p, (text, _) in enumerate(pieces)
        for start, end, token in token_spans(text)
    ]
    words = [token for _, _, _, token in spans]
    marks = []
    for i in range(len(words) - RUN + 1):
        if tuple(words[i : i + RUN]) in shared:
            (first, start, _, _), (last, _, end, _) = spans[i], spans[i + RUN - 1]
            if first == last:  # one highlight, spaces and punctuation included
                marks.append((first, start, end, "shared"))
            else:
                marks += [(p, start, end, "shared") for p, start, end, _ in spans[i : i + RUN]]
    return marks


def _segments(pieces, marks):
    """Each piece cut where a mark starts or ends: (text, classes), neighbours with the same
    classes joined, so a marked run of words is one highlight."""
    segments: list[tuple[str, str]] = []
    for p, (text, kind) in enumerate(pieces):
        here = [(start, end, name) for piece, start, end, name in marks if piece == p]
        cuts = sorted({0, len(text), *(s for s, _, _ in here), *(e for _, e, _ in here)})
        for start, end in itertools.pairwise(cuts):
            names = ([kind] if kind else []) + [
                name for s, e, name in here if s <= start and end <= e
            ]
            classes = " ".join(dict.fromkeys(names))
            if segments and segments[-1][1] == classes and not kind:
                segments[-1] = (segments[-1][0] + text[start:end], classes)
            else:
                segments.append((text[start:end], classes))
    return segments


def shared_runs(evaluation, training):
    """The runs of the evaluation conversation's prompt that a user message of the training
    conversation also has: what makes an 'ngram' overlap (compiler/overlap.py)."""
    users = [message_text(m) for m in training["messages"] if m["role"] == "user"]
    return runs([prompt_of(evaluation["messages"])]) & runs(users)
