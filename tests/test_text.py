"""normalise_text's ASCII fast path gives exactly what the general definition gives."""

import re
import string
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from nanotasks.store.text import normalise_text


def by_definition(text):
    return re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).casefold()).strip()


@settings(max_examples=2000)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_text_normalises_as_defined(text):
    assert normalise_text(text) == by_definition(text)


@given(st.text())
def test_any_text_normalises_as_defined(text):
    assert normalise_text(text) == by_definition(text)


def test_examples():
    assert normalise_text("  What's 2+2?\tSay_it!\x1f") == "what s 2 2 say it"
    assert normalise_text("ＡＢＣ Straße") == "abc strasse"
    assert normalise_text(string.punctuation) == ""
