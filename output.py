"""How every command prints, the same way everywhere: tables, JSON, colour and progress.

Tables are for people: numbers right-aligned, and on a terminal wide cells are cut to fit.
JSON is for programs: every split is named by task, subset and split fields, every stored
file by a file field, seconds are rounded to milliseconds, and BLOBs are base64 objects
as sqlite-utils writes them. Colour and progress go only to a terminal, never under NO_COLOR
or --json.
"""

import base64
import csv
import itertools
import json
import os
import re
import shutil
import sys
import time

import click

from nanotasks.store.text import message_text
from nanotasks.store.verify import name_of

NUMBER = re.compile(r"-?[\d,]*\.?\d+(e[-+]?\d+)?x?")
ELLIPSIS = "…"
NARROWEST = 8  # a cell cut to fit the terminal keeps at least this many characters


def is_terminal(stream):
    return hasattr(stream, "isatty") and stream.isatty()


def colour(text, err=False):
    """`text` in bold red (FAILED, DAMAGED, Error:) when it goes to a terminal and NO_COLOR is
    unset (https://no-color.org)."""
    stream = sys.stderr if err else sys.stdout
    if is_terminal(stream) and not os.environ.get("NO_COLOR"):
        return click.style(text, fg="red", bold=True)
    return text


def count(n):
    """An integer for people: 1,234; blank for None."""
    return "" if n is None else f"{n:,}"


def cell(value):
    """A value as one line of a table cell."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return f"<{len(value):,} bytes>"
    return str(value).replace("\n", "\\n")


def table(headers, rows, width=None):
    """Aligned columns under a rule, as one string; see table_lines."""
    return "\n".join(table_lines(headers, rows, width))


def table_lines(headers, rows, width=None, head=1000):
    """The lines of a table, made as `rows` (any iterable) come: column widths and alignment
    are those of the first `head` rows, so a long result streams in bounded memory. A column
    whose cells are all numbers (or blank) is right-aligned. With `width` (a terminal's), the
    widest cells are cut, ending in '…', until each line fits."""
    rows = ([cell(value) for value in row] for row in rows)
    first = list(itertools.islice(rows, head))
    columns = list(zip(headers, *first, strict=True)) if first else [(h,) for h in headers]
    numeric = [
        len(column) > 1
        and all(NUMBER.fullmatch(click.unstyle(value)) or not value for value in column[1:])
        for column in columns
    ]
    widths = [max(map(_length, column)) for column in columns]
    if width:
        _fit(widths, [len(header) for header in headers], width)
    for line in itertools.chain([headers, ["-" * w for w in widths]], first, rows):
        yield "  ".join(
            _pad(value, w, right) for value, w, right in zip(line, widths, numeric, strict=True)
        ).rstrip()


def _fit(widths, minimums, width):
    """Narrow the widest columns, one character at a time, until the line fits `width`."""
    while sum(widths) + 2 * (len(widths) - 1) > width:
        widest = max(range(len(widths)), key=widths.__getitem__)
        if widths[widest] <= max(NARROWEST, minimums[widest]):
            return
        widths[widest] -= 1


def _pad(value, width, right):
    if _length(value) > width:
        value = click.unstyle(value)[: width - 1] + ELLIPSIS
    padding = " " * (width - _length(value))
    return padding + value if right else value + padding


def _length(value):
    """How wide a cell shows: colour codes take no room."""
    return len(click.unstyle(value))


def echo_table(headers, rows):
    """Print a table to standard output as its rows come, cut to the terminal's width when
    it is one."""
    width = shutil.get_terminal_size().columns if is_terminal(sys.stdout) else None
    for line in table_lines(headers, rows, width):
        click.echo(line)


def echo_json(data):
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(value):
    if isinstance(value, bytes):
        return blob(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def blob(value):
    """A BLOB in JSON, as sqlite-utils writes one."""
    return {"$base64": True, "encoded": base64.b64encode(value).decode()}


def echo_info(info, as_json=False):
    """What `nanotasks info` prints of a nanotasks.Info: a table of the splits (then the other
    names they are served under, then the stored files), or JSON of the splits and files."""
    if as_json:
        echo_json({"path": info.path, "splits": info.splits, "files": info.files})
        return
    rows = [
        [s["task"], s["subset"], s["split"], count(s["rows"]), count(s["stored_bytes"])]
        + [_source(s), _revision(s), s["sha256"][:12]]
        for s in info.splits
    ]
    rows += [
        [
            a.task,
            a.subset,
            a.split,
            count(a.rows),
            "",
            f"same rows as {a.stored_subset}/{a.stored_split}",
            "",
            "",
        ]
        for a in info.aliases
    ]
    rows += [
        ["file", f["file"], "", "", count(f["stored_bytes"]), f["repo"], _revision(f)]
        + [f["sha256"][:12]]
        for f in info.files
    ]
    echo_table(["task", "subset", "split", "rows", "bytes", "source", "revision", "sha256"], rows)


def _source(split):
    """Where a split was read: repo:config/split, as --chat names a dataset, where the config
    or split differs from the stored subset or split."""
    source = split["repo"]
    if split["config"] is not None and split["config"] != split["subset"]:
        source += f":{split['config']}"
    if split["source_split"] is not None and split["source_split"] != split["split"]:
        source += f"/{split['source_split']}"
    return source


def _revision(source):
    """The hub commit, shortened; `mirror` for a source read from a --mirror, blank for a
    local file."""
    if source["revision"]:
        return source["revision"][:12]
    return "" if source.get("task") == "customjson" else "mirror"


def echo_conversation(conversation, as_json=False):
    """A conversation as `nanotasks show` prints it: each message under its role, then its
    other fields on one line; or the whole as JSON."""
    if as_json:
        echo_json(conversation)
        return
    for message in conversation["messages"]:
        click.secho(f"[{message['role']}]", bold=True)
        click.echo(message_text(message))
        click.echo()
    extras = {k: v for k, v in conversation.items() if k != "messages"}
    if extras:
        click.echo(json.dumps(extras, ensure_ascii=False))  # one line, after the messages


def echo_checks(path, quick, checks, as_json=False):
    """The report of `nanotasks verify` on the file at `path`: a line per check (a
    store.verify.Check) and a verdict, or JSON."""
    whole = all(check.ok for check in checks)
    if as_json:
        checked = [check.as_dict() for check in checks]
        echo_json({"path": str(path), "quick": quick, "ok": whole, "checks": checked})
        return
    echo_table(
        ["check", "status", "detail"],
        [[c.name, "ok" if c.ok else colour("FAILED"), c.detail] for c in checks],
    )
    if whole:
        click.echo(f"{path}: whole ({'quick' if quick else 'full'} check)")
    else:
        failed = sum(not check.ok for check in checks)
        click.echo(
            f"{path}: {colour('DAMAGED')} ({failed} of {len(checks)} checks failed). Copy it "
            f"again from a good copy, or recompile it."
        )


def echo_rows(columns, rows, as_json=False, as_csv=False):
    """A query's rows (any iterable), printed as they come: a table, CSV with a header row,
    or a JSON array of objects. BLOBs as sqlite-utils writes them: base64 in CSV, an object
    that says so in JSON (see blob), `<N bytes>` in a table."""
    if as_json:
        _echo_json_records(columns, rows)
    elif as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(
                [base64.b64encode(c).decode() if isinstance(c, bytes) else c for c in row]
            )
    else:
        echo_table(columns, rows)


def _echo_json_records(columns, rows):
    """The rows as echo_json would print the whole list of objects, one object at a time;
    each value through the C encoder."""
    encode = json.JSONEncoder(ensure_ascii=False, default=blob).encode
    first = True
    for row in rows:
        record = dict(zip(columns, row, strict=True))  # a repeated name keeps its last value
        members = ",\n".join(
            f"    {encode(name)}: {encode(value)}" for name, value in record.items()
        )
        sys.stdout.write(("[\n" if first else ",\n") + "  {\n" + members + "\n  }")
        first = False
    sys.stdout.write("[]\n" if first else "\n]\n")


def echo_exported(split, output):
    """The line on standard error after `nanotasks export -o FILE` wrote `split`."""
    click.echo(
        f"wrote {count(split.rows)} conversations of {split.task} {split.subset}/{split.split} "
        f"to {output}",
        err=True,
    )


def echo_overlap(path, summary, as_json=False):
    """What `nanotasks overlap` prints of Store.overlap_summary(): per evaluation split, its
    examples and how many are in training splits, then one line per training split."""
    if as_json:
        echo_json({"path": str(path), "splits": summary})
        return
    rows = []
    for item in summary:
        rows.append(
            [name_of(item), count(item["examples"]), count(item["overlapping"]), "", "", ""]
        )
        rows += [
            ["", "", "", name_of(found), count(found["exact"]), count(found["ngram"])]
            for found in item["found_in"]
        ]
    headers = ["evaluation split", "examples", "in training", "found in", "exact", "13-gram"]
    echo_table(headers, rows)


def seconds(value):
    return round(value, 3)


def progress(enabled=True, memory=None):
    """The progress display of one command: a single line on standard error, rewritten as work
    goes on, or None (quiet) when `enabled` is false or standard error is no terminal. It is
    what the library's `progress` arguments take: progress(length=..., label=...) -> a context
    manager with update(n). With `memory` (anything with a `current` number of bytes), the
    line shows it too."""
    if not enabled or not is_terminal(sys.stderr):
        return None
    return Progress(memory)


class Progress:
    """One status line for a whole command: how many steps are done, the current step's name,
    its count of rows (of how many, when known), its rate and time, and the memory in use."""

    def __init__(self, memory=None):
        self.done, self.memory = 0, memory

    def __call__(self, length, label):
        self.length, self.label, self.count = length, label, 0
        self.started = self.shown = time.monotonic()
        return self

    def __enter__(self):
        self._show()
        return self

    def update(self, n):
        self.count += n
        if time.monotonic() - self.shown >= 0.1:
            self._show()

    def __exit__(self, *exc):
        self.done += 1
        click.echo("\r\033[K", nl=False, err=True)

    def _show(self):
        self.shown = time.monotonic()
        elapsed = self.shown - self.started
        total = f"/{self.length:,}" if self.length else ""
        rate = f"  {self.count / elapsed:,.0f} rows/s  {elapsed:.0f} s" if elapsed > 0.5 else ""
        memory = f"  {self.memory.current / 2**20:,.0f} MB" if self.memory else ""
        line = f"[{self.done} done] {self.label}  {self.count:,}{total} rows{rate}{memory}"
        columns = shutil.get_terminal_size().columns
        click.echo(f"\r\033[K{line[: columns - 1]}", nl=False, err=True)


def echo_compile(path, outcomes, as_json, nothing_written, cost):
    """Print what a compile did: a table of its outcomes and whether it wrote `path`, with what
    it cost (`cost`: seconds, peak memory in bytes), or JSON; then on standard error one line
    per reason something failed. "wrote" only when something new was written;
    `nothing_written` ends the line that says otherwise. Returns the exit status: 1 when
    anything failed."""
    written = any(outcome.status == "written" for outcome in outcomes)
    spent, peak = cost
    if as_json:
        report = {"path": str(path), "written": written, "seconds": seconds(spent)}
        echo_json({**report, "peak_memory_bytes": peak, "outcomes": _outcomes(outcomes)})
    else:
        rows = [
            [o.name, count(o.rows), count(o.stored_bytes), f"{o.seconds:.1f}", _status(o)]
            for o in outcomes
        ]
        echo_table(["split", "rows", "bytes", "seconds", "status"], rows)
        done = f"wrote {path}" if written else f"nothing was written{nothing_written}"
        click.echo(f"{done} in {spent:.1f} s, at most {peak / 2**20:,.0f} MB of memory")
    failures: dict[
        tuple[str, bool], list[str]
    ] = {}  # one line per reason: a repository out of reach fails all its splits alike
    for outcome in outcomes:
        if outcome.error:
            failures.setdefault((outcome.error, outcome.status == "kept"), []).append(outcome.name)
    for (error, was_kept), names in failures.items():
        kept = " (kept the previous copy)" if was_kept else ""
        click.echo(f"{colour('failed', err=True)}: {', '.join(names)}{kept}: {error}", err=True)
    return 1 if failures else 0


def _status(outcome):
    """An outcome's status in a table: a split whose source failed is a failure, also where
    its previous copy was kept."""
    if outcome.status == "failed":
        return colour("failed")
    if outcome.error:
        return colour("failed (kept previous)")
    return outcome.status


def _outcomes(outcomes):
    return [
        {
            **o.about,
            "rows": o.rows,
            "stored_bytes": o.stored_bytes,
            "seconds": seconds(o.seconds),
            "status": o.status,
            "error": o.error,
        }
        for o in outcomes
    ]


def unchanged(path, existed):
    """How "nothing was written" ends: what is at `path`, as it was before."""
    if existed:
        return f"; {path} is as it was"
    return f" (there was no {path} before, and there is none now)"
