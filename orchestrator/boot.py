"""Booting the test kernel and following the plan on its serial console.

Each step gets its own time limit and each boot one for the whole boot. A
panic, Oops or BUG ends the step as crashed, a hang as timed out; either
way QEMU is killed and the remaining steps run in a fresh boot.
"""

import re
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pexpect

from orchestrator.arches import Arch
from orchestrator.errors import HOST_TROUBLE, Blame, InfrastructureError
from orchestrator.interrupt import Interrupted
from orchestrator.plan import Plan
from orchestrator.protocol import PLAN_END, READY, STEP_BEGIN, STEP_END, STEP_SKIP, parse_environment, whole_line
from orchestrator.qemu import CLOCKS, Clock, kernel_command_line, qemu_command, running

# A soft lockup report is a BUG: line the kernel survives; the step fails on it (see check.py). A BUG:
# line counts once it is whole: console text arrives in pieces, and a piece ending in "BUG: " would
# pass the soft lockup exception.
CRASH = re.compile(
    r"Kernel panic - not syncing|\bOops\b|\bBUG: (?!soft lockup)[^\r\n]*\r*\n|kernel BUG at|general protection fault")
BEGIN_LINE, END_LINE = whole_line(STEP_BEGIN), whole_line(STEP_END)
SPLAT_END = re.compile(r"---\[ end (trace|Kernel panic)[^\n]*")
SPLAT_GRACE_SECONDS = 5.0
BEGIN_SECONDS = 30.0
SHUTDOWN_SECONDS = 30.0


@dataclass(frozen=True)
class BootLimits:
    boot_seconds: float  # from QEMU start to the guest's init being ready
    run_seconds: float  # for one whole boot, plan steps included


class CaptureOutcome(StrEnum):
    COMPLETED = "completed"  # the step's end marker came, with the program's exit status
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"  # the guest said why it could not run the step


@dataclass(frozen=True)
class StepCapture:
    index: int
    name: str
    outcome: CaptureOutcome
    text: str
    seconds: float
    exit_status: int | None = None
    problem: str = ""  # the splat of a crash, what timed out, or why the step was skipped


@dataclass(frozen=True)
class BootRecord:
    environment: dict[str, str]
    boots: int
    seconds: float
    captures: tuple[StepCapture, ...]
    interrupted: str = ""  # the signal that stopped the plan before its end, e.g. "SIGTERM"


def run_plan(
    arch: Arch, accel: str, kernel: Path, initrd: Path, plan: Plan, console_log: Path, limits: BootLimits,
    clock: Clock = CLOCKS["realtime"], kernel_args: tuple[str, ...] = (),
) -> BootRecord:
    """Boot the kernel, follow the plan's steps on its console, and boot again after a crash or hang;
    every step's capture, in the plan's order, each checked against the guest's own markers.
    """
    captures: list[StepCapture] = []
    started = time.monotonic()
    boots = 0
    environment: dict[str, str] = {}
    # The console is whatever bytes the guest sends; the log keeps them readable.
    with console_log.open("a", encoding="utf-8", errors="replace") as log:
        try:
            while len(captures) < len(plan.steps):
                boots += 1
                first = len(captures) + 1
                command = qemu_command(arch, accel, kernel, initrd,
                                       kernel_command_line(arch, *kernel_args, f"gupvm.first={first}"), clock)
                log.write(f"\n===== gupvm boot {boots}: {' '.join(command)}\n")
                log.flush()
                with running(command, logfile=log) as child:
                    environment = wait_ready(child, limits.boot_seconds, console_log)
                    deadline = time.monotonic() + limits.run_seconds
                    follow_steps(child, plan, captures, deadline)
                    if len(captures) == len(plan.steps):
                        child.expect([PLAN_END, pexpect.EOF, pexpect.TIMEOUT], timeout=SHUTDOWN_SECONDS)
                        child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=SHUTDOWN_SECONDS)
        except Interrupted as signal:
            log.write(f"\n===== gupvm interrupted by {signal.name}\n")
            return BootRecord(environment, boots, time.monotonic() - started, tuple(captures), signal.name)
    return BootRecord(environment, boots, time.monotonic() - started, tuple(captures))


def wait_ready(child: pexpect.spawn, seconds: float, console_log: Path) -> dict[str, str]:
    """The guest's setup, once its init is ready to run steps."""
    outcome = child.expect([READY, CRASH, pexpect.EOF, pexpect.TIMEOUT], timeout=seconds)
    if outcome == 0:
        return parse_environment(child.before)
    seen = {1: "the kernel crashed while booting", 2: "QEMU exited", 3: f"no init after {seconds:.0f} s"}[outcome]
    tail = "\n".join((child.before or "").splitlines()[-15:])
    # QEMU's own complaint (it could not start, or lost its host) is the host's trouble, not the kernel's.
    blame = Blame.HOST if HOST_TROUBLE.search(tail) else Blame.KERNEL
    raise InfrastructureError(f"boot failed: {seen}; console: {console_log}\n{tail}", blame)


def follow_steps(child: pexpect.spawn, plan: Plan, captures: list[StepCapture], deadline: float) -> None:
    """Add the captures of the steps this boot runs, from the first not yet captured; the last is crashed
    or timed out if the boot ended early. Added one by one, so an interrupted boot keeps what it finished."""
    for index in range(len(captures) + 1, len(plan.steps) + 1):
        step = plan.steps[index - 1]
        started = time.monotonic()
        limit = min(step.timeout, deadline - started)
        began = child.expect([BEGIN_LINE, STEP_SKIP, pexpect.EOF, pexpect.TIMEOUT], timeout=min(BEGIN_SECONDS, limit))
        if began in (0, 1):
            _check_framing(child.match, index, step.name)
        if began == 1:
            captures.append(StepCapture(index, step.name, CaptureOutcome.SKIPPED, child.after, 0.0,
                                        problem=child.match.group(3)))
            continue
        if began != 0:
            captures.append(_timeout(index, step.name, child.before or "", started, "the step never started"))
            return
        text = child.after
        outcome = child.expect([END_LINE, CRASH, pexpect.EOF, pexpect.TIMEOUT], timeout=max(limit, 0.0))
        text += child.before or ""
        if outcome == 0:
            _check_framing(child.match, index, step.name)
            captures.append(
                StepCapture(index, step.name, CaptureOutcome.COMPLETED, text + child.after.rstrip("\r\n"),
                            time.monotonic() - started, exit_status=int(child.match.group(3))))
            continue
        if outcome in (1, 2):
            splat = _read_splat(child, child.after if outcome == 1 else "")
            captures.append(
                StepCapture(index, step.name, CaptureOutcome.CRASHED, text + splat, time.monotonic() - started,
                            problem=splat.strip() or "QEMU exited in the middle of the step")
            )
        else:
            reason = (f"no result after {step.timeout:.0f} s" if limit == step.timeout
                      else f"the boot's time limit ran out after {time.monotonic() - started:.0f} s of this step")
            captures.append(_timeout(index, step.name, text, started, reason))
        return


def _check_framing(marker: re.Match, index: int, name: str) -> None:
    """The guest's own marker names the step it ran: a result is never put on another step by its position."""
    said_index, said_name = int(marker.group(1)), marker.group(2)
    if (said_index, said_name) != (index, name):
        raise InfrastructureError(f"the guest framed step {said_index} ({said_name}) where the plan's step {index} "
                                  f"({name}) was due: its init or the console lost or reordered a step")


def _timeout(index: int, name: str, text: str, started: float, reason: str) -> StepCapture:
    return StepCapture(index, name, CaptureOutcome.TIMEOUT, text, time.monotonic() - started, problem=reason)


def _read_splat(child: pexpect.spawn, matched: str) -> str:
    """The crash message, from its first line to its end marker (or until the console falls quiet)."""
    if not matched:
        return ""
    child.expect([SPLAT_END, pexpect.EOF, pexpect.TIMEOUT], timeout=SPLAT_GRACE_SECONDS)
    rest = (child.before or "") + (child.after if isinstance(child.after, str) else "")
    return matched + rest
