"""tasks/spellingbee.py: SpellingBee and SimpleSpelling, generated from the stored word list:
pinned examples, the same in another process, views; the real word list where it is present."""

import hashlib
import json
import random
import re
import subprocess
import sys

import pytest

from nanotasks.tasks.spellingbee import SimpleSpelling, SpellingBee
from tests.conftest import SAMPLE
from tests.helpers import assistant, user

SPELLING_BEE_TRAIN_0 = {
    "messages": [
        user("how many times does the letter \"p\" appear in 'trip'?"),
        assistant(
            [
                {
                    "type": "text",
                    "text": "Counting 'p' in 'trip'. First I spell the word out:\ntrip:t,r,i,p\n\n"
                    "Then I go through it letter by letter:\n1:t\n2:r\n3:i\n4:p yes, count=1\n\n"
                    "By hand I get 1.",
                },
                {"type": "text", "text": "\n\nNow the same count in Python:\n\n"},
                {"type": "python", "text": "'trip'.count('p')"},
                {"type": "python_output", "text": "1"},
                {"type": "text", "text": "\n\nPython agrees: 1.\n\n#### 1"},
            ]
        ),
    ]
}
SPELLING_BEE_TEST_0 = {
    "messages": [
        user("How many 'm' are in the word home?"),
        assistant(
            [
                {
                    "type": "text",
                    "text": "Counting 'm' in 'home'. First I spell the word out:\nhome:h,o,m,e\n\n"
                    "Then I go through it letter by letter:\n1:h\n2:o\n3:m yes, count=1\n4:e\n\n"
                    "By hand I get 1.",
                },
                {"type": "text", "text": "\n\nNow the same count in Python:\n\n"},
                {"type": "python", "text": "'home'.count('m')"},
                {"type": "python_output", "text": "1"},
                {"type": "text", "text": "\n\nPython agrees: 1.\n\n#### 1"},
            ]
        ),
    ]
}


def sample_words():
    text = (SAMPLE / "dwyl/english-words/words_alpha.txt").read_text()
    return [word.strip() for word in text.splitlines() if word.strip()]


def test_spelling_bee_pinned_examples(sample_db):
    # a change to how examples are generated changes every training run: it must be deliberate
    assert SpellingBee(db=sample_db)[0] == SPELLING_BEE_TRAIN_0
    assert SpellingBee(split="test", db=sample_db)[0] == SPELLING_BEE_TEST_0


# sha256 of json.dumps(list(task), ensure_ascii=False) of the default 1000 examples on the sample
# word list
SPELLING_DIGESTS = {
    (SpellingBee, "train"): "b45f569987c4428578df69f353488dca55e4c42dc3c894c89e88c96e943add25",
    (SpellingBee, "test"): "bda646a386386961bd4ad82c1b9fe11bca4a25548c394017d12568565826f264",
    (SimpleSpelling, "train"): "fc66706aa4d17d90327163fe3e80e47264a54f5e450d767d97a79efe992261b5",
    (SimpleSpelling, "test"): "f487d26770262ddc4850ad4359be586ad12fa47c7bbd48cf184cb9232a9fe031",
}


@pytest.mark.parametrize("cls, split", list(SPELLING_DIGESTS))
def test_spelling_examples_pinned_by_digest(sample_db, cls, split):
    examples = list(cls(split=split, db=sample_db))
    digest = hashlib.sha256(json.dumps(examples, ensure_ascii=False).encode()).hexdigest()
    assert digest == SPELLING_DIGESTS[cls, split]


@pytest.mark.parametrize("split", ["train", "test"])
def test_spelling_bee_structure(sample_db, split):
    words = set(sample_words())
    task = SpellingBee(size=400, split=split, db=sample_db)
    assert task.eval_type == "generative" and len(task) == 400
    letters_in_word = 0
    for example in task:
        question, answer = example["messages"]
        assert question["role"] == "user" and answer["role"] == "assistant"
        spelled, announce, code, output, final = answer["content"]
        assert [p["type"] for p in answer["content"]] == [
            "text",
            "text",
            "python",
            "python_output",
            "text",
        ]
        word, letter = re.fullmatch(r"'([a-z]+)'\.count\('([a-z])'\)", code["text"]).groups()
        assert word in words and word in question["content"] and letter in question["content"]
        count = word.count(letter)
        letters_in_word += letter in word
        assert f"\n{word}:{','.join(word)}\n" in spelled["text"]
        running = 0
        for position, char in enumerate(word, 1):  # position by position, with a running count
            running += char == letter
            line = (
                f"{position}:{char} yes, count={running}"
                if char == letter
                else f"{position}:{char}"
            )
            assert f"\n{line}\n" in spelled["text"]
        assert "Python" in announce["text"]
        assert output["text"] == str(count) and final["text"].endswith(f"#### {count}")
        assert (
            task.evaluate(example, f"#### {count}") == 1
            and task.reward(example, f"#### {count + 1}") == 0.0
        )
    assert 320 < letters_in_word < 400  # 90% pick a letter of the word, the rest any letter


def test_spelling_bee_phrasings_vary(sample_db):
    questions = [
        example["messages"][0]["content"] for example in SpellingBee(size=400, db=sample_db)
    ]
    assert any(q.endswith("?") for q in questions) and not all(q.endswith("?") for q in questions)
    assert any(re.search(r"[\u4e00-\u9fff]", q) for q in questions)  # Chinese
    assert any(re.search(r"[\uac00-\ud7af]", q) for q in questions)  # Korean
    assert any(re.search(r"[\u3040-\u30ff]", q) for q in questions)  # Japanese
    assert any("¿" in q for q in questions) and any("Wie " in q or "wie " in q for q in questions)
    assert any("combien" in q.lower() for q in questions)
    assert any(q[0].isupper() for q in questions) and any(
        q.startswith(("how", "count", "tell")) for q in questions
    )


def test_spelling_examples_are_the_same_in_another_process(sample_db):
    code = (
        "import json; from nanotasks.tasks.spellingbee import SpellingBee, SimpleSpelling; "
        f"db = {str(sample_db)!r}; "
        "print(json.dumps("
        "[SpellingBee(split=s, db=db)[i] for s in ('train', 'test') for i in (0, 7, 999)] + "
        "[SimpleSpelling(split=s, db=db)[i] for s in ('train', 'test') for i in (0, 7, 999)]))"
    )
    here = [SpellingBee(split=s, db=sample_db)[i] for s in ("train", "test") for i in (0, 7, 999)]
    here += [
        SimpleSpelling(split=s, db=sample_db)[i] for s in ("train", "test") for i in (0, 7, 999)
    ]
    for hash_seed in ("0", "12345"):  # string hashing must not matter
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": hash_seed},
        )
        assert json.loads(result.stdout) == here


@pytest.mark.parametrize("split, seed_offset", [("train", 0), ("test", 10_000_000)])
def test_simple_spelling(sample_db, split, seed_offset):
    words = sample_words()
    random.Random(42).shuffle(words)
    task = SimpleSpelling(size=50, split=split, db=sample_db)
    assert len(task) == 50
    for i, example in enumerate(task):
        word = random.Random(seed_offset + i).choice(words)
        assert example == {
            "messages": [user(f"Spell the word: {word}"), assistant(f"{word}:{','.join(word)}")]
        }
    assert SimpleSpelling(db=sample_db)[0] == {
        "messages": [user("Spell the word: copy"), assistant("copy:c,o,p,y")]
    }


def test_spelling_views_and_range(sample_db):
    task = SpellingBee(size=10, db=sample_db, start=4, step=3)  # 4, 7
    assert list(task) == [SpellingBee(db=sample_db)[4], SpellingBee(db=sample_db)[7]]
    with pytest.raises(IndexError):
        SpellingBee(size=10, db=sample_db)[10]


def test_real_spelling(real_db, shared_hub):
    words = {
        w.strip()
        for w in (shared_hub / "dwyl/english-words/words_alpha.txt").read_text().splitlines()
    }
    task = SpellingBee(size=200, db=real_db)
    for example in task:
        code = example["messages"][1]["content"][2]["text"]
        word, letter = re.fullmatch(r"'([a-z]+)'\.count\('([a-z])'\)", code).groups()
        assert word in words
        assert example["messages"][1]["content"][-1]["text"].endswith(f"#### {word.count(letter)}")
    spelled = [
        e["messages"][0]["content"].removeprefix("Spell the word: ")
        for e in SimpleSpelling(size=200, db=real_db)
    ]
    assert set(spelled) <= words and len(set(spelled)) > 190
