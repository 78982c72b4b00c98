"""The compile: fetch every source, normalise its rows in reference order, write one file.

Splits are written in sorted (task, subset, split) order. A split that is not asked for
this time, or whose source fails, is copied from the previous file as it was, so
`--only gsm8k` replaces GSM8K and keeps the rest, and the same contents always give the
same bytes. A `--chat NAME` compiled afresh replaces every split of NAME, so nothing of an
earlier dataset under that name is left behind. A bad row in any source stops the whole
compile, leaving the previous file as it was.
"""

import contextlib
import functools
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nanotasks.compiler.fetch import MAX_WAIT, Fetcher, SourceError
from nanotasks.compiler.overlap import overlap_rows
from nanotasks.store import NoProgress, Provenance
from nanotasks.store.reader import FileDamaged, FormatVersionError, Store
from nanotasks.store.writer import (
    DICTIONARY_SAMPLES,
    SplitSummary,
    Writer,
    chunked,
    release_freed_memory,
)
from nanotasks.tasks import NAMES, benchmark, customjson
from nanotasks.tasks import chat as chats
from nanotasks.tasks.common import Benchmark, Source, SourceFile, UnknownLayout

BATCH = 1024  # rows normalised at a time, by one worker process
READ_BUFFER = 1 << 20  # bytes read from a shard at a time: a row group is never read whole


class BadRequest(ValueError):
    """A compile asked for what cannot be: a revision for a repository it does not compile, or
    with a mirror. (An unknown benchmark is tasks.UnknownName, also a ValueError.)"""


class BadRow(ValueError):
    """A source row that is not what its benchmark should be. It stops the whole compile:
    the source is not what nanotasks was written for, so none of it can be trusted."""


@dataclass
class Outcome:
    """What happened to one split or file: written, kept from the previous file, or failed.
    `about` names it: {"task", "subset", "split"}, {"file"}, or what failed before it could
    name any: a benchmark's archive ({"benchmark"}) or a chat dataset ({"chat"})."""

    about: dict[str, str]
    rows: int | None
    stored_bytes: int | None
    seconds: float
    status: str  # "written", "kept", "failed"
    error: str | None = None

    @property
    def name(self) -> str:
        """As the closing table shows it: "task subset/split", a file's or benchmark's name, or
        "chat NAME"."""
        about = self.about
        if "task" in about:
            return f"{about['task']} {about['subset']}/{about['split']}"
        if "chat" in about:
            return f"chat {about['chat']}"
        return about.get("file") or about["benchmark"]


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


def task_positions(n):
    """The task position of each source row: the inverse of reference_order(n), 4 bytes a row."""
    positions = np.empty(n, np.int32)
    positions[reference_order(n)] = np.arange(n, dtype=np.int32)
    return positions


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
    customs = _custom_splits(custom or {})
    previous = _previous(db, only)
    with Fetcher(mirror, revisions, max_wait=max_wait) as fetcher:
        plan = resolve_sources(fetcher, benchmarks, customs, chat or {}, chat_shuffle, previous)
        with Writer(db, jobs, previous) as writer:
            outcomes = [
                *plan.failures,
                *write_splits(writer, fetcher, plan, progress),
                *write_files(writer, fetcher, plan),
            ]
            replace(writer, outcomes, progress)
    return outcomes


@dataclass(frozen=True)
class HubSplit:
    """A split whose rows are read from the hub (or a mirror): a benchmark's or a --chat
    dataset's source."""

    benchmark: Benchmark
    source: Source

    @property
    def key(self):
        return self.source.task, self.source.subset, self.source.split

    def write(self, writer, fetcher, progress, name):
        return _write_source(writer, fetcher, self.benchmark, self.source, progress, name)


@dataclass(frozen=True)
class CustomSplit:
    """A --custom JSONL file's conversations, read already (a bad line stops the compile before
    anything is written)."""

    name: str
    path: str
    examples: list

    @property
    def key(self):
        return "customjson", self.name, customjson.SPLIT

    def write(self, writer, fetcher, progress, name):
        examples = _with_progress(chunked(self.examples), name, progress, len(self.examples))
        provenance = Provenance(repo=str(Path(self.path).resolve()))
        return writer.write_split(*self.key, provenance, examples, list)


@dataclass(frozen=True)
class FailingSource:
    """A split or file whose source cannot be read now (a --chat dataset's splits that cannot be
    listed, an archive that cannot be read or lacks the part): the previous file's copy is
    kept, with the reason."""

    error: SourceError

    def write(self, writer, fetcher, progress, name):
        raise self.error


@dataclass(frozen=True)
class HubFile:
    """A whole file (a word list) downloaded from its URL, or read from the mirror."""

    file: SourceFile

    def write(self, writer, fetcher, progress, name):
        content, revision = fetcher.file(self.file.url, self.file.mirror_path)
        provenance = Provenance(repo=self.file.repo, revision=revision)
        return writer.write_file(self.file.name, content, provenance)


@dataclass(frozen=True)
class ArchiveSplit:
    """A split unpacked from a benchmark's archive: `rows()` yields its Examples."""

    key: tuple
    rows: Callable
    provenance: Provenance

    def write(self, writer, fetcher, progress, name):
        return writer.write_split(*self.key, self.provenance, self._checked())

    def _checked(self):
        try:
            yield from self.rows()
        except ValueError as error:
            raise BadRow(
                f"bad row: {self.provenance.repo} {error}. The bundle is not what nanotasks "
                f"expects: check the mirror or the download"
            ) from None


@dataclass(frozen=True)
class ArchiveFile:
    """A whole file unpacked from a benchmark's archive."""

    name: str
    content: bytes
    provenance: Provenance

    def write(self, writer, fetcher, progress, name):
        return writer.write_file(self.name, self.content, self.provenance)


@dataclass
class Plan:
    """What a compile writes afresh ({(task, subset, split): split}, {name: SourceFile}), what it
    keeps from the `previous` file, and the failures known before writing."""

    splits: dict
    kept_splits: set
    files: dict
    kept_files: set
    failures: list
    previous: Store | None


def _custom_splits(custom):
    """A CustomSplit for each --custom file ({name: path}): ValueError for a bad name or line."""
    for name in custom:
        customjson.check_name(name)
    return [CustomSplit(name, path, customjson.examples(path)) for name, path in custom.items()]


def resolve_sources(fetcher, benchmarks, customs, chat, chat_shuffle, previous):
    """The Plan: every source split and file of `benchmarks` (their archives' parts too), the
    `customs` and every split of the `chat` datasets afresh; the rest of `previous` kept,
    except the splits of a chat dataset or archive read afresh that it no longer has. A chat
    dataset or archive that cannot be read keeps its stored splits, or fails."""
    sources = [HubSplit(b, s) for b in benchmarks for s in b.sources] + customs
    splits = {split.key: split for split in sources}
    files = {f.name: HubFile(f) for b in benchmarks for f in b.files}
    kept = {(s["task"], s["subset"], s["split"]) for s in previous.splits()} if previous else set()
    failures = []
    for archived in (b for b in benchmarks if b.archive):
        failures += _add_archive(fetcher, archived, (splits, files, kept), previous)
    for name, spec in chat.items():
        stored = {key for key in kept if key[:2] == ("chat", name)}
        try:
            listed = _chat_splits(fetcher, name, spec, chat_shuffle)
        except SourceError as error:
            splits.update({key: FailingSource(error) for key in stored})
            if not stored:
                failures.append(Outcome({"chat": name}, None, None, 0.0, "failed", str(error)))
            continue
        splits.update({split.key: split for split in listed})
        kept -= stored - set(splits)
    kept_files = {f["name"] for f in previous.files()} if previous else set()
    return Plan(splits, kept, files, kept_files, failures, previous)


def _add_archive(fetcher, benchmark, plan, previous):
    """Add the parts of `benchmark`'s archive to the plan's splits and files, and drop from its
    kept splits those the archive no longer has. When it cannot be read, what `previous` has
    of it is kept, failing with the reason, else the Outcome says so. A part the archive lacks
    fails, naming it; a bad row in a part stops the compile (BadRow)."""
    splits, files, kept = plan
    archive = benchmark.archive.file
    source = f"{archive.repo}/{archive.name}"
    stored = {key for key in kept if key[0] == benchmark.name}
    try:
        content, revision = fetcher.file(archive.url, archive.mirror_path)
        split_parts, file_parts = benchmark.archive.unpack(content)
    except (SourceError, ValueError) as error:
        failure = error if isinstance(error, SourceError) else SourceError(f"{source}: {error}")
        stored_files = (
            [f["name"] for f in previous.files() if f["repo"] == source] if previous else []
        )
        splits.update({key: FailingSource(failure) for key in stored})
        files.update({name: FailingSource(failure) for name in stored_files})
        if stored or stored_files:
            return []
        return [Outcome({"benchmark": benchmark.name}, None, None, 0.0, "failed", str(failure))]
    provenance = Provenance(repo=source, revision=revision)
    for key, part in split_parts.items():
        key = (benchmark.name, *key)
        failing = isinstance(part, Exception)
        splits[key] = (
            FailingSource(SourceError(f"{source}: {part}"))
            if failing
            else ArchiveSplit(key, part, provenance)
        )
    for name, part in file_parts.items():
        failing = isinstance(part, Exception)
        files[name] = (
            FailingSource(SourceError(f"{source}: {part}"))
            if failing
            else ArchiveFile(name, part, provenance)
        )
    kept -= {key for key in stored if key not in splits}
    return []


def write_splits(writer, fetcher, plan, progress):
    """Write or keep each split, in (task, subset, split) order: an Outcome each."""
    outcomes = []
    for key in sorted(set(plan.splits) | plan.kept_splits):
        name = f"{key[0]} {key[1]}/{key[2]}"
        split = plan.splits.get(key)
        write = split and functools.partial(split.write, writer, fetcher, progress, name)
        copy = key in plan.kept_splits and functools.partial(_copy_split, writer, plan, key)
        about = dict(zip(("task", "subset", "split"), key, strict=True))
        outcomes.append(_compile_one(about, write, copy))
    return outcomes


def _copy_split(writer, plan, key):
    return writer.copy_split(plan.previous.split(*key))


def write_files(writer, fetcher, plan):
    """Write or keep each whole file (a word list), in name order: an Outcome each."""
    outcomes = []
    for name in sorted(set(plan.files) | plan.kept_files):
        file = plan.files.get(name)
        write = file and functools.partial(file.write, writer, fetcher, None, name)
        copy = name in plan.kept_files and functools.partial(writer.copy_file, name)
        outcomes.append(_compile_one({"file": name}, write, copy))
    return outcomes


def replace(writer, outcomes, progress):
    """Find the overlaps over the whole new file, kept splits included (which test questions
    its training data holds), and put it in place of the old one; or, when nothing could be
    read, leave the old one: an empty file would only hide that."""
    if any(outcome.status != "failed" for outcome in outcomes):
        writer.stop_pool()
        writer.write_overlaps(overlap_rows(writer.connection, progress))
        writer.commit()
    else:
        writer.abort()


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


def _chat_splits(fetcher, name, spec, shuffle):
    """A HubSplit for every split of the --chat dataset `spec`, stored under `name`; SourceError
    when its splits cannot be listed."""
    repo, config = chats.parse(spec)
    config, names = fetcher.splits(repo, config)
    return [
        HubSplit(chats.BENCHMARK, Source("chat", name, split, repo, config, split, shuffle))
        for split in names
    ]


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


def _compile_one(about, write, copy):
    """Write a split or file afresh when asked to (`write`); when not asked, or when its source
    fails, keep the previous file's copy if there is one (`copy`)."""
    started = time.monotonic()
    failure = None
    if write:
        try:
            rows, stored_bytes = _sizes(write())
            return Outcome(about, rows, stored_bytes, time.monotonic() - started, "written")
        except SourceError as error:
            failure = str(error)
    if copy:
        rows, stored_bytes = _sizes(copy())
        return Outcome(about, rows, stored_bytes, time.monotonic() - started, "kept", failure)
    return Outcome(about, None, None, time.monotonic() - started, "failed", failure)


def _sizes(written):
    """(rows, stored bytes) of a written split's summary, or of a file's stored bytes."""
    return (
        (written.rows, written.stored_bytes)
        if isinstance(written, SplitSummary)
        else (None, written)
    )


def _write_source(writer, fetcher, benchmark, source, progress, name):
    """Write one source split, read twice from its shards a record batch at a time: once to
    check it whole and take the first rows of the task order (the dictionary's samples),
    once to compress it. Its rows are never all in memory."""
    split = SourceSplit(fetcher, benchmark, source)
    positions = task_positions(split.rows) if source.shuffle else None
    checked = writer.run(split.group_checks(positions), len(split.groups))
    head = split.check(
        _with_progress(checked, f"{name}: checking", progress, split.rows), positions
    )
    pa.default_memory_pool().release_unused()  # what checking it here (without a pool) left
    rows = split.batches() if positions is None else split.pieces(positions, writer.jobs)
    with (progress or NoProgress)(length=split.rows, label=name) as bar:
        return writer.write_split(
            source.task,
            source.subset,
            source.split,
            Provenance(source.repo, source.config, source.source_split, split.revision),
            rows,
            functools.partial(normalised, benchmark.normalise, source),
            head,
            bar.update,  # as rows are compressed: a piece is read ahead of that
        )


class SourceRows:
    """Some rows of a source split: an Arrow table of them, their row numbers in the source
    and, when they are not in task order, their task positions. What the compile's worker
    processes normalise; it pickles compactly."""

    def __init__(self, table, numbers, positions=None):
        self.table, self.numbers, self.positions = table, numbers, positions

    def __len__(self):
        return len(self.numbers)


@dataclass(frozen=True)
class RowGroup:
    """A row group of a shard: what one worker process checks at a time."""

    path: str
    group: int
    start: int  # its first row's number in the split
    rows: int


@dataclass(frozen=True)
class Piece:
    """Rows `start` to `stop` of a row group (numbered in it), with their task positions:
    what a worker process reads and compresses at a time. Called, it gives them as SourceRows
    of BATCH rows at most; a piece that starts inside its row group decodes the rows before it
    too, to skip them."""

    split: "SourceSplit"
    group: RowGroup
    start: int
    stop: int
    positions: np.ndarray

    def __len__(self):
        return self.stop - self.start

    def __call__(self):
        return self.split.read(self)


@dataclass
class CheckedGroup:
    """What checking a row group found: the first null in each column that has one (see
    first_nulls, numbered in the split), and its rows among the first of the task order."""

    nulls: dict[str, tuple[int, str]]
    head: tuple[pa.Table, np.ndarray] | None  # those rows, and their numbers in the split
    rows: int

    def __len__(self):
        return self.rows


class SourceSplit:
    """A source split in its parquet shards, read a record batch at a time, its columns
    narrowed to those its benchmark reads. It pickles, for worker processes to read it."""

    def __init__(self, fetcher, benchmark, source):
        self.source = source
        self.directory, self.paths, self.revision = fetcher.split_files(
            source.repo, source.config, source.source_split
        )
        schemas, self.groups, self.rows = [], [], 0
        for path in self.paths:
            with self._reading(path), pq.ParquetFile(self.directory / path) as shard:
                schemas.append(shard.schema_arrow)
                for group in range(shard.metadata.num_row_groups):
                    rows = shard.metadata.row_group(group).num_rows
                    self.groups.append(RowGroup(path, group, self.rows, rows))
                    self.rows += rows
        try:  # the shards must be one table
            pa.concat_tables([schema.empty_table() for schema in schemas])
        except pa.ArrowException as error:
            raise SourceError(
                f"{source.repo}: the shards of {source.config}/{source.source_split} do not "
                f"fit together: {error}"
            ) from None
        self.schema = schemas[0] if schemas else pa.schema([])
        names = self.schema.names
        self.wanted = benchmark.columns(names, source) if benchmark.columns else None
        self.columns = list(self.wanted) if self.wanted is not None else names

    def tables(self):
        """The rows in source order, BATCH at a time (fewer at the end), as Arrow tables."""
        pending, rows = [], 0
        for batch in itertools.chain.from_iterable(map(self._record_batches, self.paths)):
            pending.append(batch)
            rows += len(batch)
            while rows >= BATCH:
                table = pa.Table.from_batches(pending)
                yield self._narrowed(table.slice(0, BATCH))
                pending, rows = table.slice(BATCH).to_batches(), rows - BATCH
        if rows:
            yield self._narrowed(pa.Table.from_batches(pending))

    def __getstate__(self):
        # Sent to a worker process with each row group or piece it reads: not the list of row
        # groups, which can be long.
        return {**self.__dict__, "groups": None}

    def group_checks(self, positions):
        """A call (of no argument) that checks each row group, in source order: see
        check_group. `positions` is the task position of each source row, or None when the
        split is stored in source order."""
        for group in self.groups:
            where = slice(group.start, group.start + group.rows)
            mine = None if positions is None else positions[where]
            yield functools.partial(self.check_group, group, mine)

    def check_group(self, group, positions):
        """Read a row group whole (in a worker process): a CheckedGroup of its first nulls and,
        when `positions` (the task position of each of its rows) is given, its rows among the
        first of the task order, those the dictionary may be trained on."""
        head_rows = min(self.rows, (DICTIONARY_SAMPLES // BATCH + 1) * BATCH)
        nulls: dict[str, tuple[int, str]] = {}
        pieces, start = [], 0
        for batch in self._record_batches(group.path, [group.group]):
            table = self._narrowed(pa.Table.from_batches([batch]))
            for column, (row, what) in first_nulls(table).items():
                nulls.setdefault(column, (group.start + start + row, what))
            if positions is not None:
                where = np.flatnonzero(positions[start : start + len(table)] < head_rows)
                pieces.append((table.take(where), group.start + start + where))
            start += len(table)
        pa.default_memory_pool().release_unused()  # what reading the group whole allocated
        release_freed_memory()
        head = None
        if pieces:
            head = pa.concat_tables(t for t, _ in pieces), np.concatenate([r for _, r in pieces])
        return CheckedGroup(nulls, head, group.rows)

    def check(self, checked, positions):
        """BadRow for the split's first null (no benchmark has one), from the CheckedGroups
        of its row groups in source order; and its first rows in task order, as batches, when
        `positions` does not keep them in source order (else None)."""
        self._narrowed(self.schema.empty_table())  # UnknownLayout, even without rows
        nulls: dict[str, tuple[int, str]] = {}
        head = []
        for group in checked:
            for column, found in group.nulls.items():
                nulls.setdefault(column, found)
            if group.head is not None:
                head.append(group.head)
        for column in [c for c in self.columns if c in nulls][:1]:
            raise _bad_row(self.source, *nulls[column])
        return None if positions is None else _in_task_order(head, positions)

    def batches(self):
        """The rows as SourceRows in source order, BATCH at a time."""
        start = 0
        for table in self.tables():
            yield SourceRows(table, list(range(start, start + len(table))))
            start += len(table)

    def pieces(self, positions, workers):
        """The split in Pieces of a row group or less, in source order, for `workers`
        processes to read and compress, with `positions`, the task position of each source
        row. Row groups are cut in pieces, at batch boundaries, when there are too few of
        them to keep every worker busy."""
        # pieces per row group: two or more for each worker
        cuts = 1 if workers == 1 else -(-2 * workers // max(len(self.groups), 1))
        for group in self.groups:
            size = -(-group.rows // cuts // BATCH) * BATCH  # rows per piece
            for start in range(0, group.rows, size):
                stop = min(start + size, group.rows)
                mine = positions[group.start + start : group.start + stop]
                yield Piece(self, group, start, stop, mine)

    def read(self, piece):
        """The rows of `piece` as SourceRows with their task positions (see Piece)."""
        group, done = piece.group, 0  # rows of the group read
        for batch in self._record_batches(group.path, [group.group]):
            begin, end = max(piece.start - done, 0), min(piece.stop - done, len(batch))
            if begin < end:
                table = self._narrowed(pa.Table.from_batches([batch.slice(begin, end - begin)]))
                first = done + begin - piece.start  # its first row's place in the piece
                numbers = range(group.start + done + begin, group.start + done + end)
                where = piece.positions[first : first + len(table)]
                yield SourceRows(table, list(numbers), where.tolist())
            done += len(batch)
            if done >= piece.stop:
                return

    def _record_batches(self, path, groups=None):
        """The record batches of shard `path` (of row `groups`, else all), BATCH rows at most,
        checked whole: a crafted shard cannot make Arrow read outside its buffers."""
        # Not pre-buffered: Arrow's I/O threads would read whole column chunks ahead, and what
        # they allocate and this thread frees was kept, growing with the split (2.7 GB at 5M
        # SmolTalk rows). Read in this thread, the compile's memory stays flat.
        with (
            self._reading(path),
            pq.ParquetFile(
                self.directory / path, buffer_size=READ_BUFFER, pre_buffer=False
            ) as shard,
        ):
            for batch in shard.iter_batches(
                BATCH, row_groups=groups, columns=self.columns, use_threads=False
            ):
                batch.validate(full=True)
                yield batch

    def _narrowed(self, table):
        return table if self.wanted is None else narrowed(table, self.wanted, self.source)

    @contextlib.contextmanager
    def _reading(self, path):
        try:
            yield
        except (pa.ArrowException, OSError) as error:
            source = self.source
            raise SourceError(
                f"{source.repo}: cannot read {path} (for {source.config}/{source.source_split}):"
                f" {error}"
            ) from None


def _in_task_order(pieces, positions):
    """SourceRows of BATCH rows from (table, source rows) pieces, sorted by task position,
    each taken from the pieces only when its rows are read: the dictionary's samples need the
    first few batches, not all. Empties `pieces`."""
    if not pieces:
        return []
    numbers = np.concatenate([rows for _, rows in pieces])
    order = np.argsort(positions[numbers])
    # Taken from one chunk: a take from many chunks joins them first, each time
    table = pa.concat_tables([table for table, _ in pieces]).combine_chunks()
    pieces.clear()  # joined: held once, not twice
    return [
        RowsToTake(table, order[i : i + BATCH], numbers[order[i : i + BATCH]].tolist())
        for i in range(0, len(numbers), BATCH)
    ]


class RowsToTake(SourceRows):
    """SourceRows taken from `rows` (an Arrow table) at `indices` when first read."""

    def __init__(self, rows, indices, numbers):
        self.rows, self.indices, self.numbers, self.positions = rows, indices, numbers, None

    @functools.cached_property
    def table(self):
        return self.rows.take(self.indices)


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


def first_nulls(table):
    """{column: (row, "COLUMN is null" or "... holds a null")} for the first null anywhere
    inside each column that has one, in column order. Checked column by column in Arrow,
    which costs nothing next to a check of every value in Python."""
    nulls = {}
    for column in table.column_names:
        offset = 0
        for chunk in table[column].chunks:
            rows = np.flatnonzero(_null_rows(chunk))
            if len(rows):
                what = "is null" if chunk[rows[0]].is_valid is False else "holds a null"
                nulls[column] = offset + int(rows[0]), f"{column} {what}"
                break
            offset += len(chunk)
    return nulls


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
    with (progress or NoProgress)(length=total, label=name) as bar:
        for batch in batches:
            yield batch
            bar.update(len(batch))
