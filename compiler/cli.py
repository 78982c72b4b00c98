"""The `nanotasks` command: a thin layer over compiler.build and store.reader."""

import json
import sys

import click

from store import default_path
from store.reader import Store, StoreError

db_option = click.option(
    "--db", type=click.Path(dir_okay=False), envvar="NANOTASKS_DB", default=lambda: str(default_path()),
    show_default="$NANOTASKS_DB, else ~/.cache/nanotasks/nanotasks.db",
    help="The compiled file.")
# Tool calls shown as GSM8K writes them: <<expression=result>>
PART_FORMATS = {"text": "{}", "python": "<<{}", "python_output": "={}>>"}
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
@click.option("--jobs", type=click.IntRange(min=1), metavar="N",
              help="Compress with N processes  [default: all cores]. The file is the same whatever N.")
def compile(db, only, mirror, revision, custom, jobs):
    """Download every source, normalise it, and write the compiled file.

    The file at --db is replaced only once the new one is complete. A source that fails is
    named with its reason and the exit status is 1; everything else is still written, so
    a rerun with --only fills in the rest.
    """
    try:
        from compiler.build import TASK_MODULES, compile_file
    except ImportError as error:
        raise click.ClickException(f"compiling needs the compile extra ({error.name} is missing): "
                                   f"pip install 'nanotasks[compile]'") from None
    unknown = sorted(set(only) - set(TASK_MODULES))
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; choose from {', '.join(TASK_MODULES)}",
                                 param_hint="--only")
    revisions = dict(_pair(value, "--revision", "REPO=SHA") for value in revision)
    customs = dict(_pair(value, "--custom", "NAME=FILE.jsonl") for value in custom)

    def progress(length, label):
        return click.progressbar(length=length, label=label.ljust(36), file=sys.stderr)

    try:
        outcomes = compile_file(db, only, mirror, revisions, customs, progress, jobs)
    except (StoreError, ValueError, OSError) as error:
        raise click.ClickException(f"nothing was written: {error}") from None
    rows = [[o.name, _count(o.rows), _count(o.stored_bytes), f"{o.seconds:.1f}", o.status]
            for o in outcomes]
    click.echo(_table(["split", "rows", "bytes", "seconds", "status"], rows))
    click.echo(f"wrote {db}")
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
        click.echo(json.dumps({"path": str(db), "splits": splits, "files": files}, indent=2))
        return
    rows = [[s["task"], s["subset"], s["split"], _count(s["rows"]), _count(s["stored_bytes"]),
             s["repo"], (s["revision"] or "mirror")[:12], s["sha256"][:12]] for s in splits]
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
    subsets = sorted({s["subset"] for s in store.splits() if s["task"] == task and s["split"] == split})
    if subset is None:
        if len(subsets) != 1:
            raise click.UsageError(f"{task} {split} is stored for subsets {', '.join(subsets) or 'none'}: "
                                   f"pick one with --subset")
        subset = subsets[0]
    try:
        split_rows = store.split(task, subset, split)
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
            click.echo("".join(PART_FORMATS[part["type"]].format(part["text"]) for part in content))
        click.echo()
    extras = {k: v for k, v in conversation.items() if k != "messages"}
    if extras:
        click.echo(json.dumps(extras, ensure_ascii=False))


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
