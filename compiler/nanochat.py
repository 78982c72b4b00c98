"""`nanotasks switch-nanochat`: make a nanochat checkout's own `tasks` package serve nanotasks.

nanochat's scripts run from the checkout's root (`python -m scripts.chat_sft`), so Python
finds the checkout's `tasks/` before any installed package: `from tasks.arc import ARC` loads
nanochat's module, which downloads from the hub. The switch rewrites each of those modules
as a stand-in for nanotasks' module of the same name: the scripts run unchanged, offline.
"""

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


class NotNanochat(ValueError):
    """The directory is not a nanochat checkout."""


def switch(checkout):
    """Rewrite the modules of MODULES that `checkout`/tasks has; returns (switched, already
    switched, left alone) lists of paths relative to the checkout."""
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
    return switched, already, others
