"""README.md, docs/*.md and benchmarks/README.md as written: every block whose output a page
shows is run, from the top of the page down, and what it prints is compared with the page.

The pages' convention (docs/cli.md states it for readers):
- ```console: each line starting with `$ ` is a command, run by bash in the page's directory
  (a command runs on over the next lines while a quote is open or a line ends in `\\`); the
  lines up to the next command are its output, standard output and error together in the
  order they were written (Python unbuffered), as a terminal shows them.
- ```python followed by an ```output block (the next block on the page): the code is run by
  python in the page's directory, and prints what the output block shows.
- ```python whose first line is `# NAME.py`: written to NAME.py in the page's directory, for a
  command of a later console block to run.
- ```bash and ```text are shown, not run: what needs the network, a long run or a browser, and
  figures measured elsewhere.

Each page runs in a directory of its own, which is also HOME: `data` (the repository's data/),
demo.db (data/sample compiled, the README's quickstart) and `nanochat`, a stand-in nanochat
checkout. The demo compiles that the session's fixtures have already run are answered from
them: a copy of the file and the output recorded when it was compiled. Normalised on both
sides, and only what must vary: the page's directory reads as /home/you, the figures of a
table's `seconds` column are blanked, a compile's time and peak memory are cut from its closing
line, and trailing spaces and blank lines are dropped.
"""

import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nanotasks.compiler.nanochat import MODULES
from tests.conftest import REPO
from tests.helpers import console_commands, fenced_blocks, without_cost

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks/README.md"]
PAGE_IDS = [str(page.relative_to(REPO)) for page in PAGES]
LANGUAGES = {"console", "python", "output", "bash", "text"}
HOME = "/home/you"
# The compiles a session fixture has already run, by the command a page shows for them.
FIXTURE_COMPILES = {
    "nanotasks compile --mirror data/sample --db demo.db": "sample_db",
    "nanotasks compile --mirror data/sample --custom mychats=data/mychats.jsonl --db demo.db": (
        "demo_db"
    ),
}
README_LINES = 250  # a newcomer's five minutes
QUICKSTART_BY = 80  # the demo compile within the README's first lines


def page_directory(tmp_path, sample_db):
    """The directory a page runs in: data/, demo.db, and a stand-in nanochat checkout (what
    `switch-nanochat` looks for: nanochat/ and tasks/ with its modules)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "data").symlink_to(REPO / "data")
    shutil.copyfile(sample_db, home / "demo.db")
    checkout = home / "nanochat"
    (checkout / "nanochat").mkdir(parents=True)
    (checkout / "tasks").mkdir()
    for name in MODULES:
        (checkout / "tasks" / f"{name}.py").write_text(f'"""nanochat\'s tasks/{name}.py"""\n')
    return home


def environment(home):
    env = {k: v for k, v in os.environ.items() if k not in ("NANOTASKS_DB", "XDG_CACHE_HOME")}
    bin_dir = str(Path(sys.executable).parent)  # where `python` and `nanotasks` are
    env.update(HOME=str(home), COLUMNS="80", PATH=f"{bin_dir}:{env.get('PATH', '')}")
    env["PYTHONUNBUFFERED"] = "1"  # standard output and error in the order written
    return env


def run(argv, home):
    result = subprocess.run(
        argv,
        cwd=home,
        env=environment(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    return result.stdout


def run_command(command, home, request):
    fixture = FIXTURE_COMPILES.get(command)
    if fixture is None:
        return run(["bash", "-c", command], home)
    compiled = request.getfixturevalue(fixture)
    shutil.copyfile(compiled, home / "demo.db")
    return (compiled.parent / "compile.out").read_text().replace(compiled.name, "demo.db")


def blank_seconds(lines):
    """A table's `seconds` column blanked: its header's dashes say where the column is."""
    for i, line in enumerate(lines[:-1]):
        if re.match(r"^-+( +-+)*$", lines[i + 1]) and "seconds" in line.split():
            start = line.index("seconds")
            spans = [m.span() for m in re.finditer("-+", lines[i + 1])]
            left, right = next((a, b) for a, b in spans if a <= start < b)
            for j in range(i + 2, len(lines)):
                lines[j] = lines[j][:left] + " " * (right - left) + lines[j][right:]
            return lines
    return lines


def normalised(text, home):
    lines = [line.rstrip() for line in text.replace(str(home), HOME).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    lines = [without_cost(line) for line in lines]
    return [line.rstrip() for line in blank_seconds(lines)]


def mismatch(page, line, what, shown, printed, home):
    expected, actual = normalised(shown, home), normalised(printed, home)
    if expected == actual:
        return None
    diff = difflib.unified_diff(expected, actual, "the page shows", "it prints", lineterm="")
    return f"{page.relative_to(REPO)}:{line}: {what}\n" + "\n".join(diff)


def page_mismatches(page, home, request):
    """Every block of the page that prints other than it shows, each with its difference."""
    found = []
    blocks = fenced_blocks(page)
    for i, (language, text, line) in enumerate(blocks):
        following = blocks[i + 1] if i + 1 < len(blocks) else (None, "", 0)
        if language == "console":
            for command, shown in console_commands(text):
                printed = run_command(command, home, request)
                found.append(mismatch(page, line, f"$ {command}", shown, printed, home))
        elif language == "python" and text.startswith("# ") and text.split()[1].endswith(".py"):
            (home / text.split()[1]).write_text(text)
        elif language == "python" and following[0] == "output":
            printed = run([sys.executable, "-c", text], home)
            found.append(mismatch(page, line, "python block", following[1], printed, home))
    return [f for f in found if f]


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_page_prints_what_it_shows(page, sample_db, tmp_path, request):
    home = page_directory(tmp_path, sample_db)
    found = page_mismatches(page, home, request)
    assert not found, "\n\n".join(found)


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_block_says_whether_it_runs(page):
    blocks = fenced_blocks(page)
    for i, (language, _, line) in enumerate(blocks):
        assert language in LANGUAGES, f"{page.name}:{line}: ```{language} is none of {LANGUAGES}"
        if language == "output":
            assert i and blocks[i - 1][0] == "python", f"{page.name}:{line}: output of no python"


def anchors(page):
    """The anchors of a page's headings, as GitHub makes them."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_links_between_pages_lead_somewhere(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}, which is not there"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name} links to {target}: no such heading"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_pages_say_what_is_true_not_the_projects_history(page):
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"\b(issue|PR|pull request) #?\d+", text, flags=re.I), page.name


def test_the_readme_is_short_and_leads_to_every_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    assert len(lines) <= README_LINES
    first = next(
        i for i, line in enumerate(lines) if "nanotasks compile --mirror data/sample" in line
    )
    assert first < QUICKSTART_BY
    for page in PAGES[1:]:
        assert f"({page.relative_to(REPO)}" in readme, f"the README does not link {page.name}"
