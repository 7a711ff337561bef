"""Step verdicts, table-driven: each row is what base and head did over their runs."""

import dataclasses

import pytest

from orchestrator.results import Status
from orchestrator.step_compare import StepOutcome, classify, classify_all, to_run_again

P = StepOutcome(Status.PASSED)
F = StepOutcome(Status.FAILED, "expected exactly 32768 pins, nr_foll_pin_acquired rose by 0")
C, T = StepOutcome(Status.CRASHED, "pin_basic crashed the kernel"), StepOutcome(Status.TIMEOUT, "no result after 120 s")
S = StepOutcome(Status.SKIPPED, "hugetlb: asked for 64 huge pages, the kernel reserved 0")
I = StepOutcome(Status.INTERRUPTED, "not run: SIGTERM stopped gupvm")  # noqa: E741


@pytest.mark.parametrize("base, head, kind, detail", [
    ([P], [F], "new failure", "expected exactly 32768 pins"),
    ([P, P], [F, C], "new failure", "expected exactly"),
    ([P, P], [F, P], "flaky", "passed when run again"),
    ([F], [F], "still failing", "fails on base too"),
    ([F, P], [T, T], "still failing", "fails on base too: no result after 120 s"),
    ([F, F], [P, P], "fixed", "failed on base: expected exactly"),
    ([P], [P, P], "unchanged", ""),
    ([P, F], [P, P], "unchanged", "flaky on base"),
    ([P], [S], "skipped", "skipped on head only: hugetlb: asked for 64"),
    ([S], [F], "skipped", "skipped on base only: hugetlb"),
    ([S], [S], "skipped", "skipped on both: hugetlb"),
    ([], [P], "skipped", "skipped on base only: not run on base"),
    ([P], [I], "skipped", "skipped on head only: not run: SIGTERM"),  # a stopped run passed nothing
    ([P, P], [F, I], "new failure", "expected exactly"),
])
def test_classify(base, head, kind, detail):
    verdict = classify("x86_64/pin_basic", base, head)
    assert verdict.kind == kind
    assert detail in verdict.detail
    reworded = [[dataclasses.replace(outcome, message="reworded") for outcome in side] for side in (base, head)]
    assert classify("x86_64/pin_basic", *reworded).kind == kind  # the status decides, never the words


def test_summaries_count_runs():
    verdict = classify("s", [P, P], [F, C])
    assert (verdict.base, verdict.head) == ("passed 2/2", "crashed/failed 2/2")


def test_every_step_of_either_side_in_heads_order():
    verdicts = classify_all({"a": [P], "gone": [P]}, {"b": [F], "a": [P]})
    assert [(v.name, v.kind) for v in verdicts] == [("b", "skipped"), ("a", "unchanged"), ("gone", "skipped")]


def test_a_new_failure_is_run_again_before_it_is_blamed():
    verdicts = [classify("s", [P], [F]), classify("t", [P], [P])]
    assert to_run_again(verdicts, head_runs=1) == ["s"]
    assert to_run_again(verdicts, head_runs=2) == []


@pytest.mark.parametrize("base, head, summaries, detail", [
    ([], [P], ("skipped", "passed 1/1"), "skipped on base only: not run on base"),
    ([P], [], ("passed 1/1", "skipped"), "skipped on head only: not run on head"),
    ([P, P], [P], ("passed 2/2", "passed 1/1"), ""),
    ([P, F], [P, P], ("failed 1/2", "passed 2/2"), "flaky on base: expected exactly 32768 pins, "
                                                   "nr_foll_pin_acquired rose by 0"),
])
def test_what_a_reviewer_reads_of_each_side(base, head, summaries, detail):
    verdict = classify("s", base, head)
    assert (verdict.base, verdict.head) == summaries and verdict.detail == detail
