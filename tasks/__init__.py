"""One module per benchmark; each is everything about that benchmark."""

import importlib

# The benchmarks `nanotasks compile` knows, by module name (what --only takes).
BENCHMARKS = ("arc", "mmlu", "gsm8k", "humaneval", "smoltalk", "spellingbee")


def aliases():
    """Other names the stored splits are served under: {(task, subset, split): stored (subset, split)}."""
    return {(name, *alias): stored for name in BENCHMARKS
            for alias, stored in getattr(importlib.import_module(f"tasks.{name}"), "ALIASES", {}).items()}
