"""The `nanotasks` command: a thin layer over compiler.build and store.reader."""

import importlib
import json
import signal
import sqlite3
import sys

import click

from store import default_path
from store.reader import Store, StoreError
from tasks import BENCHMARKS, aliases

db_option = click.option(
    "--db", type=click.Path(dir_okay=False), envvar="NANOTASKS_DB", default=lambda: str(default_path()),
    show_default="$NANOTASKS_DB, else $XDG_CACHE_HOME/nanotasks/nanotasks.db, ~/.cache by default",
    help="The compiled file.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group()
@click.version_option(package_name="nanotasks")
def cli():
    """Compile chat-model datasets into one SQLite file, then read them offline."""


def open_store(db):
    try:
        return Store(db)
    except StoreError as error:
        raise click.ClickException(str(error)) from None


@cli.command()
@db_option
@click.option("--only", multiple=True, metavar="NAME",
              help="Compile only this benchmark (a module of tasks/: arc, mmlu, gsm8k, humaneval, "
                   "smoltalk, spellingbee); repeatable. Other splits already in the file are kept.")
@click.option("--mirror", type=click.Path(exists=True, file_okay=False),
              help="Read sources from this directory, laid out like the hub (DIR/<org>/<repo>/...), "
                   "instead of the network.")
@click.option("--revision", multiple=True, metavar="REPO=SHA",
              help="Pin a hub repository to a commit or branch; repeatable.")
@click.option("--custom", multiple=True, metavar="NAME=FILE.jsonl",
              help="Store a JSONL file of conversations, read back with CustomJSON(name=NAME); repeatable.")
def compile(db, only, mirror, revision, custom):
    """Download every source, normalise it, and write the compiled file.

    The file at --db is replaced only once the new one is complete. A source that cannot
    be fetched is named with its reason and the exit status is 1; everything else is still
    written, so a rerun with --only fills in the rest. A bad row in a source (a missing
    field, a wrong type, an answer out of range) stops the compile, names the row, and
    leaves the file at --db as it was.
    """
    try:
        from compiler.build import compile_file
    except ImportError as error:
        raise click.ClickException(f"compiling needs the compile extra ({error.name} is missing): "
                                   f"pip install 'nanotasks[compile]'") from None
    unknown = sorted(set(only) - set(BENCHMARKS))
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}",
                                 param_hint="--only")
    revisions = dict(_pair(value, "--revision", "REPO=SHA") for value in revision)
    if revisions and mirror:
        raise click.UsageError("--revision pins commits on the hub; a --mirror has no commits to pick from")
    repos = {s.repo for name in (only or BENCHMARKS) for s in importlib.import_module(f"tasks.{name}").SOURCES}
    if set(revisions) - repos:
        raise click.BadParameter(f"no source compiled here comes from {', '.join(sorted(set(revisions) - repos))}; "
                                 f"they come from {', '.join(sorted(repos))}", param_hint="--revision")
    customs = dict(_pair(value, "--custom", "NAME=FILE.jsonl") for value in custom)

    def progress(length, label):
        return click.progressbar(length=length, label=label.ljust(36), file=sys.stderr)

    signal.signal(signal.SIGTERM, _interrupt)  # a batch system's kill cleans up like Ctrl-C
    try:
        outcomes = compile_file(db, only, mirror, revisions, customs, progress)
    except (StoreError, ValueError, OSError) as error:
        raise click.ClickException(f"nothing was written: {error}") from None
    except sqlite3.Error as error:  # e.g. the disk filled up
        raise click.ClickException(f"nothing was written: writing the new file beside {db} "
                                   f"failed: {error}") from None
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: nothing was written, {db} is as it was", err=True)
        sys.exit(130)
    rows = [[o.name, _count(o.rows), _count(o.stored_bytes), f"{o.seconds:.1f}", o.status]
            for o in outcomes]
    click.echo(_table(["split", "rows", "bytes", "seconds", "status"], rows))
    written = any(outcome.status != "failed" for outcome in outcomes)
    click.echo(f"wrote {db}" if written else f"nothing was written; {db} is as it was")
    failures = [o for o in outcomes if o.error]
    for outcome in failures:
        kept = " (kept the previous copy)" if outcome.status == "kept" else ""
        click.echo(f"failed: {outcome.name}{kept}: {outcome.error}", err=True)
    if failures:
        sys.exit(1)


@cli.command()
@db_option
@json_option
def info(db, as_json):
    """List the splits and files in the compiled file, with their provenance."""
    store = open_store(db)
    splits, files = store.splits(), store.files()
    if as_json:
        splits = [{k: v for k, v in s.items() if k != "dictionary"} for s in splits]  # bytes: not JSON
        click.echo(json.dumps({"path": str(db), "splits": splits, "files": files}, indent=2))
        return
    rows = [[s["task"], s["subset"], s["split"], _count(s["rows"]), _count(s["stored_bytes"]),
             s["repo"], (s["revision"] or "mirror")[:12], s["sha256"][:12]] for s in splits]
    stored = {(s["task"], s["subset"], s["split"]): s for s in splits}
    rows += [[task, subset, split, _count(stored[task, *target]["rows"]), "", f"same rows as {'/'.join(target)}", "", ""]
             for (task, subset, split), target in aliases().items() if (task, *target) in stored]
    rows += [["file", f["name"], "", "", _count(f["stored_bytes"]), f["repo"],
              (f["revision"] or "mirror")[:12], f["sha256"][:12]] for f in files]
    click.echo(_table(["task", "subset", "split", "rows", "bytes", "source", "revision", "sha256"], rows))


@cli.command()
@db_option
@click.argument("task")
@click.argument("split")
@click.argument("index", type=int)
@click.option("--subset", help="Needed when the task has several (ARC-Easy, main, ...).")
@json_option
def show(db, task, split, index, subset, as_json):
    """Print one conversation: example INDEX of TASK's SPLIT."""
    store = open_store(db)
    keys = [(s["task"], s["subset"], s["split"]) for s in store.splits()] + list(aliases())
    subsets = sorted({key_subset for key_task, key_subset, key_split in keys
                      if (key_task, key_split) == (task, split)})
    if not subsets:
        raise click.ClickException(f"{db} has no {task} {split}: `nanotasks info --db {db}` lists what it has")
    if subset is None:
        if len(subsets) != 1:
            raise click.UsageError(f"{task} {split} is stored for subsets {', '.join(subsets) or 'none'}: "
                                   f"pick one with --subset")
        subset = subsets[0]
    try:
        split_rows = store.split(task, *aliases().get((task, subset, split), (subset, split)))
        conversation = store.read(split_rows, index)
    except (StoreError, IndexError) as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(conversation, ensure_ascii=False, indent=2))
        return
    for message in conversation["messages"]:
        click.secho(f"[{message['role']}]", bold=True)
        content = message["content"]
        if isinstance(content, str):
            click.echo(content)
        else:
            click.echo("".join(_render_part(part) for part in content))
        click.echo()
    extras = {k: v for k, v in conversation.items() if k != "messages"}
    if extras:
        click.echo(json.dumps(extras, ensure_ascii=False))


@cli.command()
@db_option
@click.option("--quick", is_flag=True,
              help="Check only what is cheap: the header, the splits table, the layout of the rows, "
                   "and each split's first and last row.")
@json_option
def verify(db, quick, as_json):
    """Check that the compiled file is whole, e.g. after copying it.

    Runs SQLite's integrity check, then reads every row of every split: each must
    decompress, and each split's rows must match the count and sha256 recorded when it
    was compiled. Prints one line per split and a verdict; the exit status is 0 only
    when everything holds.
    """
    from store.verify import verify as verify_file

    def progress(length, label):
        return click.progressbar(length=length, label=label, file=sys.stderr)

    checks = verify_file(db, quick=quick, progress=progress)
    whole = all(check.ok for check in checks)
    if as_json:
        click.echo(json.dumps({"path": str(db), "quick": quick, "ok": whole,
                               "checks": [check.as_dict() for check in checks]}, indent=2))
    else:
        click.echo(_table(["check", "status", "detail"],
                          [[c.name, "ok" if c.ok else "FAILED", c.detail] for c in checks]))
        failed = sum(not check.ok for check in checks)
        if whole:
            click.echo(f"{db}: whole ({'quick' if quick else 'full'} check)")
        else:
            click.echo(f"{db}: DAMAGED ({failed} of {len(checks)} checks failed). Copy it again "
                       f"from a good copy, or recompile it.")
    sys.exit(0 if whole else 1)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _render_part(part):
    """Tool calls as GSM8K writes them: <<expression=result>>, or <<expression>> without a result."""
    if part["type"] == "python":
        return f"<<{part['text']}"
    if part["type"] == "python_output":
        return f"={part['text']}>>" if part["text"] else ">>"
    return part["text"]


def _pair(value, option, form):
    key, sep, rest = value.partition("=")
    if not sep or not key or not rest:
        raise click.BadParameter(f"{value!r} is not of the form {form}", param_hint=option)
    return key, rest


def _count(n):
    return "" if n is None else f"{n:,}"


def _table(headers, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
