"""Timing samples: -r N on benchmark steps only, and N samples back from a real boot's output."""

from conftest import replayed

from orchestrator.arches import all_arches
from orchestrator.check import check_step
from orchestrator.gup_args import parse_gup_args
from orchestrator.plan import load_plan
from orchestrator.samples import is_benchmark, timing_samples, with_samples

X86_64 = all_arches()["x86_64"]


def test_samples_repeat_benchmark_steps_and_leave_tests_alone():
    plan = load_plan("smoke")
    sampled = {step.name: step for step in with_samples(plan, 7).steps}
    for step in plan.steps:
        invocation = parse_gup_args(sampled[step.name].args_for(X86_64))
        assert invocation.repeats == (7 if is_benchmark(step) else 1), step.name
        if not is_benchmark(step):
            assert sampled[step.name] == step
    assert {step.name for step in plan.steps if is_benchmark(step)} == {
        "gup_fast_benchmark", "pin_fast_benchmark", "pin_longterm_benchmark"}


def test_samples_replace_a_plans_own_repeats_and_keep_placeholders():
    plan = load_plan("hugepage")
    step = next(step for step in with_samples(plan, 3).steps if step.name == "thp-pin_fast-repeat")
    assert step.args.count("-r") == 1 and step.args[-2:] == ("-r", "3")
    assert "{huge}" in step.args
    assert with_samples(plan, None) is plan


def test_one_sample_per_time_line_of_a_real_boot(tmp_path_factory):
    steps = replayed("6.1-x86_64-hugepage.console.log", "hugepage.plan.toml", tmp_path_factory)
    step, capture = steps["thp-pin_fast-repeat"]
    result = check_step(step, capture, X86_64)
    samples = timing_samples(result.output)
    assert len(samples["get_usec"]) == len(samples["put_usec"]) == 10
    assert samples["get_usec"][0] == int(result.figures["get_usec.0"])
    step, capture = steps["thp-gup_basic-read"]
    assert timing_samples(check_step(step, capture, X86_64).output) == {}


def test_a_real_icount_boot_gives_ten_steady_samples_per_metric(tmp_path_factory):
    """What the instruction clock's policy rests on: within one boot the get times spread by under 0.2 %, the
    (shorter) put times by under 1 %."""
    steps = replayed("6.1-x86_64-smoke-icount.console.log", "6.1-x86_64-smoke-samples.plan.toml", tmp_path_factory)
    for name in ("gup_fast_benchmark", "pin_fast_benchmark"):
        step, capture = steps[name]
        result = check_step(step, capture, X86_64)
        assert result.passed, result.message
        for metric, values in timing_samples(result.output).items():
            assert len(values) == 10
            assert (max(values) - min(values)) / min(values) < (0.002 if metric == "get_usec" else 0.01), values
    pinned = check_step(*steps["pin_fast_benchmark"], X86_64)
    assert pinned.figures["acquired_delta"] == pinned.figures["expected_pins"] == str(10 * 32768)
