"""
Bytes of a compiled file against the same source rows as zstd parquet, split by split.

For every split in the file, the source rows are read from the mirror it was compiled from
and written, in the file's order, as parquet with pyarrow's defaults and compression='zstd';
the stored bytes (compressed bodies plus dictionary) are set against that. A stored word list
counts as a one-column parquet of its words. The last line sets the whole file against the sum.
Splits not read from parquet (CORE's zip bundle, custom JSONL) have no parquet to set against:
they are left out, and their stored bytes taken off the whole file.

    nanotasks compile --mirror ../shared/hub --db real.db    # exits 1: some sources are absent
    python benchmarks/size_vs_parquet.py --mirror ../shared/hub --db real.db [--json]
"""

import argparse
import io
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from nanotasks.compiler.fetch import Fetcher
from nanotasks.output import count, echo_json, echo_table
from nanotasks.store.reader import Store


def parquet_bytes(table):
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.tell()


def taken(table, order):
    """table.take(order). A take first joins the column's chunks into one array, whose 32-bit
    offsets overflow past 2 GB of text (2M SmolTalk rows), so such a table is taken with
    64-bit offsets; parquet stores the same values either way."""
    if table.nbytes < 2**31:
        return table.take(order)
    return table.cast(
        pa.schema([field.with_type(_large(field.type)) for field in table.schema])
    ).take(order)


def _large(kind):
    """`kind` with 64-bit offsets: large_string for string, large_list for list, within structs."""
    if pa.types.is_string(kind):
        return pa.large_string()
    if pa.types.is_list(kind):
        return pa.large_list(kind.value_field.with_type(_large(kind.value_type)))
    if pa.types.is_struct(kind):
        return pa.struct([field.with_type(_large(field.type)) for field in kind])
    return kind


def sizes(db, mirror):
    """One dict per split and stored file, then the whole file: name, about, rows, parquet
    bytes, stored bytes, ratio."""
    store, fetcher = Store(db), Fetcher(mirror)
    result, unmatched_bytes = [], 0
    for split in store.splits():
        if split["source_split"] is None:
            unmatched_bytes += split["stored_bytes"]
            continue
        table, _ = fetcher.split_table(split["repo"], split["config"], split["source_split"])
        order = [
            row
            for (row,) in store.connection.execute(
                "SELECT source_row FROM example_data WHERE id BETWEEN ? AND ? ORDER BY id",
                (split["first_example"], split["first_example"] + split["rows"] - 1),
            )
        ]
        result.append(
            _entry(
                f"{split['task']} {split['subset']}/{split['split']}",
                {key: split[key] for key in ("task", "subset", "split")},
                split["rows"],
                parquet_bytes(taken(table, order)),
                split["stored_bytes"],
            )
        )
    for file in store.files():
        words = store.read_file(file["name"]).decode().split()
        result.append(
            _entry(
                file["name"],
                {"file": file["name"]},
                len(words),
                parquet_bytes(pa.table({"word": words})),
                file["stored_bytes"],
            )
        )
    total = sum(entry["parquet_bytes"] for entry in result)
    result.append(
        _entry(
            "whole file",
            {},
            sum(entry["rows"] for entry in result),
            total,
            os.path.getsize(db) - unmatched_bytes,
        )
    )
    return result


def _entry(name, about, rows, parquet, stored):
    """`name` for the table; `about` for JSON, the CLI's fields: task, subset and split for a
    split, file for a stored file."""
    return {
        "name": name,
        "about": about,
        "rows": rows,
        "parquet_bytes": parquet,
        "stored_bytes": stored,
        "ratio": round(stored / parquet, 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--db", required=True, help="a file compiled from --mirror")
    parser.add_argument("--mirror", required=True, help="the directory it was compiled from")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    entries = sizes(args.db, args.mirror)
    if args.json:  # the CLI's shape: splits by task/subset/split, files by file
        for entry in entries:
            entry.pop("name")
        *parts, whole = [{**e.pop("about"), **e} for e in entries]
        echo_json(
            {
                "path": args.db,
                "splits": [p for p in parts if "task" in p],
                "files": [p for p in parts if "file" in p],
                "whole_file": whole,
            }
        )
        sys.exit()
    echo_table(
        ["split", "rows", "zstd parquet", "nanotasks", "ratio"],
        [
            [
                e["name"],
                count(e["rows"]),
                count(e["parquet_bytes"]),
                count(e["stored_bytes"]),
                f"{e['ratio']:.2f}",
            ]
            for e in entries
        ],
    )
