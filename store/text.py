"""How text is normalised before it is hashed or compared across benchmarks."""

import re
import string
import unicodedata

_NON_WORD = re.compile(r"[\W_]+")
# For ASCII text: every byte that is not a lower-case letter or digit becomes a space
_ASCII_NON_WORD = bytes(c if chr(c) in string.ascii_lowercase + string.digits else 32 for c in range(256))


def normalise_text(text):
    """Case-folded words separated by single spaces: punctuation and spacing do not count."""
    if text.isascii():  # the same result, 3x faster: NFKC changes nothing, casefold is lower()
        return b" ".join(text.lower().encode().translate(_ASCII_NON_WORD).split()).decode()
    text = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", text).strip()


def message_text(message):
    """A message's text: its content, or its parts joined, a tool call written as GSM8K writes
    calculator calls, <<expression=result>> (<<expression>> without a result)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(_part_text(part) for part in content)


def _part_text(part):
    if part["type"] == "python":
        return f"<<{part['text']}"
    if part["type"] == "python_output":
        return f"={part['text']}>>" if part["text"] else ">>"
    return part["text"]


def prompt_of(messages):
    """The first user message: what a model is asked."""
    return next((message_text(m) for m in messages if m["role"] == "user"), "")
