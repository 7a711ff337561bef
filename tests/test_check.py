"""The checks on real captures, and on real captures broken on purpose."""

import dataclasses

import pytest

from orchestrator.arches import all_arches
from orchestrator.check import check_step

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
