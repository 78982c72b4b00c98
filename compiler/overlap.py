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
(a polynomial in the word ids) computed with numpy over thousands of conversations at once.
A window whose number matches is then compared word for word, so a hash collision never
makes a match.
"""

import json
from contextlib import contextmanager
from itertools import repeat
from dataclasses import dataclass, field

import numpy as np

from nanotasks.store.schema import EVAL_SPLITS, body_decompressor
from nanotasks.store.text import LINE_BREAKS as BREAK_CHARACTERS, RUN as N
from nanotasks.store.text import message_text, normalise_text, prompt_of, tokens

MAX_EVAL_PROMPTS = 10
BATCH = 2048  # training conversations hashed and looked up at once
BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, with well-mixed bits


def find_overlaps(db, progress=None):
    """Every (eval_id, train_id, kind) of the nanotasks file open on sqlite3 connection `db`,
    sorted. `progress(length, label)` is an optional click-style progress bar factory."""
    splits = db.execute("SELECT first_example, rows, dictionary, split FROM splits ORDER BY id").fetchall()
    evals = EvalPrompts()
    for first, rows, dictionary, split in splits:
        if split in EVAL_SPLITS:
            decompressor = body_decompressor(dictionary)
            for example_id, hash_, body in _bodies(db, first, rows):
                evals.add(example_id, hash_, prompt_of(_messages(decompressor, body)))
    evals.finish()
    training = [s for s in splits if s[3] not in EVAL_SPLITS]
    found = {}
    with _bar(progress, sum(s[1] for s in training)) as update:
        for first, rows, dictionary, _ in training:
            decompressor = body_decompressor(dictionary)
            for batch in _batched(_bodies(db, first, rows)):
                evals.match(batch, decompressor, found)
                update(len(batch))
    return sorted((eval_id, train_id, kind) for (eval_id, train_id), kind in found.items())


def _bodies(db, first, rows):
    return db.execute("SELECT id, prompt_hash, body FROM example_data WHERE id BETWEEN ? AND ? "
                      "ORDER BY id", (first, first + rows - 1))


def _messages(decompressor, body):
    return json.loads(decompressor.decompress(body))["messages"]


def _batched(rows):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


LINE_BREAKS = dict.fromkeys(BREAK_CHARACTERS, 0)  # word id 0: no run crosses a line


@dataclass
class EvalPrompts:
    """The evaluation prompts: their exact texts, and their 13-word windows by hash."""
    vocabulary: dict = field(default_factory=lambda: dict(LINE_BREAKS))  # word -> id; 0: no eval word
    exact: dict = field(default_factory=dict)  # prompt_hash -> [(normalised prompt, eval id)]
    ids: list = field(default_factory=list)  # every eval prompt's word ids, lines ended by 0
    starts: list = field(default_factory=list)  # where each eval example's words start in `ids`
    examples: list = field(default_factory=list)  # the eval example id of each start
    prompts: list = field(default_factory=list)  # a number per distinct normalised prompt, of each
    distinct: dict = field(default_factory=dict)  # normalised prompt -> its number

    def add(self, example_id, prompt_hash, prompt):
        normalised = normalise_text(prompt)
        if normalised.count(" ") + 1 >= N:
            self.exact.setdefault(prompt_hash, []).append((normalised, example_id))
        self.starts.append(len(self.ids))
        self.examples.append(example_id)
        self.prompts.append(self.distinct.setdefault(normalised, len(self.distinct)))
        vocabulary = self.vocabulary
        self.ids.extend(vocabulary.setdefault(w, len(vocabulary)) for w in tokens(prompt))
        self.ids.append(0)

    def finish(self):
        """Cut out the boilerplate, then index the windows: sorted hashes, with the position
        and eval example of each."""
        self.ids = np.array(self.ids, dtype=np.uint64)
        hashes, positions = window_hashes(self.ids)
        # Distinct prompts per window: the same question in two splits (GSM8K main and
        # socratic) counts once.
        prompts = np.array(self.prompts, dtype=np.int64)[self._owners(positions)]
        distinct = np.unique(np.stack([hashes.view(np.int64), prompts]), axis=1)[0].view(np.uint64)
        shared, counts = np.unique(distinct, return_counts=True)
        boilerplate = positions[np.isin(hashes, shared[counts > MAX_EVAL_PROMPTS])]
        covered = np.zeros(len(self.ids) + 1, np.int64)
        np.add.at(covered, boilerplate, 1)
        np.add.at(covered, boilerplate + N, -1)
        self.ids[np.cumsum(covered)[:-1] > 0] = 0
        hashes, positions = window_hashes(self.ids)
        order = np.argsort(hashes, kind="stable")
        self.hashes, self.positions = hashes[order], positions[order]
        self.owners = np.array(self.examples, dtype=np.int64)[self._owners(self.positions)]

    def _owners(self, positions):
        """The index of the eval example each position of `ids` belongs to."""
        return np.searchsorted(np.array(self.starts, dtype=np.int64), positions, side="right") - 1

    def match(self, batch, decompressor, found):
        """Add the overlaps of a batch of training examples (id, prompt_hash, body) to
        `found`: {(eval_id, train_id): kind}."""
        ids, starts, train_ids = [], [], []
        word_id = self.vocabulary.get
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
                starts.append(len(ids))
                train_ids.append(train_id)
                ids.extend(map(word_id, tokens(text), repeat(0)))  # 0: a word no eval prompt has
                ids.append(0)
        ids = np.array(ids, dtype=np.uint64)
        hashes, positions = window_hashes(ids)
        first = np.searchsorted(self.hashes, hashes, side="left")
        last = np.searchsorted(self.hashes, hashes, side="right")
        hit = np.flatnonzero(last > first)
        if not len(hit):
            return
        owners = np.array(train_ids)[np.searchsorted(np.array(starts), positions[hit], side="right") - 1]
        for lo, hi, position, train_id in zip(first[hit].tolist(), last[hit].tolist(),
                                              positions[hit].tolist(), owners.tolist()):
            window = ids[position:position + N]
            for match in range(lo, hi):
                eval_id = int(self.owners[match])
                if (eval_id, train_id) not in found and np.array_equal(
                        self.ids[self.positions[match]:self.positions[match] + N], window):
                    found[eval_id, train_id] = "ngram"


def window_hashes(ids):
    """The hash of every window of N nonzero ids in `ids` (uint64), and where each starts."""
    count = len(ids) - N + 1
    if count <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    hashes = np.zeros(count, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(N):
            hashes = hashes * BASE + ids[k:k + count]
    zeros = np.concatenate([[0], np.cumsum(ids == 0)])
    valid = np.flatnonzero(zeros[N:] == zeros[:count])
    return hashes[valid], valid


@contextmanager
def _bar(progress, total):
    """Yields an update(n) function: a progress bar's when given a factory, else one that does nothing."""
    if progress is None:
        yield lambda n: None
        return
    with progress(length=total, label="overlaps") as bar:
        yield bar.update
