"""The `nanotasks` command: a thin layer over the library API in nanotasks/__init__.py."""

import io
import logging
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from typing import Any

import click

import nanotasks
from nanotasks.output import (
    colour,
    echo_checks,
    echo_compile,
    echo_conversation,
    echo_exported,
    echo_info,
    echo_overlap,
    echo_rows,
    progress,
    unchanged,
)
from nanotasks.store import default_path, interrupt
from nanotasks.store.export import FORMATS
from nanotasks.store.reader import StoreError
from nanotasks.store.sqlfunctions import TIMEOUT, QueryFailed, WriteRefused, running
from nanotasks.tasks import NAMES, UnknownName, example

db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False),
    envvar="NANOTASKS_DB",
    default=lambda: str(default_path()),
    show_default="$NANOTASKS_DB, else $XDG_CACHE_HOME/nanotasks/nanotasks.db, ~/.cache by default",
    help="The compiled file.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


class Group(click.Group):
    """click's group, with "Error:" in colour, a problem with the file (StoreError) one line
    of error, and a closed pipe (`nanotasks show ... | head`) taken as the reader having had
    enough rather than as a failure."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            os.dup2(
                os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno()
            )  # nothing left to flush to
            sys.exit(0)
        except StoreError as error:  # the file missing, damaged or not ours: its message says
            raise click.ClickException(str(error)) from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            # an Exit's code, e.g. --help's
            status = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as error:
            shown = io.StringIO()
            error.show(file=shown)
            click.echo(
                re.sub("^Error:", colour("Error:", err=True), shown.getvalue(), flags=re.M),
                nl=False,
                err=True,
            )
            sys.exit(error.exit_code)
        except click.Abort as abort:
            if isinstance(abort.__cause__, KeyboardInterrupt):
                raise abort.__cause__ from None  # Ctrl-C: main reports it
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(status or 0)


@click.group(
    cls=Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="nanotasks")
@click.pass_context
def cli(ctx):
    """Compile chat-model datasets into one SQLite file, then read them offline."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


SIGNALS = (signal.SIGINT, signal.SIGTERM)  # stop the command: 128 + the number, after cleaning up
# Those of SIGNALS main handles: not one the process was started ignoring.
_taken: list[signal.Signals] = []
_raising = [True]  # whether the handler raises Interrupted, or only records the signal


def main():
    """The `nanotasks` command: the commands' own errors are theirs to word; what reaches here
    (a damaged file met part way, standard output on a full disk) is still one line, never a
    traceback. Standard output is flushed here, so a failed write is reported with the exit
    status rather than ignored at exit.

    From its first line, SIGINT and SIGTERM raise Interrupted: the command cleans up and exits
    with 128 + the signal's number (130, 143), saying so in one line. Once the command is over
    they are only recorded, and once its outcome is printed they end the process by their
    default action, which a shell reports as the same status."""
    _raising[0] = True
    _taken.clear()
    for signum in SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # a background job ignores SIGINT
            signal.signal(signum, _on_signal)
            _taken.append(signum)
    try:
        try:
            code = _run()
        finally:
            _raising[0] = False
    except KeyboardInterrupt:  # in the moment between the command's end and the line above
        code = None
    stopped = interrupt.received()
    if code is None or (stopped is not None and code != 128 + stopped):
        stopped = stopped or signal.SIGINT
        click.echo("\ninterrupted", err=True)
        code = 128 + stopped
    code = _flushed(code)
    if stopped is not None:
        # The command has cleaned up: a download still under way in another thread is
        # abandoned, not waited for at exit.
        sys.stderr.flush()
        os._exit(code)
    for signum in _taken:
        signal.signal(signum, signal.SIG_DFL)
    late = interrupt.received()
    sys.exit(code if late is None else 128 + late)


def _flushed(code):
    """Flush standard output: the exit status, 1 if that failed (and said so). A closed pipe
    is the reader having had enough, as in Group.invoke: not a failure."""
    try:
        sys.stdout.flush()
    except OSError as error:
        if code in (0, None) and not isinstance(error, BrokenPipeError):
            # else the reader is gone, or the write failed before and was reported
            click.echo(f"Error: cannot write standard output: {error.strerror}", err=True)
            code = 1
        os.dup2(
            os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno()
        )  # nothing more to flush at exit
    return code


def _on_signal(signum, frame):
    interrupt.record(signum)
    if _raising[0]:
        raise interrupt.Interrupted(signum)


def _run():
    """Run the command: its exit status, or None when it was interrupted without saying so."""
    try:
        cli(prog_name="nanotasks")
    except SystemExit as exit:
        return exit.code or 0
    except (StoreError, OSError, MemoryError) as error:
        if interrupt.received() is not None:
            return None
        click.echo(f"Error: {_error_line(error)}", err=True)
        return 1
    except BaseException as error:
        if interrupt.received() is None and not isinstance(error, KeyboardInterrupt):
            raise  # a bug: its traceback is what to report
        return None
    return 0


def _error_line(error):
    if isinstance(error, MemoryError):
        return "out of memory"
    if isinstance(error, OSError):
        where = error.filename or "standard output"  # the one file the commands write unnamed
        return f"cannot write {where}: {error.strerror or error}"
    return str(error)


@cli.command(short_help="Download every source and write the compiled file.")
@db_option
@click.option(
    "--only",
    multiple=True,
    metavar="NAME",
    help=f"Compile only this benchmark ({', '.join(NAMES[:-2])}; customjson for just the "
    f"--custom files, chat for just the --chat datasets); repeatable. Other splits "
    f"already in the file are kept.",
)
@click.option(
    "--mirror",
    type=click.Path(exists=True, file_okay=False),
    help="Read sources from this directory, laid out like the hub (DIR/<org>/<repo>/...), "
    "instead of the network.",
)
@click.option(
    "--revision",
    "revisions",
    multiple=True,
    metavar="REPO=SHA",
    callback=lambda ctx, param, values: _pairs(values, "--revision", "REPO=SHA"),
    help="Pin a hub repository to a commit or branch; repeatable.",
)
@click.option(
    "--custom",
    "customs",
    multiple=True,
    metavar="NAME=FILE.jsonl",
    callback=lambda ctx, param, values: _pairs(
        values,
        "--custom",
        "NAME=FILE.jsonl",
        lambda name: f"the name {name!r} is given twice: each custom file needs its own name",
    ),
    help="Store a JSONL file of conversations, read back with CustomJSON(name=NAME); repeatable.",
)
@click.option(
    "--chat",
    "chats",
    multiple=True,
    metavar="NAME=org/repo[:config]",
    callback=lambda ctx, param, values: _pairs(
        values,
        "--chat",
        "NAME=org/repo[:config]",
        lambda name: "each NAME once: it is the subset its dataset is stored under",
    ),
    help="Store every split of a chat dataset on the hub (or in --mirror), OpenAI or ShareGPT "
    "style, read back with Chat(name=NAME, split=...); repeatable.",
)
@click.option(
    "--chat-shuffle",
    is_flag=True,
    help="Store the --chat datasets in the seed-42 order of Dataset.shuffle rather than in "
    "source order.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Compress with N processes  [default: all cores]. The file is the same whatever N.",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(min=0),
    default=300,
    show_default=True,
    metavar="SECONDS",
    help="Wait at most this long in all for the hub when it rate-limits (429), fails (5xx) or "
    "drops connections, retrying with backoff; 0 retries nothing.",
)
@json_option
def compile(db, only, mirror, revisions, customs, chats, chat_shuffle, jobs, max_wait, as_json):
    """Download every source, normalise it, and write the compiled file.

    The file at --db is replaced only once the new one is complete. A source that cannot
    be fetched is named with its reason and the exit status is 1; everything else is still
    written, so a rerun with --only fills in the rest. A bad row in a source (a missing
    field, a wrong type, an answer out of range) stops the compile, names the row, and
    leaves the file at --db as it was.
    """
    from nanotasks.compiler.memory import PeakMemory

    _say_hub_notices()
    before = _file_id(db)
    started = time.monotonic()
    try:
        with PeakMemory() as memory:
            outcomes = _compiled(
                db,
                only,
                mirror,
                revisions,
                customs,
                jobs,
                progress(not as_json, memory),
                chats,
                chat_shuffle,
                max_wait,
            )
        interrupt.check()  # a signal whose exception was swallowed on the way
        cost = (time.monotonic() - started, memory.peak)
        status = echo_compile(db, outcomes, as_json, unchanged(db, before is not None), cost)
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt) or interrupt.received() is not None:
            _say_interrupted(db, before)
        raise
    sys.exit(status)


def _compiled(db, *args):
    """nanotasks.compile's outcomes; its errors as the command reports them."""
    try:
        return nanotasks.compile(db, *args)
    except ImportError as error:  # the compile extra is missing: it says so
        raise click.ClickException(str(error)) from None
    except (StoreError, ValueError, OSError) as error:
        from nanotasks.compiler.build import BadRequest  # there, since compile got this far

        if isinstance(error, (UnknownName, BadRequest)):
            raise click.UsageError(str(error)) from None
        raise click.ClickException(f"nothing was written: {error}") from None
    except sqlite3.Error as error:  # e.g. the disk filled up
        raise click.ClickException(
            f"nothing was written: writing the new file beside {db} failed: {error}"
        ) from None


def _pairs(values, option, form, twice=None):
    """NAME=VALUE options as a dict; `twice(name)` is the complaint about a name given twice."""
    pairs = [_pair(value, option, form) for value in values]
    names = [name for name, _ in pairs]
    repeated = [name for name in names if names.count(name) > 1]
    if twice and repeated:
        raise click.BadParameter(twice(repeated[0]), param_hint=option)
    return dict(pairs)


def _file_id(path):
    """What tells whether `path` was replaced: a rename puts another file (inode) there."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _say_interrupted(db, before):
    """An interrupted compile's one line, from what is at `db` now, and its exit status."""
    if _file_id(db) != before:
        click.echo(f"\ninterrupted after writing {db}", err=True)
    else:
        click.echo(
            f"\ninterrupted: nothing was written{unchanged(db, before is not None)}", err=True
        )
    sys.exit(128 + (interrupt.received() or signal.SIGINT))


class _EchoHandler(logging.Handler):
    """The notices on standard error; none once interrupted, so that saying so is the last line
    (a download still under way in another thread may fail and say so meanwhile)."""

    def emit(self, record):
        if interrupt.received() is None:
            click.echo(record.getMessage(), err=True)


def _say_hub_notices():
    """The compile's own notices (waiting for the hub, reading from the cache) on stderr, and
    huggingface_hub's warnings quiet: they would repeat them in its own words. (Its progress
    bars are off: compiler/fetch.py passes it a silent one.)"""
    logger = logging.getLogger("nanotasks")
    if not logger.handlers:
        logger.addHandler(_EchoHandler())
        logger.propagate = False
    try:
        from huggingface_hub.utils import logging as hf_logging
    except ImportError:
        return  # the compile extra is missing: compile says so
    hf_logging.set_verbosity_error()


@cli.command(short_help="List the splits and files in the compiled file.")
@db_option
@json_option
def info(db, as_json):
    """List the splits and files in the compiled file, with their provenance."""
    echo_info(nanotasks.info(db), as_json)


@cli.command(
    context_settings={"ignore_unknown_options": True},  # so that INDEX may be -1
    short_help="Print one example's conversation.",
    help=f"""Print one conversation: example INDEX of TASK's SPLIT, from the end when negative.

    TASK is one of {", ".join(NAMES)}; SPLIT and --subset are those its Task takes. For
    customjson and chat, --subset is the NAME given to --custom or --chat.""",
)
@db_option
@click.argument("task")
@click.argument("split")
@click.argument("index", type=int)
@click.option(
    "--subset",
    help="Needed when the task has several (ARC-Easy, main, ...); for spellingbee, "
    "SpellingBee (the default) or SimpleSpelling.",
)
@json_option
def show(db, task, split, index, subset, as_json):
    try:
        conversation = example(nanotasks.open(db), task, split, index, subset)
    except (UnknownName, ValueError) as error:
        raise click.UsageError(str(error)) from None
    except IndexError as error:
        raise click.ClickException(str(error)) from None
    echo_conversation(conversation, as_json)


@cli.command(short_help="Check that the compiled file is whole.")
@db_option
@click.option(
    "--quick",
    is_flag=True,
    help="Check only what is cheap: the header, the splits table, the layout of the rows, "
    "and each split's first and last row.",
)
@json_option
def verify(db, quick, as_json):
    """Check that the compiled file is whole, e.g. after copying it.

    Runs SQLite's integrity check, then reads every row of every split: each must
    decompress, and each split's rows must match the count and sha256 recorded when it
    was compiled. Prints one line per split and a verdict; the exit status is 0 only
    when everything holds.
    """
    checks = nanotasks.verify(db, quick=quick, progress=progress(not as_json))
    echo_checks(db, quick, checks, as_json)
    sys.exit(0 if all(check.ok for check in checks) else 1)


@cli.command(short_help="Run a read-only SQL query on the compiled file.")
@db_option
@click.argument("query")
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON array of objects instead of a table."
)
@click.option(
    "--csv", "as_csv", is_flag=True, help="Print CSV with a header row instead of a table."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="Stop the query after this long.",
)
def sql(db, query, as_json, as_csv, timeout):
    """Run a read-only SQL QUERY on the compiled file and print its rows.

    Besides SQLite's own functions, conversation(id) gives an example's conversation as JSON
    text and conversation_text(id) its messages' texts, where id is the `id` column of the
    `examples` view. A query that would change anything is refused. Rows are printed as they
    come (a table's column widths are those of its first 1,000 rows); a query stops at
    --timeout, at Ctrl-C, when its sorting and temporary tables need more than 1 GiB, or when
    it would make one value larger than 64 MiB.

    \b
    nanotasks sql "SELECT task, split, count(*) FROM examples GROUP BY 1, 2"
    nanotasks sql --json "SELECT conversation(id) FROM examples WHERE task = 'gsm8k' LIMIT 1"
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv: choose one")
    try:
        with running(db, query, timeout) as (columns, cursor):
            echo_rows(columns, iter(cursor.fetchone, None), as_json, as_csv)
    except WriteRefused as refused:
        raise click.ClickException(
            f"refused: this query would write ({refused}); `nanotasks sql` "
            f"only reads. The file changes only through `nanotasks compile`; to "
            f"experiment, query a copy with the sqlite3 shell."
        ) from None
    except QueryFailed as error:
        raise click.ClickException(str(error)) from None
    except sqlite3.Error as error:
        raise click.ClickException(f"SQL error: {error}") from None
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(128 + (interrupt.received() or signal.SIGINT))


@cli.command(short_help="Write a split's conversations as JSONL or parquet.")
@db_option
@click.argument("task")
@click.argument("split")
@click.option("--subset", help="Needed when the task has several (ARC-Easy, main, ...).")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(FORMATS),
    default="jsonl",
    show_default=True,
    help="jsonl: one conversation (JSON object) per line. parquet: "
    "columns position and conversation (JSON text); needs pyarrow.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="Where to write; jsonl goes to standard output unless told. A file is replaced "
    "only once the whole export is written.",
)
def export(db, task, split, subset, file_format, output):
    """Write every conversation of TASK's SPLIT, in the order the Task serves them."""
    store = nanotasks.open(db)
    if output == "-" and file_format != "jsonl":
        raise click.UsageError("parquet is not written to standard output: give a file with -o")
    try:
        written = nanotasks.export(
            store, task, split, sys.stdout if output == "-" else output, subset, file_format
        )
    except ImportError:
        raise click.ClickException(
            "writing parquet needs pyarrow: pip install pyarrow (or "
            "'nanotasks[compile]'), or use --format jsonl"
        ) from None
    except UnknownName as error:
        raise click.UsageError(str(error)) from None
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        where = "standard output" if output == "-" else output
        raise click.ClickException(f"cannot write {where}: {error.strerror or error}") from None
    if output != "-":
        echo_exported(written, output)


@cli.command(short_help="Count evaluation examples also found in training splits.")
@db_option
@json_option
def overlap(db, as_json):
    """How many evaluation examples (validation, dev, test) are also in training splits.

    exact: the same normalised prompt; 13-gram: a shared run of 13 words. The pairs are in
    the `overlaps` table, for SQL.
    """
    echo_overlap(db, nanotasks.overlap(db), as_json)


@cli.command(short_help="Look at the compiled file in a web browser.")
@db_option
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8001,
    show_default=True,
    help="Port on 127.0.0.1; 0 picks a free one.",
)
def browse(db, port):
    """Look at the compiled file in a web browser: Datasette on 127.0.0.1, read-only, with
    pages for every split, each example as a transcript, and contamination as a heatmap.
    Prints the start page's address; Ctrl-C stops it. Needs no network."""
    nanotasks.open(db)  # the file checked, before anything is served
    try:
        from nanotasks.browse import serve
    except ImportError as error:
        raise click.ClickException(
            f"browse needs Datasette ({error.name} is missing): pip install 'nanotasks[datasette]'"
        ) from None
    try:
        serve(db, port, click.echo)
    except KeyboardInterrupt:  # Ctrl-C, the way to stop it: the server has shut down
        sys.exit(128 + (interrupt.received() or signal.SIGINT))
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on 127.0.0.1:{port} ({error.strerror}): "
            f"choose another port with --port N, or --port 0 for a free one"
        ) from None


def _pair(value, option, form):
    key, sep, rest = value.partition("=")
    if not sep or not key or not rest:
        raise click.BadParameter(f"{value!r} is not of the form {form}", param_hint=option)
    return key, rest


@cli.command(
    "switch-nanochat", short_help="Make a nanochat checkout load its tasks from nanotasks."
)
@click.argument("checkout", type=click.Path(exists=True, file_okay=False))
def switch_nanochat(checkout):
    """Make the nanochat checkout at CHECKOUT load its tasks from nanotasks.

    nanochat's scripts import `tasks.arc`, `tasks.common`, ... from the checkout's own tasks/
    package, which downloads from the hub. This rewrites each of those modules as a three-line
    stand-in for nanotasks' module of the same name, so `python -m scripts.chat_sft` and the
    other scripts run unchanged and read the compiled file ($NANOTASKS_DB) offline. And
    scripts/base_eval.py gets four lines after its imports that have it fetch the CORE eval
    bundle from the file rather than download it. Nothing else is touched; running it again
    changes nothing. Undo with `git checkout tasks/ scripts/base_eval.py`.
    """
    from nanotasks.compiler.nanochat import BASE_EVAL, NotNanochat, switch

    try:
        switched, already, others, base_eval = switch(checkout)
    except NotNanochat as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(f"cannot rewrite {error.filename}: {error.strerror}") from None
    for path in switched:
        click.echo(f"switched  {path} -> nanotasks.tasks.{path.stem}")
    for path in already:
        click.echo(f"already   {path} -> nanotasks.tasks.{path.stem}")
    for path in others:
        click.echo(f"untouched {path} (nanotasks has no module of that name)")
    if base_eval:
        what = {
            "untouched": "it imports no download_file_with_lock to take the place of",
            "switched": "its CORE eval bundle comes from nanotasks.tasks.core",
            "already": "its CORE eval bundle comes from nanotasks.tasks.core",
        }[base_eval]
        click.echo(f"{base_eval:<10}{BASE_EVAL} ({what})")
    undo = "tasks/" + (f" {BASE_EVAL}" if base_eval in ("switched", "already") else "")
    source = (
        "$NANOTASKS_DB"
        if os.environ.get("NANOTASKS_DB")
        else "set NANOTASKS_DB to read another file"
    )
    click.echo(
        f"{checkout} now reads its tasks from {default_path()} ({source}). "
        f"Undo: cd {checkout} && git checkout {undo}"
    )
