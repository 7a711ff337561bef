"""gupvm's own workloads (selftests/*.c): the arithmetic of the pin limit, and what gupvm makes of their output."""

import dataclasses

import pytest
from conftest import replayed

from orchestrator.arches import all_arches
from orchestrator.check import check_pin_limit, check_step, pins_allowed
from orchestrator.gup_programs import StepCommand, program_kinds, source_of
from orchestrator.known import apply
from orchestrator.parse import CaseStatus, parse_step
from orchestrator.results import ProblemKind, Status


@pytest.mark.parametrize(("base_refcount", "allowed"), [
    (1, 2**21),  # a page mapped once
    (2, 2**21),  # ... and held by a per-CPU LRU batch
    (1023, 2**21),
    (1024, 2**21 - 1),  # a page already holding one pin's worth of references
    (2047, 2**21 - 1),
])
def test_pins_allowed_by_the_bias_from_a_base_refcount(base_refcount, allowed):
    assert pins_allowed(base_refcount) == allowed


def test_the_last_pin_allowed_leaves_the_refcount_positive_and_the_next_would_not():
    for base in (1, 2, 512, 1023, 1024, 3000):
        last = base + 1024 * (pins_allowed(base) - 1)  # the count before the last pin granted
        assert 0 < last <= 2**31 - 1 and base + 1024 * pins_allowed(base) > 2**31 - 1


def step_output(figures: str):
    return parse_step(f"@@gupvm output\nTAP version 13\n{figures}# Totals: pass:5 fail:0\n@@gupvm kmsg\n")


def test_a_pin_limit_run_that_granted_what_the_bias_allows_passes():
    output = step_output("# figure refcount_before=3\n# figure pins_succeeded=2097152\n")
    assert output.program_figures == {"refcount_before": "3", "pins_succeeded": "2097152"}
    assert check_pin_limit(output) == []


@pytest.mark.parametrize("succeeded", [2097151, 2097153, 0])
def test_a_pin_limit_run_that_granted_more_or_fewer_names_the_figure(succeeded):
    (problem,) = check_pin_limit(step_output(f"# figure refcount_before=3\n# figure pins_succeeded={succeeded}\n"))
    assert problem.kind == ProblemKind.PIN_LIMIT
    assert problem.about == ("pins_succeeded",)  # what bisect and presubmit follow as the signature's detail
    assert problem.figures == {"allowed": 2097152, "succeeded": succeeded, "base_refcount": 2}
    assert problem.sentence == f"expected exactly 2097152 pins of one page to succeed from a refcount of 2, " \
                               f"{succeeded} did"


def test_every_own_workload_has_its_source_and_says_which_kernel_paths_it_drives():
    own = [kind for kind in program_kinds().values() if kind.own]
    assert {kind.name for kind in own} >= {"io_uring_fixed", "remote_access", "pin_limit", "o_direct", "udmabuf"}
    for kind in own:
        text = source_of(kind, None).read_text()
        assert '#include "workload.h"' in text and "ktap_plan(" in text and "return ktap_exit();" in text


# Real boots of 7.3.4 running the pinning plan's workload steps (tests/data/README.md).
@pytest.fixture(scope="module")
def x86_64(tmp_path_factory):
    return replayed("7.3-x86_64-workloads.console.log", "pinning-workloads.plan.toml", tmp_path_factory)


@pytest.fixture(scope="module")
def i386(tmp_path_factory):
    return replayed("7.3-i386-workloads.console.log", "pinning-workloads.plan.toml", tmp_path_factory)


def verdict(steps, name, arch="x86_64", edit=lambda text: text, step_edit=lambda step: step):
    step, capture = steps[name]
    step = step_edit(step)
    return check_step(step, dataclasses.replace(capture, text=edit(capture.text)), all_arches()[arch],
                      StepCommand(step.program, step.args, program_kinds()[step.program]))


CASES = {"io_uring-fixed-buffers": 19, "remote-access": 25, "pin_limit-io_uring": 6, "o_direct": 18,
         "udmabuf-shmem": 6, "udmabuf-hugetlb": 6}


@pytest.mark.parametrize("name", CASES)
def test_each_workload_of_the_clean_kernel_passes_with_every_case_read(x86_64, name):
    result = verdict(x86_64, name)
    assert result.status == Status.PASSED, result.message
    assert len(result.output.ktap) == CASES[name]
    assert all(case.status in (CaseStatus.PASSED, CaseStatus.SKIPPED) for case in result.output.ktap)


@pytest.mark.parametrize("arch", ["x86_64", "i386"])
def test_the_pin_limit_on_64_and_32_bit_grants_what_the_bias_allows_and_names_its_figures(x86_64, i386, arch):
    result = verdict({"x86_64": x86_64, "i386": i386}[arch], "pin_limit-io_uring", arch)
    assert result.status == Status.PASSED, result.message
    assert {key: result.figures[key] for key in ("refcount_before", "pins_succeeded", "refcount_after")} == \
        {"refcount_before": "8194", "pins_succeeded": str(pins_allowed(8193)), "refcount_after": "8194"}
    assert result.figures["expected_warnings"] == "2"  # try_get_folio (GUP-fast), then try_grab_folio


def test_the_pin_limits_warning_is_a_splat_in_any_step_that_does_not_expect_it(x86_64):
    result = verdict(x86_64, "pin_limit-io_uring", step_edit=lambda step: dataclasses.replace(step,
                                                                                              expected_warning=""))
    assert [problem.kind for problem in result.problems] == [ProblemKind.SPLAT]
    assert "try_get_folio" in result.problems[0].about[0]


def test_another_warning_in_the_pin_limit_step_still_fails_it(x86_64):
    other = "WARNING: mm/gup.c:230 at unpin_user_page+0x21/0x67, CPU#0: pin_limit/94"
    result = verdict(x86_64, "pin_limit-io_uring",
                     edit=lambda text: text.replace("WARNING: mm/gup.c:143 at try_grab_folio+0x7/0x68", other))
    assert [problem.kind for problem in result.problems] == [ProblemKind.SPLAT]
    assert result.figures["expected_warnings"] == "1"


def test_more_pins_granted_than_the_bias_allows_is_a_pin_limit_failure(x86_64):
    result = verdict(x86_64, "pin_limit-io_uring",
                     edit=lambda text: text.replace("pins_succeeded=2097144", "pins_succeeded=2113536"))
    assert [problem.kind for problem in result.problems] == [ProblemKind.PIN_LIMIT]


def test_a_workload_case_not_ok_fails_its_step_naming_the_case(i386):
    # 7.3.4 on i386: one of twenty dma-bufs of hugetlb memory failed (ENOMEM) while a thread faulted the range in,
    # which this version of the workload counted as a failure.
    result = verdict(i386, "udmabuf-hugetlb", "i386")
    assert [problem.kind for problem in result.problems] == [ProblemKind.EXIT, ProblemKind.KTAP]
    assert result.problems[1].about == (
        "hugetlb: dma-bufs created while a thread faults the range in hold the process's data",)


@pytest.fixture(scope="module")
def lts(tmp_path_factory):
    return replayed("5.10-x86_64-workloads.console.log", "pinning-workloads.plan.toml", tmp_path_factory)


def test_the_pin_limit_on_5_10_is_the_known_failure_of_its_debug_vm_unpin(lts):
    result = verdict(lts, "pin_limit-io_uring")
    assert {problem.kind for problem in result.problems} == {ProblemKind.EXIT, ProblemKind.SPLAT, ProblemKind.KTAP}
    assert "put_page_refs" in " ".join(next(p for p in result.problems if p.kind == ProblemKind.SPLAT).about)
    known = apply(result, "5.10.262", "x86_64")
    assert known.status == Status.KNOWN_FAILURE, known.message
    assert known.known == ("https://lore.kernel.org/all/20210615012014.1100672-1-jannh@google.com/",)
    assert apply(result, "6.1.192", "x86_64").status == Status.FAILED  # not known where the kernel has no such check


@pytest.mark.parametrize("name", [name for name in CASES if name != "pin_limit-io_uring"])
def test_every_other_workload_passes_on_5_10_skipping_what_it_lacks(lts, name):
    result = verdict(lts, name)
    assert result.status == Status.PASSED, result.message


def test_udmabuf_on_hugetlb_crashing_6_12_is_the_known_failure_of_memfd_pin_folios(tmp_path_factory):
    steps = replayed("6.12-x86_64-workloads.console.log", "pinning-workloads.plan.toml", tmp_path_factory)
    result = verdict(steps, "udmabuf-hugetlb")
    assert result.status == Status.CRASHED and "kernel BUG at mm/hugetlb.c" in result.message
    known = apply(result, "6.12.118", "x86_64")
    assert known.status == Status.KNOWN_FAILURE, known.message
    assert apply(result, "7.3.4", "x86_64").status == Status.CRASHED
    assert all(verdict(steps, name).status == Status.PASSED for name in CASES if name != "udmabuf-hugetlb")
