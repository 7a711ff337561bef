"""Checks: what the pinning design promises, held against what a step showed.

Pure functions: a plan step and its parsed output in, a StepResult out whose
problems say, as data, which promise failed with the figures compared (and,
for people, a sentence of what was expected and what was seen).
"""

import re

from orchestrator import features
from orchestrator.arches import Arch
from orchestrator.boot import CaptureOutcome, StepCapture
from orchestrator.gup_args import GupInvocation, parse_gup_args
from orchestrator.gup_programs import USUAL_ACCOUNTING, PinAccounting, StepCommand, as_planned
from orchestrator.parse import SPLAT, DumpedPage, StepOutput, find_splats, parse_step, strip_timestamp
from orchestrator.plan import Step
from orchestrator.results import Problem, ProblemKind, Status, StepResult

ACQUIRED, RELEASED = "nr_foll_pin_acquired", "nr_foll_pin_released"
GUP_PIN_COUNTING_BIAS = 1024
# How much less memory may be free after a step than before it, once the page
# cache is dropped and the per-CPU lists counted: the pinning plan's steps on
# clean kernels moved by at most 196 kB (README, "Checks beyond the pin
# counters"); a leaked pinned buffer of gup_test's or a workload's is larger.
FREE_MEMORY_TOLERANCE_KB = 4096


def check_exit(step: Step, output: StepOutput, exit_status: int) -> list[Problem]:
    """The program exited 0."""
    if exit_status == 0:
        return []
    tail = " | ".join(output.program_output.strip().splitlines()[-3:])
    return [Problem(ProblemKind.EXIT,
                    f"expected {step.program} to exit 0, it exited {exit_status}" + (f": {tail}" if tail else ""),
                    (str(exit_status),), {"exit_status": exit_status})]


def splat_problem(splats: tuple[str, ...] | list[str], also: str = "") -> list[Problem]:
    """No kernel splat was logged (also: the splat that ended a hung step)."""
    if not splats:
        return []
    sentence = f"expected no kernel splat, the kernel logged: {' | '.join(splats[:3])}"
    return [Problem(ProblemKind.SPLAT, sentence + (f" (and {also})" if also else ""), tuple(splats))]


def check_ktap(output: StepOutput) -> list[Problem]:
    """Every KTAP result passed, was skipped, or failed as its test expects (XFAIL); an XPASS fails."""
    failed = [result for result in output.ktap if result.status.failing]
    if not failed:
        return []
    named = [f"{result.number} {result.description}" + (" (XPASS)" if result.directive == "XPASS" else "")
             for result in failed]
    return [Problem(ProblemKind.KTAP, f"expected every KTAP result ok, {len(failed)} not: {'; '.join(named[:5])}",
                    tuple(result.subject for result in failed), {"not_ok": len(failed)})]


def check_counters_read(output: StepOutput) -> list[Problem]:
    """/proc/vmstat showed both pin counters before and after."""
    missing = [name for name in (ACQUIRED, RELEASED) if output.delta(name) is None]
    if not missing:
        return []
    return [Problem(ProblemKind.COUNTERS_UNREAD,
                    f"expected /proc/vmstat to show {', '.join(missing)} before and after the step", tuple(missing))]


def check_balance(output: StepOutput) -> list[Problem]:
    """Every pin acquired was released."""
    acquired, released = output.delta(ACQUIRED), output.delta(RELEASED)
    if acquired is None or released is None or acquired == released:
        return []
    return [Problem(ProblemKind.IMBALANCE,
                    f"expected every pin released: {ACQUIRED} rose by {acquired}, {RELEASED} by {released}",
                    (f"{ACQUIRED} != {RELEASED}",), {"acquired": acquired, "released": released})]


def check_counters_move(step: Step, output: StepOutput) -> list[Problem]:
    """A pin mode moves the pin counters; a get mode leaves them alone."""
    acquired, released = output.delta(ACQUIRED), output.delta(RELEASED)
    if acquired is None or released is None:
        return []
    figures = {"acquired": acquired, "released": released}
    if step.expect == "pin" and acquired == 0:
        return [Problem(ProblemKind.COUNTERS,
                        f"expected a pin mode to move {ACQUIRED}, it stayed at {output.counters_after[ACQUIRED]}",
                        ("pin",), figures)]
    if step.expect == "get" and (acquired or released):
        return [Problem(ProblemKind.COUNTERS,
                        f"expected a get mode to leave the pin counters alone, they rose by {acquired} and {released}",
                        ("get",), figures)]
    return []


def check_stuck_tasks(output: StepOutput) -> list[Problem]:
    """No task is left in uninterruptible sleep once the step's program has exited."""
    if not output.stuck_tasks:
        return []
    return [Problem(ProblemKind.STUCK_TASK,
                    f"expected no task left in D state after the step, these stayed: {', '.join(output.stuck_tasks)}",
                    tuple(task.partition(" ")[2] or task for task in output.stuck_tasks))]


def check_huge_pages_back(output: StepOutput) -> list[Problem]:
    """Every huge page the step used is free again once its processes are gone, at every size (HugePages_Free
    counts the default size; HugePages_Free_64kB and the like the arch's others)."""
    problems = []
    for name, before in output.memory_before.items():
        after = output.memory_after.get(name)
        if not name.startswith("HugePages_Free") or after is None or after >= before:
            continue
        problems.append(Problem(ProblemKind.HUGE_PAGES_NOT_FREED,
                                f"expected every huge page free again after the step: {name} was {before}, is {after}",
                                (name,), {"before": before, "after": after}))
    return problems


def free_kb(memory: dict[str, int], arch: Arch) -> int | None:
    """Free memory: MemFree and the free pages on the per-CPU lists, which MemFree leaves out."""
    if "MemFree" not in memory or "PerCpuPages" not in memory:
        return None
    return memory["MemFree"] + memory["PerCpuPages"] * arch.page_size // 1024


def check_memory_back(step: Step, output: StepOutput, arch: Arch) -> list[Problem]:
    """The memory the step used is free again once its processes are gone, within the noise of a clean kernel
    (unless the step writes where memory is kept: a RAM disk)."""
    if any(feature.keeps_written_memory for feature in features.of(step.requires)):
        return []
    before, after = free_kb(output.memory_before, arch), free_kb(output.memory_after, arch)
    if before is None or after is None or before - after <= FREE_MEMORY_TOLERANCE_KB:
        return []
    return [Problem(ProblemKind.MEMORY_NOT_FREED,
                    f"expected the step's memory free again (within {FREE_MEMORY_TOLERANCE_KB} kB): free memory "
                    f"was {before} kB, is {after} kB ({before - after} kB not back)",
                    ("free memory",),
                    {"before_kb": before, "after_kb": after, "tolerance_kb": FREE_MEMORY_TOLERANCE_KB})]


def _result_lines(invocation: GupInvocation, output: StepOutput) -> list:
    """The program's result lines of the invocation's command (gup_benchmark's name no command)."""
    return [report for report in output.reports if report.command in ("", invocation.command)]


def expected_pins(invocation: GupInvocation, output: StepOutput, arch: Arch) -> int | None:
    """Base pages pinned, one per page of each call's range as gup_test reports it; None if unknowable."""
    if not invocation.pins:
        return 0
    if invocation.reads_unwritten_memory:
        # The shared zero page is never pinned. Past one huge page the huge
        # zero page may be mapped too, and it is pinned: how often depends
        # on the mapping's alignment.
        return 0 if invocation.size <= arch.huge_page_size else None
    reports = _result_lines(invocation, output)
    if len(reports) != invocation.ioctls:
        return None
    return sum((report.truncated_size or invocation.size) // arch.page_size for report in reports)


def check_result_lines(invocation: GupInvocation, output: StepOutput) -> list[Problem]:
    """gup_test printed one result line per ioctl it was asked for."""
    seen = len(_result_lines(invocation, output))
    if seen == invocation.ioctls:
        return []
    return [Problem(ProblemKind.RESULT_LINES,
                    f"expected {invocation.ioctls} {invocation.command} result line(s) from gup_test, saw {seen}",
                    (invocation.command,), {"expected": invocation.ioctls, "seen": seen})]


def check_exact_pins(expected: int | None, output: StepOutput, migrates: bool = False) -> list[Problem]:
    """Exactly one pin per base page pinned, huge pages included. migrates: the pins are long-term and the
    kernel has memory they must migrate out of (a movable zone, CMA); a batch that held such pages was pinned,
    released and pinned again after the migration, so at least one pin per page."""
    acquired = output.delta(ACQUIRED)
    if acquired is None or expected is None or acquired == expected or (migrates and acquired > expected):
        return []
    wanted = f"at least {expected} pins (one per base page pinned, more where a batch migrated)" if migrates \
        else f"exactly {expected} pins (one per base page pinned)"
    return [Problem(ProblemKind.EXACT_COUNT, f"expected {wanted}, {ACQUIRED} rose by {acquired}",
                    (ACQUIRED,), {"expected": expected, "acquired": acquired})]


def migration_possible(environment: dict[str, str]) -> bool:
    """The guest has memory a long-term pin must migrate out of: a populated movable zone or a CMA area."""
    movable = environment.get("movable_pages", "0")
    return (movable.isdigit() and int(movable) > 0) or environment.get("cma", "-") != "-"


def check_dumped_pages(invocation: GupInvocation, output: StepOutput,
                       accounting: PinAccounting = USUAL_ACCOUNTING) -> list[Problem]:
    """What a dumped page must show while pinned (-p) or only gotten; the zero page is never pinned.
    accounting: how this tree and arch keep and print pins (gup_programs.pin_accounting)."""
    if invocation.command != "DUMP_USER_PAGES_TEST":
        return []
    pages = _gup_test_dumps(output)
    if len(pages) != len(invocation.dump_indexes):
        return [Problem(ProblemKind.DUMP_PAGE,
                        f"expected {len(invocation.dump_indexes)} dump_page() records, saw {len(pages)}", ("records",),
                        {"expected": len(invocation.dump_indexes), "seen": len(pages)})]
    problems = []
    for index, page in zip(invocation.dump_indexes, pages, strict=True):
        pinned = invocation.dump_with_pin and not invocation.reads_unwritten_memory
        if found := _dumped_page_problem(page, pinned, accounting):
            field, sentence = found
            problems.append(Problem(ProblemKind.DUMP_PAGE, f"page {index} (pfn {page.pfn:#x}): {sentence}", (field,),
                                    {"page": index, "refcount": page.refcount, "pincount": page.pincount or 0}))
    return problems


_ZONE = re.compile(r"\bzone=(\d+)")


def check_longterm_placement(step: Step, invocation: GupInvocation, output: StepOutput,
                             environment: dict[str, str]) -> list[Problem]:
    """Each page a long-term pin holds lies outside ZONE_MOVABLE and the CMA areas: FOLL_LONGTERM migrates it
    out of both before it pins. Zones are named by the guest's /proc/zoneinfo, in dump_page's zone=N order."""
    if not (step.longterm and invocation.dump_with_pin):
        return []
    zones = [zone for zone in environment.get("zones", "").split(",") if zone not in ("", "-")]
    cma = [tuple(int(number, 0) for number in area.split("+")) for area in environment.get("cma", "-").split(",")
           if "+" in area]
    problems = []
    for index, page in zip(invocation.dump_indexes, _gup_test_dumps(output), strict=False):
        zone = _ZONE.search(page.flags)
        where = zones[int(zone.group(1))] if zone and int(zone.group(1)) < len(zones) else ""
        figures = {"page": index, "pfn": hex(page.pfn), "zone": where or "?"}
        if not where:
            problems.append(Problem(ProblemKind.DUMP_PAGE, f"page {index} (pfn {page.pfn:#x}): cannot tell its zone "
                                    f"(flags {page.flags or '(none)'}, zones {environment.get('zones', '(unknown)')})",
                                    ("zone",), figures))
        elif where == "Movable":
            problems.append(Problem(ProblemKind.LONGTERM_PIN_MOVABLE, f"page {index} (pfn {page.pfn:#x}): expected a "
                                    "long-term pinned page outside ZONE_MOVABLE, it is in it", ("ZONE_MOVABLE",),
                                    figures))
        elif any(base <= page.pfn < base + count for base, count in cma):
            problems.append(Problem(ProblemKind.LONGTERM_PIN_MOVABLE, f"page {index} (pfn {page.pfn:#x}): expected a "
                                    "long-term pinned page outside the CMA areas, it is in one", ("CMA",), figures))
    return problems


def _gup_test_dumps(output: StepOutput) -> list[DumpedPage]:
    return [page for page in output.dumped_pages if page.reason.startswith("gup_test: dump_pages")]


def _dumped_page_problem(page: DumpedPage, pinned: bool, accounting: PinAccounting) -> tuple[str, str] | None:
    """The field of the page that breaks the promise, and how."""
    if page.tail and page.order is None:
        if not accounting.far_tails_dumped_alone:
            return "head", "expected its folio in the record, dump_page() printed the tail page alone"
        # Only the tail's own refcount, which is 0 on every tail page: its folio's pins cannot be read here.
        return None if page.refcount == 0 else ("refcount", f"expected a tail page's own refcount 0, "
                                                            f"saw {page.refcount}")
    if page.pincount is None or (page.order or 0) < accounting.exact_pincount_order:  # pins on the refcount
        if pinned and page.refcount < 1 + GUP_PIN_COUNTING_BIAS:
            return "refcount", f"expected refcount >= {1 + GUP_PIN_COUNTING_BIAS} (1 + GUP_PIN_COUNTING_BIAS) " \
                               f"while pinned, saw {page.refcount}"
        if not pinned and page.refcount >= GUP_PIN_COUNTING_BIAS:
            return "refcount", f"expected refcount < {GUP_PIN_COUNTING_BIAS} without pins, saw {page.refcount}"
        return None
    # The whole range is pinned, so each of the folio's base pages holds one pin.
    pins_taken = (1 << page.order) if pinned else 0
    if page.pincount != pins_taken:
        return "pincount", f"expected pincount {pins_taken} on an order-{page.order} folio, saw {page.pincount}"
    if pinned and page.refcount >= page.pincount + GUP_PIN_COUNTING_BIAS:
        return "refcount", (f"expected a refcount not inflated by {GUP_PIN_COUNTING_BIAS} per pin "
                            f"(below pincount + {GUP_PIN_COUNTING_BIAS} = {page.pincount + GUP_PIN_COUNTING_BIAS}), "
                            f"saw {page.refcount}")
    return None


def figures_of(output: StepOutput) -> dict[str, str]:
    """What the step measured, for results.json and JUnit: counter deltas, timings, dumped pages."""
    figures = {
        "acquired_delta": output.delta(ACQUIRED),
        "released_delta": output.delta(RELEASED),
        **{f"{name}.{when}": value for when, memory in (("before", output.memory_before),
                                                          ("after", output.memory_after))
           for name, value in memory.items()},
    }
    for number, report in enumerate(output.reports):
        if report.get_usec is not None:
            figures[f"get_usec.{number}"] = report.get_usec
            figures[f"put_usec.{number}"] = report.put_usec
        if report.truncated_size is not None:
            figures[f"truncated_size.{number}"] = report.truncated_size
    for number, page in enumerate(output.dumped_pages):
        figures[f"page.{number}.pfn"] = hex(page.pfn)
        figures[f"page.{number}.refcount"] = page.refcount
        if page.tail and page.order is None:
            figures[f"page.{number}.folio"] = "not shown"  # dump_page() printed the tail page alone
        else:
            figures[f"page.{number}.order"] = page.order or 0
        if page.pincount is not None:
            figures[f"page.{number}.pincount"] = page.pincount
        if page.order:
            figures[f"page.{number}.subpage"] = page.pfn & ((1 << page.order) - 1)
    figures.update(output.program_figures)
    return {key: str(value) for key, value in figures.items() if value is not None}


GUP_PIN_COUNTING_BIAS = 1024
REFCOUNT_MAX = 2**31 - 1  # a page's refcount is a signed 32-bit atomic_t on every arch


def pins_allowed(base_refcount: int) -> int:
    """How many pins of an order-0 page GUP grants from a refcount of base_refcount: pin k is taken while the
    count before it, base + 1024 (k - 1), is still positive, and refused once it has gone negative."""
    return (REFCOUNT_MAX - base_refcount) // GUP_PIN_COUNTING_BIAS + 1


def check_pin_limit(output: StepOutput) -> list[Problem]:
    """A pin-limit workload's count of pins that succeeded is what the bias allows from the page's refcount
    (dumped with gup_test's own reference on the page: one more than the base)."""
    figures = output.program_figures
    if "pins_succeeded" not in figures or "refcount_before" not in figures:
        return []
    base = int(figures["refcount_before"]) - 1
    allowed, succeeded = pins_allowed(base), int(figures["pins_succeeded"])
    if succeeded == allowed:
        return []
    return [Problem(ProblemKind.PIN_LIMIT,
                    f"expected exactly {allowed} pins of one page to succeed from a refcount of {base}, "
                    f"{succeeded} did", ("pins_succeeded",), {"allowed": allowed, "succeeded": succeeded,
                                                               "base_refcount": base})]


def _expected_warnings(step: Step, splats: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The splat lines the step provokes on purpose, and the rest."""
    expected = [line for line in splats
                if step.expected_warning and "WARNING" in line and re.search(step.expected_warning, line)]
    return expected, [line for line in splats if line not in expected]


def crash_title(text: str) -> str:
    """The first splat line of a crash report, from where the splat starts."""
    for line in text.splitlines():
        if splat := SPLAT.search(line):
            return line[splat.start():].strip()
    return ""


def _ended_early(step: Step, capture: StepCapture) -> StepResult:
    """A step that crashed the kernel or hung: the kernel's failure, whatever the step would have shown."""
    lines = tuple(strip_timestamp(line) for line in capture.text.splitlines())
    if capture.outcome == CaptureOutcome.TIMEOUT and (splats := find_splats(lines)):
        # The kernel reported what stopped the step (a soft lockup, say) and lived on.
        problems = splat_problem(splats, also=capture.problem)
        return StepResult(step, Status.FAILED, problems[0].sentence, capture.seconds, capture.text,
                          problems=tuple(problems))
    if capture.outcome == CaptureOutcome.CRASHED:
        title = crash_title(capture.problem) or crash_title(capture.text)
        problem = Problem(ProblemKind.CRASH, f"{step.name} crashed the kernel: {capture.problem}",
                          (title,) if title else ())
        return StepResult(step, Status.CRASHED, problem.sentence, capture.seconds, capture.text, problems=(problem,))
    problem = Problem(ProblemKind.TIMEOUT, f"{step.name} timed out: {capture.problem}")
    return StepResult(step, Status.TIMEOUT, problem.sentence, capture.seconds, capture.text, problems=(problem,))


def check_step(step: Step, capture: StepCapture, arch: Arch, command: StepCommand | None = None,
               environment: dict[str, str] | None = None, accounting: PinAccounting = USUAL_ACCOUNTING) -> StepResult:
    """Every promise the step's output must keep. command: what the guest ran for the step on this tree; by
    default the step as its plan wrote it. environment: what the guest reported of itself (zones, CMA).
    accounting: how this tree and arch keep and print pins."""
    command = command or as_planned(step.program, step.args_for(arch))
    if capture.outcome == CaptureOutcome.SKIPPED:
        return StepResult(step, Status.SKIPPED, capture.problem, 0.0, capture.text)
    if capture.outcome != CaptureOutcome.COMPLETED:
        return _ended_early(step, capture)
    output = parse_step(capture.text)
    figures = figures_of(output)
    expected, splats = _expected_warnings(step, output.splats)
    if step.expected_warning:
        figures["expected_warnings"] = str(len(expected))
    problems = (
        check_exit(step, output, capture.exit_status or 0)
        + splat_problem(splats)
        + check_ktap(output)
        + check_stuck_tasks(output)
        + check_counters_read(output)
        + check_balance(output)
        + check_counters_move(step, output)
        + check_huge_pages_back(output)
        + check_memory_back(step, output, arch)
        + check_pin_limit(output)
    )
    if command.kind and command.kind.commands:
        invocation = parse_gup_args(command.args, command.kind)
        expected = expected_pins(invocation, output, arch)
        if expected is not None:
            figures["expected_pins"] = str(expected)
        longterm = step.longterm or invocation.command == "PIN_LONGTERM_BENCHMARK"
        migrates = longterm and migration_possible(environment or {})
        acquired = output.delta(ACQUIRED)
        if migrates and expected is not None and acquired is not None:
            figures["repinned_after_migration"] = str(acquired - expected)
        problems += check_result_lines(invocation, output)
        problems += check_exact_pins(expected, output, migrates)
        problems += check_dumped_pages(invocation, output, accounting)
        problems += check_longterm_placement(step, invocation, output, environment or {})
    return StepResult(
        step=step,
        status=Status.FAILED if problems else Status.PASSED,
        message="; ".join(problem.sentence for problem in problems),
        seconds=capture.seconds,
        console=capture.text,
        output=output,
        figures=figures,
        problems=tuple(problems),
    )
