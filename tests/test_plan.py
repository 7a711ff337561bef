from pathlib import Path

import pytest

from orchestrator.arches import all_arches
from orchestrator.errors import UsageError
from orchestrator.gup_programs import plan_commands, tree_programs
from orchestrator.plan import load_plan, on_arch
from orchestrator.protocol import kernel_args, parse_environment, render_init

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


def test_a_single_hugetlb_size_arch_runs_the_plan_as_written():
    plan = load_plan("hugepage")
    for name in ("x86_64", "i386", "i386-pae", "armv7", "armv7-lpae"):
        assert on_arch(plan, all_arches()[name]) == plan
        assert kernel_args(plan, all_arches()[name], ()) == ()


def test_arm64_runs_every_hugetlb_step_again_at_its_other_sizes_each_a_testcase():
    plan, arm64 = load_plan("hugepage"), all_arches()["arm64"]
    steps = {step.name: step for step in on_arch(plan, arm64).steps}
    hugetlb = [step.name for step in plan.steps if "-H" in step.args]
    assert len(steps) == len(plan.steps) + 2 * len(hugetlb)
    names = list(steps)
    for name in hugetlb:  # each size right after the step it repeats
        at = names.index(name)
        assert names[at + 1:at + 3] == [f"{name}-64kB", f"{name}-32MB"]
    # gup_test's -H maps the default size only: the others map a file of a hugetlbfs mount of their size.
    dump = steps["hugetlb-dump-pinned-64kB"]
    assert dump.args == ("-f", "/mnt/hugetlb-64kB/hugetlb-dump-pinned", "-c", "-p", "0", "1", "15", "16")
    assert steps["hugetlb-dump-pinned-32MB"].args[-2:] == ("8191", "8192")
    assert steps["hugetlb-pin_basic-concurrent-32MB"].args == (
        "-f", "/mnt/hugetlb-32MB/hugetlb-pin_basic-concurrent", "-b", "-n", "8192", "-j", "4")
    assert steps["hugetlb-shared-pin_fast-64kB"].requires == ("hugetlb-64kB",)
    assert steps["hugetlb-dump-pinned"] == next(step for step in plan.steps if step.name == "hugetlb-dump-pinned")
    assert steps["thp-dump-pinned"] == next(step for step in plan.steps if step.name == "thp-dump-pinned")


def test_a_tree_value_survives_the_expansion_to_be_filled_in_on_the_tree(tmp_path: Path):
    written = tmp_path / "longterm.toml"
    written.write_text('[[step]]\nname = "dump"\nargs = ["-H", "-c", "-p", "-F", "{foll_longterm}", "{huge}"]\n'
                       'expect = "pin"\nrequires = ["hugetlb"]\n')
    arm64 = all_arches()["arm64"]
    at_64k = on_arch(load_plan(str(written)), arm64).steps[1]
    assert at_64k.args_for(arm64, {"foll_longterm": "0x100"}) == (
        "-f", "/mnt/hugetlb-64kB/dump", "-c", "-p", "-F", "0x100", "16")


def test_arm64_reserves_its_other_hugetlb_sizes_at_boot_and_mounts_each():
    plan, arm64 = load_plan("hugepage"), all_arches()["arm64"]
    # 128 MB of each: 2048 pages of 64 kB, 4 of 32 MB (beyond what the page allocator hands out at run time).
    assert kernel_args(plan, arm64, ()) == ("hugepagesz=64K", "hugepages=2048", "hugepagesz=32768K", "hugepages=4")
    assert "setup 64 always '64kB:64:2048 32MB:32768:4'" in render_init(
        on_arch(plan, arm64), arm64, plan_commands(on_arch(plan, arm64), arm64, "6.1.176", tree_programs(SELFTESTS_61)))
    assert kernel_args(load_plan("smoke"), arm64, ()) == ()  # no hugetlb asked for: none reserved
