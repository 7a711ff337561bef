from pathlib import Path

import pytest

from orchestrator.arches import all_arches
from orchestrator.errors import UsageError
from orchestrator.gup_programs import plan_commands, tree_programs
from orchestrator.plan import load_plan
from orchestrator.protocol import parse_environment, render_init

SELFTESTS_61 = Path(__file__).parent / "data/selftests-6.1"


def init_for(plan, arch_name: str) -> str:
    arch = all_arches()[arch_name]
    return render_init(plan, arch, plan_commands(plan, arch, "6.1.176", tree_programs(SELFTESTS_61)))


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
    init = init_for(plan, "x86_64")
    assert "step 2 pin_fast_benchmark - - gup_test -a" in init
    assert "gupvm.first=" in init
    assert "stat_refresh" in init  # exact counters need the per-CPU deltas folded
    assert "mount -t devtmpfs" in init


def test_matrix_plan_is_run_vmtests_gup_matrix():
    plan = load_plan("matrix")
    assert len(plan.steps) == 180
    first, last = plan.steps[0], plan.steps[-1]
    assert first.name == "thp-gup_fast-write-shared-n1" and first.args == ("-t", "-u", "-w", "-S", "-n", "1")
    assert first.expect == "get" and first.requires == ("thp",)
    assert last.name == "hugetlb-pin_longterm-read-private-n123" and last.expect == "pin"
    assert last.requires == ("hugetlb",)
    assert len({step.name for step in plan.steps}) == 180


def test_huge_page_geometry_is_filled_in_per_arch():
    plan = load_plan("hugepage")
    dump = next(step for step in plan.steps if step.name == "hugetlb-dump-pinned")
    arches = all_arches()
    assert dump.args_for(arches["x86_64"])[-2:] == ("511", "512")
    assert dump.args_for(arches["i386"])[-2:] == ("1023", "1024")


def test_setup_reserves_hugetlb_pages_by_the_arch_huge_page_size():
    plan = load_plan("hugepage")
    assert "setup 64 always" in init_for(plan, "x86_64")  # 128 MB of 2 MB pages
    assert "setup 32 always" in init_for(plan, "i386")  # 128 MB of 4 MB pages


def test_unknown_placeholder_or_requirement_is_a_usage_error(tmp_path: Path):
    for body in ('args = ["-n", "{hug}"]\nexpect = "pin"', 'args = ["-a"]\nexpect = "pin"\nrequires = ["gpu"]'):
        bad = tmp_path / "bad.toml"
        bad.write_text(f'[[step]]\nname = "x"\n{body}\n')
        with pytest.raises(UsageError, match="invalid plan"):
            load_plan(str(bad))


def test_an_expected_warning_that_is_no_regular_expression_is_a_usage_error(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[step]]\nname = "x"\nargs = []\nexpect = "pin"\nexpected_warning = "try_grab_folio("\n')
    with pytest.raises(UsageError, match="expected_warning is not a regular expression"):
        load_plan(str(bad))


@pytest.mark.parametrize("console, environment", [
    ("@@gupvm environment hugetlb_pages=8/8 thp=always\r\n", {"hugetlb_pages": "8/8", "thp": "always"}),
    ("[  1.2] x\r\r\n@@gupvm environment hugetlb_pages=0/64 thp=unavailable\r\r\n@@gupvm ready 6.1",
     {"hugetlb_pages": "0/64", "thp": "unavailable"}),
    ("@@gupvm environment note=a=b\n", {"note": "a=b"}),
    ("@@gupvm environment \n", {}),
    ("no environment line at all\n", {}),
])
def test_the_guests_environment_line_is_read_as_it_reports(console, environment):
    assert parse_environment(console) == environment
