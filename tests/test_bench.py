"""The benchmark runs end to end on a small size and reports every figure for every system.
Its figures are printed, never asserted: only that they are well-formed."""

import importlib.util
import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO, SHARED_HUB

pytestmark = pytest.mark.bench  # ~95 s: not in the default run; `python -m pytest -m bench`

BENCH = REPO / "benchmarks" / "bench.py"
SYSTEMS = {"arrow", "hf", "nanotasks"}
FIGURES = {
    "open_ms",
    "open_imported_ms",
    "rss_open_mb",
    "rss_reads_mb",
    "rss_now_mb",
    "anonymous_mb",
    "random_mean_us",
    "random_p99_us",
    "sequential_per_s",
    "parallel_per_s",
    "loader_fork_first_s",
    "loader_fork_per_s",
    "loader_spawn_first_s",
    "loader_spawn_per_s",
    "mixture_s",
    "mixture_rss_mb",
    "disk_bytes",
}
COLD = {"random_cold_us"}  # not for in-memory Arrow: nothing to evict
SMALL = {
    "small_openai/gsm8k_us",
    "small_cais/mmlu_us",
    "small_openai/openai_humaneval_us",
}  # not for HF


def positive(value):
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    command = [
        sys.executable,
        BENCH,
        "--train",
        "1500",
        "--test",
        "200",
        "--mmlu",
        "300",
        "--gsm8k",
        "100",
        "--reads",
        "300",
        "--workers",
        "2",
        "--json",
        "--keep",
        work / "work",
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=work)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_small_run_reports_every_figure_for_every_system(report):
    assert set(report["systems"]) == SYSTEMS
    small = SMALL if SHARED_HUB.is_dir() else set()  # where the bench finds them
    expected = {"arrow": FIGURES | small, "hf": FIGURES | COLD, "nanotasks": FIGURES | COLD | small}
    for system, figures in report["systems"].items():
        assert set(figures) == expected[system], system
        assert not [name for name, value in figures.items() if not positive(value)], (
            system,
            figures,
        )
        assert (
            figures["rss_reads_mb"] >= figures["rss_open_mb"]
            and figures["rss_now_mb"] > figures["anonymous_mb"]
        )
        assert all(
            positive(report["loads"][kind][system])
            for kind in report["loads"]
            if system in report["loads"][kind]
        )
    compiled = dict(report["compile"])
    assert compiled.pop("same_bytes_whatever_jobs") is True
    assert compiled["rows"] == 1700
    assert all(positive(value) for value in compiled.values())
    assert positive(report["hf_first_load_s"])
    assert set(report["origin"].values()) == {"synthetic"}  # no --mirror: nothing real


def test_the_table_shows_each_figure_with_its_ratio_to_each_baseline(report):
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    lines = bench.table(report).splitlines()
    for label, key, _, higher, kind in bench.FIGURES:
        if key not in report["systems"]["nanotasks"]:
            continue  # the small splits, without ../shared/hub
        line = next(line for line in lines if line.startswith(f"| {label.format(workers=2)} "))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        ours, arrow, hf = (report["systems"][s].get(key) for s in ("nanotasks", "arrow", "hf"))
        expected = [
            ("" if theirs is None else f"{(ours / theirs if higher else theirs / ours):.1f}x")
            for theirs in (arrow, hf)
        ]
        assert cells[-3:-1] == expected, line
        loads = report["loads"].get(kind, {})
        assert cells[-1] == " / ".join(
            f"{loads[s]:.1f}" if s in loads else "-" for s in ("arrow", "hf", "nanotasks")
        )


def test_the_scale_run_reports_compile_and_reads_at_each_size(tmp_path):
    command = [sys.executable, BENCH, "--scales", "400", "800", "--reads", "200", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [scale["rows"] for scale in report["scales"]] == [2400, 2800]  # with the test split
    for scale in report["scales"]:
        assert set(scale["nanotasks"]) == {
            "open_ms",
            "rss_open_mb",
            "random_mean_us",
            "random_p99_us",
            "rss_reads_mb",
            "rss_now_mb",
            "anonymous_mb",
            "random_cold_us",
        }
        assert set(scale["arrow"]) == set(scale["nanotasks"]) - {"random_cold_us"}
        flat = {k: v for k, v in scale.items() if k not in ("arrow", "nanotasks")}
        assert not [
            name
            for name, value in {**flat, **scale["arrow"], **scale["nanotasks"]}.items()
            if not positive(value)
        ], scale
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    lines = bench.scale_table(report).splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:4]] == ["2,400", "2,800"]
