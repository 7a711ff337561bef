"""Which folios count pins exactly is the tree's answer, and the dump_page check asks it.

The headers in tests/data/headers are the functions of real trees' include/linux/mm.h that decide it.
"""

import shutil
from pathlib import Path

import pytest

from orchestrator.check import check_dumped_pages
from orchestrator.gup_args import parse_gup_args
from orchestrator.gup_programs import PinAccounting, exact_pincount_order, program_kinds
from orchestrator.parse import parse_step

DATA = Path(__file__).parent / "data"
HEADERS = DATA / "headers"


def tree_with(tmp_path: Path, version: str) -> Path:
    (tmp_path / "include/linux").mkdir(parents=True)
    shutil.copy(HEADERS / f"{version}-mm.h", tmp_path / "include/linux/mm.h")
    return tmp_path


@pytest.mark.parametrize("version, bits, order", [
    ("7.3", 64, 1),  # every large folio has a pincount
    ("7.3", 32, 2),  # folio_has_pincount(): order-1 folios of a 32-bit kernel keep pins in the refcount
    ("6.1", 64, 1),  # folio_maybe_dma_pinned(): every large folio, on every arch
    ("6.1", 32, 1),
    ("5.10", 64, 2),  # hpage_pincount_available(): the pincount lives in the third page, on every arch
    ("5.10", 32, 2),
])
def test_the_smallest_folio_with_a_pincount_is_read_from_the_tree(tmp_path: Path, version, bits, order):
    assert exact_pincount_order(tree_with(tmp_path, version), bits) == order


def test_a_tree_without_the_header_counts_every_large_folio(tmp_path: Path):
    assert exact_pincount_order(tmp_path, 32) == 1


@pytest.mark.parametrize("pincount_order, refcount, pincount, field", [
    (2, 1 + 2 * 1024, 0, None),  # 32-bit 6.15+: both pages' pins on the bias, none in the pincount
    (2, 2, 0, "refcount"),  # ... and no bias: not pinned
    (1, 1 + 2 * 1024, 0, "pincount"),  # 64-bit: the same folio must count its two pins exactly
    (1, 3, 2, None),
])
def test_an_order_1_folios_pins_are_checked_where_the_tree_keeps_them(pincount_order, refcount, pincount, field):
    # A real 32-bit dump (6.12 i386, a hugetlb head pinned), made the head of an order-1 folio.
    lines = (DATA / "6.12-i386-hugepage.console.log").read_text().splitlines(keepends=True)
    start = lines.index("@@gupvm step-begin 16 hugetlb-dump-pinned\n")
    first = next(index for index in range(start, len(lines)) if lines[index].endswith("---- page #0, starting from "
                                                                                       "user virt addr: 0xafc00000\n"))
    end = next(index for index in range(first, len(lines)) if "page dumped because" in lines[index])
    record = "".join(lines[first:end + 1])  # the first page's dump_page() record
    assert "refcount:1025 " in record and "order:10 " in record and "pincount:1024\n" in record
    record = record.replace("refcount:1025 ", f"refcount:{refcount} ").replace("order:10 ", "order:1 ").replace(
        "pincount:1024\n", f"pincount:{pincount}\n")
    output = parse_step("@@gupvm kmsg\n" + record)
    assert [(page.order, page.pincount, page.refcount) for page in output.dumped_pages] == [(1, pincount, refcount)]
    invocation = parse_gup_args(("-c", "-p", "0"), program_kinds()["gup_test"])
    problems = check_dumped_pages(invocation, output, PinAccounting(exact_pincount_order=pincount_order))
    assert [problem.about for problem in problems] == ([(field,)] if field else [])
