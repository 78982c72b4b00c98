"""What a compiled file must hold, derived from the parquet shards without the compiler or
tasks/: each benchmark's conversation built again, independently, as nanochat's Tasks build
it, the reference order, and the content hash. Tests compare the compiled file against these."""

import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

MC_TAIL = "\n\nRespond only with the letter of the correct answer."


def multiple_choice(question, letters, choices):
    options = "\n".join(
        f"- {choice}={letter}" for letter, choice in zip(letters, choices, strict=True)
    )
    return f"Multiple Choice question: {question}\n{options}{MC_TAIL}"


def arc(row):
    letters = row["choices"]["label"]
    user = multiple_choice(row["question"], letters, row["choices"]["text"])
    return {
        "messages": [
            {"role": "user", "content": user},
            {"role": "assistant", "content": row["answerKey"]},
        ],
        "letters": letters,
    }


def mmlu(row):
    row = row["train"] if "train" in row else row  # the auxiliary_train config nests rows
    letters = ["A", "B", "C", "D"]
    user = multiple_choice(row["question"], letters, row["choices"])
    return {
        "messages": [
            {"role": "user", "content": user},
            {"role": "assistant", "content": letters[row["answer"]]},
        ],
        "subject": row["subject"],
        "letters": letters,
    }


def calculator_parts(answer):
    """GSM8K's answer as parts: the text around each <<...>> span (kept even when empty), and
    for each span the expression before its last '=' and the result after it."""
    parts = []
    while (start := answer.find("<<")) >= 0 and (end := answer.find(">>", start)) >= 0:
        inside = answer[start + 2 : end]
        cut = inside.rfind("=")
        expression, result = (inside[:cut], inside[cut + 1 :]) if cut >= 0 else (inside, "")
        parts += [
            {"type": "text", "text": answer[:start]},
            {"type": "python", "text": expression},
            {"type": "python_output", "text": result},
        ]
        answer = answer[end + 2 :]
    return parts + [{"type": "text", "text": answer}]


def gsm8k(row):
    return {
        "messages": [
            {"role": "user", "content": row["question"]},
            {"role": "assistant", "content": calculator_parts(row["answer"])},
        ]
    }


def humaneval(row):
    return {
        "messages": [
            {"role": "user", "content": row["prompt"]},
            {"role": "assistant", "content": row["prompt"] + "\n" + row["canonical_solution"]},
        ],
        "entry_point": row["entry_point"],
        "test": row["test"],
    }


def smoltalk(row):
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]]}


# (task, subset, split) -> (repo, config, split in the source, conversation of a row)
SPLITS = {
    **{
        ("arc", config, split): ("allenai/ai2_arc", config, split, arc)
        for config in ("ARC-Easy", "ARC-Challenge")
        for split in ("train", "validation", "test")
    },
    ("mmlu", "all", "auxiliary_train"): ("cais/mmlu", "auxiliary_train", "train", mmlu),
    **{
        ("mmlu", "all", split): ("cais/mmlu", "all", split, mmlu)
        for split in ("validation", "dev", "test")
    },
    **{
        ("gsm8k", config, split): ("openai/gsm8k", config, split, gsm8k)
        for config in ("main", "socratic")
        for split in ("train", "test")
    },
    ("humaneval", "openai_humaneval", "test"): (
        "openai/openai_humaneval",
        "openai_humaneval",
        "test",
        humaneval,
    ),
    **{
        ("smoltalk", "default", split): ("HuggingFaceTB/smol-smoltalk", "default", split, smoltalk)
        for split in ("train", "test")
    },
}


def shard(mirror, key):
    """The parquet file of a split in a mirror (every source here has one shard per split)."""
    repo, config, split, _ = SPLITS[key]
    folder = "data" if repo == "HuggingFaceTB/smol-smoltalk" else config
    return Path(mirror) / repo / folder / f"{split}-00000-of-00001.parquet"


def order(n):
    return np.random.default_rng(42).permutation(n).tolist()


def expected(mirror, key):
    """(source rows in stored order, conversations in stored order) of a split of a mirror."""
    rows = pq.read_table(shard(mirror, key)).to_pylist()
    source_rows = order(len(rows))
    conversation = SPLITS[key][3]
    return source_rows, [conversation(rows[i]) for i in source_rows]


def canonical(conversation):
    return json.dumps(conversation, ensure_ascii=False, separators=(",", ":")).encode()


def content_hash(conversations, columns=None):
    """sha256 over the conversations in order, each as 8-byte little-endian length + JSON; with
    `columns`, what splits.sha256 covers: each row's plain columns [source_row, messages,
    characters, answer, subject, prompt_hash] too, as length + compact JSON after its JSON."""
    digest = hashlib.sha256()
    for i, conversation in enumerate(conversations):
        data = canonical(conversation)
        digest.update(len(data).to_bytes(8, "little") + data)
        if columns is not None:
            record = json.dumps(columns[i], ensure_ascii=False, separators=(",", ":")).encode()
            digest.update(len(record).to_bytes(8, "little") + record)
    return digest.hexdigest()


def stored_columns(db, key):
    """The plain columns splits.sha256 covers, of the split `key`'s rows in stored order."""
    with sqlite3.connect(db) as connection:
        return [
            list(row)
            for row in connection.execute(
                "SELECT source_row, messages, characters, answer, subject, prompt_hash "
                "FROM examples WHERE task = ? AND subset = ? AND split = ? ORDER BY position",
                key,
            )
        ]
