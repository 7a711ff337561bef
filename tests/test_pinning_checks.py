"""The checks beyond the pin counters, on a real boot of the pinning plan (7.3, x86_64, a movable zone and CMA),
each with the figure that shows its failure put into the captured console."""

import dataclasses
import re

import pytest
from conftest import DATA, replayed
from kcidb_io import schema

from orchestrator.arches import all_arches
from orchestrator.check import FREE_MEMORY_TOLERANCE_KB, check_step, migration_possible
from orchestrator.gup_programs import StepCommand, program_kinds
from orchestrator.kcidb import kcidb_json
from orchestrator.parse import CaseStatus
from orchestrator.protocol import parse_environment
from orchestrator.report import junit_xml, records
from orchestrator.results import ProblemKind, StageResult, Status, SuiteResult

X86_64 = all_arches()["x86_64"]
LOG = "7.3-x86_64-pinning.console.log"
ENVIRONMENT = parse_environment((DATA / LOG).read_text())


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    return replayed(LOG, "pinning.plan.toml", tmp_path_factory)


def verdict(steps, name, edit=lambda text: text, environment=ENVIRONMENT):
    step, capture = steps[name]
    args = tuple(arg.replace("{foll_longterm}", "0x100") for arg in step.args_for(X86_64, {"foll_longterm": "0x100"}))
    command = StepCommand(step.program, args, program_kinds().get(step.program))
    return check_step(step, dataclasses.replace(capture, text=edit(capture.text)), X86_64, command, environment)


def kinds(result) -> list[ProblemKind]:
    return [problem.kind for problem in result.problems]


def test_the_guest_reports_its_zones_movable_memory_and_cma():
    assert ENVIRONMENT["zones"] == "DMA32,Normal,Movable"
    assert 0.95 * 256 * 256 < int(ENVIRONMENT["movable_pages"]) <= 256 * 256  # movablecore=256M, present pages
    assert re.fullmatch(r"\d+\+8192", ENVIRONMENT["cma"])  # cma=32M


def test_every_step_of_the_clean_kernel_passes(steps):
    for name in steps:
        result = verdict(steps, name)
        assert result.status == Status.PASSED, (name, result.message)


def test_a_huge_page_not_freed_is_named(steps):
    def one_huge_page_short(text):
        after = text.index("@@gupvm memory-after")
        return text[:after] + text[after:].replace("HugePages_Free:       32", "HugePages_Free:       31", 1)
    result = verdict(steps, "hugetlb_dio", one_huge_page_short)
    assert kinds(result) == [ProblemKind.HUGE_PAGES_NOT_FREED]
    assert result.problems[0].figures == {"before": 32, "after": 31}


def test_memory_not_freed_beyond_the_tolerance_is_named_and_within_it_is_not(steps):
    def less_free_by(kilobytes):
        def edit(text):
            after = text.index("@@gupvm memory-after")
            free = re.compile(r"MemFree: +(\d+) kB")
            value = int(free.search(text, after).group(1))
            return text[:after] + free.sub(f"MemFree:          {value - kilobytes} kB", text[after:], 1)
        return edit
    assert verdict(steps, "memfd_secret", less_free_by(FREE_MEMORY_TOLERANCE_KB // 2)).status == Status.PASSED
    result = verdict(steps, "memfd_secret", less_free_by(FREE_MEMORY_TOLERANCE_KB * 4))
    assert kinds(result) == [ProblemKind.MEMORY_NOT_FREED]


def test_memory_a_ram_disk_keeps_is_not_counted_against_the_step(steps):
    def everything_gone(text):
        after = text.index("@@gupvm memory-after")
        return text[:after] + re.sub(r"MemFree: +\d+ kB", "MemFree:          1 kB", text[after:], count=1)
    assert verdict(steps, "gup_longterm-ext4", everything_gone).status == Status.PASSED
    assert ProblemKind.MEMORY_NOT_FREED in kinds(verdict(steps, "gup_longterm-tmpfs", everything_gone))


def test_a_task_left_in_d_state_is_named(steps):
    def stuck(text):
        return re.sub(r"@@gupvm stuck-tasks\r?\n", "@@gupvm stuck-tasks\n231 io_uring-sq\n", text, count=1)
    result = verdict(steps, "cow", stuck)
    assert kinds(result) == [ProblemKind.STUCK_TASK]
    assert result.problems[0].about == ("io_uring-sq",)


def test_a_long_term_pinned_page_left_in_the_movable_zone_is_named(steps):
    def in_movable(text):
        return text.replace("swapbacked|zone=0)", "swapbacked|zone=2)")  # the console's copy and dmesg's
    result = verdict(steps, "movable-dump-longterm", in_movable)
    assert kinds(result) == [ProblemKind.LONGTERM_PIN_MOVABLE] * 3  # each of the three dumped pages
    assert result.problems[0].about == ("ZONE_MOVABLE",)


def test_a_long_term_pinned_page_in_a_cma_area_is_named(steps):
    base, _ = ENVIRONMENT["cma"].split("+")
    first = re.search(r"pfn:0x[0-9a-f]+", steps["movable-dump-longterm"][1].text).group()
    result = verdict(steps, "movable-dump-longterm", lambda text: text.replace(first, f"pfn:{int(base):#x}"))
    assert kinds(result) == [ProblemKind.LONGTERM_PIN_MOVABLE]
    assert result.problems[0].about == ("CMA",)


def test_without_the_guests_zones_a_long_term_dump_cannot_pass(steps):
    result = verdict(steps, "movable-dump-longterm", environment={})
    assert ProblemKind.DUMP_PAGE in kinds(result)


def test_long_term_pins_that_migrated_count_at_least_one_pin_per_page(steps):
    result = verdict(steps, "movable-pin_longterm")
    assert result.status == Status.PASSED
    assert int(result.figures["repinned_after_migration"]) > 0  # the batches pinned, released, migrated, pinned
    # Without memory to migrate out of, the same figures are no exact count.
    assert kinds(verdict(steps, "movable-pin_longterm", environment={})) == [ProblemKind.EXACT_COUNT]


def test_fewer_long_term_pins_than_pages_fail_even_where_pages_migrate(steps):
    def fewer(text):
        after = text.index("@@gupvm vmstat-after")
        acquired = re.compile(r"nr_foll_pin_acquired (\d+)")
        before = int(acquired.search(text).group(1))
        return text[:after] + acquired.sub(f"nr_foll_pin_acquired {before + 100}", text[after:], 1)
    assert ProblemKind.EXACT_COUNT in kinds(verdict(steps, "movable-pin_longterm", fewer))


def test_the_kernels_own_expected_failures_are_reported_as_such_not_as_passes(steps):
    result = verdict(steps, "cow")
    expected = [ktap for ktap in result.output.ktap if ktap.status == CaseStatus.EXPECTED_FAILURE]
    assert expected and all("hugetlb" in ktap.reason for ktap in expected)  # cow's vmsplice() on hugetlb
    suite = SuiteResult("s", {"arch": "x86_64", "kernel_source": "debian:7.3", "kernel_version": "7.3.4",
                              "config_hash": "0123456789abcdef", "plan": "pinning"},
                        StageResult(Status.PASSED), StageResult(Status.PASSED), (result,))
    junit = junit_xml([suite])
    assert junit.count("expected failure (XFAIL)") == len(expected)
    dataset = kcidb_json(records([suite]))
    schema.V5_3.validate(dataset)
    assert [test["status"] for test in dataset["tests"] if (test.get("misc") or {}).get("result")] == \
        ["DONE"] * len(expected)


def test_an_unexpected_pass_or_a_not_ok_fails_the_step(steps):
    first_xfail = re.search(r"ok (\d+) # XFAIL", steps["cow"][1].text).group()
    xpass = verdict(steps, "cow", lambda text: text.replace(first_xfail, first_xfail.replace("XFAIL", "XPASS")))
    assert kinds(xpass) == [ProblemKind.KTAP] and "(XPASS)" in xpass.message
    not_ok = verdict(steps, "gup_longterm-tmpfs", lambda text: re.sub(r"(?m)^ok 3 ", "not ok 3 ", text))
    assert kinds(not_ok) == [ProblemKind.KTAP]


@pytest.fixture(scope="module")
def settled(tmp_path_factory):
    return replayed("7.3-x86_64-pinning-settled.console.log", "pinning-settled.plan.toml", tmp_path_factory)


def test_memory_freed_after_the_step_is_read_again_and_counts_when_settled(settled):
    step, capture = settled["movable-dump-longterm"]
    environment = parse_environment((DATA / "7.3-x86_64-pinning-settled.console.log").read_text())
    command = StepCommand(step.program, step.args_for(X86_64, {"foll_longterm": "0x100"}), program_kinds()["gup_test"])
    assert check_step(step, capture, X86_64, command, environment).status == Status.PASSED
    first_reading_only = re.sub(r"@@gupvm memory-settled\r*\n(.*\r*\n)*?PerCpuPages: \d+\r*\n", "", capture.text)
    result = check_step(step, dataclasses.replace(capture, text=first_reading_only), X86_64, command, environment)
    assert kinds(result) == [ProblemKind.MEMORY_NOT_FREED]
    assert result.problems[0].figures["before_kb"] - result.problems[0].figures["after_kb"] > 8000


def test_gup_longterm_runs_its_local_tmpfile_cases_on_a_real_ext4(settled):
    step, capture = settled["gup_longterm-ext4"]
    result = check_step(step, capture, X86_64)
    local = [ktap for ktap in result.output.ktap if "local tmpfile" in (ktap.title or ktap.description)]
    assert local and all(ktap.status == CaseStatus.PASSED for ktap in local)


@pytest.mark.parametrize("environment, possible", [
    ({"movable_pages": "65504", "cma": "-"}, True),
    ({"movable_pages": "1", "cma": "-"}, True),
    ({"movable_pages": "0", "cma": "251904+8192"}, True),
    ({"movable_pages": "0", "cma": "-"}, False),
    ({}, False),  # a guest that said nothing of its zones
])
def test_long_term_pins_may_migrate_where_the_guest_has_a_movable_zone_or_cma(environment, possible):
    assert migration_possible(environment) == possible
