"""Small helpers shared by several test files: the rows of a compiled split, a source's rows in
the reference order, edits of a file behind nanotasks' back, the lines of a compile's output, and
the code blocks of the Markdown pages (README.md, docs/)."""

import hashlib
import re
import shlex
import shutil
import sqlite3

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from nanotasks.store.reader import Store
from tests.conftest import SAMPLE
from tests.reference import SPLITS


def source_rows(root, repo, config, split):
    """The rows of a hub-layout split, in the reference order the tasks serve them in."""
    files = sorted((root / repo).glob(f"{config}/{split}-*.parquet"))
    rows = [row for path in files for row in pq.read_table(path).to_pylist()]
    return [rows[i] for i in np.random.default_rng(42).permutation(len(rows))]


def user(content):
    return {"role": "user", "content": content}


def assistant(content):
    return {"role": "assistant", "content": content}


CONVERSATIONS = [
    [user("Hi"), assistant("Hello! How can I help?")],
    [user("2+2?"), assistant("4"), user("and 3+3?"), assistant("6")],
    [user("Ünïcödé ✓ 你好"), assistant("ok")],
]


def write_jsonl(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


SPLIT_NAMES = {key: f"{key[0]} {key[1]}/{key[2]}" for key in SPLITS}


def without_cost(line):
    """A compile's closing line without its time and peak memory, which vary from run to run."""
    return re.sub(r" in [\d.]+ s, at most [\d,]+ MB of memory$", "", line)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored(db, key):
    store = Store(db)
    split = store.split(*key)
    return [store.read(split, i) for i in range(split.rows)]


def column(db, name, key):
    """A plain column of a split's rows, in stored order."""
    with sqlite3.connect(db) as connection:
        return [
            value
            for (value,) in connection.execute(
                f"SELECT {name} FROM examples WHERE task = ? AND subset = ? AND split = ? "
                "ORDER BY position",
                key,
            )
        ]


def mirror_copy(tmp_path, name="mirror"):
    return shutil.copytree(SAMPLE, tmp_path / name)


def rewrite(path, change):
    """Replace a parquet shard's rows with change(rows), keeping its schema."""
    table = pq.read_table(path)
    pq.write_table(pa.Table.from_pylist(change(table.to_pylist()), schema=table.schema), path)


def failures(stderr):
    return sorted(line for line in stderr.splitlines() if line.startswith("failed: "))


def find(conversations, text):
    """The one conversation whose first message contains text."""
    [found] = [c for c in conversations if text in str(c["messages"][0]["content"])]
    return found


def assert_one_clear_line(result, *words):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: nothing was written: ") and all(w in last for w in words), last


def flip(path, offset, bits=0xFF):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ bits]))


def locate(path, task, subset, split, position):
    """The offset of a row's compressed body in the file's bytes."""
    db = sqlite3.connect(path)
    (body,) = db.execute(
        "SELECT body FROM examples WHERE task = ? AND subset = ? AND split = ? AND position = ?",
        (task, subset, split, position),
    ).fetchone()
    db.close()
    data = path.read_bytes()
    assert data.count(body) == 1
    return data.index(body), len(body)


ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"


def edit(path, *statements):
    """Change the file behind nanotasks' back, schema included."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA writable_schema=ON")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


NOT_OURS = "not a nanotasks file of this version"


def split_row(path, task, subset, split):
    db = sqlite3.connect(path)
    row = db.execute(
        "SELECT id, first_example, rows FROM splits WHERE task = ? AND subset = ? AND split = ?",
        (task, subset, split),
    ).fetchone()
    db.close()
    return row


def with_body(path, example_id, body):
    edit(path, f"UPDATE example_data SET body = X'{body.hex()}' WHERE id = {example_id}")


def claiming(size):
    """A body whose frame header claims `size` bytes of content."""
    compressor = zstandard.ZstdCompressor(write_checksum=True)
    chunk = compressor.compressobj(size=size)
    frame = chunk.compress(b'{"messages":[]}') + chunk.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    return frame[4:]  # stored without the magic number


def assert_untouched(db, before):
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]  # no .tmp-<pid> left


def fenced_blocks(path):
    """The fenced code blocks of a Markdown page, in order: (language, text, line number), each
    block's lines without the indentation of its opening fence (a block may sit in a list)."""
    blocks, opened = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.lstrip()
        if opened is None:
            if stripped.startswith("```"):
                opened = (stripped[3:].strip(), len(line) - len(stripped), number, [])
        elif stripped.rstrip() == "```":
            language, _, start, lines = opened
            blocks.append((language, "\n".join(lines), start))
            opened = None
        else:
            opened[3].append(line[opened[1] :])
    assert opened is None, f"{path}:{opened[2]}: a code block is never closed"
    return blocks


def _complete(command):
    """Whether a shell command is whole: no quote left open, no line ending in a backslash."""
    try:
        shlex.split(command)
    except ValueError:
        return False
    return not command.endswith("\\")


def console_commands(text):
    """A console block's commands, each with the output shown under it: [(command, output)]. A
    command starts at `$ ` and runs on over the next lines while a quote is open or a line ends
    in a backslash; its output is every line up to the next command."""
    commands = []
    for line in text.splitlines():
        if commands and not _complete(commands[-1][0]):
            commands[-1][0] += "\n" + line
        elif line.startswith("$ "):
            commands.append([line[2:], []])
        else:
            assert commands, f"output before any `$ ` command: {line!r}"
            commands[-1][1].append(line)
    return [(command, "\n".join(output)) for command, output in commands]
