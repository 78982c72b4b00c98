"""Writes a stored split's conversations out, in the order its Task serves them: JSONL (one
{"messages": [...], ...} object per line) or parquet (columns `position` and
`conversation`, JSON text). What `nanotasks export` and `nanotasks.export` run."""

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path

FORMATS = ("jsonl", "parquet")
PARQUET_BATCH = 10_000  # rows held in memory at a time, for the largest splits


@contextlib.contextmanager
def output_file(path, binary=False, never=None):
    """A file to write `path` through. A regular file (or none yet) is written as a temporary
    file beside it, renamed over it only when the block ends without error, with the mode and
    owner of the file it replaces; on an error nothing is left behind. Anything else that
    exists (a device such as /dev/null, a pipe) is opened and written in place, never
    replaced. `never` is a file that must not be the output (the compiled file itself)."""
    target = Path(os.path.realpath(path))  # through a symbolic link: the file it names is replaced
    if never is not None and target.exists() and os.path.samefile(target, never):
        raise ValueError(f"{path} is the compiled file being read: write the output elsewhere")
    path = target
    mode, encoding = ("wb", None) if binary else ("w", "utf-8")
    existing = path.stat() if path.exists() else None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with open(path, mode, encoding=encoding) as f:
            yield f
        return
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with open(descriptor, mode, encoding=encoding) as f:
            yield f
        if existing is None:
            os.chmod(temporary, 0o666 & ~_umask())  # as open() would have made it
        else:
            os.chmod(temporary, stat.S_IMODE(existing.st_mode))
            if os.geteuid() == 0:
                os.chown(temporary, existing.st_uid, existing.st_gid)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_jsonl(store, split, f):
    """Every conversation of `split` (a store.reader.Split) as a line of text file `f`."""
    for position in range(split.rows):
        f.write(json.dumps(store.read(split, position), ensure_ascii=False) + "\n")


def write_parquet(store, split, f):
    """Every conversation of `split` into binary file `f` as parquet; needs pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("position", pa.int64()), ("conversation", pa.string())])
    with pq.ParquetWriter(f, schema) as writer:
        for start in range(0, split.rows, PARQUET_BATCH):
            positions = list(range(start, min(start + PARQUET_BATCH, split.rows)))
            texts = [json.dumps(store.read(split, p), ensure_ascii=False) for p in positions]
            writer.write_table(
                pa.table({"position": positions, "conversation": texts}, schema=schema)
            )
