"""The huge-page checks on real boots of every arch, and each check broken on purpose."""

import dataclasses
import re

import pytest
from conftest import replayed

from orchestrator.arches import all_arches
from orchestrator.check import check_step, expected_pins
from orchestrator.gup_args import parse_gup_args
from orchestrator.parse import GupReport, parse_step

ARCHES = all_arches()
CAPTURES = [(kernel, arch) for kernel in ("6.1", "6.12") for arch in ("x86_64", "i386", "i386-pae")]
# What each tree cannot run, and says so.
SKIPPED = {"6.1": ("gup_longterm", "this tree has no gup_longterm"),
           "6.12": ("zero_page-dump-pinned-read",
                    "needs a kernel before 6.12 (its pin_user_pages() WARNs on gup_test's FOLL_TOUCH)")}


@pytest.fixture(scope="session", params=CAPTURES, ids=lambda capture: "-".join(capture))
def hugepage(request, tmp_path_factory):
    kernel, arch = request.param
    steps = replayed(f"{kernel}-{arch}-hugepage.console.log", "hugepage.plan.toml", tmp_path_factory)
    return kernel, ARCHES[arch], steps


@pytest.fixture(scope="session")
def x86_64_61(tmp_path_factory):
    return replayed("6.1-x86_64-hugepage.console.log", "hugepage.plan.toml", tmp_path_factory)


def verdict(steps, name, edit=lambda text: text, arch="x86_64"):
    step, capture = steps[name]
    return check_step(step, dataclasses.replace(capture, text=edit(capture.text)), ARCHES[arch])


def test_every_step_passes_or_says_why_it_was_skipped(hugepage):
    kernel, arch, steps = hugepage
    for name, (step, capture) in steps.items():
        result = check_step(step, capture, arch)
        if result.status == "skipped":
            assert (name, result.message) == SKIPPED[kernel]
            continue
        assert result.status == "passed", (name, result.message)
        if step.program == "gup_test":
            assert result.figures["expected_pins"] == result.figures["acquired_delta"]


def test_pins_are_counted_per_base_page_even_inside_huge_pages(hugepage):
    _, arch, steps = hugepage
    figures = check_step(*steps["hugetlb-pin_fast-repeat"], arch).figures
    assert figures["acquired_delta"] == str(10 * (128 << 20) // 4096)
    figures = check_step(*steps["hugetlb-pin_longterm-concurrent"], arch).figures
    assert figures["acquired_delta"] == str(4 * (128 << 20) // 4096)


def test_a_pinned_huge_page_keeps_an_exact_pincount(hugepage):
    _, arch, steps = hugepage
    output = parse_step(steps["hugetlb-dump-pinned"][1].text)
    head, tail, last, next_head = output.dumped_pages
    for page in output.dumped_pages:
        assert page.order == arch.pages_per_huge_page.bit_length() - 1
        assert page.pincount == arch.pages_per_huge_page
        assert page.refcount < 1024 + page.pincount
    assert [page.pfn % arch.pages_per_huge_page for page in (head, tail, last, next_head)] == [
        0, 1, arch.pages_per_huge_page - 1, 0]
    assert all(page.pincount == 0 for page in parse_step(steps["hugetlb-dump-gotten"][1].text).dumped_pages)


def _set_counter(text: str, section: str, counter: str, change: int) -> str:
    head, rest = text.split(f"@@gupvm {section}", 1)
    return head + f"@@gupvm {section}" + re.sub(
        rf"{counter} (\d+)", lambda match: f"{counter} {int(match.group(1)) + change}", rest, count=1)


def _in_kmsg(old: str, new: str):
    """An edit of the first occurrence in the step's kernel log (the console also echoed it earlier)."""
    def edit(text: str) -> str:
        head, kmsg = text.split("@@gupvm kmsg", 1)
        return head + "@@gupvm kmsg" + kmsg.replace(old, new, 1)
    return edit


def test_balanced_but_wrong_count_fails_exact_count(x86_64_61):
    def shift_both(text):
        text = _set_counter(text, "vmstat-after", "nr_foll_pin_acquired", -512)
        return _set_counter(text, "vmstat-after", "nr_foll_pin_released", -512)

    result = verdict(x86_64_61, "hugetlb-pin_fast-repeat", shift_both)
    assert result.message == (
        "expected exactly 327680 pins (one per base page pinned), nr_foll_pin_acquired rose by 327168")


def test_a_missing_result_line_fails(x86_64_61):
    def drop_one(text):
        return re.sub(r"PIN_FAST_BENCHMARK: Time: [^\n]*\n", "", text, count=1)

    result = verdict(x86_64_61, "hugetlb-pin_fast-repeat", drop_one)
    assert "expected 10 PIN_FAST_BENCHMARK result line(s) from gup_test, saw 9" in result.message


def test_wrong_pincount_fails(x86_64_61):
    result = verdict(x86_64_61, "hugetlb-dump-pinned", _in_kmsg("pincount:512", "pincount:511"))
    assert re.search(r"page 0 \(pfn 0x[0-9a-f]+\): expected pincount 512 on an order-9 folio, saw 511", result.message)


def test_refcount_inflated_per_pin_fails(x86_64_61):
    inflated = str(1 + 512 * 1024)
    result = verdict(x86_64_61, "hugetlb-dump-pinned", _in_kmsg("refcount:513", f"refcount:{inflated}"))
    assert f"expected a refcount not inflated by 1024 per pin (below pincount + 1024 = 1536), saw {inflated}" \
        in result.message


def test_order_0_page_without_the_bias_while_pinned_fails(x86_64_61):
    result = verdict(x86_64_61, "thp-dump-pinned", _in_kmsg("refcount:1025", "refcount:2"))
    assert "expected refcount >= 1025 (1 + GUP_PIN_COUNTING_BIAS) while pinned, saw 2" in result.message


def test_order_0_page_with_the_bias_while_only_gotten_fails(x86_64_61):
    result = verdict(x86_64_61, "thp-dump-gotten", _in_kmsg("refcount:2 ", "refcount:1026 "))
    assert "expected refcount < 1024 without pins, saw 1026" in result.message


def test_a_missing_dump_record_fails(x86_64_61):
    result = verdict(x86_64_61, "hugetlb-dump-pinned", _in_kmsg("page:(____ptrval____) refcount", "x"))
    assert "expected 4 dump_page() records, saw 3" in result.message


def test_the_zero_page_is_never_pinned(x86_64_61):
    passed = verdict(x86_64_61, "zero_page-dump-pinned-read")
    assert passed.status == "passed" and passed.figures["expected_pins"] == passed.figures["acquired_delta"] == "0"
    result = verdict(x86_64_61, "zero_page-dump-pinned-read",
                     lambda text: _set_counter(_set_counter(text, "vmstat-after", "nr_foll_pin_acquired", 256),
                                               "vmstat-after", "nr_foll_pin_released", 256))
    assert "expected exactly 0 pins (one per base page pinned), nr_foll_pin_acquired rose by 256" in result.message


def test_truncation_reported_by_gup_test_lowers_the_expected_count():
    invocation = parse_gup_args(["-a", "-r", "2"])
    output = dataclasses.replace(
        parse_step(""), reports=(GupReport("PIN_FAST_BENCHMARK", 1, 1, 8192), GupReport("PIN_FAST_BENCHMARK", 1, 1)))
    assert expected_pins(invocation, output, ARCHES["x86_64"]) == 2 + 32768
