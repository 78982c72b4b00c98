"""Installing nanotasks: one top-level name, packages called store/tasks/compiler beside it, and
the library API. Real wheels, real venvs, real subprocesses; nothing downloaded (the fresh
venvs borrow this environment's dependencies)."""

import io
import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import nanotasks
from nanotasks.compiler.build import BadRequest
from nanotasks.tasks import UnknownName
from tests.conftest import REPO, SAMPLE, invoke
from tests.conftest import nanotasks as run_nanotasks

GENERIC = ("browse", "compiler", "store", "tasks")


def run(*command, cwd=None, check=True, env=None):
    result = subprocess.run([*map(str, command)], capture_output=True, text=True, cwd=cwd, env=env)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def other_wheel(directory, name):
    """A tiny wheel of a package called `name`, like the unrelated ones of that name on PyPI."""
    path = directory / f"{name}-1.0-py3-none-any.whl"
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": f"WHO = 'the other {name}'\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    files[f"{info}/RECORD"] = "".join(f"{f},,\n" for f in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for name_in_zip, text in files.items():
            archive.writestr(name_in_zip, text)
    return path


def fresh_venv(directory, *wheels):
    """A new virtual environment with `wheels` installed; nanotasks' dependencies come from this
    environment's site-packages through a .pth line, after the venv's own packages."""
    run(sys.executable, "-m", "venv", "--without-pip", directory)
    python = directory / "bin" / "python"
    site = Path(
        run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        ).stdout.strip()
    )
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip(python, "install", "--no-index", "--no-deps", *wheels)
    return python, site


def pip(python, *args):
    return run(sys.executable, "-m", "pip", "--python", python, *args)


def test_the_wheel_holds_only_nanotasks(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"nanotasks", wheel.name.split("-py3")[0] + ".dist-info"}
    for package in GENERIC:
        assert f"nanotasks/{package}/__init__.py" in names
    assert "nanotasks/py.typed" in names  # type checkers read the annotations (PEP 561)
    assert not [
        name
        for name in names
        if name.startswith(("nanotasks/tests", "nanotasks/data", "nanotasks/benchmarks"))
    ]


def test_the_wheel_carries_the_browse_pages(wheel):
    """`nanotasks browse` serves its templates and CSS from the installed package."""
    names = zipfile.ZipFile(wheel).namelist()
    pages = REPO / "browse"
    files = [*pages.glob("templates/*.html"), *pages.glob("static/*.css")]
    assert (
        len(files) > 5
        and [f for f in files if f"nanotasks/browse/{f.relative_to(pages)}" not in names] == []
    )


def test_editable_install_puts_no_generic_name_on_the_path(tmp_path):
    for package in GENERIC:  # from outside the repository, as a user's script runs
        result = run(sys.executable, "-c", f"import {package}", cwd=tmp_path, check=False)
        assert f"No module named '{package}'" in result.stderr
    assert run(
        sys.executable, "-c", "import nanotasks; print(nanotasks.__file__)", cwd=tmp_path
    ).stdout.strip() == str(REPO / "__init__.py")


def test_packages_named_store_tasks_compiler_beside_it(wheel, tmp_path, sample_db):
    others = [other_wheel(tmp_path, name) for name in GENERIC]
    python, site = fresh_venv(tmp_path / "venv", wheel, *others)
    command = tmp_path / "venv" / "bin" / "nanotasks"
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "tasks.py").write_text(
        "raise SystemExit('the tasks.py of the working directory')\n"
    )

    def every_command_works():
        db = tmp_path / "demo.db"
        db.unlink(missing_ok=True)
        run(command, "compile", "--mirror", SAMPLE, "--db", db, cwd=tmp_path / "work")
        assert "gsm8k" in run(command, "info", "--db", db, cwd=tmp_path / "work").stdout
        assert (
            "[assistant]"
            in run(
                python,
                "-m",
                "nanotasks",
                "show",
                "gsm8k",
                "test",
                "3",
                "--subset",
                "main",
                "--db",
                db,
                cwd=tmp_path / "work",
            ).stdout
        )
        assert "whole" in run(command, "verify", "--db", db, cwd=tmp_path / "work").stdout
        assert (
            "12"
            in run(
                command,
                "sql",
                "--db",
                db,
                "SELECT count(*) FROM examples WHERE task = 'mmlu' AND split = 'test'",
                cwd=tmp_path / "work",
            ).stdout
        )
        assert (
            len(
                run(
                    command,
                    "export",
                    "--db",
                    db,
                    "arc",
                    "test",
                    "--subset",
                    "ARC-Easy",
                    cwd=tmp_path / "work",
                ).stdout.splitlines()
            )
            == 6
        )
        assert (
            "gsm8k main/test" in run(command, "overlap", "--db", db, cwd=tmp_path / "work").stdout
        )
        code = "import nanotasks, store, tasks, compiler; print(nanotasks.__file__, store.WHO)"
        return run(python, "-c", code, cwd=tmp_path / "work", check=False)

    found = every_command_works()
    assert found.returncode == 1 and "the tasks.py of the working directory" in found.stderr
    assert (
        "the other store"
        in run(python, "-c", "import store; print(store.WHO)", cwd=tmp_path).stdout
    )
    assert run(
        python, "-c", "import nanotasks; print(nanotasks.__file__)", cwd=tmp_path
    ).stdout.startswith(str(site))
    pip(python, "uninstall", "--yes", *GENERIC)
    every_command_works()
    for package in GENERIC:
        assert (site / "nanotasks" / package / "__init__.py").is_file()
        assert not (site / package).exists()


@pytest.mark.parametrize(
    "arguments, library_call, error",
    [
        (["--only", "bogus"], dict(only=["bogus"]), UnknownName),
        (
            ["--only", "gsm8k", "--revision", "openai/gsm8kk=abc"],
            dict(only=["gsm8k"], revisions={"openai/gsm8kk": "abc"}),
            BadRequest,
        ),
        (
            ["--revision", "openai/gsm8k=abc", "--mirror", SAMPLE],
            dict(revisions={"openai/gsm8k": "abc"}, mirror=SAMPLE),
            BadRequest,
        ),
    ],
)
def test_compile_mistakes_are_the_same_in_python_and_the_cli(
    arguments, library_call, error, tmp_path
):
    with pytest.raises(error) as raised:
        nanotasks.compile(tmp_path / "x.db", **library_call)
    result = run_nanotasks("compile", *arguments, "--db", tmp_path / "x.db", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"Error: {raised.value}"
    assert not list(tmp_path.iterdir())


def test_library_reads_exports_and_verifies(sample_db, tmp_path):
    store = nanotasks.open(sample_db)
    rows = nanotasks.find_split(store, "gsm8k", "test", subset="main")
    assert nanotasks.find_split(store, "MMLU", "train", "auxiliary_train") == store.split(
        "mmlu", "all", "auxiliary_train"
    )
    with pytest.raises(UnknownName, match="subsets main, socratic"):
        nanotasks.find_split(store, "gsm8k", "test")
    nanotasks.export(sample_db, "gsm8k", "test", tmp_path / "out.jsonl", subset="main")
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [store.read(rows, i) for i in range(rows.rows)]
    assert (
        lines
        == run_nanotasks(
            "export", "gsm8k", "test", "--subset", "main", "--db", sample_db
        ).stdout.splitlines()
    )
    assert all(check.ok for check in nanotasks.verify(sample_db))


def test_the_read_commands_print_what_the_library_returns(sample_db):
    """info, verify and overlap print in JSON the library's own fields, unparsed; export
    writes to an open file what it prints on standard output."""
    info = nanotasks.info(sample_db)
    assert json.loads(invoke("info", "--json", "--db", sample_db).stdout) == {
        "path": str(sample_db),
        "splits": info.splits,
        "files": info.files,
    }
    auxiliary = nanotasks.find_split(nanotasks.open(sample_db), "mmlu", "auxiliary_train")
    assert info.aliases == [
        nanotasks.Alias(
            "mmlu", "auxiliary_train", "train", auxiliary.rows, "all", "auxiliary_train"
        )
    ]
    checks = nanotasks.verify(sample_db)
    printed = json.loads(invoke("verify", "--json", "--db", sample_db).stdout)["checks"]
    assert printed == [check.as_dict() for check in checks]
    assert [c.name for c in checks][:2] == ["header", "schema"] and "gsm8k main/test" in [
        c.name for c in checks
    ]
    overlap = json.loads(invoke("overlap", "--json", "--db", sample_db).stdout)["splits"]
    assert overlap == nanotasks.overlap(sample_db)
    written = io.StringIO()
    rows = nanotasks.export(sample_db, "gsm8k", "test", written, subset="main")
    assert rows.rows == 6
    printed = invoke("export", "gsm8k", "test", "--subset", "main", "--db", sample_db).stdout
    assert written.getvalue() == printed
