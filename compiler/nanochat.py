"""`nanotasks switch-nanochat`: make a nanochat checkout's own `tasks` package serve nanotasks.

nanochat's scripts run from the checkout's root (`python -m scripts.chat_sft`), so Python
finds the checkout's `tasks/` before any installed package: `from tasks.arc import ARC` loads
nanochat's module, which downloads from the hub. The switch rewrites each of those modules
as a stand-in for nanotasks' module of the same name: the scripts run unchanged, offline.
"""

import ast
from pathlib import Path

# The modules of nanochat's tasks/ that its scripts import, each served by nanotasks.tasks.<name>
MODULES = ("common", "arc", "mmlu", "gsm8k", "humaneval", "smoltalk", "spellingbee", "customjson")

STAND_IN = """\
# Switched by `nanotasks switch-nanochat`: this module is nanotasks.tasks.{name}, which serves
# the same classes from the compiled file ($NANOTASKS_DB) offline. Undo: git checkout tasks/
import sys

import nanotasks.tasks.{name}

sys.modules[__name__] = nanotasks.tasks.{name}
"""

# base_eval.py downloads the CORE eval bundle with nanochat.common's download_file_with_lock;
# these lines, put after its imports, make that fetch the bundle from the compiled file instead.
BASE_EVAL = Path("scripts/base_eval.py")
BASE_EVAL_SWITCH = """
# Switched by `nanotasks switch-nanochat`: the CORE eval bundle comes from the compiled file
# ($NANOTASKS_DB), not the network. Undo: git checkout scripts/base_eval.py
from nanotasks.tasks.core import offline_download

download_file_with_lock = offline_download(download_file_with_lock)
"""


class NotNanochat(ValueError):
    """The directory is not a nanochat checkout."""


def switch(checkout):
    """Rewrite the modules of MODULES that `checkout`/tasks has; returns (switched, already
    switched, left alone) lists of paths relative to the checkout, and what became of
    scripts/base_eval.py (see switch_base_eval)."""
    checkout = Path(checkout)
    tasks = checkout / "tasks"
    missing = [
        name for name in ("nanochat", "tasks", "tasks/common.py") if not (checkout / name).exists()
    ]
    if missing:
        raise NotNanochat(
            f"{checkout} does not look like a nanochat checkout: it has no "
            f"{', '.join(missing)}. Give the directory that holds nanochat/ and tasks/."
        )
    switched, already = [], []
    for name in MODULES:
        module = tasks / f"{name}.py"
        if not module.is_file():
            continue
        text = STAND_IN.format(name=name)
        if module.read_text(encoding="utf-8", errors="replace") == text:
            already.append(module.relative_to(checkout))
        else:
            module.write_text(text, encoding="utf-8")
            switched.append(module.relative_to(checkout))
    others = sorted(
        path.relative_to(checkout)
        for path in tasks.glob("*.py")
        if path.stem not in MODULES and path.stem != "__init__"
    )
    return switched, already, others, switch_base_eval(checkout)


def switch_base_eval(checkout):
    """Put BASE_EVAL_SWITCH into the checkout's scripts/base_eval.py after its imports:
    "switched", "already" (it is there), "untouched" (no import of download_file_with_lock
    before its functions to follow), or None without a base_eval.py."""
    path = Path(checkout) / BASE_EVAL
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if BASE_EVAL_SWITCH in text:
        return "already"
    body = ast.parse(text).body
    first_def = next(
        (node.lineno for node in body if isinstance(node, ast.FunctionDef | ast.ClassDef)),
        len(text),
    )
    imports = [
        node
        for node in body
        if isinstance(node, ast.Import | ast.ImportFrom) and node.lineno < first_def
    ]
    if not any(
        (alias.asname or alias.name) == "download_file_with_lock"
        for node in imports
        for alias in node.names
    ):
        return "untouched"
    lines = text.splitlines(keepends=True)
    end = max(node.end_lineno or node.lineno for node in imports)
    path.write_text("".join([*lines[:end], BASE_EVAL_SWITCH, *lines[end:]]), encoding="utf-8")
    return "switched"
