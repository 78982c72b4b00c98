"""The layout of a nanotasks file: plain SQLite, readable with the `sqlite3` shell.

Every example is one row of `example_data`. Its conversation is JSON compressed on its
own with zstd and the dictionary trained on its split (`splits.dictionary`), so one example
is read without touching any other. The rows of a split have consecutive rowids from
`splits.first_example`: example i of a split is a single primary-key lookup, and the view
`examples` finds a split's rows (and so its dictionary) by rowid range. Plain columns beside
the body answer the questions people ask across benchmarks without decompressing anything.

The `meta` table's row 'identity' is a hash of what a reader relies on to find an example
(see contents_identity): a reader built on one file (a pickled Task in a DataLoader worker)
that opens another in its place, replaced by a compile since, notices and says so.

Bodies are zstd frames without the 4-byte magic number and without a dictionary id (the
row's split says which dictionary), with the content size and a checksum: at ~15 bytes
saved per row this matters next to parquet, and a damaged body still fails its checksum.
"""

import hashlib

import orjson
import zstandard

SCHEMA_VERSION = 1
APPLICATION_ID = 0x6E746B73  # "ntks" in the SQLite header: marks a nanotasks file
EVAL_SPLITS = ("validation", "dev", "test")  # every other split is training data
# No conversation is this big (the writer refuses one that is): a larger size in a body's
# frame header means the header is damaged or crafted, and decompressing would first
# allocate that much. Small enough that one read takes a fraction of a second, so that a
# query's time limit (Datasette's, `nanotasks sql --timeout`) holds between two reads.
MAX_BODY_BYTES = 1 << 24

SCHEMA = """
CREATE TABLE splits (
    id INTEGER PRIMARY KEY,
    task TEXT NOT NULL,             -- module name in tasks/: arc, mmlu, gsm8k, ...
    subset TEXT NOT NULL,           -- ARC-Easy, all, main, default, ...
    split TEXT NOT NULL,            -- train, validation, dev, test, ...
    first_example INTEGER NOT NULL, -- rowid in example_data of the split's position 0
    rows INTEGER NOT NULL,
    repo TEXT,                      -- where the rows came from: a hub repo id, or a file
    config TEXT,                    -- the hub config they were read from
    source_split TEXT,              -- the split's name in that config
    revision TEXT,                  -- resolved hub commit; NULL when read from a mirror
    sha256 TEXT NOT NULL,           -- of the conversations and plain columns, see hashed_row
    stored_bytes INTEGER NOT NULL,  -- compressed bodies plus dictionary
    dictionary BLOB,                -- zstd dictionary of the bodies; NULL: none
    UNIQUE (task, subset, split)
);
CREATE TABLE subjects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE       -- an MMLU subject, a SmolTalk source, ...
);
CREATE TABLE example_data (
    id INTEGER PRIMARY KEY,         -- splits.first_example + position
    source_row INTEGER NOT NULL,    -- row number in the source split
    messages INTEGER NOT NULL,      -- number of messages in the conversation
    characters INTEGER NOT NULL,    -- characters of text over all messages (store.text.message_text)
    answer TEXT,                    -- the short gold answer, where there is one
    subject_id INTEGER REFERENCES subjects(id),
    prompt_hash INTEGER NOT NULL,   -- 47-bit hash of the normalised first user message
    body BLOB NOT NULL              -- zstd(JSON of the conversation), see above
);
CREATE TABLE files (
    name TEXT PRIMARY KEY,          -- e.g. the word list the spelling tasks draw from
    repo TEXT,
    revision TEXT,
    sha256 TEXT NOT NULL,           -- of the uncompressed content
    size INTEGER NOT NULL,          -- uncompressed bytes
    body BLOB NOT NULL              -- zstd(content), an ordinary zstd frame
);
CREATE TABLE overlaps (             -- evaluation examples whose prompt is also in training data
    eval_id INTEGER NOT NULL,       -- example_data.id of a validation/dev/test example
    train_id INTEGER NOT NULL,      -- example_data.id of a training example that contains it
    kind TEXT NOT NULL,             -- 'exact': same normalised prompt; 'ngram': a shared 13-word run
    PRIMARY KEY (eval_id, train_id)
) WITHOUT ROWID;
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE VIEW examples AS
    SELECT splits.task, splits.subset, splits.split,
           example_data.id - splits.first_example AS position,
           example_data.source_row, example_data.messages, example_data.characters,
           example_data.answer, subjects.name AS subject, example_data.prompt_hash,
           example_data.body, example_data.id
    FROM splits
    JOIN example_data ON example_data.id BETWEEN splits.first_example
                                             AND splits.first_example + splits.rows - 1
    LEFT JOIN subjects ON subjects.id = example_data.subject_id;
"""  # noqa: E501 (the text is the format: check_schema compares sqlite_master to it exactly)


def hashed_row(data, columns):
    """What `splits.sha256` covers of one row, the rows in order: the conversation's JSON bytes
    `data`, then its plain columns [source_row, messages, characters, answer, subject name,
    prompt_hash] as compact JSON, each preceded by its length (8 bytes, little-endian). So
    verify finds a changed answer or subject as surely as a changed conversation. (orjson writes
    what json.dumps(columns, ensure_ascii=False, separators=(",", ":")) does for these, faster.)"""
    record = orjson.dumps(columns)
    return len(data).to_bytes(8, "little") + data + len(record).to_bytes(8, "little") + record


def body_compressor(dictionary, level):
    """Compresses example bodies in the frame format above; `dictionary` is bytes or None."""
    params = zstandard.ZstdCompressionParameters.from_level(
        level, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_checksum=True, write_dict_id=False
    )
    dict_data = None
    if dictionary:
        dict_data = zstandard.ZstdCompressionDict(dictionary)
        # the same bytes, 8% faster on SmolTalk: the dictionary's tables are made once, not
        # for each row
        dict_data.precompute_compress(compression_params=params)
    return zstandard.ZstdCompressor(dict_data=dict_data, compression_params=params)


def body_decompressor(dictionary):
    dict_data = zstandard.ZstdCompressionDict(dictionary) if dictionary else None
    return zstandard.ZstdDecompressor(dict_data=dict_data, format=zstandard.FORMAT_ZSTD1_MAGICLESS)


IDENTITY = "identity"  # the key of the meta row that holds contents_identity()


def contents_identity(connection):
    """The sha256 (hex) of every split's name, rows, place, sha256 and dictionary, and of every
    stored file's name and sha256, in the file `connection` writes: the same whenever a Split
    read from one file finds the same examples in another. Content only, so the same sources
    still give the same bytes."""
    digest = hashlib.sha256()
    splits = connection.execute(
        "SELECT id, task, subset, split, first_example, rows, sha256, dictionary FROM splits "
        "ORDER BY id"
    )
    for *columns, dictionary in splits:
        digest.update(orjson.dumps([*columns, hashlib.sha256(dictionary or b"").hexdigest()]))
    for row in connection.execute("SELECT name, sha256 FROM files ORDER BY name"):
        digest.update(orjson.dumps(list(row)))
    return digest.hexdigest()
