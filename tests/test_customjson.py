"""tasks/customjson.py: JSONL conversations read from a file and compiled into the file with
`--custom`; a bad file, line, or name is refused, named with its line."""

import json
import shutil

import pytest

from nanotasks.store.reader import NotInStore, Store
from nanotasks.store.schema import MAX_BODY_BYTES
from nanotasks.tasks.arc import ARC
from nanotasks.tasks.customjson import CustomJSON
from tests.conftest import invoke, nanotasks
from tests.helpers import CONVERSATIONS, assistant, user, write_jsonl


def test_customjson_reads_conversations_in_file_order(tmp_path):
    path = write_jsonl(
        tmp_path / "chat.jsonl",
        [
            json.dumps(CONVERSATIONS[0]),
            "",
            "   ",
            json.dumps(CONVERSATIONS[1]),
            json.dumps(CONVERSATIONS[2], ensure_ascii=False),
        ],
    )
    task = CustomJSON(filepath=path)
    assert list(task) == [{"messages": c} for c in CONVERSATIONS]
    assert list(CustomJSON(str(path), start=1)) == [{"messages": c} for c in CONVERSATIONS[1:]]


@pytest.mark.parametrize(
    "bad, what",
    [
        (
            '{"role": "user", "content": "hi"}',
            "an object without \"messages\" (it has 'role', 'content')",
        ),
        ('"hi"', "messages must be a list (a JSON array), got str"),
        (json.dumps([user("only one")]), "at least 2"),
        (json.dumps([assistant("a"), user("b")]), "role"),
        (json.dumps([user("a"), user("b")]), "role"),
        (json.dumps([user("a"), assistant("b"), assistant("c")]), "message 2"),
        (json.dumps([user("a"), {"role": "assistant", "content": 5}]), "content"),
        (json.dumps([user("a"), {"role": "assistant"}]), "content"),
        (json.dumps([{"role": ["user"], "content": "a"}, assistant("b")]), "role"),
        (json.dumps([user([{"type": "text", "text": "a"}]), assistant("b")]), "message 0"),
        (json.dumps([user("a"), assistant([{"type": "image", "text": "b"}])]), "part 0"),
        (json.dumps([user("a"), assistant([{"type": "text", "text": 1}])]), "part 0"),
        (json.dumps([user("a"), assistant(["b"])]), "part 0 is not an object"),
        (json.dumps([user("a"), "b"]), "object"),
        ('[{"role": "user", "content": "a"}, ', "Expecting"),
    ],
)
def test_customjson_bad_line_names_file_line_and_problem(tmp_path, bad, what):
    path = write_jsonl(
        tmp_path / "chat.jsonl",
        [json.dumps(CONVERSATIONS[0]), "", bad, json.dumps(CONVERSATIONS[1])],
    )
    with pytest.raises(ValueError) as error:
        CustomJSON(filepath=path)
    message = str(error.value)
    assert str(path) in message and "line 3" in message and what in message


def test_every_conversation_export_writes_compiles_back_as_custom(sample_db, tmp_path):
    """What `nanotasks export` writes of every stored split (GSM8K's replies as parts,
    SmolTalk's system messages) is a custom file that compiles back to the same messages."""
    customs, expected = [], {}
    for i, split in enumerate(Store(sample_db).splits()):
        path = tmp_path / f"{i}.jsonl"
        key = split["task"], split["split"], "--subset", split["subset"]
        invoke("export", *key, "--db", sample_db, "-o", path, check=True)
        customs += ["--custom", f"s{i}={path}"]
        expected[f"s{i}"] = [json.loads(line)["messages"] for line in path.open()]
    db = tmp_path / "custom.db"
    invoke("compile", "--only", "customjson", *customs, "--db", db, check=True)
    for name, messages in expected.items():
        assert [c["messages"] for c in CustomJSON(name=name, db=db)] == messages, name


def test_customjson_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        CustomJSON(filepath=tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="filepath"):
        CustomJSON()


def test_customjson_compiled_into_the_file(sample_db, tmp_path):
    db = tmp_path / "custom.db"
    shutil.copy(sample_db, db)
    chat = write_jsonl(
        tmp_path / "chat.jsonl", [json.dumps(c, ensure_ascii=False) for c in CONVERSATIONS]
    )
    invoke("compile", "--only", "customjson", "--custom", f"mine={chat}", "--db", db, check=True)
    assert list(CustomJSON(name="mine", db=db)) == list(CustomJSON(filepath=chat))
    assert list(CustomJSON(name="mine", db=db, start=2)) == [{"messages": CONVERSATIONS[2]}]
    assert list(ARC("ARC-Easy", "test", db=db)) == list(
        ARC("ARC-Easy", "test", db=sample_db)
    )  # kept

    before = db.read_bytes()
    bad = write_jsonl(
        tmp_path / "bad.jsonl", [json.dumps(CONVERSATIONS[0]), json.dumps([user("x")])]
    )
    result = invoke(
        "compile", "--only", "customjson", "--custom", f"other={bad}", "--db", db, check=False
    )
    assert (
        result.returncode == 1
        and f"{bad}, line 2" in result.stderr
        and "Traceback" not in result.stderr
    )
    assert db.read_bytes() == before  # a bad file changes nothing

    with pytest.raises(NotInStore) as error:
        CustomJSON(name="other", db=db)
    assert f"`nanotasks compile --only customjson --custom other=FILE.jsonl --db {db}`" in str(
        error.value
    )


def test_json_that_orjson_refuses_reads_back_as_json_reads_it(sample_db, tmp_path):
    # the reader parses with orjson, which refuses NaN and integers past 64 bits; json writes both
    line = (
        '[{"role": "user", "content": "a", "score": NaN}, '
        f'{{"role": "assistant", "content": "b", "id": {2**70}}}]'
    )
    chat = write_jsonl(tmp_path / "odd.jsonl", [line])
    db = tmp_path / "odd.db"
    invoke("compile", "--only", "customjson", "--custom", f"odd={chat}", "--db", db, check=True)
    (conversation,) = CustomJSON(name="odd", db=db)
    assert conversation["messages"][0]["score"] != conversation["messages"][0]["score"]  # NaN
    assert conversation["messages"][1]["id"] == 2**70


GOOD = '[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]\n'


def compile_custom(tmp_path, *customs):
    db = tmp_path / "custom.db"
    result = nanotasks(
        "compile",
        "--only",
        "customjson",
        *[f"--custom={c}" for c in customs],
        "--db",
        db,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert not db.exists()
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "content, error",
    [
        (b"", "no conversations (the file is empty, or only blank lines)"),
        (b"\n  \n\n", "no conversations (the file is empty, or only blank lines)"),
        (
            GOOD.encode() + GOOD.encode().replace(b"Hello", b"H\xffllo"),
            "line 2: not UTF-8 (byte 72 of the line)",
        ),
        (
            GOOD.encode() * 2 + GOOD.replace("Hello", "\\ud800").encode(),
            "line 3: a lone surrogate escape such as \\ud800, which is no character: "
            "text must be valid Unicode",
        ),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", "line 1: JSON nested too deeply"),
    ],
    ids=["empty", "blank lines", "invalid utf-8", "lone surrogate", "deep nesting"],
)
def test_a_bad_custom_file_is_named_with_its_line(tmp_path, content, error):
    chats = tmp_path / "chats.jsonl"
    chats.write_bytes(content)
    assert (
        compile_custom(tmp_path, f"mine={chats}")
        == f"Error: nothing was written: {chats}{',' if error.startswith('line') else ':'} {error}"
    )


def test_a_custom_line_longer_than_a_conversation_may_be_is_refused(tmp_path):
    chats = tmp_path / "chats.jsonl"
    with open(chats, "wb") as f:
        f.write(GOOD.encode())
        f.truncate(len(GOOD) + MAX_BODY_BYTES + 1)  # a line of NUL bytes, as long as it may not be
    message = compile_custom(tmp_path, f"mine={chats}")
    assert (
        message
        == f"Error: nothing was written: {chats}, line 2: longer than {MAX_BODY_BYTES:,} bytes"
    )


def test_a_custom_file_that_is_not_a_regular_file_is_refused(tmp_path):
    assert (
        compile_custom(tmp_path, "mine=/dev/zero")
        == "Error: nothing was written: /dev/zero: not a regular file: give a JSONL file"
    )


@pytest.mark.parametrize(
    "name", ["a\nb", "x" * 100_000, "../up", ""], ids=["newline", "long", "path", "empty"]
)
def test_a_custom_name_that_is_not_plain_and_short_is_refused(tmp_path, name):
    chats = tmp_path / "chats.jsonl"
    chats.write_text(GOOD)
    message = compile_custom(tmp_path, f"{name}={chats}")
    assert (
        "use up to 64 letters, digits" in message or "is not of the form NAME=FILE.jsonl" in message
    )


def test_a_custom_name_given_twice_is_refused(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(GOOD)
    second.write_text(GOOD)
    assert compile_custom(tmp_path, f"a={first}", f"a={second}") == (
        "Error: Invalid value for --custom: the name 'a' is given twice: "
        "each custom file needs its own name"
    )
