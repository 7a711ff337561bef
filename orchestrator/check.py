"""Checks: what the pinning design promises, held against what a step showed.

Pure functions: a plan step and its parsed output in, a verdict with a
message saying what was expected and what was seen out.
"""

from dataclasses import dataclass, field

from orchestrator.arches import Arch
from orchestrator.boot import StepCapture
from orchestrator.gup_args import GupInvocation, parse_gup_args
from orchestrator.gup_programs import StepCommand, as_planned
from orchestrator.parse import DumpedPage, StepOutput, find_splats, parse_step
from orchestrator.plan import Step

ACQUIRED, RELEASED = "nr_foll_pin_acquired", "nr_foll_pin_released"
GUP_PIN_COUNTING_BIAS = 1024


@dataclass(frozen=True)
class StepResult:
    step: Step
    status: str  # "passed", "failed", "crashed", "timeout" or "skipped"
    message: str
    seconds: float
    console: str
    output: StepOutput | None = None
    figures: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def check_exit(step: Step, output: StepOutput, exit_status: int) -> list[str]:
    if exit_status == 0:
        return []
    tail = " | ".join(output.program_output.strip().splitlines()[-3:])
    return [f"expected {step.program} to exit 0, it exited {exit_status}" + (f": {tail}" if tail else "")]


def check_no_splat(output: StepOutput) -> list[str]:
    if not output.splats:
        return []
    return [f"expected no kernel splat, the kernel logged: {' | '.join(output.splats[:3])}"]


def check_ktap(output: StepOutput) -> list[str]:
    failed = [f"{result.number} {result.description}" for result in output.ktap if not result.ok]
    return [f"expected every KTAP result ok, {len(failed)} not ok: {'; '.join(failed[:5])}"] if failed else []


def check_counters_read(output: StepOutput) -> list[str]:
    missing = [name for name in (ACQUIRED, RELEASED) if output.delta(name) is None]
    return [f"expected /proc/vmstat to show {', '.join(missing)} before and after the step"] if missing else []


def check_balance(output: StepOutput) -> list[str]:
    acquired, released = output.delta(ACQUIRED), output.delta(RELEASED)
    if acquired is None or released is None or acquired == released:
        return []
    return [f"expected every pin released: {ACQUIRED} rose by {acquired}, {RELEASED} by {released}"]


def check_counters_move(step: Step, output: StepOutput) -> list[str]:
    acquired, released = output.delta(ACQUIRED), output.delta(RELEASED)
    if acquired is None or released is None:
        return []
    if step.expect == "pin" and acquired == 0:
        return [f"expected a pin mode to move {ACQUIRED}, it stayed at {output.counters_after[ACQUIRED]}"]
    if step.expect == "get" and (acquired or released):
        return [f"expected a get mode to leave the pin counters alone, they rose by {acquired} and {released}"]
    return []


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


def check_result_lines(invocation: GupInvocation, output: StepOutput) -> list[str]:
    seen = len(_result_lines(invocation, output))
    if seen == invocation.ioctls:
        return []
    return [f"expected {invocation.ioctls} {invocation.command} result line(s) from gup_test, saw {seen}"]


def check_exact_pins(expected: int | None, output: StepOutput) -> list[str]:
    acquired = output.delta(ACQUIRED)
    if acquired is None or expected is None or acquired == expected:
        return []
    return [f"expected exactly {expected} pins (one per base page pinned), {ACQUIRED} rose by {acquired}"]


def check_dumped_pages(invocation: GupInvocation, output: StepOutput) -> list[str]:
    """What a dumped page must show while pinned (-p) or only gotten; the zero page is never pinned."""
    if invocation.command != "DUMP_USER_PAGES_TEST":
        return []
    pages = [page for page in output.dumped_pages if page.reason.startswith("gup_test: dump_pages")]
    if len(pages) != len(invocation.dump_indexes):
        return [f"expected {len(invocation.dump_indexes)} dump_page() records, saw {len(pages)}"]
    problems = []
    for index, page in zip(invocation.dump_indexes, pages, strict=True):
        problem = _dumped_page_problem(page, invocation.dump_with_pin and not invocation.reads_unwritten_memory)
        if problem:
            problems.append(f"page {index} (pfn {page.pfn:#x}): {problem}")
    return problems


def _dumped_page_problem(page: DumpedPage, pinned: bool) -> str:
    if page.pincount is None:  # order 0 (or a 6.1 order-1 folio): pins live in the refcount
        if pinned and page.refcount < 1 + GUP_PIN_COUNTING_BIAS:
            return f"expected refcount >= {1 + GUP_PIN_COUNTING_BIAS} (1 + GUP_PIN_COUNTING_BIAS) while pinned, " \
                   f"saw {page.refcount}"
        if not pinned and page.refcount >= GUP_PIN_COUNTING_BIAS:
            return f"expected refcount < {GUP_PIN_COUNTING_BIAS} without pins, saw {page.refcount}"
        return ""
    # The whole range is pinned, so each of the folio's base pages holds one pin.
    pins_taken = (1 << page.order) if pinned else 0
    if page.pincount != pins_taken:
        return f"expected pincount {pins_taken} on an order-{page.order} folio, saw {page.pincount}"
    if pinned and page.refcount >= page.pincount + GUP_PIN_COUNTING_BIAS:
        return (f"expected a refcount not inflated by {GUP_PIN_COUNTING_BIAS} per pin "
                f"(below pincount + {GUP_PIN_COUNTING_BIAS} = {page.pincount + GUP_PIN_COUNTING_BIAS}), "
                f"saw {page.refcount}")
    return ""


def figures_of(output: StepOutput) -> dict[str, str]:
    figures = {
        "acquired_delta": output.delta(ACQUIRED),
        "released_delta": output.delta(RELEASED),
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
        figures[f"page.{number}.order"] = page.order or 0
        if page.pincount is not None:
            figures[f"page.{number}.pincount"] = page.pincount
        if page.order:
            figures[f"page.{number}.subpage"] = page.pfn & ((1 << page.order) - 1)
    return {key: str(value) for key, value in figures.items() if value is not None}


def check_step(step: Step, capture: StepCapture, arch: Arch, command: StepCommand | None = None) -> StepResult:
    """command: what the guest ran for the step on this tree; by default the step as its plan wrote it."""
    command = command or as_planned(step.program, step.args_for(arch))
    if capture.outcome == "skipped":
        return StepResult(step, "skipped", capture.problem, 0.0, capture.text)
    if capture.outcome == "timeout" and (splats := find_splats(capture.text.splitlines())):
        # The kernel reported what stopped the step (a soft lockup, say) and lived on.
        return StepResult(step, "failed", f"expected no kernel splat, the kernel logged: {' | '.join(splats[:3])} "
                          f"(and {capture.problem})", capture.seconds, capture.text)
    if capture.outcome != "completed":
        verb = "crashed the kernel" if capture.outcome == "crashed" else "timed out"
        return StepResult(step, capture.outcome, f"{step.name} {verb}: {capture.problem}", capture.seconds,
                          capture.text)
    output = parse_step(capture.text)
    figures = figures_of(output)
    problems = (
        check_exit(step, output, capture.exit_status or 0)
        + check_no_splat(output)
        + check_ktap(output)
        + check_counters_read(output)
        + check_balance(output)
        + check_counters_move(step, output)
    )
    if command.kind and command.kind.commands:
        invocation = parse_gup_args(command.args, command.kind)
        expected = expected_pins(invocation, output, arch)
        if expected is not None:
            figures["expected_pins"] = str(expected)
        problems += check_result_lines(invocation, output)
        problems += check_exact_pins(expected, output)
        problems += check_dumped_pages(invocation, output)
    return StepResult(
        step=step,
        status="failed" if problems else "passed",
        message="; ".join(problems),
        seconds=capture.seconds,
        console=capture.text,
        output=output,
        figures=figures,
    )
