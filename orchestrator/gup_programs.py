"""The tree's own GUP test programs: which it has, what each accepts, how a plan step runs on it.

Plans are written once, in gup_test's terms. A tree before 5.11 has
gup_benchmark instead, which reads where gup_test writes; a step then runs
with the options that make it the same test, or is skipped with the reason
when the tree's program cannot do what the step asks.
"""

import dataclasses
import getopt
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.paths import SELFTESTS_DIR

if TYPE_CHECKING:  # plan.py reaches this module through config and source
    from orchestrator.arches import Arch
    from orchestrator.plan import Plan

PROGRAMS_FILE = Path(__file__).resolve().parent / "gup_programs.toml"


@dataclass(frozen=True)
class ProgramKind:
    name: str
    source: str
    writes_by_default: bool
    commands: dict[str, str]  # mode option -> the kernel's command name
    default_command: str
    stands_in_for: str = ""
    plan_getopt: str = ""  # for the program plans are written for: which of its options take a value
    kernel_abi: bool = False  # it speaks an interface of the kernel's own version: built from the kernel's tree
    own: bool = False  # gupvm's own workload (selftests/ of gupvm), not a program of the tree
    libraries: tuple[str, ...] = ()  # what an own workload links (-l), from the guest's static libraries


@dataclass(frozen=True)
class TreeProgram:
    """One test program as this tree has it."""

    kind: ProgramKind
    getopt: str  # the tree's getopt string, cut down to the options its switch handles

    @property
    def options(self) -> frozenset[str]:
        return frozenset("-" + letter for letter in self.getopt if letter != ":")


@dataclass(frozen=True)
class StepCommand:
    """What the guest runs for one plan step on this tree, or why it cannot."""

    program: str  # the binary's name in the guest
    args: tuple[str, ...]
    kind: ProgramKind | None  # None: a program gupvm does not interpret (a busybox applet, ...)
    skip_reason: str = ""


@cache
def _table() -> dict:
    return tomllib.loads(PROGRAMS_FILE.read_text())


@cache
def program_kinds() -> dict[str, ProgramKind]:
    return {name: ProgramKind(name=name, **{**fields, "libraries": tuple(fields.get("libraries", ()))})
            for name, fields in _table().items() if name != "options"}


def is_own_workload(program: str) -> bool:
    """Is a plan step's program one of gupvm's own workloads (selftests/*.c)?"""
    kind = program_kinds().get(program)
    return bool(kind and kind.own)


def accepted_getopt(source_text: str) -> str:
    """The getopt string of a selftest's source, keeping only the options its switch has a case for."""
    match = re.search(r'getopt\(\s*argc\s*,\s*argv\s*,\s*"([^"]*)"', source_text)
    if not match:
        return ""
    handled = set(re.findall(r"case\s+'(.)'\s*:", source_text))
    return "".join(f"{letter}{colon}" for letter, colon in re.findall(r"([A-Za-z0-9])(:?)", match.group(1))
                   if letter in handled)


def tree_programs(selftests_dir: Path, others_from: Path | None = None) -> dict[str, TreeProgram]:
    """The test programs this tree has, by the name plans call them (gup_test even where gup_benchmark stands in).
    others_from: where the programs that need not match the kernel come from (--selftests-from), if elsewhere."""
    found: dict[str, TreeProgram] = {}
    for kind in program_kinds().values():
        source = source_of(kind, selftests_dir if kind.kernel_abi or others_from is None else others_from)
        if source.is_file():
            program = TreeProgram(kind, accepted_getopt(source.read_text(errors="replace")))
            found.setdefault(kind.stands_in_for or kind.name, program)
    return found


def source_of(kind: ProgramKind, selftests_dir: Path) -> Path:
    """Where a program's source is: gupvm's own workloads in gupvm's selftests/, the rest in the tree's."""
    return (SELFTESTS_DIR if kind.own else selftests_dir) / kind.source


def step_command(program: str, args: tuple[str, ...], available: dict[str, TreeProgram]) -> StepCommand:
    """The command that runs a step written for `program` on a tree with `available` programs."""
    if program not in program_kinds():
        return StepCommand(program, args, None)
    if program not in available:
        return StepCommand(program, args, program_kinds()[program], f"this tree has no {program}")
    tree_program = available[program]
    kind = tree_program.kind
    if kind.stands_in_for:
        args = _same_test_on(tree_program, program_kinds()[kind.stands_in_for], args)
    missing = [option for option in _options_used(args) if option not in tree_program.options]
    if missing:
        said = _table()["options"]
        reason = f"this tree's {kind.name} has no " + ", no ".join(said.get(option, option) for option in missing)
        return StepCommand(kind.name, args, kind, reason)
    return StepCommand(kind.name, args, kind)


def _options_used(args: tuple[str, ...]) -> list[str]:
    """Options as getopt would see them, for any letters: '-ct' is -c and -t."""
    used: list[str] = []
    for arg in args:
        if arg.startswith("-") and len(arg) > 1 and not arg[1:].lstrip("-").isdigit():
            used += ["-" + letter for letter in arg[1:]]
    return used


def _same_test_on(tree_program: TreeProgram, planned: ProgramKind, args: tuple[str, ...]) -> tuple[str, ...]:
    """A step's arguments for a stand-in program whose default direction differs from the planned program's."""
    options, rest = getopt.getopt(list(args), planned.plan_getopt)
    flags = [flag for flag, _ in options]
    writes = "-w" in flags or ("-W" not in flags and planned.writes_by_default)
    kept = [item for flag, value in options if flag not in ("-w", "-W") for item in (flag, value) if item]
    if writes != tree_program.kind.writes_by_default:
        kept.append("-w" if writes else "-W")
    return tuple(kept + rest)


def as_planned(program: str, args: tuple[str, ...]) -> StepCommand:
    """A step run exactly as its plan wrote it, by the program the plan names."""
    return StepCommand(program, args, program_kinds().get(program))


_FOLL_LONGTERM = re.compile(r"\bFOLL_LONGTERM\b\s*=?\s*\(?\s*(0x[0-9a-fA-F]+|\d+(?:\s*<<\s*\d+)?)")


def tree_values(source_path: Path) -> dict[str, str]:
    """Values of the tree that plans name by placeholder: {foll_longterm}, gup_test's -F bit for FOLL_LONGTERM
    (0x10000 until 6.2, an enum's 1 << 8 since)."""
    for header in ("include/linux/mm_types.h", "include/linux/mm.h"):
        path = source_path / header
        if path.is_file() and (match := _FOLL_LONGTERM.search(path.read_text(errors="replace"))):
            value, _, shift = match.group(1).partition("<<")
            return {"foll_longterm": hex(int(value, 0) << int(shift or 0))}
    return {}


_PINCOUNT_TEST = re.compile(
    r"static inline bool (?:folio_has_pincount|hpage_pincount_available)\([^)]*\)\s*\{(.*?)\n\}", re.S)
_ORDER_ABOVE_ONE = re.compile(r"order\([^)]*\)\s*>\s*1")


@dataclass(frozen=True)
class PinAccounting:
    """How a tree keeps a folio's pins and how its dump_page() shows them, on a kernel of some bits."""

    exact_pincount_order: int = 1  # the smallest folio order with a pincount; smaller ones pin on the refcount
    far_tails_dumped_alone: bool = False  # dump_page() prints a tail page far into a gigantic folio as itself


# A 64-bit kernel's from 6.8: every large folio has a pincount, and dump_page() shows every page with its folio.
USUAL_ACCOUNTING = PinAccounting()


def pin_accounting(source_path: Path, bits: int) -> PinAccounting:
    return PinAccounting(exact_pincount_order(source_path, bits), far_tails_dumped_alone(source_path))


def exact_pincount_order(source_path: Path, bits: int) -> int:
    """The smallest folio order whose pins this tree counts exactly (a pincount) on a kernel of these bits; a
    smaller folio keeps its pins in the refcount, 1024 each, as an order-0 page does. Read from the tree's own
    test: folio_has_pincount() (from 6.15) leaves order-1 folios on the bias on 32-bit kernels only, 5.10's
    hpage_pincount_available() on every kernel, and 6.1's folio_maybe_dma_pinned() counts every large folio."""
    header = source_path / "include/linux/mm.h"
    match = _PINCOUNT_TEST.search(header.read_text(errors="replace")) if header.is_file() else None
    if match is None or ("CONFIG_64BIT" in match.group(1) and bits == 64):
        return 1
    return 2 if _ORDER_ABOVE_ONE.search(match.group(1)) else 1


def far_tails_dumped_alone(source_path: Path) -> bool:
    """Whether this tree's __dump_page() takes a page MAX_ORDER_NR_PAGES or more past its head for a corrupt
    one and prints it alone, without its folio (until __dump_folio, 6.8): then the far tail pages of a
    gigantic hugetlb folio (arm64's 32 MB, order 13) show their own refcount, 0, and no pins."""
    debug = source_path / "mm/debug.c"
    return debug.is_file() and "head + MAX_ORDER_NR_PAGES" in debug.read_text(errors="replace")


def plan_commands(plan: "Plan", arch: "Arch", kernel_version: str, available: dict[str, TreeProgram],
                  feature_gaps: dict[str, str] | None = None,
                  values: dict[str, str] | None = None) -> tuple[StepCommand, ...]:
    """For each step of the plan, what runs on this tree and arch, or why the step is skipped.
    feature_gaps: each kernel feature this tree lacks, and why (beside what the arch lacks); values: the tree's
    (tree_values)."""
    gaps = {**dict(arch.lacks), **(feature_gaps or {})}
    commands = []
    for step in plan.steps:
        try:
            args = step.args_for(arch, values)
        except KeyError as missing:
            commands.append(StepCommand(step.program, step.args, None, f"this tree defines no {missing.args[0]}"))
            continue
        command = step_command(step.program, args, available)
        lacking = [f"needs {need}: {gaps[need]}" for need in step.requires if need in gaps]
        if reason := step.skip_reason(kernel_version) or "; ".join(lacking):
            command = dataclasses.replace(command, skip_reason=reason)
        commands.append(command)
    return tuple(commands)
