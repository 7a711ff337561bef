"""presubmit's decisions without kernels: which sides, the config difference, more boots, the series, the exit."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from git_history import commit_file, make_repo, repo_state, run_git

from orchestrator.errors import UsageError
from orchestrator.gitrepo import Repo
from orchestrator.presubmit import (
    CommitCheck,
    choose_sides,
    config_difference,
    exit_code,
    more_boots,
    series_lines,
    series_verdicts,
)
from orchestrator.step_compare import Change, StepVerdict
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


def _step(name: str, kind: Change, detail: str = "") -> StepVerdict:
    return StepVerdict(f"x86_64/{name}", kind, "passed 1/1", "failed 2/2" if kind == Change.NEW_FAILURE else "", detail)


SERIES = [
    CommitCheck("a" * 40, "mm: first", (_step("pin_basic", Change.UNCHANGED),)),
    CommitCheck("b" * 40, "mm: breaks pin_basic", (_step("pin_basic", Change.NEW_FAILURE, "expected every pin"),
                                                   _step("gup_basic", Change.FLAKY, "once"))),
    CommitCheck("c" * 40, "mm: breaks it again", (_step("pin_fast", Change.NEW_FAILURE, "exact"),)),
    CommitCheck("d" * 40, "mm: repairs it", (_step("pin_basic", Change.UNCHANGED),)),
]


def test_each_names_the_first_commit_with_a_new_failure_and_every_commit_once():
    lines = series_lines(SERIES)
    assert lines[-1] == f"first commit with a new failure: {'b' * 12} mm: breaks pin_basic"
    assert f"  {'a' * 12} mm: first: clean" in lines and f"  {'d' * 12} mm: repairs it: clean" in lines
    assert f"  {'b' * 12} mm: breaks pin_basic: NEW FAILURE x86_64/pin_basic" in lines
    assert series_lines([SERIES[0], SERIES[3]])[-1] == "no commit of the series has a new failure"


def test_each_commit_is_a_testcase_failed_only_by_a_new_failure():
    cases = {case.name.split()[0]: case for case in series_verdicts(SERIES)}
    assert [name for name, case in cases.items() if case.failure] == ["b" * 12, "c" * 12]
    assert cases["b" * 12].failure == "new failure: x86_64/pin_basic (expected every pin)"
    assert "x86_64/gup_basic: flaky" in cases["b" * 12].detail and not cases["a" * 12].detail


@pytest.mark.parametrize("series, head_exit, expected", [
    (SERIES, 0, 1),  # the head is clean, a commit in the middle broke a step: the series fails
    ([SERIES[0], SERIES[3]], 0, 0),
    ([SERIES[0]], 3, 3),  # a broken base stays infrastructure
    ([SERIES[1]], 3, 1),
    ([], 1, 1),  # without --each, the head's own verdict
])
def test_the_series_decides_presubmits_exit(series, head_exit, expected):
    result = result_with("same", "unchanged" if head_exit != 1 else "new failure",
                         broken=("x86_64/boot",) if head_exit == 3 else ())
    assert result.exit_code == head_exit
    assert exit_code(result, series) == expected
