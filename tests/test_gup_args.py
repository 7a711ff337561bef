import pytest

from orchestrator.gup_args import DEFAULT_SIZE, parse_gup_args


def test_defaults_are_gup_tests_own():
    invocation = parse_gup_args(["-u"])
    assert invocation.command == "GUP_FAST_BENCHMARK" and not invocation.pins
    assert invocation.size == DEFAULT_SIZE == 128 << 20
    assert (invocation.repeats, invocation.threads, invocation.pages_per_call) == (1, 1, 1)
    assert invocation.write and not invocation.shared and not invocation.hugetlb and invocation.thp is None


@pytest.mark.parametrize("flag, command, pins", [
    ("-a", "PIN_FAST_BENCHMARK", True), ("-L", "PIN_LONGTERM_BENCHMARK", True), ("-b", "PIN_BASIC_TEST", True),
    ("-U", "GUP_BASIC_TEST", False), ("-u", "GUP_FAST_BENCHMARK", False), ("-c", "DUMP_USER_PAGES_TEST", False),
])
def test_commands_and_whether_they_pin(flag, command, pins):
    invocation = parse_gup_args([flag])
    assert (invocation.command, invocation.pins) == (command, pins)


def test_dump_pins_only_with_p_and_reads_the_page_indexes():
    gotten = parse_gup_args(["-ct", "-F", "0x1", "0", "19", "0x1000"])
    assert gotten.command == "DUMP_USER_PAGES_TEST" and not gotten.pins and gotten.thp is True
    assert gotten.dump_indexes == (0, 19, 0x1000)
    pinned = parse_gup_args(["-H", "-c", "-p", "0", "1", "511"])
    assert pinned.pins and pinned.hugetlb and pinned.dump_indexes == (0, 1, 511)
    assert parse_gup_args(["-c"]).dump_indexes == (0,)  # gup_test dumps page 0 by default


def test_benchmarks_repeat_per_thread_tests_do_not():
    assert parse_gup_args(["-a", "-r", "10", "-j", "4"]).ioctls == 40
    assert parse_gup_args(["-b", "-r", "10", "-j", "4"]).ioctls == 4


def test_sizes_flags_and_later_flags_win():
    invocation = parse_gup_args(["-m", "4", "-n", "512", "-S", "-W", "-z", "-t", "-T", "-a", "-u"])
    assert invocation.size == 4 << 20 and invocation.pages_per_call == 512
    assert invocation.shared and not invocation.write and invocation.faulted_by_kernel
    assert invocation.thp is False and invocation.command == "GUP_FAST_BENCHMARK"
