"""`nanotasks compile --chat NAME=org/repo[:config]`: chat datasets of either layout from the
sample mirror, stored with their provenance, read back with Chat, and refused (named) when
they are not chat data. Each compile is a real CLI subprocess."""

import json
import shutil
import sqlite3

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nanotasks.compiler.build import BadRequest, check_request, first_nulls, narrowed
from nanotasks.store.reader import NotInStore, Store
from nanotasks.tasks.chat import Chat, columns
from nanotasks.tasks.common import Source, TaskMixture, UnknownLayout
from nanotasks.tasks.gsm8k import GSM8K
from tests.conftest import SAMPLE, built_once, invoke
from tests.reference import order

OPENAI = "nanotasks/chat-openai"
SHAREGPT = "nanotasks/chat-sharegpt"
CHATS = ["--chat", f"assistant={OPENAI}", "--chat", f"tutor={SHAREGPT}:en"]
ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def source_rows(repo, folder, split="train"):
    return pq.read_table(SAMPLE / repo / folder / f"{split}-00000-of-00001.parquet").to_pylist()


def openai_conversation(row):
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]]}


def sharegpt_conversation(row):
    return {
        "messages": [
            {"role": ROLES[m["from"]], "content": m["value"]} for m in row["conversations"]
        ]
    }


def fails(*args, status=1):
    """Run a command that must fail; returns its last line of error (there is no traceback)."""
    result = invoke(*args)
    assert result.returncode == status, result
    assert "Traceback" not in result.stdout + result.stderr
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def chat_db(tmp_path_factory):
    """data/sample compiled with both sample chat datasets."""

    def build(directory):
        invoke("compile", "--mirror", SAMPLE, *CHATS, "--db", directory / "chat.db", check=True)

    return built_once(tmp_path_factory, "chat", build) / "chat.db"


def stored(db, subset, split):
    return list(Chat(subset, split, db=db))


def test_openai_style_every_split_in_source_order(chat_db):
    for split in ("train", "test"):
        rows = source_rows(OPENAI, "data", split)
        assert stored(chat_db, "assistant", split) == [openai_conversation(row) for row in rows]
    with sqlite3.connect(chat_db) as connection:
        subjects = connection.execute(
            "SELECT source_row, subject FROM examples WHERE task = 'chat' "
            "AND subset = 'assistant' AND split = 'train' ORDER BY position"
        ).fetchall()
    # The source column is the subject (a null source: none); the id column is dropped.
    assert subjects == [(i, row["source"]) for i, row in enumerate(source_rows(OPENAI, "data"))]
    assert subjects[2] == (2, None)


def test_sharegpt_style_roles_mapped_and_category_as_subject(chat_db):
    rows = source_rows(SHAREGPT, "en")
    assert stored(chat_db, "tutor", "train") == [sharegpt_conversation(row) for row in rows]
    assert stored(chat_db, "tutor", "train")[1]["messages"][0]["role"] == "system"
    with sqlite3.connect(chat_db) as connection:
        subjects = connection.execute(
            "SELECT subject FROM examples WHERE task = 'chat' AND subset = 'tutor' "
            "ORDER BY position"
        ).fetchall()
    assert [s for (s,) in subjects] == [row["category"] for row in rows]


def test_provenance_in_splits_and_info(chat_db):
    info = json.loads(invoke("info", "--json", "--db", chat_db).stdout)
    chat = {(s["subset"], s["split"]): s for s in info["splits"] if s["task"] == "chat"}
    assert {
        key: (s["repo"], s["config"], s["source_split"], s["revision"]) for key, s in chat.items()
    } == {
        ("assistant", "test"): (OPENAI, "default", "test", None),
        ("assistant", "train"): (OPENAI, "default", "train", None),
        ("tutor", "train"): (SHAREGPT, "en", "train", None),
    }
    table = invoke("info", "--db", chat_db).stdout
    assert any(
        line.split()[:3] == ["chat", "tutor", "train"] and f"{SHAREGPT}:en" in line.split()
        for line in table.splitlines()
    )


def test_chat_shuffle_stores_the_seed_42_order(tmp_path):
    db = tmp_path / "shuffled.db"
    invoke(
        "compile",
        "--only",
        "chat",
        "--mirror",
        SAMPLE,
        *CHATS,
        "--chat-shuffle",
        "--db",
        db,
        check=True,
    )
    rows = source_rows(OPENAI, "data")
    assert stored(db, "assistant", "train") == [
        openai_conversation(rows[i]) for i in order(len(rows))
    ]


def test_chat_reads_like_any_task(chat_db):
    task = Chat(name="tutor", split="train", db=chat_db, start=1)
    assert task.eval_type == "generative" and len(task) == 3
    mixture = TaskMixture([Chat("assistant", db=chat_db), GSM8K("main", "train", db=chat_db)])
    assert len(mixture) == 5 + 8
    assert (
        sum(conversation in stored(chat_db, "assistant", "train") for conversation in mixture) == 5
    )
    shown = invoke("show", "chat", "train", "1", "--subset", "tutor", "--db", chat_db).stdout
    assert shown.startswith("[system]\nYou are a helpful programming tutor.")
    with pytest.raises(NotInStore) as error:
        Chat("tutor", "test", db=chat_db)
    assert "--chat tutor=org/repo" in str(error.value)


def test_overlaps_find_a_gsm8k_test_question_in_a_chat_dataset(chat_db):
    """The sample's ShareGPT en train repeats a GSM8K test question (source row 0) word for word."""
    summary = {
        f"{s['task']} {s['subset']}/{s['split']}": s
        for s in json.loads(invoke("overlap", "--json", "--db", chat_db).stdout)["splits"]
    }
    for subset in ("main", "socratic"):
        assert summary[f"gsm8k {subset}/test"]["found_in"] == [
            {"task": "chat", "subset": "tutor", "split": "train", "exact": 1, "ngram": 0}
        ]
    with sqlite3.connect(chat_db) as connection:
        [(source_row,)] = connection.execute(
            "SELECT DISTINCT t.source_row FROM overlaps JOIN examples t ON t.id = train_id "
            "WHERE t.task = 'chat'"
        ).fetchall()
    assert source_row == 0


def test_only_chat_leaves_everything_else_as_a_full_compile_would(sample_db, chat_db, tmp_path):
    db = tmp_path / "added.db"
    shutil.copyfile(sample_db, db)
    result = invoke("compile", "--only", "chat", *CHATS, "--db", db, "--mirror", SAMPLE, check=True)
    assert [line.split()[0] for line in result.stdout.splitlines()[2:-1]].count("chat") == 3
    assert db.read_bytes() == chat_db.read_bytes()  # the same file as compiling everything at once
    # Kept on recompiles that do not name them.
    invoke("compile", "--only", "gsm8k", "--mirror", SAMPLE, "--db", db, check=True)
    assert db.read_bytes() == chat_db.read_bytes()


def test_a_name_compiled_again_replaces_all_of_its_splits(chat_db, tmp_path):
    db = tmp_path / "renamed.db"
    shutil.copyfile(chat_db, db)
    invoke(
        "compile",
        "--only",
        "chat",
        "--chat",
        f"assistant={SHAREGPT}:fr",
        "--mirror",
        SAMPLE,
        "--db",
        db,
        check=True,
    )
    splits = {
        (s["subset"], s["split"]): s["config"] for s in Store(db).splits() if s["task"] == "chat"
    }
    assert splits == {
        ("assistant", "train"): "fr",
        ("tutor", "train"): "en",
    }  # no assistant/test left


def mirror_with_chat(tmp_path, table):
    """The sample's chat-openai repository with its train split replaced by `table`."""
    mirror = tmp_path / "mirror"
    shutil.copytree(SAMPLE / OPENAI, mirror / OPENAI)
    pq.write_table(table, mirror / OPENAI / "data/train-00000-of-00001.parquet")
    return mirror


def test_another_layout_is_refused_naming_its_columns(sample_db, tmp_path):
    mirror = mirror_with_chat(tmp_path, pa.table({"prompt": ["Hi"], "response": ["Hello!"]}))
    db = tmp_path / "x.db"
    shutil.copyfile(sample_db, db)
    error = fails(
        "compile", "--only", "chat", "--chat", f"mine={OPENAI}", "--mirror", mirror, "--db", db
    )
    assert error.startswith(
        f"Error: nothing was written: {OPENAI} default/train has columns prompt, response: "
    )
    assert "`messages` column" in error and "`conversations` column" in error
    assert db.read_bytes() == sample_db.read_bytes()


def test_messages_without_role_and_content_are_refused(tmp_path):
    messages = pa.array([[{"speaker": "user", "text": "Hi"}]])
    mirror = mirror_with_chat(tmp_path, pa.table({"messages": messages}))
    error = fails(
        "compile",
        "--only",
        "chat",
        "--chat",
        f"mine={OPENAI}",
        "--mirror",
        mirror,
        "--db",
        tmp_path / "x.db",
    )
    assert "column messages is list<element: struct<speaker: string, text: string>>" in error
    assert "not a list of {role, content}" in error
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(
    "messages, reason",
    [
        ([("user", "Hi"), ("user", "Hello?")], "message 1 has role 'user', expected 'assistant'"),
        ([("user", "Hi")], "1 user/assistant message(s), need at least 2"),
        (
            [("system", "Be brief."), ("assistant", "Hi"), ("user", "Hello")],
            "message 1 has role 'assistant', expected 'user'",
        ),
    ],
)
def test_a_bad_row_is_named_with_repo_config_split_and_row(sample_db, tmp_path, messages, reason):
    rows = source_rows(OPENAI, "data")
    rows[3]["messages"] = [{"role": role, "content": content} for role, content in messages]
    table = pa.Table.from_pylist(
        rows, schema=pq.read_schema(SAMPLE / OPENAI / "data/train-00000-of-00001.parquet")
    )
    db = tmp_path / "x.db"
    shutil.copyfile(sample_db, db)
    error = fails(
        "compile",
        "--only",
        "chat",
        "--chat",
        f"mine={OPENAI}",
        "--mirror",
        mirror_with_chat(tmp_path, table),
        "--db",
        db,
    )
    assert f"bad source row: {OPENAI} default/train row 3 (for chat mine/train): {reason}" in error
    assert db.read_bytes() == sample_db.read_bytes()


def test_sharegpt_from_other_than_human_gpt_system_is_a_bad_row(tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(SAMPLE / SHAREGPT, mirror / SHAREGPT)
    path = mirror / SHAREGPT / "en/train-00000-of-00001.parquet"
    table = pq.read_table(path)
    rows = table.to_pylist()
    rows[2]["conversations"][1]["from"] = "bot"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    error = fails(
        "compile",
        "--only",
        "chat",
        "--chat",
        f"t={SHAREGPT}:en",
        "--mirror",
        mirror,
        "--db",
        tmp_path / "x.db",
    )
    assert (
        f"{SHAREGPT} en/train row 2 (for chat t/train): "
        "message 1 has role 'bot', expected 'assistant'" in error
    )


def test_a_config_is_needed_where_there_are_several_and_no_default(tmp_path):
    db = tmp_path / "x.db"
    result = invoke(
        "compile",
        "--only",
        "chat",
        "--chat",
        f"t={SHAREGPT}",
        "--chat",
        f"a={OPENAI}",
        "--mirror",
        SAMPLE,
        "--db",
        db,
        check=False,
    )
    assert result.returncode == 1
    assert (
        f"failed: chat t: {SHAREGPT} has configs en, fr: name one, as {SHAREGPT}:CONFIG"
        in result.stderr
    )
    assert {s["subset"] for s in Store(db).splits()} == {"a"}  # the rest is written
    assert "no config 'de' (has en, fr)" in fails(
        "compile",
        "--only",
        "chat",
        "--chat",
        f"t={SHAREGPT}:de",
        "--mirror",
        SAMPLE,
        "--db",
        tmp_path / "y.db",
    )


@pytest.mark.parametrize(
    "args, error",
    [
        (["--chat", "mine=just-a-name"], "'just-a-name' is not of the form org/repo[:config]"),
        (["--chat", f"mine={OPENAI}:"], "is not of the form org/repo[:config]"),
        (["--chat", "mine"], "'mine' is not of the form NAME=org/repo[:config]"),
        (["--chat", f"a={OPENAI}", "--chat", f"a={SHAREGPT}:en"], "each NAME once"),
        ([], "--only chat compiles the --chat datasets, and none is given"),
    ],
)
def test_mistaken_requests_are_one_usage_line(args, error, tmp_path):
    result = invoke(
        "compile", "--only", "chat", *args, "--mirror", SAMPLE, "--db", tmp_path / "x.db"
    )
    assert result.returncode == 2 and error in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x.db").exists()


def test_a_revision_may_pin_a_chat_repository():
    check_request(["chat"], None, {OPENAI: "main"}, {"a": OPENAI})
    with pytest.raises(BadRequest, match=f"no source compiled here comes from {OPENAI}"):
        check_request(["gsm8k"], None, {OPENAI: "main"})


def test_subject_is_the_one_obvious_column():
    source = Source("chat", "x", "train", "org/repo", "default", "train")
    assert columns(["id", "messages", "source"], source) == {
        "messages": ("role", "content"),
        "source": None,
    }
    assert columns(["conversations", "category"], source) == {
        "conversations": ("from", "value"),
        "category": None,
    }
    assert columns(["messages", "source", "category"], source) == {
        "messages": ("role", "content")
    }  # which?
    with pytest.raises(UnknownLayout, match="has columns messages, conversations: "):
        columns(["messages", "conversations"], source)


def test_a_dataset_that_cannot_be_listed_keeps_its_previous_splits(chat_db, tmp_path):
    db = tmp_path / "kept.db"
    shutil.copyfile(chat_db, db)
    result = invoke(
        "compile",
        "--only",
        "chat",
        "--chat",
        "tutor=nanotasks/absent",
        "--mirror",
        SAMPLE,
        "--db",
        db,
        check=False,
    )
    assert result.returncode == 1
    assert (
        "failed: chat tutor/train (kept the previous copy): mirror has no nanotasks/absent"
        in result.stderr
    )
    assert db.read_bytes() == chat_db.read_bytes()


@pytest.mark.parametrize("list_type", [pa.list_, pa.large_list])
def test_message_fields_not_read_may_hold_nulls(list_type):
    """Only role and content are kept, from every chunk of the column, whatever its offsets: a
    null in another field (a tool call, a ShareGPT weight) is no bad row."""
    item = pa.struct([("role", pa.string()), ("content", pa.string()), ("tool_calls", pa.string())])
    chat = [
        {"role": "user", "content": "Hi", "tool_calls": None},
        {"role": "assistant", "content": "Hello!", "tool_calls": None},
    ]
    messages = pa.array([chat, chat[:1], None] * 2, list_type(item))
    table = pa.table({"messages": messages, "source": ["a", None, "b"] * 2})
    table = pa.concat_tables([table.slice(1, 3), table.slice(4)])  # chunks that start mid-array
    kept_columns = narrowed(
        table,
        {"messages": ("role", "content"), "source": None},
        Source("chat", "x", "train", "org/repo", "default", "train"),
    )
    kept = [
        [{"role": m["role"], "content": m["content"]} for m in row] if row else row
        for row in table["messages"].to_pylist()
    ]
    assert kept_columns.to_pylist() == [
        {"messages": m, "source": s or ""}
        for m, s in zip(kept, table["source"].to_pylist(), strict=True)
    ]
    # a missing conversation still is one
    assert first_nulls(kept_columns) == {"messages": (1, "messages is null")}


def test_json_names_a_chat_dataset_that_cannot_be_listed(tmp_path):
    result = invoke(
        "compile",
        "--only",
        "chat",
        "--chat",
        f"t={SHAREGPT}",
        "--json",
        "--mirror",
        SAMPLE,
        "--db",
        tmp_path / "a.db",
    )
    [outcome] = json.loads(result.stdout)["outcomes"]
    assert result.returncode == 1 and outcome["chat"] == "t" and outcome["status"] == "failed"
    assert f"{SHAREGPT} has configs en, fr" in outcome["error"] and "task" not in outcome
