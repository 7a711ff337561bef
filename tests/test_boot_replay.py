import dataclasses
import time

import pexpect
import pytest
from conftest import DATA
from replay import replay

from orchestrator.boot import follow_steps
from orchestrator.errors import InfrastructureError
from orchestrator.plan import Plan, Step, load_plan


def test_every_smoke_step_is_framed_and_completed(smoke_61):
    plan = load_plan("smoke")
    captures = [capture for _, capture in smoke_61.values()]
    assert [capture.name for capture in captures] == [step.name for step in plan.steps]
    assert all(capture.outcome == "completed" and capture.exit_status == 0 for capture in captures)
    assert all(capture.text.startswith("@@gupvm step-begin") for capture in captures)


def test_panic_and_hang_end_their_steps_and_later_boots_resume(recovery_61, data_dir):
    plan = load_plan(str(data_dir / "recovery.plan.toml"))
    captures = [capture for _, capture in recovery_61.values()]
    outcomes = {capture.name: capture for capture in captures}
    assert [capture.name for capture in captures] == [step.name for step in plan.steps]
    crash = outcomes["sysrq_crash"]
    assert crash.outcome == "crashed"
    assert crash.problem.startswith("Kernel panic - not syncing: sysrq triggered crash")
    assert "Call Trace" in crash.problem
    hang = outcomes["hang"]
    assert hang.outcome == "timeout" and "no result after 5 s" in hang.problem
    for name in ("pin_basic_before", "pin_fast_after_crash", "pin_longterm_after_hang", "pin_with_foll_get"):
        assert outcomes[name].outcome == "completed"


def follow_in_two_pieces(first: str, rest: str, timeout: float):
    """One step's console text in two writes a second apart, as a loaded host's console delivers it."""
    plan = Plan("pieces", "", (Step(name="step", program="sh", args=("-c", "true"), expect="get", timeout=timeout),))
    text = f"printf '@@gupvm step-begin 1 step\\r\\r\\n{first}'; sleep 1; printf '{rest}'; exec sleep 60"
    child = pexpect.spawn("sh", ["-c", text], encoding="utf-8")
    captures = []
    try:
        follow_steps(child, plan, captures, time.monotonic() + 30)
    finally:
        child.close(force=True)
    (capture,) = captures
    return capture


def test_a_soft_lockup_report_split_after_bug_is_not_taken_for_a_crash():
    capture = follow_in_two_pieces("[    7.892097] watchdog: BUG: ",
                                   "soft lockup - CPU#0 stuck for 3s! [sh:37]\r\r\n[    7.89] CPU: 0 PID: 37\r\r\n", 4)
    assert capture.outcome == "timeout" and "BUG: soft lockup - CPU#0 stuck for 3s!" in capture.text


def test_a_bug_line_in_pieces_crashes_the_step_with_its_title():
    capture = follow_in_two_pieces("[    2.63] BUG: kernel NULL pointer ",
                                   "dereference, address: 0000000000000000\r\r\n[    2.65] Oops: 0002 [#1] SMP\r\r\n"
                                   "---[ end trace 0000000000000000 ]---\r\r\n", 10)
    assert capture.outcome == "crashed" and capture.problem.startswith("BUG: kernel NULL pointer dereference")


def test_a_step_the_guest_did_not_frame_as_due_is_an_infrastructure_error(tmp_path):
    """Replayed with the plan's steps reversed, no result lands on the wrong step: both names are said."""
    plan = load_plan(str(DATA / "6.1-x86_64-smoke.plan.toml"))
    reversed_plan = dataclasses.replace(plan, steps=plan.steps[::-1])
    with pytest.raises(InfrastructureError, match=r"framed step 1 \(gup_fast_benchmark\) where the plan's step 1 "
                                                  r"\(dump_thp_pinned\) was due"):
        replay(DATA / "6.1-x86_64-smoke.console.log", reversed_plan, tmp_path)
