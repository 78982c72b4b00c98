"""The compile: fetch every source, normalise its rows in reference order, write one file.

Splits are written in sorted (task, subset, split) order. A split that is not asked for
this time, or whose source fails, is copied from the previous file as it was, so
`--only gsm8k` replaces GSM8K and keeps the rest, and the same contents always give the
same bytes. A `--chat NAME` compiled afresh replaces every split of NAME, so nothing of an
earlier dataset under that name is left behind. A bad row in any source stops the whole
compile, leaving the previous file as it was.
"""

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nanotasks.compiler.fetch import MAX_WAIT, Fetcher, SourceError
from nanotasks.compiler.overlap import find_overlaps
from nanotasks.store import Provenance
from nanotasks.store.reader import FileDamaged, FormatVersionError, Store
from nanotasks.store.writer import SplitSummary, Writer, chunked
from nanotasks.tasks import NAMES, benchmark, customjson
from nanotasks.tasks import chat as chats
from nanotasks.tasks.common import Source, UnknownLayout

BATCH = 1024  # rows normalised at a time, by one worker process


class BadRequest(ValueError):
    """A compile asked for what cannot be: a revision for a repository it does not compile, or
    with a mirror. (An unknown benchmark is tasks.UnknownName, also a ValueError.)"""


class BadRow(ValueError):
    """A source row that is not what its benchmark should be. It stops the whole compile:
    the source is not what nanotasks was written for, so none of it can be trusted."""


@dataclass
class Outcome:
    """What happened to one split or file: written, kept from the previous file, or failed."""

    name: str  # "task subset/split", or a file's name
    rows: int | None
    stored_bytes: int | None
    seconds: float
    status: str  # "written", "kept", "failed"
    error: str | None = None


def import_pandas():
    """Import pandas, if installed (datasets needs it), in the compiling process. pyarrow imports
    it at its first conversion, from C code that swallows an exception raised inside: a Ctrl-C
    then is lost, and pandas left half imported. Imported here, a Ctrl-C during the import is
    an ordinary one. (The worker processes never need pandas, and never import it.)"""
    try:
        import pandas  # noqa: F401
    except ImportError:
        pass


def reference_order(n):
    """Position i holds source row order[i]: what `datasets.Dataset.shuffle(seed=42)` does."""
    return np.random.default_rng(42).permutation(n)


def compile_file(
    db,
    only=(),
    mirror=None,
    revisions=None,
    custom=None,
    progress=None,
    jobs=None,
    chat=None,
    chat_shuffle=False,
    max_wait=MAX_WAIT,
):
    """Compile the sources of the benchmarks named in `only` (all when empty), the `custom`
    JSONL files ({name: path}) and every split of the `chat` datasets ({name: "org/repo[:config]"},
    in source order unless `chat_shuffle`) into `db`, from the hub (`revisions`: {repo: commit
    or branch}) or a `mirror` directory, compressing with `jobs` processes (all cores when None).
    Requests to the hub that fail transiently are retried, waiting `max_wait` seconds at most
    in all.

    Returns one Outcome per split and file: a source that cannot be fetched is reported there,
    and everything else is still written. An unknown name or a revision that pins nothing
    (UnknownName, BadRequest), a bad row in a source (BadRow), a chat dataset of another
    layout (UnknownLayout) or a bad line in a custom file (all ValueErrors) stop the compile
    before anything is written, leaving `db` as it was."""
    benchmarks = check_request(only, mirror, revisions or {}, chat or {})
    for name in custom or {}:
        customjson.check_name(name)
    custom = {name: (path, customjson.examples(path)) for name, path in (custom or {}).items()}
    previous = _previous(db, only)
    fetcher = Fetcher(mirror, revisions, max_wait=max_wait)
    with fetcher:
        chat_sources, chat_failures = _chat_sources(fetcher, chat or {}, chat_shuffle)

    def write_source(benchmark, source):
        return lambda writer, name: _write_source(
            writer, fetcher, benchmark, source, progress, name
        )

    def write_custom(subset, path, examples):
        return lambda writer, name: writer.write_split(
            "customjson",
            subset,
            customjson.SPLIT,
            Provenance(repo=str(Path(path).resolve())),
            _with_progress(chunked(examples), name, progress, len(examples)),
            list,
        )

    def write_file(file):
        def write(writer, name):
            content, revision = fetcher.file(file.url, file.mirror_path)
            return writer.write_file(name, content, Provenance(repo=file.repo, revision=revision))

        return write

    splits = {
        (s.task, s.subset, s.split): write_source(b, s) for b in benchmarks for s in b.sources
    }
    splits.update(
        {
            ("customjson", name, customjson.SPLIT): write_custom(name, *c)
            for name, c in custom.items()
        }
    )
    splits.update(
        {(s.task, s.subset, s.split): write_source(chats.BENCHMARK, s) for s in chat_sources}
    )
    files = {f.name: write_file(f) for b in benchmarks for f in b.files}
    kept_splits = (
        {(s["task"], s["subset"], s["split"]) for s in previous.splits()} if previous else set()
    )
    kept_files = {f["name"] for f in previous.files()} if previous else set()
    listed = set(chat or {}) - set(chat_failures)
    kept_splits -= {
        key for key in kept_splits if key[0] == "chat" and key[1] in listed and key not in splits
    }
    outcomes = []
    outcomes += _add_archives(fetcher, benchmarks, splits, files, kept_splits, previous)
    for name, error in chat_failures.items():  # its splits are unknown: keep those stored before
        stored = [key for key in kept_splits if key[:2] == ("chat", name)]
        splits.update({key: _failing(error) for key in stored})
        if not stored:
            outcomes.append(Outcome(f"chat {name}", None, None, 0.0, "failed", str(error)))
    with fetcher, Writer(db, jobs, previous) as writer:
        for key in sorted(set(splits) | kept_splits):
            copy = (
                (lambda key=key: writer.copy_split(previous.split(*key)))
                if key in kept_splits
                else None
            )
            outcomes.append(
                _compile_one(writer, f"{key[0]} {key[1]}/{key[2]}", splits.get(key), copy)
            )
        for name in sorted(set(files) | kept_files):
            copy = (lambda name=name: writer.copy_file(name)) if name in kept_files else None
            outcomes.append(_compile_one(writer, name, files.get(name), copy))
        if any(outcome.status != "failed" for outcome in outcomes):
            # Over the whole new file, kept splits included: which test questions training data
            # holds.
            writer.write_overlaps(find_overlaps(writer.db, progress))
            writer.commit()
        else:
            writer.abort()  # an empty file would only hide that nothing could be read
    return outcomes


def check_request(only, mirror, revisions, chat=None):
    """The Benchmarks a compile of `only` (all when empty) builds, once the request is known to
    make sense: UnknownName for a name that is no benchmark, BadRequest for revisions that
    cannot apply or a `chat` dataset ({name: "org/repo[:config]"}) that is not named so."""
    benchmarks = [benchmark(name) for name in (only or NAMES)]
    if revisions and mirror:
        raise BadRequest(
            "a revision pins a commit on the hub; a mirror has no commits to pick from"
        )
    if chats.BENCHMARK in benchmarks and only and not chat:
        raise BadRequest(
            "--only chat compiles the --chat datasets, and none is given: add "
            "--chat NAME=org/repo[:config]"
        )
    try:
        chat_repos = {chats.parse(spec)[0] for spec in (chat or {}).values()}
    except ValueError as error:
        raise BadRequest(f"--chat NAME=org/repo[:config]: {error}") from None
    repos = {source.repo for b in benchmarks for source in b.sources} | chat_repos
    unknown = sorted(set(revisions) - repos)
    if unknown:
        raise BadRequest(
            f"no source compiled here comes from {', '.join(unknown)}; "
            f"they come from {', '.join(sorted(repos)) or 'no repository'}"
        )
    return benchmarks


def _chat_sources(fetcher, chat, shuffle):
    """The Sources of every split of the `chat` datasets, and {name: SourceError} for those whose
    splits cannot be listed."""
    sources, failures = [], {}
    for name, spec in chat.items():
        repo, config = chats.parse(spec)
        try:
            config, splits = fetcher.splits(repo, config)
        except SourceError as error:
            failures[name] = error
            continue
        sources += [Source("chat", name, split, repo, config, split, shuffle) for split in splits]
    return sources, failures


def _add_archives(fetcher, benchmarks, splits, files, kept_splits, previous):
    """Add the parts of the benchmarks' archives to `splits` and `files` ({key or name: write}),
    and drop from `kept_splits` those of an archive read afresh that it no longer has; returns
    the Outcomes of archives that cannot be read at all."""
    outcomes = []
    for archived in (b for b in benchmarks if b.archive):
        kept = [key for key in kept_splits if key[0] == archived.name]
        parts, failed = _archive_writers(fetcher, archived, kept, previous)
        splits.update({key: write for key, write in parts.items() if isinstance(key, tuple)})
        files.update({name: write for name, write in parts.items() if isinstance(name, str)})
        kept_splits -= {k for k in kept_splits if k[0] == archived.name and k not in parts}
        outcomes += failed
    return outcomes


def _archive_writers(fetcher, benchmark, kept, previous):
    """({split key or file name: write} for each part of `benchmark`'s archive, [Outcome]). A
    part the archive lacks fails, naming it; a bad row in a part stops the compile (BadRow).
    When the archive cannot be read at all its parts are unknown: those the `previous` file has
    (its splits among the keys `kept`, and its files from the archive) are kept, failing with
    the reason, else an Outcome says so."""
    archive = benchmark.archive.file
    source = f"{archive.repo}/{archive.name}"
    try:
        content, revision = fetcher.file(archive.url, archive.mirror_path)
        split_parts, file_parts = benchmark.archive.unpack(content)
    except (SourceError, ValueError) as error:
        failure = error if isinstance(error, SourceError) else SourceError(f"{source}: {error}")
        stored = (
            kept + [f["name"] for f in previous.files() if f["repo"] == source]
            if previous
            else kept
        )
        if stored:
            return {key: _failing(failure) for key in stored}, []
        return {}, [Outcome(benchmark.name, None, None, 0.0, "failed", str(failure))]
    provenance = Provenance(repo=source, revision=revision)

    def write_split(key, part):
        def rows():
            try:
                yield from part()
            except ValueError as error:
                raise BadRow(
                    f"bad row: {source} {error}. The bundle is not what nanotasks expects: "
                    f"check the mirror or the download"
                ) from None

        return lambda writer, name: writer.write_split(benchmark.name, *key, provenance, rows())

    def write_file(name, content):
        return lambda writer, _: writer.write_file(name, content, provenance)

    parts = {(benchmark.name, *key): part for key, part in split_parts.items()} | file_parts
    return {
        key: _failing(SourceError(f"{source}: {part}"))
        if isinstance(part, Exception)
        else write_split(key[1:], part)
        if isinstance(key, tuple)
        else write_file(key, part)
        for key, part in parts.items()
    }, []


def _failing(error):
    def write(writer, name):
        raise error

    return write


def _previous(db, only):
    """The file being replaced, whose splits are kept unless compiled afresh. A file of another
    format version has nothing that can be kept, and a full compile replaces it."""
    if not Path(db).exists():
        return None
    try:
        return Store(db)
    except FormatVersionError as error:
        if not only:
            return None
        # the reader's advice, to recompile, is what the user just did: say why it was refused
        raise FormatVersionError(
            f"{error.reason} --only keeps the other splits of the file it replaces, "
            f"and cannot read them from this one: compile without --only to "
            f"replace the whole file, or move it away."
        ) from None
    except FileDamaged as error:
        raise FileDamaged(
            f"{error} (compile keeps what it is not asked to rebuild from the file "
            f"it replaces, so it will not start from a damaged one: move it away to "
            f"compile afresh)"
        ) from None


def _compile_one(writer, name, write, copy):
    """Write a split or file afresh when asked to; when not asked, or when its source fails,
    keep the previous file's copy if there is one."""
    started = time.monotonic()
    failure = None
    if write:
        try:
            return Outcome(
                name, *_sizes(write(writer, name)), time.monotonic() - started, "written"
            )
        except SourceError as error:
            failure = str(error)
    if copy:
        return Outcome(name, *_sizes(copy()), time.monotonic() - started, "kept", failure)
    return Outcome(name, None, None, time.monotonic() - started, "failed", failure)


def _sizes(written):
    """(rows, stored bytes) of a written split's summary, or of a file's stored bytes."""
    return (
        (written.rows, written.stored_bytes)
        if isinstance(written, SplitSummary)
        else (None, written)
    )


def _write_source(writer, fetcher, benchmark, source, progress, name):
    table, revision = fetcher.split_table(source.repo, source.config, source.source_split)
    if benchmark.columns:
        table = narrowed(table, benchmark.columns(table.column_names, source), source)
    null = first_null(table)
    if null:
        raise _bad_row(source, *null)
    provenance = Provenance(source.repo, source.config, source.source_split, revision)
    batches = _with_progress(_batches(table, source), name, progress, table.num_rows)
    return writer.write_split(
        source.task,
        source.subset,
        source.split,
        provenance,
        batches,
        functools.partial(normalised, benchmark.normalise, source),
    )


class SourceRows:
    """Some rows of a source split, in task order: an Arrow table of them and their row numbers
    in the source. What the compile's worker processes normalise; it pickles compactly."""

    def __init__(self, table, numbers):
        self.table, self.numbers = table, numbers

    def __len__(self):
        return len(self.numbers)


def _batches(table, source):
    """The split's rows in task order, BATCH at a time, as SourceRows."""
    order = reference_order(table.num_rows) if source.shuffle else np.arange(table.num_rows)
    batches = table.to_batches()
    starts = np.cumsum([0] + [len(batch) for batch in batches])
    for start in range(0, len(order), BATCH):
        rows = order[start : start + BATCH]
        yield SourceRows(_take(batches, starts, rows), rows.tolist())


def normalised(normalise, source, rows):
    """The Examples of SourceRows `rows`; BadRow for the first that `normalise` refuses."""
    examples = []
    for source_row, row in zip(rows.numbers, rows.table.to_pylist(), strict=True):
        try:
            example = normalise(row, source)
        except KeyError as error:
            raise _bad_row(source, source_row, f"it has no field {error}") from None
        except (TypeError, ValueError, AttributeError, IndexError) as error:
            raise _bad_row(source, source_row, error) from None
        example.source_row = source_row
        examples.append(example)
    return examples


def narrowed(table, wanted, source):
    """The columns of `table` that `wanted` names ({column: item fields, or None for a plain
    column}), each list of structs keeping only the fields named: fields normalise does not
    read may hold nulls, and are not converted to Python. Nulls in a plain string column
    (metadata such as a chat's source) are read as empty strings."""
    columns = {}
    for name, fields in wanted.items():
        column = table[name]
        if fields is None and pa.types.is_string(column.type):
            column = pc.fill_null(column, "")
        elif fields is not None:
            kind = column.type
            large = pa.types.is_large_list(kind)
            item = kind.value_type if large or pa.types.is_list(kind) else None
            if (
                item is None
                or not pa.types.is_struct(item)
                or any(item.get_field_index(f) < 0 for f in fields)
            ):
                raise UnknownLayout(
                    f"{source.repo} {source.config}/{source.source_split}: column {name} "
                    f"is {kind}, not a list of {{{', '.join(fields)}}}"
                )
            item = pa.struct([item.field(f) for f in fields])
            list_type = pa.large_list(item) if large else pa.list_(item)
            column = pa.chunked_array(
                [_list_fields(chunk, fields) for chunk in column.chunks], list_type
            )
        columns[name] = column
    return pa.table(columns)


def _list_fields(lists, fields):
    """A list-of-structs array with only the struct fields named."""
    start, end = lists.offsets[0].as_py(), lists.offsets[-1].as_py()
    items = lists.values.slice(start, end - start)
    kept = pa.StructArray.from_arrays(
        [items.field(f) for f in fields], names=fields, mask=items.is_null()
    )
    offsets = pc.subtract(
        lists.offsets, pa.scalar(start, lists.offsets.type)
    )  # from 0: not a slice
    return type(lists).from_arrays(offsets, kept, mask=lists.is_null())


def _bad_row(source, row, reason):
    return BadRow(
        f"bad source row: {source.repo} {source.config}/{source.source_split} row {row} "
        f"(for {source.task} {source.subset}/{source.split}): {reason}. The source is not "
        f"what nanotasks expects: check the mirror, or pin a good revision with "
        f"--revision {source.repo}=SHA"
    )


def _take(batches, starts, rows):
    """Table.take(rows) of the table made of `batches` (starting at rows `starts`), taking from
    each batch on its own: Arrow's take on a table of several chunks concatenates them all
    first for nested columns, on every call. Its arrays are new, not slices, so they pickle
    without the rest of the table."""
    which = np.searchsorted(starts, rows, side="right") - 1
    pieces, positions = [], []
    for b in np.unique(which).tolist():
        where = np.flatnonzero(which == b)
        pieces.append(batches[b].take(rows[where] - starts[b]))
        positions.append(where)
    return pa.Table.from_batches(pieces).take(np.argsort(np.concatenate(positions)))


def first_null(table):
    """(row, "FIELD is null") for the first row with a null anywhere inside it, or None. No
    benchmark has a missing value: a null means a broken source row. Checked column by column
    in Arrow, which costs nothing next to a check of every value in Python."""
    for column in table.column_names:
        offset = 0
        for chunk in table[column].chunks:
            rows = np.flatnonzero(_null_rows(chunk))
            if len(rows):
                what = "is null" if chunk[rows[0]].is_valid is False else "holds a null"
                return offset + int(rows[0]), f"{column} {what}"
            offset += len(chunk)
    return None


def _null_rows(array):
    """Which rows of an Arrow array hold a null, at any depth of structs and lists."""
    null = array.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_struct(array.type):
        for field in array.flatten():
            null |= _null_rows(field)
    elif pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        parents = pc.list_parent_indices(array).to_numpy()
        null[parents[_null_rows(array.flatten())]] = True
    return null


def _with_progress(batches, name, progress, total=None):
    """`batches` (of examples or rows), moving a progress bar by the rows of each."""
    if progress is None:
        yield from batches
        return
    with progress(length=total, label=name) as bar:
        for batch in batches:
            yield batch
            bar.update(len(batch))
