"""gupvm bisect end to end: a synthetic history of Debian's 6.1 tree, real builds, real boots.

The history (tests/git_history.py): 16 small commits over mm/ and elsewhere on the unchanged tree;
commit 12 makes gup_test.c unpin one page too few, commit 8 does not compile. Only pin_basic runs.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from git_history import make_kernel_history, repo_state

pytestmark = pytest.mark.e2e


def gupvm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return make_kernel_history(tmp_path_factory.mktemp("history") / "linux")


def bisect(history, good: str, bad: str, cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    result = gupvm("bisect", "--kernel-src", str(history.path), "--good", good, "--bad", bad, "--step", "pin_basic",
                   *args, cwd=cwd)
    states = list((cwd / "out").glob("*/bisect.json"))
    assert len(states) == 1, result.stdout + result.stderr
    return result, json.loads(states[0].read_text())


def test_bisect_names_the_breaking_commit_and_skips_the_unbuildable_one(history, tmp_path: Path):
    before = repo_state(history.path)
    result, state = bisect(history, history.commits[0], history.commits[-1], tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    conclusion = state["conclusion"]
    assert conclusion["outcome"] == "culprit" and conclusion["culprit"] == history.breaking, output
    assert conclusion["confidence"] >= 0.9
    assert {check["name"]: check["status"] for check in conclusion["checks"]} == {
        "culprit fails again": "held", "parent passes again": "held", "revert passes": "held"}
    assert state["signature"] == {"step": "pin_basic", "kind": "imbalance",
                                  "detail": "nr_foll_pin_acquired != nr_foll_pin_released"}
    unbuildable = [record for record in state["records"] if record["commit"] == history.unbuildable]
    assert unbuildable and all(record["verdict"] == "skip" for record in unbuildable)
    assert "the build failed" in unbuildable[0]["why"] and "mm/gup.c:" in unbuildable[0]["why"]
    assert "error: expected expression" in unbuildable[0]["why"]  # the line gcc reports for the synthetic error
    assert f"first bad commit: {history.breaking} mm/gup_test: unpin one page too few" in result.stdout
    assert "author: Dev Eloper <dev@example.org>" in result.stdout
    assert "git bisect start" in state["bisect_log"]
    assert repo_state(history.path) == before  # HEAD, refs, status, index, worktrees
    # Each commit's stages show as a run's do (timestamped, not on a terminal), beneath its own line.
    assert re.search(r"^\[\d\d:\d\d:\d\d\] gupvm: \S+/x86_64 build: done in ", result.stdout, re.M), result.stdout


def test_a_bad_end_that_passes_exits_1_saying_so(history, tmp_path: Path):
    before = repo_state(history.path)
    result, state = bisect(history, history.commits[0], history.commits[10], tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not reproduced at BAD" in result.stdout
    assert state["conclusion"]["outcome"] == "not-reproduced"
    assert repo_state(history.path) == before


@pytest.mark.manual  # a cold arm64 cross build of the history, then one incremental build per commit tested
def test_on_arm64_bisect_names_the_same_breaking_commit(history, tmp_path: Path):
    result, state = bisect(history, history.commits[0], history.commits[-1], tmp_path, "--arch", "arm64")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert state["conclusion"]["outcome"] == "culprit" and state["conclusion"]["culprit"] == history.breaking, output
    assert all(check["status"] == "held" for check in state["conclusion"]["checks"])
    assert re.search(r"^\[\d\d:\d\d:\d\d\] gupvm: \S+/arm64 build: done in ", result.stdout, re.M), result.stdout
