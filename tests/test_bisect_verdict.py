"""Signatures and verdicts, on step results of real boots and on plain figures."""

import dataclasses
import re
import shlex
import xml.etree.ElementTree as ElementTree

import pexpect
import pytest

from orchestrator.arches import all_arches
from orchestrator.bisect_verdict import (
    CULPRIT_FAILS,
    PARENT_PASSES,
    REVERT_PASSES,
    Check,
    Outcome,
    Signature,
    StepRun,
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
from orchestrator.boot import CaptureOutcome, StepCapture, wait_ready
from orchestrator.check import check_step
from orchestrator.errors import InfrastructureError
from orchestrator.plan import Step, load_plan, repeated, select_steps
from orchestrator.report import junit_xml
from orchestrator.results import StageResult, Status, StepResult, SuiteResult
from orchestrator.tools import run_logged

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
    assert StepRun.of(again).step == "hang"


def test_splat_titles_do_not_depend_on_addresses_numbers_or_lines():
    first = "BUG: Bad page state in process gup_test  pfn:1a2b3"
    second = "BUG: Bad page state in process gup_test  pfn:0fff1"
    assert normalize_splat(first) == normalize_splat(second) == "BUG: Bad page state in process gup_test pfn:ADDR"
    assert normalize_splat("WARNING: CPU: 1 PID: 77 at mm/gup.c:120 try_grab_folio+0x2e/0x380") == \
        normalize_splat("WARNING: CPU: 0 PID: 39 at mm/gup.c:133 try_grab_folio+0x30/0x390") == \
        "WARNING at try_grab_folio (mm/gup.c)"
    assert normalize_splat("BUG: kernel NULL pointer dereference, address: 0000000000000008") == \
        "BUG: kernel NULL pointer dereference, address:ADDR"


def edited(capture: StepCapture, *replacements: tuple[str, str]) -> StepCapture:
    """A real step's console with lines changed, as a kernel that breaks a promise would print them."""
    text = re.sub(r"[\r\n]+", "\n", capture.text)
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return dataclasses.replace(capture, text=text, exit_status=int(text.rsplit("exit=", 1)[1].split()[0]))


WARNING = "[    3.1] WARNING: CPU: 0 PID: 51 at mm/gup.c:120 try_grab_folio+0x2e/0x380\n"
# A real step's console, changed as a kernel breaking one promise would print it, and the signature it gives.
BROKEN = {
    "imbalance": ("pin_fast_benchmark", [("nr_foll_pin_released 32768", "nr_foll_pin_released 32767")],
                  Signature("pin_fast_benchmark", "imbalance", "nr_foll_pin_acquired != nr_foll_pin_released")),
    "exact-count": ("pin_fast_benchmark", [("acquired 32768", "acquired 32769"), ("released 32768", "released 32769")],
                    Signature("pin_fast_benchmark", "exact-count", "nr_foll_pin_acquired")),
    "counters": ("gup_fast_benchmark", [("nr_foll_pin_acquired 0\nnr_foll_pin_released 0\n@@gupvm output",
                                         "nr_foll_pin_acquired 4\nnr_foll_pin_released 4\n@@gupvm output")],
                 Signature("gup_fast_benchmark", "counters", "get")),
    "exit": ("pin_basic", [("exit=0", "exit=1")], Signature("pin_basic", "exit", "1")),
    "result-lines": ("pin_fast_benchmark", [("PIN_FAST_BENCHMARK: Time:", "PIN_FAST_BENCHMARK: Tim:")],
                     Signature("pin_fast_benchmark", "result-lines", "PIN_FAST_BENCHMARK")),
    "splat": ("pin_basic", [("@@gupvm kmsg\n", "@@gupvm kmsg\n" + WARNING)],
              Signature("pin_basic", "splat", "WARNING at try_grab_folio (mm/gup.c)")),
    "not-dma-pinned": ("pin_basic", [("@@gupvm kmsg\n", "@@gupvm kmsg\n[    3.2] gup_test: page is NOT dma-pinned\n")],
                       Signature("pin_basic", "splat", "gup_test: page is NOT dma-pinned")),
    "dump-page": ("dump_thp_pinned", [("compound_pincount:512", "compound_pincount:511")],
                  Signature("dump_thp_pinned", "dump-page", "pincount")),
}


def broken(smoke_61, case: str) -> StepResult:
    name, replacements, _ = BROKEN[case]
    step, capture = smoke_61[name]
    return check_step(step, edited(capture, *replacements), X86_64)


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_promise_fails_the_step_with_its_signature(smoke_61, case):
    result = broken(smoke_61, case)
    assert result.status == "failed"
    assert BROKEN[case][2] in failures_of(result)


@pytest.mark.parametrize("case", BROKEN)
def test_rewording_every_message_changes_no_signature(smoke_61, case):
    result = broken(smoke_61, case)
    reworded = dataclasses.replace(
        result, message="Lorem ipsum; dolor sit amet",
        problems=tuple(dataclasses.replace(problem, sentence=f"reworded {number}")
                       for number, problem in enumerate(result.problems)))
    assert failures_of(reworded) == failures_of(result)


def test_most_telling_failure_comes_first(smoke_61):
    step, capture = smoke_61["pin_fast_benchmark"]
    result = check_step(step, edited(capture, ("nr_foll_pin_acquired 32768", "nr_foll_pin_acquired 32769")), X86_64)
    assert [failure.kind for failure in failures_of(result)] == ["imbalance", "exact-count"]


def runs(*failures: tuple[Signature, ...], step: str = "pin_basic") -> Outcome:
    return Outcome("tested", tuple(StepRun(step, failure) for failure in failures))


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
    (Outcome("tested", (StepRun("pin_basic", skipped="this tree has no gup_test"),)), "skip", "could not run"),
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
    outcome = Outcome("tested", (StepRun("gup_basic", (warn,)),) + tuple(StepRun("pin_basic", (IMBALANCE,))
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


CHECK_STATES = ("held", "failed", "not applicable", None)  # None: the check was not run at all


@pytest.mark.parametrize("culprit_fails", CHECK_STATES)
@pytest.mark.parametrize("parent_passes", CHECK_STATES)
@pytest.mark.parametrize("revert_passes", CHECK_STATES)
def test_a_culprit_is_named_only_when_every_required_check_held_and_none_failed(culprit_fails, parent_passes,
                                                                              revert_passes):
    states = {CULPRIT_FAILS: culprit_fails, PARENT_PASSES: parent_passes, REVERT_PASSES: revert_passes}
    checks = tuple(Check(name, state) for name, state in states.items() if state)
    conclusion = conclude("abc", (), 0.95, checks)
    confirmed = culprit_fails == parent_passes == "held" and revert_passes != "failed"
    assert conclusion.outcome == ("culprit" if confirmed else "unconfirmed")
    assert conclusion.exit_code == (0 if confirmed else 1) and conclusion.culprit == "abc"


def test_a_hang_with_a_soft_lockup_report_fails_with_the_splat_named():
    step = Step("pin_longterm", ("-L",), "pin", 30.0)
    text = ("@@gupvm step-begin 1 pin_longterm\r\n[    7.892097] watchdog: BUG: soft lockup - CPU#0 stuck for 3s! "
            "[gup_test:37]\r\n[    7.892101] CPU: 0 PID: 37 Comm: gup_test\r\n")
    capture = StepCapture(1, "pin_longterm", CaptureOutcome.TIMEOUT, text, 30.0, problem="no result after 30 s")
    result = check_step(step, capture, X86_64)
    assert result.status == "failed" and "soft lockup" in result.message and "no result after 30 s" in result.message
    assert failures_of(result) == (
        Signature("pin_longterm", "splat", "watchdog: BUG: soft lockup - CPU#N stuck for Ns! [gup_test:N]"),)


def test_a_ktap_not_ok_fails_the_step_its_testcase_and_gives_a_signature(tmp_path_factory):
    from conftest import replayed
    step, capture = replayed("6.12-x86_64-hugepage.console.log", "hugepage.plan.toml",
                             tmp_path_factory)["gup_longterm"]
    text = capture.text.replace("ok 1 ", "not ok 1 ", 1)
    result = check_step(step, dataclasses.replace(capture, text=text), X86_64)
    assert result.status == "failed" and [problem.kind for problem in result.problems] == ["ktap"]
    (signature,) = failures_of(result)
    assert signature.kind == "ktap" and signature.detail
    suite = SuiteResult("gupvm.x", {}, StageResult(Status.PASSED), StageResult(Status.PASSED), (result,))
    cases = ElementTree.fromstring(junit_xml([suite])).iter("testcase")
    failed = [case.get("name") for case in cases if case.find("failure") is not None]
    assert failed[0] == "gup_longterm" and len(failed) == 2 and failed[1].startswith("gup_longterm: 1 ")


@pytest.mark.parametrize("said, stage", [
    ("mm/gup.c:1:1: error: expected ';' before '}' token", "build"),
    ("usr/gen_initramfs.sh: Cannot open '/nonexistent/initramfs'\nmake[3]: *** [usr/Makefile:76] Error 1", "build"),
    ("cc1: fatal error: cannot write mm/gup.o: No space left on device", "infra"),
    ("", "infra"),  # killed without a word: the host's doing
])
def test_a_failed_builds_blame_decides_skip_or_abort(said, stage, tmp_path):
    with pytest.raises(InfrastructureError) as raised:
        run_logged(["sh", "-c", f"printf '%s\\n' {shlex.quote(said)}; exit 2"], what="kernel build",
                   log=tmp_path / "build.log")
    error = raised.value
    build = StageResult(Status.FAILED, str(error).splitlines()[0], 1.0, str(error), error.blame)
    assert failure_stage(build, StageResult(Status.SKIPPED)) == stage


@pytest.mark.parametrize("console, stage", [
    ("[    0.5] Kernel panic - not syncing: VFS: Unable to mount root fs\n", "boot"),
    ("qemu-system-x86_64: cannot set up guest memory 'pc.ram': Cannot allocate memory\n", "infra"),
])
def test_a_failed_boots_blame_decides_skip_or_abort(console, stage, tmp_path):
    child = pexpect.spawn("sh", ["-c", f"printf '%s' {shlex.quote(console)}"], encoding="utf-8")
    with pytest.raises(InfrastructureError) as raised:
        wait_ready(child, 5, tmp_path / "console.log")
    error = raised.value
    boot = StageResult(Status.FAILED, str(error).splitlines()[0], 1.0, str(error), error.blame)
    assert failure_stage(StageResult(Status.PASSED), boot) == stage
    assert failure_stage(StageResult(Status.PASSED), StageResult(Status.PASSED)) is None


def test_plan_repeats_and_narrowing():
    plan = repeated(select_steps(load_plan("smoke"), ("pin_basic", "gup_basic")), 3)
    assert [step.name for step in plan.steps] == [
        "gup_basic", "gup_basic#2", "gup_basic#3", "pin_basic", "pin_basic#2", "pin_basic#3"]
    with pytest.raises(Exception, match="--step nosuch: plan smoke has no such step"):
        select_steps(load_plan("smoke"), ("nosuch",))
