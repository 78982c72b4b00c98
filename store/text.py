"""How text is normalised before it is hashed or compared across benchmarks."""

import re
import string
import unicodedata

_NON_WORD = re.compile(r"[\W_]+")
RUN = 13  # words in a shared run that makes an overlap (compiler/overlap.py): see runs()
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # as str.splitlines sees them
# The words normalise_text keeps (runs of letters and digits), and each line break
TOKEN = re.compile(rf"[^\W_]+|[{LINE_BREAKS}]")
# For ASCII text: every byte that is not a lower-case letter or digit becomes a space, except
# that a line break becomes NUL
_ASCII_TOKENS = bytes(
    c if chr(c) in string.ascii_lowercase + string.digits else 0 if chr(c) in LINE_BREAKS else 32
    for c in range(256)
)


def ascii_tokens(text):
    """The tokens of ASCII `text` as tokens(text) finds them, several times faster (NFKC changes
    nothing, casefold is lower()), as UTF-8: the words separated by spaces, each line break a
    NUL byte."""
    return text.lower().encode().translate(_ASCII_TOKENS)


def normalise_text(text):
    """Case-folded words separated by single spaces: punctuation and spacing do not count."""
    if text.isascii():  # the same result, 3x faster
        return b" ".join(ascii_tokens(text).replace(b"\0", b" ").split()).decode()
    text = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", text).strip()


def tokens(text):
    """The words of `text` as normalise_text makes them, with its line breaks between them:
    what overlaps are found on (no run of words crosses a line)."""
    return TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def runs(texts):
    """Every run of RUN tokens of `texts` within a line (no line break among them), as tuples:
    what an evaluation prompt and a training message share to make an 'ngram' overlap."""
    found = set()
    for text in texts:
        words = tokens(text)
        for i in range(len(words) - RUN + 1):
            window = tuple(words[i : i + RUN])
            if not any(word in LINE_BREAKS for word in window):
                found.add(window)
    return found


def token_spans(text):
    """Where each token is in `text` itself, to mark it: (start, end, token). Each word is
    normalised on its own, which agrees with tokens(text) unless NFKC turns a symbol into
    letters (a unit sign such as ㎏)."""
    return [
        (m.start(), m.end(), unicodedata.normalize("NFKC", m.group()).casefold())
        for m in TOKEN.finditer(text)
    ]


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
