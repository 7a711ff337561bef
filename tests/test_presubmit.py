"""presubmit's choices before anything is built: which sides, which config difference, bad input."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from git_history import commit_file, make_repo, repo_state, run_git

from orchestrator.errors import UsageError
from orchestrator.gitrepo import Repo
from orchestrator.presubmit import choose_sides, config_difference, more_boots
from orchestrator.timing_stats import CLOCK_POLICIES


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(make_repo(tmp_path / "user", commits=5))


def test_head_is_the_working_tree_with_its_changes_and_the_checkout_is_untouched(repo: Repo):
    (repo.path / "file4.txt").write_text("changed, not committed\n")
    before = repo_state(repo.path)
    sides = choose_sides(repo, "v0", None)
    assert repo_state(repo.path) == before
    assert sides.base == repo.resolve("v0")
    assert sides.head != repo.resolve("HEAD") and "uncommitted changes included" in sides.head_label
    assert run_git(repo.path, "show", f"{sides.head}:file4.txt") == "changed, not committed\n"


def test_base_is_the_merge_base_and_head_may_be_named(repo: Repo):
    run_git(repo.path, "checkout", "-q", "-b", "side", "HEAD~2")
    commit_file(repo.path, "side.txt", "x\n", "side work")
    sides = choose_sides(repo, "side", "main")
    assert sides.base == repo.resolve("main~2") and sides.head == repo.resolve("main")


def test_base_comes_from_the_upstream_branch(repo: Repo):
    run_git(repo.path, "checkout", "-q", "-b", "topic", "--track", "main")
    commit_file(repo.path, "topic.txt", "x\n", "topic work")
    assert choose_sides(repo, None, None).base == repo.resolve("main")


def test_no_base_and_no_upstream_asks_for_base(repo: Repo):
    with pytest.raises(UsageError, match="give --base REF"):
        choose_sides(repo, None, None)
    with pytest.raises(UsageError, match="adds nothing"):
        choose_sides(repo, "main", None)


def test_config_difference_names_each_option():
    base = "CONFIG_GUP_TEST=y\nCONFIG_DEBUG_VM=y\n# CONFIG_KASAN is not set\n"
    head = "CONFIG_GUP_TEST=y\n# CONFIG_DEBUG_VM is not set\nCONFIG_KASAN=y\n"
    assert config_difference(base, head) == ["CONFIG_DEBUG_VM: base y, head n", "CONFIG_KASAN: base n, head y"]
    assert config_difference(base, base) == []


def test_command_without_base_exits_2_and_starts_nothing(repo: Repo, tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "orchestrator", "presubmit", "--kernel-src", str(repo.path),
                             "--cache-dir", str(tmp_path / "cache")], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "give --base REF" in lines[0]
    assert not (tmp_path / "out").exists()


def result_with(timing_verdict: str, step_kind: str = "unchanged", clock: str = "icount", broken=()):
    from orchestrator.compare import CompareResult
    from orchestrator.step_compare import StepVerdict
    from orchestrator.timing_stats import compare_metric

    timing = compare_metric("m", [[100.0, 101.0]], [[100.0, 101.0]], CLOCK_POLICIES[clock])
    timing = dataclasses.replace(timing, verdict=timing_verdict)
    step = StepVerdict("x86_64/pin_basic", step_kind, "passed 1/1", "failed 1/1", "")
    return CompareResult((), (), clock, {}, (step,), (timing,), {}, None, tuple(broken))


@pytest.mark.parametrize("verdict, kind, boots, clock, broken, more", [
    ("same", "unchanged", 1, "icount", (), True),  # one boot says nothing of how boots differ
    ("same", "unchanged", 2, "icount", (), False),  # the instruction clock decides from two boots a side
    ("unknown", "unchanged", 2, "icount", (), True),
    ("unknown", "unchanged", 4, "icount", (), False),  # the clock's limit
    ("same", "new failure", 1, "icount", (), True),  # seen once: run it again before blaming
    ("same", "new failure", 2, "realtime", (), True),
    ("same", "new failure", 2, "icount", (), False),
    ("same", "unchanged", 2, "realtime", (), True),  # real time needs three boots a side
    ("same", "unchanged", 3, "realtime", (), False),
    ("unknown", "new failure", 1, "icount", ("x86_64/boot",), False),  # a broken base: stop
])
def test_more_boots(verdict, kind, boots, clock, broken, more):
    assert more_boots(result_with(verdict, kind, clock, broken), boots) is more
