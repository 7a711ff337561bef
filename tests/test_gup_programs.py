"""The tree's test programs, read from real selftests sources of 5.10, 6.1 and 7.3 (tests/data/selftests-*)."""

from pathlib import Path

import pytest

from orchestrator.arches import all_arches
from orchestrator.gup_args import parse_gup_args
from orchestrator.gup_programs import accepted_getopt, plan_commands, step_command, tree_programs
from orchestrator.plan import load_plan
from orchestrator.protocol import render_init

DATA = Path(__file__).parent / "data"
PROGRAMS = {version: tree_programs(DATA / f"selftests-{version}") for version in ("5.10", "6.1", "7.3")}


def test_each_tree_has_the_program_of_its_time():
    assert PROGRAMS["5.10"]["gup_test"].kind.name == "gup_benchmark"
    assert PROGRAMS["6.1"]["gup_test"].kind.name == "gup_test"
    own = {"io_uring_fixed", "remote_access", "pin_limit", "o_direct", "udmabuf"}  # gupvm's: every tree has them
    assert set(PROGRAMS["7.3"]) == {"gup_test", "gup_longterm"} | own
    assert set(PROGRAMS["5.10"]) == {"gup_test"} | own


def test_options_are_what_the_switch_handles_not_just_the_getopt_string():
    assert PROGRAMS["5.10"]["gup_test"].getopt == "m:r:n:f:abtTLUuwSH"
    assert "-z" in PROGRAMS["6.1"]["gup_test"].options
    # 7.x still lists z in its getopt string, but its switch rejects it.
    assert "-z" not in PROGRAMS["7.3"]["gup_test"].options and "-c" in PROGRAMS["7.3"]["gup_test"].options
    assert accepted_getopt("getopt(argc, argv, \"ab:c\"); case 'a': case 'b':") == "ab:"


@pytest.mark.parametrize(("planned", "on_5_10"), [
    (("-u",), ("-u", "-w")),  # gup_test writes by default, gup_benchmark reads
    (("-a", "-W"), ("-a",)),
    (("-a", "-w"), ("-a", "-w")),
    (("-t", "-a", "-n", "512", "-r", "10"), ("-t", "-a", "-n", "512", "-r", "10", "-w")),
])
def test_gup_benchmark_runs_the_same_test_as_gup_test(planned, on_5_10):
    command = step_command("gup_test", planned, PROGRAMS["5.10"])
    assert (command.program, command.args, command.skip_reason) == ("gup_benchmark", on_5_10, "")
    assert parse_gup_args(planned).write == parse_gup_args(command.args, command.kind).write


def test_gup_benchmark_modes_are_its_own_commands():
    kind = PROGRAMS["5.10"]["gup_test"].kind
    pin = parse_gup_args(("-b", "-r", "3", "-w"), kind)
    assert (pin.command, pin.pins, pin.benchmark, pin.ioctls) == ("PIN_BENCHMARK", True, True, 3)
    assert parse_gup_args(("-U",), kind).command == "GUP_BENCHMARK"


@pytest.mark.parametrize(("version", "args", "reason"), [
    ("5.10", ("-ct", "-F", "0x1", "0", "19"),
     "this tree's gup_benchmark has no dump mode (-c), no extra gup flags (-F)"),
    ("5.10", ("-H", "-a", "-j", "4"), "this tree's gup_benchmark has no concurrent threads (-j)"),
    ("7.3", ("-T", "-c", "-p", "-W", "-z", "-m", "1", "0"),
     "this tree's gup_test has no leaving the memory for the kernel to fault in (-z)"),
    ("6.1", ("-T", "-c", "-p", "-W", "-z", "-m", "1", "0"), ""),
])
def test_a_mode_the_tree_lacks_is_a_stated_skip(version, args, reason):
    assert step_command("gup_test", args, PROGRAMS[version]).skip_reason == reason


def test_a_program_the_tree_lacks_is_a_stated_skip_and_others_run_as_written():
    assert step_command("gup_longterm", (), PROGRAMS["6.1"]).skip_reason == "this tree has no gup_longterm"
    assert step_command("gup_longterm", (), PROGRAMS["7.3"]).skip_reason == ""
    echo = step_command("echo", ("hi",), PROGRAMS["5.10"])
    assert (echo.program, echo.args, echo.kind, echo.skip_reason) == ("echo", ("hi",), None, "")


def test_every_hugepage_step_runs_or_says_why_on_every_tree():
    plan = load_plan("hugepage")
    x86_64 = all_arches()["x86_64"]
    for version, kernel in (("5.10", "5.10.262"), ("6.1", "6.1.176"), ("7.3", "7.3.0")):
        commands = plan_commands(plan, x86_64, kernel, PROGRAMS[version])
        init = render_init(plan, x86_64, commands)
        for index, (step, command) in enumerate(zip(plan.steps, commands, strict=True), start=1):
            if command.skip_reason:
                assert f"skip {index} {step.name} " in init
            else:
                assert f"step {index} {step.name} " in init
    on_5_10 = dict(zip((step.name for step in plan.steps), plan_commands(plan, x86_64, "5.10.262", PROGRAMS["5.10"]),
                       strict=True))
    assert on_5_10["thp-pin_fast-write"].args == ("-t", "-a", "-w") and not on_5_10["thp-pin_fast-write"].skip_reason
    assert on_5_10["thp-pin_fast-read"].args == ("-t", "-a")
    assert "dump mode" in on_5_10["hugetlb-dump-pinned"].skip_reason


def test_selftests_from_another_tree_take_all_but_the_kernels_own_interface(tmp_path):
    old, new = tmp_path / "5.10", tmp_path / "7.3"
    for tree, names in ((old, ("gup_benchmark.c",)), (new, ("gup_test.c", "gup_longterm.c", "cow.c"))):
        tree.mkdir()
        for name in names:
            (tree / name).write_text("int main(void) { getopt(argc, argv, \"ab\"); switch (0) { case 'a': ; } }\n")
    programs = tree_programs(old, others_from=new)
    assert programs["gup_test"].kind.name == "gup_benchmark"  # gup_test's ioctl is the kernel's: its own tree's
    assert {"gup_longterm", "cow"} <= set(programs)
    assert "cow" not in tree_programs(old)
