"""Checks: what the pinning design promises, held against what a step showed.

Pure functions: a plan step and its parsed output in, a verdict with a
message saying what was expected and what was seen out.
"""

from dataclasses import dataclass, field

from orchestrator.boot import StepCapture
from orchestrator.parse import StepOutput, parse_step
from orchestrator.plan import Step

ACQUIRED, RELEASED = "nr_foll_pin_acquired", "nr_foll_pin_released"


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
    return {key: str(value) for key, value in figures.items() if value is not None}


def check_step(step: Step, capture: StepCapture) -> StepResult:
    if capture.outcome != "completed":
        verb = "crashed the kernel" if capture.outcome == "crashed" else "timed out"
        return StepResult(step, capture.outcome, f"{step.name} {verb}: {capture.problem}", capture.seconds,
                          capture.text)
    output = parse_step(capture.text)
    problems = (
        check_exit(step, output, capture.exit_status or 0)
        + check_no_splat(output)
        + check_counters_read(output)
        + check_balance(output)
        + check_counters_move(step, output)
    )
    return StepResult(
        step=step,
        status="failed" if problems else "passed",
        message="; ".join(problems),
        seconds=capture.seconds,
        console=capture.text,
        output=output,
        figures=figures_of(output),
    )
