"""Known failures: an upstream-explained failure keeps the run green with its reference, anything else fails,
and an entry with nothing to explain says so. On the real 7.3 cow capture, with results turned to not ok."""

import dataclasses
import re
from pathlib import Path

import pytest
from conftest import replayed
from kcidb_io import schema

from orchestrator.arches import all_arches
from orchestrator.check import check_step
from orchestrator.kcidb import kcidb_json
from orchestrator.known import KnownFailure, apply, known_failures
from orchestrator.report import junit_xml, records, summary
from orchestrator.results import Problem, ProblemKind, StageResult, Status, SuiteResult

X86_64 = all_arches()["x86_64"]
REFERENCE = "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/commit/?id=0123456789ab"


def entry(**fields) -> KnownFailure:
    return KnownFailure(**{"step": "cow", "kind": ProblemKind.KTAP, "reference": REFERENCE, "why": "a bug",
                           "cases": ("with THP",), "since": "7.2", "until": "7.3", **fields})


@pytest.fixture(scope="module")
def cow(tmp_path_factory):
    return replayed("7.3-x86_64-pinning.console.log", "pinning.plan.toml", tmp_path_factory)["cow"]


def failing(cow, *numbers: int):
    step, capture = cow
    text = capture.text
    for number in numbers:
        text = re.sub(rf"(?m)^ok {number} ", f"not ok {number} ", text)
    return check_step(step, dataclasses.replace(capture, text=text), X86_64)


def named(cow, number: int) -> str:
    return re.search(rf"(?m)^ok {number} (.*)$", cow[1].text).group(1).strip()


def thp_case(cow) -> int:
    return next(int(match.group(1)) for match in re.finditer(r"(?m)^ok (\d+) (?!#)(.*with THP.*)$", cow[1].text))


def other_case(cow) -> int:
    return next(int(match.group(1)) for match in re.finditer(r"(?m)^ok (\d+) (?!#)(.*)$", cow[1].text)
                if "THP" not in match.group(2))


@pytest.mark.parametrize("version, arches, explained", [
    ("7.3.4", (), True),
    ("7.2.13", ("x86_64",), True),
    ("7.1.0", (), False),  # before the range
    ("7.3.4", ("i386",), False),  # another arch
    ("9.0.0", "open-ended", True),  # an entry with no upper bound
])
def test_a_ktap_failure_is_known_only_in_its_range_and_arches(cow, version, arches, explained):
    known = entry(until="") if arches == "open-ended" else entry(arches=arches)
    result = apply(failing(cow, thp_case(cow)), version, "x86_64", (known,))
    assert result.status == (Status.KNOWN_FAILURE if explained else Status.FAILED)
    assert not result.status.failing if explained else result.status.failing
    assert (REFERENCE in result.message) == explained


def test_a_failure_no_entry_explains_still_fails_the_step_and_names_only_itself(cow):
    result = apply(failing(cow, thp_case(cow), other_case(cow)), "7.3.4", "x86_64", (entry(),))
    assert result.status == Status.FAILED
    (problem,) = result.problems
    assert problem.kind == ProblemKind.KTAP and len(problem.about) == 1 and "THP" not in problem.about[0]
    assert result.known == (REFERENCE,)
    assert len(result.known_subjects) == 1 and "THP" in result.known_subjects[0]  # its testcase says known
    assert result.message == f"{problem.sentence}; known failure (a bug): {REFERENCE}"


def test_a_known_failure_keeps_no_problem_for_bisect_and_presubmit_to_follow(cow):
    result = apply(failing(cow, thp_case(cow)), "7.3.4", "x86_64", (entry(),))
    assert result.status == Status.KNOWN_FAILURE and result.problems == ()
    assert result.message == f"known failure (a bug): {REFERENCE}"


def test_a_step_that_did_not_run_is_neither_known_nor_unexpectedly_passing(cow):
    skipped = dataclasses.replace(failing(cow), status=Status.SKIPPED, problems=(), message="this tree has no cow")
    assert apply(skipped, "7.3.4", "x86_64", (entry(),)) == skipped


def test_a_problem_without_subjects_that_no_entry_explains_keeps_none(cow):
    timed_out = dataclasses.replace(failing(cow), status=Status.TIMEOUT,
                                    problems=(Problem(ProblemKind.TIMEOUT, "cow timed out"),))
    result = apply(timed_out, "7.3.4", "x86_64", (entry(),))
    assert result.status == Status.TIMEOUT and result.problems[0].about == ()


def test_an_entry_whose_failure_did_not_happen_reports_an_unexpected_pass(cow):
    result = apply(failing(cow), "7.3.4", "x86_64", (entry(),))
    assert result.status == Status.PASSED
    assert result.unexpectedly_passing == (REFERENCE,)
    assert "unexpectedly passing" in result.message


def test_a_known_failure_is_reported_as_such_everywhere_and_keeps_the_run_green(cow):
    result = apply(failing(cow, thp_case(cow)), "7.3.4", "x86_64", (entry(),))
    suite = SuiteResult("s", {"arch": "x86_64", "kernel_source": "debian:7.3", "kernel_version": "7.3.4",
                              "config_hash": "0123456789abcdef", "plan": "pinning"},
                        StageResult(Status.PASSED), StageResult(Status.PASSED), (result,))
    assert not suite.tests_failed
    junit = junit_xml([suite])
    assert junit.count(f"known failure: {REFERENCE}") == 1  # the KTAP result's testcase
    assert '<skipped type="skipped" message="known failure (a bug)' in junit  # the step's
    dataset = kcidb_json(records([suite]))
    schema.V5_3.validate(dataset)
    done = [test for test in dataset["tests"] if test["status"] == "DONE" and "known_failure" in test.get("misc", {})]
    assert len(done) == 2
    assert "1 known-failure" in summary([suite])


def test_the_repositorys_known_failures_load_and_each_cites_an_upstream_address():
    for known in known_failures():
        assert known.reference.startswith("https://") and known.why


def test_an_entry_without_a_reference_is_refused(tmp_path: Path):
    bad = tmp_path / "known.toml"
    bad.write_text('[[known]]\nstep = "cow"\nkind = "ktap"\nwhy = "?"\nreference = "a mailing list"\n')
    with pytest.raises(ValueError, match="needs a reference"):
        known_failures(bad)


def test_on_510_with_73s_cow_every_failure_is_explained_upstream_and_known(tmp_path_factory):
    """A real 5.10.262 boot running 7.3's cow (--selftests-from): 10 results not ok, each explained by a fix 5.10.y
    lacks (COW fixes parts 1 and 2, hugetlb's early COW of pinned pages)."""
    step, capture = replayed("5.10-x86_64-pinning-selftests-7.3.console.log", "pinning-5.10.plan.toml",
                             tmp_path_factory)["cow"]
    checked = check_step(step, capture, X86_64)
    assert len(checked.problems[-1].about) == 10
    result = apply(checked, "5.10.262", "x86_64")
    assert result.status == Status.KNOWN_FAILURE
    assert len(result.known_subjects) == 10 and len(result.known) == 3
    assert any("4eae4efa2c29" in known for known in result.known)
    assert apply(checked, "6.1.192", "x86_64").known == ()  # fixed there: the entries do not apply


def test_a_ktap_programs_exit_status_is_explained_with_its_results(tmp_path_factory):
    step, capture = replayed("5.10-x86_64-pinning-selftests-7.3.console.log", "pinning-5.10.plan.toml",
                             tmp_path_factory)["cow"]
    only_known = re.sub(r"(?m)^not ok 88 ", "ok 88 ", capture.text)
    checked = check_step(step, dataclasses.replace(capture, text=only_known), X86_64)
    assert {problem.kind for problem in checked.problems} == {ProblemKind.EXIT, ProblemKind.KTAP}
    assert apply(checked, "5.10.262", "x86_64").status == Status.KNOWN_FAILURE


def test_an_entry_with_nothing_to_explain_is_reported_beside_a_failure_too(cow):
    other = "https://lore.kernel.org/all/other/"
    result = apply(failing(cow, thp_case(cow), other_case(cow)), "7.3.4", "x86_64",
                   (entry(), entry(cases=("no such result",), reference=other)))
    assert result.status == Status.FAILED
    assert result.unexpectedly_passing == (other,) and result.known == (REFERENCE,)


def test_only_a_ktap_programs_exit_is_explained_with_its_results(cow):
    step_failed = failing(cow, thp_case(cow))
    splat = Problem(ProblemKind.SPLAT, "a WARNING", ("WARNING: mm/gup.c:1 at x",))
    exit_only = dataclasses.replace(step_failed, problems=(Problem(ProblemKind.EXIT, "exited 1", ("1",)),))
    assert apply(exit_only, "7.3.4", "x86_64", (entry(),)).problems == exit_only.problems  # nothing explained
    with_splat = dataclasses.replace(step_failed, problems=(*step_failed.problems, splat))
    result = apply(with_splat, "7.3.4", "x86_64", (entry(),))
    assert result.status == Status.FAILED and [problem.kind for problem in result.problems] == [ProblemKind.SPLAT]


def test_a_known_failure_and_an_unused_entry_are_both_said(cow):
    other = "https://lore.kernel.org/all/other/"
    result = apply(failing(cow, thp_case(cow)), "7.3.4", "x86_64",
                   (entry(), entry(cases=("no such result",), reference=other, why="another bug")))
    assert result.status == Status.KNOWN_FAILURE
    assert result.message == (f"known failure (a bug): {REFERENCE}; "
                              f"unexpectedly passing: known to fail here (another bug), {other}")
