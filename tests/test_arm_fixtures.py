"""Parsers and checks on console logs of real ARM boots (arm64, armv7, armv7-lpae; oldest and newest kernel)."""

import json
import shutil
from pathlib import Path

import pytest
from kcidb_io import schema
from replay import replay

from orchestrator import kcidb
from orchestrator.arches import all_arches
from orchestrator.check import check_step
from orchestrator.gup_programs import (
    USUAL_ACCOUNTING,
    PinAccounting,
    far_tails_dumped_alone,
    plan_commands,
    tree_programs,
)
from orchestrator.parse import parse_dumped_pages
from orchestrator.plan import GUEST_REQUIREMENTS, load_plan, on_arch
from orchestrator.report import results_json
from orchestrator.results import StageResult, Status, SuiteResult

DATA = Path(__file__).parent / "data"
ARCHES = all_arches()
ARM = ("arm64", "armv7", "armv7-lpae")
GUP_BENCHMARK_SKIP = "this tree's gup_benchmark has no dump mode (-c)"


def checked(log: str, plan_file: str, arch: str, kernel: str, selftests: str, tmp_path: Path,
            accounting: PinAccounting = USUAL_ACCOUNTING) -> dict:
    """name -> StepResult of a captured ARM console log, replayed with the plan as it ran on that arch."""
    plan = on_arch(load_plan(str(DATA / plan_file)), ARCHES[arch])
    captures = replay(DATA / log, plan, tmp_path)
    assert [capture.name for capture in captures] == [step.name for step in plan.steps]
    commands = plan_commands(plan, ARCHES[arch], kernel, tree_programs(DATA / selftests))
    return {step.name: check_step(step, capture, ARCHES[arch], command, accounting=accounting)
            for step, capture, command in zip(plan.steps, captures, commands, strict=True)}


@pytest.mark.parametrize("kernel, version, selftests", [("5.10", "5.10.262", "selftests-5.10"),
                                                        ("7.3", "7.3.4", "selftests-7.3")])
@pytest.mark.parametrize("arch", ARM)
def test_every_smoke_step_passes_with_exact_pins_or_says_why_not(tmp_path, kernel, version, selftests, arch):
    results = checked(f"{kernel}-{arch}-smoke.console.log", "smoke.plan.toml", arch, version, selftests, tmp_path)
    for name, result in results.items():
        if kernel == "5.10" and name.startswith("dump_"):
            assert result.status == Status.SKIPPED and result.message.startswith(GUP_BENCHMARK_SKIP), name
            continue
        assert result.status == Status.PASSED, (name, result.message)
        if result.step.expect == "pin":
            assert result.figures["acquired_delta"] == result.figures["expected_pins"] == "32768", name


@pytest.fixture(scope="module")
def hugepage_73(tmp_path_factory) -> dict:
    return checked("7.3-arm64-hugepage.console.log", "hugepage.plan.toml", "arm64", "7.3.4", "selftests-7.3",
                   tmp_path_factory.mktemp("replay"))


@pytest.fixture(scope="module")
def hugepage_61(tmp_path_factory) -> dict:
    # 6.1's dump_page() prints the far tails of a gigantic folio alone (tests/data/headers/6.1-debug.c).
    return checked("6.1-arm64-hugepage.console.log", "hugepage.plan.toml", "arm64", "6.1.192", "selftests-6.1",
                   tmp_path_factory.mktemp("replay"), PinAccounting(far_tails_dumped_alone=True))


NEEDS_BEFORE_612 = {"zero_page-dump-pinned-read": "needs a kernel before 6.12"}
NO_GUP_LONGTERM = {"gup_longterm": "this tree has no gup_longterm"}
HUGE_PAGES = {"arm64": (("", 512), ("-64kB", 16), ("-32MB", 8192)), "armv7-lpae": (("", 512),)}
# (kernel, arch, the tree's test programs, what it skips and why, its accounting)
HUGEPAGE_CAPTURES = [
    ("6.1", "arm64", "selftests-6.1", NO_GUP_LONGTERM, PinAccounting(far_tails_dumped_alone=True)),
    ("6.1", "armv7-lpae", "selftests-6.1", NO_GUP_LONGTERM, PinAccounting(far_tails_dumped_alone=True)),
    ("6.12", "arm64", "selftests-7.3", NEEDS_BEFORE_612, USUAL_ACCOUNTING),
    ("6.12", "armv7-lpae", "selftests-7.3", NEEDS_BEFORE_612, USUAL_ACCOUNTING),
    ("7.3", "arm64", "selftests-7.3", NEEDS_BEFORE_612, USUAL_ACCOUNTING),
]


@pytest.mark.parametrize("kernel, arch, selftests, skipped, accounting", HUGEPAGE_CAPTURES,
                         ids=[f"{kernel}-{arch}" for kernel, arch, *_ in HUGEPAGE_CAPTURES])
def test_every_hugepage_step_at_every_size_passes_with_exact_pins(tmp_path, kernel, arch, selftests, skipped,
                                                                   accounting):
    results = checked(f"{kernel}-{arch}-hugepage.console.log", "hugepage.plan.toml", arch, kernel, selftests,
                      tmp_path, accounting)
    for name, result in results.items():
        if name in skipped:
            assert result.status == Status.SKIPPED and result.message.startswith(skipped[name])
            continue
        assert result.status == Status.PASSED, (name, result.message)
        if result.step.expect == "pin":
            assert result.figures["acquired_delta"] == result.figures["expected_pins"], name
    for size, pages in HUGE_PAGES[arch]:
        figures = results[f"hugetlb-dump-pinned{size}"].figures
        assert (figures["page.0.order"], figures["page.0.pincount"]) == (str(pages.bit_length() - 1), str(pages))


def test_a_far_tail_dumped_alone_is_read_as_a_tail_without_its_folio(hugepage_61):
    result = hugepage_61["hugetlb-dump-pinned-32MB"]
    assert [(page.tail, page.order, page.pincount) for page in result.output.dumped_pages] == [
        (False, 13, 8192), (True, 13, 8192), (True, None, None), (False, 13, 8192)]
    assert result.figures["page.2.folio"] == "not shown" and "page.2.order" not in result.figures


def test_a_tail_alone_fails_where_the_tree_always_dumps_the_folio(tmp_path):
    results = checked("6.1-arm64-hugepage.console.log", "hugepage.plan.toml", "arm64", "6.1.192", "selftests-6.1",
                      tmp_path)
    result = results["hugetlb-dump-pinned-32MB"]
    assert result.status == Status.FAILED
    assert [problem.about for problem in result.problems] == [("head",)]
    assert "page 8191 (pfn 0x77fff)" in result.message


def test_a_far_tail_with_a_refcount_of_its_own_fails(tmp_path):
    log = (DATA / "6.1-arm64-hugepage.console.log").read_text()
    alone = "refcount:0 mapcount:1 mapping:0000000000000000 index:0x1fff pfn:0x77fff"
    assert log.count(alone) == 2  # the console line and its copy in the step's kmsg
    (tmp_path / "6.1-arm64-hugepage.console.log").write_text(log.replace(alone, alone.replace(":0 ", ":3 ", 1)))
    plan = on_arch(load_plan(str(DATA / "hugepage.plan.toml")), ARCHES["arm64"])
    captures = {capture.name: capture for capture in replay(tmp_path / "6.1-arm64-hugepage.console.log", plan,
                                                            tmp_path)}
    step = next(step for step in plan.steps if step.name == "hugetlb-dump-pinned-32MB")
    result = check_step(step, captures[step.name], ARCHES["arm64"], accounting=PinAccounting(
        far_tails_dumped_alone=True))
    assert result.status == Status.FAILED and "expected a tail page's own refcount 0, saw 3" in result.message


@pytest.mark.parametrize("version, alone", [("6.1", True), ("7.3", False)])
def test_whether_dump_page_prints_far_tails_alone_is_read_from_the_tree(tmp_path, version, alone):
    (tmp_path / "mm").mkdir()
    shutil.copy(DATA / "headers" / f"{version}-debug.c", tmp_path / "mm/debug.c")
    assert far_tails_dumped_alone(tmp_path) is alone
    assert far_tails_dumped_alone(tmp_path / "no-tree") is False


@pytest.mark.parametrize("log", [f"{kernel}-{arch}-hugepage.console.log" for kernel, arch, *_ in HUGEPAGE_CAPTURES]
                         + ["6.1-i386-pae-hugepage.console.log", "6.12-x86_64-hugepage.console.log"])
def test_a_dumped_page_is_a_tail_exactly_when_it_is_not_its_folios_first(log):
    pages = [page for page in parse_dumped_pages((DATA / log).read_text().splitlines()) if page.order is not None]
    assert pages and all(page.tail == bool(page.pfn & ((1 << page.order) - 1)) for page in pages)
    assert any(page.tail for page in pages)


def test_armv7_skips_every_huge_page_step_saying_what_the_arch_lacks():
    plan = on_arch(load_plan(str(DATA / "hugepage.plan.toml")), ARCHES["armv7"])
    commands = plan_commands(plan, ARCHES["armv7"], "6.1.192", tree_programs(DATA / "selftests-7.3"))
    for step, command in zip(plan.steps, commands, strict=True):
        needs = [need for need in step.requires if need in ("hugetlb", "thp")]
        if needs:
            assert command.skip_reason.startswith(f"needs {needs[0]}: the ARM kernel has "), step.name
            assert command.skip_reason.endswith("only with ARM_LPAE (armv7-lpae)")
        else:
            assert "ARM_LPAE" not in (command.skip_reason or ""), step.name
    lpae = plan_commands(on_arch(plan, ARCHES["armv7-lpae"]), ARCHES["armv7-lpae"], "6.1.192",
                         tree_programs(DATA / "selftests-7.3"))
    assert not [command for command in lpae if command.skip_reason and "ARM_LPAE" in command.skip_reason]


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_what_an_arch_lacks_is_a_need_a_step_can_name(arch):
    assert {need for need, _ in ARCHES[arch].lacks} <= set(GUEST_REQUIREMENTS)


def test_an_arm_kernel_bug_crashes_each_step_it_stops_and_later_boots_resume(tmp_path):
    # 7.2.13 on armv7-lpae: every hugetlb mapping is left misaligned, and unmapping it hits a BUG_ON.
    results = checked("7.2-armv7-lpae-hugepage.console.log", "hugepage.plan.toml", "armv7-lpae", "7.2.13",
                      "selftests-7.3", tmp_path)
    crashed = [name for name, result in results.items() if result.status == Status.CRASHED]
    assert crashed == [name for name in results if name.startswith("hugetlb-")] + ["gup_longterm"]
    for name in crashed:
        assert results[name].message.splitlines()[0] == f"{name} crashed the kernel: kernel BUG at mm/hugetlb.c:5200!"
    assert all(results[name].status == Status.PASSED for name in results if name.startswith(("thp-", "nothp-")))
    assert results["thp-pin_fast-repeat"].figures["acquired_delta"] == str(10 * (128 << 20) // 4096)
    # A 32-bit kernel's PMD-sized THP, LPAE's 2 MB (order 9), counts the pins of its 512 pages exactly.
    pages = results["thp-dump-pinned"].output.dumped_pages
    assert {(page.order, page.pincount) for page in pages if page.order} == {(9, 512)}


def test_arm_runs_are_valid_kcidb_named_by_the_kernels_arch(hugepage_73, tmp_path):
    lpae = checked("7.3-armv7-lpae-smoke.console.log", "smoke.plan.toml", "armv7-lpae", "7.3.4", "selftests-7.3",
                   tmp_path)
    suites = [SuiteResult(f"gupvm.debian-7_3.{arch}.{plan}",
                          {"arch": arch, "kernel_source": "debian:linux-source-7.3 7.3.4-1~bpo13+1",
                           "kernel_version": "7.3.4", "config_hash": "0123456789abcdef", "kernel_release": "7.3.4",
                           "accel": "tcg", "plan": plan, "bits": str(ARCHES[arch].bits)},
                          StageResult(Status.PASSED, "", 150.0), StageResult(Status.PASSED, "1 boot(s)", 30.0),
                          tuple(results.values()))
              for arch, plan, results in (("arm64", "hugepage", hugepage_73), ("armv7-lpae", "smoke", lpae))]
    data = kcidb.kcidb_json(json.loads(results_json(suites)))
    schema.V5_3.validate(data)
    assert sorted((build["architecture"], build["config_name"]) for build in data["builds"]) == [
        ("arm", "tinyconfig+gupvm-armv7-lpae"), ("arm64", "tinyconfig+gupvm-arm64")]
    statuses = {test["path"]: test["status"] for test in data["tests"]}
    assert statuses["gupvm.arm64.hugepage.hugetlb-dump-pinned-32MB"] == "PASS"
    assert statuses["gupvm.arm64.hugepage.zero_page-dump-pinned-read"] == "SKIP"
    assert statuses["gupvm.armv7-lpae.smoke.pin_basic"] == "PASS"
