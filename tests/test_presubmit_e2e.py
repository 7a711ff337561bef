"""presubmit end to end: a kernel history made from Debian's 6.1 tree, real builds, real boots.

main is the base; three heads: one breaks a pin step, one slows the gup-fast
path down on purpose, one changes nothing. Needs the shared build lock on a
shared machine: flock /work/kernel-build.lock nice -n 10 .venv/bin/pytest -m e2e tests/test_presubmit_e2e.py
"""

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from git_history import _kernel_git, make_kernel_branches, repo_state

from orchestrator import source
from orchestrator.paths import default_cache_dir

pytestmark = pytest.mark.e2e

# gup_test pins each page of -b twice and unpins it once: pin_basic's pins no longer balance.
BREAK_PIN = ("mm/gup_test.c",
             "\t\tcase PIN_BASIC_TEST:\n",
             "\t\tcase PIN_BASIC_TEST:\n\t\t\tpin_user_pages(addr, nr, gup->gup_flags, pages + i, NULL);\n",
             "gup_test: pin the basic test's pages twice")
# udelay(2) in every gup-fast call: measured +20 % on gup_fast's get, +12 % on pin_fast's (instruction clock).
SLOW_GUP = ("mm/gup.c",
            "\tunsigned long nr_pinned;\n\tint ret;\n\n\tif (WARN_ON_ONCE(gup_flags & ~(FOLL_WRITE | FOLL_LONGTERM |",
            "\tunsigned long nr_pinned;\n\tint ret;\n\n\tudelay(2);\n"
            "\tif (WARN_ON_ONCE(gup_flags & ~(FOLL_WRITE | FOLL_LONGTERM |",
            "mm/gup: wait 2 us in every gup-fast call")
# A Kconfig default the head changes: its .config differs from the base's in one line.
HOSTNAME_DEFAULT = ("init/Kconfig", '\tstring "Default hostname"\n\tdefault "(none)"\n',
                    '\tstring "Default hostname"\n\tdefault "gupvm"\n', "init: the default hostname is gupvm")
SLOW_GUP_INCLUDE = ("mm/gup.c", "#include <linux/kernel.h>\n", "#include <linux/kernel.h>\n#include <linux/delay.h>\n",
                    "mm/gup: include delay.h")


@pytest.fixture(scope="module")
def history() -> Path:
    cache = default_cache_dir()
    tree = source.resolve("debian:6.1", cache).path
    noop = ("README", "Linux kernel\n", "Linux kernel\n\n", "README: a blank line")
    path = make_kernel_branches(cache / "test-histories" / "debian-6.1", tree, {
        "broken-pin": [BREAK_PIN, HOSTNAME_DEFAULT],
        "slower-gup": [SLOW_GUP_INCLUDE, SLOW_GUP],
        "noop": [noop],
        # Breaks pin_basic in its first commit and repairs it in the next: a clean head, a broken middle.
        "series": [BREAK_PIN, (BREAK_PIN[0], BREAK_PIN[2], BREAK_PIN[1], "gup_test: pin the basic test's pages once")],
    })
    # The user is on a topic branch that tracks main, with nothing uncommitted.
    _kernel_git(path, "checkout", "-q", "--force", "noop")
    _kernel_git(path, "branch", "-q", "--set-upstream-to", "main")
    return path


def presubmit(history: Path, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "presubmit", "--kernel-src", str(history), "--out", str(tmp_path),
         *args], capture_output=True, text=True, cwd=tmp_path)
    outs = [path for path in tmp_path.iterdir() if (path / "compare.json").is_file()]
    assert len(outs) == 1, result.stdout + result.stderr
    return result, outs[0]


def test_a_broken_pin_step_is_a_new_failure(history: Path, tmp_path: Path):
    result, out = presubmit(history, tmp_path, "--base", "main", "--head", "broken-pin")
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads((out / "compare.json").read_text())
    kinds = {step["name"]: step for step in data["steps"]}
    assert kinds["x86_64/pin_basic"]["kind"] == "new failure"
    failed, runs = kinds["x86_64/pin_basic"]["head"].removeprefix("failed ").split("/")
    assert failed == runs and int(runs) >= 2  # run again before it was blamed (more boots while a timing is unknown)
    assert "expected every pin released" in kinds["x86_64/pin_basic"]["detail"]
    assert {step["kind"] for name, step in kinds.items() if name != "x86_64/pin_basic"} <= {"unchanged"}
    assert "NEW FAILURE    x86_64/pin_basic" in result.stdout
    failed = [case.get("name") for case in ElementTree.parse(out / "junit.xml").getroot().iter("testcase")
              if case.find("failure") is not None]
    assert failed == ["x86_64/pin_basic"]
    difference = 'x86_64: .config differs: CONFIG_DEFAULT_HOSTNAME: base "(none)", head "gupvm"'
    assert difference in result.stdout.splitlines()
    assert (out / "config.diff").read_text() == difference + "\n"
    # Each build's and boot's stages show as a run's do (timestamped, not on a terminal).
    assert re.search(r"^\[\d\d:\d\d:\d\d\] gupvm: \S+/x86_64/\S+ boot: done in ", result.stdout, re.M), result.stdout


def test_a_slowed_gup_fast_path_is_called_slower_with_its_interval(history: Path, tmp_path: Path):
    result, out = presubmit(history, tmp_path, "--base", "main", "--head", "slower-gup", "--fail-on-slower", "5")
    assert result.returncode == 1, result.stdout + result.stderr
    timings = {timing["metric"]: timing for timing in json.loads((out / "compare.json").read_text())["timings"]}
    gup_fast = timings["x86_64/gup_fast_benchmark/get_usec"]
    assert gup_fast["verdict"] == "slower" and gup_fast["ci_low_pct"] > 5, gup_fast
    assert timings["x86_64/pin_fast_benchmark/get_usec"]["verdict"] == "slower"
    assert timings["x86_64/pin_longterm_benchmark/get_usec"]["verdict"] not in ("slower", "faster")
    row = next(line for line in result.stdout.splitlines() if line.endswith("x86_64/gup_fast_benchmark/get_usec"))
    assert "slower" in row and f"[{gup_fast['ci_low_pct']:+.1f}, {gup_fast['ci_high_pct']:+.1f}]" in row
    page = (out / "compare.html").read_text()
    assert f"[{gup_fast['ci_low_pct']:+.1f}, {gup_fast['ci_high_pct']:+.1f}]" in page
    assert 'id="plot-x86_64/gup_fast_benchmark/get_usec"' in page
    assert "SLOWER > 5%  x86_64/gup_fast_benchmark/get_usec" in result.stdout


def test_a_head_that_changes_nothing_is_clean(history: Path, tmp_path: Path):
    before = repo_state(history)
    result, out = presubmit(history, tmp_path, "--fail-on-slower", "5")  # base: the upstream; head: the checkout
    assert result.returncode == 0, result.stdout + result.stderr
    assert repo_state(history) == before  # HEAD, refs, index, status, and no worktree left registered
    data = json.loads((out / "compare.json").read_text())
    assert {step["kind"] for step in data["steps"]} == {"unchanged"}
    assert len(data["timings"]) == 6
    assert not [t["metric"] for t in data["timings"] if t["verdict"] in ("slower", "faster")], data["timings"]
    assert ".config: the same on both sides" in result.stdout


@pytest.mark.manual  # one more build and boot per commit of the series: beyond CI's time
def test_each_names_the_commit_that_broke_a_step_the_series_later_repairs(history: Path, tmp_path: Path):
    result, out = presubmit(history, tmp_path, "--base", "main", "--head", "series", "--each")
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads((out / "compare.json").read_text())
    assert {step["kind"] for step in data["steps"]} == {"unchanged"}  # the head itself is clean
    broke = _kernel_git(history, "rev-parse", "series~1").strip()
    assert f"first commit with a new failure: {broke[:12]} gup_test: pin the basic test's pages twice" in result.stdout
    assert f"{broke[:12]} gup_test: pin the basic test's pages twice: NEW FAILURE x86_64/pin_basic" in result.stdout
    failed = [case.get("name") for case in ElementTree.parse(out / "junit.xml").getroot().iter("testcase")
              if case.find("failure") is not None]
    assert failed == [f"{broke[:12]} gup_test: pin the basic test's pages twice"]


@pytest.mark.manual  # cold cross builds of the history for two ARM arches
def test_on_arm_a_broken_pin_is_a_new_failure_and_a_noop_head_is_clean_on_either_clock(history: Path, tmp_path: Path):
    (tmp_path / "broken").mkdir()
    result, out = presubmit(history, tmp_path / "broken", "--base", "main", "--head", "broken-pin", "--arch",
                            "armv7-lpae")  # TCG's default clock: icount
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads((out / "compare.json").read_text())
    kinds = {step["name"]: step["kind"] for step in data["steps"]}
    assert kinds.pop("armv7-lpae/pin_basic") == "new failure" and set(kinds.values()) == {"unchanged"}
    assert "NEW FAILURE    armv7-lpae/pin_basic" in result.stdout
    (tmp_path / "noop").mkdir()
    result, out = presubmit(history, tmp_path / "noop", "--base", "main", "--head", "noop", "--arch", "arm64",
                            "--clock", "realtime", "--fail-on-slower", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((out / "compare.json").read_text())
    assert {step["kind"] for step in data["steps"]} == {"unchanged"}
    assert {timing["metric"].split("/")[0] for timing in data["timings"]} == {"arm64"}
