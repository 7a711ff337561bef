"""The checks on real captures, and on real captures broken on purpose."""

import dataclasses

import pytest

from orchestrator.arches import all_arches
from orchestrator.boot import CaptureOutcome, StepCapture
from orchestrator.check import GUP_PIN_COUNTING_BIAS, _dumped_page_problem, check_step
from orchestrator.gup_programs import USUAL_ACCOUNTING
from orchestrator.parse import DumpedPage
from orchestrator.plan import Step

X86_64 = all_arches()["x86_64"]


def verdict(step, capture):
    return check_step(step, capture, X86_64)


@pytest.fixture
def smoke(smoke_61):
    return smoke_61


@pytest.fixture
def recovery(recovery_61):
    return recovery_61


def test_every_smoke_step_passes(smoke):
    for step, capture in smoke.values():
        result = verdict(step, capture)
        assert result.status == "passed", result.message
        assert result.message == ""


def test_figures_carry_deltas_timings_and_dumped_pages(smoke):
    figures = verdict(*smoke["pin_fast_benchmark"]).figures
    assert figures["acquired_delta"] == figures["released_delta"] == "32768"
    assert int(figures["get_usec.0"]) > 0
    dump = verdict(*smoke["dump_thp_pinned"]).figures
    assert dump["page.0.refcount"] == "1025" and dump["page.2.order"] == "9" and dump["page.2.pincount"] == "512"


def _with_released_after(capture, value: int):
    before, after = capture.text.split("@@gupvm vmstat-after", 1)
    lines = after.splitlines(keepends=True)
    lines = [f"nr_foll_pin_released {value}\r\n" if line.startswith("nr_foll_pin_released") else line
             for line in lines]
    return dataclasses.replace(capture, text=before + "@@gupvm vmstat-after" + "".join(lines))


def test_unbalanced_pins_fail_with_both_deltas(smoke):
    step, capture = smoke["pin_basic"]
    result = verdict(step, _with_released_after(capture, 32768 * 2 - 3))
    assert result.status == "failed"
    assert "expected every pin released: nr_foll_pin_acquired rose by 32768, nr_foll_pin_released by 32765" \
        in result.message


def test_pin_mode_that_pins_nothing_fails(smoke):
    step, capture = smoke["gup_basic"]
    result = verdict(dataclasses.replace(step, expect="pin"), capture)
    assert result.status == "failed" and "expected a pin mode to move nr_foll_pin_acquired" in result.message


def test_get_mode_that_pins_fails(smoke):
    step, capture = smoke["pin_basic"]
    result = verdict(dataclasses.replace(step, expect="get"), capture)
    assert result.status == "failed"
    assert "expected a get mode to leave the pin counters alone, they rose by 32768 and 32768" in result.message


def test_nonzero_exit_fails_with_the_output_tail(smoke):
    step, capture = smoke["pin_basic"]
    result = verdict(step, dataclasses.replace(capture, exit_status=1))
    assert result.status == "failed" and "expected gup_test to exit 0, it exited 1: PIN_BASIC_TEST: done" \
        in result.message


def test_missing_counters_fail(smoke):
    step, capture = smoke["pin_basic"]
    stripped = dataclasses.replace(capture, text=capture.text.replace("nr_foll_pin_acquired", "nr_other"))
    result = verdict(step, stripped)
    assert "expected /proc/vmstat to show nr_foll_pin_acquired" in result.message


def test_a_real_warning_fails_the_step(recovery):
    result = verdict(*recovery["pin_with_foll_get"])
    assert result.status == "failed"
    assert "expected no kernel splat, the kernel logged: WARNING: CPU: 0" in result.message
    assert "expected a pin mode to move" in result.message  # pin_user_pages refused FOLL_GET


def test_crash_and_timeout_keep_their_kind(recovery):
    crashed = verdict(*recovery["sysrq_crash"])
    assert crashed.status == "crashed" and "Kernel panic - not syncing: sysrq triggered crash" in crashed.message
    timed_out = verdict(*recovery["hang"])
    assert timed_out.status == "timeout" and "no result after 5 s" in timed_out.message
    assert verdict(*recovery["pin_fast_after_crash"]).status == "passed"


def test_a_step_that_hung_after_a_splat_keeps_its_time_and_console():
    step = Step("pin_longterm", ("-L",), "pin", 30.0)
    text = "@@gupvm step-begin 1 pin_longterm\r\n[    7.9] watchdog: BUG: soft lockup - CPU#0 stuck for 3s!\r\n"
    capture = StepCapture(1, "pin_longterm", CaptureOutcome.TIMEOUT, text, 31.5, problem="no result after 30 s")
    result = verdict(step, capture)
    assert (result.seconds, result.console) == (31.5, text)


@pytest.mark.parametrize("problem, text, title", [
    ("Kernel panic - not syncing: Oops", "", "Kernel panic - not syncing: Oops"),
    ("the console ended", "[ 1.0] BUG: kernel NULL pointer dereference\r\n", "BUG: kernel NULL pointer dereference"),
    ("the console ended", "no splat at all\r\n", None),
])
def test_a_crash_is_named_by_its_first_splat_line_from_the_report_or_else_the_console(problem, text, title):
    step = Step("pin_basic", ("-b",), "pin", 30.0)
    result = verdict(step, StepCapture(1, "pin_basic", CaptureOutcome.CRASHED, text, 2.0, problem=problem))
    assert result.status == "crashed"
    assert result.problems[0].about == ((title,) if title else ())


def _dumped(refcount: int, pincount: int | None = None, order: int | None = None) -> DumpedPage:
    return DumpedPage(refcount, 1, "", 0, 0x1000, order, pincount, None, "", "gup_test: dump_pages() test")


@pytest.mark.parametrize("page, pinned, broken", [
    (_dumped(GUP_PIN_COUNTING_BIAS + 1), True, ""),  # order 0, one pin on a page referenced once
    (_dumped(GUP_PIN_COUNTING_BIAS), True, "refcount"),  # one short of a pin
    (_dumped(GUP_PIN_COUNTING_BIAS - 1), False, ""),
    (_dumped(GUP_PIN_COUNTING_BIAS), False, "refcount"),  # as many references as a pin adds: looks pinned
    (_dumped(512 + GUP_PIN_COUNTING_BIAS - 1, 512, 9), True, ""),  # a THP, one pin per subpage, exact pincount
    (_dumped(512 + GUP_PIN_COUNTING_BIAS, 512, 9), True, "refcount"),  # inflated by the bias
    (_dumped(3, 511, 9), True, "pincount"),
    (_dumped(3, 1, 9), False, "pincount"),
])
def test_a_dumped_page_breaks_its_promise_at_the_exact_boundary_and_names_the_field(page, pinned, broken):
    found = _dumped_page_problem(page, pinned, USUAL_ACCOUNTING)
    assert (found[0] if found else "") == broken


def test_missing_result_lines_fail_with_the_counts_compared(smoke):
    step, capture = smoke["pin_basic"]
    text = "".join(line for line in capture.text.splitlines(keepends=True) if "PIN_BASIC_TEST" not in line)
    problems = [problem for problem in verdict(step, dataclasses.replace(capture, text=text)).problems
                if problem.kind == "result-lines"]
    assert [problem.figures for problem in problems] == [{"expected": 1, "seen": 0}]
