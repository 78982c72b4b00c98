"""How long the overlaps step of a compile takes on a SmolTalk-sized training split.

Writes a synthetic file (nothing from the real data) in a temporary directory: TRAIN training
chats and TEST test chats of English-like text (Zipf-distributed words, sentences, lines), with
PLANTED test prompts copied into training chats, half verbatim and half as a 20-word span
inside a later user turn, and a constraint sentence appended to 5% of all prompts, as SmolTalk's
templated sources do. Then times compiler.overlap.find_overlaps on it and checks it found
the planted pairs.

    python benchmarks/overlap_speed.py [--train 460000] [--test 24000]
"""

import argparse
import os
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

import nanotasks.store.writer
from nanotasks.compiler.overlap import find_overlaps
from nanotasks.store import Example, Provenance
from nanotasks.store.writer import Writer

PLANTED = 200
CONSTRAINT = (
    "Your response should contain at least three sentences and the word example should "
    "appear at least twice in your answer."
)


def vocabulary(rng, size=40_000):
    """Made-up words of 2-10 letters, drawn with English letter frequencies."""
    letters = np.array(list("etaoinshrdlucmfwypvbgkjqxz"))
    weights = 1 / np.arange(1, 27)
    draws = rng.choice(letters, (size * 2, 10), p=weights / weights.sum())
    lengths = rng.integers(2, 11, size * 2)
    words = sorted({"".join(row[:n]) for row, n in zip(draws, lengths, strict=True)})
    return [words[i] for i in rng.permutation(len(words))[:size]]


class Text:
    """English-like text: words by Zipf-Mandelbrot frequencies (the commonest about 3.5% of all,
    as "the" in English), a full stop every 8-20 words, and a line
    break after one sentence in five; drawn from a buffer refilled a million words at a time."""

    def __init__(self, rng, words):
        self.rng = rng
        self.words = np.array(
            words + [w + "." for w in words] + [w + ".\n" for w in words], dtype=object
        )
        self.size = len(words)
        self.frequencies = 1 / (np.arange(self.size) + 3)
        self.frequencies /= self.frequencies.sum()
        self.buffer, self.used = [], 0

    def __call__(self, count):
        if self.used + count > len(self.buffer):
            n = 1_000_000
            picks = self.rng.choice(self.size, n, p=self.frequencies)
            ends = np.cumsum(self.rng.integers(8, 21, n // 8))
            ends = ends[ends < n]
            picks[ends] += self.size * np.where(self.rng.random(len(ends)) < 0.2, 2, 1)
            self.buffer, self.used = self.words[picks].tolist(), 0
        self.used += count
        return " ".join(self.buffer[self.used - count : self.used])


def chat(rng, text, prompt):
    messages = [{"role": "user", "content": prompt}]
    for turn in range(int(rng.integers(1, 4))):
        if turn:
            messages.append({"role": "user", "content": text(int(rng.integers(10, 120)))})
        messages.append({"role": "assistant", "content": text(int(rng.integers(60, 400)))})
    return messages


def prompt(rng, text):
    p = text(int(rng.integers(3, 200)))
    return p + " " + CONSTRAINT if rng.random() < 0.05 else p


def build(path, train, test, seed=0):
    rng = np.random.default_rng(seed)
    text = Text(rng, vocabulary(rng))
    tests = [chat(rng, text, prompt(rng, text)) for _ in range(test)]
    long_enough = [i for i, t in enumerate(tests) if len(t[0]["content"].split()) >= 13]
    exact = {
        int(i): tests[i][0]["content"] for i in rng.choice(long_enough, PLANTED // 2, replace=False)
    }
    spans = {}
    for i in rng.choice(test, PLANTED, replace=False):
        if int(i) not in exact and len(spans) < PLANTED // 2:
            span = tests[i][0]["content"].split("\n")[0].split()[:20]
            if len(span) == 20:
                spans[int(i)] = " ".join(span)
    planted_rows = rng.choice(train, len(exact) + len(spans), replace=False).tolist()

    def training():
        plants = dict(
            zip(
                planted_rows,
                [("exact", i, p) for i, p in exact.items()]
                + [("span", i, s) for i, s in spans.items()],
                strict=True,
            )
        )
        for row in range(train):
            plant = plants.get(row)
            if plant and plant[0] == "exact":
                messages = chat(rng, text, plant[2])
            else:
                messages = chat(rng, text, prompt(rng, text))
                if plant:  # in a later user turn, inside other text
                    messages += [
                        {"role": "user", "content": f"Also: {text(15)} {plant[2]} thanks"},
                        {"role": "assistant", "content": "Sure."},
                    ]
            yield Example({"messages": messages}, source_row=row)

    nanotasks.store.writer.LEVEL = (
        3  # the compile uses 19; reading speed is the same, writing much faster
    )
    with Writer(path) as writer:
        writer.write_split(
            "synthetic",
            "default",
            "test",
            Provenance(),
            (Example({"messages": m}, source_row=i) for i, m in enumerate(tests)),
        )
        writer.write_split("synthetic", "default", "train", Provenance(), training())
        writer.commit()
    return set(exact), set(spans), planted_rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=460_000)
    parser.add_argument("--test", type=int, default=24_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.db"
        started = time.monotonic()
        exact, spans, _ = build(path, args.train, args.test)
        print(
            f"built {args.train:,} train + {args.test:,} test chats "
            f"in {time.monotonic() - started:.0f} s, "
            f"{path.stat().st_size / 1e6:.0f} MB"
        )
        db = sqlite3.connect(path)
        (characters,) = db.execute("SELECT sum(characters) FROM example_data").fetchone()
        load = os.getloadavg()[0]  # other work on the machine slows this down
        started = time.monotonic()
        overlaps = find_overlaps(db)
        seconds = time.monotonic() - started
        print(
            f"find_overlaps: {seconds:.1f} s for {characters / 1e6:.0f} M characters "
            f"({args.train / seconds:,.0f} training chats/s); load average before: {load:.1f}"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        test_first = 1  # the test split is written first
        found = {
            kind: {e - test_first for e, _, k in overlaps if k == kind}
            for kind in ("exact", "ngram")
        }
        print(f"peak RSS {peak:.0f} MB (whole process, the synthetic data included)")
        print(
            f"pairs: {len(overlaps):,}; "
            f"planted exact {len(exact)}, found {len(found['exact'] & exact)}; "
            f"planted 20-word spans {len(spans)}, found {len(found['ngram'] & spans)}; "
            f"other eval examples matched: {len((found['exact'] | found['ngram']) - exact - spans)}"
        )


if __name__ == "__main__":
    main()
