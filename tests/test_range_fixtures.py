"""Parsers and checks on console logs of the oldest and the newest kernel in the range (tests/data/README.md)."""

import dataclasses
from pathlib import Path

import pytest
from conftest import replayed

from orchestrator.arches import all_arches
from orchestrator.check import check_step
from orchestrator.gup_programs import plan_commands, tree_programs
from orchestrator.parse import parse_gup_output, parse_step
from orchestrator.plan import load_plan

DATA = Path(__file__).parent / "data"
X86_64 = all_arches()["x86_64"]


def checked(log: str, kernel: str, selftests: str, tmp_path_factory) -> dict:
    steps = replayed(log, "smoke.plan.toml", tmp_path_factory)
    plan = load_plan(str(DATA / "smoke.plan.toml"))
    commands = plan_commands(plan, X86_64, kernel, tree_programs(DATA / selftests))
    return {name: check_step(step, capture, X86_64, command)
            for (name, (step, capture)), command in zip(steps.items(), commands, strict=True)}


@pytest.fixture(scope="module")
def smoke_510(tmp_path_factory) -> dict:
    return checked("5.10-x86_64-smoke.console.log", "5.10.262", "selftests-5.10", tmp_path_factory)


def test_gup_benchmark_lines_name_no_command_and_are_read(smoke_510):
    output = smoke_510["pin_fast_benchmark"].output
    (report,) = output.reports
    assert report.command == "" and report.get_usec == 28001 and report.put_usec == 20001
    assert "Time: get:28001 put:20001 us" in output.program_output


def test_gup_benchmark_steps_pass_with_exact_pins(smoke_510):
    for name in ("pin_fast_benchmark", "pin_basic", "pin_longterm_benchmark"):
        result = smoke_510[name]
        assert result.status == "passed", result.message
        assert result.figures["acquired_delta"] == result.figures["expected_pins"] == "32768"
    assert smoke_510["gup_fast_benchmark"].figures["acquired_delta"] == "0"


def test_the_dump_steps_are_skipped_saying_why(smoke_510):
    for name in ("dump_thp_get", "dump_thp_pinned"):
        assert smoke_510[name].status == "skipped"
        assert smoke_510[name].message.startswith("this tree's gup_benchmark has no dump mode (-c)")


def test_a_missing_line_fails_the_exact_count_on_gup_benchmark_too(smoke_510, tmp_path_factory):
    steps = replayed("5.10-x86_64-smoke.console.log", "smoke.plan.toml", tmp_path_factory)
    step, capture = steps["pin_basic"]
    command = plan_commands(load_plan(str(DATA / "smoke.plan.toml")), X86_64, "5.10.262",
                            tree_programs(DATA / "selftests-5.10"))[4]
    broken = dataclasses.replace(capture, text=capture.text.replace("Time: get:88005", "Tme: get:88005"))
    result = check_step(step, broken, X86_64, command)
    assert result.status == "failed" and "expected 1 PIN_BENCHMARK result line(s)" in result.message


@pytest.mark.parametrize(("line", "command", "get", "put", "truncated"), [
    ("Time: get:48003 put:0 us", "", 48003, 0, None),  # 5.10 gup_benchmark
    ("Time: get:1 put:2 us, truncated (size: 4096)", "", 1, 2, 4096),
    ("PIN_FAST_BENCHMARK: Time: get:25000 put:9000 us", "PIN_FAST_BENCHMARK", 25000, 9000, None),  # 6.1
    ("# PIN_FAST_BENCHMARK: Time: get:20995 put:7 us# ", "PIN_FAST_BENCHMARK", 20995, 7, None),  # 6.12, 7.x KTAP
    ("# GUP_FAST_BENCHMARK: Time: get:3 put:4 us# , truncated (size: 8192)# ", "GUP_FAST_BENCHMARK", 3, 4, 8192),
])
def test_every_timing_format_of_the_range(line, command, get, put, truncated):
    (report,) = parse_gup_output(line)
    assert (report.command, report.get_usec, report.put_usec, report.truncated_size) == (command, get, put, truncated)


def test_pin_counters_of_a_510_step(smoke_510):
    output = parse_step(smoke_510["pin_longterm_benchmark"].console)
    assert output.delta("nr_foll_pin_acquired") == output.delta("nr_foll_pin_released") == 32768


@pytest.fixture(scope="module")
def smoke_73(tmp_path_factory) -> dict:
    return checked("7.3-x86_64-smoke.console.log", "7.3.0", "selftests-7.3", tmp_path_factory)


def test_the_newest_kernel_prints_ktap_wrapped_lines_naming_the_command(smoke_73):
    (report,) = smoke_73["pin_fast_benchmark"].output.reports
    assert report.command == "PIN_FAST_BENCHMARK" and (report.get_usec, report.put_usec) == (84005, 4000)
    assert "# PIN_FAST_BENCHMARK: Time: get:84005 put:4000 us" in smoke_73["pin_fast_benchmark"].output.program_output


def test_every_smoke_step_of_73_passes_with_exact_pins_and_dumps(smoke_73):
    for name, result in smoke_73.items():
        assert result.status == "passed", (name, result.message)
    assert smoke_73["pin_basic"].figures["acquired_delta"] == smoke_73["pin_basic"].figures["expected_pins"] == "32768"
    pinned = smoke_73["dump_thp_pinned"].output.dumped_pages
    assert len(pinned) == 3 and all(page.refcount >= 1025 or page.pincount for page in pinned)
