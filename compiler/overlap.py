"""Contamination: which evaluation examples also appear in the training data of the same file.

Evaluation examples are those of validation, dev and test splits; training examples are those
of every other split. Text is compared as words after `store.text.normalise_text`: NFKC,
case-folded, and split at every run of characters that are not letters or digits.

- exact: the evaluation example's prompt (first user message) and the training example's
  normalise to the same text, of at least 13 words. Shorter prompts ("hi", "What is 2+2?")
  recur by chance and are not counted.
- ngram: a run of 13 words (the usual decontamination measure) of the evaluation prompt appears
  in any user message of the training example: a test question is caught in a later turn of
  a chat, or inside a longer request.

Two rules keep prompt templates from matching each other. Runs do not cross line breaks, so a
multiple choice template's fixed last line ("Respond only with the letter...") never joins the
end of one choice into a run. And boilerplate is cut out of the evaluation prompts first: the
words of any 13-word run that more than MAX_EVAL_PROMPTS different evaluation prompts share
(an instruction a benchmark appends to many questions) count as line breaks, so no run
includes any of them.

Only evaluation prompts are held in memory: their words get small integer ids, a training
word not among them can be in no match, and each 13-word window becomes one 64-bit number
(a polynomial in the word ids) computed with numpy over thousands of conversations at once;
the words are split and looked up in Arrow, a batch at a time. A window whose number matches
is then compared word for word, so a hash collision never makes a match.
"""

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nanotasks.store import NoProgress
from nanotasks.store.reader import loads
from nanotasks.store.schema import EVAL_SPLITS, body_decompressor
from nanotasks.store.text import LINE_BREAKS as BREAK_CHARACTERS
from nanotasks.store.text import RUN as N
from nanotasks.store.text import ascii_tokens, message_text, normalise_text, prompt_of, tokens
from nanotasks.store.writer import chunked

MAX_EVAL_PROMPTS = 10
BATCH = 2048  # training conversations hashed and looked up at once
BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, with well-mixed bits


def find_overlaps(connection, progress=None):
    """Every (eval_id, train_id, kind) of the nanotasks file open on `connection`, sorted (all
    held at once: see overlap_rows, which also says what `progress` is)."""
    return sorted(overlap_rows(connection, progress))


def overlap_rows(connection, progress=None):
    """Every (eval_id, train_id, kind) of the nanotasks file open on `connection`, a batch of
    training examples at a time: each is in one batch, so only that batch's pairs are held,
    however many the file has. `progress(length, label)` is an optional click-style progress
    bar factory."""
    splits = connection.execute(
        "SELECT first_example, rows, dictionary, split FROM splits ORDER BY id"
    ).fetchall()
    evals = EvalPrompts()
    for first, rows, dictionary, split in splits:
        if split in EVAL_SPLITS:
            decompressor = body_decompressor(dictionary)
            for example_id, hash_, body in _bodies(connection, first, rows):
                evals.add(example_id, hash_, prompt_of(_messages(decompressor, body)))
    evals.finish()
    training = [s for s in splits if s[3] not in EVAL_SPLITS]
    total = sum(s[1] for s in training)
    with (progress or NoProgress)(length=total, label="overlaps") as bar:
        for first, rows, dictionary, _ in training:
            decompressor = body_decompressor(dictionary)
            for batch in chunked(_bodies(connection, first, rows), BATCH):
                found: dict[tuple[int, int], str] = {}  # (eval_id, train_id) -> kind
                evals.match(batch, decompressor, found)
                yield from ((*pair, kind) for pair, kind in found.items())
                bar.update(len(batch))


def _bodies(connection, first, rows):
    return connection.execute(
        "SELECT id, prompt_hash, body FROM example_data WHERE id BETWEEN ? AND ? ORDER BY id",
        (first, first + rows - 1),
    )


def _messages(decompressor, body):
    return loads(decompressor.decompress(body))["messages"]


BREAK, END = "\0", "\1"  # the words that stand for a line break and for the end of a message


def _words(text):
    """The words of `text` as store.text.tokens finds them, each line break BREAK, joined by
    spaces (UTF-8)."""
    if text.isascii():
        return ascii_tokens(text).replace(b"\0", b" \0 ")
    return " ".join(BREAK if word in BREAK_CHARACTERS else word for word in tokens(text)).encode()


def _split(texts):
    """The words of `texts` (each made by _words), each text's followed by END, as one Arrow
    array of strings."""
    return pc.ascii_split_whitespace(pa.array([(b" \1 ".join(texts) + b" \1").decode()])).flatten()


@dataclass
class EvalPrompts:
    """The evaluation prompts: their exact texts, and their 13-word windows by hash."""

    exact: dict = field(default_factory=dict)  # prompt_hash -> [(normalised prompt, eval id)]
    texts: list = field(default_factory=list)  # every eval prompt's words (see _words)
    examples: list = field(default_factory=list)  # the eval example id of each prompt
    prompts: list = field(default_factory=list)  # a number per distinct normalised prompt, of each
    distinct: dict = field(default_factory=dict)  # normalised prompt -> its number

    def add(self, example_id, prompt_hash, prompt):
        normalised = normalise_text(prompt)
        if normalised.count(" ") + 1 >= N:
            self.exact.setdefault(prompt_hash, []).append((normalised, example_id))
        self.examples.append(example_id)
        self.prompts.append(self.distinct.setdefault(normalised, len(self.distinct)))
        self.texts.append(_words(prompt))

    def finish(self):
        """Number the words, cut out the boilerplate, then index the windows: sorted hashes,
        with the position and eval example of each."""
        # Word ids: 1 + the word's index in `words`; 0 for BREAK and END (no run crosses a
        # line or a prompt), and for a training word no eval prompt has (the last id)
        words = _split(self.texts).dictionary_encode()
        self.words, index = words.dictionary, words.indices.to_numpy()
        self.word_ids = np.arange(1, len(self.words) + 2, dtype=np.uint64)
        self.word_ids[-1] = 0
        self.word_ids[:-1][
            pc.is_in(self.words, pa.array([BREAK, END])).to_numpy(zero_copy_only=False)
        ] = 0
        self.end = pc.index(self.words, END).as_py()
        self.ids = self.word_ids[index]
        self.starts = np.concatenate([[0], np.flatnonzero(index == self.end)[:-1] + 1])
        hashes, positions = window_hashes(self.ids)
        # Distinct prompts per window: the same question in two splits (GSM8K main and
        # socratic) counts once.
        prompts = np.array(self.prompts, dtype=np.int64)[self._owners(positions)]
        order = np.lexsort((prompts, hashes))
        hashes_, prompts = hashes[order], prompts[order]
        first = np.ones(len(hashes_), bool)
        first[1:] = (hashes_[1:] != hashes_[:-1]) | (prompts[1:] != prompts[:-1])
        shared, counts = np.unique(hashes_[first], return_counts=True)
        boilerplate = positions[np.isin(hashes, shared[counts > MAX_EVAL_PROMPTS])]
        covered = np.bincount(boilerplate, minlength=len(self.ids) + N) - np.bincount(
            boilerplate + N, minlength=len(self.ids) + N
        )
        self.ids[np.cumsum(covered)[: len(self.ids)] > 0] = 0
        hashes, positions = window_hashes(self.ids)
        order = np.argsort(hashes, kind="stable")
        self.hashes, self.positions = hashes[order], positions[order]
        # Which values the top 26 bits of a window's hash take among the eval windows: most
        # training windows are ruled out here, at a fraction of the cost of a binary search.
        self.seen = np.zeros(1 << 26, bool)
        self.seen[self.hashes >> np.uint64(38)] = True
        self.owners = np.array(self.examples, dtype=np.int64)[self._owners(self.positions)]

    def _owners(self, positions):
        """The index of the eval example each position of `ids` belongs to."""
        return np.searchsorted(np.array(self.starts, dtype=np.int64), positions, side="right") - 1

    def match(self, batch, decompressor, found):
        """Add the overlaps of a batch of training examples (id, prompt_hash, body) to
        `found`: {(eval_id, train_id): kind}."""
        texts, train_ids = self._user_texts(batch, decompressor, found)
        if texts and len(self.hashes):
            self._ngram_matches(texts, train_ids, found)

    def _user_texts(self, batch, decompressor, found):
        """The words of every user message in the batch, with the training id of each; the
        exact matches of first prompts go straight into `found`."""
        texts, train_ids = [], []
        for train_id, prompt_hash, body in batch:
            messages = _messages(decompressor, body)
            first_user = True
            for message in messages:
                if message["role"] != "user":
                    continue
                text = message_text(message)
                if first_user:
                    first_user = False
                    for normalised, eval_id in self.exact.get(prompt_hash, ()):
                        if normalise_text(text) == normalised:  # not just the same 47-bit hash
                            found[eval_id, train_id] = "exact"
                texts.append(_words(text))
                train_ids.append(train_id)
        return texts, train_ids

    def _ngram_matches(self, texts, train_ids, found):
        """Add an "ngram" overlap for every training message sharing a run of N words with an
        evaluation prompt."""
        # Every message's words, split and looked up in one go
        index = (
            pc.index_in(_split(texts), value_set=self.words).fill_null(len(self.words)).to_numpy()
        )
        ids = self.word_ids[index]
        starts = np.concatenate([[0], np.flatnonzero(index == self.end)[:-1] + 1])
        hashes, positions = window_hashes(ids)
        maybe = np.flatnonzero(self.seen[hashes >> np.uint64(38)])
        hashes, positions = hashes[maybe], positions[maybe]
        first = np.searchsorted(self.hashes, hashes)
        hit = np.flatnonzero(self.hashes[np.minimum(first, len(self.hashes) - 1)] == hashes)
        if not len(hit):
            return
        last = np.searchsorted(self.hashes, hashes[hit], side="right")
        first = first[hit]
        owners = np.array(train_ids)[np.searchsorted(starts, positions[hit], side="right") - 1]
        # Every (training window, eval window) pair of equal hashes, compared word for word
        counts = last - first
        window = np.repeat(np.arange(len(counts)), counts)
        match = (
            np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + first[window]
        )
        words = np.arange(N)
        same = (
            ids[positions[hit][window][:, None] + words]
            == self.ids[self.positions[match][:, None] + words]
        ).all(axis=1)
        pairs = np.unique((self.owners[match[same]] << 32) | owners[window[same]])  # ids < 2**32
        for eval_id, train_id in zip(
            (pairs >> 32).tolist(), (pairs & 0xFFFFFFFF).tolist(), strict=True
        ):
            found.setdefault((eval_id, train_id), "ngram")


def window_hashes(ids):
    """The hash of every window of N nonzero ids in `ids` (uint64), and where each starts."""
    count = len(ids) - N + 1
    if count <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    hashes = np.zeros(count, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(N):
            hashes = hashes * BASE + ids[k : k + count]
    zeros = np.concatenate([[0], np.cumsum(ids == 0)])
    valid = np.flatnonzero(zeros[N:] == zeros[:count])
    return hashes[valid], valid
