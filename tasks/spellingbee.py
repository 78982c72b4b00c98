"""SpellingBee and SimpleSpelling: generated tasks that teach a small model to spell words and
count letters, which tokenisation hides from it. Examples are generated at read time from
the English word list words_alpha.txt of https://github.com/dwyl/english-words, which the
compiled file stores; example i is the same on every machine.
"""

import random
from functools import cached_property

from nanotasks.store import default_path
from nanotasks.store.reader import Conversation, Store, StrPath, not_in_store
from nanotasks.tasks.common import (
    Benchmark,
    SourceFile,
    Task,
    check_choice,
    evaluate_number,
    shuffled_order,
)

WORDS = SourceFile(
    "words_alpha.txt",
    "dwyl/english-words",
    "https://raw.githubusercontent.com/dwyl/english-words/master/words_alpha.txt",
    "dwyl/english-words/words_alpha.txt",
)
LETTERS = "abcdefghijklmnopqrstuvwxyz"
TEST_SEED_OFFSET = 10_000_000  # test examples come from seeds no train example uses
SPLITS = ("train", "test")

# How people ask; {letter} and {word} are filled in, sometimes quoted.
QUESTIONS = [
    "How many {letter} are in the word {word}",
    "How many times does the letter {letter} appear in {word}",
    "Count the {letter}s in {word}",
    "In the word {word}, how often do you see the letter {letter}",
    "What is the number of {letter} in {word}",
    "Tell me how many {letter} letters {word} has",
    "Can you count how many {letter} there are in {word}",
    "{word}: how many {letter}",
    "¿Cuántas {letter} hay en la palabra {word}",
    "¿Cuántas veces aparece la letra {letter} en {word}",
    "单词{word}中有几个{letter}",
    "{word}这个词里字母{letter}出现了几次",
    "{word}에 {letter}가 몇 개 있나요",
    "Combien de {letter} y a-t-il dans le mot {word}",
    "Combien de fois la lettre {letter} apparaît-elle dans {word}",
    "Wie viele {letter} hat das Wort {word}",
    "Wie oft kommt der Buchstabe {letter} in {word} vor",
    "{word}という単語に{letter}はいくつありますか",
]


class WordListTask(Task):
    """A generated task over the stored word list, loaded on first use."""

    def __init__(
        self,
        size: int = 1000,
        split: str = "train",
        db: StrPath | None = None,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
    ) -> None:
        check_choice("split", split, SPLITS)
        super().__init__(start, stop, step)
        self.size, self.split = size, split
        self.store = Store(db or default_path())
        if WORDS.name not in {file["name"] for file in self.store.files()}:
            # said now, not in a DataLoader worker
            raise not_in_store(
                self.store.path,
                f"{WORDS.name}, the word list of the spelling tasks",
                "--only spellingbee",
            )

    @cached_property
    def words(self) -> list[str]:
        text = self.store.read_file(WORDS.name).decode()
        return [word.strip() for word in text.splitlines() if word.strip()]

    def num_examples(self) -> int:
        return self.size

    def rng(self, index: int) -> random.Random:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} examples")
        return random.Random(index if self.split == "train" else TEST_SEED_OFFSET + index)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("words", None)  # reloaded from the file in each process
        state.pop("shuffled_words", None)
        return state

    @property
    def eval_type(self) -> str:
        return "generative"

    def evaluate(self, conversation: Conversation, response: str) -> int:
        return evaluate_number(conversation, response)


class SpellingBee(WordListTask):
    """Count a letter in a word: spell it out, count by hand, then check with Python."""

    def get_example(self, index: int) -> Conversation:
        rng = self.rng(index)
        word = rng.choice(self.words)
        letter = rng.choice(word) if rng.random() < 0.9 else rng.choice(LETTERS)
        question = rng.choice(QUESTIONS)
        if rng.random() < 0.3:
            question = question.lower()
        letter_quote, word_quote = rng.choice(["", "'", '"']), rng.choice(["", "'", '"'])
        user = question.format(
            letter=f"{letter_quote}{letter}{letter_quote}", word=f"{word_quote}{word}{word_quote}"
        )
        if rng.random() < 0.5:
            user += "?"
        count = word.count(letter)
        messages = [
            {"role": "user", "content": user},
            {"role": "assistant", "content": counting_parts(word, letter, count)},
        ]
        return {"messages": messages}


def counting_parts(word, letter, count):
    lines = [
        f"Counting '{letter}' in '{word}'. First I spell the word out:",
        f"{word}:{','.join(word)}",
        "",
        "Then I go through it letter by letter:",
    ]
    running = 0
    for position, char in enumerate(word, 1):
        if char == letter:
            running += 1
            lines.append(f"{position}:{char} yes, count={running}")
        else:
            lines.append(f"{position}:{char}")
    lines += ["", f"By hand I get {running}."]
    return [
        {"type": "text", "text": "\n".join(lines)},
        {"type": "text", "text": "\n\nNow the same count in Python:\n\n"},
        {"type": "python", "text": f"'{word}'.count('{letter}')"},
        {"type": "python_output", "text": str(count)},
        {"type": "text", "text": f"\n\nPython agrees: {count}.\n\n#### {count}"},
    ]


class SimpleSpelling(WordListTask):
    """Spell a word out letter by letter."""

    @cached_property
    def shuffled_words(self):
        return [self.words[i] for i in shuffled_order(len(self.words))]

    def get_example(self, index: int) -> Conversation:
        word = self.rng(index).choice(self.shuffled_words)
        return {
            "messages": [
                {"role": "user", "content": f"Spell the word: {word}"},
                {"role": "assistant", "content": f"{word}:{','.join(word)}"},
            ]
        }


BENCHMARK = Benchmark(
    "spellingbee",
    files=(WORDS,),
    generated={"SpellingBee": SpellingBee, "SimpleSpelling": SimpleSpelling},
)
