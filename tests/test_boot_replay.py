from orchestrator.plan import load_plan


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
