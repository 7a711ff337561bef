"""What a gup_test command line asks the kernel to do, read the way gup_test reads it."""

import getopt
from dataclasses import dataclass

MB = 1 << 20
DEFAULT_SIZE = 128 * MB
# gup_test's getopt string, the same in 6.1 and 6.12.
GETOPT = "m:r:n:F:f:abcj:tTLUuwWSHpz"
BENCHMARKS = {"-u": "GUP_FAST_BENCHMARK", "-a": "PIN_FAST_BENCHMARK", "-L": "PIN_LONGTERM_BENCHMARK"}
TESTS = {"-U": "GUP_BASIC_TEST", "-b": "PIN_BASIC_TEST", "-c": "DUMP_USER_PAGES_TEST"}
PIN_COMMANDS = {"PIN_FAST_BENCHMARK", "PIN_LONGTERM_BENCHMARK", "PIN_BASIC_TEST"}


@dataclass(frozen=True)
class GupInvocation:
    command: str
    size: int
    repeats: int
    threads: int
    pages_per_call: int
    write: bool
    shared: bool
    hugetlb: bool
    thp: bool | None  # None: left to the system default
    faulted_by_kernel: bool  # -z: userspace never touched the memory
    dump_with_pin: bool
    dump_indexes: tuple[int, ...]

    @property
    def pins(self) -> bool:
        return self.command in PIN_COMMANDS or (self.command == "DUMP_USER_PAGES_TEST" and self.dump_with_pin)

    @property
    def reads_unwritten_memory(self) -> bool:
        """Private memory nobody wrote, looked up for reading: it maps the shared zero page."""
        return not self.write and self.faulted_by_kernel and not self.shared and not self.hugetlb

    @property
    def benchmark(self) -> bool:
        return self.command in BENCHMARKS.values()

    @property
    def ioctls(self) -> int:
        """How many times gup_test calls into the kernel: benchmarks repeat, tests do not."""
        return self.threads * (self.repeats if self.benchmark else 1)


def parse_gup_args(args: tuple[str, ...] | list[str]) -> GupInvocation:
    options, rest = getopt.getopt(list(args), GETOPT)
    command, size, repeats, threads, per_call = "GUP_FAST_BENCHMARK", DEFAULT_SIZE, 1, 1, 1
    write, shared, hugetlb, thp, touch, dump_pin = True, False, False, None, False, False
    dump_indexes: tuple[int, ...] = ()
    for flag, value in options:
        if flag in BENCHMARKS:
            command = BENCHMARKS[flag]
        elif flag in TESTS:
            command = TESTS[flag]
            if flag == "-c":
                dump_indexes = (0,)
        elif flag == "-m":
            size = int(value) * MB
        elif flag == "-r":
            repeats = int(value)
        elif flag == "-j":
            threads = int(value)
        elif flag == "-n":
            per_call = int(value)
        elif flag in ("-w", "-W"):
            write = flag == "-w"
        elif flag == "-S":
            shared = True
        elif flag == "-H":
            hugetlb = True
        elif flag in ("-t", "-T"):
            thp = flag == "-t"
        elif flag == "-z":
            touch = True
        elif flag == "-p":
            dump_pin = True
    if rest and command == "DUMP_USER_PAGES_TEST":
        dump_indexes = tuple(int(index, 0) for index in rest)
    return GupInvocation(command, size, repeats, threads, per_call, write, shared, hugetlb, thp, touch, dump_pin,
                         dump_indexes)
