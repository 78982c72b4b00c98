"""Checks that a nanotasks file is whole: what `nanotasks verify` runs.

The full check reads everything: SQLite's own integrity check, then every row of every
split (it must decompress, the rows must be the split's count, and their content must
hash to the sha256 the `splits` table recorded when they were compiled), then every
stored file. The quick check reads only what is cheap: the header, the schema and the
`splits` table (as every open does), that the splits' rows lie end to end and fill
`example_data`, and each split's first and last row.
"""

import contextlib
import hashlib
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import zstandard

from nanotasks.store.reader import (
    Split,
    Store,
    StoreError,
    check_header,
    decompress_body,
    verify_advice,
)
from nanotasks.store.schema import SCHEMA_VERSION, body_decompressor, hashed_row

CHUNK = 1024  # rows read per query, and per progress update


@dataclass
class Check:
    """One line of the report: a split, a stored file, or the file as a whole."""

    name: str
    ok: bool
    detail: str

    def as_dict(self):
        return asdict(self)


def verify(path, quick=False, progress=None):
    """The checks, as a list of Check; the file is whole when every `ok` is true. `progress`
    makes the full check's progress bar: progress(length=rows, label=...) -> a context
    manager with update(n), like click.progressbar."""
    try:
        check_header(path)
    except StoreError as error:
        return [Check("header", False, str(error).removesuffix(verify_advice(path)))]
    checks = [
        Check(
            "header",
            True,
            f"nanotasks format {SCHEMA_VERSION}, "
            f"{Path(path).stat().st_size:,} bytes as the header says",
        )
    ]
    try:
        store = Store(path)  # the checks every open does: the schema, the splits table
    except StoreError as error:
        return checks + [Check("schema", False, str(error))]
    checks.append(
        Check("schema", True, "exactly this version's tables and view; splits table sane")
    )
    if not quick:
        checks.append(_integrity(store))
    try:
        splits = store.splits()
        files = store.files()
    except StoreError as error:
        return checks + [Check("tables", False, str(error))]
    checks.append(_layout(store, splits))
    if quick:
        checks += [_ends(store, _split(s)) for s in splits]
        return checks + [Check(f"file {f['name']}", True, "present") for f in files]
    total = sum(s["rows"] for s in splits)
    with (progress or _silent)(length=total, label="verifying") as bar:
        checks += [_rows(store, s, bar) for s in splits]
    return checks + [_file(store, f) for f in files]


def _integrity(store):
    try:
        problems = [row[0] for row in store.connection.execute("PRAGMA integrity_check(3)")]
    except sqlite3.DatabaseError as error:
        problems = [str(error)]
    if problems == ["ok"]:
        return Check("sqlite", True, "integrity_check ok")
    lines = [
        line for problem in problems for line in problem.splitlines() if not line.startswith("***")
    ]
    return Check("sqlite", False, f"integrity_check: {'; '.join(lines)}")


def _layout(store, splits):
    """The splits' rows lie end to end from rowid 1 and fill example_data exactly."""
    expected = 1
    for s in sorted(splits, key=lambda s: s["first_example"]):
        if s["first_example"] != expected:
            return Check(
                "layout",
                False,
                f"{_name(s)} starts at row {s['first_example']}, expected {expected}",
            )
        expected += s["rows"]
    try:
        (last,) = store.connection.execute("SELECT max(id) FROM example_data").fetchone()
    except sqlite3.DatabaseError as error:
        return Check("layout", False, f"example_data: {error}")
    if (last or 0) != expected - 1:
        return Check(
            "layout", False, f"the splits hold {expected - 1} rows, example_data ends at row {last}"
        )
    return Check("layout", True, f"{len(splits)} splits, {expected - 1:,} rows end to end")


def _ends(store, split):
    """Quick: the split's first and last rows are there and decompress."""
    try:
        for position in sorted({0, split.rows - 1}) if split.rows else ():
            store.read(split, position)
    except StoreError as error:
        return Check(_name(split), False, str(error).removesuffix(verify_advice(store.path)))
    return Check(_name(split), True, f"{split.rows:,} rows, first and last read")


def _rows(store, s, bar):
    """Full: every row decompresses; the count, the sha256 (of the conversations and the plain
    columns) and the stored bytes match. One pass
    over the rows that are there: the time is that of the file, whatever `rows` claims."""
    split = _split(s)
    digest = hashlib.sha256()
    stored_bytes = len(s["dictionary"] or b"")
    damaged = []
    seen = 0
    try:
        decompressor = body_decompressor(s["dictionary"])
    except zstandard.ZstdError as error:
        return Check(_name(s), False, f"its dictionary is damaged ({error})")
    try:
        cursor = store.connection.execute(
            "SELECT e.id, e.body, e.source_row, e.messages, e.characters, e.answer, s.name, "
            "e.prompt_hash FROM example_data e LEFT JOIN subjects s ON s.id = e.subject_id "
            "WHERE e.id BETWEEN ? AND ? ORDER BY e.id",
            (split.first_example, split.first_example + split.rows - 1),
        )
        while rows := cursor.fetchmany(CHUNK):
            for rowid, body, *columns in rows:
                if rowid != split.first_example + seen:
                    return Check(
                        _name(s),
                        False,
                        f"position {seen} holds rowid {rowid}, expected "
                        f"{split.first_example + seen}",
                    )
                seen += 1
                stored_bytes += len(body) if isinstance(body, bytes) else 0
                try:
                    data = decompress_body(decompressor, body)
                except (zstandard.ZstdError, TypeError, ValueError) as error:
                    damaged.append(f"row {seen - 1} ({error})")
                    continue
                digest.update(hashed_row(data, columns))
            bar.update(len(rows))
    except sqlite3.DatabaseError as error:
        return Check(_name(s), False, f"after row {seen}: SQLite says: {error}")
    if damaged:
        more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
        rows = "1 row does" if len(damaged) == 1 else f"{len(damaged)} rows do"
        return Check(_name(s), False, f"{rows} not decompress: {', '.join(damaged[:3])}{more}")
    if seen != split.rows:
        return Check(_name(s), False, f"{seen} rows, the splits table says {split.rows}")
    if digest.hexdigest() != s["sha256"]:
        return Check(
            _name(s),
            False,
            f"content sha256 {digest.hexdigest()[:12]}, the splits table says {s['sha256'][:12]}",
        )
    if stored_bytes != s["stored_bytes"]:
        return Check(
            _name(s),
            False,
            f"{stored_bytes} stored bytes, the splits table says {s['stored_bytes']}",
        )
    return Check(_name(s), True, f"{seen:,} rows, sha256 {s['sha256'][:12]} ok")


def _file(store, f):
    try:
        content = store.read_file(f["name"])
    except StoreError as error:
        return Check(f"file {f['name']}", False, str(error).removesuffix(verify_advice(store.path)))
    if len(content) != f["size"] or hashlib.sha256(content).hexdigest() != f["sha256"]:
        return Check(f"file {f['name']}", False, "content does not match its size and sha256")
    return Check(f"file {f['name']}", True, f"{f['size']:,} bytes, sha256 {f['sha256'][:12]} ok")


def _split(s):
    return Split(
        s["id"], s["task"], s["subset"], s["split"], s["first_example"], s["rows"], s["dictionary"]
    )


def _name(s):
    s = s if isinstance(s, dict) else s._asdict()
    return f"{s['task']} {s['subset']}/{s['split']}"


@contextlib.contextmanager
def _silent(length, label):
    yield SimpleNamespace(update=lambda n: None)
