"""Getting source data onto this machine: from the Hugging Face Hub, or from a local mirror
with the hub repositories' own layout. Either way the result is a directory laid out like
the hub repository, and everything after this module reads it the same way.

Rows are read from the parquet shards directly with pyarrow, never through the `datasets`
cache: that cache is keyed by repository name, and can return an earlier directory's rows
for a snapshot of the same name.
"""

import hashlib
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml


class SourceError(Exception):
    """A source that cannot be read: says which one, and why."""


class Fetcher:
    """Resolves repositories to snapshot directories, once per repository per compile."""

    def __init__(self, mirror=None, revisions=None, cache_dir=None):
        self.mirror = Path(mirror) if mirror else None
        self.revisions = dict(revisions or {})
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.resolved = {}  # repo -> commit sha (None for a mirror)
        self.unreachable = {}  # repo -> SourceError: asked once, not again for each split

    def split_table(self, repo, config, split):
        """The rows of `repo`'s `config`/`split` as one Arrow table, in source order, and the
        commit they were read at (None for a mirror)."""
        directory = self._snapshot(repo, ["README.md"])
        patterns = data_file_patterns(directory, repo, config, split)
        directory = self._snapshot(repo, patterns)
        files = sorted({path for pattern in patterns for path in directory.glob(pattern)})
        if not files:
            raise SourceError(f"{repo}: no files match {patterns} for {config}/{split} in {directory}")
        try:
            table = pa.concat_tables(pq.read_table(path) for path in files)
        except (pa.ArrowException, OSError) as error:  # a damaged shard, or shards that disagree
            raise SourceError(f"{repo}: cannot read {config}/{split} from {directory}: {error}") from None
        return table, self.resolved[repo]

    def splits(self, repo, config=None):
        """`config` and the names of its splits, in the order `repo`'s README declares them.
        Without a config: the repository's only one, or the one named default."""
        configs = read_configs(self._snapshot(repo, ["README.md"]), repo)
        if config is None:
            if len(configs) != 1 and "default" not in configs:
                raise SourceError(f"{repo} has configs {', '.join(configs)}: name one, as {repo}:CONFIG")
            config = next(iter(configs)) if len(configs) == 1 else "default"
        if config not in configs:
            raise SourceError(f"{repo}: no config {config!r} (has {', '.join(configs) or 'none'})")
        return config, [entry["split"] for entry in configs[config]]

    def file(self, url, mirror_path):
        """A single file's bytes, and the revision to record (None for a mirror)."""
        if self.mirror:
            path = self.mirror / mirror_path
            if not path.is_file():
                raise SourceError(f"mirror has no {mirror_path} (looked for {path})")
            return path.read_bytes(), None
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                content = response.read()
        except OSError as error:
            raise SourceError(f"cannot download {url}: {error}") from None
        return content, "sha256:" + hashlib.sha256(content).hexdigest()

    def _snapshot(self, repo, patterns):
        if self.mirror:
            directory = self.mirror / repo
            if not directory.is_dir():
                raise SourceError(f"mirror has no {repo} (looked for {directory})")
            self.resolved[repo] = None
            return directory
        from huggingface_hub import HfApi, snapshot_download
        if repo in self.unreachable:
            raise self.unreachable[repo]
        try:
            if repo not in self.resolved:
                revision = self.revisions.get(repo)
                self.resolved[repo] = HfApi().dataset_info(repo, revision=revision).sha
            return Path(snapshot_download(repo, repo_type="dataset", revision=self.resolved[repo],
                                          allow_patterns=patterns, cache_dir=self.cache_dir))
        except Exception as error:  # network, auth, missing revision: all reported per source
            failure = SourceError(f"cannot download {repo} from the Hugging Face Hub: "
                                  f"{type(error).__name__}: {error}")
            if repo not in self.resolved:
                self.unreachable[repo] = failure
            raise failure from None


def data_file_patterns(directory, repo, config, split):
    """The file patterns of `config`/`split`, from the `configs:` block of the repository's
    README front matter, as the hub itself reads them."""
    configs = read_configs(directory, repo)
    if config not in configs:
        raise SourceError(f"{repo}: no config {config!r} (has {', '.join(configs) or 'none'})")
    for entry in configs[config]:
        if entry["split"] == split:
            return [entry["path"]] if isinstance(entry["path"], str) else list(entry["path"])
    raise SourceError(f"{repo}: config {config!r} has no split {split!r} "
                      f"(has {', '.join(e['split'] for e in configs[config])})")


def read_configs(directory, repo):
    """{config name: [{"split": NAME, "path": PATTERN or [PATTERNS]}, ...]} from the `configs:`
    block of the README front matter in `directory`."""
    readme = directory / "README.md"
    if not readme.is_file():
        raise SourceError(f"{repo}: no README.md in {directory}, so no configs to read")
    text = readme.read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---")[1]) if text.startswith("---") else None
    configs = {}
    for config in (front or {}).get("configs", []):
        data_files = config["data_files"]
        if isinstance(data_files, (str, list)) and not (data_files and isinstance(data_files[0], dict)):
            data_files = [{"split": "train", "path": data_files}]
        configs[config["config_name"]] = data_files
    return configs
