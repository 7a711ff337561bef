"""Parsers: from one step's console text to what happened. Pure functions over text."""

import re
from dataclasses import dataclass, field
from enum import StrEnum

from orchestrator.protocol import split_sections

_KERNEL_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
# 6.1: "page:<ptr> refcount:..."; 6.12: "page: refcount:...". Pointers are
# hashed, or (____ptrval____) before the hashing key is ready.
_PAGE_LINE = re.compile(r"^page:\s*(?:\S+\s+)?(?=refcount:)")
# The compound line has an order:; the hex dump lines that also start with
# "head:" do not.
_HEAD_LINE = re.compile(r"^head:\s*(?:\S+\s+)?(?=order:)")
_FIELD = re.compile(r"(\w+):(-?(?:0x[0-9a-fA-F]+|\d+))\b")
_DUMP_REASON = re.compile(r"^page dumped because: (.*)$")
_FLAGS = re.compile(r"^(?:\w+ )*flags: (.*)$")
# The page's own words: flags, then compound_head, which has bit 0 set on a tail page.
_RAW = re.compile(r"^raw: [0-9a-f]+ ([0-9a-f]+)")
# "Time: get:N put:N us" (gup_benchmark, 5.10), "CMD: Time: ..." (gup_test),
# "# CMD: Time: ..." (gup_test printing KTAP, 6.x and 7.x).
_TIMING = re.compile(r"(?:(\w+): )?[Tt]ime: get:(-?\d+) put:(-?\d+) us")
_DONE = re.compile(r"^(?:# )?(\w+): done$")
_TRUNCATED = re.compile(r"[Tt]runcated \(size: (\d+)\)")
_KTAP_RESULT = re.compile(r"^(ok|not ok) (\d+)\s*(.*?)(?:\s*#\s*(SKIP|TODO|XFAIL|XPASS)\b\s*(.*))?$", re.I)
# A figure a workload of gupvm's own reports for results.json ("# figure pins_succeeded=2097152").
_PROGRAM_FIGURE = re.compile(r"^# figure (\w+)=(\S+)$", re.M)
SPLAT = re.compile(
    r"WARNING:|BUG:|\bOops\b|is NOT dma-pinned|Kernel panic|kernel BUG at|general protection fault"
    r"|Bad page (state|map)|refcount_t: |blocked for more than \d+ seconds|detected stalls? on"
)
PIN_COUNTERS = ("nr_foll_pin_acquired", "nr_foll_pin_released")


@dataclass(frozen=True)
class GupReport:
    """One result line of gup_test: a benchmark's timings, or a test's 'done'."""

    command: str  # "" where the line does not name it (gup_benchmark's)
    get_usec: int | None = None
    put_usec: int | None = None
    truncated_size: int | None = None


class CaseStatus(StrEnum):
    """What one KTAP result says, its directive read."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    EXPECTED_FAILURE = "expected-failure"  # XFAIL (kselftest prints it "ok"), or a "not ok" marked TODO
    UNEXPECTED_PASS = "unexpected-pass"  # XPASS: the test expected to fail and did not

    @property
    def failing(self) -> bool:
        return self in (CaseStatus.FAILED, CaseStatus.UNEXPECTED_PASS)


@dataclass(frozen=True)
class KtapResult:
    ok: bool
    number: int
    description: str
    directive: str = ""  # SKIP, TODO, XFAIL (a failure the test expects: kselftest prints it "ok") or XPASS
    reason: str = ""
    title: str = ""  # the "# [RUN] ..." line kselftests print before a result, if any

    @property
    def subject(self) -> str:
        """What the result is called where a problem or a known failure names it."""
        return self.title or self.description

    def known_among(self, known_subjects: tuple[str, ...] | list[str]) -> bool:
        """A failing result that a known failure explains (StepResult.known_subjects)."""
        return self.status.failing and self.subject in known_subjects

    @property
    def status(self) -> CaseStatus:
        if self.directive == "SKIP":
            return CaseStatus.SKIPPED
        if self.directive == "XFAIL" or (self.directive == "TODO" and not self.ok):
            return CaseStatus.EXPECTED_FAILURE
        if self.directive == "XPASS":
            return CaseStatus.UNEXPECTED_PASS
        return CaseStatus.PASSED if self.ok else CaseStatus.FAILED


@dataclass(frozen=True)
class DumpedPage:
    refcount: int
    mapcount: int
    mapping: str
    index: int
    pfn: int
    order: int | None = None  # set for a page of a compound folio
    pincount: int | None = None  # compound_pincount (6.1) or pincount (6.12)
    entire_mapcount: int | None = None
    flags: str = ""
    reason: str = ""
    tail: bool = False  # a tail page of a large folio, by its own compound_head word (its first "raw:" line)


@dataclass(frozen=True)
class StepOutput:
    program_output: str
    reports: tuple[GupReport, ...]
    ktap: tuple[KtapResult, ...]
    counters_before: dict[str, int]
    counters_after: dict[str, int]
    kernel_lines: tuple[str, ...]
    dumped_pages: tuple[DumpedPage, ...]
    splats: tuple[str, ...]
    memory_before: dict[str, int] = field(default_factory=dict)  # /proc/meminfo: kB, or pages for HugePages_*
    memory_after: dict[str, int] = field(default_factory=dict)  # read again, settled, where it fell short at first
    stuck_tasks: tuple[str, ...] = ()  # "pid comm" of each task left in D state after the step
    program_figures: dict[str, str] = field(default_factory=dict)  # what the program said it measured

    def delta(self, counter: str) -> int | None:
        if counter in self.counters_before and counter in self.counters_after:
            return self.counters_after[counter] - self.counters_before[counter]
        return None


def parse_step(step_text: str) -> StepOutput:
    """One step's console text as what it showed: program output, KTAP, counters, dumped pages, splats."""
    sections = split_sections(step_text.replace("\r", ""))
    program_output = sections.get("output", "")
    kernel_lines = tuple(strip_timestamp(line) for line in sections.get("kmsg", "").splitlines() if line.strip())
    return StepOutput(
        program_output=program_output,
        reports=parse_gup_output(program_output),
        ktap=parse_ktap(program_output),
        counters_before=parse_pin_counters(sections.get("vmstat-before", "")),
        counters_after=parse_pin_counters(sections.get("vmstat-after", "")),
        kernel_lines=kernel_lines,
        dumped_pages=parse_dumped_pages(kernel_lines),
        splats=find_splats(kernel_lines),
        memory_before=parse_meminfo(sections.get("memory-before", "")),
        memory_after=parse_meminfo(sections.get("memory-settled") or sections.get("memory-after", "")),
        stuck_tasks=tuple(line.strip() for line in sections.get("stuck-tasks", "").splitlines() if line.strip()),
        program_figures=dict(_PROGRAM_FIGURE.findall(program_output)),
    )


def strip_timestamp(line: str) -> str:
    return _KERNEL_TIMESTAMP.sub("", line.rstrip())


def parse_pin_counters(text: str) -> dict[str, int]:
    counters = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in PIN_COUNTERS and parts[1].isdigit():
            counters[parts[0]] = int(parts[1])
    return counters


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo lines, 'MemFree:  123456 kB' -> {'MemFree': 123456}."""
    found = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if rest and (value := rest.split()) and value[0].isdigit():
            found[name.strip()] = int(value[0])
    return found


def parse_gup_output(text: str) -> tuple[GupReport, ...]:
    reports: list[GupReport] = []
    for line in text.splitlines():
        line = line.strip()
        truncated = _TRUNCATED.search(line)
        if timing := _TIMING.search(line):
            reports.append(GupReport(timing.group(1) or "", int(timing.group(2)), int(timing.group(3)),
                                     int(truncated.group(1)) if truncated else None))
        elif done := _DONE.match(line):
            reports.append(GupReport(done.group(1)))
        elif truncated and reports:
            last = reports.pop()
            reports.append(GupReport(last.command, last.get_usec, last.put_usec, int(truncated.group(1))))
    return tuple(reports)


def parse_ktap(text: str) -> tuple[KtapResult, ...]:
    results = []
    title = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("# [RUN] "):
            title = line.removeprefix("# [RUN] ")
        elif match := _KTAP_RESULT.match(line):
            results.append(KtapResult(match.group(1) == "ok", int(match.group(2)), match.group(3).strip(),
                                      (match.group(4) or "").upper(), (match.group(5) or "").strip(), title))
            title = ""
    return tuple(results)


def _fields(text: str) -> dict[str, int]:
    # Decimal unless 0x: a hashed pointer (mapping:0000000086609992) may be all digits with leading zeros.
    return {key: int(value, 16) if "0x" in value else int(value) for key, value in _FIELD.findall(text)}


def parse_dumped_pages(kernel_lines: tuple[str, ...] | list[str]) -> tuple[DumpedPage, ...]:
    """dump_page() records, in the 6.1 and the 6.12 formats, on 64- and 32-bit kernels."""
    pages: list[DumpedPage] = []
    current: dict | None = None
    for line in kernel_lines:
        line = strip_timestamp(line)
        if page := _PAGE_LINE.match(line):
            if current:
                pages.append(DumpedPage(**current))
            values = _fields(line[page.end():])
            mapping = re.search(r"mapping:(\S+)", line)
            current = {
                "refcount": values["refcount"], "mapcount": values["mapcount"],
                "mapping": mapping.group(1) if mapping else "", "index": values["index"], "pfn": values["pfn"],
            }
        elif current is None:
            continue
        elif head := _HEAD_LINE.match(line):
            values = _fields(line[head.end():])
            current["order"] = values["order"]
            current["pincount"] = values.get("pincount", values.get("compound_pincount"))
            current["entire_mapcount"] = values.get("entire_mapcount", values.get("compound_mapcount"))
        elif flags := _FLAGS.match(line):
            current["flags"] = flags.group(1)
        elif (raw := _RAW.match(line)) and "tail" not in current:
            current["tail"] = bool(int(raw.group(1), 16) & 1)
        elif reason := _DUMP_REASON.match(line):
            current["reason"] = reason.group(1)
            pages.append(DumpedPage(**current))
            current = None
    if current:
        pages.append(DumpedPage(**current))
    return tuple(pages)


def find_splats(kernel_lines: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Kernel lines that report trouble (WARNING, BUG, Oops, panic, 'is NOT dma-pinned', ...)."""
    return tuple(line for line in kernel_lines if SPLAT.search(line))
