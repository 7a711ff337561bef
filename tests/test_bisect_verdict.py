"""Signatures and verdicts, on step results of real boots and on plain figures."""

import dataclasses

import pytest

from orchestrator.arches import all_arches
from orchestrator.bisect_verdict import (
    CULPRIT_FAILS,
    PARENT_PASSES,
    REVERT_PASSES,
    Check,
    Outcome,
    Run,
    Signature,
    choose_signature,
    commit_verdict,
    conclude,
    failure_stage,
    failures_of,
    normalize_splat,
    pooled_rate,
    runs_needed,
    wilson_lower,
)
from orchestrator.check import StepResult, check_step
from orchestrator.plan import Step, load_plan, repeated, select_steps
from orchestrator.report import StageResult

X86_64 = all_arches()["x86_64"]
IMBALANCE = Signature("pin_basic", "imbalance", "nr_foll_pin_acquired != nr_foll_pin_released")


@pytest.fixture(scope="module")
def recovery(recovery_61) -> dict[str, StepResult]:
    return {name: check_step(step, capture, X86_64) for name, (step, capture) in recovery_61.items()}


def test_signatures_of_a_real_crash_hang_and_warning(recovery):
    assert failures_of(recovery["pin_basic_before"]) == ()
    assert failures_of(recovery["sysrq_crash"]) == (
        Signature("sysrq_crash", "crash", "Kernel panic - not syncing: sysrq triggered crash"),)
    assert failures_of(recovery["hang"]) == (Signature("hang", "timeout"),)
    assert failures_of(recovery["pin_with_foll_get"])[0] == Signature(
        "pin_with_foll_get", "splat", "WARNING at pin_user_pages (mm/gup.c)")


def test_a_repeat_counts_for_its_step(recovery):
    result = recovery["hang"]
    again = dataclasses.replace(result, step=dataclasses.replace(result.step, name="hang#4"))
    assert failures_of(again) == (Signature("hang", "timeout"),)
    assert Run.of(again).step == "hang"


def test_splat_titles_do_not_depend_on_addresses_numbers_or_lines():
    first = "BUG: Bad page state in process gup_test  pfn:1a2b3"
    second = "BUG: Bad page state in process gup_test  pfn:0fff1"
    assert normalize_splat(first) == normalize_splat(second) == "BUG: Bad page state in process gup_test pfn:ADDR"
    assert normalize_splat("WARNING: CPU: 1 PID: 77 at mm/gup.c:120 try_grab_folio+0x2e/0x380") == \
        normalize_splat("WARNING: CPU: 0 PID: 39 at mm/gup.c:133 try_grab_folio+0x30/0x390") == \
        "WARNING at try_grab_folio (mm/gup.c)"
    assert normalize_splat("BUG: kernel NULL pointer dereference, address: 0000000000000008") == \
        "BUG: kernel NULL pointer dereference, address:ADDR"


def _failed(message: str) -> StepResult:
    return StepResult(Step("pin_basic", ("-b",), "pin", 60.0), "failed", message, 1.0, "")


@pytest.mark.parametrize("message, kind, detail", [
    ("expected every pin released: nr_foll_pin_acquired rose by 8, nr_foll_pin_released by 7",
     "imbalance", "nr_foll_pin_acquired != nr_foll_pin_released"),
    ("expected exactly 32768 pins (one per base page pinned), nr_foll_pin_acquired rose by 32767",
     "exact-count", "nr_foll_pin_acquired"),
    ("page 1 (pfn 0x1234): expected pincount 512 on an order-9 folio, saw 511", "dump-page", "pincount"),
    ("page 0 (pfn 0x99): expected refcount >= 1025 (1 + GUP_PIN_COUNTING_BIAS) while pinned, saw 2",
     "dump-page", "refcount"),
    ("expected a pin mode to move nr_foll_pin_acquired, it stayed at 5", "counters", "pin"),
    ("expected gup_test to exit 0, it exited 1: ioctl failed", "exit", "1"),
    ("expected 1 PIN_BASIC_TEST result line(s) from gup_test, saw 0", "result-lines", ""),
])
def test_what_a_check_said_is_its_signature(message, kind, detail):
    assert failures_of(_failed(message))[0] == Signature("pin_basic", kind, detail)


def test_most_telling_failure_comes_first():
    message = ("expected exactly 8 pins (one per base page pinned), nr_foll_pin_acquired rose by 9; "
               "expected every pin released: nr_foll_pin_acquired rose by 9, nr_foll_pin_released by 8")
    assert [failure.kind for failure in failures_of(_failed(message))] == ["imbalance", "exact-count"]


def runs(*failures: tuple[Signature, ...], step: str = "pin_basic") -> Outcome:
    return Outcome("tested", tuple(Run(step, failure) for failure in failures))


@pytest.mark.parametrize("outcome, verdict, why", [
    (runs((IMBALANCE,), (IMBALANCE,), ()), "bad", "2 of 3 runs"),
    (runs((IMBALANCE,), (), ()), "weak", "one is not enough"),
    (runs((), (), ()), "good", "3 of 3 runs pass"),
    (runs((Signature("pin_basic", "splat", "WARNING at x (mm/x.c)"),), (), ()), "skip", "a different failure"),
    (runs((IMBALANCE, Signature("pin_basic", "splat", "W")), (IMBALANCE,)), "bad", "2 of 2"),
    (Outcome("build", detail="mm/gup.c:12: error: expected ';'"), "skip", "the build failed: mm/gup.c"),
    (Outcome("boot", detail="no init"), "skip", "the kernel did not boot"),
    (Outcome("config", detail="CONFIG_GUP_TEST: asked y, got n"), "skip", "the config cannot be met"),
    (Outcome("infra", detail="QEMU died"), "infra", "infrastructure"),
    (Outcome("tested", (Run("pin_basic", skipped="this tree has no gup_test"),)), "skip", "could not run"),
    (runs((), step="gup_basic"), "skip", "did not run"),
])
def test_commit_verdicts(outcome, verdict, why):
    result = commit_verdict(outcome, IMBALANCE, 0.8)
    assert result.verdict == verdict and why in result.why


def test_one_matching_crash_is_bad():
    crash = Signature("pin_basic", "crash", "BUG: kernel NULL pointer dereference, address: ADDR")
    assert commit_verdict(runs((crash,), (), ()), crash, 0.5).verdict == "bad"


def test_good_confidence_follows_the_rate():
    assert commit_verdict(runs((), (), ()), IMBALANCE, 0.5).confidence == pytest.approx(0.875)


def test_the_most_frequent_failure_is_followed():
    warn = Signature("gup_basic", "splat", "W")
    outcome = Outcome("tested", (Run("gup_basic", (warn,)),) + tuple(Run("pin_basic", (IMBALANCE,))
                                                                         for _ in range(3)))
    reproduction = choose_signature(outcome, ("gup_basic", "pin_basic"))
    assert reproduction.signature == IMBALANCE and (reproduction.matching, reproduction.runs) == (3, 3)


def test_rates_and_runs():
    assert wilson_lower(10, 10) == pytest.approx(0.787, abs=0.001)
    assert wilson_lower(0, 10) == 0.0
    assert runs_needed(1.0, 9) == 2 and runs_needed(1.0, 9, crash=True) == 1
    assert runs_needed(0.787, 9) == 3
    assert runs_needed(0.2, 9) == 20
    assert runs_needed(0.01, 9) is None and runs_needed(0.0, 9) is None
    assert pooled_rate(0.5, [(10, 10), (3, 3)]) == 0.5  # never rises
    assert pooled_rate(0.5, [(2, 20)]) < 0.1


def test_conclusion_needs_both_required_checks_and_the_bar():
    held = (Check(CULPRIT_FAILS, "held"), Check(PARENT_PASSES, "held"), Check(REVERT_PASSES, "not applicable"))
    assert conclude("abc", (), 0.95, held).exit_code == 0
    assert conclude("abc", (), 0.85, held).outcome == "low-confidence"
    failed = (Check(CULPRIT_FAILS, "held"), Check(PARENT_PASSES, "failed", "bad"))
    assert conclude("abc", (), 0.95, failed).outcome == "unconfirmed"
    assert conclude("", ("a", "b"), 0.95, ()).outcome == "candidates"


@pytest.mark.parametrize("build, boot, stage", [
    (StageResult("failed", "kernel build (x86_64) failed", 1.0, "mm/gup.c:1:1: error: expected"), StageResult(
        "skipped"), "build"),
    (StageResult("failed", "kernel build failed", 1.0, "cc1: No space left on device"), StageResult("skipped"),
     "infra"),
    (StageResult("passed"), StageResult("failed", "boot failed: the kernel crashed while booting", 0.0, "Oops"),
     "boot"),
    (StageResult("passed"), StageResult("failed", "boot failed: QEMU exited", 0.0,
                                        "qemu-system-x86_64: cannot set up guest memory"), "infra"),
    (StageResult("passed"), StageResult("passed"), ""),
])
def test_failure_stage(build, boot, stage):
    assert failure_stage(build, boot) == stage


def test_plan_repeats_and_narrowing():
    plan = repeated(select_steps(load_plan("smoke"), ("pin_basic", "gup_basic")), 3)
    assert [step.name for step in plan.steps] == [
        "gup_basic", "gup_basic#2", "gup_basic#3", "pin_basic", "pin_basic#2", "pin_basic#3"]
    with pytest.raises(Exception, match="--step nosuch: plan smoke has no such step"):
        select_steps(load_plan("smoke"), ("nosuch",))
