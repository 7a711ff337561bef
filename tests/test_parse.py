import pytest

from orchestrator.parse import (
    DumpedPage,
    GupReport,
    parse_dumped_pages,
    parse_gup_output,
    parse_ktap,
    parse_step,
    strip_timestamp,
)


@pytest.fixture
def smoke(smoke_61) -> dict:
    return {name: parse_step(capture.text) for name, (_, capture) in smoke_61.items()}


def test_benchmark_timings(smoke):
    (report,) = smoke["pin_fast_benchmark"].reports
    assert report.command == "PIN_FAST_BENCHMARK"
    assert report.get_usec > 0 and report.put_usec > 0 and report.truncated_size is None


def test_basic_tests_report_done(smoke):
    assert smoke["pin_basic"].reports == (GupReport("PIN_BASIC_TEST"),)


def test_pin_counters_before_and_after(smoke):
    output = smoke["pin_fast_benchmark"]
    assert output.delta("nr_foll_pin_acquired") == output.delta("nr_foll_pin_released") == 32768
    assert smoke["gup_fast_benchmark"].delta("nr_foll_pin_acquired") == 0


def test_dump_page_records_of_61_while_gotten(smoke):
    pages = smoke["dump_thp_get"].dumped_pages
    assert [page.index for page in pages] == [0, 19, 0x1000]
    small, _, huge = pages
    assert small.refcount == 2 and small.order is None and small.pincount is None
    assert huge.order == 9 and huge.pincount == 0 and huge.refcount == 513
    assert all(page.reason == "gup_test: dump_pages() test" for page in pages)
    assert "anon" not in small.flags and "lru" in small.flags


def test_dump_page_records_of_61_while_pinned(smoke):
    small, _, huge = smoke["dump_thp_pinned"].dumped_pages
    assert small.refcount == 1025  # 1 + GUP_PIN_COUNTING_BIAS
    assert huge.order == 9 and huge.pincount == 512 and huge.refcount == 513


def test_kernel_lines_lose_their_timestamps(smoke):
    assert all(not line.startswith("[") for line in smoke["dump_thp_pinned"].kernel_lines)
    assert strip_timestamp("[   12.345678] page: refcount:1") == "page: refcount:1"


def test_clean_steps_have_no_splats(smoke):
    assert all(output.splats == () for output in smoke.values())


def test_warning_is_a_splat(recovery_61):
    output = parse_step(recovery_61["pin_with_foll_get"][1].text)
    assert output.splats and output.splats[0].startswith("WARNING: CPU: 0 PID:")
    assert "pin_user_pages" in output.splats[0]


# The 6.12 and 32-bit formats, as mm/debug.c prints them (6.12: __dump_folio).
def test_dump_page_612_format():
    lines = [
        "[    3.1] page: refcount:513 mapcount:1 mapping:0000000000000000 index:0x1000 pfn:0x21aa",
        "[    3.1] head: order:9 mapcount:1 entire_mapcount:1 nr_pages_mapped:0 pincount:512",
        "[    3.1] anon flags: 0xb0014(uptodate|lru|head|swapbacked)",
        "[    3.1] raw: 000fffffc0000000 ffffea0000d2e008 ffffea0000d2e008 0000000000000000",
        "[    3.1] head: 000fffffc0000000 ffffea0000d2e008 ffffea0000d2e008 0000000000000000",
        "[    3.1] page dumped because: gup_test: dump_pages() test",
    ]
    (page,) = parse_dumped_pages(lines)
    assert page == DumpedPage(refcount=513, mapcount=1, mapping="0000000000000000", index=0x1000, pfn=0x21AA,
                              order=9, pincount=512, entire_mapcount=1,
                              flags="0xb0014(uptodate|lru|head|swapbacked)", reason="gup_test: dump_pages() test")


def test_dump_page_32bit_pointers():
    lines = ["page:(____ptrval____) refcount:1025 mapcount:1 mapping:00000000 index:0x13 pfn:0x3ffe4",
             "head:c1a2b3c4 order:10 compound_mapcount:1 compound_pincount:1",
             "page dumped because: gup_test: dump_pages() test"]
    (page,) = parse_dumped_pages(lines)
    assert (page.refcount, page.mapping, page.index, page.order, page.pincount) == (1025, "00000000", 0x13, 10, 1)


def test_ktap_output_of_612_gup_test():
    text = ("TAP version 13\n1..1\n# PIN_FAST_BENCHMARK: Time: get:21 put:4 us# , truncated (size: 4096)# \n"
            "ok 1 ioctl status 0\n# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n")
    assert parse_gup_output(text) == (GupReport("PIN_FAST_BENCHMARK", 21, 4, 4096),)
    (result,) = parse_ktap(text)
    assert result.ok and result.number == 1 and result.description == "ioctl status 0"


def test_ktap_skip_directive():
    (result,) = parse_ktap("ok 3 # SKIP hugetlb not available\n")
    assert result.ok and result.directive == "SKIP" and result.reason == "hugetlb not available"


@pytest.fixture(scope="module")
def hugepage_612(tmp_path_factory) -> dict:
    from conftest import replayed

    steps = replayed("6.12-i386-hugepage.console.log", "hugepage.plan.toml", tmp_path_factory)
    return {name: parse_step(capture.text) for name, (_, capture) in steps.items()}


def test_real_612_dump_on_32_bit(hugepage_612):
    head = hugepage_612["hugetlb-dump-pinned"].dumped_pages[0]
    assert (head.refcount, head.mapping, head.index, head.order, head.pincount) == (1025, "00000000", 0, 10, 1024)
    assert head.entire_mapcount == 1


def test_real_612_gup_test_speaks_ktap(hugepage_612):
    output = hugepage_612["thp-pin_fast-repeat"]
    assert len(output.reports) == 10 and all(report.command == "PIN_FAST_BENCHMARK" for report in output.reports)
    assert [result.ok for result in output.ktap] == [True]


def test_real_gup_longterm_results_carry_their_titles(hugepage_612):
    results = hugepage_612["gup_longterm"].ktap
    assert len(results) > 10
    first = results[0]
    assert first.ok and first.number == 1 and first.description == "Should have worked"
    assert first.title.startswith("R/W longterm GUP pin in MAP_SHARED file mapping ... with memfd")


def test_a_hashed_mapping_pointer_of_digits_only_is_read_as_text():
    # 7.2.13: %p hashed the mapping's address to all decimal digits, with leading zeros.
    (page,) = parse_dumped_pages([
        "[   43.048246] page: refcount:8194 mapcount:8192 mapping:0000000086609992 index:0x0 pfn:0x3ff35",
        "[   43.048300] page dumped because: gup_test: dump_pages() test"])
    assert (page.refcount, page.mapcount, page.mapping, page.index, page.pfn) == \
        (8194, 8192, "0000000086609992", 0, 0x3ff35)
