"""A synthetic snapshot in the hub mirror layout, at SmolTalk scale, for benchmarks.

English-looking text, not random bytes, so compressed sizes mean something: sentences of
words drawn with Zipf-like frequencies from a list of common function words and an English
word list. Messages are slices of one generated corpus cut at sentence ends, so making a
million messages costs a few seconds. Nothing here is real data, and nothing is committed.

Lays out, under one directory, what `nanotasks compile --mirror` and `datasets.load_dataset`
both read:
  HuggingFaceTB/smol-smoltalk  default: train, test    (messages, source)
  cais/mmlu                    auxiliary_train: train  (train: {answer, choices, question,
                                                         subject})
  openai/gsm8k                 main: train             (question, answer with <<a*b=c>> spans)
  dwyl/english-words/words_alpha.txt
With `mirror`, each of these that the mirror has is linked from it instead of made up.
"""

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nanotasks.compiler.fetch import SourceError, data_file_patterns

# The commonest English words, which make up about half of running text.
FUNCTION_WORDS = """the of and to a in is that it for was on are as with be by this have from or
at not but an they which you one we all were can there has their more if will so what when would
about been who some into its them do only other than then also these two may first could any my
like over such our most very after your how should where just those me each how well much make
because good through does used many before here between both under same while new""".split()
SOURCES = [
    "smol-magpie-ultra",
    "smol-constraints",
    "smol-rewrite",
    "smol-summarize",
    "everyday-conversations",
    "apigen-80k",
    "metamathqa-50k",
    "longalign",
    "openhermes-100k",
    "self-oss-instruct",
    "explore-instruct-rewriting",
    "systemchats-30k",
]
# user/assistant exchanges per conversation: mostly one, some multi-turn (2 to 12 messages)
EXCHANGES, EXCHANGE_WEIGHTS = [1, 2, 3, 4, 5, 6], [0.55, 0.15, 0.2, 0.05, 0.03, 0.02]
SYSTEM_SHARE = 0.15
VOCABULARY = 30_000  # distinct content words: about what a few thousand documents use
SHARDS = 4  # smol-smoltalk's train split comes as 4 parquet files
ROW_GROUP = 20_000  # rows made and written at a time: about 66 MB of SmolTalk text
README = """---
configs:
{configs}---

Synthetic data made by nanotasks' benchmarks/synthetic.py; not real data.
"""
WORDS_PATH = Path("dwyl") / "english-words" / "words_alpha.txt"


class Corpus:
    """One long text of sentences; `take(lengths)` cuts pieces of about those lengths from it."""

    def __init__(self, words, characters, rng):
        # half of the words are function words, the rest Zipf-distributed over a vocabulary
        # of common-length words from the list
        content = rng.permutation(np.array([w for w in words if 2 < len(w) < 11], dtype=object))[
            :VOCABULARY
        ]
        vocabulary = np.concatenate([np.array(FUNCTION_WORDS, dtype=object), content])
        weights = np.concatenate(
            [
                np.full(len(FUNCTION_WORDS), 1.0 / len(FUNCTION_WORDS)),
                1.0 / np.arange(1, 1 + len(content)) / np.sum(1.0 / np.arange(1, 1 + len(content))),
            ]
        )
        ids = rng.choice(len(vocabulary), size=characters // 6, p=weights / 2)
        # sentences of 4-27 words: capitalise the first word, end the last with . or ?
        last = np.cumsum(rng.integers(4, 28, size=len(ids) // 4)) - 1
        last = last[last < len(ids)]
        chosen = vocabulary[ids]
        chosen[0], chosen[last[:-1] + 1] = (
            chosen[0].capitalize(),
            [w.capitalize() for w in chosen[last[:-1] + 1]],
        )
        marks = np.where(rng.random(len(last)) < 0.1, "?", ".").astype(object)
        chosen[last] = chosen[last] + marks
        chosen = chosen[: last[-1] + 1]
        self.text = " ".join(chosen.tolist())
        sizes = np.array([len(w) for w in vocabulary])[ids[: len(chosen)]] + 1  # with the space
        sizes[last] += 1  # the mark
        word_ends = np.cumsum(sizes) - 1
        self.ends = word_ends[last]  # offset just past each sentence
        self.rng = rng

    def take(self, lengths):
        """Pieces that start at a sentence and end at the first sentence end past `lengths`."""
        first = self.rng.integers(0, len(self.ends) // 2, size=len(lengths))
        starts = np.where(first > 0, self.ends[first - 1] + 1, 0)
        stops = self.ends[
            np.minimum(np.searchsorted(self.ends, starts + lengths), len(self.ends) - 1)
        ]
        text = self.text
        return [text[a:b] for a, b in zip(starts.tolist(), stops.tolist(), strict=True)]


def lengths(rng, n, median, sigma, low, high):
    return np.clip(rng.lognormal(np.log(median), sigma, size=n), low, high).astype(np.int64)


def smoltalk_table(corpus, rng, rows):
    """`rows` conversations: an optional system message, then 1-6 user/assistant exchanges."""
    exchanges = rng.choice(EXCHANGES, size=rows, p=EXCHANGE_WEIGHTS)
    system = rng.random(rows) < SYSTEM_SHARE
    counts = 2 * exchanges + system
    offsets = np.concatenate([[0], np.cumsum(counts)])
    total = int(offsets[-1])
    # position of each message in its conversation, and whether it is the system message
    position = np.arange(total) - np.repeat(offsets[:-1], counts)
    is_system = np.repeat(system, counts) & (position == 0)
    turn = position - np.repeat(system, counts)
    roles = np.where(is_system, "system", np.where(turn % 2 == 0, "user", "assistant"))
    size = np.where(
        is_system,
        lengths(rng, total, 160, 0.5, 40, 600),
        np.where(
            turn % 2 == 0,
            lengths(rng, total, 260, 1.0, 10, 8000),
            lengths(rng, total, 800, 0.8, 20, 12000),
        ),
    )
    contents = corpus.take(size)
    system_prompts = corpus.take(np.full(40, 200))  # few distinct system prompts, as in SmolTalk
    for i in np.flatnonzero(is_system).tolist():
        contents[i] = system_prompts[i % len(system_prompts)]
    message = pa.StructArray.from_arrays(
        [pa.array(contents, pa.string()), pa.array(roles, pa.string())], names=["content", "role"]
    )
    messages = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), message)
    source = pa.array(np.array(SOURCES)[rng.integers(0, len(SOURCES), size=rows)], pa.string())
    return pa.table({"messages": messages, "source": source})


def mmlu_table(corpus, rng, rows):
    """MMLU auxiliary_train: long passages with a question, four short choices, an empty subject."""
    questions = corpus.take(lengths(rng, rows, 900, 0.7, 60, 6000))
    choices = corpus.take(lengths(rng, rows * 4, 30, 0.6, 3, 300))
    train = pa.StructArray.from_arrays(
        [
            pa.array(rng.integers(0, 4, size=rows)),
            pa.ListArray.from_arrays(
                pa.array(np.arange(0, 4 * rows + 1, 4), pa.int32()), pa.array(choices)
            ),
            pa.array(questions),
            pa.array([""] * rows),
        ],
        names=["answer", "choices", "question", "subject"],
    )
    return pa.table({"train": train})


def gsm8k_table(corpus, rng, rows):
    """GSM8K main: a word problem, and a worked answer with calculator spans ending in #### N."""
    questions = corpus.take(lengths(rng, rows, 230, 0.4, 60, 900))
    steps = corpus.take(lengths(rng, rows * 3, 60, 0.5, 10, 300))
    a, b = rng.integers(2, 99, size=(2, rows * 3)).tolist()
    answers = []
    for i in range(rows):
        lines = [
            f"{steps[3 * i + j]} {a[3 * i + j]}*{b[3 * i + j]} = "
            f"<<{a[3 * i + j]}*{b[3 * i + j]}={a[3 * i + j] * b[3 * i + j]}>>"
            f"{a[3 * i + j] * b[3 * i + j]}"
            for j in range(3)
        ]
        answers.append("\n".join(lines) + f"\n#### {a[3 * i + 2] * b[3 * i + 2]}")
    return pa.table({"question": questions, "answer": answers})


def row_groups(make_table, corpus, rng, rows):
    """The tables of a shard of `rows` rows, ROW_GROUP rows at a time, each made when the shard
    is written: a shard of millions of rows is never held whole."""
    for start in range(0, rows or 1, ROW_GROUP):
        yield make_table(corpus, rng, min(ROW_GROUP, rows - start))


def write_repo(root, repo, splits):
    """Write `repo` with {(config, split): [shard]} as parquet shards, each shard an iterable of
    tables written as its row groups, and its README configs."""
    configs = {}
    for (config, split), shards in splits.items():
        folder = "data" if repo.endswith("smoltalk") else config
        for i, tables in enumerate(shards):
            path = root / repo / folder / f"{split}-{i:05d}-of-{len(shards):05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = None
            for table in tables:
                if writer is None:
                    writer = pq.ParquetWriter(
                        path, table.schema, use_dictionary=False, write_statistics=False
                    )
                writer.write_table(table)
            writer.close()
        configs.setdefault(config, []).append(f"  - split: {split}\n    path: {folder}/{split}-*\n")
    text = "".join(
        f"- config_name: {config}\n  data_files:\n{''.join(entries)}"
        for config, entries in configs.items()
    )
    (root / repo / "README.md").write_text(README.format(configs=text))


def has_split(mirror, repo, config, split):
    try:
        patterns = data_file_patterns(mirror / repo, repo, config, split)
    except SourceError:
        return False
    return any(path for pattern in patterns for path in (mirror / repo).glob(pattern))


def make_snapshot(
    root,
    words_file,
    smoltalk_train=460_000,
    smoltalk_test=24_000,
    mmlu_train=99_842,
    gsm8k_train=7_473,
    mirror=None,
    seed=0,
):
    """Write the synthetic snapshot to `root`; returns {repo: "synthetic" or "mirror"}."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    words = [w for w in Path(words_file).read_text().split() if w.isalpha()]
    wanted = {
        "HuggingFaceTB/smol-smoltalk": [("default", "train"), ("default", "test")],
        "cais/mmlu": [("auxiliary_train", "train")],
        "openai/gsm8k": [("main", "train")],
    }
    origin = {}
    for repo, splits in wanted.items():
        if mirror and all(has_split(Path(mirror), repo, *s) for s in splits):
            (root / repo).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(Path(mirror).resolve() / repo, root / repo)
            origin[repo] = "mirror"
        else:
            origin[repo] = "synthetic"
    need = sum(origin[r] == "synthetic" for r in wanted)
    if need:
        # enough distinct text that pieces rarely repeat within a parquet page
        corpus = Corpus(words, 64_000_000, rng)
    if origin["HuggingFaceTB/smol-smoltalk"] == "synthetic":
        shards = np.array_split(np.arange(smoltalk_train), SHARDS)
        write_repo(
            root,
            "HuggingFaceTB/smol-smoltalk",
            {
                ("default", "train"): [
                    row_groups(smoltalk_table, corpus, rng, len(s)) for s in shards
                ],
                ("default", "test"): [row_groups(smoltalk_table, corpus, rng, smoltalk_test)],
            },
        )
    if origin["cais/mmlu"] == "synthetic":
        write_repo(
            root,
            "cais/mmlu",
            {("auxiliary_train", "train"): [row_groups(mmlu_table, corpus, rng, mmlu_train)]},
        )
    if origin["openai/gsm8k"] == "synthetic":
        write_repo(
            root,
            "openai/gsm8k",
            {("main", "train"): [row_groups(gsm8k_table, corpus, rng, gsm8k_train)]},
        )
    (root / WORDS_PATH).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(Path(words_file).resolve(), root / WORDS_PATH)
    return origin
