"""Every Task class against data/sample compiled with the real CLI, and against the real data in
../shared/hub where it is present.

Expected conversations are rebuilt here from the parquet rows by the rules of the spec (and of
nanochat's tasks/, where it pins them), not with the normalisers under test.
"""

import hashlib
import json
import random
import re
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import REPO, SAMPLE, nanotasks
from nanotasks.store.reader import NotInStore, StoreNotFound
from nanotasks.tasks.arc import ARC
from nanotasks.tasks.common import render_mc
from nanotasks.tasks.customjson import CustomJSON
from nanotasks.tasks.execution import execute_many
from nanotasks.tasks.gsm8k import GSM8K
from nanotasks.tasks.humaneval import HumanEval, problem_test, program_for
from nanotasks.tasks.mmlu import MMLU
from nanotasks.tasks.smoltalk import SmolTalk
from nanotasks.tasks.spellingbee import SimpleSpelling, SpellingBee
from tests.reference import multiple_choice


def source_rows(root, repo, config, split):
    """The rows of a hub-layout split, in the reference order the tasks serve them in."""
    files = sorted((root / repo).glob(f"{config}/{split}-*.parquet"))
    rows = [row for path in files for row in pq.read_table(path).to_pylist()]
    return [rows[i] for i in np.random.default_rng(42).permutation(len(rows))]


def user(content):
    return {"role": "user", "content": content}


def assistant(content):
    return {"role": "assistant", "content": content}


# --- render_mc --------------------------------------------------------------------------------

def test_render_mc_exact_text():
    # pins the reference, tests/reference.py's multiple_choice, that every other test compares with
    expected = ("Multiple Choice question: 2+2?\n- 3=A\n- 4=B\n- x=y=C\n\n"
                "Respond only with the letter of the correct answer.")
    assert render_mc("2+2?", ["A", "B", "C"], ["3", "4", "x=y"]) == expected
    assert multiple_choice("2+2?", ["A", "B", "C"], ["3", "4", "x=y"]) == expected


# --- ARC --------------------------------------------------------------------------------------

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
        assert example == {"messages": [user(prompt), assistant(row["answerKey"])], "letters": labels}


def test_arc_evaluate(sample_db):
    examples = list(ARC("ARC-Easy", "test", db=sample_db)) + list(ARC("ARC-Easy", "train", db=sample_db))
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


# --- MMLU -------------------------------------------------------------------------------------

@pytest.mark.parametrize("split, config, source_split", [
    ("auxiliary_train", "auxiliary_train", "train"), ("validation", "all", "validation"),
    ("dev", "all", "dev"), ("test", "all", "test")])
def test_mmlu_conversations_in_reference_order(sample_db, split, config, source_split):
    task = MMLU("all", split, db=sample_db)
    rows = source_rows(SAMPLE, "cais/mmlu", config, source_split)
    assert task.eval_type == "categorical" and len(task) == len(rows)
    for example, row in zip(task, rows, strict=True):
        row = row.get("train", row)  # the auxiliary_train config nests its rows
        assert example == {
            "messages": [user(multiple_choice(row["question"], "ABCD", row["choices"])), assistant("ABCD"[row["answer"]])],
            "subject": row["subject"], "letters": ("A", "B", "C", "D")}
        assert type(example["letters"]) is tuple  # as nanochat's MMLU.letters


def test_mmlu_both_auxiliary_train_spellings_equal_at_every_index(sample_db):
    new, old = MMLU("all", "auxiliary_train", db=sample_db), MMLU("auxiliary_train", "train", db=sample_db)
    assert len(new) == len(old) == 8
    assert [new[i] for i in range(len(new))] == [old[i] for i in range(len(old))]
    assert MMLU("auxiliary_train", "train", db=sample_db, start=3, step=2)[1] == new[5]


def test_mmlu_evaluate(sample_db):
    task = MMLU("all", "dev", db=sample_db)
    for example in task:
        gold = example["messages"][-1]["content"]
        assert task.evaluate(example, gold) is True
        assert task.evaluate(example, "ABCD"[("ABCD".index(gold) + 1) % 4]) is False
        for malformed in ("E", "a", " A", "The answer is A"):
            with pytest.raises(ValueError):
                task.evaluate(example, malformed)


# --- GSM8K ------------------------------------------------------------------------------------

def test_gsm8k_parts_with_several_calculator_spans(sample_db):
    task = GSM8K("main", "train", db=sample_db)
    by_question = {example["messages"][0]["content"]: example for example in task}
    lena = by_question["Lena buys 3 notebooks at $4 each and a pen for $2. She pays with a $20 bill. "
                       "How much change does she get?"]
    assert lena["messages"][1] == assistant([
        {"type": "text", "text": "The notebooks cost 3*4 = $"},
        {"type": "python", "text": "3*4"}, {"type": "python_output", "text": "12"},
        {"type": "text", "text": "12.\nShe spends 12+2 = $"},
        {"type": "python", "text": "12+2"}, {"type": "python_output", "text": "14"},
        {"type": "text", "text": "14 in total.\nHer change is 20-14 = $"},
        {"type": "python", "text": "20-14"}, {"type": "python_output", "text": "6"},
        {"type": "text", "text": "6.\n#### 6"}])
    # the expression keeps everything before the LAST '='; a span without '=' has no output
    marbles = next(e for q, e in by_question.items() if q.startswith("A jar has"))
    assert marbles["messages"][1]["content"][1:3] == [{"type": "python", "text": "b=2*15"},
                                                      {"type": "python_output", "text": "30"}]
    muffins = next(e for q, e in by_question.items() if q.startswith("Each box holds"))
    assert muffins["messages"][1]["content"][1:3] == [{"type": "python", "text": "3*4"},
                                                      {"type": "python_output", "text": ""}]


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
            rebuilt += f"<<{part['text']}={output}>>" if output or "=" in part["text"] else f"<<{part['text']}>>"
            spans += 1
    assert rebuilt == row["answer"]
    assert spans == row["answer"].count("<<")
    assert parts[-1]["type"] == "text"


def test_gsm8k_evaluate_and_reward(sample_db):
    task = GSM8K("main", "test", db=sample_db)
    for example in task:
        gold = re.search(r"#### (\-?[0-9\.\,]+)", example["messages"][1]["content"][-1]["text"]).group(1)
        assert task.evaluate(example, f"So the answer is\n#### {gold}") == 1
        assert task.reward(example, f"#### {gold}") == 1.0 and type(task.reward(example, "")) is float
        assert task.evaluate(example, f"#### {gold}1") == 0
        for malformed in ("", gold, f"###{gold}", f"####{gold}", f"The answer is {gold}"):
            assert task.evaluate(example, malformed) == 0
            assert task.reward(example, malformed) == 0.0
    thousands = next(e for e in task if e["messages"][1]["content"][-1]["text"].endswith("#### 1,620"))
    assert task.evaluate(thousands, "#### 1620") == 1  # commas are ignored on both sides
    assert task.evaluate(thousands, "#### 1,6,2,0 dollars") == 1
    assert type(task.evaluate(thousands, "#### 1620")) is int
    negative = next(e for e in task if e["messages"][1]["content"][-1]["text"].endswith("#### -25"))
    assert task.evaluate(negative, "#### -25") == 1 and task.evaluate(negative, "#### 25") == 0


# --- HumanEval --------------------------------------------------------------------------------

def test_humaneval_conversations(sample_db):
    task = HumanEval(db=sample_db)
    rows = source_rows(SAMPLE, "openai/openai_humaneval", "openai_humaneval", "test")
    assert task.eval_type == "generative" and len(task) == len(rows) == 5
    for example, row in zip(task, rows, strict=True):
        assert example == {
            "messages": [user(row["prompt"]), assistant(row["prompt"] + "\n" + row["canonical_solution"])],
            "entry_point": row["entry_point"], "test": row["test"]}


def test_humaneval_program_and_test_are_assembled(sample_db):
    example = next(e for e in HumanEval(db=sample_db) if e["entry_point"] == "merge_touching")
    body = "def merge_touching(intervals):\n    return sorted(intervals)"
    # imports from the prompt's top, past a comment; code from the first fenced block, stripped
    response = f"Here:\n```python\n\n{body}\n```\nand another:\n```\nprint(1)\n```"
    assert program_for(example, response) == f"from typing import List, Tuple\n\n{body}\n"
    assert problem_test(example) == (f"{example['messages'][0]['content']}\n{example['test']}\n"
                                     "merge_touching = program.merge_touching\ncheck(merge_touching)\n")
    assert program_for(example, f"```\n{body}\n```") == program_for(example, response)
    assert program_for(example, f"  {body}\n\n") == program_for(example, response)  # no fence: all of it


def test_humaneval_evaluate(sample_db):
    task = HumanEval(db=sample_db)
    square = next(e for e in task if e["entry_point"] == "is_perfect_square")
    canonical = square["messages"][1]["content"]
    assert task.evaluate(square, canonical) is True
    assert task.evaluate(square, f"Sure!\n```python\n{canonical}\n```\nDone.") is True
    # the completion may drop the prompt's `import math`: evaluate puts it back
    assert task.evaluate(square, "def is_perfect_square(n):\n    return n >= 0 and math.isqrt(n) ** 2 == n") is True
    assert task.evaluate(square, "def is_perfect_square(n):\n    return True") is False
    assert task.evaluate(square, "I don't know.") is False
    assert task.evaluate(square, "import sys\nsys.exit(0)") is False


# --- SmolTalk ---------------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "test"])
def test_smoltalk_messages_as_in_the_source(sample_db, split):
    task = SmolTalk(split, db=sample_db)
    rows = source_rows(SAMPLE, "HuggingFaceTB/smol-smoltalk", "data", split)
    assert task.eval_type == "generative" and len(task) == len(rows)
    for example, row in zip(task, rows, strict=True):
        assert example == {"messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]]}


# --- SpellingBee and SimpleSpelling -----------------------------------------------------------

SPELLING_BEE_TRAIN_0 = {"messages": [
    user("how many times does the letter \"p\" appear in 'trip'?"),
    assistant([
        {"type": "text", "text": "Counting 'p' in 'trip'. First I spell the word out:\ntrip:t,r,i,p\n\n"
                                 "Then I go through it letter by letter:\n1:t\n2:r\n3:i\n4:p yes, count=1\n\n"
                                 "By hand I get 1."},
        {"type": "text", "text": "\n\nNow the same count in Python:\n\n"},
        {"type": "python", "text": "'trip'.count('p')"},
        {"type": "python_output", "text": "1"},
        {"type": "text", "text": "\n\nPython agrees: 1.\n\n#### 1"}])]}
SPELLING_BEE_TEST_0 = {"messages": [
    user("How many 'm' are in the word home?"),
    assistant([
        {"type": "text", "text": "Counting 'm' in 'home'. First I spell the word out:\nhome:h,o,m,e\n\n"
                                 "Then I go through it letter by letter:\n1:h\n2:o\n3:m yes, count=1\n4:e\n\n"
                                 "By hand I get 1."},
        {"type": "text", "text": "\n\nNow the same count in Python:\n\n"},
        {"type": "python", "text": "'home'.count('m')"},
        {"type": "python_output", "text": "1"},
        {"type": "text", "text": "\n\nPython agrees: 1.\n\n#### 1"}])]}


def sample_words():
    text = (SAMPLE / "dwyl/english-words/words_alpha.txt").read_text()
    return [word.strip() for word in text.splitlines() if word.strip()]


def test_spelling_bee_pinned_examples(sample_db):
    # a change to how examples are generated changes every training run: it must be deliberate
    assert SpellingBee(db=sample_db)[0] == SPELLING_BEE_TRAIN_0
    assert SpellingBee(split="test", db=sample_db)[0] == SPELLING_BEE_TEST_0


# sha256 of json.dumps(list(task), ensure_ascii=False) of the default 1000 examples on the sample word list
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
        assert [p["type"] for p in answer["content"]] == ["text", "text", "python", "python_output", "text"]
        word, letter = re.fullmatch(r"'([a-z]+)'\.count\('([a-z])'\)", code["text"]).groups()
        assert word in words and word in question["content"] and letter in question["content"]
        count = word.count(letter)
        letters_in_word += letter in word
        assert f"\n{word}:{','.join(word)}\n" in spelled["text"]
        running = 0
        for position, char in enumerate(word, 1):  # position by position, with a running count
            running += char == letter
            line = f"{position}:{char} yes, count={running}" if char == letter else f"{position}:{char}"
            assert f"\n{line}\n" in spelled["text"]
        assert "Python" in announce["text"]
        assert output["text"] == str(count) and final["text"].endswith(f"#### {count}")
        assert task.evaluate(example, f"#### {count}") == 1 and task.reward(example, f"#### {count + 1}") == 0.0
    assert 320 < letters_in_word < 400  # 90% pick a letter of the word, the rest any letter


def test_spelling_bee_phrasings_vary(sample_db):
    questions = [example["messages"][0]["content"] for example in SpellingBee(size=400, db=sample_db)]
    assert any(q.endswith("?") for q in questions) and not all(q.endswith("?") for q in questions)
    assert any(re.search(r"[\u4e00-\u9fff]", q) for q in questions)  # Chinese
    assert any(re.search(r"[\uac00-\ud7af]", q) for q in questions)  # Korean
    assert any(re.search(r"[\u3040-\u30ff]", q) for q in questions)  # Japanese
    assert any("¿" in q for q in questions) and any("Wie " in q or "wie " in q for q in questions)
    assert any("combien" in q.lower() for q in questions)
    assert any(q[0].isupper() for q in questions) and any(q.startswith(("how", "count", "tell")) for q in questions)


def test_spelling_examples_are_the_same_in_another_process(sample_db):
    code = ("import json; from nanotasks.tasks.spellingbee import SpellingBee, SimpleSpelling; "
            f"db = {str(sample_db)!r}; "
            "print(json.dumps([SpellingBee(split=s, db=db)[i] for s in ('train', 'test') for i in (0, 7, 999)] + "
            "[SimpleSpelling(split=s, db=db)[i] for s in ('train', 'test') for i in (0, 7, 999)]))")
    here = [SpellingBee(split=s, db=sample_db)[i] for s in ("train", "test") for i in (0, 7, 999)]
    here += [SimpleSpelling(split=s, db=sample_db)[i] for s in ("train", "test") for i in (0, 7, 999)]
    for hash_seed in ("0", "12345"):  # string hashing must not matter
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                env={"PYTHONHASHSEED": hash_seed})
        assert json.loads(result.stdout) == here


@pytest.mark.parametrize("split, seed_offset", [("train", 0), ("test", 10_000_000)])
def test_simple_spelling(sample_db, split, seed_offset):
    words = sample_words()
    random.Random(42).shuffle(words)
    task = SimpleSpelling(size=50, split=split, db=sample_db)
    assert len(task) == 50
    for i, example in enumerate(task):
        word = random.Random(seed_offset + i).choice(words)
        assert example == {"messages": [user(f"Spell the word: {word}"), assistant(f"{word}:{','.join(word)}")]}
    assert SimpleSpelling(db=sample_db)[0] == {"messages": [user("Spell the word: copy"), assistant("copy:c,o,p,y")]}


def test_spelling_views_and_range(sample_db):
    task = SpellingBee(size=10, db=sample_db, start=4, step=3)  # 4, 7
    assert list(task) == [SpellingBee(db=sample_db)[4], SpellingBee(db=sample_db)[7]]
    with pytest.raises(IndexError):
        SpellingBee(size=10, db=sample_db)[10]


# --- CustomJSON -------------------------------------------------------------------------------

CONVERSATIONS = [
    [user("Hi"), assistant("Hello! How can I help?")],
    [user("2+2?"), assistant("4"), user("and 3+3?"), assistant("6")],
    [user("Ünïcödé ✓ 你好"), assistant("ok")],
]


def write_jsonl(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_customjson_reads_conversations_in_file_order(tmp_path):
    path = write_jsonl(tmp_path / "chat.jsonl", [json.dumps(CONVERSATIONS[0]), "", "   ",
                                                  json.dumps(CONVERSATIONS[1]), json.dumps(CONVERSATIONS[2], ensure_ascii=False)])
    task = CustomJSON(filepath=path)
    assert list(task) == [{"messages": c} for c in CONVERSATIONS]
    assert list(CustomJSON(str(path), start=1)) == [{"messages": c} for c in CONVERSATIONS[1:]]


@pytest.mark.parametrize("bad, what", [
    ('{"role": "user", "content": "hi"}', "an object without \"messages\" (it has 'role', 'content')"),
    ('"hi"', "messages must be a list (a JSON array), got str"),
    (json.dumps([user("only one")]), "at least 2"),
    (json.dumps([assistant("a"), user("b")]), "role"),
    (json.dumps([user("a"), user("b")]), "role"),
    (json.dumps([user("a"), assistant("b"), assistant("c")]), "message 2"),
    (json.dumps([user("a"), {"role": "assistant", "content": 5}]), "content"),
    (json.dumps([user("a"), {"role": "assistant"}]), "content"),
    (json.dumps([{"role": ["user"], "content": "a"}, assistant("b")]), "role"),
    (json.dumps([user("a"), "b"]), "object"),
    ('[{"role": "user", "content": "a"}, ', "Expecting"),
])
def test_customjson_bad_line_names_file_line_and_problem(tmp_path, bad, what):
    path = write_jsonl(tmp_path / "chat.jsonl", [json.dumps(CONVERSATIONS[0]), "", bad, json.dumps(CONVERSATIONS[1])])
    with pytest.raises(ValueError) as error:
        CustomJSON(filepath=path)
    message = str(error.value)
    assert str(path) in message and "line 3" in message and what in message


def test_customjson_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        CustomJSON(filepath=tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="filepath"):
        CustomJSON()


def test_customjson_compiled_into_the_file(sample_db, tmp_path):
    db = tmp_path / "custom.db"
    shutil.copy(sample_db, db)
    chat = write_jsonl(tmp_path / "chat.jsonl", [json.dumps(c, ensure_ascii=False) for c in CONVERSATIONS])
    nanotasks("compile", "--only", "customjson", "--custom", f"mine={chat}", "--db", db)
    assert list(CustomJSON(name="mine", db=db)) == list(CustomJSON(filepath=chat))
    assert list(CustomJSON(name="mine", db=db, start=2)) == [{"messages": CONVERSATIONS[2]}]
    assert list(ARC("ARC-Easy", "test", db=db)) == list(ARC("ARC-Easy", "test", db=sample_db))  # kept

    before = db.read_bytes()
    bad = write_jsonl(tmp_path / "bad.jsonl", [json.dumps(CONVERSATIONS[0]), json.dumps([user("x")])])
    result = nanotasks("compile", "--only", "customjson", "--custom", f"other={bad}", "--db", db, check=False)
    assert result.returncode == 1 and f"{bad}, line 2" in result.stderr and "Traceback" not in result.stderr
    assert db.read_bytes() == before  # a bad file changes nothing

    with pytest.raises(NotInStore) as error:
        CustomJSON(name="other", db=db)
    assert f"`nanotasks compile --only customjson --custom other=FILE.jsonl --db {db}`" in str(error.value)


def test_json_that_orjson_refuses_reads_back_as_json_reads_it(sample_db, tmp_path):
    # the reader parses with orjson, which refuses NaN and integers past 64 bits; json writes both
    line = '[{"role": "user", "content": "a", "score": NaN}, {"role": "assistant", "content": "b", "id": %d}]' % 2**70
    chat = write_jsonl(tmp_path / "odd.jsonl", [line])
    db = tmp_path / "odd.db"
    nanotasks("compile", "--only", "customjson", "--custom", f"odd={chat}", "--db", db)
    conversation, = CustomJSON(name="odd", db=db)
    assert conversation["messages"][0]["score"] != conversation["messages"][0]["score"]  # NaN
    assert conversation["messages"][1]["id"] == 2**70


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("make, valid", [
    (lambda db: ARC("ARC-easy", "train", db=db), ["ARC-Easy", "ARC-Challenge"]),
    (lambda db: ARC("ARC-Easy", "dev", db=db), ["train", "validation", "test"]),
    (lambda db: MMLU("astronomy", "test", db=db), ["all", "auxiliary_train"]),
    (lambda db: MMLU("all", "train", db=db), ["auxiliary_train", "validation", "dev", "test"]),
    (lambda db: MMLU("auxiliary_train", "test", db=db), ["train"]),
    (lambda db: GSM8K("mian", "train", db=db), ["main", "socratic"]),
    (lambda db: GSM8K("main", "validation", db=db), ["train", "test"]),
    (lambda db: SmolTalk("validation", db=db), ["train", "test"]),
    (lambda db: SpellingBee(split="validation", db=db), ["train", "test"]),
    (lambda db: SimpleSpelling(split="dev", db=db), ["train", "test"]),
])
def test_invalid_subset_or_split_lists_the_valid_ones(sample_db, make, valid):
    with pytest.raises(ValueError) as error:
        make(sample_db)
    assert all(repr(name) in str(error.value) for name in valid)


ALL_TASKS = [
    lambda db: ARC("ARC-Easy", "train", db=db), lambda db: MMLU("all", "test", db=db),
    lambda db: GSM8K("main", "test", db=db), lambda db: HumanEval(db=db), lambda db: SmolTalk("train", db=db),
    lambda db: SpellingBee(db=db), lambda db: SimpleSpelling(db=db), lambda db: CustomJSON(name="x", db=db),
]


@pytest.mark.parametrize("make", ALL_TASKS)
def test_missing_file_names_path_and_compile_command(tmp_path, make):
    db = tmp_path / "nowhere" / "nanotasks.db"
    with pytest.raises(StoreNotFound) as error:
        make(db)
    assert isinstance(error.value, FileNotFoundError)
    assert str(db) in str(error.value) and f"nanotasks compile --db {db}" in str(error.value)


def test_file_without_the_split_names_path_split_and_command(tmp_path):
    db = tmp_path / "gsm8k-only.db"
    nanotasks("compile", "--mirror", SAMPLE, "--only", "gsm8k", "--db", db)
    assert len(GSM8K("main", "test", db=db)) == 6
    cases = [(lambda: ARC("ARC-Challenge", "validation", db=db), "arc ARC-Challenge/validation", "arc"),
             (lambda: MMLU("auxiliary_train", "train", db=db), "mmlu all/auxiliary_train", "mmlu"),
             (lambda: HumanEval(db=db), "humaneval openai_humaneval/test", "humaneval"),
             (lambda: SmolTalk("test", db=db), "smoltalk default/test", "smoltalk"),
             (lambda: SpellingBee(db=db), "words_alpha.txt", "spellingbee"),
             (lambda: SimpleSpelling(db=db), "words_alpha.txt", "spellingbee")]
    for make, missing, module in cases:
        with pytest.raises(NotInStore) as error:
            make()
        message = str(error.value)
        assert message.startswith(f"{db} has no {missing}")
        assert message.endswith(f"Add it with `nanotasks compile --only {module} --db {db}`.")


def test_default_path_from_environment(sample_db, monkeypatch, tmp_path):
    monkeypatch.setenv("NANOTASKS_DB", str(sample_db))
    assert list(ARC("ARC-Easy", "test")) == list(ARC("ARC-Easy", "test", db=sample_db))
    monkeypatch.delenv("NANOTASKS_DB")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(StoreNotFound, match=re.escape(str(tmp_path / "nanotasks" / "nanotasks.db"))):
        ARC("ARC-Easy", "test")


def test_get_example_is_one_indexed_read(sample_db):
    task = MMLU("all", "test", db=sample_db)
    task[0]
    statements = []
    task.store.db.set_trace_callback(statements.append)
    try:
        task[5]
    finally:
        task.store.db.set_trace_callback(None)
    assert len(statements) == 1 and re.fullmatch(r"SELECT body FROM example_data WHERE id = \d+", statements[0])


# --- offline ----------------------------------------------------------------------------------

OFFLINE = """
import socket, sys

def refuse(*args, **kwargs):
    raise OSError("network access attempted")

socket.socket = socket.create_connection = socket.getaddrinfo = socket.socketpair = refuse
socket.gethostbyname = socket.gethostbyname_ex = refuse

from nanotasks.tasks.arc import ARC
from nanotasks.tasks.common import TaskMixture, TaskSequence
from nanotasks.tasks.customjson import CustomJSON
from nanotasks.tasks.gsm8k import GSM8K
from nanotasks.tasks.humaneval import HumanEval
from nanotasks.tasks.mmlu import MMLU
from nanotasks.tasks.smoltalk import SmolTalk
from nanotasks.tasks.spellingbee import SimpleSpelling, SpellingBee

tasks = [ARC("ARC-Easy", "train"), ARC("ARC-Challenge", "test"), MMLU("all", "auxiliary_train"),
         MMLU("auxiliary_train", "train"), MMLU("all", "validation"), MMLU("all", "dev"), MMLU("all", "test"),
         GSM8K("main", "train"), GSM8K("socratic", "test"), HumanEval(), SmolTalk("train"), SmolTalk("test"),
         SpellingBee(size=20), SpellingBee(size=20, split="test"), SimpleSpelling(size=20),
         CustomJSON(name="mine"), CustomJSON(sys.argv[1])]
tasks += [TaskMixture(tasks), TaskSequence(tasks)]
print(sum(1 for task in tasks for example in task))
try:
    socket.create_connection(("127.0.0.1", 9))
except OSError as error:
    print(error)
"""


def test_every_task_reads_with_sockets_disabled(sample_db, tmp_path):
    db = tmp_path / "offline.db"
    shutil.copy(sample_db, db)
    chat = write_jsonl(tmp_path / "chat.jsonl", [json.dumps(c) for c in CONVERSATIONS])
    nanotasks("compile", "--mirror", SAMPLE, "--only", "humaneval", "--custom", f"mine={chat}", "--db", db)
    result = subprocess.run([sys.executable, "-c", OFFLINE, str(chat)], capture_output=True, text=True,
                            env={"NANOTASKS_DB": str(db)})
    assert result.returncode == 0, result.stderr
    total = 8 + 6 + 8 + 8 + 8 + 12 + 12 + 8 + 6 + 5 + 14 + 5 + 20 + 20 + 20 + 3 + 3
    assert result.stdout.split("\n", 1) == [str(3 * total), "network access attempted\n"]


# --- real data (../shared/hub) ----------------------------------------------------------------

def test_real_counts(real_db):
    counts = {("main", "train"): 7473, ("main", "test"): 1319, ("socratic", "test"): 1319}
    for (subset, split), n in counts.items():
        assert len(GSM8K(subset, split, db=real_db)) == n
    assert len(MMLU("all", "test", db=real_db)) == 14080
    assert len(MMLU("all", "dev", db=real_db)) == 285
    assert len(HumanEval(db=real_db)) == 164
    with pytest.raises(NotInStore, match="nanotasks compile --only mmlu"):
        MMLU("auxiliary_train", "train", db=real_db)


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
    several = [e for e in GSM8K("main", "train", db=real_db, stop=200) if
               sum(p["type"] == "python" for p in e["messages"][1]["content"]) >= 4]
    assert several


def test_real_mmlu(real_db, shared_hub):
    task = MMLU("all", "test", db=real_db)
    rows = source_rows(shared_hub, "cais/mmlu", "all", "test")
    for i in [0, 1, 2, 777, 5000, 14079]:
        row = rows[i]
        assert task[i] == {"messages": [user(multiple_choice(row["question"], "ABCD", row["choices"])),
                                        assistant("ABCD"[row["answer"]])],
                           "subject": row["subject"], "letters": ("A", "B", "C", "D")}
    assert len({task[i]["subject"] for i in range(0, 14080, 50)}) > 40


def test_real_humaneval_canonical_solutions_pass(real_db):
    task = HumanEval(db=real_db)
    examples = list(task)
    results = execute_many([program_for(e, e["messages"][1]["content"]) for e in examples], tests=list(map(problem_test, examples)))
    assert [r.reason for r in results if not r.passed] == []
    wrong = execute_many([program_for(e, "def nothing():\n    pass") for e in examples[:8]], tests=list(map(problem_test, examples[:8])))
    assert not any(r.passed for r in wrong)


def test_real_spelling(real_db, shared_hub):
    words = {w.strip() for w in (shared_hub / "dwyl/english-words/words_alpha.txt").read_text().splitlines()}
    task = SpellingBee(size=200, db=real_db)
    for example in task:
        code = example["messages"][1]["content"][2]["text"]
        word, letter = re.fullmatch(r"'([a-z]+)'\.count\('([a-z])'\)", code).groups()
        assert word in words
        assert example["messages"][1]["content"][-1]["text"].endswith(f"#### {word.count(letter)}")
    spelled = [e["messages"][0]["content"].removeprefix("Spell the word: ") for e in SimpleSpelling(size=200, db=real_db)]
    assert set(spelled) <= words and len(set(spelled)) > 190
