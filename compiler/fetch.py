"""Getting source data onto this machine: from the Hugging Face Hub, or from a local mirror
with the hub repositories' own layout. Either way the result is a directory laid out like
the hub repository, and everything after this module reads it the same way.

Rows are read from the parquet shards directly with pyarrow, never through the `datasets`
cache: that cache is keyed by repository name, and can return an earlier directory's rows
for a snapshot of the same name.

From the hub, every request goes through one patient HTTP client: what is transient (429,
5xx, a reset connection, a timeout) is retried within a limit on the compile's total
waiting, and every file is checked against the hash the hub published for it before a row
is read. A warm cache compiles with no network.
"""

import contextlib
import functools
import hashlib
import logging
import os
import random
import re
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

log = logging.getLogger("nanotasks")


MAX_WAIT = 300.0  # seconds a compile may spend waiting on the hub in all, by default
FIRST_BACKOFF, LONGEST_BACKOFF = (
    1.0,
    30.0,
)  # seconds: doubling from the first, never beyond the longest
SHORTEST_WAIT = 0.1  # seconds, whatever Retry-After says
RETRIED_STATUS = {
    429: "rate limited (429)",
    500: "server error (500)",
    502: "bad gateway (502)",
    503: "unavailable (503)",
    504: "gateway timeout (504)",
}


class SourceError(Exception):
    """A source that cannot be read: says which one, and why (never with credentials)."""

    def __init__(self, message):
        super().__init__(redacted(message))


USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")


def redacted(text):
    """`text` with the user and password of every URL in it (HF_ENDPOINT may hold them, and
    the errors of huggingface_hub and httpx quote the URL) replaced by ***: what the compile
    prints of a URL goes through here."""
    return USERINFO.sub(r"\1***@", str(text))


def _warn(message):
    log.warning(redacted(message))


class GaveUp(Exception):
    """The hub kept failing for longer than the compile may wait. Not an httpx error, so
    huggingface_hub's own retry loops let it through at once."""


class Patience:
    """How long one compile may still wait on the hub, shared by all its requests (and the
    threads huggingface_hub downloads with)."""

    def __init__(self, max_wait=MAX_WAIT):
        self.max_wait = self.left = float(max_wait)
        self.lock = threading.Lock()

    def wait(self, attempt, url, why, retry_after=None):
        """Sleep before retry number `attempt` (1, 2, ...): what the server asked for, else an
        exponential backoff with jitter so that many ranks do not come back at once."""
        if retry_after is None:
            delay = min(LONGEST_BACKOFF, FIRST_BACKOFF * 2 ** (attempt - 1)) * random.uniform(
                0.5, 1
            )
        else:
            delay = max(retry_after, SHORTEST_WAIT)  # "Retry-After: 0" forever must still run out
        with self.lock:
            if delay > self.left:
                raise GaveUp(
                    f"{why} at {url}, and waiting {delay:.0f} s more would pass the limit of "
                    f"{self.max_wait:g} s on waiting for the hub (--max-wait)"
                )
            self.left -= delay
        asked = " as the server asked" if retry_after is not None else ""
        _warn(f"hub: {why} at {url}: waiting {delay:.1f} s{asked} before retry {attempt}")
        time.sleep(delay)


def _retry_after(response):
    """Retry-After in seconds, when the server sent it as a number."""
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def patient(send, patience):
    """`send` (an httpx2.Client's) retrying what is transient. A connection that cannot be made
    at all is not retried: the hub is unreachable, and the cache is the answer to that."""
    import httpx2

    transient = (
        httpx2.ReadError,
        httpx2.WriteError,
        httpx2.RemoteProtocolError,
        httpx2.ReadTimeout,
        httpx2.WriteTimeout,
        httpx2.PoolTimeout,
    )

    def patient_send(request, **kwargs):
        attempt = 0
        while True:
            attempt += 1
            try:
                response = send(request, **kwargs)
            except transient as error:
                patience.wait(attempt, request.url, f"{type(error).__name__}: {error}")
                continue
            if response.status_code not in RETRIED_STATUS:
                return response
            response.close()
            patience.wait(
                attempt, request.url, RETRIED_STATUS[response.status_code], _retry_after(response)
            )

    return patient_send


@contextlib.contextmanager
def patient_hub(patience):
    """huggingface_hub's shared HTTP client, made patient for as long as the block runs."""
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    previous = _http._GLOBAL_CLIENT_FACTORY  # no public getter; restored below

    def factory():
        client = previous()
        client.send = patient(client.send, patience)  # type: ignore[method-assign]
        return client

    set_client_factory(factory)
    try:
        yield
    finally:
        set_client_factory(previous)


class Fetcher:
    """Resolves repositories to snapshot directories, once per repository per compile."""

    def __init__(self, mirror=None, revisions=None, cache_dir=None, max_wait=MAX_WAIT):
        self.mirror = Path(mirror) if mirror else None
        self.revisions = dict(revisions or {})
        self.cache_dir = cache_dir
        self.patience = Patience(max_wait)
        self.resolved = {}  # repo -> commit sha (None for a mirror)
        self.listings = {}  # repo -> (snapshot directory, its file paths)
        self.unreachable = {}  # repo -> SourceError: asked once, not again for each split
        self._hub = contextlib.ExitStack()

    def __enter__(self):
        if not self.mirror:
            self._hub.enter_context(patient_hub(self.patience))
        return self

    def __exit__(self, *exc):
        self._hub.close()

    def split_table(self, repo, config, split):
        """The rows of `repo`'s `config`/`split` as one Arrow table, in source order, and the
        commit they were read at (None for a mirror)."""
        directory, paths, revision = self.split_files(repo, config, split)
        tables = [read_shard(directory, path, repo, config, split) for path in paths]
        try:
            return pa.concat_tables(tables), revision
        except pa.ArrowException as error:  # shards that disagree
            raise SourceError(
                f"{repo}: the shards of {config}/{split} do not fit together: {error}"
            ) from None

    def split_files(self, repo, config, split):
        """The directory holding `repo`'s `config`/`split` (downloaded when from the hub), the
        paths of its parquet shards in it, in order, and the commit they were read at (None
        for a mirror)."""
        directory, listing = self._listing(repo)
        paths = data_files(front_matter(directory, repo), listing, repo, config, split, directory)
        if not self.mirror:
            directory = self._download(repo, paths)
        return directory, paths, self.resolved[repo]

    def splits(self, repo, config=None):
        """`config` and the names of its splits, in the order `repo`'s README declares them (or
        without a configs block, as the default layout gives them). Without a config: the
        repository's only one, or the one named default."""
        directory, listing = self._listing(repo)
        front = front_matter(directory, repo)
        if "configs" not in front:
            config = config or "default"
            return config, list(_default_splits(_without_metadata(listing), repo, config))
        configs = _configs(front["configs"], repo)
        if config is None:
            if len(configs) != 1 and "default" not in configs:
                raise SourceError(
                    f"{repo} has configs {', '.join(configs)}: name one, as {repo}:CONFIG"
                )
            config = next(iter(configs)) if len(configs) == 1 else "default"
        if config not in configs:
            raise SourceError(f"{repo}: no config {config!r} (has {', '.join(configs) or 'none'})")
        return config, [entry["split"] for entry in configs[config]]

    def file(self, url, mirror_path):
        """A single file's bytes, and the revision to record: its sha256 (None for a mirror)."""
        if self.mirror:
            path = self.mirror / mirror_path
            if not path.is_file():
                raise SourceError(f"mirror has no {mirror_path} (looked for {path})")
            return path.read_bytes(), None
        import httpx2

        client = httpx2.Client(follow_redirects=True, timeout=60)
        client.send = patient(client.send, self.patience)  # type: ignore[method-assign]
        try:
            with client:
                response = client.get(url)
                response.raise_for_status()
                content = response.content
        except (httpx2.HTTPError, GaveUp) as error:
            raise SourceError(f"cannot download {url}: {error}") from None
        return content, "sha256:" + hashlib.sha256(content).hexdigest()

    def _listing(self, repo):
        """The directory `repo` is read from, with the paths of all its files, README.md in
        place."""
        if repo in self.unreachable:
            raise self.unreachable[repo]
        if repo not in self.listings:
            try:
                self.listings[repo] = (
                    self._mirror_listing(repo) if self.mirror else self._hub_listing(repo)
                )
            except SourceError as failure:
                self.unreachable[repo] = failure
                raise
        return self.listings[repo]

    def _mirror_listing(self, repo):
        directory = self.mirror / repo
        if not directory.is_dir():
            raise SourceError(f"mirror has no {repo} (looked for {directory})")
        self.resolved[repo] = None
        return directory, local_listing(directory)

    def _hub_listing(self, repo):
        from huggingface_hub import get_cached_repo_tree
        from huggingface_hub.errors import CachedRepoTreeNotFoundError

        commit = self.resolved[repo] = self._commit(repo)
        directory = self._snapshot(repo, ["README.md"])  # also lists the repository into the cache
        try:
            tree = get_cached_repo_tree(
                repo, repo_type="dataset", revision=commit, cache_dir=self.cache_dir
            )
        except CachedRepoTreeNotFoundError:
            raise SourceError(
                f"{repo}: the cache holds no file list of commit {commit}, and the hub "
                f"cannot be asked for one"
            ) from None
        listing = sorted(f.path for f in tree)
        if "README.md" in listing:
            directory = self._download(repo, ["README.md"])  # checked, from the cache
        return directory, listing

    def _commit(self, repo):
        """The commit to read `repo` at: the one pinned, else the hub's answer, else (hub out of
        reach, or HF_HUB_OFFLINE=1) the one last resolved into the cache, saying so."""
        import httpx2
        from huggingface_hub import HfApi, constants
        from huggingface_hub.errors import HfHubHTTPError, RevisionResolutionError
        from huggingface_hub.file_download import REGEX_COMMIT_HASH

        revision = self.revisions.get(repo)
        if revision and REGEX_COMMIT_HASH.fullmatch(revision):
            return revision  # a full commit needs no question to the hub
        api = HfApi()
        if constants.HF_HUB_OFFLINE:
            why = "HF_HUB_OFFLINE is set"
        else:
            try:
                commit = api.dataset_info(repo, revision=revision).sha
                self._remember(repo, revision, commit)
                return commit
            except (httpx2.TransportError, GaveUp) as error:
                why = f"the hub cannot be reached ({type(error).__name__}: {error})"
            except HfHubHTTPError as error:
                raise SourceError(
                    f"cannot download {repo} from the Hugging Face Hub: {_first_line(error)}"
                ) from None
        try:
            commit = api.resolve_revision(
                repo,
                repo_type="dataset",
                revision=revision,
                cache_dir=self.cache_dir,
                local_files_only=True,
            ).resolved
        except RevisionResolutionError:
            raise SourceError(
                f"cannot download {repo} from the Hugging Face Hub: {why}, and the cache "
                f"({self._cache()}) has no commit of it to fall back on"
            ) from None
        _warn(f"{repo}: {why}; reading commit {commit} from the cache, as last resolved there")
        return commit

    def _remember(self, repo, revision, commit):
        """Record `revision` -> `commit` in the cache's refs/, as snapshot_download does, so a
        compile with no network later reads the same commit."""
        from huggingface_hub import constants
        from huggingface_hub.file_download import repo_folder_name

        ref = (
            Path(self._cache())
            / repo_folder_name(repo_id=repo, repo_type="dataset")
            / "refs"
            / (revision or constants.DEFAULT_REVISION)
        )
        with contextlib.suppress(OSError):  # a read-only cache still compiles
            ref.parent.mkdir(parents=True, exist_ok=True)
            temporary = ref.with_name(f"{ref.name}.tmp-{os.getpid()}")  # ranks may compile at once
            temporary.write_text(commit)
            temporary.replace(ref)

    def _cache(self):
        from huggingface_hub import constants

        return self.cache_dir or constants.HF_HUB_CACHE

    def _download(self, repo, paths):
        """The snapshot directory of `repo` at its commit with `paths` in it, each checked
        against the hash the hub published for it. A file that fails is removed from the cache
        and downloaded once more; failing again fails the source, naming the file."""
        directory = self._snapshot(repo, paths)
        damaged = [path for path in paths if not intact(directory / path)]
        if damaged:
            for path in damaged:
                _warn(
                    f"{repo}: {path} does not match the hash the hub published for it; "
                    f"removed from the cache, downloading it again"
                )
                remove_from_cache(directory / path)
            directory = self._snapshot(repo, damaged)
            for path in damaged:
                if not intact(directory / path):
                    remove_from_cache(directory / path)
                    raise SourceError(
                        f"{repo}: {path} does not match the hash the hub published for it, "
                        f"also when downloaded again (removed from the cache)"
                    )
        return directory

    def _snapshot(self, repo, paths):
        from huggingface_hub import snapshot_download

        try:
            return Path(
                snapshot_download(
                    repo,
                    repo_type="dataset",
                    revision=self.resolved[repo],
                    allow_patterns=paths,
                    cache_dir=self.cache_dir,
                    tqdm_class=_silent_tqdm(),
                )
            )
        except (
            Exception
        ) as error:  # network, auth, missing revision, gave up waiting: reported per source
            raise SourceError(
                f"cannot download {repo} from the Hugging Face Hub: "
                f"{type(error).__name__}: {_first_line(error)}"
            ) from None


def _first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


@functools.cache
def _silent_tqdm():
    from huggingface_hub.utils import tqdm

    class Silent(tqdm):
        """huggingface_hub's progress bars, not shown: the compile has its own display."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": True})

    return Silent


def intact(path):
    """Whether the cached file at `path` (a link into the cache's blobs/, named by the hash the hub
    published: the sha256 of an LFS file, the git blob sha1 of any other) has that hash."""
    blob = path.resolve()
    if not blob.is_file():
        return False
    if re.fullmatch(r"[0-9a-f]{64}", blob.name):
        digest = hashlib.sha256()
    elif re.fullmatch(r"[0-9a-f]{40}", blob.name):
        digest = hashlib.sha1(b"blob %d\0" % blob.stat().st_size)
    else:
        raise SourceError(
            f"{path.name}: the hub published no hash to check it against (cache entry {blob})"
        )
    with open(blob, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest() == blob.name


def remove_from_cache(path):
    """Delete a cached file's blob and its snapshot link, so the next download fetches it anew."""
    path.resolve().unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def read_shard(directory, path, repo, config, split):
    """One parquet shard as an Arrow table whose strings are valid UTF-8, or a SourceError
    naming it."""
    try:
        # ParquetFile reads the one file's table without importing pyarrow.dataset, which
        # read_table imports (0.1 s of CPU at every compile's start).
        with pq.ParquetFile(directory / path) as shard:
            table = shard.read()
        table.validate(full=True)
    except (pa.ArrowException, OSError) as error:
        raise SourceError(f"{repo}: cannot read {path} (for {config}/{split}): {error}") from None
    return table


# The hub's rule for a README's front matter: at the very top (after blank space), a `---`
# line, the YAML, and a `---` line or the end. Written here rather than taken from
# huggingface_hub.repocard, whose import costs every compile, a mirror's too, 0.4 s of CPU.
FRONT_MATTER = re.compile(r"\A\s*---[\r\n]+(.*?)[\r\n]+---(?:\r?\n|\Z)", re.DOTALL)


def front_matter(directory, repo):
    """The YAML block at the top of the repository's README, as the hub delimits it (`---` on a
    line of its own), or {} when there is none."""
    readme = directory / "README.md"
    if not readme.is_file():
        return {}
    try:
        match = FRONT_MATTER.search(readme.read_text(encoding="utf-8"))
        front = yaml.safe_load(match.group(1)) if match else {}
    except UnicodeDecodeError as error:
        raise SourceError(f"{repo}: README.md is not UTF-8 ({error})") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" at line {where.line + 2}" if where else ""  # +2: 0-based, after the opening ---
        raise SourceError(
            f"{repo}: README.md front matter is not valid YAML{at}: "
            f"{getattr(error, 'problem', None) or error}"
        ) from None
    if not isinstance(front or {}, dict):
        raise SourceError(f"{repo}: README.md front matter is not a mapping of keys to values")
    return front or {}


def local_listing(directory):
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def data_file_patterns(directory, repo, config, split):
    """The files of `config`/`split` in a local repository directory, as paths relative to it
    (each a glob pattern matching only itself)."""
    return data_files(
        front_matter(directory, repo), local_listing(directory), repo, config, split, directory
    )


def data_files(front, listing, repo, config, split, directory):
    """The files of `config`/`split` among the `listing` of the repository in `directory`: from
    the `configs:` block of its README front matter, or without one, from the default layouts
    the hub recognises."""
    if "configs" in front:
        patterns = _configured_patterns(front["configs"], repo, config, split)
    else:
        listing = _without_metadata(listing)
        patterns = _default_patterns(listing, repo, config, split)
    matchers = [_glob(pattern) for pattern in patterns]
    files = [path for path in listing if any(m.match(path) for m in matchers)]
    if not files:
        raise SourceError(f"{repo}: no files match {patterns} for {config}/{split} in {directory}")
    return files


def _configs(block, repo):
    """{config name: [{"split": NAME, "path": PATTERN or [PATTERNS]}, ...]} from the `configs:`
    block of a README's front matter, or a SourceError saying it is not what the hub reads."""
    try:
        configs = {}
        for config in block:
            files = config["data_files"]
            if isinstance(files, (str, list)) and not (files and isinstance(files[0], dict)):
                files = [{"split": "train", "path": files}]
            configs[config["config_name"]] = [
                {"split": entry["split"], "path": entry["path"]} for entry in files
            ]
        return configs
    except (KeyError, TypeError, AttributeError, IndexError) as error:
        raise SourceError(
            f"{repo}: the configs block of README.md is not what the hub reads "
            f"({type(error).__name__}: {error})"
        ) from None


def _configured_patterns(block, repo, config, split):
    configs = _configs(block, repo)
    if config not in configs:
        raise SourceError(
            f"{repo}: no config {config!r} (has {', '.join(map(str, configs)) or 'none'})"
        )
    for entry in configs[config]:
        if entry["split"] == split:
            return [entry["path"]] if isinstance(entry["path"], str) else list(entry["path"])
    raise SourceError(
        f"{repo}: config {config!r} has no split {split!r} "
        f"(has {', '.join(str(e['split']) for e in configs[config])})"
    )


def _default_patterns(listing, repo, config, split):
    splits = _default_splits(listing, repo, config)
    if split not in splits:
        raise SourceError(
            f"{repo}: no split {split!r} in the {config!r} layout "
            f"(has {', '.join(map(str, splits)) or 'none'}; README.md has no configs block)"
        )
    return splits[split]


def _default_splits(listing, repo, config):
    """{split: its patterns} without a configs block. The hub then has one config, `default`; a
    config of another name is read from the directory of that name, as its files are laid out
    when there is a block. The splits come from `datasets`' own rules
    (data/train-00000-of-00001.parquet, train/..., test.parquet, ...)."""
    from datasets.data_files import _get_data_files_patterns

    base = f"{config}/" if any(path.startswith(f"{config}/") for path in listing) else ""
    if not base and config != "default":
        raise SourceError(
            f"{repo}: no config {config!r} (README.md has no configs block, and there "
            f"is no {config}/ directory)"
        )
    inside = [path[len(base) :] for path in listing if path.startswith(base)]
    try:
        splits = _get_data_files_patterns(
            lambda pattern: [p for p in inside if _glob(pattern).match(p)]
        )
    except (FileNotFoundError, ValueError):
        return {}
    return {
        str(split): [base + pattern for pattern in patterns] for split, patterns in splits.items()
    }


def _without_metadata(listing):
    """Not the README, other metadata or hidden files, which the default patterns never mean.
    (datasets takes a second or more to import: only repositories without configs need it.)"""
    from datasets.data_files import FILES_TO_IGNORE

    return [
        path
        for path in listing
        if path.split("/")[-1] not in FILES_TO_IGNORE
        and not any(part.startswith(".") for part in path.split("/"))
    ]


def _glob(pattern):
    """A data_files pattern as a regular expression, with fsspec's rules as the hub applies
    them: * and ? within one directory, ** across directories, [...] a class of characters."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] in "*?":
            out.append("[^/]*" if pattern[i] == "*" else "[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            members = pattern[i + 1 : end]
            out.append(
                "["
                + ("^" + members[1:] if members.startswith("!") else members).replace("\\", "\\\\")
                + "]"
            )
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")
