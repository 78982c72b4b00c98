"""The benchmark runs end to end on a small size and reports every figure for every system.
Its figures are printed, never asserted: only that they are well-formed."""

import importlib.util
import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.bench  # ~95 s: not in the default run; `python -m pytest -m bench`

BENCH = REPO / "benchmarks" / "bench.py"
SYSTEMS = {"arrow", "hf", "nanotasks"}
FIGURES = {"open_s", "rss_open_mb", "rss_reads_mb", "random_mean_us", "random_p99_us", "sequential_per_s",
           "parallel_per_s", "mixture_s", "mixture_rss_mb", "disk_bytes"}


def positive(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    command = [sys.executable, BENCH, "--train", "1500", "--test", "200", "--mmlu", "300", "--gsm8k", "100",
               "--reads", "300", "--workers", "2", "--json", "--keep", work / "work"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=work)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_small_run_reports_every_figure_for_every_system(report):
    assert set(report["systems"]) == SYSTEMS
    for system, figures in report["systems"].items():
        assert set(figures) == FIGURES, system
        assert all(positive(value) for value in figures.values()), (system, figures)
        assert figures["rss_reads_mb"] >= figures["rss_open_mb"]
    assert report["compile"]["rows"] == 1700
    assert all(positive(value) for value in report["compile"].values())
    assert positive(report["hf_first_load_s"])
    assert set(report["origin"].values()) == {"synthetic"}  # no --mirror: nothing real


def test_the_table_shows_each_figure_with_its_ratio_to_each_baseline(report):
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    lines = bench.table(report).splitlines()
    for label, key, _, higher in bench.FIGURES:
        line = next(line for line in lines if line.startswith(f"| {label.format(workers=2)} "))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        ours, arrow, hf = (report["systems"][s][key] for s in ("nanotasks", "arrow", "hf"))
        expected = [arrow / ours, hf / ours] if not higher else [ours / arrow, ours / hf]
        assert cells[-2:] == [f"{ratio:.1f}x" for ratio in expected], line
