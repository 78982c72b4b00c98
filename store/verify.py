"""Checks that a nanotasks file is whole: what `nanotasks verify` runs.

The full check reads everything: SQLite's own integrity check, then every row of every
split (it must decompress, the rows must be the split's count, and their content must
hash to the sha256 the `splits` table recorded when they were compiled), then every
stored file. The quick check reads only what is cheap: the header, the schema and the
`splits` table (as every open does), that the splits' rows lie end to end and fill
`example_data`, and each split's first and last row.
"""

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import zstandard

from nanotasks.store import NoProgress
from nanotasks.store.reader import (
    Split,
    Store,
    StoreError,
    StoreNotFound,
    check_header,
    decompress_body,
    verify_advice,
)
from nanotasks.store.schema import SCHEMA_VERSION, body_decompressor, hashed_row

CHUNK = 1024  # rows read per query, and per progress update


@dataclass
class Check:
    """One line of the report, on what `about` names: a split ({"task", "subset", "split"}),
    a stored file ({"file"}) or the file as a whole ({"check"}, e.g. "header")."""

    about: dict[str, str]
    ok: bool
    detail: str

    @property
    def name(self) -> str:
        return name_of(self.about)

    def as_dict(self) -> dict[str, str | bool]:
        """The check as `nanotasks verify --json` prints it."""
        return {**self.about, "ok": self.ok, "detail": self.detail}


def name_of(about: dict[str, str]) -> str:
    """What a check is on, as a table names it: task subset/split, file NAME, or the whole
    file's check."""
    if "check" in about:
        return about["check"]
    if "file" in about:
        return f"file {about['file']}"
    return f"{about['task']} {about['subset']}/{about['split']}"


def _whole(check, ok, detail):
    return Check({"check": check}, ok, detail)


def _on_split(s, ok, detail):
    s = s if isinstance(s, dict) else s._asdict()
    return Check({k: s[k] for k in ("task", "subset", "split")}, ok, detail)


def _on_file(name, ok, detail):
    return Check({"file": name}, ok, detail)


def verify(path, quick=False, progress=None):
    """The checks, as a list of Check; the file is whole when every `ok` is true. `progress`
    makes the full check's progress bar: progress(length=rows, label=...) -> a context
    manager with update(n), like click.progressbar. A missing file is StoreNotFound: nothing
    to check, not damaged, just not there."""
    try:
        check_header(path)
    except StoreNotFound:
        raise
    except StoreError as error:
        return [_whole("header", False, str(error).removesuffix(verify_advice(path)))]
    size = Path(path).stat().st_size
    checks = [
        _whole(
            "header", True, f"nanotasks format {SCHEMA_VERSION}, {size:,} bytes as the header says"
        )
    ]
    try:
        store = Store(path)  # the checks every open does: the schema, the splits table
    except StoreError as error:
        return checks + [_whole("schema", False, str(error))]
    checks.append(
        _whole("schema", True, "exactly this version's tables and view; splits table sane")
    )
    if not quick:
        checks.append(_integrity(store))
    try:
        splits = store.splits()
        files = store.files()
    except StoreError as error:
        return checks + [_whole("tables", False, str(error))]
    checks.append(_layout(store, splits))
    if quick:
        checks += [_ends(store, _split(s)) for s in splits]
        return checks + [_on_file(f["name"], True, "present") for f in files]
    total = sum(s["rows"] for s in splits)
    with (progress or NoProgress)(length=total, label="verifying") as bar:
        checks += [_rows(store, s, bar) for s in splits]
    return checks + [_file(store, f) for f in files]


def _integrity(store):
    try:
        problems = [row[0] for row in store.connection.execute("PRAGMA integrity_check(3)")]
    except sqlite3.DatabaseError as error:
        problems = [str(error)]
    if problems == ["ok"]:
        return _whole("sqlite", True, "integrity_check ok")
    lines = [
        line for problem in problems for line in problem.splitlines() if not line.startswith("***")
    ]
    return _whole("sqlite", False, f"integrity_check: {'; '.join(lines)}")


def _layout(store, splits):
    """The splits' rows lie end to end from rowid 1 and fill example_data exactly."""
    expected = 1
    for s in sorted(splits, key=lambda s: s["first_example"]):
        if s["first_example"] != expected:
            where = f"{name_of(s)} starts at row {s['first_example']}, expected {expected}"
            return _whole("layout", False, where)
        expected += s["rows"]
    try:
        (last,) = store.connection.execute("SELECT max(id) FROM example_data").fetchone()
    except sqlite3.DatabaseError as error:
        return _whole("layout", False, f"example_data: {error}")
    if (last or 0) != expected - 1:
        return _whole(
            "layout", False, f"the splits hold {expected - 1} rows, example_data ends at row {last}"
        )
    return _whole("layout", True, f"{len(splits)} splits, {expected - 1:,} rows end to end")


def _ends(store, split):
    """Quick: the split's first and last rows are there and decompress."""
    try:
        for position in sorted({0, split.rows - 1}) if split.rows else ():
            store.read(split, position)
    except StoreError as error:
        return _on_split(split, False, str(error).removesuffix(verify_advice(store.path)))
    return _on_split(split, True, f"{split.rows:,} rows, first and last read")


class _Tally:
    """What the full check has read of a split's rows so far."""

    def __init__(self, stored_bytes):
        self.seen = 0
        self.stored_bytes = stored_bytes
        self.digest = hashlib.sha256()
        self.damaged = []


def _rows(store, s, bar):
    """Full: every row decompresses; the count, the sha256 (of the conversations and the plain
    columns) and the stored bytes match. One pass over the rows that are there: the time is
    that of the file, whatever `rows` claims."""
    try:
        decompressor = body_decompressor(s["dictionary"])
    except zstandard.ZstdError as error:
        return _on_split(s, False, f"its dictionary is damaged ({error})")
    tally = _Tally(len(s["dictionary"] or b""))
    try:
        problem = _read(store, _split(s), decompressor, tally, bar) or _mismatch(s, tally)
    except sqlite3.DatabaseError as error:
        problem = f"after row {tally.seen}: SQLite says: {error}"
    if problem:
        return _on_split(s, False, problem)
    return _on_split(s, True, f"{tally.seen:,} rows, sha256 {s['sha256'][:12]} ok")


def _read(store, split, decompressor, tally, bar):
    """Reads the split's rows into `tally`; what is wrong when a row is out of its place."""
    cursor = store.connection.execute(
        "SELECT e.id, e.body, e.source_row, e.messages, e.characters, e.answer, s.name, "
        "e.prompt_hash FROM example_data e LEFT JOIN subjects s ON s.id = e.subject_id "
        "WHERE e.id BETWEEN ? AND ? ORDER BY e.id",
        (split.first_example, split.first_example + split.rows - 1),
    )
    while rows := cursor.fetchmany(CHUNK):
        for rowid, body, *columns in rows:
            if rowid != split.first_example + tally.seen:
                expected = split.first_example + tally.seen
                return f"position {tally.seen} holds rowid {rowid}, expected {expected}"
            tally.seen += 1
            tally.stored_bytes += len(body) if isinstance(body, bytes) else 0
            try:
                data = decompress_body(decompressor, body)
            except (zstandard.ZstdError, TypeError, ValueError) as error:
                tally.damaged.append(f"row {tally.seen - 1} ({error})")
                continue
            tally.digest.update(hashed_row(data, columns))
        bar.update(len(rows))
    return None


def _mismatch(s, tally):
    """What of the rows read differs from what the splits table recorded, if anything."""
    damaged = tally.damaged
    if damaged:
        more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
        rows = "1 row does" if len(damaged) == 1 else f"{len(damaged)} rows do"
        return f"{rows} not decompress: {', '.join(damaged[:3])}{more}"
    if tally.seen != s["rows"]:
        return f"{tally.seen} rows, the splits table says {s['rows']}"
    if tally.digest.hexdigest() != s["sha256"]:
        found, recorded = tally.digest.hexdigest()[:12], s["sha256"][:12]
        return f"content sha256 {found}, the splits table says {recorded}"
    if tally.stored_bytes != s["stored_bytes"]:
        return f"{tally.stored_bytes} stored bytes, the splits table says {s['stored_bytes']}"
    return None


def _file(store, f):
    try:
        content = store.read_file(f["name"])
    except StoreError as error:
        return _on_file(f["name"], False, str(error).removesuffix(verify_advice(store.path)))
    if len(content) != f["size"] or hashlib.sha256(content).hexdigest() != f["sha256"]:
        return _on_file(f["name"], False, "content does not match its size and sha256")
    return _on_file(f["name"], True, f"{f['size']:,} bytes, sha256 {f['sha256'][:12]} ok")


def _split(s):
    return Split(
        s["id"], s["task"], s["subset"], s["split"], s["first_example"], s["rows"], s["dictionary"]
    )
