"""CORE: the 22 in-context-learning tasks of nanochat's base-model evaluation
(scripts/base_eval.py), from the eval bundle it downloads: `eval_bundle/core.yaml` lists the
tasks (label, dataset_uri, num_fewshot, icl_task_type, optional continuation_delimiter),
`eval_bundle/eval_meta_data.csv` gives each its random baseline, and
`eval_bundle/eval_data/<dataset_uri>` holds its rows, one JSON object a line.

The compile stores every data file core.yaml names as one split of task `core`: subset the
dataset_uri, split `test` (all of CORE is evaluation data), one row per line in file order.
Each row keeps its line exactly, line break included, so the data files come back byte for
byte and a row's values are what base_eval's `json.loads(line.strip())` reads. core.yaml and
eval_meta_data.csv are stored as files under their names in the bundle, and beside them
core_settings.json, each task's settings as the compile parsed them from core.yaml: reading
needs no YAML parser (PyYAML is the compile's alone). A row is also a
conversation, for SQL, `show`, `browse` and the overlaps pass: the user turn is what the model
is shown (a multiple choice query with its choices, a schema's completed sentences, a language
modelling context), the assistant turn the gold answer; choices are numbered from 0, as `gold`
counts them.
"""

import io
import json
import random
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from nanotasks.store import Example, default_path
from nanotasks.store.reader import NotInStore, Store
from nanotasks.tasks.common import Archive, Benchmark, SourceFile, check_type

URL = "https://karpathy-public.s3.us-west-2.amazonaws.com/eval_bundle.zip"
BUNDLE = SourceFile("eval_bundle.zip", "karpathy-public", URL, "karpathy-public/eval_bundle.zip")
CONFIG = "eval_bundle/core.yaml"
META = "eval_bundle/eval_meta_data.csv"
DATA = "eval_bundle/eval_data/"
SETTINGS = "core_settings.json"
SPLIT = "test"
SHUFFLE_SEED = 1337  # base_eval shuffles each task's rows with random.Random(1337)
DEFAULT_DELIMITER = " "  # a task's continuation_delimiter when core.yaml gives none


class UnreadablePart(LookupError):
    """A file core.yaml names that the bundle does not hold, or holds damaged: that part fails,
    the rest is stored."""


class BadBundle(ValueError):
    """A bundle that cannot be read at all: not a zip, or no readable core.yaml."""


class CoreTask(NamedTuple):
    """One CORE task as base_eval runs it: its core.yaml entry and its random baseline (None when
    eval_meta_data.csv has no row for it)."""

    label: str
    dataset_uri: str
    num_fewshot: int
    task_type: str
    continuation_delimiter: str
    random_baseline: float | None

    def meta(self) -> dict[str, Any]:
        """The task_meta dict base_eval hands nanochat's evaluate_task."""
        return {
            "task_type": self.task_type,
            "dataset_uri": self.dataset_uri,
            "num_fewshot": self.num_fewshot,
            "continuation_delimiter": self.continuation_delimiter,
        }


def parse_config(text: str) -> list[dict[str, Any]]:
    """Each task's settings of core.yaml's `icl_tasks`, as base_eval reads them: the arguments of
    CoreTask but the random baseline. BadBundle when it is not a list of them. Needs PyYAML,
    so only the compile calls it."""
    import yaml

    try:
        entries = yaml.safe_load(text)["icl_tasks"]
        for entry in entries:
            for key in ("label", "dataset_uri", "icl_task_type"):
                check_type(key, entry[key], str)
            check_type("num_fewshot", entry["num_fewshot"][0], int)
            check_type("continuation_delimiter", entry.get("continuation_delimiter", ""), str)
    except (yaml.YAMLError, KeyError, TypeError, IndexError) as error:
        raise BadBundle(
            f"{CONFIG} is not a list of icl_tasks as base_eval reads it ({error})"
        ) from None
    return [
        {
            "label": entry["label"],
            "dataset_uri": entry["dataset_uri"],
            "num_fewshot": entry["num_fewshot"][0],
            "task_type": entry["icl_task_type"],
            "continuation_delimiter": entry.get("continuation_delimiter", DEFAULT_DELIMITER),
        }
        for entry in entries
    ]


def baselines(text: str) -> dict[str, float]:
    """{Eval Task: Random baseline} of eval_meta_data.csv, as base_eval reads it."""
    import csv

    return {
        row["Eval Task"]: float(row["Random baseline"])
        for row in csv.DictReader(io.StringIO(text, newline=""))
    }


def lines(data: bytes, name: str) -> list[str]:
    """The lines of a data file as Python's text mode cuts them (at \\n, \\r\\n or \\r), each with
    its line break: joined they are the file. ValueError naming the line that is not UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"{name} line {line}: not UTF-8 ({error.reason})") from None
    return io.StringIO(text, newline="").readlines()


def row_value(line: str) -> Any:
    """A line's row, as base_eval reads it."""
    return json.loads(line.strip())


def example(line: str) -> Example:
    """A stored row: the line, and the conversation it reads as (see the module's docstring).
    ValueError or TypeError for a line that is no row of the three formats."""
    row = row_value(line)
    if not isinstance(row, dict):
        raise TypeError(f"the line is a JSON {type(row).__name__}, not an object")
    if "query" in row:
        check_type("query", row["query"], str)
        prompt, choices = row["query"].rstrip() + "\n", row["choices"]
    elif "context_options" in row:
        check_type("continuation", row["continuation"], str)
        check_type("context_options", row["context_options"], list, str)
        prompt = ""
        choices = [f"{option} {row['continuation']}" for option in row["context_options"]]
    else:
        check_type("context", row["context"], str)
        check_type("continuation", row["continuation"], str)
        messages = [_turn("user", row["context"]), _turn("assistant", row["continuation"])]
        return Example({"messages": messages, "line": line}, answer=row["continuation"])
    check_type("choices", choices, list, str)
    check_type("gold", row["gold"], int)
    if not 0 <= row["gold"] < len(choices):
        raise ValueError(f"gold {row['gold']} is not the number of one of {len(choices)} choices")
    numbers = [str(i) for i in range(len(choices))]
    prompt += "\n".join(f"- {choice}={n}" for n, choice in zip(numbers, choices, strict=True))
    messages = [_turn("user", prompt), _turn("assistant", str(row["gold"]))]
    return Example({"messages": messages, "letters": numbers, "line": line}, str(row["gold"]))


def _turn(role, content):
    return {"role": role, "content": content}


def examples(data: bytes, name: str) -> Iterator[Example]:
    """The Examples of a data file, one per line; ValueError naming the first bad line."""
    for number, line in enumerate(lines(data, name), 1):
        try:
            stored = example(line)
        except KeyError as error:
            raise ValueError(f"{name} line {number}: it has no field {error}") from None
        except (ValueError, TypeError) as error:
            raise ValueError(f"{name} line {number}: {error}") from None
        stored.source_row = number - 1  # the line's number in the file, from 0
        yield stored


def unpack(content: bytes) -> tuple[dict, dict]:
    """What the compile stores of the bundle's bytes: ({(subset, split): a function giving the
    split's Examples}, {file name: its bytes}). A file the bundle lacks is a UnreadablePart
    instead, naming it; BadBundle when there is no zip or no core.yaml to read."""
    try:
        bundle = zipfile.ZipFile(io.BytesIO(content))
        settings = parse_config(bundle.read(CONFIG).decode("utf-8"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError) as error:
        raise BadBundle(f"not a CORE eval bundle with a readable {CONFIG} ({error})") from None
    names = set(bundle.namelist())
    labels: dict[str, list[str]] = {}
    for task in settings:
        labels.setdefault(task["dataset_uri"], []).append(task["label"])

    def member(name, why=""):
        if name not in names:
            return UnreadablePart(f"the bundle has no {name}{why}")
        try:
            return bundle.read(name)
        except (zipfile.BadZipFile, zlib.error) as error:
            return UnreadablePart(f"the bundle's {name} is damaged ({error})")

    files = {
        CONFIG: member(CONFIG),
        META: _checked_meta(member(META)),
        SETTINGS: json.dumps(settings, ensure_ascii=False, indent=1).encode("utf-8") + b"\n",
    }
    splits = {}
    for uri, used_by in labels.items():
        data = member(DATA + uri, f" (core.yaml names it for {', '.join(used_by)})")
        splits[uri, SPLIT] = data if isinstance(data, UnreadablePart) else _reader(data, DATA + uri)
    return splits, files


def _checked_meta(data):
    """eval_meta_data.csv's bytes, once base_eval could read a baseline from each of its rows."""
    if isinstance(data, UnreadablePart):
        return data
    try:
        baselines(data.decode("utf-8"))
    except (UnicodeDecodeError, KeyError, ValueError, TypeError) as error:
        return UnreadablePart(
            f"{META} has no number as Random baseline of each Eval Task ({error})"
        )
    return data


def _reader(data, name):
    return lambda: examples(data, name)


BENCHMARK = Benchmark("core", archive=Archive(BUNDLE, unpack))


def _store(db):
    return db if isinstance(db, Store) else Store(db or default_path())


def tasks(db: str | Path | Store | None = None) -> list[CoreTask]:
    """Every task of the stored core.yaml, in its order, with base_eval's settings (read from
    core_settings.json, which the compile parsed from it)."""
    store = _store(db)
    settings = json.loads(_read(store, SETTINGS))
    random_baselines = baselines(_read(store, META).decode("utf-8"))
    return [
        CoreTask(**task, random_baseline=random_baselines.get(task["label"])) for task in settings
    ]


def _read(store, name):
    if name not in {file["name"] for file in store.files()}:
        raise NotInStore(
            f"{store.path} has no {name} of the CORE eval bundle. Add it with "
            f"`nanotasks compile --only core --db {store.path}`."
        )
    return store.read_file(name)


def stored_lines(dataset_uri: str, db: str | Path | Store | None = None) -> list[str]:
    """A data file's lines in file order, each exactly as in the file, line break included."""
    store = _store(db)
    split = store.split("core", dataset_uri, SPLIT)
    return [conversation["line"] for conversation in store.read_many(split, range(split.rows))]


def rows(dataset_uri: str, db: str | Path | Store | None = None) -> list[Any]:
    """The rows of a data file in file order, as base_eval reads them."""
    return [row_value(line) for line in stored_lines(dataset_uri, db)]


def eval_rows(
    task: CoreTask, db: str | Path | Store | None = None, max_per_task: int = -1
) -> list[Any]:
    """The rows base_eval hands evaluate_task for `task`: shuffled with random.Random(1337), the
    first `max_per_task` when it is positive."""
    data = rows(task.dataset_uri, db)
    random.Random(SHUFFLE_SEED).shuffle(data)
    return data[:max_per_task] if max_per_task > 0 else data


def bundle_zip(db: str | Path | Store | None = None) -> bytes:
    """The bundle as a zip base_eval unpacks: core.yaml, eval_meta_data.csv and every data file
    core.yaml names, each byte for byte as compiled (the zip itself is not the downloaded
    one). NotInStore when the file lacks any of them: base_eval would stop at it."""
    store = _store(db)
    uris = list(dict.fromkeys(task.dataset_uri for task in tasks(store)))
    stored = {s["subset"] for s in store.splits() if (s["task"], s["split"]) == ("core", SPLIT)}
    missing = [uri for uri in uris if uri not in stored]
    if missing:
        raise NotInStore(
            f"{store.path} has no {', '.join(missing)} of the CORE eval bundle (core.yaml "
            f"names them), so base_eval cannot run from it: compile it from a bundle that has them."
        )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name in (CONFIG, META):
            bundle.writestr(name, store.read_file(name))
        for uri in uris:
            bundle.writestr(DATA + uri, "".join(stored_lines(uri, store)).encode("utf-8"))
    return out.getvalue()


def offline_download(download: Callable) -> Callable:
    """nanochat's `download_file_with_lock(url, filename, postprocess_fn)`, fetching the CORE
    bundle from the compiled file ($NANOTASKS_DB) rather than the network: the bundle is
    written to a temporary zip and handed to `download` as a file:// URL, so nanochat's own
    lock, copy and unzip (postprocess_fn) run as they do online. What switch-nanochat puts
    into scripts/base_eval.py."""

    def download_from_file(url: str, filename: str, postprocess_fn: Callable | None = None) -> str:
        if url != URL:
            raise ValueError(f"nanotasks serves {URL} from the compiled file, not {url}")
        with tempfile.TemporaryDirectory(prefix="nanotasks-") as directory:
            path = Path(directory) / filename
            path.write_bytes(bundle_zip())
            return download(path.as_uri(), filename, postprocess_fn=postprocess_fn)

    return download_from_file
