"""compare on runs made from a real boot's results: verdicts, the lkp table, compare.json, JUnit, exit codes.

The run directories hold results.json as `gupvm run` writes it, from the
replayed 6.1 smoke boot; only the timing samples are set per test.
"""

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

from orchestrator.arches import all_arches
from orchestrator.check import check_step
from orchestrator.compare import compare, find_runs, load_run
from orchestrator.compare_report import table, to_json
from orchestrator.errors import UsageError
from orchestrator.report import results_json
from orchestrator.results import StageResult, SuiteResult

HOST = {"host_cpu": "Intel(R) Xeon(R) Processor", "qemu_version": "7.2.22", "accel": "tcg", "clock": "icount",
        "guest_thp": "madvise"}
BENCHMARKS = ("gup_fast_benchmark", "pin_fast_benchmark", "pin_longterm_benchmark")


@pytest.fixture(scope="module")
def smoke_suites(smoke_61) -> list[dict]:
    steps = tuple(check_step(step, capture, all_arches()["x86_64"]) for step, capture in smoke_61.values())
    suite = SuiteResult("x86_64 linux-6.1.176", {"arch": "x86_64", **HOST}, StageResult("passed"),
                        StageResult("passed", "1 boot(s)"), steps)
    return json.loads(results_json([suite]))


def write_run(directory: Path, suites: list[dict], factor: float = 1.0, seed: int = 0, failing: str = "",
              **properties) -> Path:
    """A run directory: the smoke boot's results, each benchmark's samples scaled by factor."""
    rng = np.random.default_rng(seed)
    suites = json.loads(json.dumps(suites))
    for suite in suites:
        suite["properties"].update(properties)
        for step in suite["steps"]:
            if step["name"] in BENCHMARKS:
                for metric in ("get_usec", "put_usec"):
                    real = int(step["figures"][f"{metric.split('_')[0]}_usec.0"])
                    step["samples"][metric] = [round(real * factor * (1 + rng.normal(0, 0.0003))) for _ in range(10)]
            if step["name"] == failing:
                step["status"] = "failed"
                step["message"] = "expected exactly 32768 pins, nr_foll_pin_acquired rose by 0"
    directory.mkdir(parents=True)
    (directory / "results.json").write_text(json.dumps(suites))
    return directory


def runs(*directories: Path):
    return [load_run(path) for path in directories]


def side(directory: Path, suites: list[dict], factor: float = 1.0, seed: int = 0, boots: int = 2, failing: str = "",
         **properties) -> list:
    """A side of a comparison: boots run directories under directory, as a presubmit's base/ or head/."""
    return runs(*(write_run(directory / f"boot-{number:02d}", suites, factor, seed * 100 + number, failing,
                            **properties)
                  for number in range(1, boots + 1)))


def test_the_same_kernel_compares_clean(smoke_suites, tmp_path):
    result = compare(side(tmp_path / "a", smoke_suites, seed=1), side(tmp_path / "b", smoke_suites, seed=2),
                     fail_on_slower=5)
    assert [timing.verdict for timing in result.timings] == ["same"] * 6
    assert {step.kind for step in result.steps} == {"unchanged"}
    assert result.exit_code == 0 and not result.across_hosts


def test_a_slower_head_is_called_and_fails_only_beyond_the_threshold(smoke_suites, tmp_path):
    base, head = side(tmp_path / "a", smoke_suites, seed=1), side(tmp_path / "b", smoke_suites, 1.08, 2)
    result = compare(base, head, fail_on_slower=5)
    assert all(timing.verdict == "slower" and 7.5 < timing.ci_low_pct for timing in result.timings)
    assert len(result.slowdowns) == 6 and result.exit_code == 1
    assert compare(base, head, fail_on_slower=10).exit_code == 0
    assert compare(base, head).exit_code == 0  # no threshold: reported, not failed


def test_one_boot_a_side_gives_no_timing_verdict(smoke_suites, tmp_path):
    result = compare(side(tmp_path / "a", smoke_suites, boots=1), side(tmp_path / "b", smoke_suites, 1.08, boots=1))
    assert {timing.verdict for timing in result.timings} == {"unknown"} and result.exit_code == 0


def test_a_new_failure_fails_and_a_base_failure_does_not(smoke_suites, tmp_path):
    clean = write_run(tmp_path / "clean", smoke_suites)
    broken = write_run(tmp_path / "broken", smoke_suites, failing="pin_basic")
    new = compare(runs(clean), runs(broken))
    assert [step.name for step in new.new_failures] == ["x86_64/pin_basic"] and new.exit_code == 1
    fixed = compare(runs(broken), runs(clean))
    assert {step.name: step.kind for step in fixed.steps}["x86_64/pin_basic"] == "fixed" and fixed.exit_code == 0


def test_a_failure_that_does_not_recur_is_flaky(smoke_suites, tmp_path):
    base = write_run(tmp_path / "base", smoke_suites)
    head = [write_run(tmp_path / "h1", smoke_suites, failing="pin_basic"), write_run(tmp_path / "h2", smoke_suites)]
    result = compare(runs(base), runs(*head))
    assert {step.name: step.kind for step in result.steps}["x86_64/pin_basic"] == "flaky" and result.exit_code == 0


def test_different_hosts_are_named_and_verdicts_marked(smoke_suites, tmp_path):
    result = compare(side(tmp_path / "a", smoke_suites),
                     side(tmp_path / "b", smoke_suites, 1.08, qemu_version="8.2.2", guest_thp="always"))
    assert set(result.host_differences) == {"qemu_version", "guest_thp"}
    text = table(result)
    assert "host facts differ: qemu_version: base 7.2.22; head 8.2.2" in text
    assert "slower (across hosts)" in text


def test_different_clocks_give_no_timing_verdict(smoke_suites, tmp_path):
    result = compare(runs(write_run(tmp_path / "a", smoke_suites)),
                     runs(write_run(tmp_path / "b", smoke_suites, 1.5, clock="realtime")))
    assert {timing.verdict for timing in result.timings} == {"unknown"}
    assert "different clocks" in result.timings[0].reason


def test_table_is_lkps_layout(smoke_suites, tmp_path):
    result = compare(side(tmp_path / "a", smoke_suites), side(tmp_path / "b", smoke_suites, 1.08), fail_on_slower=5)
    lines = table(result).splitlines()
    header = next(line for line in lines if "%change" in line)
    assert header.split()[0] == "base" and "head" in header and header.split()[-2:] == ["verdict", "metric"]
    row = next(line for line in lines if line.endswith("x86_64/pin_fast_benchmark/get_usec"))
    base, change = row.split()[0], row.split()[3]
    assert abs(int(base) - 28741) <= 2 and change.startswith("+8.") and "slower" in row
    assert any(line.startswith("SLOWER > 5%  x86_64/pin_fast_benchmark/get_usec") for line in lines)


def test_compare_json_keeps_verdicts_intervals_and_samples(smoke_suites, tmp_path):
    result = compare(runs(write_run(tmp_path / "a", smoke_suites)), runs(write_run(tmp_path / "b", smoke_suites)))
    data = json.loads(to_json(result))
    timing = data["timings"][0]
    assert set(timing) >= {"metric", "base_median", "head_median", "change_pct", "ci_low_pct", "ci_high_pct",
                           "verdict", "confidence"}
    assert len(data["samples"][timing["metric"]]["base"][0]) == 10
    assert data["exit_code"] == 0 and data["steps"][0]["name"] == "x86_64/build"


def gupvm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, capture_output=True, text=True)


def test_command_writes_json_html_and_junit_with_the_regressions_as_failures(smoke_suites, tmp_path):
    for boot in ("boot-01", "boot-02"):
        write_run(tmp_path / "base" / boot, smoke_suites, seed=len(boot))
        write_run(tmp_path / "head" / boot, smoke_suites, 1.08, seed=boot.count("2"), failing="pin_basic")
    result = gupvm("compare", "base", "head", "--fail-on-slower", "5", "--junit", "j.xml", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    out = next((tmp_path / "out").iterdir())
    assert {"compare.json", "compare.html"} <= {path.name for path in out.iterdir()}
    suite = ElementTree.parse(tmp_path / "j.xml").getroot().find("testsuite")
    failed = {case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None}
    assert failed == {"x86_64/pin_basic"} | {f"x86_64/{step}/{metric}" for step in BENCHMARKS
                                            for metric in ("get_usec", "put_usec")}


def test_bad_input_exits_2(tmp_path):
    (tmp_path / "empty").mkdir()
    result = gupvm("compare", "empty", "empty", cwd=tmp_path)
    assert result.returncode == 2 and "no results.json" in result.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/results.json").write_text("{")
    with pytest.raises(UsageError, match="unreadable"):
        load_run(find_runs(tmp_path / "bad")[0])


def test_a_base_that_did_not_build_is_infrastructure(smoke_suites, tmp_path):
    suites = json.loads(json.dumps(smoke_suites))
    suites[0]["build"] = {"status": "failed", "message": "kernel build (x86_64) failed", "seconds": 1, "detail": ""}
    suites[0]["steps"] = []
    base = tmp_path / "base"
    base.mkdir()
    (base / "results.json").write_text(json.dumps(suites))
    result = compare(runs(base), runs(write_run(tmp_path / "head", smoke_suites)))
    assert result.base_broken == ("x86_64/build",) and result.exit_code == 3
