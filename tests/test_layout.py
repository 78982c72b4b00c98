"""The shape of the code itself: no product function longer than 50 lines, and dependencies
that point one way (cli -> compiler/browse -> tasks -> store). Product code is what the wheel
ships: the root modules and the packages pyproject.toml lists."""

import ast
import tomllib

import pytest

from tests.conftest import REPO

MAX_FUNCTION_LINES = 50
# What each package may import of nanotasks; the root modules (the library API, the CLI and
# its output) may import anything.
MAY_IMPORT = {
    "store": {"store"},
    "tasks": {"store", "tasks"},
    "compiler": {"store", "tasks", "compiler"},
    "browse": {"store", "tasks", "browse"},
}


def product_files():
    """Every .py file of the wheel: the root modules and those of each listed package."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = [name.removeprefix("nanotasks").lstrip(".") for name in setuptools["packages"]]
    return sorted(path for package in packages for path in (REPO / package).glob("*.py"))


def parsed(path):
    return ast.parse(path.read_text(), filename=str(path))


def long_functions(path):
    """(where, lines) of each function or method in `path` over MAX_FUNCTION_LINES, from its
    `def` line to its last, docstring included."""
    return [
        (f"{path.relative_to(REPO)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1)
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def imported_packages(path):
    """The nanotasks packages (store, tasks, ...) or root modules (cli, output, or "" for the
    library API) that `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "nanotasks":
                found.add(parts[1] if len(parts) > 1 else "")
    return found


def test_the_product_files_are_found():
    names = {str(path.relative_to(REPO)) for path in product_files()}
    assert {"__init__.py", "cli.py", "store/reader.py", "tasks/common.py"} <= names
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/", "data/"))]


def test_no_product_function_is_over_50_lines():
    too_long = [found for path in product_files() for found in long_functions(path)]
    assert too_long == []


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_dependencies_point_one_way(package):
    wrong = {}
    for path in sorted((REPO / package).glob("*.py")):
        refused = sorted(imported_packages(path) - MAY_IMPORT[package])
        if refused:
            wrong[str(path.relative_to(REPO))] = refused
    assert wrong == {}
