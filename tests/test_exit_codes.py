import signal

import pytest

from orchestrator import exit_codes
from orchestrator.cli import run_exit_code
from orchestrator.errors import Blame
from orchestrator.plan import Step
from orchestrator.results import StageResult, Status, StepResult, SuiteResult


@pytest.mark.parametrize("signum, infrastructure_failed, tests_failed, expected", [
    (None, False, False, 0),
    (None, False, True, 1),
    (None, True, False, 3),
    (None, True, True, 3),  # infrastructure before a test failure
    (signal.SIGINT, False, False, 130),
    (signal.SIGTERM, True, True, 143),  # a signal before everything found after the start
])
def test_one_precedence_decides_when_outcomes_mix(signum, infrastructure_failed, tests_failed, expected):
    assert exit_codes.decide(signum=signum, infrastructure_failed=infrastructure_failed,
                             tests_failed=tests_failed) == expected


def suite(build=Status.PASSED, boot=Status.PASSED, step=Status.PASSED, blame=Blame.KERNEL) -> SuiteResult:
    steps = (StepResult(Step("pin_basic", ("-b",), "pin", 60.0), step, "", 1.0, ""),) if boot == Status.PASSED else ()
    return SuiteResult("s", {}, StageResult(build, blame=blame if build == Status.FAILED else None),
                       StageResult(boot, blame=blame if boot == Status.FAILED else None), steps)


@pytest.mark.parametrize("suites, plain, git", [
    ([suite()], 0, 0),
    ([suite(step=Status.FAILED)], 1, 1),
    ([suite(step=Status.CRASHED)], 1, 1),  # a crash or a hang is the kernel failing a test, on every code
    ([suite(step=Status.TIMEOUT)], 1, 1),
    ([suite(), suite(step=Status.TIMEOUT)], 1, 1),
    ([suite(step=Status.SKIPPED)], 0, 0),
    ([suite(build=Status.FAILED, boot=Status.SKIPPED)], 3, 125),  # the commit does not build: skip it
    ([suite(boot=Status.FAILED)], 3, 125),  # its kernel does not boot: skip it
    ([suite(build=Status.FAILED, boot=Status.SKIPPED, blame=Blame.HOST)], 3, 128),  # the host's trouble: stop
    ([suite(boot=Status.FAILED, blame=Blame.HOST)], 3, 128),
    ([suite(boot=Status.FAILED), suite(boot=Status.FAILED, blame=Blame.HOST)], 3, 128),
    ([suite(step=Status.FAILED), suite(boot=Status.FAILED)], 3, 125),
])
def test_a_runs_exit_code_plain_and_for_git_bisect(suites, plain, git):
    assert run_exit_code(suites, signum=None, report_failed=False, git_codes=False) == plain
    assert run_exit_code(suites, signum=None, report_failed=False, git_codes=True) == git


def test_reports_that_could_not_be_written_stop_a_git_bisection():
    assert run_exit_code([suite()], signum=None, report_failed=True, git_codes=False) == 3
    assert run_exit_code([suite(boot=Status.FAILED)], signum=None, report_failed=True, git_codes=True) == 128


def test_a_signal_wins_over_everything_git_bisect_or_not():
    for git_codes in (False, True):
        assert run_exit_code([suite(boot=Status.FAILED)], signum=signal.SIGTERM, report_failed=False,
                             git_codes=git_codes) == 143
