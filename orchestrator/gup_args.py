"""What a gup_test (or gup_benchmark) command line asks the kernel to do, read the way the program reads it."""

import getopt
from dataclasses import dataclass

from orchestrator.gup_programs import ProgramKind, program_kinds

MB = 1 << 20
DEFAULT_SIZE = 128 * MB
DUMP_COMMAND = "DUMP_USER_PAGES_TEST"
PLAN_GETOPT = program_kinds()["gup_test"].plan_getopt  # the options plans are written with


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
        """The kernel's PIN_ commands pin; the dump test pins with -p."""
        return self.command.startswith("PIN_") or (self.command == DUMP_COMMAND and self.dump_with_pin)

    @property
    def reads_unwritten_memory(self) -> bool:
        """Private memory nobody wrote, looked up for reading: it maps the shared zero page."""
        return not self.write and self.faulted_by_kernel and not self.shared and not self.hugetlb

    @property
    def benchmark(self) -> bool:
        return self.command.endswith("_BENCHMARK")

    @property
    def ioctls(self) -> int:
        """How many times the program calls into the kernel: benchmarks repeat, tests do not."""
        return self.threads * (self.repeats if self.benchmark else 1)


def parse_gup_args(args: tuple[str, ...] | list[str], kind: ProgramKind | None = None) -> GupInvocation:
    kind = kind or program_kinds()["gup_test"]
    options, rest = getopt.getopt(list(args), PLAN_GETOPT)
    command, size, repeats, threads, per_call = kind.default_command, DEFAULT_SIZE, 1, 1, 1
    write, shared, hugetlb, thp, touch, dump_pin = kind.writes_by_default, False, False, None, False, False
    dump_indexes: tuple[int, ...] = ()
    for flag, value in options:
        if flag in kind.commands:
            command = kind.commands[flag]
            if command == DUMP_COMMAND:
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
    if rest and command == DUMP_COMMAND:
        dump_indexes = tuple(int(index, 0) for index in rest)
    return GupInvocation(command, size, repeats, threads, per_call, write, shared, hugetlb, thp, touch, dump_pin,
                         dump_indexes)
