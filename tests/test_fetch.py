"""compiler/fetch.py: `nanotasks compile` from a hub: tests/fakehub.py serving data/sample (or a
changed copy) on 127.0.0.1, HF_ENDPOINT pointing at it, a fresh HF cache per test. Rate limits,
server errors, a connection cut midway, a stopped server with a warm cache, an unreachable hub,
damaged downloads, repositories without a configs block, broken READMEs. Each compile is a real
CLI subprocess."""

import hashlib
import logging
import os
import shutil
import socket

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nanotasks.compiler.fetch import Fetcher, SourceError, data_files
from nanotasks.store.reader import Store
from tests.conftest import SAMPLE, nanotasks
from tests.fakehub import FakeHub
from tests.helpers import SPLIT_NAMES, failures, sha256
from tests.reference import SPLITS

HUB_BENCHMARKS = (
    "arc",
    "mmlu",
    "gsm8k",
    "humaneval",
    "smoltalk",
)  # the word list comes from GitHub
GSM8K_MAIN_TEST = "openai/gsm8k/main/test-00000-of-00001.parquet"


@pytest.fixture
def hub():
    hub = FakeHub.start(SAMPLE)
    yield hub
    hub.stop()


@pytest.fixture
def env(hub, tmp_path):
    """The environment of a compile that asks `hub`, with an HF cache of its own."""
    return hub.environ(tmp_path / "hf-home")


def compile_from_hub(env, db, *args):
    only = (
        [f"--only={name}" for name in HUB_BENCHMARKS]
        if not any(a.startswith("--only") for a in args)
        else []
    )
    return nanotasks("compile", "--db", db, *only, *args, check=False, env=env, timeout=120)


def contents(db):
    """{(task, subset, split): (rows, sha256)}, and {repo: revisions} recorded."""
    splits = Store(db).splits()
    revisions = {}
    for s in splits:
        revisions.setdefault(s["repo"], set()).add(s["revision"])
    return {
        (s["task"], s["subset"], s["split"]): (s["rows"], s["sha256"]) for s in splits
    }, revisions


def same_as_sample(db, sample_db, hub, tasks=HUB_BENCHMARKS):
    """Every split in `db` is the sample compile's, read at the hub's commit of its repo."""
    ours, revisions = contents(db)
    theirs, _ = contents(sample_db)
    assert ours == {key: value for key, value in theirs.items() if key[0] in tasks}
    assert revisions == {repo: {hub.commit(repo)} for repo in revisions}


def blob(env, repo, path):
    """The cache's blob of `path` in `repo`, named by the hash the hub publishes for it."""
    content = (SAMPLE / repo / path).read_bytes()
    folder = "datasets--" + repo.replace("/", "--")
    return os.path.join(env["HF_HOME"], "hub", folder, "blobs", hashlib.sha256(content).hexdigest())


def test_cold_compile_equals_the_mirror_compile_except_revisions(hub, env, sample_db, tmp_path):
    result = compile_from_hub(env, tmp_path / "hub.db")
    assert result.returncode == 0, result.stderr
    same_as_sample(tmp_path / "hub.db", sample_db, hub)
    assert "Fetching" not in result.stderr and "%|" not in result.stderr  # no huggingface_hub bars
    trees = [path for method, path in hub.requests if "/tree/" in path and "openai/gsm8k" in path]
    assert len(trees) > 1  # the listing came in pages, and all were read
    assert any(path.startswith("/cdn/") for _, path in hub.requests)  # LFS files via the redirect


def test_the_real_data_from_a_hub_equals_the_mirror_compile(real_db, shared_hub, tmp_path):
    """../shared/hub served as a hub: GSM8K and HumanEval as they are on the hub (MMLU too, but
    it would take long)."""
    hub = FakeHub.start(shared_hub)
    try:
        result = compile_from_hub(
            hub.environ(tmp_path / "hf-home"),
            tmp_path / "hub.db",
            "--only",
            "gsm8k",
            "--only",
            "humaneval",
        )
    finally:
        hub.stop()
    assert result.returncode == 1  # ../shared/hub has no socratic/train
    ours, revisions = contents(tmp_path / "hub.db")
    theirs, _ = contents(real_db)
    assert ours == {key: value for key, value in theirs.items() if key[0] in ("gsm8k", "humaneval")}
    assert revisions == {repo: {hub.commit(repo)} for repo in revisions}


def test_a_pinned_commit_asks_the_hub_nothing_about_the_repository(hub, env, tmp_path):
    commit = hub.commit("openai/gsm8k")
    result = compile_from_hub(
        env, tmp_path / "x.db", "--only", "gsm8k", "--revision", f"openai/gsm8k={commit}"
    )
    assert result.returncode == 0, result.stderr
    assert not [
        path
        for _, path in hub.requests
        if path.startswith(("/api/datasets/openai/gsm8k/revision",))
        or path == "/api/datasets/openai/gsm8k"
    ]
    asked = len(hub.requests)  # again, now that the cache holds it all: not one request
    result = compile_from_hub(
        env, tmp_path / "y.db", "--only", "gsm8k", "--revision", f"openai/gsm8k={commit}"
    )
    assert result.returncode == 0, result.stderr
    assert hub.requests[asked:] == []


def test_rate_limits_on_metadata_are_waited_out_as_the_hub_asks(hub, env, sample_db, tmp_path):
    hub.fail(3, status=429, retry_after=1, prefix="/api/datasets/")
    result = compile_from_hub(env, tmp_path / "x.db", "--only", "gsm8k")
    assert result.returncode == 0, result.stderr
    waits = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("hub: rate limited (429) at ")
    ]
    assert len(waits) == 3
    assert all(
        line.endswith(": waiting 1.0 s as the server asked before retry " + line[-1])
        for line in waits
    )
    same_as_sample(tmp_path / "x.db", sample_db, hub, ("gsm8k",))


def test_rate_limits_and_server_errors_on_files_are_retried_with_backoff(
    hub, env, sample_db, tmp_path
):
    hub.fail(1, status=429, prefix="/datasets/")  # the HEAD of a file on the hub
    hub.fail(2, status=503, prefix="/cdn/")  # the download itself, after the redirect
    result = compile_from_hub(env, tmp_path / "x.db", "--only", "gsm8k")
    assert result.returncode == 0, result.stderr
    assert "hub: rate limited (429) at " in result.stderr
    assert result.stderr.count("hub: unavailable (503) at ") == 2
    same_as_sample(tmp_path / "x.db", sample_db, hub, ("gsm8k",))


def test_credentials_in_hf_endpoint_are_never_printed(hub, env, tmp_path):
    """HF_ENDPOINT=http://user:secret@host: the retry notices and the failure name the URL
    with its user and password as ***."""
    env = {**env, "HF_ENDPOINT": hub.endpoint.replace("http://", "http://someone:secret@")}
    hub.fail(1000, status=503, retry_after=0, prefix="/api/datasets/openai/gsm8k")
    result = compile_from_hub(env, tmp_path / "x.db", "--only", "gsm8k", "--max-wait", "0.1")
    assert result.returncode == 1
    assert "secret" not in result.stdout + result.stderr and "someone" not in result.stderr
    redacted = hub.endpoint.replace("http://", "http://***@")
    assert f"hub: unavailable (503) at {redacted}/api/datasets/openai/gsm8k" in result.stderr
    [line] = failures(result.stderr)
    assert f"(GaveUp: unavailable (503) at {redacted}/api/datasets/openai/gsm8k" in line


def test_a_connection_cut_midway_through_a_file_is_resumed(hub, env, sample_db, tmp_path):
    hub.drop(GSM8K_MAIN_TEST, times=2)
    result = compile_from_hub(env, tmp_path / "x.db", "--only", "gsm8k")
    assert result.returncode == 0, result.stderr
    same_as_sample(tmp_path / "x.db", sample_db, hub, ("gsm8k",))
    downloads = [
        path for method, path in hub.requests if method == "GET" and path.startswith("/cdn/")
    ]
    assert len(downloads) == 4 + 2  # four shards, one of them twice more


def test_waiting_stops_at_max_wait_and_the_repository_fails_once(hub, env, tmp_path):
    hub.fail(1000, status=429, retry_after=30, prefix="/api/datasets/openai/gsm8k")
    result = compile_from_hub(
        env, tmp_path / "x.db", "--only", "gsm8k", "--only", "humaneval", "--max-wait", "5"
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = failures(result.stderr)  # one line for the four splits of the repository
    assert line.startswith(
        "failed: gsm8k main/test, gsm8k main/train, gsm8k socratic/test, gsm8k socratic/train: "
        "cannot download openai/gsm8k from the Hugging Face Hub: the hub cannot be reached "
        "(GaveUp: rate limited (429) at "
    )
    assert (
        "waiting 30 s more would pass the limit of 5 s on waiting for the hub (--max-wait)" in line
    )
    assert [s["task"] for s in Store(tmp_path / "x.db").splits()] == ["humaneval"]


def test_the_word_list_is_retried_and_its_hash_recorded(hub, caplog):
    hub.fail(2, status=502, prefix="/raw/")
    with caplog.at_level(logging.WARNING, logger="nanotasks"), Fetcher(max_wait=10) as fetcher:
        content, revision = fetcher.file(
            f"{hub.endpoint}/raw/dwyl/english-words/words_alpha.txt", "unused"
        )
    assert content == (SAMPLE / "dwyl/english-words/words_alpha.txt").read_bytes()
    assert revision == "sha256:" + hashlib.sha256(content).hexdigest()
    assert [r.getMessage().split(" at ")[0] for r in caplog.records] == [
        "hub: bad gateway (502)"
    ] * 2


def test_the_word_list_fails_by_name_when_waiting_runs_out(hub):
    hub.fail(5, status=503, retry_after=9, prefix="/raw/")
    with (
        Fetcher(max_wait=1) as fetcher,
        pytest.raises(SourceError, match=r"cannot download .*/raw/dwyl.*--max-wait"),
    ):
        fetcher.file(f"{hub.endpoint}/raw/dwyl/english-words/words_alpha.txt", "unused")


def test_retry_after_zero_forever_still_runs_out(hub):
    hub.fail(10_000, status=429, retry_after=0, prefix="/raw/")
    with Fetcher(max_wait=0.5) as fetcher, pytest.raises(SourceError, match="--max-wait"):
        fetcher.file(f"{hub.endpoint}/raw/dwyl/english-words/words_alpha.txt", "unused")
    assert len(hub.requests) <= 6  # 0.1 s at least each time


def test_a_warm_cache_compiles_with_the_hub_stopped(hub, env, sample_db, tmp_path):
    assert compile_from_hub(env, tmp_path / "cold.db").returncode == 0
    hub.stop()
    result = compile_from_hub(env, tmp_path / "warm.db")
    assert result.returncode == 0, result.stderr
    same_as_sample(tmp_path / "warm.db", sample_db, hub)
    commit = hub.commit("openai/gsm8k")
    assert ("openai/gsm8k: the hub cannot be reached (ConnectError: ") in result.stderr
    assert f"; reading commit {commit} from the cache, as last resolved there" in result.stderr


def test_a_warm_cache_compiles_with_hf_hub_offline_and_asks_nothing(hub, env, sample_db, tmp_path):
    assert compile_from_hub(env, tmp_path / "cold.db", "--only", "gsm8k").returncode == 0
    asked = len(hub.requests)
    result = compile_from_hub(
        {**env, "HF_HUB_OFFLINE": "1"}, tmp_path / "warm.db", "--only", "gsm8k"
    )
    assert result.returncode == 0, result.stderr
    assert len(hub.requests) == asked
    assert "openai/gsm8k: HF_HUB_OFFLINE is set; reading commit " in result.stderr
    same_as_sample(tmp_path / "warm.db", sample_db, hub, ("gsm8k",))


def test_a_cold_cache_with_hf_hub_offline_fails_once_per_repository(env, tmp_path):
    result = compile_from_hub({**env, "HF_HUB_OFFLINE": "1"}, tmp_path / "x.db", "--only", "gsm8k")
    assert result.returncode == 1
    [line] = failures(result.stderr)
    assert line.endswith(
        "cannot download openai/gsm8k from the Hugging Face Hub: HF_HUB_OFFLINE is set, and "
        f"the cache ({env['HF_HOME']}/hub) has no commit of it to fall back on"
    )


def test_a_shard_damaged_in_transfer_is_downloaded_again(hub, env, sample_db, tmp_path):
    hub.corrupt(GSM8K_MAIN_TEST, times=1)
    result = compile_from_hub(env, tmp_path / "x.db", "--only", "gsm8k")
    assert result.returncode == 0, result.stderr
    assert (
        "openai/gsm8k: main/test-00000-of-00001.parquet does not match the hash the hub "
        "published for it; removed from the cache, downloading it again"
    ) in result.stderr
    same_as_sample(tmp_path / "x.db", sample_db, hub, ("gsm8k",))


def test_a_shard_damaged_every_time_is_never_stored_and_fails_by_name(
    hub, env, sample_db, tmp_path
):
    hub.corrupt(GSM8K_MAIN_TEST)
    result = compile_from_hub(env, tmp_path / "x.db", "--only", "gsm8k")
    assert result.returncode == 1
    assert failures(result.stderr) == [
        "failed: gsm8k main/test: openai/gsm8k: main/test-00000-of-00001.parquet "
        "does not match the hash the hub published for it, also when downloaded again "
        "(removed from the cache)"
    ]
    ours, _ = contents(tmp_path / "x.db")
    assert set(ours) == {
        ("gsm8k", "main", "train"),
        ("gsm8k", "socratic", "test"),
        ("gsm8k", "socratic", "train"),
    }
    assert not os.path.exists(blob(env, "openai/gsm8k", "main/test-00000-of-00001.parquet"))


def test_a_damaged_blob_left_in_the_cache_is_healed(hub, env, sample_db, tmp_path):
    assert compile_from_hub(env, tmp_path / "cold.db", "--only", "gsm8k").returncode == 0
    cached = blob(env, "openai/gsm8k", "main/test-00000-of-00001.parquet")
    damaged = bytearray(open(cached, "rb").read())
    damaged[len(damaged) // 2] ^= 0xFF
    os.chmod(cached, 0o644)
    with open(cached, "wb") as f:
        f.write(damaged)
    result = compile_from_hub(env, tmp_path / "x.db", "--only", "gsm8k")
    assert result.returncode == 0, result.stderr
    assert (
        "main/test-00000-of-00001.parquet does not match the hash the hub published"
        in result.stderr
    )
    same_as_sample(tmp_path / "x.db", sample_db, hub, ("gsm8k",))
    assert hashlib.sha256(open(cached, "rb").read()).hexdigest() == os.path.basename(cached)


@pytest.fixture
def changed_hub(tmp_path):
    """A hub serving a copy of data/sample that a test changes first; started by calling it."""
    mirror = shutil.copytree(SAMPLE, tmp_path / "mirror")
    hubs = []

    def start():
        hubs.append(FakeHub.start(mirror))
        return hubs[-1]

    yield mirror, start
    for hub in hubs:
        hub.stop()


def hub_env(hub, env):
    return {**env, "HF_ENDPOINT": hub.endpoint}


def test_repositories_without_a_configs_block_resolve_their_splits_as_the_hub_does(
    changed_hub, env, sample_db, tmp_path
):
    mirror, start = changed_hub
    (
        mirror / "openai/gsm8k/README.md"
    ).unlink()  # main/train-*.parquet, ...: a config per directory
    (mirror / "HuggingFaceTB/smol-smoltalk/README.md").write_text(
        "# SmolTalk\n\nNo front matter at all.\n"
    )
    hub = start()
    result = compile_from_hub(
        hub_env(hub, env), tmp_path / "hub.db", "--only", "gsm8k", "--only", "smoltalk"
    )
    assert result.returncode == 0, result.stderr
    same_as_sample(tmp_path / "hub.db", sample_db, hub, ("gsm8k", "smoltalk"))
    result = nanotasks(
        "compile",
        "--mirror",
        mirror,
        "--only",
        "gsm8k",
        "--only",
        "smoltalk",
        "--db",
        tmp_path / "mirror.db",
    )
    assert contents(tmp_path / "mirror.db")[0] == contents(tmp_path / "hub.db")[0]


LAYOUTS = {  # a repository's files -> {split: its files}, as datasets resolves them without configs
    "sharded": (
        [
            "data/train-00000-of-00002.parquet",
            "data/train-00001-of-00002.parquet",
            "data/test-00000-of-00001.parquet",
            ".gitattributes",
            "README.md",
        ],
        {
            "train": ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"],
            "test": ["data/test-00000-of-00001.parquet"],
        },
    ),
    "split files": (
        ["train.parquet", "validation.parquet", "test.parquet", "README.md"],
        {
            "train": ["train.parquet"],
            "validation": ["validation.parquet"],
            "test": ["test.parquet"],
        },
    ),
    "split directories": (
        ["train/a.parquet", "train/b.parquet", "dev/a.parquet"],
        {"train": ["train/a.parquet", "train/b.parquet"], "validation": ["dev/a.parquet"]},
    ),
    "one file": (["everything.parquet", "README.md"], {"train": ["everything.parquet"]}),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_splits_without_configs_follow_the_default_layouts(layout):
    listing, expected = LAYOUTS[layout]
    for split, files in expected.items():
        assert data_files({}, listing, "org/repo", "default", split, "dir") == files
    with pytest.raises(
        SourceError, match=r"org/repo: no split 'nonesuch' in the 'default' layout \(has "
    ):
        data_files({}, listing, "org/repo", "default", "nonesuch", "dir")


FRONT_MATTER_WITH_DASHES = """---
pretty_name: "GSM8K --- grade school math"
description: |
  Rows of the form question --- answer.
  ---
  The line above is inside a value.
configs:
- config_name: main
  data_files:
  - split: train
    path: main/train-*
  - split: test
    path: main/test-*
- config_name: socratic
  data_files:
  - split: train
    path: socratic/train-*
  - split: test
    path: socratic/test-*
---

# GSM8K --- the card
"""


def test_dashes_inside_front_matter_values_are_values(changed_hub, env, sample_db, tmp_path):
    mirror, start = changed_hub
    (mirror / "openai/gsm8k/README.md").write_text(FRONT_MATTER_WITH_DASHES)
    hub = start()
    result = compile_from_hub(hub_env(hub, env), tmp_path / "x.db", "--only", "gsm8k")
    assert result.returncode == 0, result.stderr
    same_as_sample(tmp_path / "x.db", sample_db, hub, ("gsm8k",))


BROKEN_READMES = {
    "YAML": (
        "---\nconfigs: [main\n---\n",
        "openai/gsm8k: README.md front matter is not valid YAML at line 2: ",
    ),
    "UTF-8": (b"---\npretty_name: \xff\xfe\n---\n", "openai/gsm8k: README.md is not UTF-8 ("),
    "configs": (
        "---\nconfigs:\n- main\n---\n",
        "openai/gsm8k: the configs block of README.md is not what the hub reads",
    ),
}


@pytest.mark.parametrize("how", BROKEN_READMES)
@pytest.mark.parametrize("where", ["hub", "mirror"])
def test_a_broken_readme_fails_its_repository_by_name_and_the_rest_is_written(
    how, where, changed_hub, env, tmp_path
):
    mirror, start = changed_hub
    readme, message = BROKEN_READMES[how]
    path = mirror / "openai/gsm8k/README.md"
    path.write_bytes(readme.encode() if isinstance(readme, str) else readme)
    args = ("--only", "gsm8k", "--only", "humaneval")
    if where == "hub":
        result = compile_from_hub(hub_env(start(), env), tmp_path / "x.db", *args)
    else:
        result = nanotasks(
            "compile", "--mirror", mirror, "--db", tmp_path / "x.db", *args, check=False
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = failures(result.stderr)
    assert line.startswith(
        "failed: gsm8k main/test, gsm8k main/train, gsm8k socratic/test, gsm8k socratic/train: "
        + message
    ), line
    assert [s["task"] for s in Store(tmp_path / "x.db").splits()] == ["humaneval"]


def test_a_shard_with_bad_utf8_fails_its_source_by_name(tmp_path):
    mirror = shutil.copytree(SAMPLE, tmp_path / "mirror")
    shard = mirror / GSM8K_MAIN_TEST
    table = pq.read_table(shard)
    questions = pa.array([b"\xff\xfe not UTF-8"] * table.num_rows, pa.binary()).view(pa.string())
    pq.write_table(
        table.set_column(table.schema.get_field_index("question"), "question", questions), shard
    )
    result = nanotasks(
        "compile", "--mirror", mirror, "--only", "gsm8k", "--db", tmp_path / "x.db", check=False
    )
    assert result.returncode == 1
    [line] = failures(result.stderr)
    assert line.startswith(
        "failed: gsm8k main/test: openai/gsm8k: cannot read main/test-00000-of-00001.parquet "
        "(for main/test): "
    ), line
    assert "UTF8" in line or "UTF-8" in line
    assert len(Store(tmp_path / "x.db").splits()) == 3


def test_a_chat_dataset_from_the_hub_without_configs_and_rate_limited(changed_hub, env, tmp_path):
    """--chat through the same fetching: its splits listed from the default layout (no README),
    a 429 on its listing waited out, the rows those of the --mirror compile."""
    mirror, start = changed_hub
    (mirror / "nanotasks/chat-openai/README.md").unlink()
    hub = start()
    hub.fail(1, status=429, retry_after=1, prefix="/api/datasets/nanotasks/chat-openai/tree/")
    result = compile_from_hub(
        hub_env(hub, env),
        tmp_path / "hub.db",
        "--only",
        "chat",
        "--chat",
        "assistant=nanotasks/chat-openai",
    )
    assert result.returncode == 0, result.stderr
    assert "hub: rate limited (429) at " in result.stderr
    nanotasks(
        "compile",
        "--mirror",
        mirror,
        "--only",
        "chat",
        "--chat",
        "assistant=nanotasks/chat-openai",
        "--db",
        tmp_path / "mirror.db",
    )
    ours, revisions = contents(tmp_path / "hub.db")
    assert ours == contents(tmp_path / "mirror.db")[0]
    assert set(ours) == {("chat", "assistant", "train"), ("chat", "assistant", "test")}
    assert revisions == {"nanotasks/chat-openai": {hub.commit("nanotasks/chat-openai")}}


@pytest.fixture
def offline(tmp_path):
    """Environment for a compile that reaches no network: the hub endpoint and any proxy are a
    local port nothing listens on (refused at once), and no cache to fall back on."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("HF_") and "proxy" not in k.lower()
        }
        env.update(
            HF_ENDPOINT=url,
            HF_HOME=str(tmp_path / "hf-home"),
            HF_HUB_ETAG_TIMEOUT="5",
            HF_HUB_DOWNLOAD_TIMEOUT="5",
            http_proxy=url,
            https_proxy=url,
            HTTP_PROXY=url,
            HTTPS_PROXY=url,
        )
        yield env


def test_unreachable_hub_fails_each_source_by_name(offline, tmp_path):
    db = tmp_path / "nanotasks.db"
    result = nanotasks("compile", "--db", db, check=False, env=offline, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = failures(result.stderr)
    repos = {repo for repo, *_ in SPLITS.values()}
    assert len(lines) == len(repos) + 2  # one line per repository, not one per split
    for repo in repos:
        names = ", ".join(
            name for key, name in sorted(SPLIT_NAMES.items()) if SPLITS[key][0] == repo
        )
        assert (
            f"failed: {names}: cannot download {repo} from the Hugging Face Hub: " in result.stderr
        ), repo
    assert any(
        line.startswith(
            "failed: words_alpha.txt: cannot download https://raw.githubusercontent.com/"
        )
        for line in lines
    )
    assert "failed: core: cannot download https://karpathy-public.s3" in result.stderr
    assert "nothing was written" in result.stdout
    assert not db.exists() and list(tmp_path.glob("nanotasks.db*")) == []


def test_unreachable_hub_keeps_the_previous_file(offline, sample_db, tmp_path):
    db = shutil.copy(sample_db, tmp_path / "nanotasks.db")
    result = nanotasks(
        "compile",
        "--only",
        "humaneval",
        "--revision",
        "openai/openai_humaneval=0123abc",
        "--db",
        db,
        check=False,
        env=offline,
        timeout=120,
    )
    assert result.returncode == 1
    assert failures(result.stderr) == [
        line
        for line in failures(result.stderr)
        if line.startswith(
            "failed: humaneval openai_humaneval/test (kept the previous copy): "
            "cannot download openai/openai_humaneval from the Hugging Face Hub"
        )
    ]
    assert len(failures(result.stderr)) == 1
    assert sha256(db) == sha256(sample_db)
