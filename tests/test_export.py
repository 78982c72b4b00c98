"""store/export.py: `nanotasks export` as JSONL and parquet, and nothing a user points it at is
lost: a device, a link, the compiled file itself, a full disk, a read failing part way."""

import json
import os
import stat
import subprocess

import pytest

from nanotasks.tasks.gsm8k import GSM8K
from tests.conftest import invoke, nanotasks, small_tmpfs
from tests.helpers import claiming, split_row, with_body

EXPORT = ["export", "gsm8k", "train", "--subset", "main"]


def device(path, like):
    """A copy of the device node `like` (/dev/null, /dev/full) at `path`: needs root."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.stat(like).st_rdev)
    except PermissionError:
        pytest.skip("making device nodes needs root")
    return path


def leftovers(directory, *keep):
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_export_to_a_device_writes_through_it_and_keeps_it(sample_db, tmp_path):
    null = device(tmp_path / "null", "/dev/null")
    nanotasks(*EXPORT, "--db", sample_db, "-o", null)
    assert stat.S_ISCHR(null.stat().st_mode) and null.stat().st_rdev == os.stat("/dev/null").st_rdev
    full = device(tmp_path / "full", "/dev/full")
    result = nanotasks(*EXPORT, "--db", sample_db, "-o", full, check=False)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"Error: cannot write {full}: No space left on device"
    ]
    assert stat.S_ISCHR(full.stat().st_mode) and full.stat().st_rdev == os.stat("/dev/full").st_rdev
    assert leftovers(tmp_path, "null", "full") == []


def test_export_refuses_to_overwrite_the_compiled_file(copy, tmp_path):
    before = copy.read_bytes()
    (tmp_path / "link.db").symlink_to(copy)
    for output in (copy, tmp_path / "link.db"):
        result = nanotasks(*EXPORT, "--db", copy, "-o", output, check=False)
        assert result.returncode == 1 and result.stderr.strip().splitlines() == [
            f"Error: {output} is the compiled file being read: write the output elsewhere"
        ]
    assert copy.read_bytes() == before and leftovers(tmp_path) == ["copy.db", "link.db"]


def test_a_read_failing_part_way_leaves_the_previous_output(copy, tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text("the previous export\n")
    _, first, _ = split_row(copy, "gsm8k", "main", "train")
    with_body(copy, first + 3, claiming(1 << 40))
    for file_format in ("jsonl", "parquet"):
        result = nanotasks(
            *EXPORT, "--db", copy, "-o", output, "--format", file_format, check=False
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "example 3 of gsm8k main/train is damaged" in result.stderr
        assert output.read_text() == "the previous export\n"
        assert leftovers(tmp_path) == ["copy.db", "out.jsonl"]


def test_a_replaced_output_keeps_its_owner_and_mode(sample_db, tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text("old\n")
    os.chmod(output, 0o640)
    try:
        os.chown(output, 1234, 5678)
    except PermissionError:
        pytest.skip("changing a file's owner needs root")
    nanotasks(*EXPORT, "--db", sample_db, "-o", output)
    assert output.read_text() != "old\n" and stat.S_IMODE(output.stat().st_mode) == 0o640
    assert (output.stat().st_uid, output.stat().st_gid) == (1234, 5678)
    assert leftovers(tmp_path) == ["out.jsonl"]


@pytest.fixture
def small_disk(tmp_path):
    with small_tmpfs(tmp_path / "small", "64k") as mountpoint:
        yield mountpoint


def test_a_full_disk_leaves_the_previous_output_and_nothing_else(sample_db, small_disk):
    output = small_disk / "out.jsonl"
    output.write_text("the previous export\n")
    with (
        pytest.raises(OSError, match="No space left on device"),
        open(small_disk / "filler", "wb") as f,
    ):
        while True:
            f.write(bytes(4096))
            f.flush()
    result = nanotasks(*EXPORT, "--db", sample_db, "-o", output, check=False)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"Error: cannot write {output}: No space left on device"
    ]
    assert output.read_text() == "the previous export\n" and leftovers(small_disk) == [
        "filler",
        "out.jsonl",
    ]


def test_a_read_only_or_missing_directory_is_one_line(sample_db, small_disk, tmp_path):
    subprocess.run(["mount", "-o", "remount,ro", small_disk], check=True)
    for output in (small_disk / "out.jsonl", tmp_path / "missing" / "out.jsonl"):
        result = nanotasks(*EXPORT, "--db", sample_db, "-o", output, check=False)
        reason = (
            "Read-only file system" if output.parent == small_disk else "No such file or directory"
        )
        assert result.returncode == 1 and result.stderr.strip().splitlines() == [
            f"Error: cannot write {output}: {reason}"
        ]
    assert leftovers(small_disk) == [] and leftovers(tmp_path) == ["small"]


def test_export_through_a_link_replaces_the_file_it_names(sample_db, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    target, link = tmp_path / "elsewhere" / "out.jsonl", tmp_path / "out.jsonl"
    target.write_text("old\n")
    link.symlink_to(target)
    nanotasks(*EXPORT, "--db", sample_db, "-o", link)
    assert link.is_symlink() and target.read_text().count("\n") == len(
        GSM8K("main", "train", db=sample_db)
    )
    assert leftovers(tmp_path / "elsewhere") == ["out.jsonl"]


def test_export_jsonl_is_task_order(sample_db, tmp_path):
    from nanotasks.tasks.gsm8k import GSM8K

    expected = [json.loads(json.dumps(GSM8K("main", "train", db=sample_db)[i])) for i in range(8)]
    lines = nanotasks(
        "export", "--db", sample_db, "gsm8k", "train", "--subset", "main"
    ).stdout.splitlines()
    assert [json.loads(line) for line in lines] == expected
    out = tmp_path / "train.jsonl"
    nanotasks("export", "--db", sample_db, "gsm8k", "train", "--subset", "main", "-o", out)
    assert out.read_text().splitlines() == lines


def test_export_parquet(sample_db, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from nanotasks.tasks.smoltalk import SmolTalk

    out = tmp_path / "smoltalk.parquet"
    nanotasks("export", "--db", sample_db, "smoltalk", "train", "--format", "parquet", "-o", out)
    table = pq.read_table(out)
    assert table.column("position").to_pylist() == list(range(14))
    task = SmolTalk("train", db=sample_db)
    assert [json.loads(c) for c in table.column("conversation").to_pylist()] == [
        task[i] for i in range(14)
    ]
    to_stdout = invoke("export", "--db", sample_db, "smoltalk", "train", "--format", "parquet")
    assert to_stdout.returncode == 2 and "give a file with -o" in to_stdout.stderr


def test_export_names_a_missing_subset_or_split(sample_db):
    several = invoke("export", "--db", sample_db, "gsm8k", "train")
    assert several.returncode == 2 and "main, socratic" in several.stderr
    missing = invoke("export", "--db", sample_db, "gsm8k", "dev", "--subset", "main")
    assert (
        missing.returncode == 2
        and "gsm8k has no split 'dev': choose one of test, train" in missing.stderr
    )
