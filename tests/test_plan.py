from pathlib import Path

import pytest

from orchestrator.arches import all_arches
from orchestrator.errors import UsageError
from orchestrator.plan import load_plan
from orchestrator.protocol import render_init


def test_smoke_plan_covers_run_vmtests_gup_set():
    plan = load_plan("smoke")
    args = [step.args for step in plan.steps]
    for wanted in [("-u",), ("-a",), ("-ct", "-F", "0x1", "0", "19", "0x1000"), ("-U",), ("-b",), ("-L",)]:
        assert wanted in args
    pinned_dumps = [step for step in plan.steps if "-c" in "".join(step.args) and "-p" in step.args]
    assert pinned_dumps and all(step.expect == "pin" for step in pinned_dumps)


def test_unknown_plan_is_a_usage_error():
    with pytest.raises(UsageError, match="no such plan; choose from"):
        load_plan("nosuchplan")


def test_invalid_plan_file_is_a_usage_error(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[step]]\nname = "x"\nargs = ["-a"]\nexpect = "maybe"\n')
    with pytest.raises(UsageError, match="invalid plan"):
        load_plan(str(bad))


def test_init_runs_each_step_with_its_index_and_resumes_from_the_command_line():
    plan = load_plan("smoke")
    init = render_init(plan, all_arches()["x86_64"])
    assert "step 2 pin_fast_benchmark - gup_test -a" in init
    assert "gupvm.first=" in init
    assert "stat_refresh" in init  # exact counters need the per-CPU deltas folded
    assert "mount -t devtmpfs" in init
